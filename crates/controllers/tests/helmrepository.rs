//! The HelmRepository reconciler end to end: an index.yaml behind basic auth on a loopback
//! HTTP server becomes the artifact, a changed index a new revision, a wrong password a
//! readable `AuthenticationFailed`, and `type: oci` repositories are left alone.

mod common;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{NS, condition, create_secret, ready_is, wait_until};
use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::source::{HelmRepository, HelmRepositorySpec};
use ferroflux_controllers::helmrepository::{self, Context};
use ferroflux_testpeers::require;
use kube::api::{Api, PostParams};

const INDEX_V1: &str = "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: 1.0.0\n    urls: [charts/podinfo-1.0.0.tgz]\n";

/// Serves the current `index` at `/index.yaml` to requests with the right basic auth.
async fn serve_index(index: Arc<Mutex<String>>, user: &str, password: &str) -> String {
    use axum::http::{StatusCode, header};
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let app = axum::Router::new().route(
        "/index.yaml",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let index = index.clone();
            let expected = expected.clone();
            async move {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if given != Some(expected.as_str()) {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let body = index.lock().expect("index lock").clone();
                (StatusCode::OK, body)
            }
        }),
    );
    common::serve(app).await
}

fn helm_repository(name: &str, url: &str, secret: &str, oci: bool) -> HelmRepository {
    let mut repo = HelmRepository::new(
        name,
        HelmRepositorySpec {
            url: url.into(),
            interval: Some("2s".into()),
            secret_ref: Some(LocalObjectReference {
                name: secret.into(),
            }),
            repository_type: oci.then(|| "oci".to_string()),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_the_artifact_and_a_changed_index_a_new_revision() {
    let cluster = require!(common::cluster().await);
    let (_stop, stopped) = common::shutdown();
    let context = Arc::new(Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
    ));
    tokio::spawn(helmrepository::run(context, stopped));

    let index = Arc::new(Mutex::new(INDEX_V1.to_string()));
    let password = format!("pw-{}", std::process::id());
    let url = serve_index(index.clone(), "helm", &password).await;
    let creds = |password: &str| {
        [
            ("username".to_string(), "helm".to_string()),
            ("password".to_string(), password.to_string()),
        ]
        .into()
    };
    create_secret(&cluster.client, "good", creds(&password)).await;
    let wrong = format!("{password}-wrong");
    create_secret(&cluster.client, "bad", creds(&wrong)).await;

    let api: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    for repo in [
        helm_repository("podinfo", &url, "good", false),
        helm_repository("denied", &url, "bad", false),
        helm_repository("oci", "oci://127.0.0.1:1/charts", "good", true),
    ] {
        api.create(&PostParams::default(), &repo)
            .await
            .expect("created");
    }
    let repo = wait_until(&api, "podinfo", "Ready=True", |r| ready_is(r, "True")).await;
    let artifact = common::artifact(&repo).expect("artifact");
    assert_eq!(
        artifact.revision,
        ferroflux_source::sha256_digest(INDEX_V1.as_bytes())
    );
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let served = http
        .get(&artifact.url)
        .send()
        .await
        .expect("GET artifact")
        .text()
        .await
        .expect("body");
    assert_eq!(served, INDEX_V1, "the stored artifact is the index");
    assert_eq!(
        condition(&repo, "Ready").map(|c| c.message),
        Some(format!("stored artifact: revision '{}'", artifact.revision))
    );

    let v2 = format!(
        "{INDEX_V1}  - name: podinfo\n    version: 1.1.0\n    urls: [charts/podinfo-1.1.0.tgz]\n"
    );
    *index.lock().expect("index lock") = v2.clone();
    wait_until(&api, "podinfo", "the new index", |r| {
        common::artifact(r)
            .is_some_and(|a| a.revision == ferroflux_source::sha256_digest(v2.as_bytes()))
    })
    .await;

    let denied = wait_until(&api, "denied", "Ready=False", |r| ready_is(r, "False")).await;
    let fetch_failed = condition(&denied, "FetchFailed").expect("FetchFailed");
    assert_eq!(
        fetch_failed.reason, "AuthenticationFailed",
        "{}",
        fetch_failed.message
    );
    assert!(
        fetch_failed.message.contains("401"),
        "{}",
        fetch_failed.message
    );
    assert!(!fetch_failed.message.contains(&wrong), "secret leaked");

    let oci = api.get("oci").await.expect("reads");
    // Static: no controller writes its status, which reads as the CRD's default, as on Flux.
    let status = oci.status.unwrap_or_default();
    assert!(
        status.conditions.is_none() && status.artifact.is_none(),
        "an OCI HelmRepository is static: {status:?}"
    );
    assert_eq!(status.observed_generation, Some(-1), "the CRD's default");
    cluster.server.shutdown().await;
}
