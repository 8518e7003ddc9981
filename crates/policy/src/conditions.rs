//! `preconditions` and `deny.conditions` (`pkg/engine/variables/evaluate.go` and
//! `variables/operator`): `any`/`all` blocks or the legacy list, each condition's key and value
//! substituted, then compared with Kyverno's operator semantics. Every number here is a Go
//! `float64`, as in Kyverno's JSON context.

use serde_json::Value;

use crate::context::Context;
use crate::gofmt;
use crate::pattern::{self, Op};
use crate::quantity::Quantity;
use crate::variables::substitute_all;
use crate::wildcard;

/// Why conditions could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError(pub String);

/// Evaluates a `preconditions`/`deny.conditions` value: `(holds, message)`. `None` (absent)
/// holds.
pub fn evaluate(
    ctx: &Context,
    conditions: Option<&Value>,
) -> Result<(bool, String), ConditionError> {
    match conditions {
        None | Some(Value::Null) => Ok((true, String::new())),
        Some(Value::Array(list)) => {
            let mut messages = Vec::new();
            for condition in list {
                let (holds, message) = evaluate_one(ctx, condition)?;
                if !holds {
                    return Ok((false, message));
                }
                messages.push(message);
            }
            Ok((true, join_non_empty(&messages, ";")))
        }
        Some(Value::Object(block)) => evaluate_any_all(ctx, block),
        Some(_) => Err(ConditionError("invalid condition".into())),
    }
}

fn evaluate_any_all(
    ctx: &Context,
    block: &serde_json::Map<String, Value>,
) -> Result<(bool, String), ConditionError> {
    let (mut any_holds, mut all_hold) = (true, true);
    let (mut false_messages, mut true_messages) = (Vec::new(), Vec::new());
    if let Some(any) = block.get("any").filter(|v| !v.is_null()) {
        any_holds = false;
        for condition in any.as_array().map(Vec::as_slice).unwrap_or_default() {
            let (holds, message) = evaluate_one(ctx, condition)?;
            if holds {
                any_holds = true;
                true_messages.push(message);
                break;
            }
            false_messages.push(message);
        }
    }
    for condition in block
        .get("all")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (holds, message) = evaluate_one(ctx, condition)?;
        if !holds {
            all_hold = false;
            false_messages.push(message);
            break;
        }
        true_messages.push(message);
    }
    let holds = any_holds && all_hold;
    let messages = if holds { true_messages } else { false_messages };
    Ok((holds, join_non_empty(&messages, "; ")))
}

fn join_non_empty(messages: &[String], separator: &str) -> String {
    messages
        .iter()
        .filter(|m| !m.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(separator)
}

/// `variables.Evaluate`: one condition.
fn evaluate_one(ctx: &Context, condition: &Value) -> Result<(bool, String), ConditionError> {
    let field = |name: &str| condition.get(name).cloned().unwrap_or(Value::Null);
    let key = substitute_all(ctx, &field("key")).map_err(|e| {
        ConditionError(format!(
            "failed to substitute variables in condition key: {e}"
        ))
    })?;
    let value = substitute_all(ctx, &field("value")).map_err(|e| {
        ConditionError(format!(
            "failed to substitute variables in condition value: {e}"
        ))
    })?;
    let operator = condition
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let holds = apply(operator, &key, &value).ok_or_else(|| {
        ConditionError("failed to create handler for condition operator: %!w(<nil>)".into())
    })?;
    let message = condition
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok((holds, message.to_string()))
}

/// Applies an operator by its (case-insensitive) name; `None` for an unknown operator.
pub fn apply(operator: &str, key: &Value, value: &Value) -> Option<bool> {
    Some(match operator.to_lowercase().as_str() {
        "equal" | "equals" => equal(key, value),
        "notequal" | "notequals" => not_equal(key, value),
        "in" => in_(key, value, false),
        "notin" => in_(key, value, true),
        "anyin" => any_in(key, value, false),
        "anynotin" => any_in(key, value, true),
        "allin" => all_in(key, value, false),
        "allnotin" => all_in(key, value, true),
        "greaterthan" => numeric(key, value, Op::More),
        "greaterthanorequals" => numeric(key, value, Op::MoreEqual),
        "lessthan" => numeric(key, value, Op::Less),
        "lessthanorequals" => numeric(key, value, Op::LessEqual),
        "durationgreaterthan" => durations(key, value, Op::More),
        "durationgreaterthanorequals" => durations(key, value, Op::MoreEqual),
        "durationlessthan" => durations(key, value, Op::Less),
        "durationlessthanorequals" => durations(key, value, Op::LessEqual),
        _ => return None,
    })
}

/// `reflect.DeepEqual` of decoded JSON: numbers are all `float64`.
pub fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        _ => a == b,
    }
}

fn float(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// `parseDuration`: both sides as durations when at least one is duration text.
fn durations_of(key: &Value, value: &Value) -> Option<(f64, f64)> {
    let text = |v: &Value| {
        v.as_str()
            .filter(|s| *s != "0")
            .and_then(|s| ferroflux_gocompat::duration::parse(s).ok())
    };
    let (k, v) = (text(key), text(value));
    if k.is_none() && v.is_none() {
        return None;
    }
    // A bare number is whole seconds (`time.Duration(n) * time.Second`).
    let seconds = |v: &Value| float(v).map(|f| (f as i64).saturating_mul(1_000_000_000));
    let k = k.or_else(|| seconds(key))?;
    let v = v.or_else(|| seconds(value))?;
    Some((k as f64 / 1e9, v as f64 / 1e9))
}

fn equal(key: &Value, value: &Value) -> bool {
    match key {
        Value::Bool(k) => value.as_bool() == Some(*k),
        Value::Number(_) => float_equal(float(key).unwrap_or(f64::NAN), value),
        Value::String(k) => {
            if let Some((a, b)) = durations_of(key, value) {
                return a == b;
            }
            if let Some(qk) = Quantity::parse(k) {
                return value
                    .as_str()
                    .is_some_and(|v| Quantity::parse(v).is_some_and(|qv| qk.cmp(&qv).is_eq()));
            }
            value.as_str().is_some_and(|v| wildcard::matches(v, k))
        }
        Value::Object(_) => value.is_object() && deep_equal(key, value),
        Value::Array(_) => value.is_array() && deep_equal(key, value),
        Value::Null => false,
    }
}

fn float_equal(key: f64, value: &Value) -> bool {
    match value {
        Value::Number(_) => float(value) == Some(key),
        Value::String(s) => ferroflux_gocompat::float::parse(s) == Some(key),
        _ => false,
    }
}

fn not_equal(key: &Value, value: &Value) -> bool {
    match key {
        Value::Bool(k) => value.as_bool() != Some(*k),
        Value::Number(_) => {
            let k = float(key).unwrap_or(f64::NAN);
            match value {
                Value::Number(_) => float(value) != Some(k),
                Value::String(s) => ferroflux_gocompat::float::parse(s) != Some(k),
                _ => true,
            }
        }
        Value::String(k) => {
            if let Some((a, b)) = durations_of(key, value) {
                return a != b;
            }
            if let Some(qk) = Quantity::parse(k)
                && let Some(v) = value.as_str()
            {
                if v.is_empty() {
                    return !wildcard::matches(v, k);
                }
                return Quantity::parse(v).is_none_or(|qv| !qk.cmp(&qv).is_eq());
            }
            value.as_str().is_none_or(|v| !wildcard::matches(v, k))
        }
        Value::Object(_) | Value::Array(_) => {
            !(value.is_object() || value.is_array()) || !deep_equal(key, value)
        }
        Value::Null => false,
    }
}

/// `fmt.Sprint` of a scalar key (`None` for maps and `nil`).
fn scalar_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(gofmt::sprint(key, true)),
        _ => None,
    }
}

/// A JSON string value as a list of strings (`json.Unmarshal` into `[]string`).
fn string_list(text: &str) -> Option<Vec<String>> {
    serde_json::from_str::<Vec<String>>(text).ok()
}

/// `In` / `NotIn` (deprecated): exact set membership, wildcards for a single key.
fn in_(key: &Value, value: &Value, not: bool) -> bool {
    if let Some(k) = scalar_text(key) {
        return match key_exists(&k, value) {
            Some(found) => found != not,
            None => false,
        };
    }
    let Value::Array(keys) = key else {
        return false;
    };
    let Some(keys) = keys
        .iter()
        .map(|k| k.as_str().map(String::from))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let set: Option<Vec<String>> = match value {
        Value::Array(items) => items.iter().map(|v| v.as_str().map(String::from)).collect(),
        Value::String(s) if keys.len() == 1 && keys[0] == *s => return true,
        Value::String(s) => string_list(s),
        _ => None,
    };
    let Some(set) = set else {
        return false;
    };
    if not {
        keys.iter().any(|k| !set.contains(k))
    } else {
        keys.iter().all(|k| set.contains(k))
    }
}

/// `keyExistsInArray`; `None` for a value of the wrong type.
fn key_exists(key: &str, value: &Value) -> Option<bool> {
    match value {
        Value::Array(items) => Some(items.iter().any(|v| {
            let text = gofmt::sprint(v, true);
            wildcard::matches(&text, key) || wildcard::matches(key, &text)
        })),
        Value::String(s) => {
            if wildcard::matches(s, key) {
                return Some(true);
            }
            string_list(s).map(|list| list.iter().any(|v| v == key))
        }
        _ => None,
    }
}

/// `anyKeyExistsInArray` / `allKeyExistsInArray` (the same for one key).
fn one_key_in(key: &str, value: &Value) -> Option<bool> {
    match value {
        Value::Array(_) => key_exists(key, value),
        Value::String(s) => {
            if wildcard::matches(s, key) {
                return Some(true);
            }
            if pattern::operator_of(s) == Op::InRange {
                return Some(in_range(key, s));
            }
            Some(listed(s)?.iter().any(|v| v == key))
        }
        _ => None,
    }
}

/// A string value as a list: JSON when it is JSON, else itself.
fn listed(text: &str) -> Option<Vec<String>> {
    if serde_json::from_str::<Value>(text).is_ok() {
        string_list(text)
    } else {
        Some(vec![text.to_string()])
    }
}

fn in_range(key: &str, range: &str) -> bool {
    pattern::validate_string_patterns(&Value::String(key.into()), range, true)
}

fn either_matches(a: &str, b: &str) -> bool {
    wildcard::matches(a, b) || wildcard::matches(b, a)
}

fn key_texts(key: &Value) -> Option<Vec<String>> {
    let Value::Array(keys) = key else {
        return None;
    };
    Some(keys.iter().map(|k| gofmt::sprint(k, true)).collect())
}

fn any_in(key: &Value, value: &Value, not: bool) -> bool {
    if let Some(k) = scalar_text(key) {
        return one_key_in(&k, value).is_some_and(|found| found != not);
    }
    let Some(keys) = key_texts(key) else {
        return false;
    };
    let values: Vec<String> = match value {
        Value::Array(items) => items.iter().map(|v| gofmt::sprint(v, true)).collect(),
        Value::Number(_) | Value::Bool(_) => vec![gofmt::sprint(value, true)],
        Value::String(s) => {
            if keys.len() == 1 && keys[0] == *s {
                return !not;
            }
            if pattern::operator_of(s) == Op::InRange {
                let range = if not {
                    s.replacen('-', "!-", 1)
                } else {
                    s.clone()
                };
                return keys.iter().any(|k| in_range(k, &range));
            }
            match listed(s) {
                Some(list) => list,
                None => return false,
            }
        }
        _ => return false,
    };
    let found = |k: &String| values.iter().any(|v| either_matches(k, v));
    if not {
        keys.iter().any(|k| !found(k))
    } else {
        keys.iter().any(found)
    }
}

fn all_in(key: &Value, value: &Value, not: bool) -> bool {
    if let Some(k) = scalar_text(key) {
        return one_key_in(&k, value).is_some_and(|found| found != not);
    }
    let Some(keys) = key_texts(key) else {
        return false;
    };
    let values: Vec<String> = match value {
        Value::Array(items) => items.iter().map(|v| gofmt::sprint(v, true)).collect(),
        Value::String(s) => {
            if keys.len() == 1 && keys[0] == *s {
                return !not;
            }
            if pattern::operator_of(s) == Op::InRange {
                let inside = keys.iter().filter(|k| in_range(k, s)).count();
                return if not {
                    inside == 0
                } else {
                    inside == keys.len()
                };
            }
            match listed(s) {
                Some(list) => list,
                None => return false,
            }
        }
        _ => return false,
    };
    let found = |k: &String| values.iter().any(|v| either_matches(k, v));
    if not {
        !keys.iter().any(found)
    } else {
        keys.iter().all(found)
    }
}

fn ordered(a: f64, b: f64, op: Op) -> bool {
    match op {
        Op::More => a > b,
        Op::MoreEqual => a >= b,
        Op::Less => a < b,
        Op::LessEqual => a <= b,
        _ => false,
    }
}

/// `GreaterThan` and friends: durations, quantities, then numbers.
fn numeric(key: &Value, value: &Value, op: Op) -> bool {
    match key {
        Value::Number(_) => numeric_float(float(key).unwrap_or(f64::NAN), key, value, op),
        Value::String(k) => {
            if let Some((a, b)) = durations_of(key, value) {
                return ordered(a, b, op);
            }
            if let (Some(qk), Some(qv)) =
                (Quantity::parse(k), value.as_str().and_then(Quantity::parse))
            {
                let ordering = match qk.cmp(&qv) {
                    std::cmp::Ordering::Less => -1.0,
                    std::cmp::Ordering::Equal => 0.0,
                    std::cmp::Ordering::Greater => 1.0,
                };
                return ordered(ordering, 0.0, op);
            }
            match ferroflux_gocompat::float::parse(k) {
                Some(f) => numeric_float(f, key, value, op),
                None => versions(k, value, op),
            }
        }
        _ => false,
    }
}

/// The last reading of `GreaterThan` and friends: both sides strict semantic versions
/// (`1.10.0 > 1.9.0`), as Kyverno's numeric operator tries with blang/semver's `Parse`.
fn versions(key: &str, value: &Value, op: Op) -> bool {
    let parse = |text: &str| ferroflux_semver::Version::parse_strict(text).ok();
    let (Some(k), Some(v)) = (parse(key), value.as_str().and_then(parse)) else {
        return false;
    };
    let ordering = match k.compare(&v) {
        std::cmp::Ordering::Less => -1.0,
        std::cmp::Ordering::Equal => 0.0,
        std::cmp::Ordering::Greater => 1.0,
    };
    ordered(ordering, 0.0, op)
}

fn numeric_float(k: f64, key: &Value, value: &Value, op: Op) -> bool {
    match value {
        Value::Number(_) => ordered(k, float(value).unwrap_or(f64::NAN), op),
        Value::String(s) => {
            if let Some((a, b)) = durations_of(key, value) {
                return ordered(a, b, op);
            }
            ferroflux_gocompat::float::parse(s).is_some_and(|v| ordered(k, v, op))
        }
        _ => false,
    }
}

/// `DurationGreaterThan` and friends: numbers are seconds.
fn durations(key: &Value, value: &Value, op: Op) -> bool {
    let as_duration = |v: &Value| match v {
        Value::Number(_) => float(v).map(|f| (f as i64).saturating_mul(1_000_000_000)),
        Value::String(s) => ferroflux_gocompat::duration::parse(s).ok(),
        _ => None,
    };
    match (as_duration(key), as_duration(value)) {
        (Some(a), Some(b)) => ordered(a as f64, b as f64, op),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(name: &str, key: Value, value: Value) -> bool {
        apply(name, &key, &value).expect("known operator")
    }

    #[test]
    fn equality_uses_wildcards_durations_and_quantities() {
        assert!(op("Equals", json!("DELETE"), json!("DELETE")));
        assert!(op("Equals", json!("nginx-1"), json!("nginx-*")));
        assert!(op("Equals", json!("1h"), json!("60m")));
        assert!(op("Equals", json!("1Gi"), json!("1024Mi")));
        assert!(op("Equals", json!(2), json!("2")));
        assert!(op("NotEquals", json!(1), json!(2)));
        assert!(!op("NotEquals", json!({"a": [1]}), json!({"a": [1.0]})));
        assert!(op("NotEqual", json!("example"), json!("other")));
        assert!(!op("equals", json!(null), json!(null)));
    }

    #[test]
    fn set_operators_follow_kyverno() {
        assert!(op("AllIn", json!("CREATE"), json!(["CREATE", "UPDATE"])));
        assert!(op("AnyIn", json!(["a", "b"]), json!(["b"])));
        assert!(!op("AllIn", json!(["a", "b"]), json!(["b"])));
        assert!(op("AnyNotIn", json!(["a", "b"]), json!(["b"])));
        assert!(op("AllNotIn", json!(["a"]), json!(["b"])));
        assert!(op("AnyNotIn", json!(8080), json!([22, 80, 443])));
        assert!(!op("AnyNotIn", json!(80), json!([22, 80, 443])));
        assert!(op("AnyNotIn", json!("A=*"), json!(["B=BTest"])));
        assert!(!op("AnyNotIn", json!("A=*"), json!(["A=ATest", "B=BTest"])));
        assert!(op(
            "NotIn",
            json!(["busybox2"]),
            json!(["busybox", "busybox1"])
        ));
        assert!(!op(
            "NotIn",
            json!(["busybox"]),
            json!(["busybox", "busybox1"])
        ));
        assert!(op("AnyIn", json!([5]), json!("1-10")));
        assert!(op("AllNotIn", json!([15]), json!("1-10")));
    }

    #[test]
    fn numeric_and_duration_operators() {
        assert!(op("GreaterThan", json!(4.0), json!(2.5)));
        assert!(op("GreaterThan", json!("2Gi"), json!("1Gi")));
        assert!(op("LessThanOrEquals", json!("1h"), json!("2h")));
        assert!(op("GreaterThanOrEquals", json!("10"), json!(2)));
        assert!(op("DurationGreaterThan", json!("2h"), json!(3600)));
        // Semantic versions compare by precedence, not as text.
        assert!(op("GreaterThan", json!("1.10.0"), json!("1.9.0")));
        assert!(op("LessThan", json!("1.0.0-rc.1"), json!("1.0.0")));
        assert!(op("GreaterThanOrEquals", json!("2.0.0"), json!("2.0.0")));
        assert!(!op("GreaterThan", json!("1.9.0"), json!("1.10.0")));
        assert!(!op("GreaterThan", json!("1.10.0"), json!(1)));
        assert!(!op("DurationLessThan", json!("2h"), json!("1h")));
    }
}
