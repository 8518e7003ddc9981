//! Flagger's config tracker: the ConfigMaps and Secrets a target's pod template references
//! (volumes, projected volumes, `env` and `envFrom`) are tracked by checksum, a change of one
//! starts an analysis like a change of the template, and the primary runs on `-primary`
//! copies of them. A config annotated `flagger.app/config-tracking: disabled`, or missing, is
//! not tracked (the primary then references it as it is).

use std::collections::BTreeMap;

use ferroflux_api::flagger::Canary;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::workload::{MANAGER, owner};

/// Flagger's annotation that opts a config out of tracking.
const TRACKING: &str = "flagger.app/config-tracking";
/// Most configs tracked for one target (tenant-written pod templates are bounded).
const MAX_TRACKED: usize = 64;

/// Where each reference lives in a pod spec: (kind, pointer to the name) per volume, per
/// projected source, per `env` entry and per `envFrom` entry.
fn each_reference(spec: &mut Value, mut visit: impl FnMut(&'static str, &mut Value)) {
    for volume in spec["volumes"].as_array_mut().into_iter().flatten() {
        if volume["configMap"].is_object() {
            visit("configmap", &mut volume["configMap"]["name"]);
        }
        if volume["secret"].is_object() {
            visit("secret", &mut volume["secret"]["secretName"]);
        }
        for source in volume["projected"]["sources"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if source["configMap"].is_object() {
                visit("configmap", &mut source["configMap"]["name"]);
            }
            if source["secret"].is_object() {
                visit("secret", &mut source["secret"]["name"]);
            }
        }
    }
    for field in ["containers", "initContainers"] {
        for container in spec[field].as_array_mut().into_iter().flatten() {
            for env in container["env"].as_array_mut().into_iter().flatten() {
                let from = &mut env["valueFrom"];
                if from["configMapKeyRef"].is_object() {
                    visit("configmap", &mut from["configMapKeyRef"]["name"]);
                }
                if from["secretKeyRef"].is_object() {
                    visit("secret", &mut from["secretKeyRef"]["name"]);
                }
            }
            for env in container["envFrom"].as_array_mut().into_iter().flatten() {
                if env["configMapRef"].is_object() {
                    visit("configmap", &mut env["configMapRef"]["name"]);
                }
                if env["secretRef"].is_object() {
                    visit("secret", &mut env["secretRef"]["name"]);
                }
            }
        }
    }
}

/// The `kind/name` keys of the configs the pod spec references.
fn references(pod_spec: &Value) -> Vec<(&'static str, String)> {
    let mut spec = pod_spec.clone();
    let mut out = Vec::new();
    each_reference(&mut spec, |kind, name| {
        if let Some(name) = name.as_str()
            && out.len() < MAX_TRACKED
            && !out.iter().any(|(k, n)| *k == kind && n == name)
        {
            out.push((kind, name.to_string()));
        }
    });
    out
}

/// Renames the references of `tracked` configs in `pod_spec` to their `-primary` copies.
pub fn rename(pod_spec: &mut Value, tracked: &BTreeMap<String, String>) {
    each_reference(pod_spec, |kind, name| {
        if let Some(text) = name.as_str()
            && tracked.contains_key(&format!("{kind}/{text}"))
        {
            *name = json!(format!("{text}-primary"));
        }
    });
}

fn tracking_disabled<K: ResourceExt>(object: &K) -> bool {
    object.annotations().get(TRACKING).map(String::as_str) == Some("disabled")
}

/// The tracked configs of `pod_spec` in `namespace` with their checksums (Flagger's
/// `status.trackedConfigs`: `configmap/NAME` or `secret/NAME` to a hash of the data).
pub async fn track(
    client: &kube::Client,
    namespace: &str,
    pod_spec: &Value,
) -> Result<BTreeMap<String, String>, kube::Error> {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut tracked = BTreeMap::new();
    for (kind, name) in references(pod_spec) {
        let data = if kind == "configmap" {
            configmaps
                .get_opt(&name)
                .await?
                .filter(|c| !tracking_disabled(c))
                .map(|c| json!({ "data": c.data, "binaryData": c.binary_data }))
        } else {
            secrets
                .get_opt(&name)
                .await?
                .filter(|s| !tracking_disabled(s))
                .map(|s| json!({ "data": s.data, "type": s.type_ }))
        };
        if let Some(data) = data {
            tracked.insert(format!("{kind}/{name}"), ferroflux_canary::spec_hash(&data));
        }
    }
    Ok(tracked)
}

/// Writes the `-primary` copies of the `tracked` configs, owned by the Canary.
pub async fn copy_to_primary(
    client: &kube::Client,
    canary: &Canary,
    tracked: &BTreeMap<String, String>,
) -> Result<(), kube::Error> {
    let namespace = canary.namespace().unwrap_or_default();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let apply = PatchParams::apply(MANAGER).force();
    for key in tracked.keys() {
        let Some((kind, name)) = key.split_once('/') else {
            continue;
        };
        let copy = format!("{name}-primary");
        let metadata = json!({
            "name": copy,
            "namespace": namespace,
            "ownerReferences": [owner(canary)],
        });
        if kind == "configmap" {
            let Some(source) = configmaps.get_opt(name).await? else {
                continue;
            };
            let object = json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                "data": source.data, "binaryData": source.binary_data,
            });
            configmaps
                .patch(&copy, &apply, &Patch::Apply(&object))
                .await?;
        } else {
            let Some(source) = secrets.get_opt(name).await? else {
                continue;
            };
            let object = json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": metadata,
                "type": source.type_, "data": source.data,
            });
            secrets.patch(&copy, &apply, &Patch::Apply(&object)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_renamed_only_when_tracked() {
        let mut spec = json!({
            "volumes": [
                {"name": "a", "configMap": {"name": "settings"}},
                {"name": "b", "secret": {"secretName": "creds"}},
                {"name": "c", "projected": {"sources": [{"configMap": {"name": "extra"}}]}},
            ],
            "containers": [{
                "name": "app",
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "x"}}}],
                "envFrom": [{"configMapRef": {"name": "untracked"}}],
            }],
        });
        let found = references(&spec);
        assert_eq!(
            found,
            vec![
                ("configmap", "settings".to_string()),
                ("secret", "creds".to_string()),
                ("configmap", "extra".to_string()),
                ("configmap", "untracked".to_string()),
            ]
        );
        let tracked: BTreeMap<String, String> = [
            ("configmap/settings".to_string(), "h1".to_string()),
            ("secret/creds".to_string(), "h2".to_string()),
        ]
        .into();
        rename(&mut spec, &tracked);
        assert_eq!(spec["volumes"][0]["configMap"]["name"], "settings-primary");
        assert_eq!(spec["volumes"][1]["secret"]["secretName"], "creds-primary");
        assert_eq!(
            spec["volumes"][2]["projected"]["sources"][0]["configMap"]["name"],
            "extra"
        );
        assert_eq!(
            spec["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"],
            "creds-primary"
        );
        assert_eq!(
            spec["containers"][0]["envFrom"][0]["configMapRef"]["name"],
            "untracked"
        );
    }
}
