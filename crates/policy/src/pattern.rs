//! Kyverno's value patterns (`pkg/engine/pattern`): how one resource value is checked against
//! one pattern leaf — `"?*"`, `">=2"`, `"!default"`, `"100-200 | 500-600"`, `"1Gi!-2Gi"`,
//! numbers, booleans and `null` — with durations and quantities compared as such.

use std::sync::LazyLock;

use ferroflux_gocompat::{duration, float, regex::Regex};
use serde_json::Value;

use crate::gofmt::{self, GoScalar};
use crate::quantity::Quantity;
use crate::wildcard;

/// The comparison a string pattern starts with (`pkg/engine/operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    MoreEqual,
    LessEqual,
    NotEqual,
    More,
    Less,
    InRange,
    NotInRange,
}

impl Op {
    /// How many bytes of the pattern the operator takes.
    fn len(self) -> usize {
        match self {
            Op::Equal | Op::InRange | Op::NotInRange => 0,
            Op::NotEqual | Op::More | Op::Less => 1,
            Op::MoreEqual | Op::LessEqual => 2,
        }
    }
}

fn range_regex(not: bool) -> Option<&'static Regex> {
    static IN: LazyLock<Option<Regex>> = LazyLock::new(|| {
        ferroflux_gocompat::regex::compile(
            r"^([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)-([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)$",
        )
        .ok()
    });
    static NOT_IN: LazyLock<Option<Regex>> = LazyLock::new(|| {
        ferroflux_gocompat::regex::compile(
            r"^([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)!-([-|\+]?\d+(?:\.\d+)?[A-Za-z]*)$",
        )
        .ok()
    });
    if not { NOT_IN.as_ref() } else { IN.as_ref() }
}

/// `GetOperatorFromStringPattern`.
pub fn operator_of(pattern: &str) -> Op {
    if pattern.len() < 2 {
        return Op::Equal;
    }
    for (prefix, op) in [
        (">=", Op::MoreEqual),
        ("<=", Op::LessEqual),
        (">", Op::More),
        ("<", Op::Less),
        ("!", Op::NotEqual),
    ] {
        if pattern.starts_with(prefix) {
            return op;
        }
    }
    if range_regex(true).is_some_and(|r| r.is_match(pattern)) {
        return Op::NotInRange;
    }
    if range_regex(false).is_some_and(|r| r.is_match(pattern)) {
        return Op::InRange;
    }
    Op::Equal
}

/// The two bounds of `a-b` / `a!-b`.
fn range_bounds(pattern: &str, not: bool) -> Option<(String, String)> {
    let caps = range_regex(not)?.captures(pattern)?;
    Some((caps.get(1)?.as_str().into(), caps.get(2)?.as_str().into()))
}

/// `pattern.Validate`: whether `value` satisfies the pattern leaf. `floats` says how the
/// value's numbers were decoded (see [`gofmt::scalar`]); pattern numbers are always `float64`.
pub fn validate(value: &Value, pattern: &Value, floats: bool) -> bool {
    let value_go = gofmt::scalar(value, floats);
    match pattern {
        Value::Bool(p) => value_go == GoScalar::Bool(*p),
        Value::Number(n) => validate_float(value_go, n.as_f64().unwrap_or(f64::NAN)),
        Value::Null => {
            matches!(
                value_go,
                GoScalar::Nil | GoScalar::Bool(false) | GoScalar::Str("") | GoScalar::Int(0)
            ) || value_go == GoScalar::Float(0.0)
        }
        Value::Object(_) => value_go == GoScalar::Map,
        Value::String(p) => validate_string_patterns(value, p, floats),
        Value::Array(_) => false,
    }
}

fn validate_float(value: GoScalar<'_>, pattern: f64) -> bool {
    match value {
        GoScalar::Int(i) => pattern.trunc() == pattern && pattern as i64 == i,
        GoScalar::Float(f) => f == pattern,
        GoScalar::Str(s) => float::parse(s) == Some(pattern),
        _ => false,
    }
}

/// `a | b & c`: any `|` alternative whose `&` parts all hold.
pub fn validate_string_patterns(value: &Value, pattern: &str, floats: bool) -> bool {
    if value.as_str() == Some(pattern) {
        return true;
    }
    pattern.split('|').any(|alternative| {
        alternative
            .trim_matches(' ')
            .split('&')
            .all(|part| validate_string_pattern(value, part.trim_matches(' '), floats, 0))
    })
}

fn validate_string_pattern(value: &Value, pattern: &str, floats: bool, depth: u8) -> bool {
    let op = operator_of(pattern);
    // A range rewrites itself into two plain comparisons, which never rewrite again.
    if depth > 1 {
        return false;
    }
    match op {
        Op::InRange => range_bounds(pattern, false).is_some_and(|(low, high)| {
            validate_string_pattern(value, &format!(">= {low}"), floats, depth + 1)
                && validate_string_pattern(value, &format!("<= {high}"), floats, depth + 1)
        }),
        Op::NotInRange => range_bounds(pattern, true).is_some_and(|(low, high)| {
            validate_string_pattern(value, &format!("< {low}"), floats, depth + 1)
                || validate_string_pattern(value, &format!("> {high}"), floats, depth + 1)
        }),
        _ => {
            let rest = pattern.get(op.len()..).unwrap_or_default().trim();
            compare(value, rest, op, floats)
        }
    }
}

/// Durations first, then quantities, then wildcard text.
fn compare(value: &Value, pattern: &str, op: Op, floats: bool) -> bool {
    let value_go = gofmt::scalar(value, floats);
    if let Some(result) = compare_duration(value_go, pattern, op) {
        return result;
    }
    if let Some(result) = compare_quantity(value_go, pattern, op) {
        return result;
    }
    compare_string(value_go, pattern, op)
}

/// `convertNumberToString`: how a number is read as a duration or a quantity.
fn number_text(value: GoScalar<'_>) -> Option<String> {
    match value {
        GoScalar::Nil => Some("0".into()),
        GoScalar::Str(s) => Some(s.into()),
        GoScalar::Float(f) => Some(format!("{f:.6}")),
        GoScalar::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn ordered(ordering: std::cmp::Ordering, op: Op) -> Option<bool> {
    use std::cmp::Ordering::*;
    Some(match op {
        Op::Equal => ordering == Equal,
        Op::NotEqual => ordering != Equal,
        Op::More => ordering == Greater,
        Op::Less => ordering == Less,
        Op::MoreEqual => ordering != Less,
        Op::LessEqual => ordering != Greater,
        Op::InRange | Op::NotInRange => return None,
    })
}

fn compare_duration(value: GoScalar<'_>, pattern: &str, op: Op) -> Option<bool> {
    let pattern = duration::parse(pattern).ok()?;
    let value = duration::parse(&number_text(value)?).ok()?;
    ordered(value.cmp(&pattern), op)
}

fn compare_quantity(value: GoScalar<'_>, pattern: &str, op: Op) -> Option<bool> {
    let pattern = Quantity::parse(pattern)?;
    let value = Quantity::parse(&number_text(value)?)?;
    ordered(value.cmp(&pattern), op)
}

fn compare_string(value: GoScalar<'_>, pattern: &str, op: Op) -> bool {
    if !matches!(op, Op::Equal | Op::NotEqual) {
        return false;
    }
    let text = match value {
        // `strconv.FormatFloat(v, 'E', -1, 64)`.
        GoScalar::Float(f) => float::format_e(f).to_uppercase(),
        GoScalar::Int(i) => i.to_string(),
        GoScalar::Str(s) => s.to_string(),
        GoScalar::Bool(b) => b.to_string(),
        _ => return false,
    };
    wildcard::matches(pattern, &text) == (op == Op::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(value: Value, pattern: &str) -> bool {
        validate(&value, &Value::String(pattern.into()), false)
    }

    #[test]
    fn operators_compare_numbers_quantities_and_durations() {
        assert!(ok(json!(5), ">0"));
        assert!(!ok(json!(0), ">0"));
        assert!(ok(json!("200Mi"), "<1Gi"));
        assert!(ok(json!("2h"), ">=30m"));
        assert!(!ok(json!("10s"), ">=30m"));
        assert!(ok(json!(150), "100-200 | 500-600"));
        assert!(ok(json!(550), "100-200 | 500-600"));
        assert!(!ok(json!(300), "100-200 | 500-600"));
        assert!(ok(json!("2Gi"), "100Mi!-1024Mi"));
        assert!(!ok(json!("500Mi"), "100Mi!-1024Mi"));
        assert!(ok(json!(-9), "-10--8"));
        assert!(ok(json!(3), "+2-+4"));
        assert!(ok(json!(3), "2.5-3.5"));
    }

    #[test]
    fn text_patterns_use_wildcards_and_negation() {
        assert!(ok(json!("nginx:1.2"), "*:*"));
        assert!(!ok(json!("nginx:latest"), "!*:latest"));
        assert!(ok(json!("sa"), "!default"));
        assert!(!ok(json!("default"), "!default"));
        assert!(ok(json!("5.10.1"), "!5.10.84-1 & !5.15.5-2"));
        assert!(!ok(json!("5.15.5-2"), "!5.10.84-1 & !5.15.5-2"));
        assert!(ok(json!("s0"), "?*"));
        assert!(!ok(json!(""), "?*"));
        assert!(!ok(Value::Null, "?*"));
        assert!(ok(json!(true), "true"));
    }

    #[test]
    fn typed_leaves_follow_go_types() {
        assert!(validate(&json!(2), &json!(2), false));
        assert!(validate(&json!("2.0"), &json!(2), false));
        assert!(validate(&Value::Null, &Value::Null, false));
        assert!(validate(&json!(0), &Value::Null, false));
        assert!(!validate(&json!({}), &Value::Null, false));
        assert!(validate(&json!({"a": 1}), &json!({}), false));
        assert!(!validate(&json!("true"), &json!(true), false));
    }

    #[test]
    fn floats_print_in_exponent_form_for_wildcards() {
        // An element from the JMESPath context holds float64: `80` reads as `8E+01`, not `80`.
        assert!(!validate(&json!(80), &json!("*0"), true));
        assert!(validate(&json!(80), &json!("*0"), false));
    }
}
