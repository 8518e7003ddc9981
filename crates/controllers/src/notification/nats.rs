//! The NATS provider's publish on NATS' client protocol (text over TCP): read the server's
//! `INFO`, send `CONNECT`, `PUB` and `PING`, and take the `PONG` as the server's receipt (an
//! `-ERR` fails). Plain TCP only: a server that requires TLS is refused with a clear error.

use ferroflux_notify::provider::NatsPublish;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bytes read from one server at most (its `INFO` and answers are small).
const MAX_READ: u64 = 1024 * 1024;

/// Publishes on the first server that takes it; the error of the last one otherwise.
pub(super) async fn publish(publish: &NatsPublish) -> Result<(), String> {
    let mut last = String::from("no NATS server to connect to");
    for server in &publish.servers {
        match publish_to(server, publish).await {
            Ok(()) => return Ok(()),
            Err(err) => last = err,
        }
    }
    Err(format!(
        "error publishing event to subject {}: {last}",
        publish.subject
    ))
}

async fn publish_to(server: &str, publish: &NatsPublish) -> Result<(), String> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| format!("error connecting to server: {e}"))?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_READ));
    let mut line = String::new();
    let info = next_line(&mut lines, &mut line).await?;
    let info = info
        .strip_prefix("INFO ")
        .ok_or("error connecting to server: the server did not introduce itself with INFO")?;
    let info: serde_json::Value = serde_json::from_str(info)
        .map_err(|_| "error connecting to server: invalid INFO from the server".to_string())?;
    if info.get("tls_required") == Some(&serde_json::Value::Bool(true)) {
        return Err(
            "error connecting to server: the server requires TLS, not supported by ferroflux for NATS"
                .into(),
        );
    }
    write
        .write_all(&publish.frames())
        .await
        .map_err(|e| format!("error publishing message to server: {e}"))?;
    loop {
        let answer = next_line(&mut lines, &mut line).await?;
        match answer.split_whitespace().next().unwrap_or_default() {
            "PONG" => return Ok(()),
            "PING" => write
                .write_all(b"PONG\r\n")
                .await
                .map_err(|e| format!("error publishing message to server: {e}"))?,
            "-ERR" => {
                return Err(format!(
                    "error publishing message to server: {}",
                    answer.trim_start_matches("-ERR").trim().trim_matches('\'')
                ));
            }
            // +OK and later INFO updates.
            _ => {}
        }
    }
}

/// The next protocol line without its CRLF; the end of the stream is an error.
async fn next_line<'a, R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &'a mut String,
) -> Result<&'a str, String> {
    line.clear();
    let read = reader
        .read_line(line)
        .await
        .map_err(|e| format!("error reading from server: {e}"))?;
    if read == 0 {
        return Err("the server closed the connection".into());
    }
    Ok(line.trim_end_matches(['\r', '\n']))
}
