//! `match` and `exclude` (`pkg/engine/utils/match.go`, `pkg/utils/match`): kinds (`Pod`,
//! `apps/v1/Deployment`, `v1/Pod/status`, wildcards), names, namespaces, operations, label and
//! namespace selectors, annotations, and subjects/roles/clusterRoles, which are ignored in
//! `match` when the request carries no user information (as the Kyverno CLI does).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::autogen::is_version;
use crate::wildcard;
use crate::{Request, UserInfo};

/// What a rule's match and exclude blocks are checked against.
pub(crate) struct Facts<'a> {
    pub resource: &'a Value,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub operation: &'a str,
    pub request: &'a Request,
}

impl<'a> Facts<'a> {
    pub fn new(resource: &'a Value, operation: &'a str, request: &'a Request) -> Self {
        let api_version = resource
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Facts {
            resource,
            group,
            version,
            kind: resource
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            operation,
            request,
        }
    }

    fn meta(&self, field: &str) -> &'a str {
        self.resource
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> &'a str {
        self.meta("namespace")
    }

    fn string_map(&self, field: &str) -> BTreeMap<String, String> {
        self.resource
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn no_user_info(&self) -> bool {
        let r = self.request;
        r.user_info == UserInfo::default() && r.roles.is_empty() && r.cluster_roles.is_empty()
    }
}

/// Whether the rule selects the resource: matched and not excluded.
pub(crate) fn selects(rule: &Value, facts: &Facts<'_>) -> bool {
    if facts.resource.is_null() {
        return false;
    }
    matches_block(rule.get("match"), facts) && !excluded(rule.get("exclude"), facts)
}

fn filters<'v>(block: &'v Value, list: &str) -> Option<&'v Vec<Value>> {
    block
        .get(list)
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
}

fn matches_block(block: Option<&Value>, facts: &Facts<'_>) -> bool {
    block.is_some_and(|block| block_holds(block, facts, match_filter))
}

/// A match or exclude block holds when `any` of its filters does, else when `all` do, else
/// when the block itself does as one filter.
fn block_holds(
    block: &Value,
    facts: &Facts<'_>,
    holds: impl Fn(&Value, &Facts<'_>) -> bool,
) -> bool {
    if let Some(any) = filters(block, "any") {
        return any.iter().any(|f| holds(f, facts));
    }
    if let Some(all) = filters(block, "all") {
        return all.iter().all(|f| holds(f, facts));
    }
    holds(block, facts)
}

/// `matchesResourceDescriptionMatchHelper`: a filter with nothing in it matches nothing.
fn match_filter(filter: &Value, facts: &Facts<'_>) -> bool {
    let user = if facts.no_user_info() {
        None
    } else {
        user_part(filter)
    };
    filter_holds(filter, user, facts)
}

fn excluded(block: Option<&Value>, facts: &Facts<'_>) -> bool {
    block
        .filter(|b| !is_empty(b))
        .is_some_and(|block| block_holds(block, facts, exclude_filter))
}

/// `matchesResourceDescriptionExcludeHelper`: user constraints count even without user info.
fn exclude_filter(filter: &Value, facts: &Facts<'_>) -> bool {
    filter_holds(filter, user_part(filter), facts)
}

/// A filter with neither resources nor `user` constraints holds for nothing; otherwise every
/// part it sets must hold.
fn filter_holds(filter: &Value, user: Option<&Value>, facts: &Facts<'_>) -> bool {
    let resources = filter.get("resources").filter(|r| !is_empty(r));
    if resources.is_none() && user.is_none() {
        return false;
    }
    resources.is_none_or(|r| description_holds(r, facts))
        && user.is_none_or(|u| user_holds(u, facts))
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// The subjects/roles/clusterRoles of a filter, when any is set.
fn user_part(filter: &Value) -> Option<&Value> {
    ["subjects", "roles", "clusterRoles"]
        .iter()
        .any(|k| filter.get(*k).is_some_and(|v| !is_empty(v)))
        .then_some(filter)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn user_holds(filter: &Value, facts: &Facts<'_>) -> bool {
    let request = facts.request;
    let roles = strings(filter.get("roles"));
    if !roles.is_empty() && !request.roles.iter().any(|r| roles.contains(r)) {
        return false;
    }
    let cluster_roles = strings(filter.get("clusterRoles"));
    if !cluster_roles.is_empty()
        && !request
            .cluster_roles
            .iter()
            .any(|r| cluster_roles.contains(r))
    {
        return false;
    }
    let subjects = filter
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    subjects.is_empty()
        || subjects
            .iter()
            .any(|s| subject_holds(s, &request.user_info))
}

fn subject_holds(subject: &Value, user: &UserInfo) -> bool {
    let field = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or_default();
    match field("kind") {
        "ServiceAccount" => wildcard::matches(
            &format!(
                "system:serviceaccount:{}:{}",
                field("namespace"),
                field("name")
            ),
            &user.username,
        ),
        "User" => wildcard::matches(field("name"), &user.username),
        "Group" => user
            .groups
            .iter()
            .any(|g| wildcard::matches(field("name"), g)),
        _ => false,
    }
}

/// `doesResourceMatchConditionBlock` for the resource part.
fn description_holds(description: &Value, facts: &Facts<'_>) -> bool {
    let operations = strings(description.get("operations"));
    if !operations.is_empty() && !operations.iter().any(|o| o == facts.operation) {
        return false;
    }
    let kinds = strings(description.get("kinds"));
    if !kinds.is_empty() && !kinds.iter().any(|k| kind_matches(k, facts)) {
        return false;
    }
    let name = match facts.meta("name") {
        "" => facts.meta("generateName"),
        name => name,
    };
    if let Some(expected) = description
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        && !wildcard::matches(expected, name)
    {
        return false;
    }
    let names = strings(description.get("names"));
    if !names.is_empty() && !names.iter().any(|n| wildcard::matches(n, name)) {
        return false;
    }
    let namespaces = strings(description.get("namespaces"));
    let namespace = if facts.kind == "Namespace" {
        facts.meta("name")
    } else {
        facts.namespace()
    };
    if !namespaces.is_empty() && !namespaces.iter().any(|n| wildcard::matches(n, namespace)) {
        return false;
    }
    if let Some(Value::Object(expected)) = description.get("annotations")
        && !expected.is_empty()
    {
        let actual = facts.string_map("annotations");
        let all = expected.iter().all(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            actual
                .iter()
                .any(|(k1, v1)| wildcard::matches(k, k1) && wildcard::matches(v, v1))
        });
        if !all {
            return false;
        }
    }
    if let Some(selector) = description.get("selector").filter(|s| !s.is_null())
        && selector_matches(selector, &facts.string_map("labels")) != Some(true)
    {
        return false;
    }
    if let Some(selector) = description
        .get("namespaceSelector")
        .filter(|s| !s.is_null())
    {
        if facts.kind == "Namespace" {
            return false;
        }
        if !facts.kind.is_empty() {
            let labels = facts.request.namespace_labels.clone().unwrap_or_default();
            if selector_matches(selector, &labels) != Some(true) {
                return false;
            }
        }
    }
    true
}

/// `ParseKindSelector` then `CheckKind` (ephemeral containers allowed for Pods).
fn kind_matches(selector: &str, facts: &Facts<'_>) -> bool {
    let mut parts: Vec<&str> = selector.split('/').collect();
    if let Some(last) = parts.pop() {
        parts.extend(last.split('.'));
    }
    let (group, version, kind, sub) = match parts.as_slice() {
        [k] => ("*", "*", *k, ""),
        ["*", "*"] => ("*", "*", "*", "*"),
        ["*", s] if s.to_lowercase() == *s => ("*", "*", "*", *s),
        [v, k] if is_version(v) => ("*", *v, *k, ""),
        [k, s] => ("*", "*", *k, *s),
        [v, k, s] if is_version(v) => ("*", *v, *k, *s),
        [g, v, k] => (*g, *v, *k, ""),
        [g, v, k, s] => (*g, *v, *k, *s),
        _ => return false,
    };
    wildcard::matches(group, facts.group)
        && wildcard::matches(version, facts.version)
        && wildcard::matches(kind, facts.kind)
        && wildcard::matches(sub, "")
}

/// A `metav1.LabelSelector` against labels, wildcards in `matchLabels` expanded as Kyverno
/// does; `None` for an invalid selector.
pub(crate) fn selector_matches(
    selector: &Value,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    if let Some(Value::Object(match_labels)) = selector.get("matchLabels") {
        for (k, v) in match_labels {
            let v = v.as_str()?;
            let (key, value) = expand_label(k, v, labels);
            if labels.get(&key) != Some(&value) {
                return Some(false);
            }
        }
    }
    for expression in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let key = expression.get("key").and_then(Value::as_str)?;
        let values = strings(expression.get("values"));
        let actual = labels.get(key);
        let holds = match expression.get("operator").and_then(Value::as_str)? {
            "In" if !values.is_empty() => actual.is_some_and(|a| values.contains(a)),
            "NotIn" if !values.is_empty() => actual.is_none_or(|a| !values.contains(a)),
            "Exists" if values.is_empty() => actual.is_some(),
            "DoesNotExist" if values.is_empty() => actual.is_none(),
            _ => return None,
        };
        if !holds {
            return Some(false);
        }
    }
    Some(true)
}

/// `wildcards.ReplaceInSelector` for one entry.
fn expand_label(key: &str, value: &str, labels: &BTreeMap<String, String>) -> (String, String) {
    if !wildcard::contains_wildcard(key) && !wildcard::contains_wildcard(value) {
        return (key.into(), value.into());
    }
    for (k, v) in labels {
        if wildcard::matches(key, k) && wildcard::matches(value, v) {
            return (k.clone(), v.clone());
        }
    }
    let zero = |s: &str| s.replace(['*', '?'], "0");
    (zero(key), zero(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selects_pod(rule: Value, pod: Value) -> bool {
        let request = Request::default();
        selects(&rule, &Facts::new(&pod, "CREATE", &request))
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}}})
    }

    #[test]
    fn kinds_in_every_form() {
        for kind in ["Pod", "v1/Pod", "*/Pod", "*", "Po*"] {
            let rule = json!({"match": {"any": [{"resources": {"kinds": [kind]}}]}});
            assert!(selects_pod(rule, pod()), "{kind}");
        }
        for kind in [
            "Deployment",
            "apps/v1/Pod",
            "Pod/status",
            "v2/Pod",
            "*/*/Pod",
        ] {
            let rule = json!({"match": {"any": [{"resources": {"kinds": [kind]}}]}});
            assert!(!selects_pod(rule, pod()), "{kind}");
        }
    }

    #[test]
    fn names_namespaces_selectors_and_operations() {
        let rule = |r: Value| json!({"match": {"resources": r}});
        assert!(selects_pod(
            rule(json!({"kinds": ["Pod"], "names": ["web-*"]})),
            pod()
        ));
        assert!(!selects_pod(
            rule(json!({"kinds": ["Pod"], "name": "api"})),
            pod()
        ));
        assert!(selects_pod(rule(json!({"namespaces": ["pr?d"]})), pod()));
        assert!(selects_pod(
            rule(json!({"selector": {"matchLabels": {"app": "w*"}}})),
            pod()
        ));
        assert!(!selects_pod(
            rule(
                json!({"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}})
            ),
            pod()
        ));
        assert!(!selects_pod(
            rule(json!({"kinds": ["Pod"], "operations": ["DELETE"]})),
            pod()
        ));
    }

    #[test]
    fn exclude_any_and_all() {
        let rule = json!({"match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                          "exclude": {"any": [{"resources": {"namespaces": ["kube-system"]}}, {"resources": {"selector": {"matchLabels": {"app": "web"}}}}]}});
        assert!(!selects_pod(rule, pod()));
        let rule = json!({"match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                          "exclude": {"all": [{"resources": {"namespaces": ["kube-system"]}}, {"resources": {"selector": {"matchLabels": {"app": "web"}}}}]}});
        assert!(selects_pod(rule, pod()));
    }

    #[test]
    fn subjects_are_ignored_without_user_info() {
        let rule = json!({"match": {"any": [{"resources": {"kinds": ["Pod"]}, "subjects": [{"kind": "User", "name": "alice"}]}]}});
        assert!(selects_pod(rule.clone(), pod()));
        let request = Request {
            user_info: UserInfo {
                username: "bob".into(),
                groups: vec![],
            },
            ..Request::default()
        };
        let p = pod();
        assert!(!selects(&rule, &Facts::new(&p, "CREATE", &request)));
    }
}
