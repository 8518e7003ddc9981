//! The notification controller end to end against the API server (embedded or kube-apiserver,
//! see `common`), with a real HTTP listener on loopback standing in for the alerting service:
//! a failing Kustomization reaches a generic-hmac endpoint with a valid signature; the
//! severity filter, the exclusion list and the rate limit hold; a Receiver becomes Ready with
//! Flux's webhook path, a signed GitHub call annotates the GitRepository and a bad one is
//! refused.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use ferroflux_api::kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec};
use ferroflux_api::meta::{LocalObjectReference, RECONCILE_REQUEST_ANNOTATION};
use ferroflux_api::notification::{
    Alert, AlertSpec, CrossNamespaceObjectReference, Provider, ProviderSpec, Receiver, ReceiverSpec,
};
use ferroflux_api::source::{GitRepository, GitRepositorySpec};
use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::notification;
use ferroflux_testpeers::require;
use kube::api::Api;
use tokio::sync::mpsc;

use common::NS;

/// One call the stand-in service received.
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

/// A loopback HTTP service taking every POST; returns its URL and the calls it receives.
async fn alerting_service() -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Delivery { headers, body });
                "ok"
            }
        }),
    );
    (format!("{}/", common::serve(router).await), rx)
}

/// The notification controller's event and receiver endpoints on loopback.
struct Endpoints {
    events: String,
    receivers: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_notification(context: Arc<notification::Context>) -> Endpoints {
    let events = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receivers = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let urls = (
        format!("http://{}/", events.local_addr().expect("address")),
        format!("http://{}", receivers.local_addr().expect("address")),
    );
    let (stop, stopped) = common::shutdown();
    tokio::spawn(notification::serve(context, events, receivers, stopped));
    Endpoints {
        events: urls.0,
        receivers: urls.1,
        _stop: stop,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("http")
}

/// Waits for the next delivery (30 s at most).
async fn next(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a notification arrives")
        .expect("the service runs")
}

/// An event of the Kustomization `apps` as kustomize-controller posts it.
fn event(severity: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "involvedObject": {"kind": "Kustomization", "namespace": NS, "name": "apps",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": severity, "timestamp": "2026-12-07T16:00:00Z", "message": message,
        "reason": "ReconciliationFailed", "reportingController": "kustomize-controller"
    })
}

async fn post_event(endpoint: &str, event: &serde_json::Value) -> u16 {
    http()
        .post(endpoint)
        .json(event)
        .send()
        .await
        .expect("the event server answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_failing_kustomization_reaches_a_generic_hmac_endpoint_once_per_window() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let (service, mut deliveries) = alerting_service().await;
    common::create_secret(
        &client,
        "hmac-token",
        [("token".into(), "s3cret".into())].into(),
    )
    .await;
    let provider = Provider::new(
        "webhook",
        ProviderSpec {
            provider_type: "generic-hmac".into(),
            address: Some(service),
            secret_ref: Some(LocalObjectReference {
                name: "hmac-token".into(),
            }),
            ..ProviderSpec::default()
        },
    );
    common::create(&client, provider).await;
    let alert = Alert::new(
        "failures",
        AlertSpec {
            provider_ref: LocalObjectReference {
                name: "webhook".into(),
            },
            event_severity: Some("error".into()),
            event_sources: vec![CrossNamespaceObjectReference {
                kind: "Kustomization".into(),
                name: "*".into(),
                ..CrossNamespaceObjectReference::default()
            }],
            exclusion_list: Some(vec!["^maintenance".into()]),
            event_metadata: Some([("cluster".to_string(), "eu-1".to_string())].into()),
            ..AlertSpec::default()
        },
    );
    common::create(&client, alert).await;
    let endpoints = start_notification(Arc::new(notification::Context::new(client.clone()))).await;

    // kustomize-controller posts its events to the notification controller.
    let mut context = kustomization::Context::new(
        client.clone(),
        cluster.config.clone(),
        kustomization::Options::default(),
    );
    context.runtime.flags.events_addr = Some(endpoints.events.clone());
    let (_stop_kustomize, stopped) = common::shutdown();
    tokio::spawn(kustomization::run(Arc::new(context), stopped));
    let ks = Kustomization::new(
        "apps",
        KustomizationSpec {
            interval: "1m".into(),
            path: Some("./apps".into()),
            prune: true,
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "missing".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    common::create(&client, ks).await;

    let delivery = next(&mut deliveries).await;
    let signature = delivery
        .headers
        .get("X-Signature")
        .and_then(|v| v.to_str().ok())
        .expect("signed");
    ferroflux_notify::receiver::verify_signature(signature, &delivery.body, b"s3cret")
        .expect("the signature is the HMAC of the body with the token");
    assert_eq!(
        delivery
            .headers
            .get("gotk-component")
            .and_then(|v| v.to_str().ok()),
        Some("kustomize-controller")
    );
    let payload: serde_json::Value = serde_json::from_slice(&delivery.body).expect("json");
    assert_eq!(payload["involvedObject"]["kind"], "Kustomization");
    assert_eq!(payload["involvedObject"]["name"], "apps");
    assert_eq!(payload["severity"], "error");
    assert_eq!(payload["metadata"]["cluster"], "eu-1");
    let message = payload["message"].as_str().expect("message").to_string();
    assert!(message.contains("not found"), "{message}");

    // The same event again within the window is rate limited.
    let mut again = event("error", &message);
    again["reason"] = payload["reason"].clone();
    assert_eq!(post_event(&endpoints.events, &again).await, 429);
    // An info event is below the Alert's severity, an excluded message is dropped: both are
    // accepted and sent nowhere, so the next delivery is the marker that follows them.
    assert_eq!(
        post_event(&endpoints.events, &event("info", "applied")).await,
        202
    );
    assert_eq!(
        post_event(&endpoints.events, &event("error", "maintenance window")).await,
        202
    );
    assert_eq!(
        post_event(&endpoints.events, &event("error", "marker")).await,
        202
    );
    let marker: serde_json::Value =
        serde_json::from_slice(&next(&mut deliveries).await.body).expect("json");
    assert_eq!(marker["message"], "marker");
    assert_eq!(
        http()
            .post(&endpoints.events)
            .body("{")
            .send()
            .await
            .expect("answer")
            .status(),
        400
    );
    drop(cluster);
}

#[tokio::test]
async fn a_signed_github_call_annotates_the_gitrepository_and_a_bad_one_is_refused() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    common::create_secret(
        &client,
        "webhook-token",
        [("token".into(), "t0ken".into())].into(),
    )
    .await;
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let repo = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: "https://example.invalid/fleet.git".into(),
            interval: "1h".into(),
            ..GitRepositorySpec::default()
        },
    );
    common::create(&client, repo).await;
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), NS);
    let receiver = Receiver::new(
        "github",
        ReceiverSpec {
            receiver_type: "github".into(),
            events: Some(vec!["push".into()]),
            resources: vec![CrossNamespaceObjectReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..CrossNamespaceObjectReference::default()
            }],
            secret_ref: Some(LocalObjectReference {
                name: "webhook-token".into(),
            }),
            ..ReceiverSpec::default()
        },
    );
    common::create(&client, receiver).await;
    let context = Arc::new(notification::Context::new(client.clone()));
    let (_stop_receivers, stopped) = common::shutdown();
    tokio::spawn(notification::run(context.clone(), stopped));
    let endpoints = start_notification(context).await;

    let path = ferroflux_notify::receiver::webhook_path("t0ken", "github", NS);
    let ready = common::wait_until(&receivers, "github", "Ready with its path", |r| {
        common::ready_is(r, "True")
            && r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path.as_str())
    })
    .await;
    assert!(ready.status.is_some());

    let body = br#"{"ref":"refs/heads/main"}"#;
    let url = format!("{}{path}", endpoints.receivers);
    let call = |signature: String, event: &'static str| {
        http()
            .post(&url)
            .header("X-Hub-Signature-256", signature)
            .header("X-GitHub-Event", event)
            .header("Content-Type", "application/json")
            .body(&body[..])
            .send()
    };
    let requested = |repo: &GitRepository| {
        repo.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION).cloned())
    };
    let bad = format!(
        "sha256={}",
        ferroflux_notify::receiver::hmac_sha256_hex(b"wrong", body)
    );
    let refused = call(bad, "push").await.expect("answer");
    assert_eq!(
        refused.status(),
        401,
        "a bad signature does not authenticate (issue 18: 401, where Flux answers 400)"
    );
    let unsigned = http()
        .post(&url)
        .header("X-GitHub-Event", "push")
        .body(&body[..])
        .send()
        .await
        .expect("answer");
    assert_eq!(unsigned.status(), 401, "a missing signature is 401 too");
    let unknown = http()
        .post(format!("{}/hook/{}", endpoints.receivers, "0".repeat(64)))
        .body(&body[..])
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404, "a path no Receiver has");
    let good = format!(
        "sha256={}",
        ferroflux_notify::receiver::hmac_sha256_hex(b"t0ken", body)
    );
    let ping = call(good.clone(), "ping").await.expect("answer");
    assert_eq!(
        ping.status(),
        400,
        "an event outside spec.events is refused as malformed, not unauthenticated"
    );
    assert_eq!(
        requested(&repos.get("fleet").await.expect("reads")),
        None,
        "refused calls annotate nothing"
    );
    let accepted = call(good, "push").await.expect("answer");
    assert_eq!(accepted.status(), 200);
    let annotated = repos.get("fleet").await.expect("reads");
    assert!(requested(&annotated).is_some_and(|v| v.ends_with(" +0000 UTC")));
    let unknown = http()
        .post(format!("{}/hook/0000", endpoints.receivers))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status(), 404);
    drop(cluster);
}

/// Waits for a Warning event of `reason` about the Alert `alert` and returns its note.
async fn alert_warning(client: &kube::Client, alert: &str, reason: &str) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    for _ in 0..300 {
        let found = events
            .list(&Default::default())
            .await
            .expect("lists events")
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(alert)
            });
        if let Some(event) = found {
            assert_eq!(event.type_.as_deref(), Some("Warning"));
            return event.note.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {reason} event about the Alert {alert}");
}

#[tokio::test]
async fn a_provider_that_cannot_send_and_a_cross_namespace_source_are_reported_on_the_alert() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let (service, mut deliveries) = alerting_service().await;
    // Workload identity (spec.serviceAccountName) is not built: the Provider cannot send.
    for (name, kind, account) in [("otel", "otel", Some("tracer")), ("hook", "generic", None)] {
        let provider = Provider::new(
            name,
            ProviderSpec {
                provider_type: kind.into(),
                address: Some(service.clone()),
                service_account_name: account.map(str::to_string),
                ..ProviderSpec::default()
            },
        );
        common::create(&client, provider).await;
    }
    for (name, provider, source_namespace) in [
        ("to-otel", "otel", None),
        ("elsewhere", "hook", Some("team-b")),
    ] {
        let alert = Alert::new(
            name,
            AlertSpec {
                provider_ref: LocalObjectReference {
                    name: provider.into(),
                },
                event_sources: vec![CrossNamespaceObjectReference {
                    kind: "Kustomization".into(),
                    name: "*".into(),
                    namespace: source_namespace.map(str::to_string),
                    ..CrossNamespaceObjectReference::default()
                }],
                ..AlertSpec::default()
            },
        );
        common::create(&client, alert).await;
    }
    let mut context = notification::Context::new(client.clone());
    context.no_cross_namespace_refs = true;
    let endpoints = start_notification(Arc::new(context)).await;

    assert_eq!(
        post_event(&endpoints.events, &event("error", "failed")).await,
        202
    );
    let note = alert_warning(&client, "to-otel", "NotificationDispatchFailed").await;
    assert!(
        note.contains("enable the ObjectLevelWorkloadIdentity feature gate"),
        "{note}"
    );
    let mut foreign = event("error", "failed in team-b");
    foreign["involvedObject"]["namespace"] = "team-b".into();
    assert_eq!(post_event(&endpoints.events, &foreign).await, 202);
    let note = alert_warning(&client, "elsewhere", "NotificationDispatchFailed").await;
    assert!(
        note.contains("cross-namespace references have been blocked"),
        "{note}"
    );
    assert!(
        deliveries.try_recv().is_err(),
        "nothing was sent for a refused provider or a blocked namespace"
    );
    drop(cluster);
}

#[tokio::test]
async fn a_slack_provider_receives_a_slack_shaped_message_with_the_alert_summary() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let (service, mut deliveries) = alerting_service().await;
    common::create_secret(
        &client,
        "slack-url",
        [
            ("address".into(), service),
            ("token".into(), "xoxb-test".into()),
        ]
        .into(),
    )
    .await;
    let provider = Provider::new(
        "slack",
        ProviderSpec {
            provider_type: "slack".into(),
            channel: Some("alerts".into()),
            secret_ref: Some(LocalObjectReference {
                name: "slack-url".into(),
            }),
            ..ProviderSpec::default()
        },
    );
    common::create(&client, provider).await;
    let alert = Alert::new(
        "tenant-failures",
        AlertSpec {
            provider_ref: LocalObjectReference {
                name: "slack".into(),
            },
            event_severity: Some("error".into()),
            event_sources: vec![CrossNamespaceObjectReference {
                kind: "Kustomization".into(),
                name: "apps".into(),
                ..CrossNamespaceObjectReference::default()
            }],
            summary: Some("tenant apps".into()),
            ..AlertSpec::default()
        },
    );
    common::create(&client, alert).await;
    let endpoints = start_notification(Arc::new(notification::Context::new(client.clone()))).await;
    let mut failed = event("error", "Deployment/apps/web dry-run failed");
    failed["metadata"] = serde_json::json!({
        "kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123",
        "kustomize.toolkit.fluxcd.io/digest": "sha256:dropped",
    });
    assert_eq!(post_event(&endpoints.events, &failed).await, 202);
    let delivery = next(&mut deliveries).await;
    assert_eq!(
        delivery
            .headers
            .get("Authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer xoxb-test")
    );
    let body: serde_json::Value = serde_json::from_slice(&delivery.body).expect("json");
    assert_eq!(body["channel"], "alerts");
    assert_eq!(body["username"], "kustomize-controller");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["color"], "danger");
    assert_eq!(
        attachment["author_name"],
        format!("kustomization/apps.{NS}")
    );
    assert_eq!(attachment["text"], "Deployment/apps/web dry-run failed");
    assert_eq!(
        attachment["fields"],
        serde_json::json!([
            {"title": "revision", "value": "main@sha1:0123", "short": false},
            {"title": "summary", "value": "tenant apps", "short": false}
        ])
    );
    drop(cluster);
}
