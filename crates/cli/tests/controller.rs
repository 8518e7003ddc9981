//! `ferroflux controller kustomize` against `ferroflux apiserver`, as the installed Deployment
//! runs it: it reconciles what `kubectl` creates and serves Flux's metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{Killed, free_port, kubectl_ok as kubectl};

fn get_metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[test]
fn the_kustomize_controller_reconciles_and_exports_metrics() {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("skipped: kubectl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_apiserver, kubeconfig) = common::start_apiserver(dir.path());
    let manifests = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["install", "--export"])
        .output()
        .expect("install --export");
    kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(&manifests.stdout),
    );

    let metrics_port = free_port();
    let _controller = Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args([
                "controller",
                "kustomize",
                "--enable-leader-election",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("controller starts"),
    );
    let kustomization = b"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 1m
  prune: true
  sourceRef: {kind: GitRepository, name: missing}
";
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(kustomization));
    let mut message = String::new();
    for _ in 0..100 {
        message = kubectl(
            &kubeconfig,
            &[
                "get",
                "kustomization",
                "apps",
                "-n",
                "flux-system",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
            ],
            None,
        );
        if !message.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        message,
        "Source 'GitRepository/flux-system/missing' not found"
    );
    let metrics = get_metrics(metrics_port).expect("metrics are served");
    assert!(
        metrics.contains("gotk_reconcile_condition{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\",status=\"False\",type=\"Ready\"} 1"),
        "{metrics}"
    );
    let holder = kubectl(
        &kubeconfig,
        &[
            "get",
            "lease",
            "kustomize-controller-leader-election",
            "-n",
            "flux-system",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    assert!(
        !holder.is_empty(),
        "the controller holds its leader election Lease"
    );
    assert!(metrics.contains("gotk_reconcile_duration_seconds_count{kind=\"Kustomization\",name=\"apps\",namespace=\"flux-system\"}"), "{metrics}");
}
