//! Conversions (`toString`, `int`, `float64`, ...), type tests, defaults and emptiness.

use super::{Entry, FResult, arity, at_least, boolean, insert_all, s, strs};
use crate::gofmt;
use crate::value::Value;
use crate::{FuncError, FuncMap};

/// Sprig's `strval`: strings as is, everything else as `%v`.
pub(crate) fn strval(v: &Value) -> String {
    gofmt::to_string(v)
}

fn trim_zero_decimal(s: &str) -> &str {
    if let Some((int, frac)) = s.split_once('.')
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0')
    {
        return int;
    }
    s
}

/// `cast.ToInt64`: failures give 0.
pub(crate) fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(x) => {
            if x.is_finite() {
                *x as i64
            } else {
                i64::MIN
            }
        }
        Value::Bool(b) => *b as i64,
        Value::Str(s) => parse_int_base0(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    let clean: String = if radix != 10 {
        digits.replace('_', "")
    } else {
        digits.to_string()
    };
    let v = i128::from_str_radix(&clean, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// `cast.ToFloat64`: failures give 0.
pub(crate) fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(x) => *x,
        Value::Bool(b) => *b as i64 as f64,
        Value::Str(s) => ferroflux_gocompat::float::parse(s).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`: the zero value of its type, or nil.
pub(crate) fn empty(v: &Value) -> bool {
    !v.truth()
}

fn type_of(v: &Value) -> String {
    v.type_name()
}

pub(super) fn register(m: &mut FuncMap) {
    insert_all(m, FUNCS);
}

/// The functions that need nothing but their arguments, one line each.
const FUNCS: &[Entry] = &[
    ("toString", to_string_fn),
    ("atoi", atoi),
    ("int", int_fn),
    ("int64", int_fn),
    ("float64", float64),
    ("toDecimal", to_decimal),
    ("toStrings", to_strings),
    ("typeOf", type_of_fn),
    ("typeIs", type_is),
    ("typeIsLike", type_is_like),
    ("kindOf", kind_of),
    ("kindIs", kind_is),
    ("deepEqual", deep_equal),
    ("default", default),
    ("empty", empty_fn),
    ("coalesce", coalesce),
    ("all", all_fn),
    ("any", any_fn),
    ("ternary", ternary),
    ("fail", fail),
];

/// `toString`.
fn to_string_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::from(strval(&a[0])))
}

/// `atoi`.
fn atoi(a: &[Value]) -> FResult {
    let t = s(a, 0)?;
    Ok(Value::Int(t.parse::<i64>().unwrap_or(0)))
}

/// `int`, `int64`.
fn int_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Int(to_int64(&a[0])))
}

/// `float64`.
fn float64(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Float(to_float64(&a[0])))
}

/// `toDecimal`.
fn to_decimal(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Int(
        i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
    ))
}

/// `toStrings`.
fn to_strings(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(strs(super::data::strslice(&a[0])))
}

/// `typeOf`.
fn type_of_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::from(type_of(&a[0])))
}

/// `typeIs`.
fn type_is(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(s(a, 0)? == type_of(&a[1])))
}

/// `typeIsLike`.
fn type_is_like(a: &[Value]) -> FResult {
    arity(a, 2)?;
    let t = type_of(&a[1]);
    let want = s(a, 0)?;
    Ok(Value::Bool(want == t || format!("*{want}") == t))
}

/// `kindOf`.
fn kind_of(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::str(a[0].kind_name()))
}

/// `kindIs`.
fn kind_is(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(s(a, 0)? == a[1].kind_name()))
}

/// `deepEqual`.
fn deep_equal(a: &[Value]) -> FResult {
    arity(a, 2)?;
    Ok(Value::Bool(a[0] == a[1]))
}

/// `default`.
fn default(a: &[Value]) -> FResult {
    at_least(a, 1)?;
    match a.get(1) {
        Some(v) if !empty(v) => Ok(v.clone()),
        _ => Ok(a[0].clone()),
    }
}

/// `empty`.
fn empty_fn(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Ok(Value::Bool(empty(&a[0])))
}

/// `coalesce`.
fn coalesce(a: &[Value]) -> FResult {
    Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil))
}

/// `all`.
fn all_fn(a: &[Value]) -> FResult {
    Ok(Value::Bool(a.iter().all(|v| !empty(v))))
}

/// `any`.
fn any_fn(a: &[Value]) -> FResult {
    Ok(Value::Bool(a.iter().any(|v| !empty(v))))
}

/// `ternary`.
fn ternary(a: &[Value]) -> FResult {
    arity(a, 3)?;
    Ok(if boolean(a, 2)? {
        a[0].clone()
    } else {
        a[1].clone()
    })
}

/// `fail`.
fn fail(a: &[Value]) -> FResult {
    arity(a, 1)?;
    Err(FuncError::Call(s(a, 0)?.to_string()))
}
