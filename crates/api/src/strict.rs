//! Strict decoding: checks a manifest of a served kind against its CRD schema and reports every
//! unknown field, wrong type, missing required field and value outside an enum with its path
//! (`spec.intervall`), as `kubectl apply --validate=strict` would.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

use crate::convert::{ConvertError, split_api_version};
use crate::crds;

/// One problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    /// The object's apiVersion/kind is not served.
    #[error(transparent)]
    Kind(#[from] ConvertError),
    /// A field the schema does not know.
    #[error("unknown field \"{path}\"")]
    UnknownField {
        /// Dotted path of the field.
        path: String,
    },
    /// A value of the wrong JSON type.
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        /// Dotted path of the value.
        path: String,
        /// The type the schema wants.
        expected: String,
        /// The type found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("{path}: required field is missing")]
    Missing {
        /// Dotted path of the missing field.
        path: String,
    },
    /// A value outside the schema's enum.
    #[error("{path}: unsupported value {value}; supported values: {supported}")]
    NotInEnum {
        /// Dotted path of the value.
        path: String,
        /// The value found.
        value: String,
        /// The values the schema allows.
        supported: String,
    },
}

/// Checks `object` (any served version of a served kind) against its CRD schema.
pub fn check(object: &Value) -> Result<(), Vec<StrictError>> {
    let (Some(api_version), Some(kind)) = (object["apiVersion"].as_str(), object["kind"].as_str())
    else {
        return Err(vec![ConvertError::MissingTypeMeta.into()]);
    };
    let (group, version) = split_api_version(api_version);
    let Some(served) = crds::find(group, kind) else {
        return Err(vec![
            ConvertError::UnknownKind {
                group: group.into(),
                kind: kind.into(),
            }
            .into(),
        ]);
    };
    let mut probe = object.clone();
    crate::convert::to_version(&mut probe, version).map_err(|e| vec![e.into()])?;
    let crd = served.definition();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("every generated CRD has a schema");
    let mut errors = Vec::new();
    walk(schema, object, "", &mut errors, true);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk(
    schema: &JSONSchemaProps,
    value: &Value,
    path: &str,
    errors: &mut Vec<StrictError>,
    root: bool,
) {
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) && schema.properties.is_none() {
        return;
    }
    // A nullable field keeps its null; the API server drops a null from any other field (or
    // defaults it), so it is never a wrong type; a required one counts as missing (the
    // parent checks that).
    if value.is_null() {
        return;
    }
    if let Some(expected) = schema.type_.as_deref() {
        let found = json_type(value);
        let ok = found == expected || (expected == "number" && found == "integer");
        if !ok {
            errors.push(StrictError::WrongType {
                path: path.to_string(),
                expected: expected.to_string(),
                found,
            });
            return;
        }
    }
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|a| a.0 == *value)
    {
        let supported: Vec<String> = allowed.iter().map(|a| a.0.to_string()).collect();
        errors.push(StrictError::NotInEnum {
            path: path.to_string(),
            value: value.to_string(),
            supported: supported.join(", "),
        });
    }
    match value {
        Value::Object(map) => {
            for required in schema.required.iter().flatten() {
                let child_schema = schema.properties.as_ref().and_then(|p| p.get(required));
                let kept_null =
                    child_schema.is_some_and(|c| c.nullable == Some(true) || c.default.is_some());
                if map.get(required).is_none_or(|v| v.is_null() && !kept_null) {
                    errors.push(StrictError::Missing {
                        path: join(path, required),
                    });
                }
            }
            for (key, child) in map {
                // The root's type meta and metadata are checked by the API server itself.
                if root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_path = join(path, key);
                if let Some(child_schema) = schema.properties.as_ref().and_then(|p| p.get(key)) {
                    walk(child_schema, child, &child_path, errors, false);
                } else if let Some(JSONSchemaPropsOrBool::Schema(child_schema)) =
                    &schema.additional_properties
                {
                    walk(child_schema, child, &child_path, errors, false);
                } else if matches!(
                    schema.additional_properties,
                    Some(JSONSchemaPropsOrBool::Bool(true))
                ) {
                } else if schema.x_kubernetes_preserve_unknown_fields != Some(true) {
                    errors.push(StrictError::UnknownField { path: child_path });
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = &schema.items {
                for (index, item) in items.iter().enumerate() {
                    walk(
                        item_schema,
                        item,
                        &format!("{path}[{index}]"),
                        errors,
                        false,
                    );
                }
            }
        }
        _ => {}
    }
}
