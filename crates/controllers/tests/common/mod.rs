//! Shared setup of the controller end-to-end tests: an API server with Flux's CRDs and a
//! `flux-system` namespace, and an artifact storage served over HTTP.
//!
//! The API server is the embedded one by default; with `FERROFLUX_TEST_APISERVER=kube-apiserver`
//! it is the real kube-apiserver (etcd + kube-apiserver + kube-controller-manager built by
//! `scripts/peers.sh`), so every suite proves the same outcomes on both. `./test.sh` runs the
//! suites once each way.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::meta::{Artifact, Condition, LocalObjectReference};
use ferroflux_api::source::OCIRepositoryVerification;
use ferroflux_source::oci::cosign::SigningKey;
use ferroflux_source::oci::{OciAuth, OciClient, OciOptions};
use ferroflux_source::storage::Storage;
use ferroflux_testpeers::{KubeApiserver, PeerError};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The namespace the tests' objects live in.
pub const NS: &str = "flux-system";

/// The environment variable that picks the API server: `embedded` (default) or `kube-apiserver`.
pub const APISERVER_ENV: &str = "FERROFLUX_TEST_APISERVER";

/// The API server a test runs against.
pub enum Server {
    /// ferroflux's own, in this process.
    Embedded(ferroflux_apiserver::RunningServer),
    /// The real kube-apiserver with etcd and kube-controller-manager, as processes.
    Kube(KubeApiserver),
}

impl Server {
    /// Stops the server.
    pub async fn shutdown(self) {
        match self {
            Server::Embedded(server) => server.shutdown().await,
            // Stopping runs `scripts/peers.sh stop`, which waits for the processes to exit.
            Server::Kube(peer) => tokio::task::spawn_blocking(move || drop(peer))
                .await
                .expect("stopping the peer does not panic"),
        }
    }
}

/// A running API server and artifact storage; dropping it deletes the data.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub client: Client,
    /// The admin config, from which impersonating clients are made.
    pub config: kube::Config,
    pub storage: Arc<Storage>,
}

/// Starts the API server chosen by [`APISERVER_ENV`] with Flux's CRDs established and [`NS`]
/// created. A kube-apiserver that is not built is a [`PeerError::NotBuilt`], which
/// `ferroflux_testpeers::require!` turns into a skip (a failure under `CI=true`).
pub async fn cluster() -> Result<Cluster, PeerError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, kubeconfig) = match std::env::var(APISERVER_ENV).as_deref() {
        Err(_) | Ok("" | "embedded") => {
            let mut config = ferroflux_apiserver::Config::new(dir.path().join("api"));
            config.listen = "127.0.0.1:0".parse().expect("address");
            let server = ferroflux_apiserver::serve(config)
                .await
                .expect("API server starts");
            let kubeconfig = server.kubeconfig.clone();
            (Server::Embedded(server), kubeconfig)
        }
        Ok("kube-apiserver") => {
            let peer =
                tokio::task::spawn_blocking(KubeApiserver::start_without_workload_controllers)
                    .await
                    .expect("starting the peer does not panic")?;
            let kubeconfig =
                std::fs::read_to_string(peer.kubeconfig()).expect("the peer wrote its kubeconfig");
            (Server::Kube(peer), kubeconfig)
        }
        Ok(other) => panic!("{APISERVER_ENV}={other}: expected `embedded` or `kube-apiserver`"),
    };
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config.clone()).expect("client");
    install_crds(&client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace created");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let storage =
        Storage::new(dir.path().join("storage"), &format!("http://{addr}")).expect("storage");
    let router = storage.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Cluster {
        dir,
        server,
        client,
        config,
        storage: Arc::new(storage),
    })
}

/// Creates every CRD of `ferroflux_api::crds::all()` and waits until each is Established: a
/// real kube-apiserver answers 404 for a new kind's objects until then.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // One at a time the real server takes seconds for the lot; they are independent.
    let installs = ferroflux_api::crds::all().into_iter().map(|crd| {
        let crds = crds.clone();
        async move {
            let name = crd.metadata.name.clone().expect("generated CRDs are named");
            if let Err(err) = crds.create(&PostParams::default(), &crd).await {
                panic!("the API server refuses the CRD {name}: {err}");
            }
            for _ in 0..300 {
                let crd = crds.get(&name).await.expect("reads the CRD");
                if crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the CRD {name} is never Established");
        }
    });
    futures::future::join_all(installs).await;
}

/// Creates a Secret in [`NS`] from string data.
pub async fn create_secret(client: &Client, name: &str, data: BTreeMap<String, String>) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");
}

/// A stop switch for a controller task: dropping it stops the controller.
pub fn shutdown() -> (
    tokio::sync::oneshot::Sender<()>,
    impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    (stop, async move {
        let _ = stopped.await;
    })
}

/// The condition `type_` in an object's `status.conditions` (any Flux kind).
pub fn condition<K: serde::Serialize>(object: &K, type_: &str) -> Option<Condition> {
    let status = serde_json::to_value(object).ok()?.get_mut("status")?.take();
    let conditions: Vec<Condition> =
        serde_json::from_value(status.get("conditions")?.clone()).ok()?;
    conditions.into_iter().find(|c| c.type_ == type_)
}

/// The artifact in an object's `status.artifact` (any Flux source kind).
pub fn artifact<K: serde::Serialize>(object: &K) -> Option<Artifact> {
    let mut value = serde_json::to_value(object).ok()?;
    serde_json::from_value(value.get_mut("status")?.get_mut("artifact")?.take()).ok()
}

/// Polls `name` until `done` holds (up to 30 s) and returns the object.
pub async fn wait_until<K>(api: &Api<K>, name: &str, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    wait_within(Duration::from_secs(30), api, name, what, done).await
}

/// Watches `name` from resourceVersion `since` until a version of it for which `done` holds
/// (up to 30 s) and returns that version. Unlike polling, it sees every version written, so a
/// state a later reconcile replaces (a drift corrected, then found gone) is not missed.
pub async fn seen_since<K>(
    api: &Api<K>,
    name: &str,
    since: &str,
    what: &str,
    done: impl Fn(&K) -> bool,
) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    use futures::StreamExt;
    let params = kube::api::WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(30);
    let events = api.watch(&params, since).await.expect("watches");
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        if let kube::api::WatchEvent::Added(object) | kube::api::WatchEvent::Modified(object) =
            event.expect("a watch event")
            && done(&object)
        {
            return object;
        }
    }
    let object = api.get(name).await.expect("reads");
    let status = serde_json::to_value(&object).expect("serializes")["status"].clone();
    panic!("{} {name} never got {what}: {status:#}", K::kind(&()));
}

/// Polls `name` until `done` holds (up to `within`) and returns the object; panics with its
/// status when it never does.
pub async fn wait_within<K>(
    within: Duration,
    api: &Api<K>,
    name: &str,
    what: &str,
    done: impl Fn(&K) -> bool,
) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let step = Duration::from_millis(100);
    for _ in 0..within.as_millis() / step.as_millis() {
        if let Some(object) = api.get_opt(name).await.expect("reads")
            && done(&object)
        {
            return object;
        }
        tokio::time::sleep(step).await;
    }
    let object = api.get(name).await.expect("reads");
    let status = serde_json::to_value(&object).expect("serializes")["status"].clone();
    panic!("{} {name} never got {what}: {status:#}", K::kind(&()));
}

/// Whether the object's Ready condition has `status` and is about its current generation.
pub fn ready_is<K>(object: &K, status: &str) -> bool
where
    K: Resource + serde::Serialize,
{
    condition(object, "Ready")
        .is_some_and(|c| c.status == status && c.observed_generation == object.meta().generation)
}

/// Downloads `artifact` from the storage server, checks its digest and extracts it into
/// `dest`, which is returned.
pub async fn download(artifact: &Artifact, dest: PathBuf) -> PathBuf {
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    ferroflux_source::storage::fetch_artifact(
        &http,
        &artifact.url,
        artifact.digest.as_deref().expect("digest"),
        &dest,
        &ferroflux_source::artifact::ExtractOptions::default(),
    )
    .await
    .expect("the artifact is served and matches its digest");
    dest
}

/// A fresh cosign signing key (derived from the clock and the process) whose public half is
/// the Secret `cosign-keys` (`cosign.pub`) in [`NS`].
pub async fn cosign_keys_secret(client: &Client) -> SigningKey {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&ferroflux_source::sha256_digest(seed.as_bytes()).as_bytes()[7..39]);
    // Almost every 32 bytes are a valid scalar; step past the rare ones that are not.
    let key = loop {
        if let Ok(key) = SigningKey::from_slice(&scalar) {
            break key;
        }
        scalar[0] = scalar[0].wrapping_add(1);
    };
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    create_secret(
        client,
        "cosign-keys",
        [("cosign.pub".to_string(), pem)].into(),
    )
    .await;
    key
}

/// Verification with the cosign public keys of the Secret `cosign-keys`.
pub fn cosign_verification() -> OCIRepositoryVerification {
    OCIRepositoryVerification {
        provider: "cosign".into(),
        secret_ref: Some(LocalObjectReference {
            name: "cosign-keys".into(),
        }),
        match_oidc_identity: None,
        trusted_root_secret_ref: None,
    }
}

/// A client of the loopback registry (plain HTTP) with `auth`.
pub fn registry_client(auth: OciAuth) -> OciClient {
    OciClient::new(&OciOptions {
        auth,
        insecure: true,
        ..OciOptions::default()
    })
    .expect("client")
}

/// Stores `tree` as the artifact of the GitRepository `namespace/name` at `revision`, as
/// source-controller would have, creating the GitRepository the first time (no Git server: the
/// suites that read sources test their own kind, not the fetch).
pub async fn publish_git_artifact(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    tree: &std::path::Path,
    revision: &str,
) -> ferroflux_source::artifact::Artifact {
    use ferroflux_api::source::{GitRepository, GitRepositorySpec};
    use ferroflux_source::artifact::IgnoreRules;
    use ferroflux_source::storage::ObjectKey;
    use kube::api::{Patch, PatchParams};
    let key = ObjectKey::new("GitRepository", namespace, name);
    let rules = IgnoreRules::flux_defaults();
    let artifact = (cluster.storage)
        .store_dir(&key, revision, tree, &rules)
        .expect("packs the tree");
    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), namespace);
    if api.get_opt(name).await.expect("reads").is_none() {
        let spec = GitRepositorySpec {
            url: format!("https://git.example/{name}"),
            interval: "1m".into(),
            ..Default::default()
        };
        let repo = GitRepository::new(name, spec);
        api.create(&PostParams::default(), &repo)
            .await
            .expect("created");
    }
    let status = json!({"status": {"artifact": {
        "path": artifact.path, "url": artifact.url, "revision": artifact.revision,
        "digest": artifact.digest, "size": artifact.size,
        "lastUpdateTime": artifact.last_update_time.to_string()}}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    artifact
}

/// Creates `object` in [`NS`] and returns it as the API server stored it.
pub async fn create<K>(client: &Client, mut object: K) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + DeserializeOwned,
{
    object.meta_mut().namespace = Some(NS.into());
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    let what = K::kind(&());
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|err| panic!("{what} created: {err}"))
}

/// Serves `router` on a free loopback port; its `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Serves `files` (by URL path) over HTTP on loopback, 404 for any other path (a Helm
/// repository: `index.yaml` and chart archives); its `http://127.0.0.1:PORT`.
pub async fn serve_files(files: BTreeMap<String, Vec<u8>>) -> String {
    let files = Arc::new(files);
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(body) => (axum::http::StatusCode::OK, body.clone()),
                None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    serve(router).await
}
