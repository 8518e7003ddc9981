//! The objects of a HelmRelease as `flux tree` lists them: the manifest of the release's
//! latest Helm storage Secret, each object named `Kind/namespace/name` (namespaced objects
//! without a namespace in the release's), then the CRDs the release installed.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::Value;

use super::get;

/// The most a release's stored record may decode to.
const MAX_RELEASE_SIZE: u64 = 32 * 1024 * 1024;

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The `(group, text)` of every object the HelmRelease `namespace/name` manages; none for a
/// release on a remote cluster or without a stored release yet.
pub(crate) async fn inventory(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let releases: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &get::HELM_RELEASES.resource());
    let release = serde_json::to_value(releases.get(name).await?)?;
    if !release["spec"]["kubeConfig"].is_null() {
        return Ok(Vec::new());
    }
    let storage_namespace = text(&release["status"]["storageNamespace"]);
    let latest = &release["status"]["history"][0];
    if storage_namespace.is_empty() || !latest.is_object() {
        return Ok(Vec::new());
    }
    let secret_name = format!(
        "sh.helm.release.v1.{}.v{}",
        text(&latest["name"]),
        latest["version"].as_i64().unwrap_or(0)
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), storage_namespace);
    let Some(secret) = secrets.get_opt(&secret_name).await? else {
        return Ok(Vec::new());
    };
    let stored = ferroflux_helm::release::from_secret(
        &serde_json::to_value(secret)?,
        MAX_RELEASE_SIZE,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "failed to decode the Helm storage object for HelmRelease '{namespace}/{name}': {e}"
        )
    })?;
    let objects: Vec<Value> =
        ferroflux_gocompat::yaml::from_multiple(&stored.manifest).map_err(|e| {
            anyhow::anyhow!(
                "failed to read the Helm storage object for HelmRelease '{namespace}/{name}': {e}"
            )
        })?;
    let mut scopes: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut found = Vec::new();
    for object in objects.iter().filter(|o| o.is_object()) {
        let api_version = text(&object["apiVersion"]);
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let kind = text(&object["kind"]);
        let key = (api_version.to_string(), kind.to_string());
        let namespaced = match scopes.get(&key) {
            Some(namespaced) => *namespaced,
            None => {
                let gvk = GroupVersionKind::gvk(group, version, kind);
                // A kind the cluster does not serve is taken as namespaced, as most are.
                let namespaced = kube::discovery::pinned_kind(client, &gvk)
                    .await
                    .map_or(true, |(_, caps)| caps.scope == Scope::Namespaced);
                scopes.insert(key, namespaced);
                namespaced
            }
        };
        let object_name = text(&object["metadata"]["name"]);
        let object_namespace = match text(&object["metadata"]["namespace"]) {
            "" if namespaced => text(&latest["namespace"]),
            set => set,
        };
        let shown = if object_namespace.is_empty() {
            format!("{kind}/{object_name}")
        } else {
            format!("{kind}/{object_namespace}/{object_name}")
        };
        found.push((group.to_string(), shown));
    }
    found.extend(installed_crds(client, &release, &found).await);
    Ok(found)
}

/// The CRDs labelled as the release's, when it installs or upgrades CRDs.
async fn installed_crds(
    client: &kube::Client,
    release: &Value,
    found: &[(String, String)],
) -> Vec<(String, String)> {
    let manages = |action: &str| {
        let policy = text(&release["spec"][action]["crds"]);
        !policy.is_empty() && policy != "Skip"
    };
    if !manages("install") && !manages("upgrade") {
        return Vec::new();
    }
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let selector = format!(
        "helm.toolkit.fluxcd.io/name={},helm.toolkit.fluxcd.io/namespace={}",
        text(&release["metadata"]["name"]),
        text(&release["metadata"]["namespace"])
    );
    let Ok(list) = crds.list(&ListParams::default().labels(&selector)).await else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter_map(|crd| crd.metadata.name)
        .map(|name| format!("CustomResourceDefinition/{name}"))
        .filter(|shown| !found.iter().any(|(_, f)| f == shown))
        .map(|shown| ("apiextensions.k8s.io".to_string(), shown))
        .collect()
}
