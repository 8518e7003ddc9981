//! Reading `ClusterPolicy`/`Policy` objects (`kyverno.io/v1`, `v2beta1`): what the engine
//! supports is kept as JSON rules, what it does not is reported and left out, never guessed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::PolicyError;
use crate::anchor::{self, AnchorType};
use crate::autogen;

/// One loaded policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub name: String,
    /// Set for a namespaced `Policy`: it applies only there.
    pub namespace: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.validationFailureAction` is `Enforce`.
    pub enforce: bool,
    /// `spec.failurePolicy: Ignore`: evaluation errors do not block admission.
    pub ignore_errors: bool,
    /// The rules, autogen rules included, as JSON.
    pub rules: Vec<Value>,
}

impl Policy {
    /// `policies.kyverno.io/scored: "false"`: failures are reported as warnings.
    pub fn scored(&self) -> bool {
        self.annotations
            .get("policies.kyverno.io/scored")
            .map(String::as_str)
            != Some("false")
    }
}

/// Reads one object; `Err` when it is not a policy at all, otherwise the policy and the
/// problems of the rules left out.
pub(crate) fn load(object: &Value) -> Result<(Policy, Vec<PolicyError>), PolicyError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let err = |message: String| PolicyError {
        policy: name.clone(),
        rule: None,
        message,
    };
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(api_version, "kyverno.io/v1" | "kyverno.io/v2beta1")
        || !matches!(kind, "ClusterPolicy" | "Policy")
    {
        return Err(err(format!(
            "{api_version} {kind} is not a Kyverno ClusterPolicy or Policy"
        )));
    }
    if name.is_empty() {
        return Err(err("metadata.name is required".into()));
    }
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let Some(rules) = spec.get("rules").and_then(Value::as_array) else {
        return Err(err("spec.rules must be a list".into()));
    };
    let namespace = (kind == "Policy").then(|| {
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string()
    });
    let annotations: BTreeMap<String, String> = object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut kept = Vec::new();
    for rule in rules {
        match check_rule(rule) {
            Ok(()) => kept.push(rule.clone()),
            Err(message) => problems.push(PolicyError {
                policy: name.clone(),
                rule: Some(
                    rule.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                message,
            }),
        }
    }
    let enforce = spec
        .get("validationFailureAction")
        .and_then(Value::as_str)
        .is_some_and(|a| a.eq_ignore_ascii_case("enforce"));
    let ignore_errors = spec.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
    let controllers = annotations
        .get("pod-policies.kyverno.io/autogen-controllers")
        .cloned();
    let rules = autogen::compute_rules(kept, controllers.as_deref());
    Ok((
        Policy {
            name,
            namespace,
            annotations,
            enforce,
            ignore_errors,
            rules,
        },
        problems,
    ))
}

/// What a rule may hold for this engine; the reason it is left out otherwise.
fn check_rule(rule: &Value) -> Result<(), String> {
    if rule
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("rule name is required".into());
    }
    for other in ["mutate", "generate", "verifyImages"] {
        if rule.get(other).is_some_and(|v| !v.is_null()) {
            return Err(format!(
                "{other} rules are not supported: only validate rules are"
            ));
        }
    }
    if rule.get("celPreconditions").is_some_and(|v| !v.is_null()) {
        return Err("celPreconditions are not supported".into());
    }
    let Some(validate) = rule.get("validate").filter(|v| v.is_object()) else {
        return Err("the rule has no validate section".into());
    };
    for unsupported in ["cel", "podSecurity", "manifests", "assert"] {
        if validate.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(format!("validate.{unsupported} is not supported"));
        }
    }
    check_context(rule.get("context"))?;
    check_foreach(validate.get("foreach"), 0)?;
    if has_add_anchor(validate, 0) {
        return Err(
            "the +(key) anchor adds fields, which only mutate rules do; it cannot validate".into(),
        );
    }
    Ok(())
}

/// A rule's `context` entries as their name and, for an entry of type `variable` (the only
/// type the engine loads), its value.
pub(crate) fn context_variables(
    entries: Option<&Value>,
) -> impl Iterator<Item = (&str, Option<&Value>)> {
    entries
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            let name = entry.get("name").and_then(Value::as_str);
            (name.unwrap_or_default(), entry.get("variable"))
        })
}

fn check_context(entries: Option<&Value>) -> Result<(), String> {
    for (name, variable) in context_variables(entries) {
        if variable.is_none() {
            return Err(format!(
                "context entry {name:?}: only variable entries are supported"
            ));
        }
    }
    Ok(())
}

fn check_foreach(foreach: Option<&Value>, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err("foreach nested deeper than 8 levels".into());
    }
    for each in foreach
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        check_context(each.get("context"))?;
        check_foreach(each.get("foreach"), depth + 1)?;
    }
    Ok(())
}

fn has_add_anchor(value: &Value, depth: usize) -> bool {
    if depth > 128 {
        return false;
    }
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            anchor::is_one_of(k, &[AnchorType::AddIfNotPresent]) || has_add_anchor(v, depth + 1)
        }),
        Value::Array(items) => items.iter().any(|v| has_add_anchor(v, depth + 1)),
        _ => false,
    }
}
