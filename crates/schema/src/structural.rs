//! CRD structural schemas: pruning, defaulting and validation (errors name the field path the
//! way kube-apiserver does, e.g. `spec.replicas`, `spec.items[0].name`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use ferroflux_gocompat::regex::Regex;
use serde_json::Value;

use crate::{Cause, join};

const ROOT_KEEP: &[&str] = &["apiVersion", "kind", "metadata"];

/// How deep the schema walks go: deeper documents are refused by the callers' size limits long
/// before; this only keeps recursion bounded.
pub(crate) const MAX_DEPTH: usize = 256;

/// The fields of ObjectMeta: what an embedded resource's metadata keeps when pruned.
const OBJECT_META: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

/// Removes fields the schema does not declare (unless it preserves unknown fields there).
///
/// Returns the paths removed (e.g. `spec.junk`, `spec.items[0].x`), for strict field validation.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_node(obj, schema, true, "", &mut removed);
    removed
}

fn prune_node(v: &mut Value, schema: &Value, root: bool, path: &str, removed: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
            let keep_unknown = preserves(schema)
                || additional.is_some()
                || (props.is_none() && schema.get("type").is_none());
            m.retain(|k, _| {
                let keep = keep_unknown
                    || props.is_some_and(|p| p.contains_key(k))
                    || ((root || embedded) && ROOT_KEEP.contains(&k.as_str()));
                if !keep {
                    removed.push(join(path, k));
                }
                keep
            });
            for (k, child) in m.iter_mut() {
                // As kube's pruning: a resource's apiVersion, kind and metadata are never pruned
                // by its schema, even where it declares them (controller-gen writes
                // `metadata: {type: object}`); metadata has its own rules (`meta`).
                if (root || embedded) && ROOT_KEEP.contains(&k.as_str()) {
                    // An embedded resource's metadata is pruned to ObjectMeta's fields (the
                    // object's own is the caller's, with its other metadata rules).
                    if !root
                        && k == "metadata"
                        && let Some(meta) = child.as_object_mut()
                    {
                        let at = join(path, k);
                        meta.retain(|f, _| {
                            let keep = OBJECT_META.contains(&f.as_str());
                            if !keep {
                                removed.push(join(&at, f));
                            }
                            keep
                        });
                    }
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune_node(child, s, false, &join(path, k), removed);
                } else if let Some(a) = additional {
                    prune_node(child, a, false, &join(path, k), removed);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(item, s, false, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

/// kube's defaulting of a custom resource: first drops nulls the schema neither allows nor can
/// replace (non-nullable, no default), then fills in the `default` of every absent property
/// (and of non-nullable nulls) at every object that exists, inside list items and map values
/// too; a missing parent object is never created. Applied on writes and on reads of stored
/// objects.
pub fn apply_defaults(v: &mut Value, schema: &Value) {
    prune_nulls(v, Some(schema), 0);
    default_node(v, schema, 0);
}

fn nullable(schema: &Value) -> bool {
    schema["nullable"].as_bool() == Some(true)
}

/// The schema of `key` inside an object of `schema`.
fn field_schema<'s>(schema: &'s Value, key: &str) -> Option<&'s Value> {
    schema["properties"]
        .get(key)
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

fn prune_nulls(v: &mut Value, schema: Option<&Value>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => m.retain(|k, child| {
            let s = schema.and_then(|s| field_schema(s, k));
            if child.is_null() && s.is_some_and(|s| !nullable(s) && s.get("default").is_none()) {
                return false;
            }
            prune_nulls(child, s, depth + 1);
            true
        }),
        Value::Array(items) => {
            let s = schema.and_then(|s| s.get("items"));
            for i in items {
                prune_nulls(i, s, depth + 1);
            }
        }
        _ => {}
    }
}

fn default_node(v: &mut Value, schema: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let fill = |x: &mut Value, s: &Value| {
        if x.is_null()
            && !nullable(s)
            && let Some(d) = s.get("default")
        {
            *x = d.clone();
        }
    };
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    if let Some(d) = s.get("default")
                        && m.get(k).is_none_or(|x| x.is_null() && !nullable(s))
                    {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m.iter_mut() {
                if let Some(s) = schema["properties"].get(k) {
                    default_node(child, s, depth + 1);
                } else if let Some(a) = additional {
                    fill(child, a);
                    default_node(child, a, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items").filter(|s| s.is_object()) {
                for i in items {
                    fill(i, s);
                    default_node(i, s, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// Validates `obj` against the schema; returns every violation: the OpenAPI checks, then the
/// uniqueness of `x-kubernetes-list-type` `set` and `map` lists (as kube, in that order).
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = validate_openapi(obj, schema);
    embedded_resources(obj, schema, "", &mut out, 0);
    list_types(obj, schema, "", &mut out, 0);
    out
}

/// kube's checks of `x-kubernetes-embedded-resource` objects: `apiVersion` and `kind` are
/// required non-empty strings (metadata may be absent).
fn embedded_resources(v: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if !path.is_empty() && schema["x-kubernetes-embedded-resource"].as_bool() == Some(true)
            {
                for k in ["apiVersion", "kind"] {
                    let at = join(path, k);
                    match m.get(k) {
                        None => out.push(Cause::required(at)),
                        Some(Value::String(s)) if s.is_empty() => {
                            out.push(Cause::invalid(at, &Value::from(""), "must not be empty"));
                        }
                        Some(Value::String(_)) => {}
                        Some(other) => out.push(Cause::invalid(at, other, "must be a string")),
                    }
                }
            }
            for (k, child) in m {
                if let Some(s) = schema["properties"].get(k) {
                    embedded_resources(child, s, &join(path, k), out, depth + 1);
                } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    embedded_resources(child, a, &format!("{path}[{k}]"), out, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items").filter(|s| s.is_object()) {
                for (i, x) in items.iter().enumerate() {
                    embedded_resources(x, s, &format!("{path}[{i}]"), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// kube's check that a `set` list holds no value twice and a `map` list no key twice; the
/// cause names the later duplicate (a map list's quotes its keys).
fn list_types(v: &Value, schema: &Value, path: &str, out: &mut Vec<Cause>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if path.is_empty() && ROOT_KEEP.contains(&k.as_str()) {
                    continue;
                }
                if let Some(s) = schema["properties"].get(k) {
                    list_types(child, s, &join(path, k), out, depth + 1);
                } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    list_types(child, a, &format!("{path}[{k}]"), out, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            match schema["x-kubernetes-list-type"].as_str() {
                Some("set") => {
                    // Keyed by the JSON text: linear, whatever the list's length.
                    let mut times: HashMap<String, u32> = HashMap::new();
                    for (i, x) in items.iter().enumerate() {
                        let n = times.entry(x.to_string()).or_insert(0);
                        *n += 1;
                        if *n == 2 {
                            out.push(Cause::duplicate(format!("{path}[{i}]"), x));
                        }
                    }
                }
                Some("map") => {
                    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let mut seen: HashSet<String> = HashSet::new();
                    for (i, x) in items.iter().enumerate() {
                        let Some(o) = x.as_object() else { continue };
                        let key: serde_json::Map<String, Value> = keys
                            .iter()
                            .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v.clone())))
                            .collect();
                        let key = Value::Object(key);
                        if !seen.insert(key.to_string()) {
                            out.push(Cause::duplicate(format!("{path}[{i}]"), &key));
                        }
                    }
                }
                _ => {}
            }
            if let Some(s) = schema.get("items").filter(|s| s.is_object()) {
                for (i, x) in items.iter().enumerate() {
                    list_types(x, s, &format!("{path}[{i}]"), out, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn validate_openapi(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let (Some(m), Some(props)) = (obj.as_object(), schema["properties"].as_object()) {
        for (k, s) in props {
            if ROOT_KEEP.contains(&k.as_str()) {
                continue;
            }
            if let Some(child) = m.get(k) {
                check(child, s, k, &mut out);
            }
        }
        for r in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !m.contains_key(r) {
                out.push(Cause::required(r));
            }
        }
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check(v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    if v.is_null() {
        if s["nullable"].as_bool() != Some(true) && s.get("type").is_some() {
            out.push(Cause::type_invalid(
                path,
                v,
                s["type"].as_str().unwrap_or("value"),
            ));
        }
        return;
    }
    let int_or_string = s["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(t) = s["type"].as_str() {
        let got = type_name(v);
        let ok = got == t
            || (t == "number" && got == "integer")
            || (int_or_string && matches!(got, "integer" | "string"));
        if !ok {
            out.push(Cause::type_invalid(path, v, t));
            return;
        }
    } else if int_or_string && !matches!(type_name(v), "integer" | "string") {
        out.push(Cause::type_invalid(path, v, "integer or string"));
        return;
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        out.push(Cause::not_supported(path, v, allowed));
    }
    match v {
        Value::Number(n) => check_number(n.as_f64().unwrap_or(0.0), v, s, path, out),
        Value::String(st) => check_string(st, v, s, path, out),
        Value::Array(items) => check_array(items, v, s, path, out),
        Value::Object(m) => check_object(m, s, path, out),
        _ => {}
    }
}

/// `minimum`/`maximum` (with their `exclusive*` flags) of a number.
fn check_number(x: f64, v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(min) = s["minimum"].as_f64() {
        let excl = s["exclusiveMinimum"].as_bool() == Some(true);
        if x < min || (excl && x == min) {
            let op = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("{path} in body should be {op} {}", fmt_num(&s["minimum"])),
            ));
        }
    }
    if let Some(max) = s["maximum"].as_f64() {
        let excl = s["exclusiveMaximum"].as_bool() == Some(true);
        if x > max || (excl && x == max) {
            let op = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            out.push(Cause::invalid(
                path,
                v,
                &format!("{path} in body should be {op} {}", fmt_num(&s["maximum"])),
            ));
        }
    }
}

/// `minLength`, `maxLength`, `pattern` and `format` of a string.
fn check_string(st: &str, v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    let len = st.chars().count() as u64;
    if let Some(min) = s["minLength"].as_u64()
        && len < min
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(max) = s["maxLength"].as_u64()
        && len > max
    {
        // kube-apiserver reports a maxLength failure as TooLong, without the value.
        out.push(Cause::too_long(
            path,
            &format!("may not be more than {max} bytes"),
        ));
    }
    if let Some(p) = s["pattern"].as_str() {
        match pattern(p).as_deref() {
            Some(re) if !re.is_match(st) => {
                out.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should match '{p}'"),
                ));
            }
            _ => {}
        }
    }
    if let Some(f) = s["format"].as_str()
        && !format_ok(f, st)
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{path} in body must be of type {f}: {v}"),
        ));
    }
}

/// `minItems` and `maxItems` of a list, then each item against `items`.
fn check_array(items: &[Value], v: &Value, s: &Value, path: &str, out: &mut Vec<Cause>) {
    if let Some(min) = s["minItems"].as_u64()
        && (items.len() as u64) < min
    {
        out.push(Cause::invalid(
            path,
            v,
            &format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = s["maxItems"].as_u64()
        && (items.len() as u64) > max
    {
        // kube-apiserver reports a maxItems failure as TooMany.
        out.push(Cause::too_many(
            path,
            &format!("{}: must have at most {max} items", items.len()),
        ));
    }
    if let Some(is) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item, is, &format!("{path}[{i}]"), out);
        }
    }
}

/// `required` fields of an object, then each field against its property or
/// `additionalProperties` schema.
fn check_object(m: &serde_json::Map<String, Value>, s: &Value, path: &str, out: &mut Vec<Cause>) {
    for r in s["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !m.contains_key(r) {
            out.push(Cause::required(join(path, r)));
        }
    }
    let props = s["properties"].as_object();
    let additional = s.get("additionalProperties").filter(|a| a.is_object());
    for (k, child) in m {
        if let Some(cs) = props.and_then(|p| p.get(k)) {
            check(child, cs, &join(path, k), out);
        } else if let Some(a) = additional {
            check(child, a, &join(path, k), out);
        }
    }
}

/// A schema `pattern` compiled as Go's regexp reads it (kube's validator is Go), once per
/// pattern text for the process; `None` for a pattern Go refuses (the CRD check reports those).
fn pattern(p: &str) -> Option<Arc<Regex>> {
    const LIMIT: usize = 4096;
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = map.get(p) {
        return hit.clone();
    }
    if map.len() >= LIMIT {
        // Patterns come from CRDs: a full cache means churn, and starting over is cheap.
        map.clear();
    }
    let re = ferroflux_gocompat::regex::compile(p).ok().map(Arc::new);
    map.insert(p.to_string(), re.clone());
    re
}

fn fmt_num(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok(),
        "int32" | "int64" | "byte" | "password" | "" => true,
        "uri" => s.contains(':'),
        "email" => s.contains('@'),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "pattern": "^https?://"},
                "interval": {"type": "string", "default": "1m"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "when": {"type": "string", "format": "date-time"}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }})
    }

    #[test]
    fn prunes_and_defaults() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "junk": 1,
            "spec": {"url": "http://x", "extra": true, "items": [{"name": "n", "zz": 1}], "free": {"any": {"thing": 1}}}});
        let removed = prune(&mut o, &schema());
        assert_eq!(removed, vec!["junk", "spec.extra", "spec.items[0].zz"]);
        apply_defaults(&mut o, &schema());
        assert!(o.get("junk").is_none());
        assert!(o["spec"].get("extra").is_none());
        assert_eq!(o["spec"]["items"][0], json!({"name": "n"}));
        assert_eq!(o["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(o["spec"]["interval"], "1m");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn validation_names_field_paths() {
        let o = json!({"spec": {"url": "ftp://x", "replicas": 11, "mode": "c", "items": [{"name": 3}], "when": "yesterday"}});
        let causes = validate(&o, &schema());
        let by_field = |f: &str| {
            causes
                .iter()
                .find(|c| c.field == f)
                .unwrap_or_else(|| panic!("no cause for {f}: {causes:?}"))
        };
        assert_eq!(causes.len(), 5, "{causes:?}");
        assert_eq!(by_field("spec.mode").reason, "FieldValueNotSupported");
        assert_eq!(
            by_field("spec.items[0].name").reason,
            "FieldValueTypeInvalid"
        );
        assert!(by_field("spec.url").message.contains("should match"));
        assert!(by_field("spec.when").message.contains("date-time"));
        let r = by_field("spec.replicas");
        assert!(
            r.message.contains("less than or equal to 10"),
            "{}",
            r.message
        );
        let missing = validate(&json!({"spec": {}}), &schema());
        assert_eq!(missing[0].field, "spec.url");
        assert_eq!(missing[0].reason, "FieldValueRequired");
        assert!(
            validate(
                &json!({"spec": {"url": "https://ok", "replicas": 3}}),
                &schema()
            )
            .is_empty()
        );
    }
}
