//! Discovery documents (`/api`, `/apis`, `/apis/<g>/<v>`, `/version`) and OpenAPI documents.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::registry::{Registry, Resource};

/// The Kubernetes version whose API is served.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-ferroflux",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

fn resource_entry(r: &Resource) -> Value {
    let mut e = json!({
        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
        "kind": r.kind, "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    e
}

/// The resources served in one group version; `None` when there are none.
fn served_in(reg: &Registry, group: &str, version: &str) -> Option<Vec<Arc<Resource>>> {
    let rs: Vec<_> = reg
        .all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    (!rs.is_empty()).then_some(rs)
}

/// `APIResourceList` for one group version; `None` when nothing is served there.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let rs = served_in(reg, group, version)?;
    let mut list = Vec::new();
    for r in &rs {
        list.push(resource_entry(r));
        if r.status {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.scale.is_some() {
            list.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
        for (sub, kind, verbs) in [
            ("attach", "PodAttachOptions", json!(["create", "get"])),
            (
                "ephemeralcontainers",
                "Pod",
                json!(["get", "patch", "update"]),
            ),
            ("exec", "PodExecOptions", json!(["create", "get"])),
            ("log", "Pod", json!(["get"])),
            (
                "portforward",
                "PodPortForwardOptions",
                json!(["create", "get"]),
            ),
        ] {
            if r.has_subresource(sub) {
                list.push(json!({"name": format!("{}/{sub}", r.plural), "singularName": "", "namespaced": r.namespaced,
                    "kind": kind, "verbs": verbs}));
            }
        }
        if r.has_subresource("token") {
            list.push(json!({"name": format!("{}/token", r.plural), "singularName": "", "namespaced": r.namespaced,
                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// `/apis`.
pub fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = reg
                .versions(&g)
                .into_iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(reg: &Registry, g: &str) -> Option<Value> {
    let versions: Vec<Value> = reg
        .versions(g)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first()?.clone();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": preferred}),
    )
}

fn definition_name(r: &Resource) -> String {
    let g = if r.group.is_empty() { "core" } else { &r.group };
    let rev: Vec<&str> = g.split('.').rev().collect();
    format!("{}.{}.{}", rev.join("."), r.version, r.kind)
}

fn gvk(r: &Resource) -> Value {
    json!([{"group": r.group, "version": r.version, "kind": r.kind}])
}

fn schema_for(r: &Resource) -> Value {
    let mut s =
        r.schema.as_deref().cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
    if let Some(m) = s.as_object_mut() {
        m.insert("x-kubernetes-group-version-kind".into(), gvk(r));
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            let (header, _) = crate::builtin_schema::object_header();
            for key in ["apiVersion", "kind"] {
                p.entry(key).or_insert_with(|| header[key].clone());
            }
            // An inline object: the v2 document has no ObjectMeta definition to refer to.
            let description = header["metadata"]["description"].clone();
            p.insert(
                "metadata".into(),
                json!({"type": "object", "description": description}),
            );
        }
    }
    s
}

/// A minimal OpenAPI v2 document: CRD schemas (for `kubectl explain`) and permissive built-ins.
pub fn openapi_v2(reg: &Registry) -> Value {
    let mut defs = Map::new();
    for r in reg.all() {
        // Built-in schemas are compiled into kubectl; serve only what we know precisely.
        if r.custom {
            defs.insert(definition_name(&r), schema_for(&r));
        }
    }
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}, "definitions": defs})
}

/// The protobuf OpenAPI v2 document (see [`crate::proto::openapi_v2_document`]).
pub fn openapi_v2_proto(reg: &Registry) -> Vec<u8> {
    let rs = reg.all();
    let paths: Vec<String> = rs.iter().map(|r| patch_path(r)).collect();
    let list: Vec<crate::proto::PatchPath<'_>> = rs
        .iter()
        .zip(&paths)
        .map(|(r, p)| crate::proto::PatchPath {
            path: p,
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
        })
        .collect();
    crate::proto::openapi_v2_document(&list)
}

fn patch_path(r: &Resource) -> String {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{base}/{}/{{name}}", r.plural)
    }
}

/// `/openapi/v3`: one entry per served group version.
pub fn openapi_v3_root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for r in reg.all() {
        let p = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/apis/<g>/<v>`: the schemas of that group version's built-in kinds (see
/// [`crate::builtin_schema`]) and custom resources.
pub fn openapi_v3_gv(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let rs = served_in(reg, group, version)?;
    let mut schemas = crate::builtin_schema::schemas(group, version)
        .cloned()
        .unwrap_or_default();
    let mut paths = Map::new();
    for r in &rs {
        if r.custom {
            // kube describes a custom resource's header as every kind's, with `metadata` a
            // reference to ObjectMeta (which kubectl explain names).
            let (header, defs) = crate::builtin_schema::object_header();
            let mut schema = schema_for(r);
            if let Some(props) = schema["properties"].as_object_mut() {
                props.insert("metadata".into(), header["metadata"].clone());
            }
            schemas.insert(definition_name(r), schema);
            for (name, d) in defs {
                schemas.entry(name.clone()).or_insert_with(|| d.clone());
            }
        }
        // kubectl looks for the fieldValidation parameter on PATCH to decide that the server
        // validates, and then skips its own (schema-based) validation.
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let op = json!({"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}]});
        paths.insert(patch_path(r), json!({"patch": op}));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {"schemas": schemas}}),
    )
}
