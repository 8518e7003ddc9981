//! Drift ignore rules (a Kustomization's `spec.ignore`), as Flux's resource manager applies
//! them: ignored JSON pointers are left out when the dry-run result is compared with the live
//! object, so changes other controllers (an HPA, a VPA, external-dns) make there never count as
//! drift. When something else drifted and the object is applied, each ignored field whose live
//! value differs is *stripped* from the payload if another server-side-apply manager owns it
//! (ownership passes to that manager), else the live value is *adopted* into the payload (the
//! field keeps its value and stays ours).

use serde_json::Value;

/// Why a JSON pointer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// Not empty and not starting with `/` (go-openapi's `jsonpointer` wording).
    #[error("JSON pointer must be empty or start with a \"/\"")]
    NoLeadingSlash,
    /// A `~` not followed by `0` or `1` (RFC 6901 section 3).
    #[error("invalid escape in JSON pointer: '~' must be followed by '0' or '1'")]
    BadEscape,
}

/// A JSON pointer (RFC 6901) as its unescaped reference tokens; no token is the whole document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pointer {
    tokens: Vec<String>,
}

impl Pointer {
    /// Parses `/spec/replicas` or `/metadata/annotations/example.com~1name`.
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        if text.is_empty() {
            return Ok(Pointer { tokens: Vec::new() });
        }
        let rest = text.strip_prefix('/').ok_or(PointerError::NoLeadingSlash)?;
        let tokens = rest
            .split('/')
            .map(unescape)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pointer { tokens })
    }

    /// The value at this pointer in `doc`, if any.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.tokens.iter().try_fold(doc, |node, token| match node {
            Value::Object(map) => map.get(token),
            Value::Array(items) => index(token).and_then(|i| items.get(i)),
            _ => None,
        })
    }

    fn parent_mut<'a>(&self, doc: &'a mut Value) -> Option<(&'a mut Value, &str)> {
        let (last, parents) = self.tokens.split_last()?;
        let parent = parents.iter().try_fold(doc, |node, token| match node {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => index(token).and_then(|i| items.get_mut(i)),
            _ => None,
        })?;
        Some((parent, last.as_str()))
    }

    /// Removes what this pointer names from `doc`; the whole document becomes `null`. A path
    /// that does not exist is left alone.
    pub fn remove(&self, doc: &mut Value) {
        if self.tokens.is_empty() {
            *doc = Value::Null;
            return;
        }
        match self.parent_mut(doc) {
            Some((Value::Object(map), last)) => {
                map.remove(last);
            }
            Some((Value::Array(items), last)) => {
                if let Some(i) = index(last).filter(|i| *i < items.len()) {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }

    /// Sets the value this pointer names in `doc` when its parent exists.
    fn replace(&self, doc: &mut Value, value: Value) {
        match self.parent_mut(doc) {
            Some((Value::Object(map), last)) => {
                map.insert(last.to_string(), value);
            }
            Some((Value::Array(items), last)) => {
                if let Some(slot) = index(last).and_then(|i| items.get_mut(i)) {
                    *slot = value;
                }
            }
            _ => {}
        }
    }
}

fn unescape(token: &str) -> Result<String, PointerError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return Err(PointerError::BadEscape),
        }
    }
    Ok(out)
}

/// An array index token: digits only, as RFC 6901 writes them.
fn index(token: &str) -> Option<usize> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// `object` with every ignored pointer removed, for the drift comparison.
pub fn without_ignored(mut object: Value, ignored: &[Pointer]) -> Value {
    for pointer in ignored {
        pointer.remove(&mut object);
    }
    object
}

/// The payload to apply for a drifted object: `desired` with each ignored field whose `live`
/// value differs from the dry-run result stripped (another apply manager owns it) or set to
/// the live value (`field_manager` is its only apply manager).
pub fn resolve_ignored(
    desired: &Value,
    live: &Value,
    dry_run: &Value,
    ignored: &[Pointer],
    field_manager: &str,
) -> Value {
    let mut payload = desired.clone();
    let owners = apply_managers(live);
    for pointer in ignored.iter().filter(|p| !p.tokens.is_empty()) {
        let live_value = pointer.get(live);
        if live_value == pointer.get(dry_run) {
            continue;
        }
        let others_own = field_path(live, pointer, &owners).is_some_and(|path| {
            owners
                .iter()
                .filter(|(manager, _)| manager != field_manager)
                .any(|(_, fields)| contains(fields, &path))
        });
        match live_value {
            Some(value) if !others_own => pointer.replace(&mut payload, value.clone()),
            _ => pointer.remove(&mut payload),
        }
    }
    payload
}

/// The `fieldsV1` of every server-side-apply manager of the main resource (not a subresource).
fn apply_managers(live: &Value) -> Vec<(String, Value)> {
    live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry["operation"] == "Apply"
                && entry["subresource"].as_str().is_none_or(str::is_empty)
                && entry["fieldsV1"].is_object()
        })
        .filter_map(|entry| {
            Some((
                entry["manager"].as_str()?.to_string(),
                entry["fieldsV1"].clone(),
            ))
        })
        .collect()
}

/// The `fieldsV1` keys naming `pointer` in `live`: `f:<field>` for a field, and for a list item
/// the `k:{...}` key some manager records whose fields all match the live item. `None` when a
/// list item has no such key (it cannot be owned by a merge key).
fn field_path(live: &Value, pointer: &Pointer, owners: &[(String, Value)]) -> Option<Vec<String>> {
    let mut path: Vec<String> = Vec::with_capacity(pointer.tokens.len());
    let mut node = live;
    for token in &pointer.tokens {
        match (node, index(token)) {
            (Value::Array(items), Some(i)) => {
                let item = items.get(i)?;
                path.push(list_key(item, &path, owners)?);
                node = item;
            }
            _ => {
                path.push(format!("f:{token}"));
                node = node.get(token).unwrap_or(&Value::Null);
            }
        }
    }
    Some(path)
}

fn list_key(item: &Value, parent: &[String], owners: &[(String, Value)]) -> Option<String> {
    let item = item.as_object()?;
    owners
        .iter()
        .filter_map(|(_, fields)| walk(fields, parent)?.as_object())
        .flat_map(|node| node.keys())
        .filter(|key| key.starts_with("k:"))
        .find(|key| {
            serde_json::from_str::<serde_json::Map<String, Value>>(&key[2..])
                .is_ok_and(|wanted| wanted.iter().all(|(k, v)| item.get(k) == Some(v)))
        })
        .cloned()
}

fn walk<'a>(fields: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(fields, |node, key| node.as_object()?.get(key))
}

fn contains(fields: &Value, path: &[String]) -> bool {
    !path.is_empty() && walk(fields, path).is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers(texts: &[&str]) -> Vec<Pointer> {
        texts
            .iter()
            .map(|t| Pointer::parse(t).expect("valid pointer"))
            .collect()
    }

    #[test]
    fn pointers_unescape_and_refuse_what_rfc_6901_refuses() {
        let doc = json!({"metadata": {"annotations": {"dns.example/host": "a", "x~y": "b"}},
            "spec": {"containers": [{"name": "app"}]}});
        let get = |p: &str| Pointer::parse(p).expect("valid").get(&doc).cloned();
        assert_eq!(
            get("/metadata/annotations/dns.example~1host"),
            Some(json!("a"))
        );
        assert_eq!(get("/metadata/annotations/x~0y"), Some(json!("b")));
        assert_eq!(get("/spec/containers/0/name"), Some(json!("app")));
        assert_eq!(get("/spec/containers/01x"), None);
        assert_eq!(get(""), Some(doc.clone()));
        assert_eq!(
            Pointer::parse("spec/replicas"),
            Err(PointerError::NoLeadingSlash)
        );
        assert_eq!(Pointer::parse("/spec/~2"), Err(PointerError::BadEscape));
        assert_eq!(Pointer::parse("/spec/~"), Err(PointerError::BadEscape));
    }

    #[test]
    fn ignored_paths_leave_the_comparison() {
        let live = json!({"spec": {"replicas": 7, "paused": false}, "metadata": {"name": "a"}});
        let dry_run = json!({"spec": {"replicas": 2, "paused": false}, "metadata": {"name": "a"}});
        let ignored = pointers(&["/spec/replicas", "/spec/missing/deeper"]);
        assert_eq!(
            without_ignored(live, &ignored),
            without_ignored(dry_run, &ignored)
        );
        assert_eq!(
            without_ignored(json!({"a": 1}), &pointers(&[""])),
            Value::Null
        );
    }

    fn managed(entries: Value) -> Value {
        json!({"metadata": {"managedFields": entries}})
    }

    #[test]
    fn a_drifted_field_of_another_apply_manager_is_stripped_else_adopted() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "resources": {"limits": {"cpu": "1"}}}]}}}});
        let dry_run = desired.clone();
        let mut live = managed(json!([
            {"manager": "kustomize-controller", "operation": "Apply", "fieldsV1":
                {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {"f:image": {}, "f:resources": {}}}}}}}},
            {"manager": "hpa", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "vpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:template":
                {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:resources": {}}}}}}}},
        ]));
        live["spec"] = json!({"replicas": 5, "template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "resources": {"limits": {"cpu": "3"}}}]}}});
        let ignored = pointers(&[
            "/spec/replicas",
            "/spec/template/spec/containers/0/resources",
        ]);
        let payload = resolve_ignored(&desired, &live, &dry_run, &ignored, "kustomize-controller");
        assert_eq!(
            payload["spec"].get("replicas"),
            None,
            "the HPA's apply owns replicas: stripped"
        );
        assert_eq!(
            payload["spec"]["template"]["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "3"}}),
            "only an Update changed the resources: the live value is adopted"
        );
        let unchanged = resolve_ignored(&desired, &dry_run, &dry_run, &ignored, "x");
        assert_eq!(
            unchanged, desired,
            "fields that did not drift stay as desired"
        );
    }
}
