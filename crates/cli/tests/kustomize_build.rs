//! `ferroflux kustomize build`: prints the YAML stream on success, the reason on stderr and
//! exit code 1 on failure.

use assert_cmd::Command;

#[test]
fn builds_a_kustomization_and_reports_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "namePrefix: p-\nresources:\n- cm.yaml\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
    )
    .expect("write");
    let out = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["kustomize", "build", "--reorder", "none"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n  name: p-c\n"
    );

    std::fs::write(dir.path().join("cm.yaml"), "kind: [broken\n").expect("write");
    let out = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["kustomize", "build"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cm.yaml"), "{err}");
}
