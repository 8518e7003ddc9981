//! Lists, dicts, JSON, deep copies and semver (Sprig's `list.go`, `dict.go`, `defaults.go`
//! JSON helpers and `semver.go`).

use std::fmt::Write;
use std::sync::Arc;

use ferroflux_gocompat::json;

use super::convert::{empty, strval};
use super::{Entry, FResult, Sources, arity, at_least, f, insert_all, int, s, strs};
use crate::value::{HostObject, Map, Value};
use crate::{FuncError, FuncMap, gofmt};

/// Sprig's `strslice`: a list's non-nil elements as strings; a scalar as a one-element list.
pub(crate) fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn list_of<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], FuncError> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("Cannot {what} on type {}", other.type_name()).into()),
    }
}

fn dict_of(v: &Value) -> Result<&Arc<crate::value::MapCell>, FuncError> {
    match v {
        Value::Map(m) => Ok(m),
        Value::Nil => Err("invalid value; expected map[string]interface {}".into()),
        other => Err(format!(
            "wrong type for value; expected map[string]interface {{}}; got {}",
            other.type_name()
        )
        .into()),
    }
}

/// A deep copy: nested maps become new maps, so changing the copy leaves the original alone.
pub(crate) fn deep_copy(v: &Value) -> Value {
    match v {
        Value::List(l) => Value::list(l.iter().map(deep_copy).collect()),
        Value::Map(m) => Value::map(
            m.read()
                .iter()
                .map(|(k, v)| (k.clone(), deep_copy(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// mergo's `Merge` into `dst` (`overwrite`: `MergeWithOverwrite`), maps merged deeply.
pub(crate) fn merge_into(dst: &crate::value::MapCell, src: &Map, overwrite: bool) {
    for (k, sv) in src {
        let existing = dst.get(k);
        match (&existing, sv) {
            (Some(Value::Map(dm)), Value::Map(sm)) => {
                if Arc::ptr_eq(dm, sm) {
                    continue;
                }
                let snap = sm.snapshot();
                merge_into(dm, &snap, overwrite);
            }
            // Like mergo, values are shared, not copied: a map merged in stays the same map.
            (Some(dv), _) => {
                if !empty(sv) && (overwrite || empty(dv)) {
                    dst.write().insert(k.clone(), sv.clone());
                }
            }
            (None, _) => {
                dst.write().insert(k.clone(), sv.clone());
            }
        }
    }
}

fn json_rec(
    out: &mut String,
    v: &Value,
    html: bool,
    indent: Option<&str>,
    level: usize,
) -> Result<(), FuncError> {
    let nl = |out: &mut String, level: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    };
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(x) => {
            if !x.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    gofmt::format_float(*x, 'g', None)
                )
                .into());
            }
            out.push_str(&ferroflux_gocompat::float::json(*x));
        }
        Value::Str(s) => json::write_string(out, s, html),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                json_rec(out, e, html, indent, level + 1)?;
            }
            if !l.is_empty() {
                nl(out, level);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            let m = m.read();
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, level + 1);
                json::write_string(out, k, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                json_rec(out, e, html, indent, level + 1)?;
            }
            if !m.is_empty() {
                nl(out, level);
            }
            out.push('}');
        }
        Value::Object(o) => match o.to_plain() {
            Value::Object(_) => {
                return Err(format!("json: unsupported type: {}", o.type_name()).into());
            }
            plain => json_rec(out, &plain, html, indent, level)?,
        },
    }
    Ok(())
}

/// Go's `json.Marshal` (`html`: escape `<`, `>`, `&`; `indent`: `MarshalIndent`).
pub(crate) fn json_encode(
    v: &Value,
    html: bool,
    indent: Option<&str>,
) -> Result<String, FuncError> {
    let mut out = String::new();
    json_rec(&mut out, v, html, indent, 0)?;
    Ok(out)
}

/// JSON as Go's `json.Unmarshal` into `interface{}` gives it: every number a `float64`.
pub(crate) fn from_json_go(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::Array(a) => Value::list(a.iter().map(from_json_go).collect()),
        serde_json::Value::Object(o) => Value::map(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), from_json_go(v)))
                .collect(),
        ),
        other => Value::from_json(other),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Parses JSON text; `want` is `map` or `list` (or `None` for any).
pub(crate) fn parse_json(text: &str, want: Option<&str>) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            format!("invalid character in JSON: {e}")
        }
    })?;
    match (want, &v) {
        (Some("map"), serde_json::Value::Object(_) | serde_json::Value::Null) => {}
        (Some("map"), other) => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(other)
            ));
        }
        (Some("list"), serde_json::Value::Array(_) | serde_json::Value::Null) => {}
        (Some("list"), other) => {
            return Err(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(other)
            ));
        }
        _ => {}
    }
    Ok(from_json_go(&v))
}

/// A Masterminds `*semver.Version` as a template object.
pub(crate) struct SemverObject(pub ferroflux_semver::Version);

impl HostObject for SemverObject {
    fn type_name(&self) -> String {
        "*semver.Version".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        self.call(name, &[]).and_then(Result::ok)
    }
    fn has_method(&self, name: &str) -> bool {
        matches!(
            name,
            "Major"
                | "Minor"
                | "Patch"
                | "Prerelease"
                | "Metadata"
                | "Original"
                | "String"
                | "Compare"
                | "LessThan"
                | "GreaterThan"
                | "Equal"
        )
    }
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let v = &self.0;
        let other = || -> Result<ferroflux_semver::Version, String> {
            match args {
                [Value::Object(o)] if o.type_name() == "*semver.Version" => {
                    ferroflux_semver::Version::parse(&o.display()).map_err(|e| e.to_string())
                }
                _ => Err(format!(
                    "wrong number or type of args for {name}: want 1 *semver.Version"
                )),
            }
        };
        let no_args = |val: Value| -> Result<Value, String> {
            if args.is_empty() {
                Ok(val)
            } else {
                Err(format!(
                    "wrong number of args for {name}: want 0 got {}",
                    args.len()
                ))
            }
        };
        Some(match name {
            "Major" => no_args(Value::Int(v.major() as i64)),
            "Minor" => no_args(Value::Int(v.minor() as i64)),
            "Patch" => no_args(Value::Int(v.patch() as i64)),
            "Prerelease" => no_args(Value::str(v.prerelease())),
            "Metadata" => no_args(Value::str(v.metadata())),
            "Original" => no_args(Value::str(v.original())),
            "String" => no_args(Value::from(v.to_string())),
            "Compare" => other().map(|o| Value::Int(v.compare(&o) as i64)),
            "LessThan" => other().map(|o| Value::Bool(v.compare(&o).is_lt())),
            "GreaterThan" => other().map(|o| Value::Bool(v.compare(&o).is_gt())),
            "Equal" => other().map(|o| Value::Bool(v.compare(&o).is_eq())),
            _ => return None,
        })
    }
    fn display(&self) -> String {
        self.0.to_string()
    }
}

fn uniq(l: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in l {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

pub(super) fn register(m: &mut FuncMap, _sources: &Sources) {
    insert_all(m, FUNCS);
    for (name, overwrite) in [
        ("merge", false),
        ("mustMerge", false),
        ("mergeOverwrite", true),
        ("mustMergeOverwrite", true),
    ] {
        m.insert(
            name.into(),
            f(move |a| {
                at_least(a, 1)?;
                let dst = dict_of(&a[0])?;
                for src in &a[1..] {
                    if src.is_nil() {
                        continue;
                    }
                    let snap = dict_of(src)?.snapshot();
                    merge_into(dst, &snap, overwrite);
                }
                Ok(a[0].clone())
            }),
        );
    }
    for (name, html, indent) in [
        ("toJson", true, None),
        ("mustToJson", true, None),
        ("toPrettyJson", true, Some("  ")),
        ("mustToPrettyJson", true, Some("  ")),
        ("toRawJson", false, None),
        ("mustToRawJson", false, None),
    ] {
        let must = name.starts_with("must");
        m.insert(
            name.into(),
            f(move |a| {
                arity(a, 1)?;
                match json_encode(&a[0], html, indent) {
                    Ok(s) => Ok(Value::from(s)),
                    Err(e) if must => Err(e),
                    Err(_) => Ok(Value::str("")),
                }
            }),
        );
    }
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[
    ("list", list_fn),
    ("tuple", list_fn),
    ("push", push_fn),
    ("append", push_fn),
    ("mustPush", push_fn),
    ("mustAppend", push_fn),
    ("prepend", prepend),
    ("mustPrepend", prepend),
    ("chunk", chunk),
    ("mustChunk", chunk),
    ("first", first_fn),
    ("mustFirst", first_fn),
    ("last", last_fn),
    ("mustLast", last_fn),
    ("rest", rest),
    ("mustRest", rest),
    ("initial", initial),
    ("mustInitial", initial),
    ("reverse", reverse_fn),
    ("mustReverse", reverse_fn),
    ("compact", compact),
    ("mustCompact", compact),
    ("uniq", uniq_fn),
    ("mustUniq", uniq_fn),
    ("without", without),
    ("mustWithout", without),
    ("has", has),
    ("mustHas", has),
    ("slice", slice),
    ("mustSlice", slice),
    ("concat", concat),
    ("dict", dict),
    ("get", get_fn),
    ("set", set),
    ("unset", unset),
    ("hasKey", has_key),
    ("pluck", pluck),
    ("keys", keys_fn),
    ("values", values_fn),
    ("pick", pick),
    ("omit", omit),
    ("deepCopy", deep_copy_fn),
    ("mustDeepCopy", deep_copy_fn),
    ("dig", dig),
    ("fromJson", from_json_fn),
    ("mustFromJson", must_from_json),
    ("semver", semver),
    ("semverCompare", semver_compare),
];

/// `list`, `tuple`.
fn list_fn(a: &[Value]) -> FResult {
    Ok(Value::list(a.to_vec()))
}

/// `push`, `append`, `mustPush`, `mustAppend`.
fn push_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let mut l = list_of(&a[0], "append")?.to_vec();
    l.push(a[1].clone());
    Ok(Value::list(l))
}

/// `prepend`, `mustPrepend`.
fn prepend(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let mut l = vec![a[1].clone()];
    l.extend_from_slice(list_of(&a[0], "prepend")?);
    Ok(Value::list(l))
}

/// `chunk`, `mustChunk`.
fn chunk(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let size = int(a, 0)?;
    if size <= 0 {
        return Err("chunk size must be positive".into());
    }
    let l = list_of(&a[1], "chunk")?;
    Ok(Value::list(
        l.chunks(size as usize)
            .map(|c| Value::list(c.to_vec()))
            .collect(),
    ))
}

/// `first`, `mustFirst`.
fn first_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(list_of(&a[0], "find first")?
        .first()
        .cloned()
        .unwrap_or(Value::Nil))
}

/// `last`, `mustLast`.
fn last_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(list_of(&a[0], "find last")?
        .last()
        .cloned()
        .unwrap_or(Value::Nil))
}

/// `rest`, `mustRest`.
fn rest(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let l = list_of(&a[0], "find rest")?;
    Ok(Value::list(l.get(1..).unwrap_or(&[]).to_vec()))
}

/// `initial`, `mustInitial`.
fn initial(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let l = list_of(&a[0], "find initial")?;
    Ok(Value::list(l[..l.len().saturating_sub(1)].to_vec()))
}

/// `reverse`, `mustReverse`.
fn reverse_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    let mut l = list_of(&a[0], "find reverse")?.to_vec();
    l.reverse();
    Ok(Value::list(l))
}

/// `compact`, `mustCompact`.
fn compact(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::list(
        list_of(&a[0], "compact")?
            .iter()
            .filter(|v| !empty(v))
            .cloned()
            .collect(),
    ))
}

/// `uniq`, `mustUniq`.
fn uniq_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::list(uniq(list_of(&a[0], "uniq")?)))
}

/// `without`, `mustWithout`.
fn without(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    let l = list_of(&a[0], "find without")?;
    Ok(Value::list(
        l.iter().filter(|v| !a[1..].contains(v)).cloned().collect(),
    ))
}

/// `has`, `mustHas`.
fn has(a: &[Value]) -> FResult {
    arity(a, 2)?;
    match &a[1] {
        Value::Nil => Ok(Value::Bool(false)),
        other => Ok(Value::Bool(list_of(other, "find has")?.contains(&a[0]))),
    }
}

/// `slice`, `mustSlice`.
fn slice(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    let l = list_of(&a[0], "slice")?;
    let len = l.len() as i64;
    let start = if a.len() > 1 { int(a, 1)? } else { 0 };
    let end = if a.len() > 2 { int(a, 2)? } else { len };
    if start < 0 || end < start || end > len {
        return Err(format!(
            "runtime error: slice bounds out of range [{start}:{end}] with capacity {len}"
        )
        .into());
    }
    Ok(Value::list(l[start as usize..end as usize].to_vec()))
}

/// `concat`.
fn concat(a: &[Value]) -> FResult {
    let mut out = Vec::new();
    for v in a {
        out.extend_from_slice(list_of(v, "concat")?);
    }
    Ok(Value::list(out))
}

/// `dict`.
fn dict(a: &[Value]) -> FResult {
    let mut d = Map::new();
    for pair in a.chunks(2) {
        d.insert(
            strval(&pair[0]).into(),
            pair.get(1).cloned().unwrap_or(Value::str("")),
        );
    }
    Ok(Value::map(d))
}

/// `get`.
fn get_fn(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(dict_of(&a[0])?.get(s(a, 1)?).unwrap_or(Value::str("")))
}

/// `set`.
fn set(a: &[Value]) -> FResult {
    arity(a, 3)?;
    let d = dict_of(&a[0])?;
    d.write().insert(s(a, 1)?.into(), a[2].clone());
    Ok(a[0].clone())
}

/// `unset`.
fn unset(a: &[Value]) -> FResult {
    arity(a, 2)?;
    dict_of(&a[0])?.write().remove(s(a, 1)?);
    Ok(a[0].clone())
}

/// `hasKey`.
fn has_key(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(dict_of(&a[0])?.read().contains_key(s(a, 1)?)))
}

/// `pluck`.
fn pluck(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    let name = s(a, 0)?;
    let mut out = Vec::new();
    for d in &a[1..] {
        if let Some(v) = dict_of(d)?.get(name) {
            out.push(v);
        }
    }
    Ok(Value::list(out))
}

/// `keys`.
fn keys_fn(a: &[Value]) -> FResult {
    let mut out = Vec::new();
    for d in a {
        out.extend(dict_of(d)?.read().keys().map(|k| k.to_string()));
    }
    Ok(strs(out))
}

/// `values`.
fn values_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::list(
        dict_of(&a[0])?.read().values().cloned().collect(),
    ))
}

/// `pick`.
fn pick(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    let d = dict_of(&a[0])?.read();
    let mut out = Map::new();
    for k in &a[1..] {
        let k = k
            .as_str()
            .ok_or_else(|| FuncError::from("wrong type for value; expected string"))?;
        if let Some(v) = d.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Ok(Value::map(out))
}

/// `omit`.
fn omit(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    let mut out = dict_of(&a[0])?.snapshot();
    for k in &a[1..] {
        let k = k
            .as_str()
            .ok_or_else(|| FuncError::from("wrong type for value; expected string"))?;
        out.remove(k);
    }
    Ok(Value::map(out))
}

/// `deepCopy`, `mustDeepCopy`.
fn deep_copy_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(deep_copy(&a[0]))
}

/// `dig`.
fn dig(a: &[Value]) -> FResult {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let mut cur = dict_of(&a[a.len() - 1])?.clone();
    let def = a[a.len() - 2].clone();
    let keys = &a[..a.len() - 2];
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_str().ok_or_else(|| {
            FuncError::from(format!(
                "interface conversion: interface {{}} is {}, not string",
                k.type_name()
            ))
        })?;
        let Some(step) = cur.get(k) else {
            return Ok(def);
        };
        if i == keys.len() - 1 {
            return Ok(step);
        }
        cur = match step {
            Value::Map(m) => m,
            other => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    other.type_name()
                )
                .into());
            }
        };
    }
    Ok(def)
}

/// `fromJson`.
fn from_json_fn(a: &[Value]) -> FResult {
    Ok(parse_json(s(a, 0)?, None).unwrap_or(Value::Nil))
}

/// `mustFromJson`.
fn must_from_json(a: &[Value]) -> FResult {
    parse_json(s(a, 0)?, None).map_err(FuncError::Call)
}

/// `semver`.
fn semver(a: &[Value]) -> FResult {
    arity(a, 1)?;
    ferroflux_semver::Version::parse(s(a, 0)?)
        .map(|v| Value::Object(Arc::new(SemverObject(v))))
        .map_err(|e| FuncError::Call(e.to_string()))
}

/// `semverCompare`.
fn semver_compare(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let c = ferroflux_semver::Constraints::parse(s(a, 0)?)
        .map_err(|e| FuncError::Call(e.to_string()))?;
    let v =
        ferroflux_semver::Version::parse(s(a, 1)?).map_err(|e| FuncError::Call(e.to_string()))?;
    Ok(Value::Bool(c.check(&v)))
}
