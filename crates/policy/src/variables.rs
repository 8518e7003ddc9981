//! `{{ ... }}` substitution (`pkg/engine/variables`): every string and key of a document has
//! its variables replaced from the [`Context`]; a string that is exactly one variable takes the
//! variable's JSON type, otherwise the value is spliced in as text (JSON for non-strings).
//! Inner variables resolve first (`{{ divide('{{ a }}', '{{ b }}') }}`), `\{{` escapes, and
//! `{{- x }}` substitutes once without rescanning. On DELETE, `request.object` reads
//! `request.oldObject`.

use std::sync::LazyLock;

use ferroflux_gocompat::regex::Regex;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::jmespath::JpError;
use crate::jmespath::go_json as jmespath_go_json;

/// Rounds of rescanning one string; a value that keeps producing variables is an error.
const MAX_ROUNDS: usize = 64;
/// Longest string substitution may build.
const MAX_STRING: usize = 1 << 20;
/// Deepest document walked.
const MAX_DEPTH: usize = 128;

static VARIABLES: LazyLock<Option<Regex>> = LazyLock::new(|| {
    ferroflux_gocompat::regex::compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})").ok()
});
static VARIABLE_INIT: LazyLock<Option<Regex>> =
    LazyLock::new(|| ferroflux_gocompat::regex::compile(r"^\{\{(\{[^{}]*\}|[^{}])*\}\}").ok());

/// Why substitution failed; the text is Kyverno's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubstitutionError(pub String);

/// `SubstituteAll` over a document: `$(...)` references, then `{{ }}` variables.
pub fn substitute_all(ctx: &Context, document: &Value) -> Result<Value, SubstitutionError> {
    // Kyverno resolves `$(...)` references first, against the document as written.
    let document = crate::references::substitute(document)?;
    let mut path = Vec::new();
    walk(ctx, &document, &mut path, 0)
}

fn walk(
    ctx: &Context,
    value: &Value,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<Value, SubstitutionError> {
    if depth > MAX_DEPTH {
        return Err(SubstitutionError(format!(
            "document deeper than {MAX_DEPTH} levels"
        )));
    }
    match value {
        Value::String(s) => substitute_string(ctx, s, path),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                let substituted = walk(ctx, item, path, depth + 1);
                path.pop();
                out.push(substituted?);
            }
            Ok(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, item) in map {
                let new_key = match substitute_string(ctx, key, path)? {
                    Value::String(s) => s,
                    other => jmespath_go_json(&other),
                };
                path.push(key.clone());
                let substituted = walk(ctx, item, path, depth + 1);
                path.pop();
                out.insert(new_key, substituted?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Finds the variables of `value`: (whole match, variable text without the leading char).
fn find_variables(value: &str) -> Vec<(String, String)> {
    let (Some(all), Some(init)) = (VARIABLES.as_ref(), VARIABLE_INIT.as_ref()) else {
        return Vec::new();
    };
    all.find_iter(value)
        .map(|m| {
            let text = m.as_str();
            let variable = if init.is_match(text) {
                text.to_string()
            } else {
                let mut chars = text.chars();
                chars.next();
                chars.as_str().to_string()
            };
            (text.to_string(), variable)
        })
        .collect()
}

/// `replaceBracesAndTrimSpaces`: the expression inside, and whether `{{-` asked for one pass.
fn inner_expression(variable: &str) -> (String, bool) {
    let inner = variable.replace("{{", "").replace("}}", "");
    let inner = inner.trim();
    match inner.strip_prefix('-') {
        Some(rest) => (rest.trim().to_string(), true),
        None => (inner.to_string(), false),
    }
}

fn substitute_string(
    ctx: &Context,
    original: &str,
    path: &[String],
) -> Result<Value, SubstitutionError> {
    let deleting = ctx.operation() == "DELETE";
    let mut value = original.to_string();
    let mut vars = find_variables(&value);
    let mut rounds = 0usize;
    while !vars.is_empty() {
        rounds += 1;
        if rounds > MAX_ROUNDS || value.len() > MAX_STRING {
            return Err(SubstitutionError(format!(
                "variable substitution of {:?} did not settle",
                truncate(original)
            )));
        }
        let whole = value.clone();
        let mut shallow = false;
        for (matched, variable) in &vars {
            let (mut expression, once) = inner_expression(variable);
            shallow = once;
            if expression == "@" {
                expression = at_path(path);
            }
            if deleting {
                expression = expression.replace("request.object", "request.oldObject");
            }
            let resolved = ctx
                .query(&expression)
                .map_err(|e| resolve_error(&expression, path, e))?;
            if whole == *variable {
                return Ok(resolved);
            }
            let prefix = &matched[..matched.len() - variable.len()];
            let mut text = match resolved {
                Value::String(s) => s,
                other => jmespath_go_json(&other),
            };
            if once {
                text = text.replace("{{", "\\{{");
            }
            value = value.replacen(matched.as_str(), &format!("{prefix}{text}"), 1);
        }
        vars = if shallow {
            Vec::new()
        } else {
            find_variables(&value)
        };
    }
    Ok(Value::String(value.replace("\\{{", "{{")))
}

fn resolve_error(expression: &str, path: &[String], err: JpError) -> SubstitutionError {
    match err {
        JpError::NotFound(_) => SubstitutionError(err.to_string()),
        JpError::Failed(message) => SubstitutionError(format!(
            "failed to resolve {expression} at path /{}: {message}",
            path.join("/")
        )),
    }
}

/// The JMESPath of the document position holding `{{ @ }}` under `request.object`, as Kyverno
/// computes it (past any `foreach`, the first two segments dropped).
fn at_path(path: &[String]) -> String {
    let after_foreach = path
        .iter()
        .position(|p| p == "foreach")
        .map_or(path, |i| &path[i + 1..]);
    let rest = if after_foreach.len() > 2 {
        &after_foreach[2..]
    } else {
        &[]
    };
    let mut out = String::from("request.object");
    for part in rest {
        if part.parse::<u64>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            out.push('.');
            out.push_str(part);
        }
    }
    out
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let Value::Object(root) = json!({
            "request": {"operation": "CREATE", "object": {"metadata": {"name": "web", "labels": {"app": "x"}},
                        "spec": {"replicas": 2}}},
            "limits": "1Gi", "requests": "256Mi"
        }) else {
            unreachable!()
        };
        Context::new(root)
    }

    #[test]
    fn a_lone_variable_keeps_its_type_and_text_splices() {
        let c = ctx();
        assert_eq!(
            substitute_all(&c, &json!("{{ request.object.spec.replicas }}")),
            Ok(json!(2))
        );
        assert_eq!(
            substitute_all(
                &c,
                &json!(
                    "name={{request.object.metadata.name}} labels={{ request.object.metadata.labels }}"
                )
            ),
            Ok(json!("name=web labels={\"app\":\"x\"}"))
        );
        assert_eq!(
            substitute_all(&c, &json!("\\{{ not.a.variable }}")),
            Ok(json!("{{ not.a.variable }}"))
        );
    }

    #[test]
    fn inner_variables_resolve_first() {
        let c = ctx();
        assert_eq!(
            substitute_all(&c, &json!("{{ divide('{{ limits }}', '{{ requests }}') }}")),
            Ok(json!(4.0))
        );
    }

    #[test]
    fn a_missing_field_fails_the_substitution() {
        let c = ctx();
        let err = substitute_all(&c, &json!("{{ request.object.metadata.annotations.a }}"))
            .expect_err("missing");
        assert_eq!(err.0, "Unknown key \"annotations\" in path");
    }
}
