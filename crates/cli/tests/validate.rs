//! `ferroflux validate` reports what the API server and kustomize would refuse, in their words,
//! and nothing else: fleets shaped like Flux's public examples (`tests/validate/fleet`,
//! `tests/validate/tenancy`) pass, each class of mistake in `tests/validate/broken` is caught,
//! and `ferroflux apiserver` (or `ferroflux kustomize build`) refuses the same objects.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const KUSTOMIZATION: &str = "\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  intervall: 10m
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-ours}
data: {anything: goes}
";

#[test]
fn a_misspelled_field_fails_with_its_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("apps.yaml");
    std::fs::write(&file, KUSTOMIZATION).expect("write");
    let output = run_validate(&file);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Kustomization apps): unknown field \"spec.intervall\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("Kustomization apps): spec.interval: Required value"),
        "{stdout}"
    );
}

#[test]
fn a_valid_directory_passes_and_other_kinds_are_skipped() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("apps.yaml"),
        KUSTOMIZATION.replace("intervall", "interval"),
    )
    .expect("write");
    std::fs::write(dir.path().join("README.md"), "not yaml: [").expect("write");
    let output = run_validate(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("✔ 1 object(s) valid, 1 of other kinds skipped"),
        "{stdout}"
    );
}

#[test]
fn malformed_yaml_is_reported_with_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: [unclosed\n").expect("write");
    let output = run_validate(&file);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("broken.yaml: not valid YAML"), "{stdout}");
}

#[test]
fn an_alias_bomb_is_refused_with_go_yamls_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bomb.yaml");
    std::fs::write(
        &file,
        include_str!("../../gocompat/testdata/alias-bomb.yaml"),
    )
    .expect("write");
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("validate")
        .arg(&file)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("bomb.yaml: not valid YAML: yaml: document contains excessive aliasing"),
        "{stdout}"
    );
}

#[test]
fn version_prints_the_client_version() {
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("version")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        format!("ferroflux: v{}", env!("CARGO_PKG_VERSION"))
    );
}

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/validate")
        .join(name)
}

/// `ferroflux validate PATH`.
fn run_validate(path: &std::path::Path) -> std::process::Output {
    Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("validate")
        .arg(path)
        .output()
        .expect("runs")
}

/// Runs `ferroflux validate` in the fixtures folder (so messages name relative paths).
fn validate(paths: &[&str]) -> (Option<i32>, String) {
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .current_dir(fixtures(""))
        .arg("validate")
        .args(paths)
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn fleets_shaped_like_fluxs_examples_have_no_problems() {
    // HelmRelease strategies, drift detection and remediation, ArtifactGenerator, overlays whose
    // kustomization files list partial HelmRelease patches (strategic merge and JSON 6902),
    // production and staging defining the same objects.
    let (code, stdout) = validate(&["fleet"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout.trim(),
        "✔ 22 object(s) valid, 6 of other kinds skipped"
    );
    // Tenants with RBAC, Kyverno policies (skipped: their own CRDs define them), an
    // OCIRepository of an older served version, per-environment Kustomization patches.
    let (code, stdout) = validate(&["tenancy"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout.trim(),
        "✔ 16 object(s) valid, 5 of other kinds skipped"
    );
}

/// The problems validate reports for the broken fixtures, each with the words the API server
/// (or kustomize) uses for it.
const BROKEN: &[(&str, &str)] = &[
    (
        "broken/objects/interval.yaml (document 1, Kustomization apps)",
        "spec.interval: Invalid value: \"10 minutes\": spec.interval in body should match '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'",
    ),
    (
        "broken/objects/name.yaml (document 1, GitRepository My_App)",
        "metadata.name: Invalid value: \"My_App\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters",
    ),
    (
        "broken/objects/kind.yaml (document 1, Kustomisation infra)",
        "no matches for kind \"Kustomisation\" in version \"kustomize.toolkit.fluxcd.io/v1\" (did you mean \"Kustomization\"?)",
    ),
    (
        "broken/objects/version.yaml (document 1, Kustomization legacy)",
        "no matches for kind \"Kustomization\" in version \"kustomize.toolkit.fluxcd.io/v1beta1\" (served: kustomize.toolkit.fluxcd.io/v1)",
    ),
    (
        "broken/objects/field.yaml (document 1, HelmRelease web)",
        "unknown field \"spec.valuez\"",
    ),
    (
        "broken/objects/rules.yaml (document 1, HelmRelease two-charts)",
        "either chart or chartRef must be set",
    ),
    (
        "broken/duplicates/more-repositories.yaml (document 1, HelmRepository stable)",
        "namespace transformation produces ID conflict: HelmRepository.source.toolkit.fluxcd.io stable in namespace charts, first defined in broken/duplicates/repositories.yaml (document 1, HelmRepository stable)",
    ),
    (
        "broken/duplicates/repositories.yaml (document 3, HelmRepository edge)",
        "may not add resource with an already registered id: HelmRepository.source.toolkit.fluxcd.io edge in namespace charts, first defined in broken/duplicates/repositories.yaml (document 2, HelmRepository edge)",
    ),
    (
        "broken/overlay/kustomization.yaml",
        "invalid Kustomization: json: unknown field \"commonLabel\"",
    ),
    (
        "broken/overlay/values.yaml (document 1, patch of HelmRelease web)",
        "unknown field \"spec.upgrade.remediaton\"",
    ),
    (
        "broken/overlay/operations.yaml (document 1, JSON 6902 patch)",
        "operation 2: op: Unsupported value: \"rplace\"",
    ),
    (
        "broken/overlay/operations.yaml (document 1, JSON 6902 patch)",
        "operation 2: path: Invalid value: \"spec/timeout\": a JSON pointer must be empty or start with '/'",
    ),
];

#[test]
fn each_class_of_mistake_is_caught_with_the_api_servers_words() {
    let (code, stdout) = validate(&["broken"]);
    assert_eq!(code, Some(1), "{stdout}");
    for (place, problem) in BROKEN {
        let start = format!("✗ {place}: ");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&start) && l.contains(problem)),
            "missing: {start}{problem}\n{stdout}"
        );
    }
    // Nothing else: the partial patch lacks required fields, the overlay's base is valid.
    let problems = stdout
        .lines()
        .filter(|l| l.starts_with("✗ broken/"))
        .count();
    assert_eq!(problems, BROKEN.len(), "{stdout}");
    assert!(
        stdout.ends_with(&format!("✗ {} problem(s) in 13 object(s)\n", BROKEN.len())),
        "{stdout}"
    );
}

#[test]
fn the_api_server_refuses_what_validate_flags() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, kubeconfig) = common::start_apiserver(dir.path());
    // Every CRD ferroflux serves, as `ferroflux up` installs them.
    let crds = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": ferroflux_api::crds::all(),
    });
    common::kubectl_ok(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(crds.to_string().as_bytes()),
    );
    for namespace in ["flux-system", "web"] {
        common::kubectl_ok(&kubeconfig, &["create", "namespace", namespace], None);
    }
    let broken = fixtures("broken");
    let (_, flagged) = validate(&["broken"]);
    // Whole objects: kubectl apply (strict field validation, as by default) is refused with
    // the words validate printed.
    for (file, refusal) in [
        (
            "objects/interval.yaml",
            "spec.interval in body should match",
        ),
        (
            "objects/name.yaml",
            "metadata.name: Invalid value: \"My_App\": a lowercase RFC 1123 subdomain",
        ),
        (
            "objects/kind.yaml",
            "no matches for kind \"Kustomisation\" in version \"kustomize.toolkit.fluxcd.io/v1\"",
        ),
        (
            "objects/version.yaml",
            "no matches for kind \"Kustomization\" in version \"kustomize.toolkit.fluxcd.io/v1beta1\"",
        ),
        ("objects/field.yaml", "unknown field \"spec.valuez\""),
        ("objects/rules.yaml", "either chart or chartRef must be set"),
    ] {
        let path = broken.join(file);
        let output = common::kubectl(
            &kubeconfig,
            &["apply", "-f", path.to_str().expect("utf-8 path")],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file} was accepted");
        assert!(stderr.contains(refusal), "{file}: {stderr}");
        let said = flagged
            .lines()
            .any(|line| line.starts_with(&format!("✗ broken/{file} ")) && line.contains(refusal));
        assert!(
            said,
            "validate does not say {refusal:?} for {file}:\n{flagged}"
        );
    }
    // The patch file: the base applies, the patch with its unknown field is refused.
    let overlay = broken.join("overlay");
    let release = overlay.join("release.yaml");
    common::kubectl_ok(
        &kubeconfig,
        &["apply", "-f", release.to_str().expect("utf-8 path")],
        None,
    );
    // Applied server-side, the partial object merges into the stored one as the patch would.
    let patch = overlay.join("values.yaml");
    let output = common::kubectl(
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "overlay",
            "-f",
            patch.to_str().expect("utf-8 path"),
        ],
        None,
    );
    refused_alike(
        &output,
        "unknown field \"spec.upgrade.remediaton\"",
        &flagged,
        "✗ broken/overlay/values.yaml ",
    );
    // Duplicates never reach the API server: kustomize refuses to build the directory.
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["kustomize", "build"])
        .arg(broken.join("duplicates"))
        .output()
        .expect("runs");
    refused_alike(
        &output,
        "may not add resource with an already registered id",
        &flagged,
        "✗ broken/duplicates/",
    );
}

/// The real tool failed with `refusal`, and `validate` flagged the line starting with `flag`
/// for the same reason.
fn refused_alike(output: &std::process::Output, refusal: &str, flagged: &str, flag: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the real tool accepted it");
    assert!(stderr.contains(refusal), "{stderr}");
    assert!(
        flagged
            .lines()
            .any(|line| line.starts_with(flag) && line.contains(refusal)),
        "{flagged}"
    );
}
