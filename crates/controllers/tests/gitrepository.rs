//! The GitRepository reconciler against `git http-backend` (basic auth) and the embedded API
//! server: an artifact per revision, a new commit picked up on the next interval, and a wrong
//! password reported as FetchFailed without the secret.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::source::{GitRepository, GitRepositoryRef, GitRepositorySpec};
use ferroflux_controllers::gitrepository::{self, Context};
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

async fn wait_for(
    api: &Api<GitRepository>,
    done: impl Fn(&GitRepository) -> bool,
) -> GitRepository {
    for _ in 0..200 {
        let repo = api.get("fleet").await.expect("reads");
        if done(&repo) {
            return repo;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the GitRepository never reached the expected state: {:#?}",
        api.get("fleet").await.expect("reads").status
    );
}

fn condition(repo: &GitRepository, type_: &str) -> Option<(String, String, String)> {
    let c = repo
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
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

    let cluster = common::cluster().await;
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
    let repo = wait_for(&api, |r| {
        r.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some()
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
    assert_eq!(condition(&repo, "Ready").map(|c| c.0), Some("True".into()));
    assert_eq!(
        condition(&repo, "ArtifactInStorage").map(|c| c.0),
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
    wait_for(&api, |r| {
        r.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|a| a.revision == expected)
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
    let repo = wait_for(&api, |r| condition(r, "FetchFailed").is_some()).await;
    let (status, reason, message) = condition(&repo, "FetchFailed").expect("FetchFailed");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "AuthenticationFailed"),
        "{message}"
    );
    assert!(message.contains("authentication"), "{message}");
    assert!(
        !message.contains(&creds.password),
        "the password leaked: {message}"
    );
    assert_eq!(condition(&repo, "Ready").map(|c| c.0), Some("False".into()));
    cluster.server.shutdown().await;
}
