//! The functions: JMESPath's built-ins and the Kyverno additions validate rules use
//! (`pkg/engine/jmespath/functions.go`, `arithmetic.go`), with Kyverno's error texts.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use ferroflux_gocompat::{duration, float, json};
use jmespath::ast::Ast;
use jmespath::{Rcvar, Variable};
use serde_json::Value;

mod extras;
mod time;

use super::{Arg, Interp, JpError, to_json};
use crate::quantity::Quantity;
use crate::wildcard;

/// Longest string a function may build (`join`, `replace_all`, `to_string`, ...).
const MAX_STRING: usize = 1 << 20;
/// Longest regular expression accepted from a policy.
const MAX_REGEX: usize = 4096;

type Out = Result<Rcvar, JpError>;

fn fail(function: &str, message: impl std::fmt::Display) -> JpError {
    JpError::Failed(format!("JMESPath function '{function}': {message}"))
}

fn wrong_type(function: &str, position: usize, expected: &str) -> JpError {
    fail(
        function,
        format!("argument #{position} is not of type {expected}"),
    )
}

fn string(s: impl Into<String>) -> Out {
    let s = s.into();
    if s.len() > MAX_STRING {
        return Err(JpError::Failed(format!(
            "JMESPath string longer than {MAX_STRING} bytes"
        )));
    }
    Ok(Rc::new(Variable::String(s)))
}

fn number(f: f64) -> Out {
    serde_json::Number::from_f64(f)
        .map(|n| Rc::new(Variable::Number(n)))
        .ok_or_else(|| JpError::Failed(format!("{f} is not a JSON number")))
}

fn boolean(b: bool) -> Out {
    Ok(Rc::new(Variable::Bool(b)))
}

fn from_json(value: Value) -> Out {
    Ok(super::to_var(&value))
}

/// The arguments of one call, checked as go-jmespath checks them.
struct Args<'a, 'i> {
    name: &'a str,
    args: Vec<Arg<'a>>,
    interp: &'i mut Interp,
    depth: usize,
}

impl<'a> Args<'a, '_> {
    fn arity(&self, n: usize) -> Result<(), JpError> {
        if self.args.len() != n {
            return Err(JpError::Failed(format!(
                "Invalid arity for {}: expected {n} arguments, got {}",
                self.name,
                self.args.len()
            )));
        }
        Ok(())
    }

    fn value(&self, i: usize) -> Result<Rcvar, JpError> {
        match self.args.get(i) {
            Some(Arg::Value(v)) => Ok(v.clone()),
            Some(Arg::Expref(_)) => Err(wrong_type(self.name, i + 1, "any")),
            None => Err(fail(
                self.name,
                format!("{} argument is out of bounds ({})", i + 1, self.args.len()),
            )),
        }
    }

    fn str(&self, i: usize) -> Result<String, JpError> {
        match &*self.value(i)? {
            Variable::String(s) => Ok(s.clone()),
            _ => Err(wrong_type(self.name, i + 1, "string")),
        }
    }

    fn num(&self, i: usize) -> Result<f64, JpError> {
        self.value(i)?
            .as_number()
            .ok_or_else(|| wrong_type(self.name, i + 1, "float64"))
    }

    fn array(&self, i: usize) -> Result<Vec<Rcvar>, JpError> {
        match &*self.value(i)? {
            Variable::Array(items) => Ok(items.clone()),
            _ => Err(wrong_type(self.name, i + 1, "array")),
        }
    }

    fn object(&self, i: usize) -> Result<BTreeMap<String, Rcvar>, JpError> {
        match &*self.value(i)? {
            Variable::Object(map) => Ok(map.clone()),
            _ => Err(wrong_type(self.name, i + 1, "object")),
        }
    }

    fn expref(&self, i: usize) -> Result<&'a Ast, JpError> {
        match self.args.get(i) {
            Some(Arg::Expref(ast)) => Ok(ast),
            _ => Err(wrong_type(self.name, i + 1, "expref")),
        }
    }

    fn apply(&mut self, ast: &Ast, data: &Rcvar) -> Out {
        self.interp.eval_or_null(ast, data, self.depth)
    }
}

/// Calls `name`.
pub(crate) fn call(interp: &mut Interp, name: &str, args: Vec<Arg<'_>>, depth: usize) -> Out {
    let mut a = Args {
        name,
        args,
        interp,
        depth,
    };
    if let Some(out) = builtin(&mut a)? {
        return Ok(out);
    }
    if let Some(out) = kyverno_text(&a)? {
        return Ok(out);
    }
    if let Some(out) = kyverno_data(&a)? {
        return Ok(out);
    }
    if let Some(out) = time::call(&a)? {
        return Ok(out);
    }
    if let Some(out) = extras::call(&a)? {
        return Ok(out);
    }
    Err(JpError::Failed(format!("Unknown function: {name}()")))
}

/// JMESPath's own functions.
fn builtin(a: &mut Args<'_, '_>) -> Result<Option<Rcvar>, JpError> {
    let out = match a.name {
        "abs" => (a.arity(1)?, number(a.num(0)?.abs())?).1,
        "ceil" => (a.arity(1)?, number(a.num(0)?.ceil())?).1,
        "floor" => (a.arity(1)?, number(a.num(0)?.floor())?).1,
        "avg" => {
            a.arity(1)?;
            let items = numbers(a, 0)?;
            if items.is_empty() {
                Rc::new(Variable::Null)
            } else {
                number(items.iter().sum::<f64>() / items.len() as f64)?
            }
        }
        "contains" => {
            a.arity(2)?;
            let needle = a.value(1)?;
            match &*a.value(0)? {
                Variable::Array(items) => boolean(items.contains(&needle))?,
                Variable::String(s) => {
                    boolean(needle.as_string().is_some_and(|n| s.contains(n.as_str())))?
                }
                _ => return Err(wrong_type(a.name, 1, "array|string")),
            }
        }
        "ends_with" => (a.arity(2)?, boolean(a.str(0)?.ends_with(&a.str(1)?))?).1,
        "starts_with" => (a.arity(2)?, boolean(a.str(0)?.starts_with(&a.str(1)?))?).1,
        "join" => {
            a.arity(2)?;
            let glue = a.str(0)?;
            let mut parts = Vec::new();
            for item in a.array(1)? {
                parts.push(
                    item.as_string()
                        .cloned()
                        .ok_or_else(|| wrong_type(a.name, 2, "array[string]"))?,
                );
            }
            string(parts.join(&glue))?
        }
        "keys" => {
            a.arity(1)?;
            let keys = a
                .object(0)?
                .into_keys()
                .map(|k| Rc::new(Variable::String(k)))
                .collect();
            Rc::new(Variable::Array(keys))
        }
        "values" => {
            (
                a.arity(1)?,
                Rc::new(Variable::Array(a.object(0)?.into_values().collect())),
            )
                .1
        }
        "length" => {
            a.arity(1)?;
            let len = match &*a.value(0)? {
                Variable::String(s) => s.chars().count(),
                Variable::Array(items) => items.len(),
                Variable::Object(map) => map.len(),
                _ => return Err(wrong_type(a.name, 1, "string|array|object")),
            };
            number(len as f64)?
        }
        "map" => {
            a.arity(2)?;
            let ast = a.expref(0)?;
            let mut out = Vec::new();
            for item in a.array(1)? {
                out.push(a.apply(ast, &item)?);
            }
            Rc::new(Variable::Array(out))
        }
        "max" | "min" => extreme(a, a.name == "max")?,
        "max_by" | "min_by" => extreme_by(a, a.name == "max_by")?,
        "merge" => {
            let mut out = BTreeMap::new();
            for i in 0..a.args.len() {
                out.extend(a.object(i)?);
            }
            Rc::new(Variable::Object(out))
        }
        "not_null" => {
            let mut found = Rc::new(Variable::Null);
            for i in 0..a.args.len() {
                let v = a.value(i)?;
                if !v.is_null() {
                    found = v;
                    break;
                }
            }
            found
        }
        "reverse" => {
            a.arity(1)?;
            match &*a.value(0)? {
                Variable::String(s) => string(s.chars().rev().collect::<String>())?,
                Variable::Array(items) => {
                    Rc::new(Variable::Array(items.iter().rev().cloned().collect()))
                }
                _ => return Err(wrong_type(a.name, 1, "string|array")),
            }
        }
        "sort" => {
            a.arity(1)?;
            let mut items = a.array(0)?;
            sort_values(&mut items, a.name)?;
            Rc::new(Variable::Array(items))
        }
        "sort_by" => sort_by(a)?,
        "to_array" => {
            a.arity(1)?;
            let v = a.value(0)?;
            if v.is_array() {
                v
            } else {
                Rc::new(Variable::Array(vec![v]))
            }
        }
        "to_number" => {
            a.arity(1)?;
            let v = a.value(0)?;
            match &*v {
                Variable::Number(_) => v.clone(),
                Variable::String(s) => {
                    float::parse(s).map_or_else(|| Ok(Rc::new(Variable::Null)), number)?
                }
                _ => Rc::new(Variable::Null),
            }
        }
        "to_string" => {
            a.arity(1)?;
            let v = a.value(0)?;
            match &*v {
                Variable::String(_) => v.clone(),
                other => string(go_json(&to_json(other)?))?,
            }
        }
        "type" => (a.arity(1)?, string(a.value(0)?.get_type().to_string())?).1,
        _ => return Ok(None),
    };
    Ok(Some(out))
}

fn numbers(a: &Args<'_, '_>, i: usize) -> Result<Vec<f64>, JpError> {
    a.array(i)?
        .iter()
        .map(|v| {
            v.as_number()
                .ok_or_else(|| wrong_type(a.name, i + 1, "array[number]"))
        })
        .collect()
}

fn extreme(a: &Args<'_, '_>, max: bool) -> Out {
    a.arity(1)?;
    let items = a.array(0)?;
    let mut best: Option<Rcvar> = None;
    for item in items {
        if !(item.is_number() || item.is_string()) {
            return Err(wrong_type(a.name, 1, "array[number]|array[string]"));
        }
        best = Some(match best {
            None => item,
            Some(b) => {
                let better = order(&item, &b, a.name)?;
                if (better == std::cmp::Ordering::Greater) == max
                    && better != std::cmp::Ordering::Equal
                {
                    item
                } else {
                    b
                }
            }
        });
    }
    Ok(best.unwrap_or_else(|| Rc::new(Variable::Null)))
}

fn extreme_by(a: &mut Args<'_, '_>, max: bool) -> Out {
    a.arity(2)?;
    let ast = a.expref(1)?;
    let mut best: Option<(Rcvar, Rcvar)> = None;
    for item in a.array(0)? {
        let key = a.apply(ast, &item)?;
        best = Some(match best {
            None => (key, item),
            Some((bk, bi)) => {
                let o = order(&key, &bk, a.name)?;
                if (o == std::cmp::Ordering::Greater) == max && o != std::cmp::Ordering::Equal {
                    (key, item)
                } else {
                    (bk, bi)
                }
            }
        });
    }
    Ok(best.map_or_else(|| Rc::new(Variable::Null), |(_, item)| item))
}

fn order(x: &Variable, y: &Variable, name: &str) -> Result<std::cmp::Ordering, JpError> {
    match (x, y) {
        (Variable::Number(_), Variable::Number(_)) => Ok(x
            .as_number()
            .partial_cmp(&y.as_number())
            .unwrap_or(std::cmp::Ordering::Equal)),
        (Variable::String(p), Variable::String(q)) => Ok(p.cmp(q)),
        _ => Err(JpError::Failed(format!(
            "Invalid type for {name}: values must all be numbers or all strings"
        ))),
    }
}

fn sort_values(items: &mut [Rcvar], name: &str) -> Result<(), JpError> {
    let mut error = None;
    items.sort_by(|x, y| {
        order(x, y, name).unwrap_or_else(|e| {
            error = Some(e);
            std::cmp::Ordering::Equal
        })
    });
    error.map_or(Ok(()), Err)
}

fn sort_by(a: &mut Args<'_, '_>) -> Out {
    a.arity(2)?;
    let ast = a.expref(1)?;
    let mut keyed = Vec::new();
    for item in a.array(0)? {
        keyed.push((a.apply(ast, &item)?, item));
    }
    let mut error = None;
    keyed.sort_by(|x, y| {
        order(&x.0, &y.0, "sort_by").unwrap_or_else(|e| {
            error = Some(e);
            std::cmp::Ordering::Equal
        })
    });
    if let Some(e) = error {
        return Err(e);
    }
    Ok(Rc::new(Variable::Array(
        keyed.into_iter().map(|(_, v)| v).collect(),
    )))
}

/// Go's `json.Marshal` of a decoded value: compact, HTML-escaped strings, Go floats.
pub(crate) fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(&mut out, value);
    out
}

fn write_go_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !(n.is_i64() || n.is_u64()) => out.push_str(&float::json(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => json::write_string(out, s, true),
        Value::Array(items) => json::write_array(out, items, write_go_json),
        Value::Object(map) => json::write_object(
            out,
            map.iter().map(|(k, v)| (k.as_str(), v)),
            true,
            write_go_json,
        ),
    }
}

/// `ifaceToString`: numbers as float32 text, as Kyverno does.
fn iface_to_string(a: &Args<'_, '_>, i: usize) -> Result<String, JpError> {
    match &*a.value(i)? {
        Variable::String(s) => Ok(s.clone()),
        Variable::Bool(b) => Ok(b.to_string()),
        Variable::Number(n) => Ok(((n.as_f64().unwrap_or(0.0)) as f32).to_string()),
        _ => Err(wrong_type(a.name, i + 1, "String or Real")),
    }
}

fn regex(a: &Args<'_, '_>, pattern: &str) -> Result<regex::Regex, JpError> {
    if pattern.len() > MAX_REGEX {
        return Err(fail(
            a.name,
            format!("regular expression longer than {MAX_REGEX} bytes"),
        ));
    }
    ferroflux_gocompat::regex::compile(pattern).map_err(|e| fail(a.name, e))
}

/// Kyverno's text functions.
fn kyverno_text(a: &Args<'_, '_>) -> Result<Option<Rcvar>, JpError> {
    let out = match a.name {
        "compare" => {
            (
                a.arity(2)?,
                number(match a.str(0)?.cmp(&a.str(1)?) {
                    std::cmp::Ordering::Less => -1.0,
                    std::cmp::Ordering::Equal => 0.0,
                    std::cmp::Ordering::Greater => 1.0,
                })?,
            )
                .1
        }
        "replace" => {
            a.arity(4)?;
            let (s, old, new, n) = (a.str(0)?, a.str(1)?, a.str(2)?, a.num(3)?);
            let replaced = if n < 0.0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            };
            string(replaced)?
        }
        "replace_all" => {
            (
                a.arity(3)?,
                string(bounded_replace(&a.str(0)?, &a.str(1)?, &a.str(2)?)?)?,
            )
                .1
        }
        "to_upper" => (a.arity(1)?, string(a.str(0)?.to_uppercase())?).1,
        "to_lower" => (a.arity(1)?, string(a.str(0)?.to_lowercase())?).1,
        "trim" => {
            a.arity(2)?;
            let cutset: Vec<char> = a.str(1)?.chars().collect();
            string(a.str(0)?.trim_matches(|c| cutset.contains(&c)))?
        }
        "trim_prefix" => {
            a.arity(2)?;
            let (s, prefix) = (a.str(0)?, a.str(1)?);
            string(s.strip_prefix(prefix.as_str()).unwrap_or(&s))?
        }
        "split" => {
            a.arity(2)?;
            let (s, sep) = (a.str(0)?, a.str(1)?);
            let parts: Vec<Rcvar> = if sep.is_empty() {
                s.chars()
                    .map(|c| Rc::new(Variable::String(c.to_string())))
                    .collect()
            } else {
                s.split(sep.as_str())
                    .map(|p| Rc::new(Variable::String(p.into())))
                    .collect()
            };
            Rc::new(Variable::Array(parts))
        }
        "regex_replace_all" | "regex_replace_all_literal" => {
            a.arity(3)?;
            let re = regex(a, &a.str(0)?)?;
            let (src, repl) = (iface_to_string(a, 1)?, iface_to_string(a, 2)?);
            let out = if a.name == "regex_replace_all" {
                re.replace_all(&src, repl.as_str()).into_owned()
            } else {
                re.replace_all(&src, regex::NoExpand(&repl)).into_owned()
            };
            string(out)?
        }
        "regex_match" => {
            (
                a.arity(2)?,
                boolean(regex(a, &a.str(0)?)?.is_match(&iface_to_string(a, 1)?))?,
            )
                .1
        }
        "pattern_match" => {
            (
                a.arity(2)?,
                boolean(wildcard::matches(&a.str(0)?, &iface_to_string(a, 1)?))?,
            )
                .1
        }
        "to_boolean" => {
            a.arity(1)?;
            let text = a.str(0)?;
            match text.to_lowercase().as_str() {
                "true" => boolean(true)?,
                "false" => boolean(false)?,
                _ => {
                    return Err(fail(
                        a.name,
                        format!(
                            "lowercase argument must be 'true' or 'false' (provided: '{text}')"
                        ),
                    ));
                }
            }
        }
        "base64_decode" => {
            a.arity(1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.str(0)?)
                .map_err(|e| JpError::Failed(e.to_string()))?;
            string(String::from_utf8_lossy(&bytes).into_owned())?
        }
        "base64_encode" => {
            (
                a.arity(1)?,
                string(base64::engine::general_purpose::STANDARD.encode(a.str(0)?))?,
            )
                .1
        }
        "path_canonicalize" => {
            (
                a.arity(1)?,
                string(ferroflux_gocompat::path::clean(&a.str(0)?))?,
            )
                .1
        }
        "truncate" => {
            a.arity(2)?;
            let length = a.num(1)?.max(0.0) as usize;
            string(a.str(0)?.chars().take(length).collect::<String>())?
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

fn bounded_replace(s: &str, old: &str, new: &str) -> Result<String, JpError> {
    let count = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    if s.len() + count.saturating_mul(new.len()) > MAX_STRING {
        return Err(JpError::Failed(format!(
            "JMESPath string longer than {MAX_STRING} bytes"
        )));
    }
    Ok(s.replace(old, new))
}

/// Kyverno's data and arithmetic functions.
fn kyverno_data(a: &Args<'_, '_>) -> Result<Option<Rcvar>, JpError> {
    let out = match a.name {
        "label_match" => {
            a.arity(2)?;
            let (labels, target) = (a.object(0)?, a.object(1)?);
            boolean(labels.iter().all(|(k, v)| target.get(k) == Some(v)))?
        }
        "add" | "subtract" | "multiply" | "divide" | "modulo" => {
            a.arity(2)?;
            let (x, y) = (operand(a, 0)?, operand(a, 1)?);
            arithmetic(a.name, x, y)?
        }
        "sum" => {
            a.arity(1)?;
            let items = a.array(0)?;
            let Some(first) = items.first() else {
                return Err(fail("sum", "at least one element in the array is required"));
            };
            let mut total = first.clone();
            for item in &items[1..] {
                let x = operand_of(&total, "sum")?;
                let y = operand_of(item, "sum")?;
                total = arithmetic_named("sum", "add", x, y)?;
            }
            total
        }
        "round" => {
            a.arity(2)?;
            let (value, places) = (a.num(0)?, a.num(1)?);
            if places.trunc() != places || !places.is_finite() {
                return Err(fail(a.name, "Non-integer argument(s) passed for round off"));
            }
            if places < 0.0 {
                return Err(fail(a.name, "2 argument is out of bounds (2)"));
            }
            let shift = 10f64.powi(places.min(308.0) as i32);
            number((value * shift).round() / shift)?
        }
        "parse_json" => {
            a.arity(1)?;
            let text = a.str(0)?;
            from_json(serde_json::from_str(&text).map_err(|e| JpError::Failed(e.to_string()))?)?
        }
        "parse_yaml" => {
            a.arity(1)?;
            let text = a.str(0)?;
            from_json(
                ferroflux_gocompat::yaml::from_str::<Value>(&text)
                    .map_err(|e| JpError::Failed(e.to_string()))?,
            )?
        }
        "lookup" => lookup(a)?,
        "items" => items(a)?,
        "object_from_lists" => {
            a.arity(2)?;
            let (keys, values) = (a.array(0)?, a.array(1)?);
            let mut out = BTreeMap::new();
            for (i, key) in keys.iter().enumerate() {
                let key = match &**key {
                    Variable::String(s) => s.clone(),
                    Variable::Bool(b) => b.to_string(),
                    Variable::Number(n) => ((n.as_f64().unwrap_or(0.0)) as f32).to_string(),
                    _ => return Err(wrong_type(a.name, 1, "StringArray")),
                };
                out.insert(
                    key,
                    values
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Rc::new(Variable::Null)),
                );
            }
            Rc::new(Variable::Object(out))
        }
        _ => return Ok(None),
    };
    Ok(Some(out))
}

fn lookup(a: &Args<'_, '_>) -> Out {
    a.arity(2)?;
    match &*a.value(0)? {
        Variable::Object(map) => {
            let key = a
                .value(1)?
                .as_string()
                .cloned()
                .ok_or_else(|| wrong_type(a.name, 2, "String"))?;
            Ok(map
                .get(&key)
                .cloned()
                .unwrap_or_else(|| Rc::new(Variable::Null)))
        }
        Variable::Array(items) => {
            let key = a
                .value(1)?
                .as_number()
                .ok_or_else(|| wrong_type(a.name, 2, "Number"))?;
            if key.trunc() != key || !key.is_finite() {
                return Err(JpError::Failed(format!(
                    "JMESPath function 'lookup': argument #2: expected an integer number but got: {}",
                    float::format_g(key)
                )));
            }
            Ok(if key < 0.0 {
                None
            } else {
                items.get(key as usize).cloned()
            }
            .unwrap_or_else(|| Rc::new(Variable::Null)))
        }
        _ => Err(wrong_type(a.name, 1, "Object or Array")),
    }
}

fn items(a: &Args<'_, '_>) -> Out {
    a.arity(3)?;
    let key_name = a
        .value(1)?
        .as_string()
        .cloned()
        .ok_or_else(|| wrong_type(a.name, 2, "String"))?;
    let value_name = a
        .value(2)?
        .as_string()
        .cloned()
        .ok_or_else(|| wrong_type(a.name, 3, "String"))?;
    let pair = |k: Rcvar, v: Rcvar| {
        let mut m = BTreeMap::new();
        m.insert(key_name.clone(), k);
        m.insert(value_name.clone(), v);
        Rc::new(Variable::Object(m))
    };
    let out = match &*a.value(0)? {
        Variable::Object(map) => map
            .iter()
            .map(|(k, v)| pair(Rc::new(Variable::String(k.clone())), v.clone()))
            .collect(),
        Variable::Array(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, v) in list.iter().enumerate() {
                out.push(pair(number(i as f64)?, v.clone()));
            }
            out
        }
        _ => return Err(wrong_type(a.name, 1, "Object or Array")),
    };
    Ok(Rc::new(Variable::Array(out)))
}

/// An arithmetic operand: a number, a quantity or a duration (in that order, as Kyverno).
enum Operand {
    Scalar(f64),
    Quantity(Quantity),
    Duration(i64),
}

fn operand(a: &Args<'_, '_>, i: usize) -> Result<Operand, JpError> {
    operand_of(&*a.value(i)?, a.name)
}

fn operand_of(value: &Variable, name: &str) -> Result<Operand, JpError> {
    match value {
        Variable::Number(n) => Ok(Operand::Scalar(n.as_f64().unwrap_or(f64::NAN))),
        Variable::String(s) => Quantity::parse(s)
            .map(Operand::Quantity)
            .or_else(|| duration::parse(s).ok().map(Operand::Duration))
            .ok_or_else(|| fail(name, "invalid operand")),
        _ => Err(fail(name, "invalid operand")),
    }
}

fn arithmetic(name: &str, x: Operand, y: Operand) -> Out {
    arithmetic_named(name, name, x, y)
}

/// `op` applied as Kyverno's `arithmetic.go`; errors name `name`.
fn arithmetic_named(name: &str, op: &str, x: Operand, y: Operand) -> Out {
    use Operand::*;
    let mismatch = || fail(name, "Types mismatch");
    let zero = || fail(name, "Zero divisor passed");
    let overflow = || fail(name, "result out of range");
    let non_int = || fail(name, "Non-integer argument(s) passed for modulo");
    let quantity = |q: Option<crate::quantity::Quantity>| {
        q.map_or_else(|| Err(overflow()), |q| string(q.to_string()))
    };
    let dur = |d: Option<i64>| d.map_or_else(|| Err(overflow()), |d| string(duration::format(d)));
    let secs = |d: i64| d as f64 / 1e9;
    let from_secs = |s: f64| {
        let nanos = s * 1e9;
        (nanos.is_finite() && nanos.abs() < 9.2e18).then_some(nanos as i64)
    };
    match (op, x, y) {
        ("add", Scalar(p), Scalar(q)) => number(p + q),
        ("add", Quantity(p), Quantity(q)) => quantity(p.checked_add(&q)),
        ("add", Duration(p), Duration(q)) => dur(p.checked_add(q)),
        ("subtract", Scalar(p), Scalar(q)) => number(p - q),
        ("subtract", Quantity(p), Quantity(q)) => quantity(p.checked_sub(&q)),
        ("subtract", Duration(p), Duration(q)) => dur(p.checked_sub(q)),
        ("multiply", Scalar(p), Scalar(q)) => number(p * q),
        ("multiply", Quantity(p), Scalar(q)) | ("multiply", Scalar(q), Quantity(p)) => {
            quantity(crate::quantity::Quantity::from_f64(q).and_then(|q| p.checked_mul(&q)))
        }
        ("multiply", Duration(p), Scalar(q)) | ("multiply", Scalar(q), Duration(p)) => {
            dur(from_secs(secs(p) * q))
        }
        ("divide", _, Scalar(0.0)) => Err(zero()),
        ("divide", Scalar(p), Scalar(q)) => number(p / q),
        ("divide", Quantity(p), Quantity(q)) => {
            if q.as_f64() == 0.0 {
                return Err(zero());
            }
            number(p.as_f64() / q.as_f64())
        }
        ("divide", Quantity(p), Scalar(q)) => {
            quantity(crate::quantity::Quantity::from_f64(q).and_then(|q| p.checked_div(&q)))
        }
        ("divide", Duration(p), Duration(q)) => {
            if q == 0 {
                return Err(zero());
            }
            number(secs(p) / secs(q))
        }
        ("divide", Duration(p), Scalar(q)) => dur(from_secs(secs(p) / q)),
        ("modulo", Scalar(p), Scalar(q)) => {
            if p.trunc() != p || q.trunc() != q {
                return Err(non_int());
            }
            if q == 0.0 {
                return Err(zero());
            }
            number(((p as i64) % (q as i64)) as f64)
        }
        ("modulo", Quantity(p), Quantity(q)) => {
            let (Some(i), Some(j)) = (p.as_integer(), q.as_integer()) else {
                return Err(non_int());
            };
            if j == 0 {
                return Err(zero());
            }
            quantity(crate::quantity::Quantity::from_integer(i % j, p.format()))
        }
        ("modulo", Duration(p), Duration(q)) => {
            if q == 0 {
                return Err(zero());
            }
            dur(Some(p % q))
        }
        _ => Err(mismatch()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::jmespath::run_on_empty as run;
    use crate::jmespath::to_var;

    #[test]
    fn text_functions() {
        assert_eq!(run("to_upper('abc')"), json!("ABC"));
        assert_eq!(run("split('a,b', ',')"), json!(["a", "b"]));
        assert_eq!(run("regex_match('^v[0-9]+$', 'v12')"), json!(true));
        assert_eq!(
            run("regex_replace_all('([a-z]+)-([0-9]+)', 'ab-12', '${2}-${1}')"),
            json!("12-ab")
        );
        assert_eq!(run("pattern_match('nginx:*', 'nginx:1')"), json!(true));
        assert_eq!(run("truncate('abcdef', `3`)"), json!("abc"));
        assert_eq!(run("base64_decode(base64_encode('hi'))"), json!("hi"));
        assert_eq!(run("path_canonicalize('/a/../b//c/.')"), json!("/b/c"));
        assert_eq!(run("equal_fold('Go', 'GO')"), json!(true));
        assert_eq!(run("compare('a', 'b')"), json!(-1.0));
        assert_eq!(run("to_string(`{\"a\": 1}`)"), json!("{\"a\":1}"));
    }

    #[test]
    fn arithmetic_on_numbers_quantities_and_durations() {
        assert_eq!(run("divide('1Gi', '256Mi')"), json!(4.0));
        assert_eq!(run("add('1Gi', '512Mi')"), json!("1536Mi"));
        // `30m` reads as 30 milli-units first, so durations need other units to add up.
        assert_eq!(run("add('1h', '30s')"), json!("1h0m30s"));
        assert_eq!(run("multiply(`2`, `3`)"), json!(6.0));
        assert_eq!(run("modulo(`7`, `3`)"), json!(1.0));
        assert_eq!(run("sum(`[1, 2, 3]`)"), json!(6.0));
        assert!(super::super::search("divide(`1`, `0`)", &to_var(&json!({}))).is_err());
    }

    #[test]
    fn data_functions() {
        assert_eq!(
            run("items(`{\"b\": 2, \"a\": 1}`, 'k', 'v')"),
            json!([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
        );
        assert_eq!(
            run("object_from_lists(`[\"a\", \"b\"]`, `[1]`)"),
            json!({"a": 1, "b": null})
        );
        assert_eq!(run("lookup(`{\"a\": 1}`, 'a')"), json!(1));
        assert_eq!(
            run("label_match(`{\"a\": \"1\"}`, `{\"a\": \"1\", \"b\": \"2\"}`)"),
            json!(true)
        );
        assert_eq!(run("parse_yaml('a: 1')"), json!({"a": 1}));
        assert_eq!(
            run("merge(`{\"a\": 1}`, `{\"b\": 2}`)"),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(run("type(`2`)"), json!("number"));
    }
}
