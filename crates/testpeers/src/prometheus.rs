//! Debian's Prometheus scraping a small metrics app whose error rate the test sets: the
//! metric peer of the canary tests (Flagger's builtin `request-success-rate` reads
//! `http_request_duration_seconds_count` of the target's pods).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::process::{Proc, with_port_retries};
use crate::{PeerError, find_program, http_status};

/// A running `prometheus` on 127.0.0.1 scraping one target every second.
pub struct Prometheus {
    _proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`127.0.0.1:PORT`, path `/metrics`) every second,
    /// keeping the target's labels (`honor_labels`).
    pub fn start(target: &str) -> Result<Prometheus, PeerError> {
        let program = find_program("prometheus", "prometheus")?;
        with_port_retries(|port| {
            let dir = tempfile::Builder::new()
                .prefix("ferroflux-prometheus-")
                .tempdir()
                .map_err(PeerError::io("create a temporary directory"))?;
            let config = format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: app\n    honor_labels: true\n    static_configs:\n      \
                 - targets: [\"{target}\"]\n"
            );
            let config_file = dir.path().join("prometheus.yml");
            std::fs::write(&config_file, config).map_err(PeerError::io("write prometheus.yml"))?;
            let mut cmd = std::process::Command::new(&program);
            cmd.arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            let mut proc = Proc::spawn("prometheus", cmd, &dir.path().join("prometheus.log"))?;
            proc.wait_ready(port, || http_status(port, "/-/ready") == Some(200))?;
            Ok(Prometheus {
                _proc: proc,
                port,
                _dir: dir,
            })
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// True once a query of `http_request_duration_seconds_count` returns a sample, i.e.
    /// Prometheus has scraped the app at least once.
    pub fn has_samples(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /api/v1/query?query=http_request_duration_seconds_count HTTP/1.0\r\n\
             Host: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body.contains("\"result\":[{")
    }
}

/// The counters the app serves.
#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

/// A `/metrics` endpoint counting the requests of one pod of `<target>` in `<namespace>`: at
/// every scrape 100 more requests, of which the set error percentage answered 500. Stops on
/// drop.
pub struct MetricsApp {
    counters: Arc<Counters>,
    address: String,
}

impl MetricsApp {
    /// Serves on a free loopback port the counters of pod `<target>-7d9f8b6c4-x2x9z` in
    /// `namespace`, with no errors.
    pub fn start(namespace: &str, target: &str) -> Result<MetricsApp, PeerError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(PeerError::io("bind 127.0.0.1:0"))?;
        let address = listener
            .local_addr()
            .map_err(PeerError::io("local_addr of a bound listener"))?
            .to_string();
        let counters = Arc::new(Counters::default());
        let labels = format!(
            "kubernetes_namespace=\"{namespace}\",kubernetes_pod_name=\"{target}-7d9f8b6c4-x2x9z\""
        );
        let served = counters.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if served.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    answer(stream, &served, &labels);
                }
            }
        });
        Ok(MetricsApp { counters, address })
    }

    /// `127.0.0.1:PORT`, the scrape target.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sets the percentage of requests that answer 500 from the next scrape on.
    pub fn set_errors(&self, percent: u64) {
        self.counters
            .errors
            .store(percent.min(100), Ordering::SeqCst);
    }
}

impl Drop for MetricsApp {
    fn drop(&mut self) {
        self.counters.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the stop flag.
        let _ = TcpStream::connect(&self.address);
    }
}

/// Answers one scrape: reads the request head, advances the counters, writes them.
fn answer(mut stream: TcpStream, counters: &Counters, labels: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // The request head is small; 16 KiB bounds a misbehaving client.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let errors = counters.errors.load(Ordering::SeqCst);
    let ok = counters.ok.fetch_add(100 - errors, Ordering::SeqCst) + 100 - errors;
    let failed = counters.failed.fetch_add(errors, Ordering::SeqCst) + errors;
    let body = format!(
        "# TYPE http_request_duration_seconds_count counter\n\
         http_request_duration_seconds_count{{{labels},status=\"200\"}} {ok}\n\
         http_request_duration_seconds_count{{{labels},status=\"500\"}} {failed}\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}
