//! What the admission tests share: an embedded API server on loopback with Kyverno's (and the
//! report kinds') CRDs installed, and a client of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;

/// A kube client from a kubeconfig text.
pub async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig usable");
    kube::Client::try_from(cfg).expect("client")
}

/// An API resource of a group/version/kind and its plural.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The embedded API server in `dir` with `config` changed by `configure` (validators).
pub async fn server(
    dir: &std::path::Path,
    configure: impl FnOnce(&mut ferroflux_apiserver::Config),
) -> ferroflux_apiserver::RunningServer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ferroflux_apiserver::Config::new(dir.join("apiserver"));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    configure(&mut config);
    ferroflux_apiserver::serve(config)
        .await
        .expect("server starts")
}

/// Every CRD of the `policy-webhook` component: Kyverno's policies and the report kinds.
pub async fn install_crds(client: &kube::Client) {
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
    );
    for kind in ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|k| k.component == "policy-webhook")
    {
        let mut crd = serde_json::to_value(kind.definition()).expect("crd");
        crd["apiVersion"] = json!("apiextensions.k8s.io/v1");
        crd["kind"] = json!("CustomResourceDefinition");
        let crd: DynamicObject = serde_json::from_value(crd).expect("object");
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD created");
    }
}
