//! Real clients against the registry on loopback: skopeo (a reference client, pushing an OCI
//! layout this test writes, in OCI and Docker v2 schema 2 form, and pulling it back) and
//! ferroflux's own OCI client (`push artifact`'s and OCIRepository's).

mod common;

use std::path::Path;
use std::process::Command;

use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::oci::{ANNOTATION_REVISION, OciAuth, OciClient, OciOptions, PushMetadata};
use serde_json::{Value, json};
use sha2::Digest as _;

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
    )
}

/// Writes an OCI image layout at `dir` with one image tagged `tag`: a config, two layers;
/// returns the manifest's digest.
fn write_layout(dir: &Path, tag: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout dir");
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(blobs.join(hex), bytes).expect("blob");
        digest
    };
    let layers: Vec<Vec<u8>> = vec![vec![7u8; 300_000], b"second layer".to_vec()];
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|l| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(l), "size": l.len()})
        })
        .collect();
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
        "diff_ids": layer_descriptors.iter().map(|d| d["digest"].clone()).collect::<Vec<_>>()}})
    .to_string();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put(config.as_bytes()), "size": config.len()},
        "layers": layer_descriptors,
    })
    .to_string();
    let digest = put(manifest.as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    digest
}

fn skopeo(policy: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(args)
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn skopeo_copies_an_image_in_and_back_out() {
    if let Err(e) = ferroflux_testpeers::find_program("skopeo", "skopeo") {
        return ferroflux_testpeers::skip(format!("skopeo: {e}"));
    }
    let served = common::serve();
    let work = served.dir.path();
    let policy = work.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    let digest = write_layout(&work.join("layout"), "1.0.0");
    let layout = format!("oci:{}:1.0.0", work.join("layout").display());
    let repository = format!("docker://{}/team-a/podinfo", served.host());
    let remote = |tag: &str| format!("{repository}:{tag}");
    let tls = "--dest-tls-verify=false";
    skopeo(
        &policy,
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            tls,
            &layout,
            &remote("1.0.0"),
        ],
    );
    // The same image as Docker v2 schema 2 (another manifest, the same layers: mounted).
    skopeo(
        &policy,
        &[
            "copy",
            "--quiet",
            tls,
            "--format",
            "v2s2",
            &layout,
            &remote("docker"),
        ],
    );

    let raw = |tag: &str| {
        skopeo(
            &policy,
            &["inspect", "--raw", "--tls-verify=false", &remote(tag)],
        )
    };
    let oci = raw("1.0.0");
    assert_eq!(sha256(&oci), digest, "the manifest is stored byte for byte");
    let docker: Value = serde_json::from_slice(&raw("docker")).expect("manifest JSON");
    assert_eq!(
        docker["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let tags: Value = serde_json::from_slice(&skopeo(
        &policy,
        &["list-tags", "--tls-verify=false", &repository],
    ))
    .expect("tags JSON");
    assert_eq!(tags["Tags"], json!(["1.0.0", "docker"]));

    let back = format!("oci:{}:1.0.0", work.join("back").display());
    let from = "--src-tls-verify=false";
    skopeo(
        &policy,
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            from,
            &remote("1.0.0"),
            &back,
        ],
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(work.join("back/index.json")).expect("index"))
            .expect("index JSON");
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    let big_layer = sha256(&vec![7u8; 300_000]);
    let pulled = std::fs::read(
        work.join("back/blobs/sha256")
            .join(big_layer.trim_start_matches("sha256:")),
    )
    .expect("the layer came back");
    assert_eq!(pulled, vec![7u8; 300_000]);

    skopeo(
        &policy,
        &["delete", "--tls-verify=false", &remote("docker")],
    );
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &remote("docker")])
        .output()
        .expect("skopeo runs");
    assert!(!out.status.success(), "the deleted manifest is gone");
}

#[test]
fn ferroflux_oci_client_pushes_and_pulls_a_flux_artifact() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let served = common::serve();
    let content = served.dir.path().join("content");
    std::fs::create_dir_all(content.join("apps")).expect("content dir");
    std::fs::write(content.join("apps/podinfo.yaml"), "kind: Deployment\n").expect("file");
    let client = OciClient::new(&OciOptions {
        auth: OciAuth::Anonymous,
        insecure: true,
        max_layer_size: None,
        ca_certs: Vec::new(),
    })
    .expect("client");
    let url = format!("oci://{}/team-a/manifests:6.5.0", served.host());
    let metadata = PushMetadata {
        source: "https://example.invalid/fleet.git".into(),
        revision: "main@sha1:1234".into(),
        created: None,
        annotations: Default::default(),
    };
    let pushed = served
        .runtime
        .block_on(client.push_dir(&url, &content, &IgnoreRules::none(), &metadata))
        .expect("push");
    let target = served.dir.path().join("pulled");
    let (pulled, summary) = served
        .runtime
        .block_on(client.pull_to_dir(&url, &target, &ExtractOptions::default()))
        .expect("pull");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.annotations[ANNOTATION_REVISION], "main@sha1:1234");
    assert_eq!(summary.files, 1);
    assert_eq!(
        std::fs::read_to_string(target.join("apps/podinfo.yaml")).expect("pulled file"),
        "kind: Deployment\n"
    );
    let tags = served
        .runtime
        .block_on(client.list_tags(&url))
        .expect("tags");
    assert_eq!(tags, ["6.5.0"]);
}
