//! The Bucket reconciler end to end against moto's S3 server with SigV4 checks: the objects
//! under the prefix become the artifact, a changed object gives a new revision, and a wrong
//! secret key fails with a readable condition that does not show the key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NS, condition, create_secret, ready_is, wait_until};
use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::source::{Bucket, BucketSpec};
use ferroflux_controllers::bucket::{self, Context};
use ferroflux_testpeers::{S3Server, require};
use kube::api::{Api, PostParams};

/// Starts the Bucket reconciler on `cluster` until the returned sender is dropped.
fn start(cluster: &common::Cluster) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = common::shutdown();
    let context = Arc::new(Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
    ));
    tokio::spawn(bucket::run(context, stopped));
    stop
}

/// A Secret's data holding S3 keys.
fn keys(access: &str, secret: &str) -> std::collections::BTreeMap<String, String> {
    [
        ("accesskey".to_string(), access.to_string()),
        ("secretkey".to_string(), secret.to_string()),
    ]
    .into()
}

fn bucket(name: &str, endpoint: &str, prefix: Option<&str>, secret: &str) -> Bucket {
    let mut object = Bucket::new(
        name,
        BucketSpec {
            bucket_name: "fleet".into(),
            endpoint: endpoint.into(),
            prefix: prefix.map(str::to_string),
            region: Some("us-east-1".into()),
            insecure: Some(true),
            interval: "2s".into(),
            secret_ref: Some(LocalObjectReference {
                name: secret.into(),
            }),
            ..Default::default()
        },
    );
    object.metadata.namespace = Some(NS.into());
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_under_the_prefix_become_the_artifact_and_changes_a_new_revision() {
    // Two servers: moto refuses SigV4 signatures of prefixed listings that object_store
    // makes (SignatureDoesNotMatch), so signature checks run on an unprefixed bucket.
    let server = require!(S3Server::start(false));
    let signed = require!(S3Server::start(true));
    signed
        .put_objects("fleet", &[("app.yaml", b"kind: ConfigMap\n")])
        .expect("seed signed bucket");
    server
        .put_objects(
            "fleet",
            &[
                ("clusters/prod/app.yaml", b"kind: ConfigMap\n"),
                ("clusters/prod/logo.png", b"png"),
                ("clusters/staging/app.yaml", b"kind: Secret\n"),
            ],
        )
        .expect("seed bucket");
    let cluster = require!(common::cluster().await);
    let _stop = start(&cluster);

    let (access, secret) = signed
        .access_key()
        .expect("a signature-checking server has a key");
    create_secret(&cluster.client, "good", keys(access, secret)).await;
    let wrong = format!("{secret}-wrong");
    create_secret(&cluster.client, "bad", keys(access, &wrong)).await;

    let api: Api<Bucket> = Api::namespaced(cluster.client.clone(), NS);
    let prefix = Some("clusters/prod");
    for object in [
        bucket("prod", &server.endpoint(), prefix, "good"),
        bucket("signed", &signed.endpoint(), None, "good"),
        bucket("denied", &signed.endpoint(), None, "bad"),
    ] {
        api.create(&PostParams::default(), &object)
            .await
            .expect("created");
    }

    let object = wait_until(&api, "prod", "Ready=True", |o| ready_is(o, "True")).await;
    let artifact = common::artifact(&object).expect("artifact");
    assert!(
        artifact.revision.starts_with("sha256:"),
        "{}",
        artifact.revision
    );
    let first = common::download(&artifact, cluster.dir.path().join("first")).await;
    assert_eq!(
        std::fs::read_to_string(first.join("clusters/prod/app.yaml")).expect("in the artifact"),
        "kind: ConfigMap\n"
    );
    assert!(
        !first.join("clusters/prod/logo.png").exists(),
        "Flux's default excludes apply"
    );
    assert!(!first.join("clusters/staging").exists(), "only the prefix");

    server
        .put_objects(
            "fleet",
            &[("clusters/prod/app.yaml", b"kind: ConfigMap\ndata: {}\n")],
        )
        .expect("change an object");
    let object = wait_until(&api, "prod", "a new revision", |o| {
        common::artifact(o).is_some_and(|a| a.revision != artifact.revision)
    })
    .await;
    let artifact = common::artifact(&object).expect("artifact");
    let second = common::download(&artifact, cluster.dir.path().join("second")).await;
    assert_eq!(
        std::fs::read_to_string(second.join("clusters/prod/app.yaml")).expect("in the artifact"),
        "kind: ConfigMap\ndata: {}\n"
    );

    wait_until(&api, "signed", "Ready=True", |o| ready_is(o, "True")).await;
    let denied = wait_until(&api, "denied", "Ready=False", |o| ready_is(o, "False")).await;
    let fetch_failed = condition(&denied, "FetchFailed").expect("FetchFailed");
    assert_eq!(fetch_failed.status, "True");
    assert_eq!(
        fetch_failed.reason, "AuthenticationFailed",
        "{}",
        fetch_failed.message
    );
    assert!(
        !fetch_failed.message.contains(&wrong),
        "secret leaked: {}",
        fetch_failed.message
    );
    assert!(denied.status.and_then(|s| s.artifact).is_none());
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_write_a_stable_status_without_a_hot_loop() {
    let signed = require!(S3Server::start(true));
    signed
        .put_objects("fleet", &[("app.yaml", b"kind: ConfigMap\n")])
        .expect("seed bucket");
    let cluster = require!(common::cluster().await);
    let _stop = start(&cluster);
    let (access, secret) = signed
        .access_key()
        .expect("a signature-checking server has a key");
    create_secret(
        &cluster.client,
        "bad",
        keys(access, &format!("{secret}-wrong")),
    )
    .await;
    let api: Api<Bucket> = Api::namespaced(cluster.client.clone(), NS);
    let mut object = bucket("denied", &signed.endpoint(), None, "bad");
    object.spec.interval = "1m".into();
    api.create(&PostParams::default(), &object)
        .await
        .expect("created");
    let denied = wait_until(&api, "denied", "Ready=False", |o| {
        condition(o, "Ready").is_some_and(|c| c.status == "False")
    })
    .await;
    let first = condition(&denied, "Ready").expect("Ready").message.clone();

    let mut versions = std::collections::BTreeSet::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let object = api.get("denied").await.expect("reads");
        versions.insert(object.metadata.resource_version.clone().expect("rv"));
        assert_eq!(
            condition(&object, "Ready").expect("Ready").message,
            first,
            "the message is the same for the same failure"
        );
    }
    assert!(
        versions.len() <= 3,
        "the status was written {} times in 5 s",
        versions.len()
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster.client.clone(), NS);
    let recorded: i32 = events
        .list(&Default::default())
        .await
        .expect("events list")
        .items
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| e.count.unwrap_or(1))
        .sum();
    assert!(recorded <= 5, "{recorded} warning events in 5 s");
    cluster.server.shutdown().await;
}
