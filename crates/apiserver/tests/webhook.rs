//! ValidatingWebhookConfiguration against a real HTTPS webhook on loopback (its own CA in
//! `caBundle`): denials, warnings, and failurePolicy Fail/Ignore for an unreachable webhook.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::routing::post;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

async fn validate(Json(review): Json<Value>) -> Json<Value> {
    let req = &review["request"];
    let labels = &req["object"]["metadata"]["labels"];
    let response = if labels["deny"] == "true" {
        json!({"uid": req["uid"], "allowed": false,
            "status": {"code": 403, "message": format!("{} is labelled deny ({})", req["name"].as_str().unwrap_or(""), req["operation"].as_str().unwrap_or(""))}})
    } else {
        json!({"uid": req["uid"], "allowed": true, "warnings": ["seen by the webhook"]})
    };
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// Serves the webhook over HTTPS; returns its address and CA.
async fn webhook(dir: &std::path::Path) -> (SocketAddr, String) {
    std::fs::create_dir_all(dir).expect("pki dir");
    let pki = ferroflux_apiserver::tls::load_or_create(dir, &[]).expect("pki");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        ferroflux_apiserver::tls::server_config(&pki).expect("tls"),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route("/validate", post(validate));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let svc = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, pki.ca_pem)
}

fn webhook_config(name: &str, resource: &str, url: &str, ca: &str, policy: &str) -> DynamicObject {
    let ar = vwc_resource();
    let mut o = DynamicObject::new(name, &ar);
    o.data = json!({"webhooks": [{"name": format!("{resource}.example.com"),
        "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": policy, "timeoutSeconds": 5,
        "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": [resource]}]}]});
    o
}

fn vwc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
        ),
        "validatingwebhookconfigurations",
    )
}

fn api_error(r: Result<impl std::fmt::Debug, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn webhooks_deny_warn_and_follow_failure_policy() {
    common::init_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, ca) = webhook(&dir.path().join("webhook-pki")).await;
    let server = common::start(&dir.path().join("api"), None).await;
    let client = common::client(&server.kubeconfig).await;
    let vwcs: Api<DynamicObject> = Api::all_with(client.clone(), &vwc_resource());
    let url = format!("https://{addr}/validate");
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("https://{}/validate", l.local_addr().expect("addr"))
    };
    for cfg in [
        webhook_config("cm", "configmaps", &url, &ca, "Fail"),
        webhook_config("secrets", "secrets", &dead, &ca, "Fail"),
        webhook_config("services", "services", &dead, &ca, "Ignore"),
    ] {
        vwcs.create(&PostParams::default(), &cfg)
            .await
            .expect("webhook config");
    }

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let denied: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "bad", "labels": {"deny": "true"}}}))
            .expect("cm");
    let (code, msg) = api_error(cms.create(&PostParams::default(), &denied).await);
    assert_eq!(code, 403);
    assert_eq!(
        msg,
        r#"admission webhook "configmaps.example.com" denied the request: bad is labelled deny (CREATE)"#
    );
    assert!(
        cms.get_opt("bad").await.expect("get").is_none(),
        "nothing stored"
    );
    let ok: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "ok"}})).expect("cm");
    cms.create(&PostParams::default(), &ok)
        .await
        .expect("admitted by the webhook");
    let mut relabelled = cms.get("ok").await.expect("get");
    relabelled.metadata.labels = Some([("deny".to_string(), "true".to_string())].into());
    let (code, msg) = api_error(cms.replace("ok", &PostParams::default(), &relabelled).await);
    assert_eq!(code, 403);
    assert!(msg.ends_with("ok is labelled deny (UPDATE)"), "{msg}");
    assert!(
        cms.get("ok").await.expect("get").metadata.labels.is_none(),
        "update not stored"
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).expect("secret");
    let (code, msg) = api_error(secrets.create(&PostParams::default(), &s).await);
    assert_eq!(code, 500);
    assert!(
        msg.starts_with(r#"Internal error occurred: failed calling webhook "secrets.example.com": failed to call webhook: Post"#),
        "{msg}"
    );
    assert!(secrets.get_opt("s").await.expect("get").is_none());

    let services: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80}]}}))
    .expect("service");
    services
        .create(&PostParams::default(), &svc)
        .await
        .expect("failurePolicy Ignore admits");
    server.shutdown().await;
}
