//! The OCIRepository reconciler end to end: Debian's `docker-registry` holds Flux artifacts, the
//! API server (embedded or kube-apiserver, see `common`) holds the objects, and the controller
//! resolves semver ranges, picks up new releases on its interval, and gates artifacts on cosign
//! signatures.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::{NS, condition, create_secret, ready_is, wait_until};
use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::source::{
    OCIRepository, OCIRepositoryRef, OCIRepositorySpec, OCIRepositoryVerification,
};
use ferroflux_controllers::ocirepository::{self, Context};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::cosign;
use ferroflux_source::oci::{OciAuth, OciClient, PushMetadata, Pushed};
use ferroflux_testpeers::{Credentials, PeerError, Registry, require};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

struct Env {
    cluster: common::Cluster,
    client: Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn env() -> Result<Env, PeerError> {
    let cluster = common::cluster().await?;
    let (stop, stopped) = common::shutdown();
    let context = Arc::new(Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
    ));
    tokio::spawn(ocirepository::run(context, stopped));
    Ok(Env {
        client: cluster.client.clone(),
        cluster,
        _stop: stop,
    })
}

/// Pushes a one-file artifact whose content names `version`.
async fn push(client: &OciClient, url: &str, version: &str) -> Pushed {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("app")).expect("mkdir");
    std::fs::write(
        dir.path().join("app/deployment.yaml"),
        format!("kind: Deployment\nimage: app:{version}\n"),
    )
    .expect("write");
    let metadata = PushMetadata {
        source: "https://git.example/fleet".into(),
        revision: format!("{version}@sha1:abc"),
        ..PushMetadata::default()
    };
    client
        .push_dir(url, dir.path(), &IgnoreRules::none(), &metadata)
        .await
        .expect("push")
}

fn oci_repository(name: &str, url: &str, reference: OCIRepositoryRef) -> OCIRepository {
    let mut repo = OCIRepository::new(
        name,
        OCIRepositorySpec {
            url: url.into(),
            reference: Some(reference),
            interval: "2s".into(),
            insecure: Some(true),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repo
}

/// Downloads the artifact from the storage server, checks its digest, and reads the file.
async fn artifact_content(env: &Env, repo: &OCIRepository) -> String {
    let dest = fetch(env, repo).await;
    std::fs::read_to_string(dest.join("app/deployment.yaml"))
        .expect("the layer content is in the artifact")
}

/// Downloads and extracts the artifact (digest-checked) into a fresh directory.
async fn fetch(env: &Env, repo: &OCIRepository) -> std::path::PathBuf {
    let artifact = common::artifact(repo).expect("artifact");
    let dest = env.cluster.dir.path().join(format!(
        "fetched-{}-{}",
        repo.metadata.name.as_deref().unwrap_or_default(),
        artifact.revision.replace([':', '@'], "-")
    ));
    common::download(&artifact, dest).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semver_picks_the_highest_release_and_a_new_one_on_the_next_interval() {
    let registry = require!(Registry::start(None));
    let env = require!(env().await);
    let client = common::registry_client(OciAuth::Anonymous);
    let url = format!("oci://{}/team-a/app", registry.host());
    for version in ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"] {
        push(&client, &format!("{url}:{version}"), version).await;
    }
    let digest_120 = client
        .digest(&format!("{url}:1.2.0"))
        .await
        .expect("digest");

    let api: Api<OCIRepository> = Api::namespaced(env.client.clone(), NS);
    let reference = OCIRepositoryRef {
        semver: Some(">=1.0.0".into()),
        ..Default::default()
    };
    api.create(
        &PostParams::default(),
        &oci_repository("app", &url, reference),
    )
    .await
    .expect("created");
    let repo = wait_until(&api, "app", "Ready=True", |r| ready_is(r, "True")).await;
    let status = repo.status.clone().expect("status");
    let artifact = status.artifact.clone().expect("artifact");
    assert_eq!(artifact.revision, format!("1.2.0@{digest_120}"));
    assert_eq!(status.url.as_deref(), Some(artifact.url.as_str()));
    let ready = condition(&repo, "Ready").expect("Ready");
    assert_eq!(ready.reason, "Succeeded");
    assert_eq!(
        ready.message,
        format!("stored artifact for digest '1.2.0@{digest_120}'")
    );
    assert_eq!(
        condition(&repo, "ArtifactInStorage").map(|c| c.status),
        Some("True".into())
    );
    let metadata = artifact.metadata.clone().unwrap_or_default();
    assert_eq!(
        metadata
            .get("org.opencontainers.image.revision")
            .map(String::as_str),
        Some("1.2.0@sha1:abc")
    );
    assert!(
        repo.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "finalizers.fluxcd.io")
    );
    assert_eq!(
        artifact_content(&env, &repo).await,
        "kind: Deployment\nimage: app:1.2.0\n"
    );

    let pushed = push(&client, &format!("{url}:1.3.0"), "1.3.0").await;
    let repo = wait_until(&api, "app", "revision 1.3.0", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_some_and(|a| a.revision.starts_with("1.3.0@"))
    })
    .await;
    assert_eq!(
        repo.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .map(|a| a.revision.clone()),
        Some(format!("1.3.0@{}", pushed.digest))
    );
    assert_eq!(
        artifact_content(&env, &repo).await,
        "kind: Deployment\nimage: app:1.3.0\n"
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cosign_signed_artifacts_reconcile_and_the_previous_one_stays() {
    let registry = require!(Registry::start(None));
    let env = require!(env().await);
    let client = common::registry_client(OciAuth::Anonymous);
    let url = format!("oci://{}/team-a/signed", registry.host());
    let key = common::cosign_keys_secret(&env.client).await;

    let signed = push(&client, &format!("{url}:1.0.0"), "1.0.0").await;
    cosign::sign(&client, &url, &signed.digest, &key)
        .await
        .expect("sign");
    let unsigned = push(&client, &format!("{url}:1.1.0"), "1.1.0").await;
    let tampered = push(&client, &format!("{url}:1.2.0"), "1.2.0").await;
    // The genuine signature of 1.0.0's digest, placed under 1.2.0's signature tag.
    let payload = cosign::simple_signing_payload(
        &format!("{}/team-a/signed", registry.host()),
        &signed.digest,
    );
    let signature: p256::ecdsa::DerSignature = p256::ecdsa::signature::Signer::sign(&key, &payload);
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_bytes());
    cosign::push_signature_layer(&client, &url, &tampered.digest, payload, &signature)
        .await
        .expect("copied signature");

    let api: Api<OCIRepository> = Api::namespaced(env.client.clone(), NS);
    let mut repo = oci_repository(
        "signed",
        &url,
        OCIRepositoryRef {
            tag: Some("1.0.0".into()),
            ..Default::default()
        },
    );
    repo.spec.verify = Some(common::cosign_verification());
    api.create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let repo = wait_until(&api, "signed", "Ready=True", |r| ready_is(r, "True")).await;
    let verified = condition(&repo, "SourceVerified").expect("SourceVerified");
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "Succeeded")
    );
    let good_revision = format!("1.0.0@{}", signed.digest);
    assert_eq!(
        repo.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .map(|a| a.revision.clone()),
        Some(good_revision.clone())
    );

    for (tag, digest, why) in [
        ("1.1.0", &unsigned.digest, "no cosign signature found"),
        ("1.2.0", &tampered.digest, "not sha256:"),
    ] {
        let patch = json!({"spec": {"ref": {"tag": tag}}});
        api.patch("signed", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patched");
        let repo = wait_until(&api, "signed", "Ready=False", |r| ready_is(r, "False")).await;
        let ready = condition(&repo, "Ready").expect("Ready");
        assert_eq!(
            ready.reason, "VerificationError",
            "{tag}: {}",
            ready.message
        );
        let source_verified = condition(&repo, "SourceVerified").expect("SourceVerified");
        assert_eq!(
            (
                source_verified.status.as_str(),
                source_verified.reason.as_str()
            ),
            ("False", "VerificationError")
        );
        assert!(
            source_verified.message.contains(why)
                || source_verified.message.contains(&signed.digest),
            "{tag}: {}",
            source_verified.message
        );
        assert!(
            source_verified.message.contains(digest.as_str()),
            "names the refused digest: {}",
            source_verified.message
        );
        let status = repo.status.clone().expect("status");
        assert_eq!(
            status.artifact.map(|a| a.revision),
            Some(good_revision.clone()),
            "the verified artifact stays"
        );
        assert_eq!(
            condition(&repo, "ArtifactOutdated").map(|c| c.reason),
            Some("NewRevision".into())
        );
        assert_eq!(
            artifact_content(&env, &repo).await,
            "kind: Deployment\nimage: app:1.0.0\n"
        );
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), NS);
    let events = events.list(&Default::default()).await.expect("events");
    let about = |reason: &str| {
        events.items.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("signed")
        })
    };
    assert!(
        about("NewArtifact"),
        "a Normal event for the stored artifact"
    );
    assert!(
        about("VerificationError"),
        "a Warning event for the refused ones"
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstore_trusted_root_is_refused_not_ignored() {
    let registry = require!(Registry::start(None));
    let env = require!(env().await);
    let client = common::registry_client(OciAuth::Anonymous);
    let url = format!("oci://{}/team-a/rooted", registry.host());
    let key = common::cosign_keys_secret(&env.client).await;
    let pushed = push(&client, &format!("{url}:1.0.0"), "1.0.0").await;
    cosign::sign(&client, &url, &pushed.digest, &key)
        .await
        .expect("sign");
    let api: Api<OCIRepository> = Api::namespaced(env.client.clone(), NS);
    let mut repo = oci_repository(
        "rooted",
        &url,
        OCIRepositoryRef {
            tag: Some("1.0.0".into()),
            ..Default::default()
        },
    );
    repo.spec.verify = Some(OCIRepositoryVerification {
        trusted_root_secret_ref: Some(LocalObjectReference {
            name: "sigstore-trusted-root".into(),
        }),
        ..common::cosign_verification()
    });
    api.create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let repo = wait_until(&api, "rooted", "Ready=False", |r| ready_is(r, "False")).await;
    let stalled = condition(&repo, "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "VerificationError")
    );
    assert_eq!(
        stalled.message,
        "spec.verify.trustedRootSecretRef ('sigstore-trusted-root') is not supported: custom Sigstore infrastructure (Fulcio, Rekor) cannot be verified; remove it and verify with the public keys of spec.verify.secretRef"
    );
    assert!(
        repo.status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .is_none(),
        "nothing is stored unverified"
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerconfigjson_credentials_are_used_and_a_wrong_password_is_not_shown() {
    let credentials = Credentials::generate();
    let registry = require!(Registry::start(Some(credentials.clone())));
    let env = require!(env().await);
    let client = common::registry_client(OciAuth::Basic {
        username: credentials.username.clone(),
        password: credentials.password.clone(),
    });
    let url = format!("oci://{}/team-b/private", registry.host());
    push(&client, &format!("{url}:1.0.0"), "1.0.0").await;

    let config = |password: &str| {
        json!({"auths": {registry.host(): {"username": credentials.username, "password": password}}}).to_string()
    };
    create_secret(
        &env.client,
        "good",
        [(
            ".dockerconfigjson".to_string(),
            config(&credentials.password),
        )]
        .into(),
    )
    .await;
    let wrong = format!("{}-wrong", credentials.password);
    create_secret(
        &env.client,
        "bad",
        [(".dockerconfigjson".to_string(), config(&wrong))].into(),
    )
    .await;

    let api: Api<OCIRepository> = Api::namespaced(env.client.clone(), NS);
    let reference = OCIRepositoryRef {
        tag: Some("1.0.0".into()),
        ..Default::default()
    };
    let mut good = oci_repository("good", &url, reference.clone());
    good.spec.secret_ref = Some(LocalObjectReference {
        name: "good".into(),
    });
    let mut bad = oci_repository("bad", &url, reference);
    bad.spec.secret_ref = Some(LocalObjectReference { name: "bad".into() });
    api.create(&PostParams::default(), &good)
        .await
        .expect("created");
    api.create(&PostParams::default(), &bad)
        .await
        .expect("created");

    let good = wait_until(&api, "good", "Ready=True", |r| ready_is(r, "True")).await;
    assert_eq!(
        artifact_content(&env, &good).await,
        "kind: Deployment\nimage: app:1.0.0\n"
    );
    let bad = wait_until(&api, "bad", "Ready=False", |r| ready_is(r, "False")).await;
    let fetch_failed = condition(&bad, "FetchFailed").expect("FetchFailed");
    assert_eq!(
        (fetch_failed.status.as_str(), fetch_failed.reason.as_str()),
        ("True", "AuthenticationFailed")
    );
    assert!(
        !fetch_failed.message.contains(&wrong),
        "secret leaked: {}",
        fetch_failed.message
    );
    assert!(bad.status.and_then(|s| s.artifact).is_none());
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_drops_files_and_copy_keeps_the_layer_as_pushed() {
    let registry = require!(Registry::start(None));
    let env = require!(env().await);
    let client = common::registry_client(OciAuth::Anonymous);
    let url = format!("oci://{}/team-a/docs", registry.host());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("app")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("docs")).expect("mkdir");
    std::fs::write(
        dir.path().join("app/deployment.yaml"),
        "kind: Deployment\nimage: app:1.0.0\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("docs/readme.md"), "# docs\n").expect("write");
    let metadata = PushMetadata {
        source: "https://git.example/fleet".into(),
        revision: "main@sha1:abc".into(),
        ..PushMetadata::default()
    };
    let pushed = client
        .push_dir(
            &format!("{url}:1.0.0"),
            dir.path(),
            &IgnoreRules::none(),
            &metadata,
        )
        .await
        .expect("push");

    let api: Api<OCIRepository> = Api::namespaced(env.client.clone(), NS);
    let reference = OCIRepositoryRef {
        tag: Some("1.0.0".into()),
        ..Default::default()
    };
    let mut filtered = oci_repository("filtered", &url, reference.clone());
    filtered.spec.ignore = Some("docs/\n".into());
    let mut copied = oci_repository("copied", &url, reference);
    copied.spec.layer_selector = Some(ferroflux_api::source::OCILayerSelector {
        media_type: Some(ferroflux_source::oci::FLUX_CONTENT_MEDIA_TYPE.into()),
        operation: Some("copy".into()),
    });
    for repo in [&filtered, &copied] {
        api.create(&PostParams::default(), repo)
            .await
            .expect("created");
    }

    let filtered = wait_until(&api, "filtered", "Ready=True", |r| ready_is(r, "True")).await;
    let fetched = fetch(&env, &filtered).await;
    assert!(fetched.join("app/deployment.yaml").is_file());
    assert!(
        !fetched.join("docs/readme.md").exists(),
        "spec.ignore dropped docs/"
    );
    let status = filtered.status.expect("status");
    assert_eq!(status.observed_ignore.as_deref(), Some("docs/\n"));

    let copied = wait_until(&api, "copied", "Ready=True", |r| ready_is(r, "True")).await;
    let artifact = copied.status.and_then(|s| s.artifact).expect("artifact");
    assert_eq!(
        artifact.digest.as_deref(),
        Some(pushed.layer_digest.as_str()),
        "copy stores the layer byte for byte"
    );
    env.cluster.server.shutdown().await;
}
