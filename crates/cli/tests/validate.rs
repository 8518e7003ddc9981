//! `ferroflux validate` reports unknown fields with their path and passes valid manifests.

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
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Kustomization apps): unknown field \"spec.intervall\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("spec.interval: required field is missing"),
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
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("validate")
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("✔ 1 object(s) valid"), "{stdout}");
}

#[test]
fn malformed_yaml_is_reported_with_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: [unclosed\n").expect("write");
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
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
