//! The GitRepository reconciler against `git http-backend` (basic auth) and the API server
//! (embedded or kube-apiserver, see `common`): an artifact per revision, a new commit picked up on
//! the next interval, and a wrong password reported as FetchFailed without the secret.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec};
use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::source::{GitRepository, GitRepositoryRef, GitRepositorySpec};
use ferroflux_controllers::gitrepository::{self, Context};
use ferroflux_controllers::kustomization::reconciler;
use ferroflux_source::storage::Storage;
use ferroflux_testpeers::{Credentials, GitHttp, GitWork, require};
use kube::api::{Api, PostParams};

fn repository(url: &str, secret: &str) -> GitRepository {
    let mut repo = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: url.into(),
            interval: "1s".into(),
            secret_ref: Some(LocalObjectReference {
                name: secret.into(),
            }),
            reference: Some(GitRepositoryRef {
                branch: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(common::NS.into());
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_follow_commits_and_a_wrong_password_is_fetch_failed() {
    let creds = Credentials::generate();
    let server = require!(GitHttp::start(Some(creds.clone())));
    let bare = server.repos().create("fleet").expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    work.write(
        "apps/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )
    .expect("write");
    work.write("README.md", "docs are not part of the artifact\n")
        .expect("write");
    let first = work.commit("first").expect("commit");
    work.push().expect("push");

    let cluster = require!(common::cluster().await);
    let auth = BTreeMap::from([
        ("username".to_string(), creds.username.clone()),
        ("password".to_string(), creds.password.clone()),
    ]);
    common::create_secret(&cluster.client, "git-auth", auth).await;
    let wrong = BTreeMap::from([
        ("username".to_string(), creds.username.clone()),
        ("password".to_string(), format!("{}-wrong", creds.password)),
    ]);
    common::create_secret(&cluster.client, "git-wrong", wrong).await;
    tokio::spawn(gitrepository::run(
        Arc::new(Context::new(
            cluster.client.clone(),
            cluster.storage.clone(),
        )),
        std::future::pending(),
    ));

    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), common::NS);
    api.create(
        &PostParams::default(),
        &repository(&server.url("fleet"), "git-auth"),
    )
    .await
    .expect("created");
    let repo = common::wait_until(&api, "fleet", "an artifact", |r| {
        common::artifact(r).is_some()
    })
    .await;
    let artifact = repo
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("artifact");
    assert_eq!(artifact.revision, format!("main@sha1:{first}"));
    assert!(
        artifact
            .digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert!(common::ready_is(&repo, "True"));
    assert_eq!(
        common::condition(&repo, "ArtifactInStorage").map(|c| c.status),
        Some("True".into())
    );

    work.write(
        "apps/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
    )
    .expect("write");
    let second = work.commit("second").expect("commit");
    work.push().expect("push");
    let expected = format!("main@sha1:{second}");
    common::wait_until(&api, "fleet", "the second commit", |r| {
        common::artifact(r).is_some_and(|a| a.revision == expected)
    })
    .await;

    api.delete("fleet", &Default::default())
        .await
        .expect("deleted");
    for _ in 0..50 {
        if api.get_opt("fleet").await.expect("reads").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.create(
        &PostParams::default(),
        &repository(&server.url("fleet"), "git-wrong"),
    )
    .await
    .expect("created");
    let repo = common::wait_until(&api, "fleet", "FetchFailed", |r| {
        common::condition(r, "FetchFailed").is_some()
    })
    .await;
    let failed = common::condition(&repo, "FetchFailed").expect("FetchFailed");
    let message = failed.message;
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_str()),
        ("True", "AuthenticationFailed"),
        "{message}"
    );
    assert!(message.contains("authentication"), "{message}");
    assert!(
        !message.contains(&creds.password),
        "the password leaked: {message}"
    );
    assert!(common::ready_is(&repo, "False"));
    cluster.server.shutdown().await;
}

/// Serves `root` as artifact storage on a fresh loopback port; aborting the task stops it.
async fn serve_storage(
    root: &std::path::Path,
) -> (Arc<Storage>, String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let storage = Arc::new(Storage::new(root, &address).expect("storage"));
    let router = storage.router();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (storage, address, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_source_controller_advertises_its_new_address_and_kustomizations_follow() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    work.write(
        "apps/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: moved, namespace: flux-system}\n",
    )
    .expect("write");
    work.commit("first").expect("commit");
    work.push().expect("push");
    let cluster = require!(common::cluster().await);
    let root = cluster.dir.path().join("moving-storage");
    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), common::NS);
    let mut repo = repository(&server.url("fleet"), "none");
    repo.spec.secret_ref = None;
    repo.spec.interval = "10m".into();
    api.create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let url_at = |address: String| {
        move |r: &GitRepository| {
            r.status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .is_some_and(|a| a.url.starts_with(&address))
        }
    };

    let (storage, first_address, first_server) = serve_storage(&root).await;
    let (stop, stopped) = common::shutdown();
    let first = tokio::spawn(gitrepository::run(
        Arc::new(Context::new(cluster.client.clone(), storage)),
        stopped,
    ));
    common::wait_until(&api, "fleet", "the first address", url_at(first_address)).await;
    drop(stop);
    first.await.expect("the controller stops");
    first_server.abort();

    let (storage, second_address, _second_server) = serve_storage(&root).await;
    tokio::spawn(gitrepository::run(
        Arc::new(Context::new(cluster.client.clone(), storage)),
        std::future::pending(),
    ));
    common::wait_until(&api, "fleet", "the second address", url_at(second_address)).await;

    let context = Arc::new(reconciler::Context::new(
        cluster.client.clone(),
        cluster.config.clone(),
        reconciler::Options::default(),
    ));
    tokio::spawn(reconciler::run(context, std::future::pending()));
    let kustomizations: Api<Kustomization> = Api::namespaced(cluster.client.clone(), common::NS);
    let mut ks = Kustomization::new(
        "apps",
        KustomizationSpec {
            interval: "10m".into(),
            path: Some("./apps".into()),
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    ks.metadata.namespace = Some(common::NS.into());
    kustomizations
        .create(&PostParams::default(), &ks)
        .await
        .expect("created");
    common::wait_until(&kustomizations, "apps", "Ready=True", |ks| {
        common::ready_is(ks, "True")
    })
    .await;
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_interval_stalls_and_the_controller_keeps_reconciling() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    work.write("apps/app.yaml", "kind: ConfigMap\n")
        .expect("write");
    work.commit("first").expect("commit");
    work.push().expect("push");
    let cluster = require!(common::cluster().await);
    tokio::spawn(gitrepository::run(
        Arc::new(Context::new(
            cluster.client.clone(),
            cluster.storage.clone(),
        )),
        std::future::pending(),
    ));
    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), common::NS);
    let mut broken = repository(&server.url("fleet"), "none");
    broken.metadata.name = Some("broken".into());
    broken.spec.secret_ref = None;
    broken.spec.interval = "99999999999999999999h".into();
    api.create(&PostParams::default(), &broken)
        .await
        .expect("the pattern admits it");
    let repo = common::wait_until(&api, "broken", "Stalled", |r| {
        common::condition(r, "Stalled").is_some()
    })
    .await;
    let stalled = common::condition(&repo, "Stalled").expect("Stalled is set");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert_eq!(
        stalled.message,
        "invalid spec.interval: time: invalid duration \"99999999999999999999h\""
    );

    let mut fresh = repository(&server.url("fleet"), "none");
    fresh.spec.secret_ref = None;
    api.create(&PostParams::default(), &fresh)
        .await
        .expect("created");
    let repo =
        common::wait_until(&api, "fleet", "Ready=True", |r| common::ready_is(r, "True")).await;
    assert!(repo.status.and_then(|s| s.artifact).is_some());
    cluster.server.shutdown().await;
}
