//! Notification on `ferroflux up` (issue 18): the seed's Slack Provider and Alert deliver one
//! Slack-shaped message for a failing Kustomization per rate-limit window, to a listener on
//! loopback standing in for Slack; a GitHub push signed with the Receiver's token annotates
//! the GitRepository it names, and a bad signature is refused and annotates nothing; a GitHub
//! Provider gets the commit status of the revision a Kustomization applied.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::wait_for;

const ALERTING: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: slack-url, namespace: flux-system}
stringData: {address: ADDRESS}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {name: slack, namespace: flux-system}
spec: {type: slack, channel: platform, secretRef: {name: slack-url}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {name: tenant-failures, namespace: flux-system}
spec:
  providerRef: {name: slack}
  eventSeverity: error
  eventSources: [{kind: Kustomization, name: "*"}]
---
apiVersion: v1
kind: Secret
metadata: {name: webhook-token, namespace: flux-system}
stringData: {token: s3cret}
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata: {name: fleet, namespace: flux-system}
spec:
  type: github
  events: [push]
  secretRef: {name: webhook-token}
  resources: [{kind: GitRepository, name: flux-system}]
"#;

/// A Kustomization whose path is not in the fleet: it fails on every attempt, each time with
/// the same message.
const BROKEN: &str = r#"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: broken, namespace: flux-system}
spec:
  interval: 1m
  retryInterval: 2s
  path: ./does-not-exist
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
"#;

/// POSTs a GitHub push event to `url` signed with `token` (`X-Hub-Signature-256`, computed by
/// openssl); the HTTP status.
fn github_push(url: &str, token: &str) -> String {
    let body = r#"{"ref":"refs/heads/main"}"#;
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", token])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    openssl
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("writes");
    let digest = String::from_utf8(openssl.wait_with_output().expect("openssl").stdout)
        .expect("text")
        .rsplit(' ')
        .next()
        .expect("digest")
        .trim()
        .to_string();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args([
            "-H",
            "X-GitHub-Event: push",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-H", &format!("X-Hub-Signature-256: sha256={digest}")])
        .args(["--data-binary", body, url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_failing_kustomization_reaches_slack_once_and_a_signed_push_triggers_a_reconcile() {
    if !common::require("curl", &["--version"]) || !common::require("openssl", &["version"]) {
        return;
    }
    let Some(up) = common::start_up() else {
        return;
    };
    let (slack, messages) = common::http::receive_posts();
    let alerting = ALERTING.replace("ADDRESS", &slack);
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(alerting.as_bytes()),
    );
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(BROKEN.as_bytes()),
    );

    let first = messages
        .recv_timeout(Duration::from_secs(60))
        .expect("a Slack message for the failing Kustomization");
    let message: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(message["channel"], "platform", "{first}");
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["color"], "danger", "{first}");
    let text = attachment["text"].as_str().unwrap_or_default();
    assert!(text.contains("does-not-exist"), "{first}");
    // It keeps failing every two seconds with the same message: Flux's rate limit lets
    // nothing more through within five minutes.
    let repeated = messages.recv_timeout(Duration::from_secs(8));
    assert!(repeated.is_err(), "a repeat was sent: {repeated:?}");

    let receiver = wait_for(Duration::from_secs(30), || {
        let receiver = common::kubectl_json(
            &up.kubeconfig,
            &["get", "receiver", "fleet", "-n", "flux-system"],
        );
        receiver["status"]["webhookPath"]
            .as_str()
            .map(str::to_string)
    })
    .expect("the Receiver gets its webhook path");
    assert!(receiver.starts_with("/hook/"), "{receiver}");
    let url = format!("{}{receiver}", up.receivers);
    let requested = |kubeconfig: &Path| {
        let repo = common::kubectl_json(
            kubeconfig,
            &["get", "gitrepository", "flux-system", "-n", "flux-system"],
        );
        repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
            .as_str()
            .map(str::to_string)
    };
    // A wrong signature is refused (Flux answers 400 to every failed check) and annotates nothing.
    assert_eq!(github_push(&url, "wrong"), "400");
    assert_eq!(requested(&up.kubeconfig), None);
    assert_eq!(github_push(&url, "s3cret"), "200");
    let annotated = wait_for(Duration::from_secs(5), || requested(&up.kubeconfig));
    assert!(
        annotated.is_some(),
        "the GitRepository was not asked to reconcile"
    );
    commit_status_of_the_applied_revision(&up);
}

const COMMIT_STATUS: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: github-token, namespace: flux-system}
stringData: {token: t0ken}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {name: github-status, namespace: flux-system}
spec: {type: github, address: ADDRESS/org/fleet-infra, secretRef: {name: github-token}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {name: commit-status, namespace: flux-system}
spec:
  providerRef: {name: github-status}
  eventSeverity: info
  eventSources: [{kind: Kustomization, name: flux-system}]
"#;

/// A new commit of the fleet, applied by the `flux-system` Kustomization, gets a `success`
/// status on that commit at a GitHub (Enterprise-shaped) API on loopback.
fn commit_status_of_the_applied_revision(up: &common::Up) {
    let (tx, statuses) = std::sync::mpsc::channel();
    let github = common::http::serve(move |request| {
        if request.method == "POST" {
            let _ = tx.send((
                request.path,
                String::from_utf8_lossy(&request.body).into_owned(),
            ));
        }
        (201, b"{}".to_vec())
    });
    let alerting = COMMIT_STATUS.replace("ADDRESS", &github);
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(alerting.as_bytes()),
    );
    // The notification controller sees the Alert before the event it must match.
    std::thread::sleep(Duration::from_secs(2));
    let probe = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: status-probe, namespace: flux-system}\ndata: {step: one}\n";
    let sha = common::commit_to_fleet(up.dir.path(), "clusters/prod/status-probe.yaml", probe);
    common::kubectl_ok(
        &up.kubeconfig,
        &[
            "annotate",
            "--overwrite",
            "gitrepository",
            "flux-system",
            "-n",
            "flux-system",
            "reconcile.fluxcd.io/requestedAt=status-probe",
        ],
        None,
    );
    let path = format!("/api/v3/repos/org/fleet-infra/statuses/{sha}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Ok((at, body)) = statuses.recv_timeout(left) else {
            break;
        };
        if at == path {
            let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(status["state"], "success", "{body}");
            // Flux's key: kind/name/ and the start of the Provider's UID.
            let context = status["context"].as_str().unwrap_or_default();
            assert!(context.starts_with("kustomization/flux-system/"), "{body}");
            return;
        }
        seen.push(at);
    }
    let events = common::kubectl_ok(
        &up.kubeconfig,
        &[
            "get",
            "events",
            "-n",
            "flux-system",
            "--sort-by=.lastTimestamp",
        ],
        None,
    );
    panic!("no commit status for {sha} at {path}; posted: {seen:?}\n{events}");
}
