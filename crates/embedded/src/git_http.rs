//! A Git server over HTTP for `ferroflux up`: every request runs `git http-backend` (the CGI
//! program that ships with git), so clients speak the real smart-HTTP protocol.

use std::path::PathBuf;
use std::process::Stdio;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

/// Serves the bare repositories under `root` on `listener` until the task is dropped.
pub async fn serve(root: PathBuf, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(root);
    axum::serve(listener, app).await
}

async fn handle(
    State(root): State<PathBuf>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run_backend(&root, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(message) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(message))
            .expect("a static response is valid"),
    }
}

async fn run_backend(
    root: &PathBuf,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "ferroflux")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run `git http-backend` (is git installed?): {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let _ = writer.await;
    parse_cgi(&output.stdout).ok_or_else(|| {
        format!(
            "git http-backend gave no CGI response: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Splits a CGI response into headers (with `Status:`) and body.
fn parse_cgi(output: &[u8]) -> Option<Response> {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| output.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))?;
    let (head, body) = (&output[..split.0], &output[split.0 + split.1..]);
    let mut response = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next()?.parse::<u16>().ok()?;
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    response.body(Body::from(body.to_vec())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output_becomes_a_response() {
        let response =
            parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nmissing")
                .expect("parses");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], "text/plain");
        let ok = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n001e")
            .expect("parses");
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(parse_cgi(b"no header end").is_none());
    }
}
