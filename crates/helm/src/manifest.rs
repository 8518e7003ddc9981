//! Helm's `releaseutil`: rendered files split into YAML documents (`SplitManifests`),
//! hooks told apart from the release manifest (`SortManifests`), both in `InstallOrder`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::render::{Hook, RenderError};

/// Helm's `InstallOrder`: kinds in the order Helm installs them; others come after, by name.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The hook events Helm knows (`test-success` is the old name of `test`).
const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// One document of the release manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The template path it came from.
    pub name: String,
    /// The document.
    pub content: String,
    /// Its `kind`.
    pub kind: String,
}

/// Helm's `SplitManifests`: documents of a stream split at lines starting with `---`, blank
/// ones dropped, leading whitespace trimmed.
pub fn split_manifests(big: &str) -> Vec<String> {
    let big = big.trim_start();
    let mut docs = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    let bytes = big.as_bytes();
    let mut cuts = Vec::new();
    while line_start <= bytes.len() {
        if big[line_start..].starts_with("---") {
            let mut end = line_start + 3;
            while end < bytes.len() && (bytes[end] == b' ' || bytes[end] == b'\t') {
                end += 1;
            }
            cuts.push((line_start, end));
        }
        match big[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => break,
        }
    }
    for (cut_start, cut_end) in cuts {
        docs.push(&big[start..cut_start]);
        start = cut_end;
    }
    docs.push(&big[start..]);
    docs.into_iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim_start().to_string())
        .collect()
}

fn kind_rank(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

/// Helm's `lessByKind` as an ordering (used with a stable sort).
fn by_kind(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (kind_rank(a), kind_rank(b)) {
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Helm's `SortManifests` with `InstallOrder`: the rendered files (by path) to hooks and
/// manifests. Partials and blank files are skipped; a document that is not YAML fails.
///
/// # Errors
/// [`RenderError::Manifest`]: `YAML parse error on PATH: ...`.
pub fn sort_manifests(
    files: &BTreeMap<String, String>,
) -> Result<(Vec<Hook>, Vec<Manifest>), RenderError> {
    let mut hooks = Vec::new();
    let mut generic = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            let head: Value = crate::chart::lenient_yaml(&doc)
                .map_err(|e| RenderError::Manifest(format!("YAML parse error on {path}: {e}")))?;
            let head = match head {
                Value::Null => serde_json::Map::new(),
                Value::Object(m) => m,
                other => {
                    let kind = match other {
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        Value::Bool(_) => "bool",
                        _ => "array",
                    };
                    return Err(RenderError::Manifest(format!(
                        "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type util.SimpleHead"
                    )));
                }
            };
            let kind = head
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let meta = head.get("metadata").and_then(Value::as_object);
            let annotation = |key: &str| {
                meta.and_then(|m| m.get("annotations"))
                    .and_then(Value::as_object)
                    .and_then(|a| a.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let Some(hook_types) = annotation("helm.sh/hook") else {
                generic.push(Manifest {
                    name: path.clone(),
                    content: doc,
                    kind,
                });
                continue;
            };
            let events: Vec<String> = hook_types
                .split(',')
                .map(|h| h.trim().to_lowercase())
                .collect();
            if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
                // Helm skips a document with an unknown hook, in the manifest too.
                continue;
            }
            let events = events
                .into_iter()
                .map(|e| {
                    if e == "test-success" {
                        "test".into()
                    } else {
                        e
                    }
                })
                .collect();
            let list = |key: &str| -> Vec<String> {
                annotation(key)
                    .map(|v| v.split(',').map(|p| p.trim().to_lowercase()).collect())
                    .unwrap_or_default()
            };
            hooks.push(Hook {
                name: meta
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                kind,
                path: path.clone(),
                manifest: doc,
                events,
                weight: annotation("helm.sh/hook-weight")
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(0),
                delete_policies: list("helm.sh/hook-delete-policy"),
            });
        }
    }
    hooks.sort_by(|a, b| by_kind(&a.kind, &b.kind));
    generic.sort_by(|a, b| by_kind(&a.kind, &b.kind));
    Ok((hooks, generic))
}
