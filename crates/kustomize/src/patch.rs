//! Strategic merge patches (kyaml merge2 semantics with the merge keys of built-in kinds),
//! JSON 6902 patches and patch target selectors.

use regex::Regex;

use crate::error::{Result, msg};
use crate::resource::{Gvk, Resource};
use crate::yaml::{Map, Value};

/// Where the merge is in the object's schema: a node of a custom OpenAPI schema
/// (`openapi:` in the kustomization), or the built-in merge-key table.
#[derive(Clone, Copy)]
pub struct Schema<'a> {
    defs: Option<&'a Map>,
    node: Option<&'a Value>,
    builtin: bool,
}

impl<'a> Schema<'a> {
    /// The schema of an object of kind `gvk`: a custom definition carrying that
    /// group/version/kind when `defs` has one, else the built-in table for built-in kinds.
    pub fn for_kind(defs: Option<&'a Map>, gvk: &Gvk) -> Self {
        let node = defs.and_then(|d| {
            d.iter()
                .find(|(_, def)| {
                    def.get("x-kubernetes-group-version-kind")
                        .and_then(Value::as_seq)
                        .is_some_and(|l| {
                            l.iter().any(|g| {
                                let f = |k: &str| {
                                    g.get(k).and_then(Value::scalar_text).unwrap_or_default()
                                };
                                f("group") == gvk.group
                                    && f("version") == gvk.version
                                    && f("kind") == gvk.kind
                            })
                        })
                })
                .map(|(_, v)| v)
        });
        Schema {
            defs,
            node,
            builtin: node.is_none() && is_builtin_kind(gvk),
        }
    }

    /// Descends to `child`; a reference to a Kubernetes type the custom schema does not
    /// define falls back to the built-in knowledge (upstream merges both schemas).
    fn descend(&self, child: Option<&'a Value>) -> Schema<'a> {
        let Some(c) = child else {
            return Schema {
                node: None,
                ..*self
            };
        };
        if let Some(r) = c.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            if let Some(def) = self.defs.and_then(|d| d.get(name)) {
                return Schema {
                    node: Some(def),
                    ..*self
                };
            }
            return Schema {
                node: None,
                builtin: name.starts_with("io.k8s."),
                ..*self
            };
        }
        Schema {
            node: Some(c),
            ..*self
        }
    }

    fn field(&self, name: &str) -> Schema<'a> {
        match self.node {
            Some(n) => self.descend(n.get("properties").and_then(|p| p.get(name))),
            None => *self,
        }
    }

    fn items(&self) -> Schema<'a> {
        match self.node {
            Some(n) => self.descend(n.get("items")),
            None => *self,
        }
    }

    /// The merge key of the list field `field` (this schema is the field's own node when
    /// custom); `Some("")` merges a list of scalars as a set.
    fn list_key(&self, field: &str, parent: &str) -> Option<String> {
        if let Some(n) = self.node {
            return n
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::scalar_text)
                .or_else(|| {
                    (n.get("x-kubernetes-patch-strategy").and_then(Value::as_str) == Some("merge"))
                        .then(String::new)
                });
        }
        merge_key(field, parent, self.builtin).map(str::to_string)
    }
}

/// The merge key of a list field of a built-in kind, by field name and parent field.
fn merge_key(field: &str, parent: &str, kind_known: bool) -> Option<&'static str> {
    if !kind_known {
        return None;
    }
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "ports" if parent == "containers" || parent == "initContainers" => "containerPort",
        "ports" if parent == "spec" => "port",
        "finalizers" => "",
        _ => return None,
    })
}

/// Kinds whose schema upstream knows (built-in API groups).
pub fn is_builtin_kind(gvk: &Gvk) -> bool {
    let g = gvk.group.as_str();
    g.is_empty()
        || g.ends_with(".k8s.io") && !g.starts_with("example")
        || matches!(
            g,
            "apps" | "batch" | "autoscaling" | "policy" | "extensions" | "apiregistration.k8s.io"
        )
}

/// Applies a strategic merge patch to `target` in place. Returns false when the patch
/// deletes the whole object.
pub fn apply_smp(target: &mut Map, patch: &Map, schema: Schema<'_>) -> bool {
    if let Some(Value::Str(d)) = patch.get("$patch") {
        if d == "delete" {
            return false;
        }
        if d == "replace" {
            let mut p = patch.clone();
            p.remove("$patch");
            *target = p;
            return true;
        }
    }
    merge_map(target, patch, "", schema);
    true
}

fn directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Map(m) => Value::Map(
            m.iter()
                .filter(|(k, _)| k.as_str() != "$patch")
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .filter(|i| directive(i).is_none())
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Map, patch: &Map, parent: &str, schema: Schema<'_>) {
    for (k, pv) in patch.iter() {
        // kyaml (upstream's merge) knows only `$patch`; `$setElementOrder/...` and
        // `$retainKeys` are copied through like any other field.
        if k == "$patch" {
            continue;
        }
        if pv.is_null() {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), pv) {
            (Some(Value::Map(tm)), Value::Map(pm)) => match directive(pv) {
                Some("delete") => {
                    target.remove(k);
                }
                Some("replace") => {
                    target.insert(k.clone(), strip_directives(pv));
                }
                _ => {
                    merge_map(tm, pm, k, schema.field(k));
                }
            },
            (Some(Value::Seq(tl)), Value::Seq(pl)) => {
                let fs = schema.field(k);
                let key = fs.list_key(k, parent);
                let replace = pl.iter().any(|i| directive(i) == Some("replace"));
                match key {
                    Some(key) if !replace => merge_list(tl, pl, &key, k, fs.items()),
                    _ => {
                        target.insert(k.clone(), strip_directives(pv));
                    }
                }
            }
            (_, Value::Map(pm)) if directive(pv) == Some("delete") => {
                let _ = pm;
                target.remove(k);
            }
            _ => {
                target.insert(k.clone(), strip_directives(pv));
            }
        }
    }
}

fn key_of(v: &Value, key: &str) -> Option<String> {
    if key.is_empty() {
        return v.scalar_text();
    }
    v.get(key).and_then(Value::scalar_text)
}

fn merge_list(
    target: &mut Vec<Value>,
    patch: &[Value],
    key: &str,
    field: &str,
    schema: Schema<'_>,
) {
    // kyaml (ListPrepend): patch elements first in patch order, then target-only ones.
    let mut out: Vec<Value> = Vec::new();
    let mut used = vec![false; target.len()];
    for pe in patch {
        let Some(kv) = key_of(pe, key) else {
            out.push(strip_directives(pe));
            continue;
        };
        let pos = target
            .iter()
            .position(|t| key_of(t, key).as_deref() == Some(kv.as_str()));
        if directive(pe) == Some("delete") {
            if let Some(p) = pos {
                used[p] = true;
            }
            continue;
        }
        match pos {
            Some(p) if !used[p] => {
                used[p] = true;
                let mut t = target[p].clone();
                match (&mut t, pe) {
                    (Value::Map(tm), Value::Map(pm)) => merge_map(tm, pm, field, schema),
                    (t, pe) => *t = pe.clone(),
                }
                out.push(t);
            }
            Some(_) => {}
            None => {
                if !out
                    .iter()
                    .any(|o| key_of(o, key).as_deref() == Some(kv.as_str()))
                {
                    out.push(strip_directives(pe));
                }
            }
        }
    }
    for (i, t) in target.iter().enumerate() {
        if !used[i] {
            out.push(t.clone());
        }
    }
    *target = out;
}

/// Applies RFC 6902 operations (given as YAML/JSON values) to an object.
pub fn apply_json6902(target: &mut Map, ops: &Value) -> Result<()> {
    let ops_json = crate::yaml::emit::to_serde(ops);
    let patch: json_patch_ops::Patch = json_patch_ops::parse(&ops_json)?;
    let mut doc = crate::yaml::emit::to_serde(&Value::Map(target.clone()));
    json_patch_ops::apply(&mut doc, &patch)?;
    if let Value::Map(m) = from_serde_ordered(&doc, &Value::Map(target.clone())) {
        *target = m;
    }
    Ok(())
}

/// Converts back from serde_json, keeping the key order of `like` where keys survive.
fn from_serde_ordered(v: &serde_json::Value, like: &Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::Seq(
            a.iter()
                .enumerate()
                .map(|(i, x)| {
                    let l = like
                        .as_seq()
                        .and_then(|s| s.get(i))
                        .cloned()
                        .unwrap_or_default();
                    from_serde_ordered(x, &l)
                })
                .collect(),
        ),
        serde_json::Value::Object(o) => {
            let mut m = Map::new();
            if let Some(lm) = like.as_map() {
                for k in lm.keys() {
                    if let Some(x) = o.get(k) {
                        m.insert(
                            k.clone(),
                            from_serde_ordered(x, lm.get(k).unwrap_or(&Value::Null)),
                        );
                    }
                }
            }
            for (k, x) in o {
                if !m.contains_key(k) {
                    m.insert(k.clone(), from_serde_ordered(x, &Value::Null));
                }
            }
            Value::Map(m)
        }
    }
}

/// A small RFC 6902 implementation over serde_json values (add, remove, replace, move,
/// copy, test), with JSON pointer `~0`/`~1` escapes and `-` for appending.
mod json_patch_ops {
    use super::{Result, msg};
    use serde_json::Value as J;

    pub struct Op {
        op: String,
        path: String,
        from: Option<String>,
        value: Option<J>,
    }

    pub type Patch = Vec<Op>;

    pub fn parse(v: &J) -> Result<Patch> {
        let arr = v
            .as_array()
            .ok_or_else(|| msg("json patch must be a list of operations"))?;
        arr.iter()
            .map(|o| {
                let s = |k: &str| o.get(k).and_then(J::as_str).map(str::to_string);
                Ok(Op {
                    op: s("op").ok_or_else(|| msg("json patch operation lacks 'op'"))?,
                    path: s("path").ok_or_else(|| msg("json patch operation lacks 'path'"))?,
                    from: s("from"),
                    value: o.get("value").cloned(),
                })
            })
            .collect()
    }

    fn tokens(path: &str) -> Result<Vec<String>> {
        if path.is_empty() {
            return Ok(Vec::new());
        }
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| msg(format!("invalid json pointer '{path}'")))?;
        Ok(rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect())
    }

    fn parent<'a>(doc: &'a mut J, toks: &[String], path: &str) -> Result<&'a mut J> {
        let mut cur = doc;
        for t in toks {
            cur = match cur {
                J::Object(m) => m.get_mut(t),
                J::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
                _ => None,
            }
            .ok_or_else(|| msg(format!("doc is missing path: \"{path}\": missing value")))?;
        }
        Ok(cur)
    }

    fn get(doc: &J, path: &str) -> Result<J> {
        let toks = tokens(path)?;
        let mut cur = doc;
        for t in &toks {
            cur = match cur {
                J::Object(m) => m.get(t),
                J::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| msg(format!("doc is missing path: \"{path}\": missing value")))?;
        }
        Ok(cur.clone())
    }

    fn add(doc: &mut J, path: &str, value: J) -> Result<()> {
        let toks = tokens(path)?;
        let Some((last, init)) = toks.split_last() else {
            *doc = value;
            return Ok(());
        };
        match parent(doc, init, path)? {
            J::Object(m) => {
                m.insert(last.clone(), value);
            }
            J::Array(a) => {
                if last == "-" {
                    a.push(value);
                } else {
                    let i: usize = last
                        .parse()
                        .map_err(|_| msg(format!("invalid array index in '{path}'")))?;
                    if i > a.len() {
                        return Err(msg(format!(
                            "add operation does not apply: doc is missing path: \"{path}\""
                        )));
                    }
                    a.insert(i, value);
                }
            }
            _ => return Err(msg(format!("doc is missing path: \"{path}\""))),
        }
        Ok(())
    }

    fn remove(doc: &mut J, path: &str) -> Result<J> {
        let toks = tokens(path)?;
        let Some((last, init)) = toks.split_last() else {
            return Err(msg("cannot remove the document root"));
        };
        match parent(doc, init, path)? {
            J::Object(m) => m.remove(last).ok_or_else(|| {
                msg(format!(
                    "Unable to remove nonexistent key: {last}: missing value"
                ))
            }),
            J::Array(a) => {
                let i: usize = last
                    .parse()
                    .map_err(|_| msg(format!("invalid array index in '{path}'")))?;
                if i >= a.len() {
                    return Err(msg(format!("Unable to remove invalid index: {i}")));
                }
                Ok(a.remove(i))
            }
            _ => Err(msg(format!("doc is missing path: \"{path}\""))),
        }
    }

    pub fn apply(doc: &mut J, patch: &Patch) -> Result<()> {
        for op in patch {
            let value = || {
                op.value
                    .clone()
                    .ok_or_else(|| msg(format!("json patch '{}' lacks 'value'", op.op)))
            };
            match op.op.as_str() {
                "add" => add(doc, &op.path, value()?)?,
                "remove" => {
                    remove(doc, &op.path)?;
                }
                "replace" => {
                    // Upstream's JSON patch library lets `replace` create a missing object
                    // member; a missing array element is still an error.
                    if get(doc, &op.path).is_ok() {
                        remove(doc, &op.path)?;
                    }
                    add(doc, &op.path, value()?).map_err(|_| {
                        msg(format!(
                            "replace operation does not apply: doc is missing key: {}: missing value",
                            op.path
                        ))
                    })?;
                }
                "move" => {
                    let from = op.from.clone().ok_or_else(|| msg("move lacks 'from'"))?;
                    let v = remove(doc, &from)?;
                    add(doc, &op.path, v)?;
                }
                "copy" => {
                    let from = op.from.clone().ok_or_else(|| msg("copy lacks 'from'"))?;
                    let v = get(doc, &from)?;
                    add(doc, &op.path, v)?;
                }
                "test" => {
                    if get(doc, &op.path)? != value()? {
                        return Err(msg(format!("testing value {} failed", op.path)));
                    }
                }
                other => return Err(msg(format!("unexpected json patch op '{other}'"))),
            }
        }
        Ok(())
    }
}

/// A patch/replacement target selector: every field is an anchored regular expression
/// (empty matches anything), as in upstream's `SelectorRegex`.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    label_selector: Option<String>,
    annotation_selector: Option<String>,
}

impl Selector {
    /// Reads a `target:`/`select:` mapping; a bad regular expression is an error.
    pub fn from_value(v: &Value) -> Result<Self> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::scalar_text)
                .filter(|x| !x.is_empty())
        };
        let re = |k: &str| -> Result<Option<Regex>> {
            s(k).map(|p| {
                // Go's syntax and meaning, anchored as kustomize anchors it.
                ferroflux_gocompat::regex::compile(&format!("^(?:{p})$"))
                    .map_err(|e| msg(format!("invalid {k} selector '{p}': {e}")))
            })
            .transpose()
        };
        Ok(Selector {
            group: re("group")?,
            version: re("version")?,
            kind: re("kind")?,
            name: re("name")?,
            namespace: re("namespace")?,
            label_selector: s("labelSelector"),
            annotation_selector: s("annotationSelector"),
        })
    }

    /// Whether `r` is selected: namespace and name match the original or the current
    /// value, group/version/kind the current one, then the label and annotation selectors.
    pub fn matches(&self, r: &Resource) -> Result<bool> {
        let ok = |rx: &Option<Regex>, s: &str| rx.as_ref().is_none_or(|rx| rx.is_match(s));
        let cur = r.cur_id();
        let org = r.org_id();
        if !(ok(&self.namespace, org.effective_namespace())
            || ok(&self.namespace, cur.effective_namespace()))
        {
            return Ok(false);
        }
        if !(ok(&self.name, &org.name) || ok(&self.name, &cur.name)) {
            return Ok(false);
        }
        if !(ok(&self.group, &cur.gvk.group)
            && ok(&self.version, &cur.gvk.version)
            && ok(&self.kind, &cur.gvk.kind))
        {
            return Ok(false);
        }
        self.meta_matches(r)
    }

    /// Replacement-style selection: some identity the resource has had (current or
    /// earlier) matches group, version, kind, name and namespace together.
    pub fn matches_any_id(&self, r: &Resource) -> Result<bool> {
        let ok = |rx: &Option<Regex>, s: &str| rx.as_ref().is_none_or(|rx| rx.is_match(s));
        let hit = r.any_id(|id| {
            ok(&self.group, &id.gvk.group)
                && ok(&self.version, &id.gvk.version)
                && ok(&self.kind, &id.gvk.kind)
                && ok(&self.name, &id.name)
                && (ok(&self.namespace, &id.namespace)
                    || ok(&self.namespace, id.effective_namespace()))
        });
        if !hit {
            return Ok(false);
        }
        self.meta_matches(r)
    }

    fn meta_matches(&self, r: &Resource) -> Result<bool> {
        if let Some(ls) = &self.label_selector
            && !label_selector_matches(ls, &r.labels())?
        {
            return Ok(false);
        }
        if let Some(a) = &self.annotation_selector
            && !label_selector_matches(a, &r.annotations())?
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
/// `a notin (x)`, comma-separated.
pub fn label_selector_matches(sel: &str, labels: &[(String, String)]) -> Result<bool> {
    let get = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    };
    let mut reqs = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                reqs.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    reqs.push(cur);
    for req in reqs {
        let req = req.trim();
        if req.is_empty() {
            continue;
        }
        let set = |s: &str| -> Vec<String> {
            s.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|x| x.trim().to_string())
                .collect()
        };
        let ok = if let Some((k, v)) = req.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = req.split_once("==") {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, v)) = req.split_once('=') {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, v)) = req.split_once(" notin ") {
            get(k.trim()).is_none_or(|x| !set(v).iter().any(|s| s == x))
        } else if let Some((k, v)) = req.split_once(" in ") {
            get(k.trim()).is_some_and(|x| set(v).iter().any(|s| s == x))
        } else if let Some(k) = req.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(req).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn builtin() -> Schema<'static> {
        Schema::for_kind(None, &Gvk::from_api_version("apps/v1", "Deployment"))
    }

    fn map(src: &str) -> Map {
        match parse_documents(src).expect("valid").remove(0) {
            Value::Map(m) => m,
            _ => panic!("test input is a mapping"),
        }
    }

    #[test]
    fn smp_merges_containers_by_name_and_puts_new_ones_first() {
        let mut t = map("spec:\n  containers:\n  - name: a\n    image: x\n");
        let p = map("spec:\n  containers:\n  - name: b\n    image: y\n  - name: a\n    image: z\n");
        apply_smp(&mut t, &p, builtin());
        let c = Value::Map(t)
            .path(&["spec", "containers"])
            .cloned()
            .expect("list");
        let names: Vec<_> = c
            .as_seq()
            .expect("seq")
            .iter()
            .map(|i| i.get("name").cloned())
            .collect();
        assert_eq!(names, vec![Some(Value::from("b")), Some(Value::from("a"))]);
    }

    #[test]
    fn smp_null_deletes_and_patch_delete_removes_elements() {
        let mut t = map("a: 1\nb: 2\nl:\n  env:\n  - name: x\n  - name: y\n");
        let p = map("a: null\nl:\n  env:\n  - name: x\n    $patch: delete\n");
        apply_smp(&mut t, &p, builtin());
        assert!(t.get("a").is_none());
        let env = Value::Map(t).path(&["l", "env"]).cloned().expect("env");
        assert_eq!(env.as_seq().map(Vec::len), Some(1));
    }

    #[test]
    fn smp_replaces_lists_without_merge_key() {
        let mut t = map("args: [a, b]\n");
        apply_smp(&mut t, &map("args: [c]\n"), builtin());
        assert_eq!(t.get("args").and_then(Value::as_seq).map(Vec::len), Some(1));
    }

    #[test]
    fn json6902_ops() {
        let mut t = map("spec:\n  replicas: 1\n  list: [a]\n");
        let ops = parse_documents("- op: replace\n  path: /spec/replicas\n  value: 3\n- op: add\n  path: /spec/list/-\n  value: b\n- op: remove\n  path: /spec/list/0\n").expect("ok").remove(0);
        apply_json6902(&mut t, &ops).expect("applies");
        let v = Value::Map(t);
        assert_eq!(v.path(&["spec", "replicas"]), Some(&Value::Int(3)));
        assert_eq!(
            v.path(&["spec", "list"]),
            Some(&Value::Seq(vec![Value::from("b")]))
        );
    }

    #[test]
    fn label_selectors() {
        let l = vec![
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ];
        assert!(label_selector_matches("app=web,tier in (fe, be)", &l).expect("ok"));
        assert!(!label_selector_matches("app!=web", &l).expect("ok"));
        assert!(label_selector_matches("!missing", &l).expect("ok"));
    }
}
