//! Small HTTP servers on loopback standing in for the services a test's controllers talk to
//! (a Helm chart repository, a Slack webhook): plain std threads, one connection at a time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

/// One request: its method, path and body.
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of body).
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

/// Serves every connection with `answer` (status and body) on a free loopback port; the
/// server's `http://127.0.0.1:PORT`.
pub fn serve(answer: impl Fn(Request) -> (u16, Vec<u8>) + Send + 'static) -> String {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", socket.local_addr().expect("address"));
    std::thread::spawn(move || {
        for mut stream in socket.incoming().flatten() {
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let (status, body) = answer(request);
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Serves `files` by path (404 for any other), e.g. a Helm repository's `index.yaml` and charts.
pub fn serve_files(files: BTreeMap<String, Vec<u8>>) -> String {
    serve(move |request| match files.get(&request.path) {
        Some(body) => (200, body.clone()),
        None => (404, Vec::new()),
    })
}

/// Answers 200 to every POST and hands each body over: a webhook receiver (Slack, ...).
pub fn receive_posts() -> (String, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let url = serve(move |request| {
        if request.method == "POST" {
            let _ = tx.send(String::from_utf8_lossy(&request.body).into_owned());
        }
        (200, b"ok".to_vec())
    });
    (format!("{url}/"), rx)
}
