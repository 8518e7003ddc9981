//! `ferroflux apiserver` runs the workload simulator: a Deployment becomes Available after the
//! delay; one whose image matches `--simulate-failure` reports ProgressDeadlineExceeded.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Killed, free_port};

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let out = common::kubectl(kubeconfig, args, stdin.map(str::as_bytes));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  progressDeadlineSeconds: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: \"{image}\"}}]
"
    )
}

fn condition(kubeconfig: &Path, name: &str, kind: &str) -> String {
    let path = format!(
        "jsonpath={{.status.conditions[?(@.type==\"{kind}\")].status}}/{{.status.conditions[?(@.type==\"{kind}\")].reason}}"
    );
    kubectl(kubeconfig, &["get", "deployment", name, "-o", &path], None).1
}

#[test]
fn the_apiserver_simulates_workloads_and_failures() {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let port = free_port();
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["apiserver", "--data-dir"])
            .arg(dir.path().join("api"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args([
                "--simulator-delay",
                "500ms",
                "--simulate-failure",
                "ghcr.io/broken/*",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apiserver starts"),
    );
    for _ in 0..100 {
        if kubeconfig.is_file() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let manifests = format!(
        "{}---\n{}",
        deployment("good", "nginx:1.25"),
        deployment("bad", "ghcr.io/broken/app:1")
    );
    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&manifests));
    assert!(ok, "apply: {out}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut good, mut bad) = (String::new(), String::new());
    while Instant::now() < deadline {
        good = condition(&kubeconfig, "good", "Available");
        bad = condition(&kubeconfig, "bad", "Progressing");
        if good.starts_with("True/") && bad == "False/ProgressDeadlineExceeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(good.starts_with("True/"), "good Available: {good}");
    assert_eq!(bad, "False/ProgressDeadlineExceeded");
    assert!(
        !condition(&kubeconfig, "bad", "Available").starts_with("True"),
        "a failing workload never becomes available"
    );
}
