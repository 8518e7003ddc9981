//! `$(...)` references (`pkg/engine/variables/vars.go`): a string of a document may name
//! another value of the same document by its path, relative to its own (`$(./../limits/memory)`)
//! or absolute from the document's root, optionally behind an operator
//! (`$(<=./../../limits/memory)` becomes `<=2Gi`). Kyverno resolves them before `{{ }}`
//! variables, against the document as written; `\$(...)` escapes. Autogen shifts absolute
//! references of a rule's message into the pod template (`shift`).

use ferroflux_gocompat::path::clean;
use std::sync::LazyLock;

use ferroflux_gocompat::regex::Regex;
use serde_json::Value;

use crate::anchor;
use crate::variables::SubstitutionError;

/// `RegexReferences`: `$(...)` at the start, or after any character but `\`.
static REFERENCES: LazyLock<Option<Regex>> =
    LazyLock::new(|| ferroflux_gocompat::regex::compile(r"^\$\(.[^\ ]*\)|[^\\]\$\(.[^\ ]*\)").ok());
/// `RegexEscpReferences`: `\$(...)`.
static ESCAPED: LazyLock<Option<Regex>> =
    LazyLock::new(|| ferroflux_gocompat::regex::compile(r"\\\$\(.[^\ \)]*\)").ok());

/// Deepest document walked.
const MAX_DEPTH: usize = 128;

/// Replaces every reference in the strings of `document`.
///
/// # Errors
/// A reference names no value of the document, or a value that cannot stand in a string.
pub fn substitute(document: &Value) -> Result<Value, SubstitutionError> {
    if !mentions_reference(document, 0) {
        return Ok(document.clone());
    }
    walk(document, document, "", 0)
}

/// Whether any string holds `$(`: most documents have none, and then nothing is copied twice.
fn mentions_reference(value: &Value, depth: usize) -> bool {
    match value {
        Value::String(s) => s.contains("$("),
        Value::Array(items) if depth < MAX_DEPTH => {
            items.iter().any(|i| mentions_reference(i, depth + 1))
        }
        Value::Object(map) if depth < MAX_DEPTH => {
            map.values().any(|v| mentions_reference(v, depth + 1))
        }
        _ => false,
    }
}

fn walk(root: &Value, value: &Value, path: &str, depth: usize) -> Result<Value, SubstitutionError> {
    if depth > MAX_DEPTH {
        return Err(SubstitutionError(format!(
            "document deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::String(s) => resolve_all(root, s, path).map(Value::String),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| walk(root, item, &format!("{path}/{i}"), depth + 1))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let child = format!("{path}/{}", k.replace('/', "\\/"));
                Ok((k.clone(), walk(root, v, &child, depth + 1)?))
            })
            .collect::<Result<_, SubstitutionError>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// The matches of `REFERENCES` in `text`, copied so the text can be rewritten while they are
/// replaced.
fn found(references: &Regex, text: &str) -> Vec<String> {
    references
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// A match of `REFERENCES` as the character it starts with (empty for a reference at the start
/// of the string) and the `$(...)` reference itself.
fn split_reference(matched: &str) -> (&str, &str) {
    match matched.strip_prefix("$(") {
        Some(_) => ("", matched),
        None => matched.split_at(matched.chars().next().map_or(0, char::len_utf8)),
    }
}

/// `substituteReferencesIfAny` on one string at `path`.
fn resolve_all(root: &Value, text: &str, path: &str) -> Result<String, SubstitutionError> {
    let (Some(references), Some(escaped)) = (REFERENCES.as_ref(), ESCAPED.as_ref()) else {
        return Ok(text.to_string());
    };
    let mut value = text.to_string();
    for matched in found(references, text) {
        let (prefix, reference) = split_reference(&matched);
        let resolved = resolve(root, reference, path).map_err(|e| {
            SubstitutionError(format!("failed to resolve {reference} at path {path}: {e}"))
        })?;
        let Value::String(resolved) = resolved else {
            return Err(SubstitutionError(format!(
                "NotResolvedReferenceErr,reference {reference} not resolved at path {path}"
            )));
        };
        value = value.replacen(&matched, &format!("{prefix}{resolved}"), 1);
    }
    let escapes: Vec<String> = escaped
        .find_iter(&value)
        .map(|m| m.as_str().to_string())
        .collect();
    for escape in escapes {
        value = value.replace(&escape, &escape[1..]);
    }
    Ok(value)
}

/// `resolveReference`: the value at the reference's path, behind its operator as text.
fn resolve(root: &Value, reference: &str, absolute: &str) -> Result<Value, String> {
    let inner = reference.trim_matches(|c| matches!(c, '$' | '(' | ')'));
    let operator = [">=", "<=", ">", "<", "!"]
        .into_iter()
        .find(|op| inner.len() >= 2 && inner.starts_with(op))
        .unwrap_or("");
    let target = &inner[operator.len()..];
    if target.is_empty() {
        return Err("expected path, found empty reference".into());
    }
    let full = if target.starts_with('/') {
        target.to_string()
    } else {
        join(absolute, target)
    };
    let found =
        find(root, "", &full, 0).ok_or_else(|| format!("got nil resolved variable {reference}"))?;
    if operator.is_empty() {
        return Ok(found.clone());
    }
    let text = match found {
        Value::String(s) => s.clone(),
        // Kyverno reads patterns as float64 and prints them with `%f`.
        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap_or(0.0)),
        other => {
            return Err(format!(
                "incorrect expression: operator {operator} does not match with value {other}"
            ));
        }
    };
    Ok(Value::String(format!("{operator}{text}")))
}

/// `getValueFromReference`: the leaf whose path, anchors removed, is `wanted`.
fn find<'v>(value: &'v Value, path: &str, wanted: &str, depth: usize) -> Option<&'v Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find(v, &format!("{path}/{i}"), wanted, depth + 1)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            find(
                v,
                &format!("{path}/{}", k.replace('/', "\\/")),
                wanted,
                depth + 1,
            )
        }),
        leaf => (without_anchors(path) == wanted).then_some(leaf),
    }
}

/// `RemoveAnchorsFromPath`.
fn without_anchors(path: &str) -> String {
    let parts: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| anchor::parse(p).map_or_else(|| p.to_string(), |a| a.key.to_string()))
        .collect();
    let joined = clean(&parts.join("/"));
    if path.starts_with('/') {
        format!("/{}", joined.trim_start_matches('/'))
    } else {
        joined
    }
}

/// Go's `path.Join(base, rel)`.
fn join(base: &str, rel: &str) -> String {
    clean(&format!("{base}/{rel}"))
}

/// `FindAndShiftReferences`: references in `value` naming `pivot` (`pattern`, `deny`,
/// `anyPattern/N`) move under `shift` (`spec/template`), for autogen rules.
pub fn shift(value: &str, shift: &str, pivot: &str) -> String {
    let Some(references) = REFERENCES.as_ref() else {
        return value.to_string();
    };
    let mut out = value.to_string();
    for old in found(references, value) {
        let (prefix, reference) = split_reference(&old);
        let Some(index) = reference.find(pivot) else {
            continue;
        };
        let mut pivot = pivot.to_string();
        if pivot == "anyPattern" {
            let rest = reference.get(index + pivot.len() + 1..).unwrap_or_default();
            pivot = format!("{pivot}/{}", rest.split('/').next().unwrap_or_default());
        }
        let shifted = reference.replace(&pivot, &format!("{pivot}/{shift}"));
        out = out.replacen(&old, &format!("{prefix}{shifted}"), 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_references_read_the_pattern_itself() {
        let pattern = json!({"spec": {"containers": [{"resources": {
            "requests": {"memory": "$(<=./../../limits/memory)", "cpu": "$(./../../limits/cpu)"},
            "limits": {"memory": "2Gi", "cpu": "500m"}
        }}]}});
        let out = substitute(&pattern).expect("resolves");
        let requests = &out["spec"]["containers"][0]["resources"]["requests"];
        assert_eq!(requests["memory"], json!("<=2Gi"));
        assert_eq!(requests["cpu"], json!("500m"));
        // Without an operator a number cannot stand in the string.
        let err = substitute(&json!({"a": {"b": "$(./../c)", "c": 1}})).expect_err("number");
        assert!(err.0.contains("NotResolvedReferenceErr"), "{}", err.0);
        assert_eq!(
            substitute(&json!({"a": {"b": "$(>./../c)", "c": 1}})).expect("operator")["a"]["b"],
            json!(">1.000000")
        );
    }

    #[test]
    fn anchors_absolute_paths_escapes_and_missing_values() {
        let pattern =
            json!({"spec": {"=(name)": "web", "other": "x-$(/spec/name)", "lit": "\\$(keep)"}});
        let out = substitute(&pattern).expect("resolves");
        assert_eq!(out["spec"]["other"], json!("x-web"));
        assert_eq!(out["spec"]["lit"], json!("$(keep)"));
        assert!(substitute(&json!({"a": "$(./missing)"})).is_err());
    }

    #[test]
    fn autogen_shifts_references_into_the_template() {
        assert_eq!(
            shift(
                "name is $(/pattern/metadata/name)",
                "spec/template",
                "pattern"
            ),
            "name is $(/pattern/spec/template/metadata/name)"
        );
        assert_eq!(
            shift("$(/anyPattern/0/spec/x)", "spec/template", "anyPattern"),
            "$(/anyPattern/0/spec/template/spec/x)"
        );
    }
}
