//! The generated CRDs are structural, carry Flux's printer columns, and every served version of
//! every kind converts to the storage version without loss.

mod common;

use common::{json_round_trip, numbers_as_floats};
use ferroflux_api::convert;
use ferroflux_api::crds::{self, SERVED_KINDS};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::{Value, json};

fn storage_schema(kind: &ferroflux_api::crds::ServedKind) -> JSONSchemaProps {
    let crd = kind.definition();
    crd.spec.versions[0]
        .schema
        .clone()
        .and_then(|s| s.open_api_v3_schema)
        .expect("schema")
}

/// Collects the paths of schema nodes that have neither a type nor preserve-unknown-fields.
fn untyped_nodes(schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    let preserves = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    if schema.type_.is_none() && !preserves && schema.x_kubernetes_int_or_string != Some(true) {
        out.push(path.to_string());
    }
    for (name, child) in schema.properties.iter().flatten() {
        untyped_nodes(child, &format!("{path}.{name}"), out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        untyped_nodes(items, &format!("{path}[]"), out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &schema.additional_properties {
        untyped_nodes(additional, &format!("{path}{{}}"), out);
    }
    for branch in [&schema.any_of, &schema.one_of, &schema.all_of]
        .into_iter()
        .flatten()
    {
        for alternative in branch {
            // Structural schemas allow only value validations under anyOf/oneOf/allOf.
            assert!(
                alternative.type_.is_none() && alternative.properties.is_none(),
                "{path}: a type or properties under anyOf/oneOf/allOf is not structural"
            );
        }
    }
}

#[test]
fn every_schema_is_structural() {
    for kind in SERVED_KINDS {
        let mut untyped = Vec::new();
        let schema = storage_schema(kind);
        for (name, child) in schema.properties.iter().flatten() {
            if name != "metadata" {
                untyped_nodes(child, name, &mut untyped);
            }
        }
        assert!(
            untyped.is_empty(),
            "{}: untyped schema nodes {untyped:?}",
            kind.kind()
        );
    }
}

#[test]
fn every_crd_has_a_status_subresource_where_the_kind_has_status_and_flux_columns() {
    for crd in crds::all() {
        let kind = &crd.spec.names.kind;
        let storage = &crd.spec.versions[0];
        assert!(storage.storage && storage.served);
        let columns: Vec<&str> = storage
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        let has_status = storage
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.properties.as_ref())
            .is_some_and(|p| p.contains_key("status"));
        assert_eq!(
            storage
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            has_status,
            "{kind}: status subresource"
        );
        if crd.spec.group.ends_with("toolkit.fluxcd.io") && has_status {
            for wanted in ["Age", "Ready", "Status"] {
                assert!(
                    columns.contains(&wanted),
                    "{kind}: no {wanted} column in {columns:?}"
                );
            }
        }
        for older in &crd.spec.versions[1..] {
            assert!(older.served && !older.storage, "{kind} {}", older.name);
            assert_eq!(
                older.schema, storage.schema,
                "{kind} {}: one schema",
                older.name
            );
        }
    }
}

/// A value for every field the schema declares, so a round trip shows any field the typed
/// struct would drop.
fn full_sample(schema: &JSONSchemaProps) -> Value {
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) && schema.properties.is_none() {
        return json!({"kept": {"as": ["written", 1, true]}});
    }
    if let Some(first) = schema.enum_.as_ref().and_then(|e| e.first()) {
        return first.0.clone();
    }
    match schema.type_.as_deref() {
        Some("object") => {
            let mut map = serde_json::Map::new();
            for (name, child) in schema.properties.iter().flatten() {
                map.insert(name.clone(), full_sample(child));
            }
            if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &schema.additional_properties {
                map.insert("some-key".into(), full_sample(additional));
            }
            Value::Object(map)
        }
        Some("array") => match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(items)) => json!([full_sample(items)]),
            _ => json!([]),
        },
        Some("string") => match (schema.format.as_deref(), schema.pattern.as_deref()) {
            (Some("date-time"), _) => json!("2026-11-28T12:00:00Z"),
            (_, Some(p)) if p.contains("ms|s|m|h") => json!("1m30s"),
            (_, Some(p)) if p.starts_with("^oci://") => json!("oci://registry.example/repo"),
            (_, Some(p)) if p.contains("http") => json!("https://git.example/repo"),
            _ => json!("value"),
        },
        Some("integer") => json!(3),
        Some("number") => json!(2.5),
        Some("boolean") => json!(true),
        _ => json!("value"),
    }
}

#[test]
fn every_served_version_converts_to_storage_without_loss() {
    for kind in SERVED_KINDS {
        let schema = storage_schema(kind);
        let mut versions = vec![kind.storage_version()];
        versions.extend(kind.older_versions.iter().map(|v| v.to_string()));
        for version in versions {
            let mut object = full_sample(&schema);
            object["apiVersion"] = json!(format!("{}/{version}", kind.group()));
            object["kind"] = json!(kind.kind());
            object["metadata"] = json!({"name": "sample", "namespace": "default"});
            let mut stored = object.clone();
            convert::to_storage(&mut stored).expect("served versions convert");
            assert_eq!(
                stored["apiVersion"],
                json!(format!("{}/{}", kind.group(), kind.storage_version()))
            );
            let back = with_kind!(kind.kind().as_str(), json_round_trip, &stored);
            assert_eq!(
                back,
                numbers_as_floats(stored.clone()),
                "{} {version}: a field was lost",
                kind.kind()
            );
            // and back down to the served version, unchanged but for apiVersion
            let mut down = back.clone();
            convert::to_version(&mut down, &version).expect("converts back");
            assert_eq!(
                down,
                numbers_as_floats(object),
                "{} {version}: not the object we started from",
                kind.kind()
            );
        }
    }
}
