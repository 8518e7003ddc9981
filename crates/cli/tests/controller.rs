//! `ferroflux controller kustomize|source` against `ferroflux apiserver`, as the installed
//! Deployments run them: they reconcile what `kubectl` creates and serve Flux's metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
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

/// Installs the CRDs on `kubeconfig`'s server and starts `ferroflux controller ARGS...`
/// serving metrics on `metrics_port`.
fn start_controller(kubeconfig: &Path, args: &[&str], metrics_port: u16) -> Killed {
    let manifests = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(["install", "--export"])
        .output()
        .expect("install --export");
    kubectl(
        kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(&manifests.stdout),
    );
    Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .arg("controller")
            .args(args)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("controller starts"),
    )
}

/// The Ready message of `kind/name` in flux-system, once there is one.
fn ready_message(kubeconfig: &Path, kind: &str, name: &str) -> String {
    let mut message = String::new();
    for _ in 0..150 {
        message = kubectl(
            kubeconfig,
            &[
                "get",
                kind,
                name,
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
    message
}

#[test]
fn the_kustomize_controller_reconciles_and_exports_metrics() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_apiserver, kubeconfig) = common::start_apiserver(dir.path());
    let metrics_port = free_port();
    let _controller = start_controller(
        &kubeconfig,
        &["kustomize", "--enable-leader-election"],
        metrics_port,
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
    let message = ready_message(&kubeconfig, "kustomization", "apps");
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

#[test]
fn the_source_controller_exports_metrics_of_its_kinds() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_apiserver, kubeconfig) = common::start_apiserver(dir.path());
    let metrics_port = free_port();
    let storage = dir.path().join("artifacts");
    let storage_addr = format!("127.0.0.1:{}", free_port());
    let _controller = start_controller(
        &kubeconfig,
        &[
            "source",
            "--storage-path",
            storage.to_str().expect("UTF-8 path"),
            "--storage-addr",
            &storage_addr,
            "--storage-adv-addr",
            &storage_addr,
            "--concurrent=2",
            "--watch-label-selector=sharding.fluxcd.io/key=shard1",
        ],
        metrics_port,
    );
    // Nothing listens on port 1: the fetch fails at once. The one of another shard comes
    // first and is never reconciled by this one.
    let repository = |name: &str, shard: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: {name}
  namespace: flux-system
  labels: {{sharding.fluxcd.io/key: {shard}}}
spec:
  interval: 1m
  url: http://127.0.0.1:1/fleet.git
"
        )
    };
    let other = repository("other-shard", "shard2");
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(other.as_bytes()));
    let own = repository("unreachable", "shard1");
    kubectl(&kubeconfig, &["apply", "-f", "-"], Some(own.as_bytes()));
    let message = ready_message(&kubeconfig, "gitrepository", "unreachable");
    assert!(!message.is_empty(), "the GitRepository is reconciled");
    std::thread::sleep(Duration::from_secs(1));
    let status = kubectl(
        &kubeconfig,
        &[
            "get",
            "gitrepository",
            "other-shard",
            "-n",
            "flux-system",
            "-o",
            "jsonpath={.status.conditions}",
        ],
        None,
    );
    // (The CRD defaults `status.observedGeneration` to -1 on create: conditions tell.)
    assert_eq!(status, "", "another shard's GitRepository was reconciled");
    let metrics = get_metrics(metrics_port).expect("metrics are served");
    assert!(
        metrics.contains("gotk_reconcile_condition{kind=\"GitRepository\",name=\"unreachable\",namespace=\"flux-system\",status=\"False\",type=\"Ready\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gotk_reconcile_duration_seconds_count{kind=\"GitRepository\",name=\"unreachable\",namespace=\"flux-system\"}"),
        "{metrics}"
    );
}
