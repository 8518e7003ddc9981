//! The policy cache and the HTTPS webhook against a real API server (ferroflux's, on loopback):
//! a policy stored before the cache starts gets its `Ready` status, and an AdmissionReview sent
//! over TLS (trusting only the webhook's CA) is answered as Kyverno answers it.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_admission::{PolicyCache, webhook};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

/// The seed's source allowlist.
fn policy() -> Value {
    serde_json::from_str(include_str!("fixtures/restrict-flux-source-urls.json"))
        .expect("fixture is JSON")
}

fn review(url: &str) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "3f1c", "operation": "CREATE", "namespace": "team-a",
        "kind": {"group": "source.toolkit.fluxcd.io", "version": "v1", "kind": "OCIRepository"},
        "userInfo": {"username": "system:serviceaccount:team-a:team-a"},
        "object": {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "x", "namespace": "team-a"},
            "spec": {"url": url, "interval": "1m"}}}})
}

#[tokio::test]
async fn a_stored_policy_gets_ready_and_the_webhook_answers_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::server(dir.path(), |_| {}).await;
    let client = common::client(&server.kubeconfig).await;

    // Kyverno's CRDs, then a policy, all before the cache exists.
    common::install_crds(&client).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kyverno.io", "v1", "ClusterPolicy"),
        "clusterpolicies",
    );
    let policies: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let deadline = Instant::now() + Duration::from_secs(20);
    let object: DynamicObject = serde_json::from_value(policy()).expect("object");
    while let Err(err) = policies.create(&PostParams::default(), &object).await {
        assert!(Instant::now() < deadline, "policy not created: {err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let cache = Arc::new(PolicyCache::default());
    let watch = tokio::spawn(cache.clone().run(client.clone()));
    cache.wait_synced().await;
    let ready = loop {
        let stored = policies
            .get("restrict-flux-source-urls")
            .await
            .expect("get");
        let status = serde_json::to_value(&stored).expect("json")["status"].clone();
        if status["conditions"][0]["type"] == "Ready" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready["conditions"][0]["status"], "True", "{ready}");
    assert_eq!(ready["conditions"][0]["reason"], "Succeeded", "{ready}");
    assert_eq!(ready["rulecount"]["validate"], 1, "{ready}");

    let certs = tempfile::tempdir().expect("tempdir");
    let running = webhook::serve(
        cache.clone(),
        &webhook::Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_dir: certs.path().to_path_buf(),
            hosts: Vec::new(),
        },
    )
    .await
    .expect("webhook serves");
    let ca = reqwest::Certificate::from_pem(running.ca_pem.as_bytes()).expect("CA");
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let ask = |url: &'static str| {
        let https = https.clone();
        let at = format!("https://127.0.0.1:{}/validate", running.addr.port());
        async move {
            https
                .post(at)
                .json(&review(url))
                .send()
                .await
                .expect("webhook answers")
                .json::<Value>()
                .await
                .expect("an AdmissionReview")
        }
    };
    let allowed = ask("oci://ghcr.io/acme-platform/manifests/app").await;
    assert_eq!(allowed["response"]["uid"], "3f1c");
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
    let denied = ask("oci://evil.example.com/app").await;
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    assert_eq!(denied["response"]["status"]["status"], "Failure");
    let message = denied["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message
            .contains("resource OCIRepository/team-a/x was blocked due to the following policies"),
        "{message}"
    );
    running.stop().await;
    watch.abort();
    server.shutdown().await;
}
