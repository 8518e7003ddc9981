//! Shared setup of the controller end-to-end tests: an API server with Flux's CRDs and a
//! `flux-system` namespace, and an artifact storage served over HTTP.
//!
//! The API server is the embedded one by default; with `FERROFLUX_TEST_APISERVER=kube-apiserver`
//! it is the real kube-apiserver (etcd + kube-apiserver + kube-controller-manager built by
//! `scripts/peers.sh`), so every suite proves the same outcomes on both. `./test.sh` runs the
//! suites once each way.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_source::storage::Storage;
use ferroflux_testpeers::{KubeApiserver, PeerError};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
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
async fn install_crds(client: &Client) {
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
