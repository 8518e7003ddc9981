//! Server-side apply: field sets, `managedFields`, conflicts and field removal.
//!
//! A field set is a set of paths; a path step is a map key (`f:`), a list item selected by its
//! key fields (`k:`), a set member (`v:`) or, for atomic lists and maps, nothing (the list or
//! map is a leaf). Paths ending at an item mean "owns the item" (the `.` of `fieldsV1`).
//!
//! Lists and maps merge as kube-apiserver's structured-merge-diff merges them, by the schema:
//! `x-kubernetes-list-type` (`map` keyed by `x-kubernetes-list-map-keys`, whose missing key
//! fields take their schema default; `set`; anything else atomic) and `x-kubernetes-map-type:
//! atomic`. Built-in kinds use kube's own OpenAPI schema ([`crate::builtin_schema`]), custom
//! resources their CRD's; fields neither describes are untyped (atomic lists, granular maps).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::builtin_schema;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// A map key.
    F(String),
    /// A list-map item, by its key fields (JSON object text).
    K(String),
    /// A set member (JSON value text).
    V(String),
}

/// A path from the object root.
pub type Path = Vec<Step>;

/// How a list merges.
#[derive(Debug, Clone, PartialEq)]
enum ListKind {
    /// Items are identified by these key fields (with the default of a field an item omits).
    Map(Vec<(String, Option<Value>)>),
    Set,
    Atomic,
}

/// What tells list and map kinds apart: the CRD's schema, or kube's own for built-in kinds.
#[derive(Debug, Clone, Copy)]
pub struct Hints<'a> {
    /// CRD structural schema of the version, if any.
    pub schema: Option<&'a Value>,
    /// Group, version and kind of a built-in kind, whose schema is kube-apiserver's.
    pub builtin: Option<(&'a str, &'a str, &'a str)>,
    /// The write goes to the status subresource.
    pub status: bool,
}

/// Where `metadata` is looked up for custom resources: every kind's metadata is ObjectMeta,
/// which CRD schemas leave out.
const OBJECT_META_OF: (&str, &str, &str) = ("", "v1", "ConfigMap");

/// The schema of a field: as written at its parent (a property's extensions sit there, beside
/// its reference) and the definition that names (a type's own extensions sit there).
struct Field<'a> {
    at: &'a Value,
    def: &'a Value,
}

impl<'a> Field<'a> {
    fn ext(&self, key: &str) -> Option<&'a Value> {
        self.at.get(key).or_else(|| self.def.get(key))
    }
}

impl<'a> Hints<'a> {
    /// The schema of the field at `path`; `None` where no schema describes it.
    fn field(&self, path: &[Step]) -> Option<Field<'a>> {
        // A path ending at a list item is described by the list's `items`.
        if let Some((Step::K(_) | Step::V(_), list)) = path.split_last() {
            let list = self.field(list)?;
            let at = list.def.get("items")?;
            return Some(Field {
                at,
                def: self.resolve(at),
            });
        }
        let in_meta = matches!(path.first(), Some(Step::F(f)) if f == "metadata");
        let builtin = match self.builtin {
            Some(b) => b,
            None if in_meta => OBJECT_META_OF,
            None => {
                let mut node = self.schema?;
                for s in path {
                    node = match s {
                        Step::F(f) => node
                            .get("properties")
                            .and_then(|p| p.get(f))
                            .or_else(|| node.get("additionalProperties"))?,
                        Step::K(_) | Step::V(_) => node.get("items")?,
                    };
                }
                return Some(Field {
                    at: node,
                    def: node,
                });
            }
        };
        let (g, v, k) = builtin;
        let names: Vec<&str> = path
            .iter()
            .filter_map(|s| match s {
                Step::F(f) => Some(f.as_str()),
                Step::K(_) | Step::V(_) => None,
            })
            .collect();
        let at = builtin_schema::builtin_field(g, v, k, &names)?;
        Some(Field {
            at,
            def: builtin_schema::resolve(builtin_schema::schemas(g, v)?, at),
        })
    }

    /// The definition a schema node references (built-in schemas only; CRD schemas are
    /// inline).
    fn resolve(&self, node: &'a Value) -> &'a Value {
        match self
            .builtin
            .and_then(|(g, v, _)| builtin_schema::schemas(g, v))
        {
            Some(schemas) => builtin_schema::resolve(schemas, node),
            None => node,
        }
    }

    fn list_kind(&self, path: &[Step]) -> ListKind {
        let Some(field) = self.field(path) else {
            return ListKind::Atomic;
        };
        match field.ext("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let names = field
                    .ext("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str);
                let mut item = path.to_vec();
                item.push(Step::K(String::new()));
                ListKind::Map(
                    names
                        .map(|k| {
                            item.push(Step::F(k.to_string()));
                            let default = self.field(&item).and_then(|f| f.ext("default")).cloned();
                            item.pop();
                            (k.to_string(), default)
                        })
                        .collect(),
                )
            }
            Some("set") => ListKind::Set,
            _ => ListKind::Atomic,
        }
    }

    /// Whether the map at `path` is atomic (`x-kubernetes-map-type: atomic`): owned, merged
    /// and conflicting as one value.
    fn atomic_map(&self, path: &[Step]) -> bool {
        !path.is_empty()
            && self
                .field(path)
                .and_then(|f| f.ext("x-kubernetes-map-type"))
                .is_some_and(|t| t == "atomic")
    }
}

fn item_key(item: &Value, keys: &[(String, Option<Value>)]) -> Option<String> {
    let mut m = Map::new();
    for (k, default) in keys {
        m.insert(k.clone(), item.get(k).or(default.as_ref())?.clone());
    }
    Some(Value::Object(m).to_string())
}

/// `obj` with the key fields its list-map items omit set to their defaults, so that items are
/// found by the keys their paths name.
fn with_key_defaults(obj: &Value, hints: Hints<'_>) -> Value {
    fn fill(v: &mut Value, path: &mut Path, hints: Hints<'_>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    path.push(Step::F(k.clone()));
                    fill(child, path, hints);
                    path.pop();
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let ListKind::Map(keys) = hints.list_kind(path) else {
                    return;
                };
                for item in items.iter_mut() {
                    let Some(key) = item_key(item, &keys) else {
                        continue;
                    };
                    if let Some(m) = item.as_object_mut() {
                        for (k, default) in &keys {
                            if let (false, Some(d)) = (m.contains_key(k), default) {
                                m.insert(k.clone(), d.clone());
                            }
                        }
                    }
                    path.push(Step::K(key));
                    fill(item, path, hints);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = obj.clone();
    fill(&mut out, &mut Vec::new(), hints);
    out
}

/// Fields that are never owned (identity and server-set metadata).
fn ignored(path: &[Step], hints: Hints<'_>) -> bool {
    match path {
        // Writes to the main resource own no status field; writes to the status subresource
        // own nothing but status (and metadata).
        [Step::F(f)] if hints.status => !matches!(f.as_str(), "status" | "metadata"),
        [Step::F(f)] => matches!(f.as_str(), "apiVersion" | "kind" | "status"),
        [Step::F(m), Step::F(f)] if m == "metadata" => matches!(
            f.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "selfLink"
        ),
        _ => false,
    }
}

/// The field set of an object (leaf fields and list items).
pub fn fields_of(obj: &Value, hints: Hints<'_>) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    walk(obj, &mut Vec::new(), hints, false, &mut out);
    out
}

/// The compound nodes of an object (non-atomic maps and lists, below the root and outside
/// `metadata` itself): what an update that adds them owns as well, the `.` of `fieldsV1`.
fn nodes_of(obj: &Value, hints: Hints<'_>) -> BTreeSet<Path> {
    let mut all = BTreeSet::new();
    walk(obj, &mut Vec::new(), hints, true, &mut all);
    let leaves = fields_of(obj, hints);
    all.retain(|p| !leaves.contains(p) && !matches!(p.as_slice(), [Step::F(m)] if m == "metadata"));
    all
}

fn walk(v: &Value, path: &mut Path, hints: Hints<'_>, nodes: bool, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() && !hints.atomic_map(path) => {
            if nodes && !path.is_empty() {
                out.insert(path.clone());
            }
            for (k, child) in m {
                path.push(Step::F(k.clone()));
                if !ignored(path, hints) {
                    walk(child, path, hints, nodes, out);
                }
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match hints.list_kind(path) {
            ListKind::Map(keys) if items.iter().all(|i| item_key(i, &keys).is_some()) => {
                if nodes {
                    out.insert(path.clone());
                }
                for item in items {
                    let key = item_key(item, &keys).expect("checked above");
                    path.push(Step::K(key));
                    out.insert(path.clone());
                    walk(item, path, hints, nodes, out);
                    path.pop();
                }
            }
            ListKind::Set => {
                if nodes {
                    out.insert(path.clone());
                }
                for item in items {
                    path.push(Step::V(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at `path`, if present.
pub fn value_at<'v>(obj: &'v Value, path: &[Step]) -> Option<&'v Value> {
    let mut cur = obj;
    for s in path {
        cur = match s {
            Step::F(f) => cur.get(f)?,
            Step::K(k) => {
                let want: Map<String, Value> = serde_json::from_str(k).ok()?;
                cur.as_array()?
                    .iter()
                    .find(|i| want.iter().all(|(wk, wv)| i.get(wk) == Some(wv)))?
            }
            Step::V(v) => {
                let want: Value = serde_json::from_str(v).ok()?;
                cur.as_array()?.iter().find(|i| **i == want)?
            }
        };
    }
    Some(cur)
}

/// Whether two field values are equal as structured-merge-diff compares them: numbers by value
/// (`0` and `0.0` are the same, as a Go client and a Rust client write them), so that applying
/// the same manifest from both never conflicts.
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (a, b) => a == b,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.as_f64() == y.as_f64()
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Whether the value at `path` is owned as a value: a list item's own path (the `.` of
/// `fieldsV1`) only says that the item exists (its fields are owned one by one), unless the
/// item is atomic.
fn changes_value(path: &[Step], hints: Hints<'_>) -> bool {
    match path.last() {
        Some(Step::V(_)) => false,
        Some(Step::K(_)) => hints.atomic_map(path),
        _ => true,
    }
}

/// Removes the field at `path` (a map key or a list item); a no-op when absent.
pub fn remove_at(obj: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for s in parent {
        let next = match s {
            Step::F(f) => cur.get_mut(f),
            Step::K(_) | Step::V(_) => {
                let Some(found) = value_at(cur, std::slice::from_ref(s)).cloned() else {
                    return;
                };
                cur.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|i| **i == found))
            }
        };
        let Some(n) = next else { return };
        cur = n;
    }
    match last {
        Step::F(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Step::K(_) | Step::V(_) => {
            if let Some(found) = value_at(cur, std::slice::from_ref(last)).cloned()
                && let Some(a) = cur.as_array_mut()
            {
                a.retain(|i| *i != found);
            }
        }
    }
}

/// Removes maps and lists along `path` that a removal left empty.
fn drop_empty_parents(obj: &mut Value, path: &[Step]) {
    for n in (1..path.len()).rev() {
        let empty = match value_at(obj, &path[..n]) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return;
        }
        remove_at(obj, &path[..n]);
    }
}

/// Renders a path the way conflict messages do: `.spec.replicas`, `.spec.containers[name="a"]`.
pub fn path_string(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::F(f) => {
                s.push('.');
                s.push_str(f);
            }
            Step::K(k) => {
                let m: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Step::V(v) => s.push_str(&format!("[={v}]")),
        }
    }
    s
}

/// Encodes a field set as `fieldsV1`.
pub fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for step in path {
            let key = match step {
                Step::F(f) => format!("f:{f}"),
                Step::K(k) => format!("k:{k}"),
                Step::V(v) => format!("v:{v}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("fieldsV1 nodes are objects");
        }
        // A node (an item, or a map an update brought in) that also has owned fields below
        // it says that it is owned itself with `.`; one without is a plain leaf.
        let has_children = set
            .range(path.clone()..)
            .nth(1)
            .is_some_and(|next| next.starts_with(path));
        if has_children {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// Decodes `fieldsV1`.
pub fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    fn rec(node: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) {
        if (node.is_empty() || node.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in node {
            let step = if let Some(f) = k.strip_prefix("f:") {
                Step::F(f.to_string())
            } else if let Some(x) = k.strip_prefix("k:") {
                Step::K(x.to_string())
            } else if let Some(x) = k.strip_prefix("v:") {
                Step::V(x.to_string())
            } else {
                continue;
            };
            path.push(step);
            rec(child.as_object().unwrap_or(&Map::new()), path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if let Some(m) = v.as_object() {
        rec(m, &mut Vec::new(), &mut out);
    }
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion of the object when written.
    pub api_version: String,
    /// Subresource (e.g. `status`), or empty.
    pub subresource: String,
    /// Time of the last write.
    pub time: String,
    /// The fields owned.
    pub fields: BTreeSet<Path>,
}

/// Reads `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<Managed> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Managed {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
            time: e["time"].as_str().unwrap_or_default().to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
        })
        .collect()
}

/// Writes `metadata.managedFields` (entries owning nothing are dropped), in kube's order:
/// appliers before updaters, then by time (to the second), manager and subresource.
pub fn write_managed(obj: &mut Value, entries: &[Managed]) {
    let mut sorted: Vec<&Managed> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    let seconds = |t: &str| t.get(..19).unwrap_or(t).to_string();
    sorted.sort_by(|a, b| {
        (
            a.operation.as_str(),
            seconds(&a.time),
            &a.manager,
            &a.subresource,
        )
            .cmp(&(
                b.operation.as_str(),
                seconds(&b.time),
                &b.manager,
                &b.subresource,
            ))
    });
    let list: Vec<Value> = sorted
        .into_iter()
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.time.is_empty() {
                v["time"] = json!(e.time);
            }
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The apiVersion the other manager wrote with.
    pub api_version: String,
    /// The other manager's operation, `Apply` or `Update`.
    pub operation: String,
    /// The subresource the other manager wrote, or empty.
    pub subresource: String,
    /// The field.
    pub field: String,
}

impl Conflict {
    /// The manager as kube's conflict messages name it: quoted, with its subresource, and
    /// `using <apiVersion>` only for an Update manager (an applier's identity leaves the
    /// apiVersion out, so re-applying with another version stays the same manager).
    pub fn manager_label(&self) -> String {
        let mut label = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            label.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            label.push_str(&format!(" using {}", self.api_version));
        }
        label
    }
}

/// The message kube-apiserver gives for apply conflicts: one conflict inline, several grouped
/// by manager in the managers' order.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_label(),
            c.field
        );
    }
    // Keyed by the manager's identity, which orders by name first as kube's sort does.
    let mut groups: BTreeMap<[&str; 4], (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        let key = [
            c.manager.as_str(),
            c.operation.as_str(),
            c.api_version.as_str(),
            c.subresource.as_str(),
        ];
        groups
            .entry(key)
            .or_insert_with(|| (c.manager_label(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (label, fields) in groups.values() {
        lines.push(format!("conflicts with {label}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Who writes, and how.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Manager name.
    pub manager: &'a str,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// Subresource, or empty.
    pub subresource: &'a str,
    /// Now, RFC 3339.
    pub now: &'a str,
}

fn merge_apply(live: &mut Value, config: &Value, path: &mut Path, hints: Hints<'_>) {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !hints.atomic_map(path) => {
            for (k, cv) in c {
                path.push(Step::F(k.clone()));
                if !ignored(path, hints) || path.len() == 1 {
                    match l.get_mut(k) {
                        Some(lv) => merge_apply(lv, cv, path, hints),
                        None => {
                            l.insert(k.clone(), cv.clone());
                        }
                    }
                }
                path.pop();
            }
        }
        (Value::Array(l), Value::Array(c)) => match hints.list_kind(path) {
            ListKind::Map(keys) => {
                for item in c {
                    let key = item_key(item, &keys);
                    let pos = key.as_ref().and_then(|k| {
                        l.iter()
                            .position(|i| item_key(i, &keys).as_ref() == Some(k))
                    });
                    match (pos, key) {
                        (Some(i), Some(k)) => {
                            path.push(Step::K(k));
                            merge_apply(&mut l[i], item, path, hints);
                            path.pop();
                        }
                        _ => l.push(item.clone()),
                    }
                }
            }
            ListKind::Set => {
                for item in c {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListKind::Atomic => *l = c.clone(),
        },
        (l, c) => *l = c.clone(),
    }
}

/// Server-side apply of `config` by `w` onto `live` (an empty object `{}` to create).
///
/// Errors: the conflicts, when another manager owns a field set to a different value and
/// `force` is false.
pub fn apply(
    live: &Value,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
    hints: Hints<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut managed = read_managed(live);
    let new_fields = fields_of(config, hints);
    // Items are found by their keys, also where an item leaves a key field to its default.
    let live = &with_key_defaults(live, hints);
    let config = &with_key_defaults(config, hints);
    let changes =
        |p: &Path| changes_value(p, hints) && !same_value(value_at(live, p), value_at(config, p));
    let mine = |m: &Managed| {
        m.manager == w.manager && m.operation == "Apply" && m.subresource == w.subresource
    };
    let mut conflicts = Vec::new();
    for m in managed
        .iter()
        .filter(|m| !mine(m) && m.subresource == w.subresource)
    {
        for p in m.fields.intersection(&new_fields) {
            if changes(p) {
                conflicts.push(Conflict {
                    manager: m.manager.clone(),
                    api_version: m.api_version.clone(),
                    operation: m.operation.clone(),
                    subresource: m.subresource.clone(),
                    field: path_string(p),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let conflicting: BTreeSet<Path> = managed
        .iter()
        .filter(|m| !mine(m))
        .flat_map(|m| {
            m.fields
                .intersection(&new_fields)
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|p| changes(p))
        .collect();
    for m in managed.iter_mut().filter(|m| !mine(m)) {
        m.fields.retain(|p| !conflicting.contains(p));
    }
    let old: BTreeSet<Path> = managed
        .iter()
        .filter(|m| mine(m))
        .flat_map(|m| m.fields.clone())
        .collect();
    let mut out = live.clone();
    let mut dropped: Vec<&Path> = old
        .difference(&new_fields)
        .filter(|p| {
            !managed
                .iter()
                .filter(|m| !mine(m))
                .any(|m| m.fields.contains(*p))
        })
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove_at(&mut out, p);
        drop_empty_parents(&mut out, p);
    }
    merge_apply(&mut out, config, &mut Vec::new(), hints);
    // As kube's field manager: an apply that changes nothing in the object leaves the
    // applier's time as it was (none for a new applier).
    let unchanged = {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            v
        };
        strip(&out) == strip(live)
    };
    let time = match managed.iter().find(|m| mine(m)) {
        Some(previous) if unchanged => previous.time.clone(),
        _ if unchanged => String::new(),
        _ => w.now.to_string(),
    };
    managed.retain(|m| !mine(m));
    managed.push(Managed {
        manager: w.manager.to_string(),
        operation: "Apply".into(),
        api_version: w.api_version.to_string(),
        subresource: w.subresource.to_string(),
        time,
        fields: new_fields,
    });
    write_managed(&mut out, &managed);
    Ok(out)
}

/// The managedFields a write of the main resource sets itself, as kube's field manager takes
/// them: `[{}]` resets them, a non-empty list of valid entries replaces them (kubectl moves a
/// client-side applier's fields to its server-side applier this way); anything else, and
/// every write to a subresource, keeps the stored ones (`None`).
fn requested_managed(new: &Value, w: &Writer<'_>) -> Option<Vec<Managed>> {
    if !w.subresource.is_empty() {
        return None;
    }
    let entries = new["metadata"]["managedFields"].as_array()?;
    if entries.len() == 1 && entries[0].as_object().is_some_and(Map::is_empty) {
        return Some(Vec::new());
    }
    let valid = |e: &Value| {
        e["fieldsType"] == "FieldsV1"
            && e["fieldsV1"].is_object()
            && e["manager"].is_string()
            && matches!(e["operation"].as_str(), Some("Apply" | "Update"))
    };
    (!entries.is_empty() && entries.iter().all(valid)).then(|| read_managed(new))
}

/// Records a non-apply write (create, update, patch) from `old` to `new` by `w`: the fields it
/// changed become its own (taken from others), fields it removed are dropped everywhere.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>, hints: Hints<'_>) {
    let mut managed =
        requested_managed(new, w).unwrap_or_else(|| old.map(read_managed).unwrap_or_default());
    let new_fields = fields_of(new, hints);
    let old_fields = old.map(|o| fields_of(o, hints)).unwrap_or_default();
    let old_l = old.map(|o| with_key_defaults(o, hints));
    let new_l = with_key_defaults(new, hints);
    let changed: BTreeSet<Path> = new_fields
        .iter()
        .filter(|p| {
            let before = old_l.as_ref().and_then(|o| value_at(o, p));
            // An item that was there before is not changed by what changed inside it.
            if changes_value(p, hints) {
                before != value_at(&new_l, p)
            } else {
                before.is_none()
            }
        })
        .cloned()
        .collect();
    // As structured-merge-diff compares an update with the object before it: a map or list
    // the update brings in is the writer's too (`.`), where the object before lacked it. A
    // custom resource starts from nothing; a built-in kind from its Go type's empty value,
    // whose only absent compound fields this models are those of ObjectMeta.
    let node_owned = |p: &Path| {
        hints.builtin.is_none() || matches!(p.first(), Some(Step::F(m)) if m == "metadata")
    };
    let new_nodes: BTreeSet<Path> = nodes_of(new, hints)
        .into_iter()
        .filter(node_owned)
        .collect();
    let old_nodes: BTreeSet<Path> = old
        .map(|o| nodes_of(o, hints).into_iter().filter(node_owned).collect())
        .unwrap_or_default();
    let mut changed = changed;
    changed.extend(new_nodes.difference(&old_nodes).cloned());
    let removed: BTreeSet<&Path> = old_fields
        .difference(&new_fields)
        .chain(old_nodes.difference(&new_nodes))
        .collect();
    for m in managed.iter_mut() {
        m.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        let pos = managed.iter().position(|m| {
            m.manager == w.manager && m.operation == "Update" && m.subresource == w.subresource
        });
        let entry = match pos {
            Some(i) => &mut managed[i],
            None => {
                managed.push(Managed {
                    manager: w.manager.to_string(),
                    operation: "Update".into(),
                    api_version: w.api_version.to_string(),
                    subresource: w.subresource.to_string(),
                    time: String::new(),
                    fields: BTreeSet::new(),
                });
                managed.last_mut().expect("just pushed")
            }
        };
        entry.time = w.now.to_string();
        entry.fields.extend(changed);
    }
    write_managed(new, &managed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO: Hints<'static> = Hints {
        schema: None,
        builtin: None,
        status: false,
    };

    /// A Deployment's lists and maps by kube's schema.
    const DEPLOY: Hints<'static> = Hints {
        schema: None,
        builtin: Some(("apps", "v1", "Deployment")),
        status: false,
    };

    fn writer(m: &str) -> Writer<'_> {
        Writer {
            manager: m,
            api_version: "apps/v1",
            subresource: "",
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    /// `deploy(1, "x")` as created by an apply of manager `a`.
    fn created_by_a() -> Value {
        apply(
            &json!({"metadata": {"name": "d"}}),
            &deploy(1, "x"),
            &writer("a"),
            false,
            DEPLOY,
        )
        .expect("create")
    }

    #[test]
    fn fields_v1_round_trip() {
        let f = fields_of(&deploy(1, "x"), DEPLOY);
        let v = to_fields_v1(&f);
        assert!(
            v["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."]
                .is_object()
        );
        assert!(v.get("f:apiVersion").is_none());
        assert_eq!(from_fields_v1(&v), f);
    }

    #[test]
    fn an_integral_float_and_the_integer_are_the_same_value_not_a_conflict() {
        let crd = |minimum: Value| json!({"metadata": {"name": "c"}, "spec": {"validation": {"minimum": minimum}}});
        let live = apply(
            &json!({"metadata": {"name": "c"}}),
            &crd(json!(0.0)),
            &writer("a"),
            false,
            NO,
        )
        .expect("create");
        apply(&live, &crd(json!(0)), &writer("b"), false, NO).expect("same value, shared");
        let err = apply(&live, &crd(json!(0.5)), &writer("b"), false, NO).expect_err("conflict");
        assert_eq!(err.len(), 1);
    }

    #[test]
    fn conflict_messages_name_the_api_version_of_update_managers_only() {
        let conflict = |manager: &str, operation: &str, field: &str| Conflict {
            manager: manager.into(),
            api_version: "v1".into(),
            operation: operation.into(),
            subresource: String::new(),
            field: field.into(),
        };
        assert_eq!(
            conflict_message(&[conflict("kubectl-edit", "Update", ".data.a")]),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.a"
        );
        let mut status = conflict("ctl", "Update", ".status.phase");
        status.subresource = "status".into();
        assert_eq!(
            conflict_message(&[
                conflict("b", "Apply", ".data.x"),
                conflict("a", "Update", ".data.y"),
                conflict("b", "Apply", ".data.z"),
                status,
            ]),
            "Apply failed with 4 conflicts: conflicts with \"a\" using v1:\n- .data.y\n\
             conflicts with \"b\":\n- .data.x\n- .data.z\n\
             conflicts with \"ctl\" with subresource \"status\" using v1:\n- .status.phase"
        );
    }

    #[test]
    fn conflicts_force_and_removal() {
        let live = created_by_a();
        let mut cfg = deploy(2, "x");
        cfg["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("labels");
        let err = apply(&live, &cfg, &writer("b"), false, DEPLOY).expect_err("conflict");
        assert_eq!(
            err,
            vec![Conflict {
                manager: "a".into(),
                api_version: "apps/v1".into(),
                operation: "Apply".into(),
                subresource: String::new(),
                field: ".spec.replicas".into()
            }]
        );
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
        );
        // Same values are shared, not conflicting.
        let shared = apply(&live, &deploy(1, "x"), &writer("b"), false, DEPLOY).expect("shared");
        assert_eq!(read_managed(&shared).len(), 2);
        let forced = apply(&live, &cfg, &writer("b"), true, DEPLOY).expect("force");
        assert_eq!(forced["spec"]["replicas"], 2);
        let a = read_managed(&forced)
            .into_iter()
            .find(|m| m.manager == "a")
            .expect("a");
        assert!(
            !a.fields
                .contains(&vec![Step::F("spec".into()), Step::F("replicas".into())])
        );
        // a stops applying the labels it alone owned: they go.
        let mut smaller = deploy(1, "x");
        smaller["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("labels");
        smaller["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("replicas");
        let out = apply(&forced, &smaller, &writer("a"), false, DEPLOY).expect("reapply");
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(out["spec"]["replicas"], 2, "b still owns replicas");
        cfg["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "c", "image": "x"}, {"name": "d", "image": "y"}]);
        let out = apply(&out, &cfg, &writer("b"), false, DEPLOY).expect("add container");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn an_update_of_a_custom_object_owns_the_maps_it_brings_in_with_a_dot() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ref": {"type": "object", "properties": {"name": {"type": "string"}}}}}}});
        let hints = Hints {
            schema: Some(&schema),
            builtin: None,
            status: false,
        };
        let mut new = json!({"apiVersion": "x/v1", "kind": "W",
            "metadata": {"name": "w", "labels": {"app": "w"}},
            "spec": {"ref": {"name": "r"}}});
        record_update(None, &mut new, &writer("creator"), hints);
        assert_eq!(
            new["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {".": {}, "f:ref": {".": {}, "f:name": {}}}})
        );
    }

    #[test]
    fn managed_fields_a_client_writes_replace_the_stored_ones_and_an_empty_entry_resets_them() {
        let live = created_by_a();
        let mut moved = live.clone();
        moved["metadata"]["managedFields"][0]["manager"] = json!("b");
        moved["metadata"]["managedFields"][0]["operation"] = json!("Apply");
        record_update(Some(&live), &mut moved, &writer("editor"), DEPLOY);
        let managers: Vec<String> = read_managed(&moved)
            .into_iter()
            .map(|m| m.manager)
            .collect();
        assert_eq!(managers, ["b"]);
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        record_update(Some(&live), &mut reset, &writer("editor"), DEPLOY);
        assert!(reset["metadata"].get("managedFields").is_none(), "{reset}");
        // Invalid entries leave the stored ones as they were.
        let mut junk = live.clone();
        junk["metadata"]["managedFields"] = json!([{"manager": "x"}]);
        record_update(Some(&live), &mut junk, &writer("editor"), DEPLOY);
        assert_eq!(read_managed(&junk), read_managed(&live));
    }

    #[test]
    fn update_takes_ownership() {
        let live = created_by_a();
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(5);
        record_update(Some(&live), &mut new, &writer("kubectl-scale"), DEPLOY);
        let m = read_managed(&new);
        let scale = m
            .iter()
            .find(|m| m.manager == "kubectl-scale")
            .expect("entry");
        assert_eq!(scale.operation, "Update");
        assert_eq!(scale.fields.len(), 1);
        let err = apply(&new, &deploy(1, "x"), &writer("a"), false, DEPLOY).expect_err("conflict");
        assert_eq!(err[0].manager, "kubectl-scale");
    }

    #[test]
    fn an_update_inside_a_list_item_leaves_the_item_with_its_owner() {
        let live = created_by_a();
        let mut new = live.clone();
        new["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "E", "value": "1"}]);
        record_update(Some(&live), &mut new, &writer("editor"), DEPLOY);
        let m = read_managed(&new);
        let container = vec![
            Step::F("spec".into()),
            Step::F("template".into()),
            Step::F("spec".into()),
            Step::F("containers".into()),
            Step::K(r#"{"name":"c"}"#.into()),
        ];
        let owner = |name: &str| m.iter().find(|e| e.manager == name).expect("entry");
        assert!(
            owner("a").fields.contains(&container),
            "a keeps the container"
        );
        assert!(!owner("editor").fields.contains(&container));
        assert_eq!(
            owner("editor").fields.len(),
            3,
            "env[E], its name and value"
        );
    }

    #[test]
    fn an_atomic_list_item_is_owned_as_a_leaf() {
        // imagePullSecrets is a list-map of LocalObjectReference, an atomic struct.
        let mut d = deploy(1, "x");
        d["spec"]["template"]["spec"]["imagePullSecrets"] = json!([{"name": "regcred"}]);
        let v = to_fields_v1(&fields_of(&d, DEPLOY));
        assert_eq!(
            v["f:spec"]["f:template"]["f:spec"]["f:imagePullSecrets"],
            json!({"k:{\"name\":\"regcred\"}": {}})
        );
        assert_eq!(from_fields_v1(&v), fields_of(&d, DEPLOY));
    }
}
