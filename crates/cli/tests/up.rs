//! `ferroflux up` end to end: the bundled example fleet is bootstrapped from a local Git
//! server, every Kustomization becomes Ready, the tenants' apps land in their namespaces, and a
//! second start on the same data dir rewrites nothing.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> Value {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("kubectl prints JSON")
}

/// name -> resourceVersion of every object of these kinds.
fn versions(kubeconfig: &std::path::Path) -> Vec<(String, String)> {
    let list = kubectl(
        kubeconfig,
        &[
            "get",
            "namespaces,serviceaccounts,rolebindings,deployments,services,configmaps,gitrepositories,kustomizations,customresourcedefinitions",
            "-A",
        ],
    );
    let mut out: Vec<(String, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let meta = &item["metadata"];
            (
                format!(
                    "{}/{}/{}",
                    item["kind"],
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or("")
                ),
                meta["resourceVersion"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_example_fleet_becomes_ready_and_a_restart_rewrites_nothing() {
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!(
            "skipped: git is not installed (ferroflux up serves the fleet with git http-backend)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", common::free_port());
    // The same addresses on both runs: the notification controller's record names its own.
    let receivers = format!("--receiver-listen=127.0.0.1:{}", common::free_port());
    let up = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["up", &receivers, "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", &listen])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferroflux up starts")
    };
    let first = up(&["--exit-when-ready", "--timeout", "90s"])
        .wait_with_output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "ferroflux up failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("✔ all Kustomizations are Ready"),
        "{stdout}"
    );
    for name in ["flux-system", "tenants", "team-a", "team-b"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("\t{name}")) || l.contains(name)),
            "{name} missing:\n{stdout}"
        );
    }

    if !common::require_kubectl() {
        return;
    }
    let kubeconfig = data_dir.join("apiserver/kubeconfig");
    // The API server is down between runs; start it again without controllers noise by a
    // second `up`, which must leave every object as it was.
    let mut second = up(&[]);
    let mut before = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(200));
        if Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "ns"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            before = Some(versions(&kubeconfig));
            break;
        }
    }
    let before = before.expect("the second run serves the API");
    // Only the kinds of the controllers `up` runs are served (Canary with the canary
    // controller, and the HTTPRoute it routes with).
    let crds = kubectl(&kubeconfig, &["get", "customresourcedefinitions"]);
    let names: Vec<&str> = crds["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|crd| crd["metadata"]["name"].as_str())
        .collect();
    for served in [
        "artifactgenerators.source.extensions.fluxcd.io",
        "helmreleases.helm.toolkit.fluxcd.io",
        "alerts.notification.toolkit.fluxcd.io",
        "receivers.notification.toolkit.fluxcd.io",
        "canaries.flagger.app",
        "httproutes.gateway.networking.k8s.io",
    ] {
        assert!(names.contains(&served), "{served} missing: {names:?}");
    }
    // The in-process controllers log one JSON line per reconcile to the data dir, which
    // `ferroflux logs` prints in flux's shape.
    let logs = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .arg("logs")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["-A", "--kind", "Kustomization", "--name", "flux-system"])
        .output()
        .expect("ferroflux logs runs");
    let printed = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.status.success()
            && printed.lines().any(|l| l
                .contains(" info Kustomization/flux-system.flux-system - ")
                && l.contains("Reconciliation finished in")),
        "ferroflux logs: {printed}{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    // Kyverno's kinds are served (admission runs inside the API server), but no
    // `policy-webhook` Deployment is recorded: no such process runs.
    for served in ["clusterpolicies.kyverno.io", "policies.kyverno.io"] {
        assert!(names.contains(&served), "{served} missing: {names:?}");
    }
    let webhook = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "deployment", "policy-webhook", "-n", "flux-system"])
        .output()
        .expect("kubectl runs");
    assert!(
        String::from_utf8_lossy(&webhook.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&webhook.stderr)
    );
    for tenant in ["team-a", "team-b"] {
        let deployment = kubectl(&kubeconfig, &["get", "deployment", "podinfo", "-n", tenant]);
        assert_eq!(
            deployment["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            tenant
        );
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"];
        assert_eq!(env.as_str(), Some(format!("hello from {tenant}").as_str()));
    }
    // The controllers' events read as client-go's recorder writes them: `kubectl get events
    // --sort-by=.lastTimestamp` orders them, each with its controller as the source.
    let events = kubectl(
        &kubeconfig,
        &[
            "get",
            "events",
            "-n",
            "flux-system",
            "--sort-by=.lastTimestamp",
        ],
    );
    let items = events["items"].as_array().expect("items");
    let stamps: Vec<&str> = items
        .iter()
        .map(|e| e["lastTimestamp"].as_str().expect("lastTimestamp"))
        .collect();
    assert!(!stamps.is_empty(), "no events recorded");
    assert!(stamps.is_sorted(), "{stamps:?}");
    assert!(
        items
            .iter()
            .any(|e| e["source"]["component"] == "kustomize-controller"),
        "{events:#}"
    );
    // Let the controllers run a full reconciliation of everything on the second start.
    std::thread::sleep(Duration::from_secs(8));
    let after = versions(&kubeconfig);
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(second.id().to_string())
        .status();
    let _ = second.wait();
    assert_eq!(before, after, "a second run rewrote objects");
}

/// namespace/name -> (Ready status, Ready message) of every Kustomization.
fn readiness(kubeconfig: &std::path::Path) -> Option<Vec<(String, String, String)>> {
    let output = common::kubectl(
        kubeconfig,
        &["get", "kustomizations", "-A", "-o", "json"],
        None,
    );
    if !output.status.success() {
        return None;
    }
    let list: Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(
        list["items"]
            .as_array()?
            .iter()
            .map(|ks| {
                let (status, message) = common::ready_condition(ks);
                (
                    format!(
                        "{}/{}",
                        ks["metadata"]["namespace"].as_str().unwrap_or_default(),
                        ks["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    status,
                    message,
                )
            })
            .collect(),
    )
}

#[test]
fn under_lockdown_the_platform_is_ready_and_a_tenant_without_an_account_applies_nothing() {
    if !common::require("git", &["--version"]) || !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = dir.path().join("fleet");
    common::copy_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fleet-infra"),
        &fleet,
    );
    // team-b forgets its serviceAccountName: under lockdown its Kustomization impersonates
    // team-b's `default` ServiceAccount, which may do nothing.
    let sync = fleet.join("tenants/base/team-b/sync.yaml");
    let text = std::fs::read_to_string(&sync).expect("read sync.yaml");
    assert!(text.contains("  serviceAccountName: team-b\n"), "{text}");
    std::fs::write(&sync, text.replace("  serviceAccountName: team-b\n", "")).expect("write");

    let data_dir = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("up.log")).expect("log file");
    let _up = common::Killed(
        Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["up", "--receiver-listen=127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
            .arg("--fleet")
            .arg(&fleet)
            .args([
                "--default-service-account=default",
                "--no-cross-namespace-refs",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ferroflux up starts"),
    );
    let kubeconfig = data_dir.join("apiserver/kubeconfig");
    let wanted = |all: &[(String, String, String)], name: &str, status: &str| {
        all.iter().any(|(n, s, _)| n == name && s == status)
    };
    let mut last = Vec::new();
    for _ in 0..360 {
        std::thread::sleep(Duration::from_millis(500));
        let Some(all) = readiness(&kubeconfig) else {
            continue;
        };
        last = all;
        if wanted(&last, "flux-system/flux-system", "True")
            && wanted(&last, "flux-system/tenants", "True")
            && wanted(&last, "team-a/team-a", "True")
            && wanted(&last, "team-b/team-b", "False")
        {
            break;
        }
    }
    let log = std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default();
    for (name, status) in [
        ("flux-system/flux-system", "True"),
        ("flux-system/tenants", "True"),
        ("team-a/team-a", "True"),
        ("team-b/team-b", "False"),
    ] {
        assert!(
            wanted(&last, name, status),
            "{name} is not Ready={status}: {last:#?}\n{log}"
        );
    }
    let (_, _, message) = last
        .iter()
        .find(|(n, _, _)| n == "team-b/team-b")
        .expect("team-b is listed");
    assert!(
        message.contains("system:serviceaccount:team-b:default"),
        "{message}"
    );
    let team_a = common::kubectl(
        &kubeconfig,
        &["get", "deployment", "podinfo", "-n", "team-a"],
        None,
    );
    assert!(team_a.status.success(), "team-a's app is applied");
    let team_b = common::kubectl(
        &kubeconfig,
        &["get", "deployments,services", "-n", "team-b", "-o", "name"],
        None,
    );
    assert!(team_b.status.success());
    assert_eq!(
        String::from_utf8_lossy(&team_b.stdout),
        "",
        "team-b's app was applied"
    );
    controllers_are_recorded_with_their_flags(&kubeconfig);
}

/// Each in-process controller is a Deployment in flux-system, Available, whose container args
/// are the flags it runs with (the lockdown flags where Flux's controller has them).
fn controllers_are_recorded_with_their_flags(kubeconfig: &std::path::Path) {
    let args = |name: &str| {
        let jsonpath = common::kubectl_ok(
            kubeconfig,
            &[
                "get",
                "deploy",
                name,
                "-n",
                "flux-system",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].args}",
            ],
            None,
        );
        serde_json::from_str::<Vec<String>>(&jsonpath).expect("args are a JSON list")
    };
    for (name, command, no_cross, default_sa) in [
        ("source-controller", "source", false, false),
        ("source-watcher", "source-watcher", true, false),
        ("kustomize-controller", "kustomize", true, true),
        ("image-reflector-controller", "image-reflector", true, false),
        (
            "image-automation-controller",
            "image-automation",
            true,
            false,
        ),
    ] {
        let flags = args(name);
        assert_eq!(
            flags.first().map(String::as_str),
            Some(command),
            "{flags:?}"
        );
        let has = |flag: &str| flags.iter().any(|f| f == flag);
        assert_eq!(
            has("--no-cross-namespace-refs=true"),
            no_cross,
            "{name}: {flags:?}"
        );
        assert_eq!(
            has("--default-service-account=default"),
            default_sa,
            "{name}: {flags:?}"
        );
        let deployment = kubectl(kubeconfig, &["get", "deploy", name, "-n", "flux-system"]);
        let labels = &deployment["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/component"], name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "manager");
        assert_eq!(
            container["image"],
            concat!("ghcr.io/ferroflux/ferroflux:v", env!("CARGO_PKG_VERSION"))
        );
        let available = deployment["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
            .map(|c| c["status"].clone());
        assert_eq!(
            available,
            Some(Value::from("True")),
            "{name} is not Available"
        );
    }
}
