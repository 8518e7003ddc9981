//! JSON patch, JSON merge patch and strategic merge patch.

use serde_json::{Map, Value};

use crate::builtin_schema;

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
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
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
    let p: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| JsonPatchError::Decode(format!("invalid JSON patch: {e}")))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &p)
        .map_err(|e| JsonPatchError::Apply(format!("the JSON patch cannot be applied: {e}")))?;
    Ok(out)
}

/// Why an RFC 6902 patch failed: kube-apiserver answers a patch it cannot read with 400 and one
/// whose operations fail on the object (a `test` that does not hold, a missing path) with 422.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JsonPatchError {
    /// The patch document is not a list of operations.
    #[error("{0}")]
    Decode(String),
    /// An operation failed on the object.
    #[error("{0}")]
    Apply(String),
}

impl From<JsonPatchError> for String {
    fn from(e: JsonPatchError) -> String {
        e.to_string()
    }
}

/// Why a JSON, merge or strategic merge patch cannot be read or merged, in the words
/// kube-apiserver answers with (400 BadRequest).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    /// The body is not JSON: the text Go's decoder gives for the same fault.
    #[error("{0}")]
    Syntax(String),
    /// An item of a list merged by key is not an object.
    #[error("{field}: items of a list merged by {key} must be objects")]
    ItemNotObject {
        /// The list's field.
        field: String,
        /// The list's merge key.
        key: String,
    },
    /// An item of a list merged by key lacks the key.
    #[error("{field}: an item has no merge key {key}")]
    NoMergeKey {
        /// The list's field.
        field: String,
        /// The list's merge key.
        key: String,
    },
}

impl From<PatchError> for String {
    fn from(e: PatchError) -> String {
        e.to_string()
    }
}

/// Parses a patch body, failing with the text Go's JSON decoder gives for the same fault (what
/// kube-apiserver quotes): `invalid character 'n' looking for beginning of object key string`.
pub fn parse_json(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body).map_err(|e| PatchError::Syntax(go_json_error(body, &e)))
}

fn go_json_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    if !e.is_syntax() {
        return e.to_string();
    }
    // serde_json's position is the offending byte: 1-based line and byte column.
    let line_start: usize = body
        .split(|b| *b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let at = (line_start + e.column()).checked_sub(1);
    let Some(&c) = at.and_then(|i| body.get(i)) else {
        return "unexpected end of JSON input".into();
    };
    let quoted = match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\n' => r"'\n'".to_string(),
        b'\t' => r"'\t'".to_string(),
        b'\r' => r"'\r'".to_string(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    };
    let message = e.to_string();
    // A trailing comma before `}` is where Go expects the next key.
    let key_expected = message.starts_with("key must be a string")
        || (message.starts_with("trailing comma") && c == b'}');
    let context = if key_expected {
        "looking for beginning of object key string"
    } else if message.starts_with("expected `:`") {
        "after object key"
    } else if message.starts_with("expected `,` or `}`") {
        "after object key:value pair"
    } else if message.starts_with("expected `,` or `]`") {
        "after array element"
    } else if message.starts_with("trailing characters") {
        "after top-level value"
    } else if message.starts_with("control character") {
        "in string literal"
    } else {
        "looking for beginning of value"
    };
    format!("invalid character {quoted} {context}")
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// How a list of a built-in kind merges under a strategic merge patch: kube-apiserver reads the
/// `patchStrategy`/`patchMergeKey` tags of its Go types, published in its OpenAPI schema as
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
enum ListStrategy {
    /// Items merge by this key field.
    Key(String),
    /// Primitive items merge as a set.
    Set,
    /// The patch's list replaces the target's.
    Replace,
}

/// The kind a strategic merge patch applies to (group, version, kind), read from the target
/// object itself, whose lists the kind's schema describes.
struct Kind {
    group: String,
    version: String,
    kind: String,
}

impl Kind {
    fn of(obj: &Value) -> Kind {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Kind {
            group: group.to_string(),
            version: version.to_string(),
            kind: obj["kind"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// The strategy of the list at `path` (property names from the root); fields the schema
    /// does not describe are replaced.
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        let Some(field) =
            builtin_schema::builtin_field(&self.group, &self.version, &self.kind, path)
        else {
            return ListStrategy::Replace;
        };
        let merge = field["x-kubernetes-patch-strategy"]
            .as_str()
            .is_some_and(|s| s.split(',').any(|s| s == "merge"));
        match (merge, field["x-kubernetes-patch-merge-key"].as_str()) {
            (true, Some(key)) => ListStrategy::Key(key.to_string()),
            (true, None) => ListStrategy::Set,
            (false, _) => ListStrategy::Replace,
        }
    }
}

/// Applies a strategic merge patch (the directives `$patch`, `$retainKeys`,
/// `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` are honoured).
///
/// Lists merge as the target's kind declares ([`ListStrategy`]); lists of kinds or fields kube's
/// schema does not describe are replaced.
pub fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let kind = Kind::of(target);
    let path = &mut Vec::new();
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => Ok(Value::Object(merge_map(&kind, path, t, p)?)),
        (_, Value::Object(p)) => Ok(Value::Object(merge_map(&kind, path, &Map::new(), p)?)),
        (_, p) => Ok(p.clone()),
    }
}

fn merge_map<'p>(
    kind: &Kind,
    path: &mut Vec<&'p str>,
    target: &Map<String, Value>,
    patch: &'p Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
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
                path.push(k);
                let merged = match out.get(k) {
                    Some(Value::Object(tm)) => merge_map(kind, path, tm, pm),
                    _ => merge_map(kind, path, &Map::new(), pm),
                };
                path.pop();
                out.insert(k.clone(), Value::Object(merged?));
            }
            Value::Array(pl) => {
                let cur = out
                    .get(k)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let order = patch
                    .get(&format!("$setElementOrder/{k}"))
                    .and_then(Value::as_array)
                    .map_or(pl.as_slice(), Vec::as_slice);
                path.push(k);
                let merged = merge_list(kind, path, &cur, pl, order);
                path.pop();
                out.insert(k.clone(), Value::Array(merged?));
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

/// Merges a list by its strategy; `order` is the patch's `$setElementOrder` for it, or the
/// patch list itself.
fn merge_list<'p>(
    kind: &Kind,
    path: &mut Vec<&'p str>,
    cur: &[Value],
    patch: &'p [Value],
    order: &[Value],
) -> Result<Vec<Value>, PatchError> {
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
    let field = path.last().copied().unwrap_or_default();
    let key = match kind.list_strategy(path) {
        ListStrategy::Key(key) => key,
        ListStrategy::Set => {
            let mut out = cur.to_vec();
            for v in patch {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            return Ok(kube_element_order(out, order, cur, None));
        }
        ListStrategy::Replace => return Ok(patch.to_vec()),
    };
    let key = key.as_str();
    let mut out = cur.to_vec();
    for item in patch {
        let Some(pm) = item.as_object() else {
            return Err(PatchError::ItemNotObject {
                field: field.to_string(),
                key: key.to_string(),
            });
        };
        let kv = pm.get(key).ok_or_else(|| PatchError::NoMergeKey {
            field: field.to_string(),
            key: key.to_string(),
        })?;
        let pos = out.iter().position(|c| c.get(key) == Some(kv));
        let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let merged = match &out[i] {
                    Value::Object(cm) => merge_map(kind, path, cm, pm)?,
                    _ => strip_directives(pm.clone()),
                };
                out[i] = Value::Object(merged);
            }
            (None, false) => out.push(Value::Object(merge_map(kind, path, &Map::new(), pm)?)),
        }
    }
    Ok(kube_element_order(out, order, cur, Some(key)))
}

/// Orders a merged list as kube-apiserver's strategic merge patch does: the items the patch
/// names, in the patch's order, interleaved with the items only the server has, in the
/// server's order; where two cannot be compared by their place on the server (an item new
/// to the server), the patch's item comes first.
fn kube_element_order(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let ident = |v: &Value| -> Value {
        match key {
            Some(key) => v.get(key).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let position = |list: &[Value], v: &Value| {
        let id = ident(v);
        list.iter().position(|x| ident(x) == id)
    };
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| position(order, v).is_some());
    named.sort_by_key(|v| position(order, v));
    server_only.sort_by_key(|v| position(server, v).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        named.into_iter().peekable(),
    );
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server, l), position(server, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_that_is_not_json_fails_in_go_decoders_words() {
        let cases = [
            (
                "{not-json}",
                "invalid character 'n' looking for beginning of object key string",
            ),
            ("{\"a\" 1}", "invalid character '1' after object key"),
            (
                "{\"a\": 1 \"b\"}",
                "invalid character '\"' after object key:value pair",
            ),
            ("[1 2]", "invalid character '2' after array element"),
            (
                "{\"a\": x}",
                "invalid character 'x' looking for beginning of value",
            ),
            (
                "{\"a\": 1,}",
                "invalid character '}' looking for beginning of object key string",
            ),
            ("{}\n}", "invalid character '}' after top-level value"),
            ("{\"a\": ", "unexpected end of JSON input"),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_json(body.as_bytes()).expect_err(body).to_string(),
                want,
                "{body}"
            );
        }
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "name": "http"}],
             "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}
        ], "tolerations": [{"key": "k"}]}, "metadata": {"finalizers": ["f1"]}})
    }

    #[test]
    fn strategic_merge_orders_lists_as_kube_does() {
        let cm = |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": f}});
        let step = |cur: Value, add: Value| {
            strategic_merge(&cm(cur), &json!({"metadata": {"finalizers": add}})).expect("merge")
                ["metadata"]["finalizers"]
                .clone()
        };
        // What kube-apiserver 1.36 answers to the same patches.
        assert_eq!(
            step(json!(["a", "b"]), json!(["c"])),
            json!(["c", "a", "b"])
        );
        assert_eq!(
            step(json!(["c", "a", "b"]), json!(["d", "b"])),
            json!(["d", "c", "a", "b"])
        );
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template":
            {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}});
        let names: Vec<Value> =
            strategic_merge(&deploy, &p).expect("merge")["spec"]["template"]["spec"]["containers"]
                .as_array()
                .expect("list")
                .iter()
                .map(|c| c["name"].clone())
                .collect();
        assert_eq!(names, [json!("sidecar"), json!("web")]);
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
        // kube-apiserver's order: the patch's items, with the server's own where they fit.
        assert_eq!(cs[1]["image"], "c:1");
        assert_eq!(cs[2]["image"], "b:1");
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "other"}]),
            "no merge key: replaced"
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["f2", "f1"]));
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
    fn strategic_lists_merge_by_kubes_patch_strategies() {
        // Webhooks merge by name.
        let vwc = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "webhooks": [{"name": "a", "sideEffects": "None"}, {"name": "b"}]});
        let out = strategic_merge(
            &vwc,
            &json!({"webhooks": [{"name": "a", "timeoutSeconds": 5}]}),
        )
        .expect("merge");
        assert_eq!(
            out["webhooks"],
            json!([{"name": "a", "sideEffects": "None", "timeoutSeconds": 5}, {"name": "b"}])
        );
        // EndpointSlice ports have no patch strategy: replaced, although the items have a port.
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "ports": [{"name": "http", "port": 80}]});
        let out = strategic_merge(&slice, &json!({"ports": [{"name": "https", "port": 443}]}))
            .expect("merge");
        assert_eq!(out["ports"], json!([{"name": "https", "port": 443}]));
        // Container ports merge by containerPort, service ports by port.
        let svc = json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80, "name": "a"}]}});
        let out = strategic_merge(
            &svc,
            &json!({"spec": {"ports": [{"port": 80, "name": "b"}]}}),
        )
        .expect("merge");
        assert_eq!(out["spec"]["ports"], json!([{"port": 80, "name": "b"}]));
    }

    #[test]
    fn json_and_merge_patches() {
        let t = json!({"a": 1, "b": {"c": 2}});
        let out =
            json_patch(&t, &json!([{"op": "replace", "path": "/b/c", "value": 3}])).expect("patch");
        assert_eq!(out["b"]["c"], 3);
        assert!(matches!(
            json_patch(&t, &json!([{"op": "remove", "path": "/zz"}])),
            Err(JsonPatchError::Apply(_))
        ));
        assert!(matches!(
            json_patch(&t, &json!({"op": "x"})),
            Err(JsonPatchError::Decode(_))
        ));
        assert_eq!(
            merge_patch(&t, &json!({"a": null, "d": 4})),
            json!({"b": {"c": 2}, "d": 4})
        );
    }
}
