//! Interoperability with reference clients: a Flux artifact built by the shared reference
//! tool (`../shared/peers/make-oci-image.py`, the format `flux push artifact` writes) and
//! pushed by skopeo is pulled here; ours is read back by skopeo. Skips, with a message, when
//! `../shared`, python3 or skopeo is absent.

mod common;

use std::path::PathBuf;
use std::process::Command;

use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::oci::{
    ANNOTATION_REVISION, ANNOTATION_SOURCE, OciAuth, OciClient, OciOptions, PushMetadata,
};
use ferroflux_testpeers::{Registry, find_program, require};

fn shared_tool() -> Option<PathBuf> {
    let tool =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/make-oci-image.py");
    if tool.is_file() {
        Some(tool)
    } else {
        ferroflux_testpeers::skip(format!("{} is absent (no ../shared)", tool.display()));
        None
    }
}

/// Runs skopeo with `policy`, fails the test (with its stderr) unless it succeeds, and returns
/// its stdout.
fn skopeo(policy: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A work directory with a skopeo policy that accepts anything and a `content` tree of one
/// manifest; returns it with the policy's and the content's paths.
fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let work = tempfile::tempdir().expect("tempdir");
    let policy = work.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let content = work.path().join("content");
    common::write_tree(&content, &[("apps/podinfo.yaml", "kind: Deployment\n")]);
    (work, policy, content)
}

fn client() -> OciClient {
    common::init_tls();
    OciClient::new(&OciOptions {
        auth: OciAuth::Anonymous,
        insecure: true,
        max_layer_size: None,
        ca_certs: Vec::new(),
    })
    .expect("client")
}

#[tokio::test]
async fn flux_artifact_from_the_reference_tool_pulls_and_extracts() {
    let Some(tool) = shared_tool() else { return };
    let _skopeo = require!(find_program("skopeo", "skopeo"));
    let registry = require!(Registry::start(None));
    let (work, policy, content) = workspace();
    let out = Command::new("python3")
        .arg(&tool)
        .arg(work.path().join("layout"))
        .args([
            "--kind",
            "flux-artifact",
            "--tag",
            "6.5.0",
            "--revision",
            "main@sha1:1234",
        ])
        .arg("--path")
        .arg(&content)
        .output()
        .expect("run make-oci-image.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("digest line");
    let want_digest = line["digest"].as_str().expect("digest").to_string();

    let dest = format!(
        "docker://{}/team-a/podinfo-manifests:6.5.0",
        registry.host()
    );
    let layout = format!("oci:{}:6.5.0", work.path().join("layout").display());
    skopeo(
        &policy,
        &["copy", "--quiet", "--dest-tls-verify=false", &layout, &dest],
    );

    let url = format!("oci://{}/team-a/podinfo-manifests:6.5.0", registry.host());
    let target = work.path().join("pulled");
    let (pulled, summary) = client()
        .pull_to_dir(&url, &target, &ExtractOptions::default())
        .await
        .expect("pull the reference artifact");
    assert_eq!(pulled.digest, want_digest);
    assert_eq!(pulled.annotations[ANNOTATION_REVISION], "main@sha1:1234");
    assert!(pulled.annotations.contains_key(ANNOTATION_SOURCE));
    assert_eq!(summary.files, 1);
    assert_eq!(
        std::fs::read_to_string(target.join("apps/podinfo.yaml")).expect("read"),
        "kind: Deployment\n"
    );
}

#[tokio::test]
async fn our_artifact_reads_back_with_skopeo() {
    let _skopeo = require!(find_program("skopeo", "skopeo"));
    let registry = require!(Registry::start(None));
    let (work, policy, content) = workspace();
    let url = format!("oci://{}/team-a/ours:1.0.0", registry.host());
    let pushed = client()
        .push_dir(
            &url,
            &content,
            &IgnoreRules::none(),
            &PushMetadata {
                source: "https://example.invalid/fleet.git".into(),
                revision: "main@sha1:abcd".into(),
                ..PushMetadata::default()
            },
        )
        .await
        .expect("push");
    let src = format!("docker://{}/team-a/ours:1.0.0", registry.host());
    let out = skopeo(&policy, &["inspect", "--raw", "--tls-verify=false", &src]);
    assert_eq!(ferroflux_source::sha256_digest(&out), pushed.digest);
    let layout = format!("oci:{}:1.0.0", work.path().join("layout").display());
    skopeo(
        &policy,
        &["copy", "--quiet", "--src-tls-verify=false", &src, &layout],
    );
    let blob = work
        .path()
        .join("layout/blobs/sha256")
        .join(pushed.layer_digest.trim_start_matches("sha256:"));
    assert!(
        blob.is_file(),
        "skopeo copied the content layer with its digest verified"
    );
}
