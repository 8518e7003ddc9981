//! The OCI registry of `ferroflux up` (issue 19): its port is kept in `<data-dir>/ports.json`;
//! `push artifact` stores a Flux artifact there, `list artifacts` lists it, and an
//! OCIRepository reconciled by `up`'s source controller pulls it to Ready.

mod common;

use std::time::Duration;

use common::process::{ferroflux, wait_for};

const OCI_REPOSITORY: &str = r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests, namespace: flux-system}
spec:
  interval: 1m
  url: oci://REGISTRY/team-a/manifests
  ref: {tag: "1.0.0"}
  insecure: true
"#;

#[test]
fn up_serves_an_oci_registry_that_push_list_and_oci_repository_use() {
    let Some(up) = common::start_up() else { return };
    let ports: serde_json::Value = serde_json::from_slice(
        &std::fs::read(up.dir.path().join("data/ports.json")).expect("ports.json"),
    )
    .expect("ports.json is JSON");
    let port = ports["registry"]
        .as_u64()
        .expect("the registry's port is kept");
    for kept in ["artifacts", "git", "events"] {
        assert!(ports[kept].is_u64(), "{kept} is still kept: {ports}");
    }
    let registry = format!("127.0.0.1:{port}");
    let content = common::dir_with(&[("podinfo.yaml", "kind: ConfigMap\n")]);
    let url = format!("oci://{registry}/team-a/manifests:1.0.0");
    let path = format!("--path={}", content.path().display());
    let pushed = ferroflux(&[
        "push",
        "artifact",
        &url,
        &path,
        "--source=https://git.example/fleet",
        "--revision=main@sha1:0123",
        "--insecure-registry",
    ]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let listed = ferroflux(&[
        "list",
        "artifacts",
        &format!("oci://{registry}/team-a/manifests"),
        "--insecure-registry",
    ]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{registry}/team-a/manifests:1.0.0")))
        .unwrap_or_else(|| panic!("the pushed tag is listed: {stdout}"));
    assert!(row.contains("main@sha1:0123"), "{row}");

    let manifest = OCI_REPOSITORY.replace("REGISTRY", &registry);
    common::kubectl_ok(
        &up.kubeconfig,
        &["apply", "-f", "-"],
        Some(manifest.as_bytes()),
    );
    let ready = wait_for(Duration::from_secs(60), || {
        let obj = common::kubectl_json(
            &up.kubeconfig,
            &["get", "ocirepository", "manifests", "-n", "flux-system"],
        );
        let (status, message) = common::ready_condition(&obj);
        (status == "True").then_some(message)
    });
    let message = ready.expect("the OCIRepository becomes Ready from up's registry");
    assert!(message.contains("1.0.0"), "{message}");
}
