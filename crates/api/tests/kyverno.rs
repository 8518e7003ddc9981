//! Kyverno's ClusterPolicy and Policy as served: the names, scope and printer columns of
//! upstream's CRDs, only the fields `ferroflux-policy` evaluates (every upstream field we lack
//! is one refused on purpose), and on the real kube-apiserver: `kubectl get cpol` columns,
//! v2beta1 served, and a mutate rule or `admission: false` refused.
//! Skips, saying so, when `../shared`, python3 with PyYAML or the peers are absent; under
//! `CI=true` that fails.

mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ferroflux_api::crds;
use ferroflux_api::strict::{self, StrictError};
use ferroflux_testpeers::{KubeApiserver, peer_binary, require};
use serde_json::{Value, json};
use upstream::tools;

/// Upstream fields we do not serve, by path prefix, and why: each is a feature the engine
/// does not evaluate, so accepting the field would be a promise it cannot keep.
const REFUSED: &[(&str, &str)] = &[
    (".spec.applyRules", "every matching rule applies"),
    (".spec.emitWarning", "audit warnings are always returned"),
    (".spec.generateExisting", "generate"),
    (".spec.generateExistingOnPolicyUpdate", "generate"),
    (".spec.mutateExistingOnPolicyUpdate", "mutate"),
    (".spec.schemaValidation", "deprecated upstream, no effect"),
    (".spec.useServerSideApply", "generate/mutate"),
    (
        ".spec.validationFailureActionOverrides",
        "per-namespace actions not evaluated",
    ),
    (
        ".spec.webhookConfiguration",
        "one fixed webhook configuration",
    ),
    (".spec.webhookTimeoutSeconds", "one fixed webhook timeout"),
    (".spec.rules[].celPreconditions", "CEL"),
    (".spec.rules[].generate", "generate"),
    (".spec.rules[].mutate", "mutate"),
    (".spec.rules[].verifyImages", "verifyImages"),
    (".spec.rules[].imageExtractors", "verifyImages"),
    (".spec.rules[].reportProperties", "no policy reports"),
    (
        ".spec.rules[].skipBackgroundRequests",
        "no background requests",
    ),
    (".spec.rules[].context[].apiCall", "no API calls"),
    (".spec.rules[].context[].configMap", "no cluster lookups"),
    (
        ".spec.rules[].context[].globalReference",
        "no global context",
    ),
    (
        ".spec.rules[].context[].imageRegistry",
        "no registry lookups",
    ),
    (".spec.rules[].validate.cel", "CEL"),
    (".spec.rules[].validate.podSecurity", "podSecurity"),
    (".spec.rules[].validate.manifests", "signed manifests"),
    (".spec.rules[].validate.assert", "kyverno-json assertions"),
    (
        ".spec.rules[].validate.failureActionOverrides",
        "per-namespace actions not evaluated",
    ),
    (
        ".spec.rules[].validate.foreach[].context[].apiCall",
        "no API calls",
    ),
    (
        ".spec.rules[].validate.foreach[].context[].configMap",
        "no cluster lookups",
    ),
    (
        ".spec.rules[].validate.foreach[].context[].globalReference",
        "no global context",
    ),
    (
        ".spec.rules[].validate.foreach[].context[].imageRegistry",
        "no registry lookups",
    ),
    (".status.autogen", "autogen rules are computed, not stored"),
    (
        ".status.validatingadmissionpolicy",
        "no ValidatingAdmissionPolicy generation",
    ),
];

/// Upstream's v2beta1 types these as `any`/`all` condition objects; ours keep v1's free-form
/// schema for every served version (one schema, conversion `None`), which accepts those too.
const FREE_FORM_IN_OURS: &[&str] = &[
    ".spec.rules[].preconditions",
    ".spec.rules[].validate.deny.conditions",
];

/// Our Kyverno CRDs, one YAML document each.
fn write_ours(dir: &Path) -> PathBuf {
    let mut yaml = String::new();
    for crd in kyverno_crds() {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    let path = dir.join("kyverno.yaml");
    std::fs::write(&path, yaml).expect("the temp dir is writable");
    path
}

fn kyverno_crds() -> Vec<Value> {
    crds::all()
        .into_iter()
        .filter(|crd| crd.spec.group == "kyverno.io")
        .map(|crd| {
            let mut value = serde_json::to_value(crd).expect("a CRD is JSON");
            value["apiVersion"] = json!("apiextensions.k8s.io/v1");
            value["kind"] = json!("CustomResourceDefinition");
            value
        })
        .collect()
}

#[test]
fn every_missing_upstream_field_is_one_refused_on_purpose() {
    let dir = match tools() {
        Ok(dir) => dir,
        Err(reason) => return ferroflux_testpeers::skip(reason),
    };
    let temp = tempfile::tempdir().expect("a temp dir");
    let ours = write_ours(temp.path());
    let output = Command::new("python3")
        .arg(dir.join("compare.py"))
        .arg(&ours)
        .args(["--kinds", "ClusterPolicy,Policy", "--verbose"])
        .output()
        .expect("python3 ran a moment ago");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout.lines().filter(|l| !l.starts_with(' ')).collect();
    println!("{}", rows.join("\n"));
    assert_eq!(rows.len(), 5, "four kind/versions and a summary: {stdout}");
    let mut unexplained = Vec::new();
    for line in stdout.lines().map(str::trim) {
        if line.starts_with("type ") || line.starts_with("enum ") || line.contains("not served") {
            unexplained.push(line.to_string());
        }
        if let Some(path) = line.strip_prefix("missing ")
            && !REFUSED.iter().any(|(prefix, _)| under(path, prefix))
            && !FREE_FORM_IN_OURS.iter().any(|prefix| under(path, prefix))
        {
            unexplained.push(path.to_string());
        }
    }
    unexplained.sort();
    unexplained.dedup();
    assert!(
        unexplained.is_empty(),
        "upstream fields or values we lack without a reason: {unexplained:#?}"
    );
}

/// Whether `path` is `prefix` or a field below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[', '{']))
}

#[test]
fn names_scope_and_columns_are_upstreams() {
    let dir = match tools() {
        Ok(dir) => dir,
        Err(reason) => return ferroflux_testpeers::skip(reason),
    };
    for (file, ours) in [
        ("kyverno.io_clusterpolicies.yaml", "ClusterPolicy"),
        ("kyverno.io_policies.yaml", "Policy"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("the upstream CRD is readable");
        let upstream: Value = serde_saphyr::from_str(&text).expect("the upstream CRD is YAML");
        let mut ours = kyverno_crds()
            .into_iter()
            .find(|crd| crd["spec"]["names"]["kind"] == ours)
            .expect("served");
        // The API server defaults listKind to `<kind>List`; controller-gen writes it out.
        let list_kind = format!(
            "{}List",
            ours["spec"]["names"]["kind"].as_str().unwrap_or_default()
        );
        ours["spec"]["names"]["listKind"] = json!(list_kind);
        for field in ["names", "scope", "group"] {
            assert_eq!(
                ours["spec"][field], upstream["spec"][field],
                "{file}: {field}"
            );
        }
        for (mine, theirs) in ours["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(
                upstream["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
        {
            for field in [
                "name",
                "served",
                "storage",
                "additionalPrinterColumns",
                "subresources",
            ] {
                assert_eq!(mine[field], theirs[field], "{file}: {field}");
            }
        }
    }
}

fn policy(rule_extra: Value, spec_extra: Value) -> Value {
    let mut rule = json!({
        "name": "oci-url-allowlist",
        "match": {"any": [{"resources": {"kinds": ["OCIRepository"]}}]},
        "validate": {
            "message": "OCIRepository url must be under the platform registry",
            "pattern": {"spec": {"url": "oci://ghcr.io/acme-platform/*"}}
        }
    });
    merge(&mut rule, rule_extra);
    let mut spec = json!({"validationFailureAction": "Enforce", "rules": [rule]});
    merge(&mut spec, spec_extra);
    json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
           "metadata": {"name": "flux-source-allowlist"}, "spec": spec})
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

#[test]
fn strict_decoding_refuses_what_the_engine_does_not_evaluate() {
    assert_eq!(strict::check(&policy(json!({}), json!({}))), Ok(()));
    let mutate = json!({"mutate": {"patchStrategicMerge": {"metadata": {"labels": {"a": "b"}}}}});
    let errors = strict::check(&policy(mutate, json!({}))).expect_err("mutate is refused");
    assert!(
        errors.contains(&StrictError::UnknownField {
            path: "spec.rules[0].mutate".into()
        }),
        "{errors:?}"
    );
    let api_call = json!({"context": [{"name": "x", "apiCall": {"urlPath": "/api/v1/pods"}}]});
    let errors = strict::check(&policy(api_call, json!({}))).expect_err("apiCall is refused");
    assert!(
        errors.iter().any(|e| e.to_string().contains("apiCall")),
        "{errors:?}"
    );
    let mut namespaced = policy(json!({}), json!({}));
    namespaced["kind"] = json!("Policy");
    namespaced["apiVersion"] = json!("kyverno.io/v2beta1");
    namespaced["metadata"]["namespace"] = json!("team-a");
    assert_eq!(strict::check(&namespaced), Ok(()));
}

fn kubectl(kubectl: &Path, server: &KubeApiserver, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .expect("kubectl reads stdin");
    }
    child.wait_with_output().expect("kubectl finishes")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kubectl apply -f -` of `object`; the combined output and whether it succeeded.
fn apply(bin: &Path, server: &KubeApiserver, object: &Value) -> (bool, String) {
    let out = kubectl(
        bin,
        server,
        &["apply", "-f", "-"],
        Some(&object.to_string()),
    );
    (out.status.success(), text(&out))
}

#[test]
fn the_real_kube_apiserver_serves_them_as_kyverno_does() {
    let bin = match peer_binary("kubectl") {
        Ok(bin) => bin,
        Err(err) => return ferroflux_testpeers::skip(err),
    };
    let server = require!(KubeApiserver::start());
    for crd in kyverno_crds() {
        let (ok, out) = apply(&bin, &server, &crd);
        assert!(ok, "kube-apiserver refuses our CRD: {out}");
    }
    let established = kubectl(
        &bin,
        &server,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/clusterpolicies.kyverno.io",
            "crd/policies.kyverno.io",
        ],
        None,
    );
    assert!(established.status.success(), "{}", text(&established));
    let (ok, out) = apply_when_served(&bin, &server, &policy(json!({}), json!({})));
    assert!(ok, "{out}");

    let table = text(&kubectl(&bin, &server, &["get", "cpol"], None));
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "ADMISSION", "BACKGROUND", "READY", "AGE", "MESSAGE"],
        "{table}"
    );
    assert!(
        table.contains("flux-source-allowlist   true        true"),
        "defaults: {table}"
    );
    let wide = text(&kubectl(
        &bin,
        &server,
        &["get", "clusterpolicies.v2beta1.kyverno.io", "-o", "wide"],
        None,
    ));
    assert!(
        wide.contains("FAILURE POLICY") && wide.contains("VERIFY IMAGES"),
        "{wide}"
    );

    let mutate = json!({"mutate": {"patchStrategicMerge": {"metadata": {"labels": {"a": "b"}}}}});
    let (ok, out) = apply(&bin, &server, &policy(mutate, json!({})));
    assert!(
        !ok && out.contains("unknown field \"spec.rules[0].mutate\""),
        "{out}"
    );
    let (ok, out) = apply(
        &bin,
        &server,
        &policy(json!({}), json!({"admission": false})),
    );
    assert!(
        !ok && out.contains("admission: false is not supported"),
        "{out}"
    );

    let mut namespaced = policy(json!({}), json!({}));
    namespaced["kind"] = json!("Policy");
    namespaced["metadata"]["namespace"] = json!("default");
    let (ok, out) = apply(&bin, &server, &namespaced);
    assert!(ok, "{out}");
    let pols = text(&kubectl(
        &bin,
        &server,
        &["get", "pol", "-n", "default"],
        None,
    ));
    assert!(pols.contains("flux-source-allowlist"), "{pols}");
}

/// Applies `object`, retrying while discovery does not list the new kind yet.
fn apply_when_served(bin: &Path, server: &KubeApiserver, object: &Value) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = apply(bin, server, object);
        if ok || Instant::now() > deadline || !out.contains("resource mapping not found") {
            return (ok, out);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
