//! The public API as the API server and the CLI use it: loading, admission verdicts and
//! Kyverno's texts, and hostile policies and objects that must neither hang nor crash.

use std::time::{Duration, Instant};

use ferroflux_policy::{Operation, PolicySet, Request, RuleStatus};
use serde_json::{Value, json};

fn cluster_policy(name: &str, action: &str, rules: Value) -> Value {
    json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
           "spec": {"validationFailureAction": action, "rules": rules}})
}

fn pod(name: &str, namespace: &str, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

fn latest_rule() -> Value {
    json!([{"name": "no-latest", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"message": "latest is mutable", "pattern": {"spec": {"containers": [{"image": "!*:latest"}]}}}}])
}

#[test]
fn an_enforced_failure_blocks_with_kyvernos_message() {
    let (set, errors) =
        PolicySet::from_objects(&[cluster_policy("disallow-latest", "Enforce", latest_rule())]);
    assert!(errors.is_empty(), "{errors:?}");
    let admission = set.admit(&Request::create(pod("web", "prod", "nginx:latest")));
    assert!(!admission.allowed);
    assert_eq!(
        admission.message,
        "\n\nresource Pod/prod/web was blocked due to the following policies \n\n\
         disallow-latest:\n  no-latest: 'validation error: latest is mutable. rule no-latest failed at path /spec/containers/0/image/'\n"
    );
    assert!(
        set.admit(&Request::create(pod("web", "prod", "nginx:1.27")))
            .allowed
    );
}

#[test]
fn an_audited_failure_warns_and_scored_false_reports_warn() {
    let mut policy = cluster_policy("disallow-latest", "Audit", latest_rule());
    policy["metadata"]["annotations"] = json!({"policies.kyverno.io/scored": "false"});
    let (set, _) = PolicySet::from_objects(&[policy]);
    let admission = set.admit(&Request::create(pod("web", "prod", "nginx:latest")));
    assert!(admission.allowed);
    assert_eq!(admission.results[0].status, RuleStatus::Warn);
    assert_eq!(
        admission.warnings,
        [
            "policy disallow-latest.no-latest: validation error: latest is mutable. rule no-latest failed at path /spec/containers/0/image/"
        ]
    );
}

#[test]
fn autogen_checks_the_pod_template_of_controllers() {
    let (set, _) =
        PolicySet::from_objects(&[cluster_policy("disallow-latest", "Enforce", latest_rule())]);
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}}});
    let results = set.evaluate(&Request::create(deployment));
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].rule, "autogen-no-latest");
    assert_eq!(results[0].status, RuleStatus::Fail);
    assert!(
        results[0]
            .message
            .ends_with("failed at path /spec/template/spec/containers/0/image/")
    );
}

#[test]
fn a_namespaced_policy_applies_only_in_its_namespace() {
    let mut policy = cluster_policy("disallow-latest", "Enforce", latest_rule());
    policy["kind"] = json!("Policy");
    policy["metadata"]["namespace"] = json!("team-a");
    let (set, _) = PolicySet::from_objects(&[policy]);
    assert!(
        !set.admit(&Request::create(pod("web", "team-a", "nginx:latest")))
            .allowed
    );
    assert!(
        set.admit(&Request::create(pod("web", "team-b", "nginx:latest")))
            .allowed
    );
    assert_eq!(
        set.evaluate(&Request::create(pod("web", "team-a", "x:latest")))[0].namespace,
        "team-a"
    );
}

#[test]
fn unsupported_rules_are_refused_not_ignored() {
    let rules = json!([
        {"name": "adds", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "validate": {"pattern": {"metadata": {"+(labels)": {"a": "b"}}}}},
        {"name": "mutates", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "mutate": {"patchStrategicMerge": {}}},
        {"name": "calls", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "context": [{"name": "x", "apiCall": {"urlPath": "/api/v1/pods"}}], "validate": {"deny": {}}},
    ]);
    let (set, errors) = PolicySet::from_objects(&[
        cluster_policy("p", "Audit", rules),
        json!({"kind": "ConfigMap"}),
    ]);
    let refused: Vec<_> = errors
        .iter()
        .map(|e| e.rule.clone().unwrap_or_default())
        .collect();
    assert_eq!(refused, ["adds", "mutates", "calls", ""]);
    assert!(errors[0].to_string().contains("+(key) anchor"));
    assert_eq!(set.len(), 1);
    assert!(
        set.evaluate(&Request::create(pod("a", "b", "c")))
            .is_empty()
    );
}

#[test]
fn delete_requests_read_the_old_object() {
    let rules = json!([{"name": "keep-prod", "match": {"any": [{"resources": {"kinds": ["Pod"], "operations": ["DELETE"]}}]},
        "validate": {"message": "{{ request.object.metadata.name }} is protected", "deny": {}}}]);
    let (set, _) = PolicySet::from_objects(&[cluster_policy("p", "Enforce", rules)]);
    let request = Request {
        operation: Operation::Delete,
        old_object: pod("db", "prod", "pg"),
        ..Request::default()
    };
    let admission = set.admit(&request);
    assert!(!admission.allowed);
    assert_eq!(admission.results[0].message, "db is protected");
    assert!(set.admit(&Request::create(pod("db", "prod", "pg"))).allowed);
}

#[test]
fn a_missing_variable_is_an_error_not_a_pass() {
    let rules = json!([{"name": "team", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "validate": {"deny": {"conditions": {"any": [{"key": "{{ request.object.metadata.labels.team }}", "operator": "Equals", "value": ""}]}}}}]);
    let (set, _) = PolicySet::from_objects(&[cluster_policy("p", "Enforce", rules)]);
    let admission = set.admit(&Request::create(pod("a", "b", "c")));
    assert_eq!(admission.results[0].status, RuleStatus::Error);
    assert!(
        admission.results[0]
            .message
            .contains("Unknown key \"labels\" in path"),
        "{}",
        admission.results[0].message
    );
    assert!(
        !admission.allowed,
        "an error blocks unless failurePolicy is Ignore"
    );
}

/// Runs `policy` on `object` and returns how long it took; it must not panic either.
fn time(policy: Value, object: Value) -> Duration {
    let start = Instant::now();
    let (set, _) = PolicySet::from_objects(&[policy]);
    let _ = set.admit(&Request::create(object));
    start.elapsed()
}

#[test]
fn hostile_policies_and_objects_neither_hang_nor_crash() {
    let limit = Duration::from_secs(20);
    // A wildcard that backtracks exponentially in go-wildcard.
    let wildcard = "*a".repeat(3000) + "b";
    let rules = json!([{"name": "w", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "validate": {"pattern": {"metadata": {"name": wildcard}}}}]);
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a".repeat(30_000), "namespace": "x"}});
    assert!(time(cluster_policy("w", "Enforce", rules), object) < limit);

    // A variable whose value is itself a variable, forever.
    let rules = json!([{"name": "loop", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "context": [{"name": "x", "variable": {"value": "{{ '{{ x }}' }}"}}],
        "validate": {"deny": {"conditions": [{"key": "{{ x }}{{ x }}", "operator": "Equals", "value": "y"}]}}}]);
    assert!(time(cluster_policy("loop", "Enforce", rules), pod("a", "b", "c")) < limit);

    // Nested foreach over a long list: bounded work.
    let containers: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "b"}, "spec": {"containers": containers}});
    let inner = json!({"list": "request.object.spec.containers", "deny": {"conditions": [{"key": "{{ element.name }}", "operator": "Equals", "value": "none"}]}});
    let rules = json!([{"name": "nested", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "validate": {"foreach": [{"list": "request.object.spec.containers", "foreach": [inner]}]}}]);
    assert!(time(cluster_policy("nested", "Enforce", rules), object) < limit);

    // Deep JMESPath, a huge regex and a doubling expression.
    let deep = format!("{{{{ {}@{} }}}}", "[".repeat(3000), "]".repeat(3000));
    let regex = format!("{{{{ regex_match('{}', 'a') }}}}", "(a|b)*".repeat(2000));
    let doubling = format!(
        "{{{{ to_string({}) }}}}",
        (0..12).fold("@".to_string(), |e, _| format!("[{e},{e}]"))
    );
    for key in [deep, regex, doubling] {
        let rules = json!([{"name": "jp", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"deny": {"conditions": [{"key": key, "operator": "Equals", "value": "x"}]}}}]);
        assert!(time(cluster_policy("jp", "Enforce", rules), pod("a", "b", "c")) < limit);
    }
}

fn statuses(set: &PolicySet, object: Value) -> Vec<(String, RuleStatus)> {
    set.evaluate(&Request::create(object))
        .into_iter()
        .map(|r| (r.rule, r.status))
        .collect()
}

fn pod_rule(name: &str, extra: Value) -> Value {
    let mut rule = json!({"name": name, "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}});
    if let (Value::Object(rule), Value::Object(extra)) = (&mut rule, extra) {
        rule.extend(extra);
    }
    rule
}

#[test]
fn context_entries_load_only_when_a_rule_reads_them() {
    // `broken` fails to evaluate, but nothing reads it: Kyverno loads entries lazily.
    let rule = pod_rule(
        "lazy",
        json!({"context": [
            {"name": "broken", "variable": {"jmesPath": "request.object.metadata.missing.field"}},
            {"name": "image", "variable": {"jmesPath": "request.object.spec.containers[0].image"}}],
          "validate": {"deny": {"conditions": {"any": [
            {"key": "{{ image }}", "operator": "Equals", "value": "nginx:latest"}]}}}}),
    );
    let (set, errors) = PolicySet::from_objects(&[cluster_policy("lazy", "Audit", json!([rule]))]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        statuses(&set, pod("a", "default", "nginx:latest")),
        [("lazy".to_string(), RuleStatus::Fail)]
    );
    assert_eq!(
        statuses(&set, pod("a", "default", "nginx:1.27")),
        [("lazy".to_string(), RuleStatus::Pass)]
    );
    // Reading the broken entry is an error.
    let reads_broken = pod_rule(
        "reads-broken",
        json!({"context": [{"name": "broken", "variable": {"jmesPath": "request.object.metadata.missing.field"}}],
               "validate": {"deny": {"conditions": {"any": [
                 {"key": "{{ broken }}", "operator": "Equals", "value": "x"}]}}}}),
    );
    let (set, _) =
        PolicySet::from_objects(&[cluster_policy("broken", "Audit", json!([reads_broken]))]);
    assert_eq!(
        statuses(&set, pod("a", "default", "nginx")),
        [("reads-broken".to_string(), RuleStatus::Error)]
    );
}

#[test]
fn pattern_references_compare_with_other_pattern_values() {
    let rule = pod_rule(
        "requests-below-limits",
        json!({"validate": {"pattern": {"spec": {"containers": [{"resources": {
            "requests": {"memory": "$(<=./../../limits/memory)"},
            "limits": {"memory": "2Gi"}}}]}}}}),
    );
    let (set, errors) = PolicySet::from_objects(&[cluster_policy("refs", "Audit", json!([rule]))]);
    assert!(errors.is_empty(), "{errors:?}");
    let with = |request: &str, limit: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "x", "resources": {
                 "requests": {"memory": request}, "limits": {"memory": limit}}}]}})
    };
    // The reference reads the pattern (not the object): requests must be `<=2Gi`.
    let got = statuses(&set, with("1Gi", "2Gi"));
    assert_eq!(got[0].1, RuleStatus::Pass, "{got:?}");
    let got = statuses(&set, with("3Gi", "2Gi"));
    assert_eq!(got[0].1, RuleStatus::Fail, "{got:?}");
}

#[test]
fn semver_operators_and_time_functions_in_rules() {
    let rule = pod_rule(
        "min-version",
        json!({"validate": {"deny": {"conditions": {"all": [
            {"key": "{{ request.object.metadata.labels.version }}", "operator": "LessThan", "value": "1.10.0"},
            {"key": "{{ time_before('2023-01-01T00:00:00Z', time_now_utc()) }}", "operator": "Equals", "value": true},
            {"key": "{{ semver_compare(request.object.metadata.labels.version, '<1.10.0') }}", "operator": "Equals", "value": true}]}}}}),
    );
    let (set, errors) = PolicySet::from_objects(&[cluster_policy("ver", "Audit", json!([rule]))]);
    assert!(errors.is_empty(), "{errors:?}");
    let labelled = |version: &str| {
        let mut p = pod("p", "default", "x");
        p["metadata"]["labels"] = json!({ "version": version });
        p
    };
    assert_eq!(statuses(&set, labelled("1.9.0"))[0].1, RuleStatus::Fail);
    assert_eq!(statuses(&set, labelled("1.10.0"))[0].1, RuleStatus::Pass);
}
