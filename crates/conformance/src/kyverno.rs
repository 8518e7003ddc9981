//! The `kyverno` corpus: Kyverno CLI test cases (`kyverno-test.yaml`) run through
//! `ferroflux-policy`. Scoring follows the corpus README: a row passes when the engine gives
//! the declared result for (policy, rule, resource), or gives no result at all for a rule that
//! does not select the resource; `R` also names `autogen-R` and `autogen-cronjob-R`.

use std::collections::BTreeMap;

use ferroflux_policy::{PolicySet, Request, RuleResponse};
use serde_json::{Map, Value};

use crate::Outcome;

/// Kinds the CLI does not put in `default` when they have no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterPolicy",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Judges one case of `kyverno/cases.json`.
pub fn run(case: &Value) -> Outcome {
    match judge(case) {
        Ok(failures) if failures.is_empty() => Outcome::Pass,
        Ok(failures) => Outcome::Fail(failures.join("; ")),
        Err(why) => Outcome::Fail(why),
    }
}

/// One evaluated (policy, resource) pair.
struct Evaluated {
    resource: Value,
    responses: Vec<RuleResponse>,
}

fn judge(case: &Value) -> Result<Vec<String>, String> {
    let policies = case["policies"].as_array().ok_or("no \"policies\" list")?;
    let resources: Vec<Value> = case["resources"]
        .as_array()
        .ok_or("no \"resources\" list")?
        .iter()
        .map(with_default_namespace)
        .collect();
    let variables = &case["variables"];
    let mut evaluated = Vec::new();
    for policy in policies {
        let (set, errors) = PolicySet::from_objects(std::slice::from_ref(policy));
        if let Some(err) = errors.first() {
            return Err(format!("policy refused: {err}"));
        }
        let name = policy["metadata"]["name"].as_str().unwrap_or_default();
        for resource in &resources {
            let mut responses = set.evaluate(&request_for(variables, name, None, resource));
            // A rule's own `values` apply to that rule only: it is evaluated again with them
            // and its responses replace the ones without.
            for rule in rules_with_values(variables, name) {
                let names = rule_names(rule);
                let again = set.evaluate(&request_for(variables, name, Some(rule), resource));
                responses.retain(|r| !names.contains(&r.rule));
                responses.extend(again.into_iter().filter(|r| names.contains(&r.rule)));
            }
            evaluated.push((
                name.to_string(),
                Evaluated {
                    resource: resource.clone(),
                    responses,
                },
            ));
        }
    }
    let rows = case["results"].as_array().ok_or("no \"results\" list")?;
    Ok(rows
        .iter()
        .filter_map(|row| check_row(row, &evaluated))
        .collect())
}

fn with_default_namespace(resource: &Value) -> Value {
    let mut resource = resource.clone();
    let kind = resource["kind"].as_str().unwrap_or_default();
    let has_namespace = resource
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_namespace
        && !CLUSTER_SCOPED.contains(&kind)
        && let Some(Value::Object(meta)) = resource.get_mut("metadata")
    {
        meta.insert("namespace".into(), Value::from("default"));
    }
    resource
}

/// The entries of `variables.policies` naming `policy`.
fn policy_entries<'v>(variables: &'v Value, policy: &'v str) -> impl Iterator<Item = &'v Value> {
    variables["policies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(move |entry| entry["name"].as_str() == Some(policy))
}

/// The rules of `policy` that have their own `values`.
fn rules_with_values<'v>(variables: &'v Value, policy: &'v str) -> Vec<&'v str> {
    policy_entries(variables, policy)
        .flat_map(|entry| {
            entry["rules"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter(|rule| rule["values"].is_object())
        .filter_map(|rule| rule["name"].as_str())
        .collect()
}

/// The response names a rule can have: itself and its autogen rules.
fn rule_names(rule: &str) -> [String; 3] {
    [
        rule.to_string(),
        format!("autogen-{rule}"),
        format!("autogen-cronjob-{rule}"),
    ]
}

/// The request the CLI makes for `policy` on `resource` (for `rule` when given): its values,
/// the namespace labels, and the operation they set (DELETE moves the resource to `oldObject`).
fn request_for(variables: &Value, policy: &str, rule: Option<&str>, resource: &Value) -> Request {
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    let mut add = |map: &Value| {
        if let Value::Object(map) = map {
            values.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    };
    add(&variables["globalValues"]);
    let resource_name = resource
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for entry in policy_entries(variables, policy) {
        for values in entry["rules"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|r| rule.is_some() && r["name"].as_str() == rule)
        {
            add(&values["values"]);
        }
        for res in entry["resources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if res["name"].as_str() == Some(resource_name) {
                add(&res["values"]);
            }
        }
    }
    let namespace = resource
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace_labels = variables["namespaceSelector"]
        .as_array()
        .and_then(|list| list.iter().find(|n| n["name"].as_str() == Some(namespace)))
        .and_then(|n| n["labels"].as_object())
        .map(labels);
    Request::offline(resource, values, namespace_labels.unwrap_or_default())
}

fn labels(map: &Map<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// `None` when the row matches, else why not.
fn check_row(row: &Value, evaluated: &[(String, Evaluated)]) -> Option<String> {
    let field = |k: &str| row[k].as_str().unwrap_or_default();
    let (policy, rule, name, namespace, kind) = (
        field("policy"),
        field("rule"),
        field("resource"),
        field("namespace"),
        field("kind"),
    );
    let candidates: Vec<&Evaluated> = evaluated
        .iter()
        .filter(|(p, e)| {
            let meta = |k: &str| {
                e.resource
                    .pointer(&format!("/metadata/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            p == policy
                && meta("name") == name
                && (namespace.is_empty() || meta("namespace") == namespace)
        })
        .map(|(_, e)| e)
        .collect();
    // The kind only tells resources of the same name apart.
    let by_kind: Vec<&Evaluated> = candidates
        .iter()
        .copied()
        .filter(|e| e.resource["kind"] == kind)
        .collect();
    let chosen = if candidates.len() > 1 && !by_kind.is_empty() {
        by_kind
    } else {
        candidates
    };
    let names = rule_names(rule);
    let got: Vec<&RuleResponse> = chosen
        .iter()
        .flat_map(|e| e.responses.iter())
        .filter(|r| names.contains(&r.rule))
        .collect();
    let expected = field("result");
    let wrong: Vec<String> = got
        .iter()
        .filter(|r| r.status.as_str() != expected)
        .map(|r| format!("{}: {} ({})", r.rule, r.status.as_str(), r.message))
        .collect();
    if wrong.is_empty() {
        return None;
    }
    Some(format!(
        "{policy}/{rule} on {name}: expected {expected}, got {}",
        wrong.join(", ")
    ))
}
