//! Shared setup of the source reconciler tests: the embedded API server with Flux's CRDs
//! and a `flux-system` namespace, and an artifact storage served over HTTP.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroflux_source::storage::Storage;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The namespace the tests' objects live in.
pub const NS: &str = "flux-system";

/// A running API server and artifact storage; dropping it deletes the data.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub server: ferroflux_apiserver::RunningServer,
    pub client: Client,
    /// The admin config, from which impersonating clients are made.
    pub config: kube::Config,
    pub storage: Arc<Storage>,
}

pub async fn cluster() -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ferroflux_apiserver::Config::new(dir.path().join("api"));
    config.listen = "127.0.0.1:0".parse().expect("address");
    let server = ferroflux_apiserver::serve(config)
        .await
        .expect("API server starts");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config.clone()).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crds::all() {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD is accepted");
    }
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
    Cluster {
        dir,
        server,
        client,
        config,
        storage: Arc::new(storage),
    }
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
