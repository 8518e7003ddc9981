//! JSON patch, JSON merge patch and strategic merge patch.

use serde_json::{Map, Value};

/// The patch flavours, by request content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Applies an RFC 6902 patch document. As in kube-apiserver, `test` of a missing path against
/// `null` succeeds (kube-runtime's finalizer helper relies on it for objects without finalizers).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let mut patch = patch.clone();
    if let Some(ops) = patch.as_array_mut() {
        ops.retain(|op| {
            let missing_null_test = op["op"] == "test"
                && op["value"].is_null()
                && op["path"]
                    .as_str()
                    .is_some_and(|path| target.pointer(path).is_none());
            !missing_null_test
        });
    }
    let p: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| format!("invalid JSON patch: {e}"))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &p)
        .map_err(|e| format!("the JSON patch cannot be applied: {e}"))?;
    Ok(out)
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// The patchMergeKey of a list field of the built-in kinds, by field name and, where one field
/// name has two keys (container ports vs service ports), by the items.
pub fn merge_key(field: &str, items: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "secrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().any(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Primitive lists merged as sets rather than replaced.
fn merges_as_set(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch (the directives `$patch`, `$retainKeys`,
/// `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` are honoured).
pub fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, String> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_map(t, p)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(&Map::new(), p)?)),
        (_, p) => Ok(p.clone()),
    }
}

fn merge_map(
    target: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        p.remove("$patch");
        return Ok(strip_directives(p));
    }
    if patch.get("$patch").and_then(Value::as_str) == Some("delete") {
        return Ok(Map::new());
    }
    let mut out = target.clone();
    if let Some(keys) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        out.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in patch {
        if k == "$retainKeys" || k == "$patch" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Some(del)) = (out.get_mut(field), v.as_array()) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(pm) => {
                let merged = match out.get(k) {
                    Some(Value::Object(tm)) => merge_map(tm, pm)?,
                    _ => merge_map(&Map::new(), pm)?,
                };
                out.insert(k.clone(), Value::Object(merged));
            }
            Value::Array(pl) => {
                let cur = out
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(merge_list(k, &cur, pl)?));
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    Ok(out)
}

fn strip_directives(mut m: Map<String, Value>) -> Map<String, Value> {
    m.retain(|k, _| !k.starts_with('$'));
    m
}

fn merge_list(field: &str, cur: &[Value], patch: &[Value]) -> Result<Vec<Value>, String> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    if merges_as_set(field) {
        let mut out = cur.to_vec();
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(out);
    }
    let all: Vec<Value> = cur.iter().chain(patch.iter()).cloned().collect();
    let Some(key) = merge_key(field, &all) else {
        return Ok(patch.to_vec());
    };
    let mut out = cur.to_vec();
    for item in patch {
        let Some(pm) = item.as_object() else {
            return Err(format!(
                "{field}: items of a list merged by {key} must be objects"
            ));
        };
        let kv = pm
            .get(key)
            .ok_or_else(|| format!("{field}: an item has no merge key {key}"))?;
        let pos = out.iter().position(|c| c.get(key) == Some(kv));
        let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let merged = match &out[i] {
                    Value::Object(cm) => merge_map(cm, pm)?,
                    _ => strip_directives(pm.clone()),
                };
                out[i] = Value::Object(merged);
            }
            (None, false) => out.push(Value::Object(merge_map(&Map::new(), pm)?)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ], "tolerations": [{"key": "k"}]}, "metadata": {"finalizers": ["f1"]}})
    }

    #[test]
    fn strategic_merges_by_keys() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
             "ports": [{"containerPort": 443}]},
            {"name": "c", "image": "c:1"}
        ], "tolerations": [{"key": "other"}]}, "metadata": {"finalizers": ["f2"]}});
        let out = strategic_merge(&pod(), &p).expect("merge");
        let cs = out["spec"]["containers"].as_array().expect("list");
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(
            cs[0]["env"],
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}])
        );
        assert_eq!(cs[0]["ports"].as_array().map(Vec::len), Some(2));
        assert_eq!(cs[1]["image"], "b:1");
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "other"}]),
            "no merge key: replaced"
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
    }

    #[test]
    fn strategic_directives() {
        let p = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}});
        let out = strategic_merge(&pod(), &p).expect("merge");
        assert_eq!(out["spec"]["containers"].as_array().map(Vec::len), Some(1));
        let p =
            json!({"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}});
        let out = strategic_merge(&pod(), &p).expect("merge");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "z", "image": "z"}])
        );
        let p = json!({"spec": {"$retainKeys": ["containers"], "containers": []}});
        let out = strategic_merge(&pod(), &p).expect("merge");
        assert!(out["spec"].get("tolerations").is_none());
        let p = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}});
        let out = strategic_merge(&pod(), &p).expect("merge");
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let p = json!({"spec": {"tolerations": null}});
        assert!(
            strategic_merge(&pod(), &p).expect("merge")["spec"]
                .get("tolerations")
                .is_none()
        );
    }

    #[test]
    fn json_and_merge_patches() {
        let t = json!({"a": 1, "b": {"c": 2}});
        let out =
            json_patch(&t, &json!([{"op": "replace", "path": "/b/c", "value": 3}])).expect("patch");
        assert_eq!(out["b"]["c"], 3);
        assert!(json_patch(&t, &json!([{"op": "remove", "path": "/zz"}])).is_err());
        assert!(json_patch(&t, &json!({"op": "x"})).is_err());
        assert_eq!(
            merge_patch(&t, &json!({"a": null, "d": 4})),
            json!({"b": {"c": 2}, "d": 4})
        );
    }
}
