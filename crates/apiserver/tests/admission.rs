//! Validating admission plugins through kube-rs and kubectl: a denial is the request's Status
//! and stores nothing; warnings reach the client in `Warning` headers.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use ferroflux_apiserver::admission::{Operation, Request, Validator, Validators, Verdict};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Refuses ConfigMaps with a `forbidden` key; warns about those without labels.
struct Guard;

impl Validator for Guard {
    fn name(&self) -> &str {
        "configmap-guard.example.com"
    }
    fn validate(&self, r: &Request<'_>) -> Verdict {
        if r.kind != "ConfigMap" {
            return Verdict::Allow(Vec::new());
        }
        if r.object["data"]["forbidden"].is_string() {
            let verb = match r.operation {
                Operation::Create => "create",
                Operation::Update => "update",
            };
            return Verdict::Deny {
                code: 403,
                message: format!(
                    "{verb} of {}/{} carries a forbidden key",
                    r.namespace, r.name
                ),
            };
        }
        if r.object["metadata"]["labels"].is_null() {
            return Verdict::Allow(vec![format!("{} has no labels", r.name)]);
        }
        Verdict::Allow(Vec::new())
    }
}

#[tokio::test]
async fn validators_deny_without_storing_and_warn() {
    common::init_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ferroflux_apiserver::Config::new(dir.path());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.validators = Validators(vec![Arc::new(Guard)]);
    let server = ferroflux_apiserver::serve(config).await.expect("server");
    let client = common::client(&server.kubeconfig).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");

    let bad: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "bad"}, "data": {"forbidden": "x"}}))
            .expect("cm");
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                s.message,
                "admission webhook \"configmap-guard.example.com\" denied the request: create of default/bad carries a forbidden key"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        api.get_opt("bad").await.expect("get").is_none(),
        "nothing stored"
    );

    let good: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "good", "labels": {"a": "b"}}, "data": {"k": "v"}}),
    )
    .expect("cm");
    api.create(&PostParams::default(), &good)
        .await
        .expect("admitted");
    let mut changed = good.clone();
    changed.data = Some([("forbidden".to_string(), "y".to_string())].into());
    match api.replace("good", &PostParams::default(), &changed).await {
        Err(kube::Error::Api(s)) => assert!(
            s.message.contains("update of default/good"),
            "{}",
            s.message
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
    let live = api.get("good").await.expect("get");
    assert_eq!(live.data, good.data, "a denied update changes nothing");

    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let kc = server.kubeconfig_path.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(kc)
                .args(["create", "configmap", "plain", "--from-literal=a=b"])
                .output()
                .expect("kubectl runs")
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("Warning: plain has no labels"), "{stderr}");
    } else {
        ferroflux_testpeers::skip("kubectl not installed: the Warning header check");
    }
    server.shutdown().await;
}
