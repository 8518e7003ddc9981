//! OpenAPI v3 schemas of the built-in kinds, as kube-apiserver serves them under
//! `/openapi/v3/api/v1` and `/openapi/v3/apis/<group>/<version>`.
//!
//! The schemas (types, descriptions, references) are the schemars derivations of k8s-openapi's
//! types; the `x-kubernetes-*` extensions they lack (list types, list-map keys, patch merge
//! keys, map types) come from kube-apiserver's own documents, extracted into
//! `openapi_extensions.json` by `tools/openapi_extensions.py`.
//!
//! Guarantees: every built-in kind the [`crate::registry`] serves has a definition carrying its
//! `x-kubernetes-group-version-kind`; each group version's document holds every definition its
//! kinds reference (`#/components/schemas/<name>`), so it is self-contained as kubectl expects.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

type Def = fn(&mut SchemaGenerator) -> String;

/// Adds `T`'s schema (and everything it references) to the generator; returns its name.
fn def<T: JsonSchema>(g: &mut SchemaGenerator) -> String {
    g.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The built-in kinds (group, version, kind) and their k8s-openapi types.
const KINDS: &[(&str, &str, &str, Def)] = &[
    ("", "v1", "Namespace", def::<api::core::v1::Namespace>),
    ("", "v1", "ServiceAccount", def::<api::core::v1::ServiceAccount>),
    ("", "v1", "Secret", def::<api::core::v1::Secret>),
    ("", "v1", "ConfigMap", def::<api::core::v1::ConfigMap>),
    ("", "v1", "Service", def::<api::core::v1::Service>),
    ("", "v1", "Endpoints", def::<api::core::v1::Endpoints>),
    ("", "v1", "Pod", def::<api::core::v1::Pod>),
    ("", "v1", "Event", def::<api::core::v1::Event>),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        def::<api::core::v1::PersistentVolumeClaim>,
    ),
    (
        "",
        "v1",
        "PersistentVolume",
        def::<api::core::v1::PersistentVolume>,
    ),
    ("", "v1", "Node", def::<api::core::v1::Node>),
    ("", "v1", "ResourceQuota", def::<api::core::v1::ResourceQuota>),
    ("", "v1", "LimitRange", def::<api::core::v1::LimitRange>),
    ("", "v1", "PodTemplate", def::<api::core::v1::PodTemplate>),
    (
        "apps",
        "v1",
        "ControllerRevision",
        def::<api::apps::v1::ControllerRevision>,
    ),
    ("apps", "v1", "Deployment", def::<api::apps::v1::Deployment>),
    ("apps", "v1", "ReplicaSet", def::<api::apps::v1::ReplicaSet>),
    ("apps", "v1", "StatefulSet", def::<api::apps::v1::StatefulSet>),
    ("apps", "v1", "DaemonSet", def::<api::apps::v1::DaemonSet>),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        def::<api::discovery::v1::EndpointSlice>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        def::<api::networking::v1::IngressClass>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        def::<api::networking::v1::Ingress>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        def::<api::networking::v1::NetworkPolicy>,
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        def::<api::node::v1::RuntimeClass>,
    ),
    ("events.k8s.io", "v1", "Event", def::<api::events::v1::Event>),
    ("batch", "v1", "Job", def::<api::batch::v1::Job>),
    ("batch", "v1", "CronJob", def::<api::batch::v1::CronJob>),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        def::<api::autoscaling::v2::HorizontalPodAutoscaler>,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        def::<api::policy::v1::PodDisruptionBudget>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        def::<api::rbac::v1::Role>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        def::<api::rbac::v1::ClusterRole>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        def::<api::rbac::v1::RoleBinding>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        def::<api::rbac::v1::ClusterRoleBinding>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        def::<api::authorization::v1::SelfSubjectAccessReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        def::<api::authorization::v1::SubjectAccessReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        def::<api::authorization::v1::LocalSubjectAccessReview>,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        def::<api::authorization::v1::SelfSubjectRulesReview>,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        def::<api::authentication::v1::TokenReview>,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        def::<api::authentication::v1::SelfSubjectReview>,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        def::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        def::<api::coordination::v1::Lease>,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        def::<api::scheduling::v1::PriorityClass>,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        def::<api::storage::v1::StorageClass>,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        def::<api::admissionregistration::v1::ValidatingWebhookConfiguration>,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        def::<api::admissionregistration::v1::MutatingWebhookConfiguration>,
    ),
    (
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        def::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>,
    ),
];

/// One group version's schemas and the definition name of each of its kinds.
struct GroupVersion {
    schemas: Map<String, Value>,
    kinds: BTreeMap<String, String>,
}

/// kube-apiserver's `x-kubernetes-*` extensions: definition -> ("" for the schema itself, or
/// a property) -> extensions.
fn extensions() -> &'static Map<String, Value> {
    static EXT: OnceLock<Map<String, Value>> = OnceLock::new();
    EXT.get_or_init(|| {
        serde_json::from_str(include_str!("openapi_extensions.json"))
            .expect("openapi_extensions.json is generated JSON")
    })
}

fn build(group: &str, version: &str) -> GroupVersion {
    let mut g = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut kinds = BTreeMap::new();
    for (kg, kv, kind, def) in KINDS {
        if *kg == group && *kv == version {
            kinds.insert(kind.to_string(), def(&mut g));
        }
    }
    let mut schemas = g.take_definitions(true);
    let ext = extensions();
    for (name, schema) in schemas.iter_mut() {
        let (Some(s), Some(e)) = (schema.as_object_mut(), ext.get(name)) else {
            continue;
        };
        for (prop, values) in e.as_object().into_iter().flatten() {
            let target = if prop.is_empty() {
                Some(&mut *s)
            } else {
                s.get_mut("properties")
                    .and_then(|p| p.get_mut(prop))
                    .and_then(Value::as_object_mut)
            };
            if let (Some(t), Some(v)) = (target, values.as_object()) {
                t.extend(v.clone());
            }
        }
    }
    for (kind, name) in &kinds {
        if let Some(s) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            // k8s-openapi's `metadata` is not optional, so schemars marks it required; kube's
            // documents never do (the server fills in what a create leaves out).
            if let Some(required) = s.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    s.remove("required");
                }
            }
            s.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": group, "kind": kind, "version": version}]),
            );
        }
    }
    GroupVersion { schemas, kinds }
}

fn all() -> &'static BTreeMap<(String, String), GroupVersion> {
    static ALL: OnceLock<BTreeMap<(String, String), GroupVersion>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = BTreeMap::new();
        for (g, v, _, _) in KINDS {
            let key = (g.to_string(), v.to_string());
            out.entry(key).or_insert_with(|| build(g, v));
        }
        out
    })
}

/// The `components.schemas` of a built-in group version; `None` when no built-in kind is
/// served there.
pub fn schemas(group: &str, version: &str) -> Option<&'static Map<String, Value>> {
    all()
        .get(&(group.to_string(), version.to_string()))
        .map(|gv| &gv.schemas)
}

/// The `apiVersion`, `kind` and `metadata` properties every kind has, as kube describes them,
/// and the definitions `metadata` references (ObjectMeta and what it uses), for the documents
/// of custom resources.
pub fn object_header() -> &'static (Map<String, Value>, Map<String, Value>) {
    static HEADER: OnceLock<(Map<String, Value>, Map<String, Value>)> = OnceLock::new();
    HEADER.get_or_init(|| {
        let gv = all()
            .get(&(String::new(), "v1".to_string()))
            .expect("core/v1 has built-in kinds");
        let config_map = gv
            .kinds
            .get("ConfigMap")
            .and_then(|name| gv.schemas.get(name))
            .expect("ConfigMap is built in");
        let mut props = Map::new();
        for key in ["apiVersion", "kind", "metadata"] {
            if let Some(p) = config_map["properties"].get(key) {
                props.insert(key.into(), p.clone());
            }
        }
        let mut defs = Map::new();
        let mut pending = vec![props["metadata"].clone()];
        // Bounded: each definition is added once, and there are finitely many.
        while let Some(v) = pending.pop() {
            for name in refs(&v) {
                if !defs.contains_key(&name)
                    && let Some(d) = gv.schemas.get(&name)
                {
                    defs.insert(name, d.clone());
                    pending.push(d.clone());
                }
            }
        }
        (props, defs)
    })
}

/// The definition names `v` references (`#/components/schemas/<name>`), at any depth.
fn refs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => r
                    .strip_prefix("#/components/schemas/")
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
                _ => refs(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

/// Follows `$ref` (also inside a single `allOf`, kube's form of a described reference) to
/// the definition it names in `schemas`.
pub fn resolve<'a>(schemas: &'a Map<String, Value>, s: &'a Value) -> &'a Value {
    let r = s["$ref"]
        .as_str()
        .or_else(|| s["allOf"][0]["$ref"].as_str());
    r.and_then(|r| r.strip_prefix("#/components/schemas/"))
        .and_then(|name| schemas.get(name))
        .unwrap_or(s)
}

/// The schema of the field at `path` (property names from the object's root; lists are
/// crossed into their items by themselves) of the built-in kind `group/version, kind`, as
/// written at its parent: the `x-kubernetes-*` extensions of a property sit there, beside
/// its reference. `None` for a kind that is not built in or a path it does not have.
pub fn builtin_field(
    group: &str,
    version: &str,
    kind: &str,
    path: &[&str],
) -> Option<&'static Value> {
    let gv = all().get(&(group.to_string(), version.to_string()))?;
    let mut cur = gv.schemas.get(gv.kinds.get(kind)?)?;
    for seg in path {
        let mut s = resolve(&gv.schemas, cur);
        // Bounded by the schema: an array's items are never an array of itself.
        for _ in 0..8 {
            if s["type"] != "array" {
                break;
            }
            s = resolve(&gv.schemas, &s["items"]);
        }
        cur = s.get("properties")?.get(*seg)?;
    }
    Some(cur)
}

/// The keys of the list at `path` of a built-in kind when kube-apiserver treats it as a map
/// (`x-kubernetes-list-type: map`), e.g. `["name"]` for a Deployment's
/// `spec.template.spec.containers`. `None` when the field is not a list-map (atomic or set
/// lists, unknown fields, kinds that are not built in).
///
/// Expected flow: server-side apply asks this for each list it merges of a built-in kind.
pub fn builtin_list_map_keys(
    group: &str,
    version: &str,
    kind: &str,
    path: &[&str],
) -> Option<Vec<String>> {
    let field = builtin_field(group, version, kind, path)?;
    if field["x-kubernetes-list-type"] != "map" {
        return None;
    }
    field["x-kubernetes-list-map-keys"].as_array().map(|keys| {
        keys.iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_served_builtin_kind_has_a_schema_with_its_gvk() {
        for r in Registry::default().all().iter().filter(|r| !r.custom) {
            let gv = all()
                .get(&(r.group.clone(), r.version.clone()))
                .unwrap_or_else(|| panic!("no schemas for {}", r.api_version()));
            let name = gv.kinds.get(&r.kind).expect("kind has a definition");
            assert_eq!(
                gv.schemas[name]["x-kubernetes-group-version-kind"][0]["kind"],
                r.kind.as_str()
            );
        }
    }

    #[test]
    fn kinds_do_not_require_metadata_and_custom_resources_get_kubes_header() {
        let gv = all()
            .get(&("apps".to_string(), "v1".to_string()))
            .expect("apps/v1");
        let d = &gv.schemas[&gv.kinds["Deployment"]];
        assert!(
            d["required"]
                .as_array()
                .is_none_or(|r| !r.contains(&json!("metadata"))),
            "{}",
            d["required"]
        );
        let (props, defs) = object_header();
        assert!(
            props["kind"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("In CamelCase"))
        );
        assert!(
            props["metadata"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Standard object's metadata. More info"))
        );
        let meta = resolve(defs, &props["metadata"]);
        assert!(meta["properties"]["managedFields"].is_object());
        for name in refs(meta) {
            assert!(
                defs.contains_key(&name),
                "{name} is in the header's definitions"
            );
        }
    }

    #[test]
    fn list_map_keys_come_from_kube_schemas() {
        let containers = ["spec", "template", "spec", "containers"];
        assert_eq!(
            builtin_list_map_keys("apps", "v1", "Deployment", &containers),
            Some(vec!["name".to_string()])
        );
        let ports = ["spec", "template", "spec", "containers", "ports"];
        assert_eq!(
            builtin_list_map_keys("apps", "v1", "Deployment", &ports),
            Some(vec!["containerPort".to_string(), "protocol".to_string()])
        );
        assert_eq!(
            builtin_list_map_keys("", "v1", "Service", &["spec", "ports"]),
            Some(vec!["port".to_string(), "protocol".to_string()])
        );
        // An atomic list and a field that does not exist are not list-maps.
        assert_eq!(
            builtin_list_map_keys("", "v1", "Pod", &["spec", "tolerations"]),
            None
        );
        assert_eq!(builtin_list_map_keys("", "v1", "Pod", &["nope"]), None);
        let env = builtin_field("", "v1", "Pod", &["spec", "containers", "env"]).expect("env");
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
    }
}
