//! Kyverno's autogen (`pkg/autogen/v1`): a rule on Pods also checks the Pod template of
//! Deployments, DaemonSets, StatefulSets, Jobs, ReplicaSets and ReplicationControllers
//! (`autogen-<rule>`) and of CronJobs (`autogen-cronjob-<rule>`), unless the annotation
//! `pod-policies.kyverno.io/autogen-controllers` says otherwise (`none`, or a list).

use serde_json::{Map, Value, json};

/// The Pod controllers Kyverno's autogen extends a Pod rule to (CronJob last).
pub const POD_CONTROLLERS: [&str; 7] = [
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "CronJob",
];

/// `ComputeRules`: the rules with their generated ones appended.
pub(crate) fn compute_rules(rules: Vec<Value>, annotation: Option<&str>) -> Vec<Value> {
    if !can_autogen(&rules) {
        return rules;
    }
    let controllers = annotation.map_or_else(|| POD_CONTROLLERS.join(","), str::to_string);
    if controllers == "none" {
        return rules;
    }
    let mut generated = Vec::new();
    for rule in &rules {
        let stripped = strip_cronjob(&controllers);
        if let Some(pod) = for_controllers(rule, &stripped) {
            generated.push(rewrite_paths(&pod, POD_REPLACEMENTS));
        }
        if let Some(cron) = for_cronjob(rule, &controllers) {
            generated.push(rewrite_paths(&cron, CRONJOB_REPLACEMENTS));
        }
    }
    if generated.is_empty() {
        return rules;
    }
    let mut out: Vec<Value> = rules.into_iter().filter(|r| !is_autogen(r)).collect();
    out.extend(generated);
    out
}

fn is_autogen(rule: &Value) -> bool {
    name_of(rule).starts_with("autogen-")
}

fn name_of(rule: &Value) -> &str {
    rule.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Every `resources` block of a `match`/`exclude` (legacy, `any`, `all`).
fn descriptions(block: Option<&Value>) -> Vec<&Value> {
    let Some(block) = block else {
        return Vec::new();
    };
    let mut out: Vec<&Value> = block.get("resources").into_iter().collect();
    for list in ["any", "all"] {
        for filter in block
            .get(list)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.extend(filter.get("resources"));
        }
    }
    out
}

fn kinds_of(description: &Value) -> Vec<String> {
    description
        .get("kinds")
        .and_then(Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `CanAutoGen`: no names, selectors or annotations, Pods not mixed with other kinds, and
/// some Pod or controller kind matched.
fn can_autogen(rules: &[Value]) -> bool {
    let mut needed = false;
    for rule in rules {
        for description in descriptions(rule.get("match"))
            .into_iter()
            .chain(descriptions(rule.get("exclude")))
        {
            let set = |k: &str| {
                description
                    .get(k)
                    .is_some_and(|v| !v.is_null() && v != "" && v != &json!([]))
            };
            let kinds = kinds_of(description);
            if set("name") || set("names") || set("selector") || set("annotations") {
                return false;
            }
            if kinds.len() > 1 && contains_kind(&kinds, "Pod") {
                return false;
            }
            needed |= kinds
                .iter()
                .any(|k| k == "Pod" || POD_CONTROLLERS.contains(&k.as_str()));
        }
    }
    needed
}

/// `kubeutils.ContainsKind`: a kind selector naming `kind` (`Pod`, `v1/Pod`, `Pod/status`).
pub(crate) fn contains_kind(kinds: &[String], kind: &str) -> bool {
    kinds.iter().any(|k| {
        let parts: Vec<&str> = k.split('/').collect();
        let with_sub = match parts.as_slice() {
            [one] => one.replacen('.', "/", 1),
            [a, b] if is_version(a) && !(*a == "*" && *b == "*") => b.replacen('.', "/", 1),
            [_, _] => k.clone(),
            [a, b, c] if is_version(a) => format!("{b}/{c}"),
            [_, _, c] => c.replacen('.', "/", 1),
            [_, _, c, d] => format!("{c}/{d}"),
            _ => String::new(),
        };
        let split: Vec<&str> = with_sub.split('/').collect();
        let bare = if split.len() == 2 {
            split[0]
        } else {
            with_sub.as_str()
        };
        bare == kind
    })
}

pub(crate) fn is_version(text: &str) -> bool {
    text == "*"
        || text.strip_prefix('v').is_some_and(|rest| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let tail = &rest[digits..];
            digits > 0
                && (tail.is_empty()
                    || ["alpha", "beta"].iter().any(|p| {
                        tail.strip_prefix(p)
                            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                    }))
        })
}

fn strip_cronjob(controllers: &str) -> String {
    let mut kinds = split_kinds(controllers);
    kinds.retain(|k| k != "CronJob");
    kinds.join(",")
}

fn split_kinds(controllers: &str) -> Vec<String> {
    let mut kinds: Vec<String> = controllers.split(',').map(String::from).collect();
    kinds.sort();
    kinds
}

/// `ConvertKindsToGVK`.
fn to_gvk(kind: &str) -> String {
    match kind {
        "DaemonSet" | "Deployment" | "StatefulSet" | "ReplicaSet" => format!("apps/v1/{kind}"),
        "Job" | "CronJob" => format!("batch/v1/{kind}"),
        "ReplicationController" | "Pod" => format!("v1/{kind}"),
        other => other.to_string(),
    }
}

fn autogen_name(prefix: &str, name: &str) -> String {
    let full = format!("{prefix}-{name}");
    match full.char_indices().nth(63) {
        Some((i, _)) => full[..i].to_string(),
        None => full,
    }
}

/// `generateRuleForControllers`.
fn for_controllers(rule: &Value, controllers: &str) -> Option<Value> {
    if is_autogen(rule) || controllers.is_empty() {
        return None;
    }
    let match_kinds: Vec<String> = descriptions(rule.get("match"))
        .into_iter()
        .flat_map(kinds_of)
        .collect();
    let exclude_kinds: Vec<String> = descriptions(rule.get("exclude"))
        .into_iter()
        .flat_map(kinds_of)
        .collect();
    if !contains_kind(&match_kinds, "Pod")
        || (!exclude_kinds.is_empty() && !contains_kind(&exclude_kinds, "Pod"))
    {
        return None;
    }
    let pod_controllers = &POD_CONTROLLERS[..6];
    let controllers = if controllers == "all" {
        pod_controllers.join(",")
    } else {
        let valid: Vec<String> = split_kinds(controllers)
            .into_iter()
            .filter(|c| pod_controllers.contains(&c.as_str()))
            .collect();
        if valid.is_empty() {
            controllers.to_string()
        } else {
            valid.join(",")
        }
    };
    let kinds: Vec<String> = split_kinds(&controllers)
        .iter()
        .map(|k| to_gvk(k))
        .collect();
    generate(
        autogen_name("autogen", name_of(rule)),
        rule,
        ("template", "spec/template"),
        &kinds,
        true,
    )
}

/// `generateCronJobRule`.
fn for_cronjob(rule: &Value, controllers: &str) -> Option<Value> {
    if !(controllers.contains("CronJob") || controllers.contains("all")) {
        return None;
    }
    let base = for_controllers(rule, controllers)?;
    generate(
        autogen_name("autogen-cronjob", name_of(rule)),
        &base,
        ("jobTemplate", "spec/jobTemplate/spec/template"),
        &[to_gvk("CronJob")],
        false,
    )
}

/// `generateRule`: the rule renamed, its kinds replaced and its validation moved under
/// `spec.<template_key>`, the `$(...)` references of its message shifted by `shift`.
/// `only_pod_filters` replaces kinds only in filters naming Pods.
fn generate(
    name: String,
    rule: &Value,
    (template_key, shift): (&str, &str),
    kinds: &[String],
    only_pod_filters: bool,
) -> Option<Value> {
    let mut out = rule.as_object()?.clone();
    out.insert("name".into(), Value::String(name));
    let kinds_value = Value::from(kinds.to_vec());
    if let Some(Value::Object(block)) = out.get_mut("match") {
        replace_kinds(block, &kinds_value, only_pod_filters, true);
    }
    if let Some(Value::Object(block)) = out.get_mut("exclude") {
        replace_kinds(block, &kinds_value, only_pod_filters, false);
    }
    let validate = out.get("validate")?.as_object()?.clone();
    out.insert(
        "validate".into(),
        Value::Object(wrap_validation(&validate, template_key, shift)?),
    );
    Some(Value::Object(out))
}

fn replace_kinds(
    block: &mut Map<String, Value>,
    kinds: &Value,
    only_pod_filters: bool,
    is_match: bool,
) {
    for list in ["any", "all"] {
        let Some(Value::Array(filters)) = block.get_mut(list) else {
            continue;
        };
        if filters.is_empty() {
            continue;
        }
        for filter in filters.iter_mut() {
            let Some(Value::Object(resources)) = filter.get_mut("resources") else {
                continue;
            };
            let names_pod = contains_kind(&kinds_of(&Value::Object(resources.clone())), "Pod");
            if !only_pod_filters || names_pod {
                resources.insert("kinds".into(), kinds.clone());
            }
        }
        return;
    }
    let resources = block.entry("resources").or_insert_with(|| json!({}));
    if let Value::Object(resources) = resources {
        let has_kinds = resources
            .get("kinds")
            .and_then(Value::as_array)
            .is_some_and(|k| !k.is_empty());
        if is_match || has_kinds {
            resources.insert("kinds".into(), kinds.clone());
        }
    }
}

/// The validation of a generated rule: patterns wrapped in `spec.<key>`, deny and foreach
/// kept as they are (their variables are rewritten afterwards); the message's references to
/// the pattern follow it into the template (`FindAndShiftReferences`).
fn wrap_validation(
    validate: &Map<String, Value>,
    key: &str,
    shift: &str,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for keep in [
        "message",
        "failureAction",
        "failureActionOverrides",
        "allowExistingViolations",
    ] {
        if let Some(v) = validate.get(keep) {
            out.insert(keep.into(), v.clone());
        }
    }
    let wrap = |p: &Value| json!({ "spec": { key: p } });
    if let Some(pattern) = validate.get("pattern").filter(|p| !p.is_null()) {
        out.insert("pattern".into(), wrap(pattern));
    } else if let Some(deny) = validate.get("deny").filter(|d| !d.is_null()) {
        out.insert("deny".into(), deny.clone());
    } else if let Some(Value::Array(patterns)) = validate.get("anyPattern") {
        out.insert(
            "anyPattern".into(),
            Value::Array(patterns.iter().map(wrap).collect()),
        );
    } else if let Some(foreach) = validate
        .get("foreach")
        .filter(|f| f.as_array().is_some_and(|a| !a.is_empty()))
    {
        out.insert("foreach".into(), foreach.clone());
    } else {
        return None;
    }
    let pivot = if out.contains_key("deny") {
        "deny"
    } else if out.contains_key("anyPattern") {
        "anyPattern"
    } else {
        "pattern"
    };
    if let Some(Value::String(message)) = out.get_mut("message") {
        *message = crate::references::shift(message, shift, pivot);
    }
    Some(out)
}

const POD_REPLACEMENTS: &[(&str, &str)] = &[
    ("request.object.spec", "request.object.spec.template.spec"),
    (
        "request.oldObject.spec",
        "request.oldObject.spec.template.spec",
    ),
    (
        "request.object.metadata",
        "request.object.spec.template.metadata",
    ),
    (
        "request.oldObject.metadata",
        "request.oldObject.spec.template.metadata",
    ),
];

const CRONJOB_REPLACEMENTS: &[(&str, &str)] = &[
    (
        "request.object.spec",
        "request.object.spec.jobTemplate.spec.template.spec",
    ),
    (
        "request.oldObject.spec",
        "request.oldObject.spec.jobTemplate.spec.template.spec",
    ),
    (
        "request.object.metadata",
        "request.object.spec.jobTemplate.spec.template.metadata",
    ),
    (
        "request.oldObject.metadata",
        "request.oldObject.spec.jobTemplate.spec.template.metadata",
    ),
];

/// `updateFields`: variable paths into the Pod template, replaced in the rule's JSON text.
fn rewrite_paths(rule: &Value, replacements: &[(&str, &str)]) -> Value {
    let mut text = rule.to_string();
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).unwrap_or_else(|_| rule.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_rule() -> Value {
        json!({"name": "require-probes", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
               "validate": {"message": "m {{ request.object.metadata.name }}",
                            "pattern": {"spec": {"containers": [{"livenessProbe": "*"}]}}}})
    }

    #[test]
    fn message_references_follow_the_pattern_into_templates() {
        let mut rule = pod_rule();
        rule["validate"]["message"] = json!("needs $(/pattern/spec/containers/0/livenessProbe)");
        let rules = compute_rules(vec![rule], None);
        assert_eq!(
            rules[1]["validate"]["message"],
            "needs $(/pattern/spec/template/spec/containers/0/livenessProbe)"
        );
        // The CronJob rule is built from the controllers' rule and shifted again, as Kyverno.
        assert_eq!(
            rules[2]["validate"]["message"],
            "needs $(/pattern/spec/jobTemplate/spec/template/spec/template/spec/containers/0/livenessProbe)"
        );
    }

    #[test]
    fn pod_rules_get_controller_and_cronjob_rules() {
        let rules = compute_rules(vec![pod_rule()], None);
        let names: Vec<&str> = rules.iter().map(name_of).collect();
        assert_eq!(
            names,
            [
                "require-probes",
                "autogen-require-probes",
                "autogen-cronjob-require-probes"
            ]
        );
        assert_eq!(
            rules[1]["match"]["any"][0]["resources"]["kinds"],
            json!([
                "apps/v1/DaemonSet",
                "apps/v1/Deployment",
                "batch/v1/Job",
                "apps/v1/ReplicaSet",
                "v1/ReplicationController",
                "apps/v1/StatefulSet"
            ])
        );
        assert_eq!(
            rules[1]["validate"]["pattern"]["spec"]["template"]["spec"]["containers"][0]["livenessProbe"],
            "*"
        );
        assert_eq!(
            rules[1]["validate"]["message"],
            "m {{ request.object.spec.template.metadata.name }}"
        );
        assert_eq!(
            rules[2]["match"]["any"][0]["resources"]["kinds"],
            json!(["batch/v1/CronJob"])
        );
        assert_eq!(
            rules[2]["validate"]["pattern"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
                [0]["livenessProbe"],
            "*"
        );
    }

    #[test]
    fn the_annotation_chooses_controllers() {
        assert_eq!(compute_rules(vec![pod_rule()], Some("none")).len(), 1);
        let rules = compute_rules(vec![pod_rule()], Some("DaemonSet,StatefulSet"));
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[1]["match"]["any"][0]["resources"]["kinds"],
            json!(["apps/v1/DaemonSet", "apps/v1/StatefulSet"])
        );
    }

    #[test]
    fn selectors_and_mixed_kinds_prevent_autogen() {
        let mut rule = pod_rule();
        rule["match"]["any"][0]["resources"]["selector"] = json!({"matchLabels": {"a": "b"}});
        assert_eq!(compute_rules(vec![rule], None).len(), 1);
        let mut mixed = pod_rule();
        mixed["match"]["any"][0]["resources"]["kinds"] = json!(["Pod", "Service"]);
        assert_eq!(compute_rules(vec![mixed], None).len(), 1);
    }
}
