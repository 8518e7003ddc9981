//! Notification on `ferroflux up` (issue 18), with listeners on loopback standing in for the
//! services: the seed's Slack Provider and Alert deliver one Slack-shaped message for a failing
//! Kustomization and one for a failing HelmRelease per rate-limit window, however often they
//! fail; a generic-hmac Provider's endpoint verifies the `X-Signature` of what it gets; a GitHub
//! push signed with the Receiver's token makes the GitRepository it names reconcile, and a bad
//! signature is answered 401 and annotates nothing; a GitHub Provider gets the commit status of
//! the revision a Kustomization applied.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::process::wait_for;

/// The seed's Provider `slack` and Alert `tenant-failures` (`api/tests/fixtures/seed.yaml`),
/// the Slack address in their Secret; a generic-hmac Provider for the broken Kustomization;
/// a GitHub Receiver for the fleet.
const ALERTING: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: slack-url, namespace: flux-system}
stringData: {address: ADDRESS}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {name: slack, namespace: flux-system}
spec: {type: slack, channel: platform-alerts, secretRef: {name: slack-url}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {name: tenant-failures, namespace: flux-system}
spec:
  providerRef: {name: slack}
  eventSeverity: error
  eventSources: [{kind: Kustomization, name: '*'}, {kind: HelmRelease, name: '*'}]
---
apiVersion: v1
kind: Secret
metadata: {name: hmac-hook, namespace: flux-system}
stringData: {address: HMAC_ADDRESS, token: hmac-s3cret}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata: {name: signed-hook, namespace: flux-system}
spec: {type: generic-hmac, secretRef: {name: hmac-hook}}
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata: {name: signed-failures, namespace: flux-system}
spec:
  providerRef: {name: signed-hook}
  eventSeverity: error
  eventSources: [{kind: Kustomization, name: broken}]
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

/// A Kustomization whose path is not in the fleet and a HelmRelease whose chart source does
/// not exist: each fails on every attempt, each time with the same message.
const BROKEN: &str = r#"apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: broken, namespace: flux-system}
spec:
  interval: 1m
  retryInterval: 2s
  path: ./does-not-exist
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: chartless, namespace: flux-system}
spec:
  interval: 1m
  chartRef: {kind: OCIRepository, name: missing-chart}
"#;

/// One request a listener got: its headers (names in lower case) and body.
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A listener on loopback answering 200 to every POST and handing each request over with its
/// headers (a Slack webhook, a generic-hmac endpoint): its `http://127.0.0.1:PORT/`.
fn listen() -> (String, mpsc::Receiver<Received>) {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", socket.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in socket.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                }
            }
            let length = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let body = String::from_utf8_lossy(&body).into_owned();
            let _ = tx.send(Received { headers, body });
        }
    });
    (url, rx)
}

/// The hex HMAC-SHA256 of `data` under `key`, computed by openssl.
fn hmac_sha256(key: &str, data: &[u8]) -> String {
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    openssl
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("writes");
    String::from_utf8(openssl.wait_with_output().expect("openssl").stdout)
        .expect("text")
        .rsplit(' ')
        .next()
        .expect("digest")
        .trim()
        .to_string()
}

const PUSH: &str = r#"{"ref":"refs/heads/main"}"#;

/// POSTs a GitHub `event` to `url` with `X-Hub-Signature-256` (none when `signature` is
/// `None`); the HTTP status.
fn github_call(url: &str, event: &str, signature: Option<String>) -> String {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("X-GitHub-Event: {event}")])
        .args(["-H", "Content-Type: application/json"]);
    if let Some(signature) = signature {
        curl.args(["-H", &format!("X-Hub-Signature-256: {signature}")]);
    }
    let out = curl
        .args(["--data-binary", PUSH, url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A push signed with `token`, as GitHub signs it.
fn github_push(url: &str, token: &str) -> String {
    let signature = format!("sha256={}", hmac_sha256(token, PUSH.as_bytes()));
    github_call(url, "push", Some(signature))
}

/// Checks `message` against the shape Slack documents for an incoming webhook with a legacy
/// attachment (docs.slack.dev, "Legacy: secondary message attachments"): `channel`,
/// `username`, and one attachment with a plain-text `fallback`, a `color` of `good`, `warning`,
/// `danger` or hex, `author_name`, `text`, `mrkdwn_in` naming attachment fields and `fields`
/// of `title`/`value`/`short`. The attachment's `author_name`.
fn slack_shaped(message: &Received) -> String {
    let shown = &message.body;
    assert_eq!(
        message.header("content-type"),
        Some("application/json"),
        "{shown}"
    );
    let body = message.json();
    assert_eq!(body["channel"], "platform-alerts", "{shown}");
    assert!(body["username"].is_string(), "{shown}");
    let attachments = body["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{shown}");
    let attachment = &attachments[0];
    assert_eq!(attachment["color"], "danger", "{shown}");
    for field in ["fallback", "author_name", "text"] {
        assert!(
            attachment[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {shown}"
        );
    }
    let mrkdwn = attachment["mrkdwn_in"].as_array().expect("mrkdwn_in");
    assert!(
        mrkdwn
            .iter()
            .all(|f| ["pretext", "text", "fields"].contains(&f.as_str().unwrap_or_default())),
        "{shown}"
    );
    for field in attachment["fields"].as_array().expect("fields") {
        assert!(
            field["title"].is_string() && field["value"].is_string(),
            "{shown}"
        );
        assert!(field["short"].is_boolean(), "{shown}");
    }
    attachment["author_name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Asks `kind/name` to reconcile with `token` and waits until it has handled the request and
/// is not Ready: one more failing reconcile.
fn fail_once_more(up: &common::Up, kind: &str, name: &str, token: &str) {
    let request = format!("reconcile.fluxcd.io/requestedAt={token}");
    let args = [
        "annotate",
        "--overwrite",
        kind,
        name,
        "-n",
        "flux-system",
        &request,
    ];
    common::kubectl_ok(&up.kubeconfig, &args, None);
    let handled = wait_for(Duration::from_secs(60), || {
        let object =
            common::kubectl_json(&up.kubeconfig, &["get", kind, name, "-n", "flux-system"]);
        (object["status"]["lastHandledReconcileAt"] == token
            && common::ready_condition(&object).0 == "False")
            .then_some(())
    });
    assert!(
        handled.is_some(),
        "{kind}/{name} did not fail again for {token}"
    );
}

#[test]
fn failures_reach_slack_once_per_window_and_a_signed_push_triggers_a_reconcile() {
    if !common::require("curl", &["--version"]) || !common::require("openssl", &["version"]) {
        return;
    }
    let Some(up) = common::start_up() else {
        return;
    };
    // The fleet is applied first: before that, every Kustomization fails for a source without
    // an artifact, a message of its own.
    let fleet_ready = wait_for(Duration::from_secs(120), || {
        let fleet = common::kubectl_json(
            &up.kubeconfig,
            &["get", "kustomization", "flux-system", "-n", "flux-system"],
        );
        (common::ready_condition(&fleet).0 == "True").then_some(())
    });
    assert!(fleet_ready.is_some(), "the fleet was not applied");
    let (slack, messages) = listen();
    let (hmac, signed) = listen();
    let alerting = ALERTING
        .replace("HMAC_ADDRESS", &hmac)
        .replace("ADDRESS", &slack);
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

    // One message per failing object, whichever comes first.
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        let message = messages
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| panic!("Slack messages for both failures; got {seen:?}"));
        let author = slack_shaped(&message);
        let text = message.json()["attachments"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            seen.insert(author.clone(), text).is_none(),
            "{author} twice"
        );
    }
    let kustomization = &seen["kustomization/broken.flux-system"];
    assert!(kustomization.contains("does-not-exist"), "{seen:?}");
    let release = &seen["helmrelease/chartless.flux-system"];
    assert!(release.contains("missing-chart"), "{seen:?}");

    // The generic-hmac endpoint got the event, signed with the Provider's token.
    let event = signed
        .recv_timeout(Duration::from_secs(30))
        .expect("the generic-hmac Provider posts the event");
    let signature = format!(
        "sha256={}",
        hmac_sha256("hmac-s3cret", event.body.as_bytes())
    );
    assert_eq!(event.header("x-signature"), Some(signature.as_str()));
    assert_eq!(event.header("gotk-component"), Some("kustomize-controller"));
    let payload = event.json();
    assert_eq!(
        payload["involvedObject"]["kind"], "Kustomization",
        "{}",
        event.body
    );
    assert_eq!(
        payload["involvedObject"]["name"], "broken",
        "{}",
        event.body
    );
    assert_eq!(payload["severity"], "error", "{}", event.body);

    // Two more failing reconciles of each, with the same messages, inside Flux's five-minute
    // window: Slack and the signed endpoint get nothing more.
    for token in ["again-1", "again-2"] {
        fail_once_more(&up, "kustomization", "broken", token);
        fail_once_more(&up, "helmrelease", "chartless", token);
    }
    let repeated = messages.recv_timeout(Duration::from_secs(5));
    assert!(
        repeated.is_err(),
        "a repeat was sent: {:?}",
        repeated.map(|m| m.body)
    );
    assert!(signed.try_recv().is_err(), "a repeat was signed and sent");

    signed_push_reconciles_the_fleet(&up);
    commit_status_of_the_applied_revision(&up);
}

/// A push with a wrong or no signature is answered 401 and annotates nothing, an event outside
/// `spec.events` 400; a push signed with the token annotates the GitRepository, which then
/// reconciles (its `lastHandledReconcileAt` becomes the request).
fn signed_push_reconciles_the_fleet(up: &common::Up) {
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
    let repository = |kubeconfig: &Path| {
        common::kubectl_json(
            kubeconfig,
            &["get", "gitrepository", "flux-system", "-n", "flux-system"],
        )
    };
    let requested = |repo: &serde_json::Value| {
        repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(github_push(&url, "wrong"), "401", "a wrong signature");
    assert_eq!(github_call(&url, "push", None), "401", "no signature");
    let ping = format!("sha256={}", hmac_sha256("s3cret", PUSH.as_bytes()));
    assert_eq!(
        github_call(&url, "ping", Some(ping)),
        "400",
        "an event not in spec.events"
    );
    let unknown = format!("{}/hook/{}", up.receivers, "0".repeat(64));
    assert_eq!(
        github_push(&unknown, "s3cret"),
        "404",
        "a path no Receiver has"
    );
    assert_eq!(
        requested(&repository(&up.kubeconfig)),
        None,
        "refused calls annotate nothing"
    );

    assert_eq!(github_push(&url, "s3cret"), "200");
    let annotated = requested(&repository(&up.kubeconfig)).expect("the push annotates the fleet");
    let handled = wait_for(Duration::from_secs(30), || {
        let repo = repository(&up.kubeconfig);
        (repo["status"]["lastHandledReconcileAt"] == annotated.as_str()).then_some(())
    });
    assert!(
        handled.is_some(),
        "the GitRepository did not reconcile for {annotated}"
    );
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
