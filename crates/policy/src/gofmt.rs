//! Go's view of JSON values: which Go type a decoded value has (`int64` for a whole number in
//! a resource, `float64` for everything in a policy or the JMESPath context) and how `%v` and
//! `%T` print it, because Kyverno's comparisons and messages depend on both.

use ferroflux_gocompat::float;
use serde_json::Value;

/// A JSON value seen as the Go type Kyverno holds it in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GoScalar<'a> {
    /// `nil`.
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int64`: a whole number decoded from a resource's YAML.
    Int(i64),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(&'a str),
    /// `map[string]interface{}`.
    Map,
    /// `[]interface{}`.
    Slice,
}

/// The Go type of `value`; `floats` says every number is a `float64` (policy text, JMESPath
/// results), otherwise whole numbers are `int64` (a resource decoded from YAML).
pub fn scalar(value: &Value, floats: bool) -> GoScalar<'_> {
    match value {
        Value::Null => GoScalar::Nil,
        Value::Bool(b) => GoScalar::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !floats && (n.is_i64() || n.is_u64()) => GoScalar::Int(i),
            _ => GoScalar::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => GoScalar::Str(s),
        Value::Object(_) => GoScalar::Map,
        Value::Array(_) => GoScalar::Slice,
    }
}

/// `%T` of the value.
pub fn type_name(value: &Value, floats: bool) -> &'static str {
    match scalar(value, floats) {
        GoScalar::Nil => "<nil>",
        GoScalar::Bool(_) => "bool",
        GoScalar::Int(_) => "int64",
        GoScalar::Float(_) => "float64",
        GoScalar::Str(_) => "string",
        GoScalar::Map => "map[string]interface {}",
        GoScalar::Slice => "[]interface {}",
    }
}

/// `fmt.Sprint(value)`: `map[a:1 b:x]`, `[1 2]`, `<nil>`; `floats` as in [`scalar`].
pub fn sprint(value: &Value, floats: bool) -> String {
    let mut out = String::new();
    write_sprint(&mut out, value, floats);
    out
}

fn write_sprint(out: &mut String, value: &Value, floats: bool) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n, floats)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_sprint(out, item, floats);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_sprint(out, v, floats);
            }
            out.push(']');
        }
    }
}

/// `%v` of a number: whole numbers from resources as integers, others as Go floats.
fn number_v(n: &serde_json::Number, floats: bool) -> String {
    if !floats && (n.is_i64() || n.is_u64()) {
        return n.to_string();
    }
    float::format_g(n.as_f64().unwrap_or(f64::NAN))
}
