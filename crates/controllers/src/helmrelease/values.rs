//! The values of a release in Flux's order: each `valuesFrom` reference in turn (a whole
//! values document merged, or one value set at `targetPath`), then `spec.values` merged last.

use ferroflux_api::helm::{HelmRelease, ValuesReference};
use ferroflux_apply::manager::api_message;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Map, Value};

use super::Context;
use crate::runtime::ReconcileError;

/// Flux's reason when values cannot be composed.
pub const VALUES_ERROR: &str = "ValuesError";
/// The key read when `valuesKey` is unset.
const DEFAULT_VALUES_KEY: &str = "values.yaml";
/// The longest values document read from one reference.
const MAX_VALUES_SIZE: usize = 4 * 1024 * 1024;
/// The most path segments of a `targetPath`.
const MAX_PATH_SEGMENTS: usize = 64;
/// The largest list index a `targetPath` may name.
const MAX_INDEX: usize = 65_535;

/// Composes the values of `hr`. Owns `ValuesError` (retried: the referenced object may come).
pub async fn compose(hr: &HelmRelease, ctx: &Context) -> Result<Value, ReconcileError> {
    let namespace = hr.namespace().unwrap_or_default();
    let mut values = Value::Object(Map::new());
    for reference in hr.spec.values_from.iter().flatten() {
        let Some(text) = read(ctx, &namespace, reference).await? else {
            continue;
        };
        apply_reference(&mut values, reference, &text).map_err(|e| {
            ReconcileError::generic(
                VALUES_ERROR,
                format!("{}/{}: {e}", reference.kind, reference.name),
            )
        })?;
    }
    if let Some(inline) = &hr.spec.values {
        ferroflux_helm::chartutil::merge_maps(&mut values, inline.clone());
    }
    Ok(values)
}

/// The text under the reference's key, `None` when the object or key is missing and the
/// reference is optional.
async fn read(
    ctx: &Context,
    namespace: &str,
    reference: &ValuesReference,
) -> Result<Option<String>, ReconcileError> {
    let key = reference
        .values_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .unwrap_or(DEFAULT_VALUES_KEY);
    let id = format!("{}/{}/{}", reference.kind, namespace, reference.name);
    let error = |message: String| ReconcileError::generic(VALUES_ERROR, message);
    let optional = reference.optional == Some(true);
    let data: Option<String> = match reference.kind.as_str() {
        "ConfigMap" => {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), namespace);
            let found = api
                .get_opt(&reference.name)
                .await
                .map_err(|e| error(format!("could not get {id}: {}", api_message(&e))))?;
            match found {
                None if optional => return Ok(None),
                None => return Err(error(format!("could not find {id}"))),
                Some(map) => map.data.and_then(|mut d| d.remove(key)),
            }
        }
        "Secret" => {
            let api: Api<Secret> = Api::namespaced(ctx.client().clone(), namespace);
            let found = api
                .get_opt(&reference.name)
                .await
                .map_err(|e| error(format!("could not get {id}: {}", api_message(&e))))?;
            match found {
                None if optional => return Ok(None),
                None => return Err(error(format!("could not find {id}"))),
                Some(secret) => secret
                    .data
                    .and_then(|mut d| d.remove(key))
                    .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned()),
            }
        }
        other => return Err(error(format!("unsupported ValuesReference kind '{other}'"))),
    };
    match data {
        None if optional => Ok(None),
        None => Err(error(format!("missing key '{key}' in {id}"))),
        Some(text) if text.len() > MAX_VALUES_SIZE => Err(error(format!(
            "values of {id} exceed {MAX_VALUES_SIZE} bytes"
        ))),
        Some(text) => Ok(Some(text)),
    }
}

/// Merges one reference's text into `values`: the whole document, or the one value at
/// `targetPath` (a string with `literal`, else typed as Helm's `--set` types it).
pub fn apply_reference(
    values: &mut Value,
    reference: &ValuesReference,
    text: &str,
) -> Result<(), String> {
    match reference.target_path.as_deref().filter(|p| !p.is_empty()) {
        None => {
            let document = ferroflux_helm::chartutil::read_values(text)
                .map_err(|e| format!("unable to read values: {e}"))?;
            ferroflux_helm::chartutil::merge_maps(values, document);
            Ok(())
        }
        Some(path) => {
            let value = if reference.literal == Some(true) {
                Value::String(text.to_string())
            } else {
                typed(text.trim_end_matches('\n'))
            };
            set_path(values, path, value)
        }
    }
}

/// Helm's `--set` typing of a scalar: `true`/`false`, `null`, integers, else a string.
fn typed(text: &str) -> Value {
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
    }
}

/// One step of a `targetPath`: a key (`a.b`, `\.` escapes a dot) or a list index (`[0]`).
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.extend(chars.next()),
            '.' => steps.push(Step::Key(std::mem::take(&mut key))),
            '[' => {
                if !key.is_empty() {
                    steps.push(Step::Key(std::mem::take(&mut key)));
                }
                let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                let index = digits
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= MAX_INDEX)
                    .ok_or_else(|| format!("invalid index '[{digits}]' in targetPath"))?;
                steps.push(Step::Index(index));
                if chars.peek() == Some(&'.') {
                    chars.next();
                }
            }
            c => key.push(c),
        }
        if steps.len() > MAX_PATH_SEGMENTS {
            return Err(format!(
                "targetPath has more than {MAX_PATH_SEGMENTS} segments"
            ));
        }
    }
    if !key.is_empty() {
        steps.push(Step::Key(key));
    }
    if steps
        .iter()
        .any(|s| matches!(s, Step::Key(k) if k.is_empty()))
    {
        return Err(format!("invalid targetPath '{path}'"));
    }
    Ok(steps)
}

fn set_path(values: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let steps = parse_path(path)?;
    let mut at = values;
    for step in &steps {
        at = match step {
            Step::Key(key) => {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                let Value::Object(map) = at else {
                    return Err("unreachable".into());
                };
                map.entry(key.clone()).or_insert(Value::Null)
            }
            Step::Index(index) => {
                if !at.is_array() {
                    *at = Value::Array(Vec::new());
                }
                let Value::Array(list) = at else {
                    return Err("unreachable".into());
                };
                if list.len() <= *index {
                    list.resize(index + 1, Value::Null);
                }
                &mut list[*index]
            }
        };
    }
    *at = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(target_path: Option<&str>, literal: bool) -> ValuesReference {
        ValuesReference {
            kind: "ConfigMap".into(),
            name: "values".into(),
            target_path: target_path.map(str::to_string),
            literal: literal.then_some(true),
            ..ValuesReference::default()
        }
    }

    #[test]
    fn documents_merge_and_target_paths_set_typed_or_literal_values() {
        let mut values = json!({"image": {"tag": "1.0", "repository": "podinfo"}});
        apply_reference(
            &mut values,
            &reference(None, false),
            "image:\n  tag: \"2.0\"\nreplicas: 2\n",
        )
        .expect("merges");
        apply_reference(
            &mut values,
            &reference(Some("ingress.hosts[1].name"), false),
            "example.com",
        )
        .expect("sets");
        apply_reference(&mut values, &reference(Some("replicas"), false), "3").expect("sets");
        apply_reference(&mut values, &reference(Some("token"), true), "007").expect("sets");
        apply_reference(
            &mut values,
            &reference(Some(r"annotations.a\.b"), false),
            "true",
        )
        .expect("sets");
        assert_eq!(
            values,
            json!({
                "image": {"tag": "2.0", "repository": "podinfo"},
                "replicas": 3,
                "ingress": {"hosts": [null, {"name": "example.com"}]},
                "token": "007",
                "annotations": {"a.b": true},
            })
        );
    }

    #[test]
    fn huge_indexes_and_empty_segments_are_refused() {
        let mut values = json!({});
        assert!(apply_reference(&mut values, &reference(Some("a[99999999]"), false), "x").is_err());
        assert!(apply_reference(&mut values, &reference(Some("a..b"), false), "x").is_err());
    }
}
