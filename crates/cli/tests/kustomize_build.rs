//! `ferroflux kustomize build`: prints the YAML stream on success, the reason on stderr and
//! exit code 1 on failure.

mod common;

use assert_cmd::Command;

#[test]
fn builds_a_kustomization_and_reports_errors() {
    let dir = common::dir_with(&[
        (
            "kustomization.yaml",
            "namePrefix: p-\nresources:\n- cm.yaml\n",
        ),
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
        ),
    ]);
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

#[test]
fn an_alias_bomb_fails_fast_with_go_yamls_message() {
    let dir = common::dir_with(&[
        ("kustomization.yaml", "resources:\n- bomb.yaml\n"),
        (
            "bomb.yaml",
            include_str!("../../gocompat/testdata/alias-bomb.yaml"),
        ),
    ]);
    let start = std::time::Instant::now();
    let out = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["kustomize", "build"])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("runs");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bomb.yaml"), "{err}");
    assert!(
        err.contains("yaml: document contains excessive aliasing"),
        "{err}"
    );
}
