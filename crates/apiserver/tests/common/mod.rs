//! Test harness: start servers (in-process or in a child process), make clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferroflux_apiserver::{Config, RunningServer, serve};

/// Installs ring as the process's rustls provider (kube's rustls client needs one).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Starts a server on `dir` (HTTPS, random port unless `listen` is given).
pub async fn start(dir: &Path, listen: Option<SocketAddr>) -> RunningServer {
    init_tls();
    let mut config = Config::new(dir);
    config.listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    serve(config).await.expect("server starts")
}

/// A server on a fresh temporary directory (kept alive by the returned guard) and an admin
/// client of it.
pub async fn start_with_client() -> (tempfile::TempDir, RunningServer, kube::Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), None).await;
    let client = client(&server.kubeconfig).await;
    (dir, server, client)
}

/// A kube client from a kubeconfig text.
pub async fn client(kubeconfig: &str) -> kube::Client {
    init_tls();
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable");
    kube::Client::try_from(cfg).expect("client")
}

/// A server running on its own thread and runtime, for tests that block (kubectl).
pub struct ThreadServer {
    /// Where the kubeconfig is.
    pub kubeconfig: PathBuf,
    /// The URL.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadServer {
    /// Starts one on `dir`.
    pub fn start(dir: &Path) -> ThreadServer {
        let dir = dir.to_path_buf();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let s = start(&dir, None).await;
                ready_tx
                    .send((s.kubeconfig_path.clone(), s.url.clone()))
                    .expect("test waits");
                let _ = stop_rx.await;
                s.shutdown().await;
            });
        });
        let (kubeconfig, url) = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server started");
        ThreadServer {
            kubeconfig,
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the machine's `kubectl` with `kubeconfig`: whether it succeeded, and stdout + stderr.
/// `None` when no kubectl is installed.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<(bool, String)> {
    kubectl_with_input(kubeconfig, args, None)
}

/// Like [`kubectl`], with `stdin` as kubectl's input (`-f -`).
pub fn kubectl_with_input(
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Option<(bool, String)> {
    let out = ferroflux_testpeers::kubectl(kubeconfig, args, stdin.map(str::as_bytes)).ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

/// Sends a request with `headers` (and a JSON `body`) through `client`; the status code and the
/// raw answer.
pub async fn request(
    client: &kube::Client,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> (u16, Vec<u8>) {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map(|b| serde_json::to_vec(b).expect("JSON body"));
    let request = builder
        .body(kube::client::Body::from(body.unwrap_or_default()))
        .expect("request");
    let response = client.send(request).await.expect("answer");
    let code = response.status().as_u16();
    let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), usize::MAX)
        .await
        .expect("body");
    (code, bytes.to_vec())
}

/// Reports how many of a table's `total` cases passed; fails when any is in `failed` or when the
/// table has fewer than 30 cases.
pub fn assert_case_table(total: usize, failed: &[String]) {
    eprintln!("{} passed, {} failed", total - failed.len(), failed.len());
    assert!(total >= 30);
    assert!(failed.is_empty(), "{failed:#?}");
}
