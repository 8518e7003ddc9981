//! A reader that stops early (`ferroflux install --export | head`) ends a printing command
//! quietly: exit code 0, nothing on stderr, no panic.

mod common;

use std::process::{Command, Stdio};

/// Runs `ferroflux args` with a stdout pipe whose reading end is closed before the command
/// writes, as `head` closes it; returns the exit code and stderr.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferroflux"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferroflux starts");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("ferroflux ends");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn install_export_into_a_closed_pipe_exits_quietly() {
    let (code, stderr) = with_stdout_closed(&["install", "--export"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn kustomize_build_into_a_closed_pipe_exits_quietly() {
    let dir = common::dir_with(&[
        ("kustomization.yaml", "resources:\n- cm.yaml\n"),
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        ),
    ]);
    let path = dir.path().to_str().expect("UTF-8 temp path");
    let (code, stderr) = with_stdout_closed(&["kustomize", "build", path]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn version_and_validate_into_a_closed_pipe_exit_quietly() {
    let dir = common::dir_with(&[(
        "repo.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n\
         metadata: {name: a, namespace: b}\n\
         spec: {interval: 1m, url: https://example.com/repo}\n",
    )]);
    let path = dir.path().to_str().expect("UTF-8 temp path");
    for args in [vec!["version"], vec!["validate", path]] {
        let (code, stderr) = with_stdout_closed(&args);
        assert_eq!(code, Some(0), "{args:?} stderr: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
