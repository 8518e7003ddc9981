//! Go's builtin template functions (`and`/`or` short-circuit inside the executor).

use std::fmt::Write;
use std::sync::Arc;

use crate::gofmt;
use crate::value::Value;
use crate::{FuncError, FuncMap, func};

type FResult = Result<Value, FuncError>;

pub(crate) fn builtins() -> FuncMap {
    let mut m = FuncMap::new();
    let placeholder = |name: &'static str| {
        func(move |_| Err(format!("{name} is evaluated by the executor").into()))
    };
    m.insert("and".into(), placeholder("and"));
    m.insert("or".into(), placeholder("or"));
    m.insert(
        "not".into(),
        func(|a| {
            want(a, 1, "not")?;
            Ok(Value::Bool(!a[0].truth()))
        }),
    );
    m.insert("len".into(), func(length));
    m.insert("index".into(), func(index));
    m.insert("slice".into(), func(slice));
    m.insert("print".into(), func(|a| Ok(Value::from(gofmt::sprint(a)))));
    m.insert(
        "println".into(),
        func(|a| Ok(Value::from(gofmt::sprintln(a)))),
    );
    m.insert(
        "printf".into(),
        func(|a| {
            let Some(first) = a.first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            let f = arg_string(first, "printf")?;
            Ok(Value::from(gofmt::sprintf(f, &a[1..])))
        }),
    );
    m.insert(
        "html".into(),
        func(|a| Ok(Value::from(html_escape(&eval_args(a))))),
    );
    m.insert(
        "js".into(),
        func(|a| Ok(Value::from(js_escape(&eval_args(a))))),
    );
    m.insert(
        "urlquery".into(),
        func(|a| Ok(Value::from(query_escape(&eval_args(a))))),
    );
    m.insert(
        "eq".into(),
        func(|a| {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            Ok(Value::Bool(eq(a)?))
        }),
    );
    m.insert(
        "ne".into(),
        func(|a| {
            want(a, 2, "ne")?;
            Ok(Value::Bool(!eq(a)?))
        }),
    );
    m.insert(
        "lt".into(),
        func(|a| {
            want(a, 2, "lt")?;
            Ok(Value::Bool(lt(&a[0], &a[1])?))
        }),
    );
    m.insert(
        "le".into(),
        func(|a| {
            want(a, 2, "le")?;
            Ok(Value::Bool(lt(&a[0], &a[1])? || eq(a)?))
        }),
    );
    m.insert(
        "gt".into(),
        func(|a| {
            want(a, 2, "gt")?;
            Ok(Value::Bool(!(lt(&a[0], &a[1])? || eq(a)?)))
        }),
    );
    m.insert(
        "ge".into(),
        func(|a| {
            want(a, 2, "ge")?;
            Ok(Value::Bool(!lt(&a[0], &a[1])?))
        }),
    );
    m.insert(
        "call".into(),
        func(|a| match a.first() {
            None => Err("wrong number of args for call: want at least 1 got 0".into()),
            Some(Value::Nil) => Err("call of nil".into()),
            Some(v) => Err(format!(
                "non-function {} of type {}",
                gofmt::to_string(v),
                v.type_name()
            )
            .into()),
        }),
    );
    m
}

/// Checks the argument count like Go's `wrong number of args` error.
pub(crate) fn want(a: &[Value], n: usize, name: &str) -> Result<(), FuncError> {
    if a.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", a.len()).into());
    }
    Ok(())
}

/// A `string` parameter: Go refuses anything else, nil included.
pub(crate) fn arg_string<'v>(v: &'v Value, _name: &str) -> Result<&'v str, FuncError> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Nil => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )
        .into()),
    }
}

fn eval_args(a: &[Value]) -> String {
    if a.len() == 1
        && let Value::Str(s) = &a[0]
    {
        return s.to_string();
    }
    let mapped: Vec<Value> = a
        .iter()
        .map(|v| {
            if v.is_nil() {
                Value::str("<no value>")
            } else {
                v.clone()
            }
        })
        .collect();
    gofmt::sprint(&mapped)
}

fn length(a: &[Value]) -> FResult {
    want(a, 1, "len")?;
    match &a[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::Nil => Err("len of nil pointer".into()),
        Value::Object(o) => match o.to_plain() {
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            _ => Err(format!("len of type {}", o.type_name()).into()),
        },
        other => Err(format!("len of type {}", other.type_name()).into()),
    }
}

fn index_arg(v: &Value, cap: usize, what: &str) -> Result<usize, FuncError> {
    match v {
        Value::Int(x) => {
            if *x < 0 || *x as u64 > cap as u64 {
                return Err(format!("index out of range: {x}").into());
            }
            Ok(*x as usize)
        }
        Value::Nil => Err(format!("cannot index {what} with nil").into()),
        other => Err(format!("cannot index {what} with type {}", other.type_name()).into()),
    }
}

fn index(a: &[Value]) -> FResult {
    let Some(first) = a.first() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    let mut item = first.clone();
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    for idx in &a[1..] {
        item = match &item {
            Value::List(l) => {
                let x = index_arg(idx, l.len(), "slice/array")?;
                l.get(x)
                    .cloned()
                    .ok_or_else(|| FuncError::from(format!("index out of range: {x}")))?
            }
            Value::Str(s) => {
                let x = index_arg(idx, s.len(), "slice/array")?;
                Value::Int(
                    *s.as_bytes()
                        .get(x)
                        .ok_or_else(|| FuncError::from(format!("index out of range: {x}")))?
                        as i64,
                )
            }
            Value::Map(m) => match idx {
                Value::Str(k) => m.get(k).unwrap_or(Value::Nil),
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(
                        format!("value has type {}; should be string", other.type_name()).into(),
                    );
                }
            },
            Value::Nil => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name()).into()),
        };
    }
    Ok(item)
}

fn slice(a: &[Value]) -> FResult {
    let Some(first) = a.first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    let idxs = &a[1..];
    if first.is_nil() {
        return Err("slice of untyped nil".into());
    }
    if idxs.len() > 3 {
        return Err(format!("too many slice indexes: {}", idxs.len()).into());
    }
    let len = match first {
        Value::Str(s) => {
            if idxs.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name()).into()),
    };
    let mut idx = [0usize, len, len];
    for (i, v) in idxs.iter().enumerate() {
        idx[i] = index_arg(v, len, "slice/array")?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]).into());
    }
    if idxs.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]).into());
    }
    Ok(match first {
        Value::Str(s) => {
            Value::from(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::List(l) => Value::List(Arc::new(l[idx[0]..idx[1]].to_vec())),
        _ => Value::Nil,
    })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum BasicKind {
    Bool,
    Int,
    Float,
    Str,
    Invalid,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v {
        Value::Bool(_) => BasicKind::Bool,
        Value::Int(_) => BasicKind::Int,
        Value::Float(_) => BasicKind::Float,
        Value::Str(_) => BasicKind::Str,
        _ => BasicKind::Invalid,
    }
}

/// Go's `eq arg1 arg2...`.
pub(crate) fn eq(a: &[Value]) -> Result<bool, FuncError> {
    let a1 = &a[0];
    let k1 = basic_kind(a1);
    for b in &a[1..] {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if !a1.is_nil() && !b.is_nil() {
                return Err(format!(
                    "incompatible types for comparison: {} and {}",
                    a1.type_name(),
                    b.type_name()
                )
                .into());
            }
            false
        } else {
            match (a1, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Nil, _) | (_, Value::Nil) => a1.is_nil() == b.is_nil(),
                (Value::Object(x), Value::Object(y)) => Arc::ptr_eq(x, y),
                (x, y) if x.type_name() == y.type_name() => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        gofmt::to_string(y),
                        y.type_name()
                    )
                    .into());
                }
                (x, y) => {
                    return Err(format!(
                        "non-comparable types {}: {}, {}: {}",
                        gofmt::to_string(x),
                        x.type_name(),
                        gofmt::to_string(y),
                        y.type_name()
                    )
                    .into());
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt arg1 arg2`.
pub(crate) fn lt(a: &Value, b: &Value) -> Result<bool, FuncError> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == BasicKind::Invalid || k2 == BasicKind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )
        .into());
    }
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return Err("invalid type for comparison".into()),
    })
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if c.is_ascii() => out.push(c),
            c if gofmt::is_print(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
