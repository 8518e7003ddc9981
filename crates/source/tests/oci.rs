//! Flux OCI artifacts and cosign signatures against Debian's `docker-registry`.

mod common;

use std::collections::BTreeMap;

use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::oci::cosign::{self, CosignError, PublicKeys, SigningKey};
use ferroflux_source::oci::{
    self, ANNOTATION_CREATED, ANNOTATION_REVISION, ANNOTATION_SOURCE, FLUX_CONFIG_MEDIA_TYPE,
    FLUX_CONTENT_MEDIA_TYPE, OciAuth, OciClient, OciError, OciOptions, OciRef, PushMetadata,
};
use ferroflux_testpeers::{Credentials, Registry, require};

fn insecure(auth: OciAuth) -> OciClient {
    OciClient::new(&OciOptions {
        auth,
        insecure: true,
        max_layer_size: None,
        ca_certs: Vec::new(),
    })
    .expect("client")
}

fn meta(revision: &str) -> PushMetadata {
    PushMetadata {
        source: "https://github.com/example/fleet".into(),
        revision: revision.into(),
        created: None,
        annotations: BTreeMap::new(),
    }
}

fn manifests_dir(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_tree(
        dir.path(),
        &[
            (
                "app/deployment.yaml",
                &format!("kind: Deployment\nimage: app:{version}\n"),
            ),
            ("app/kustomization.yaml", "resources: [deployment.yaml]\n"),
        ],
    );
    dir
}

/// Pushes the manifests of `version` ([`manifests_dir`]) to `url` with `version` as revision.
async fn push_version(
    client: &OciClient,
    url: &str,
    version: &str,
) -> Result<oci::Pushed, OciError> {
    let dir = manifests_dir(version);
    client
        .push_dir(url, dir.path(), &IgnoreRules::none(), &meta(version))
        .await
}

#[tokio::test]
async fn push_tag_list_pull_round_trip_in_fluxs_format() {
    common::init_tls();
    let registry = require!(Registry::start(None));
    let client = insecure(OciAuth::Anonymous);
    let url = format!("oci://{}/team-a/podinfo-manifests:6.5.0", registry.host());
    let src = manifests_dir("6.5.0");
    let pushed = client
        .push_dir(
            &url,
            src.path(),
            &IgnoreRules::flux_defaults(),
            &meta("main@sha1:abc"),
        )
        .await
        .expect("push");
    assert!(pushed.digest.starts_with("sha256:"));

    // The manifest on the registry is Flux's format, read back over plain HTTP.
    let raw: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!(
            "http://{}/v2/team-a/podinfo-manifests/manifests/6.5.0",
            registry.host()
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("GET manifest")
        .json()
        .await
        .expect("json");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(raw["config"]["mediaType"], FLUX_CONFIG_MEDIA_TYPE);
    assert_eq!(raw["layers"][0]["mediaType"], FLUX_CONTENT_MEDIA_TYPE);
    assert_eq!(raw["layers"][0]["digest"], pushed.layer_digest.as_str());
    assert_eq!(
        raw["annotations"][ANNOTATION_SOURCE],
        "https://github.com/example/fleet"
    );
    assert_eq!(raw["annotations"][ANNOTATION_REVISION], "main@sha1:abc");
    let created = raw["annotations"][ANNOTATION_CREATED]
        .as_str()
        .expect("created");
    assert!(created.parse::<jiff::Timestamp>().is_ok(), "{created}");

    let digest = client.tag(&url, "latest").await.expect("tag");
    assert_eq!(digest, pushed.digest);
    let repo = format!("oci://{}/team-a/podinfo-manifests", registry.host());
    let mut tags = client.list_tags(&repo).await.expect("list");
    tags.sort();
    assert_eq!(tags, ["6.5.0", "latest"]);
    assert_eq!(
        client
            .digest(&format!("{repo}:latest"))
            .await
            .expect("digest"),
        pushed.digest
    );

    let out = tempfile::tempdir().expect("tempdir");
    let (pulled, summary) = client
        .pull_to_dir(
            &format!("{repo}:latest"),
            &out.path().join("x"),
            &ExtractOptions::default(),
        )
        .await
        .expect("pull");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.annotations[ANNOTATION_REVISION], "main@sha1:abc");
    assert_eq!(summary.files, 2);
    assert_eq!(
        std::fs::read_to_string(out.path().join("x/app/deployment.yaml")).expect("read"),
        "kind: Deployment\nimage: app:6.5.0\n"
    );

    let by_digest = client
        .pull(&format!("{repo}@{}", pushed.digest), None)
        .await
        .expect("pull by digest");
    assert_eq!(
        ferroflux_source::sha256_digest(&by_digest.layer),
        pushed.layer_digest
    );

    let err = client
        .pull(&format!("{repo}:9.9.9"), None)
        .await
        .expect_err("missing tag");
    assert!(matches!(err, OciError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn semver_picks_highest_stable_and_a_new_release_is_picked_up() {
    common::init_tls();
    let registry = require!(Registry::start(None));
    let client = insecure(OciAuth::Anonymous);
    let repo = format!("oci://{}/team-a/app", registry.host());
    for v in ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"] {
        push_version(&client, &format!("{repo}:{v}"), v)
            .await
            .expect("push");
    }
    let range = OciRef {
        semver: Some(">=1.0.0".into()),
        ..OciRef::default()
    };
    let resolved = client.resolve(&repo, &range).await.expect("resolve");
    assert_eq!(resolved.tag.as_deref(), Some("1.2.0"));
    let digest_120 = client
        .digest(&format!("{repo}:1.2.0"))
        .await
        .expect("digest");
    assert_eq!(resolved.digest, digest_120);
    assert_eq!(resolved.revision, format!("1.2.0@{digest_120}"));

    push_version(&client, &format!("{repo}:1.3.0"), "1.3.0")
        .await
        .expect("push 1.3.0");
    let resolved = client.resolve(&repo, &range).await.expect("resolve");
    assert_eq!(resolved.tag.as_deref(), Some("1.3.0"));

    let none = OciRef {
        semver: Some(">=5".into()),
        ..OciRef::default()
    };
    let err = client.resolve(&repo, &none).await.expect_err("no match");
    assert!(matches!(err, OciError::NoSemverMatch { .. }), "{err}");

    let by_digest = OciRef {
        digest: Some(digest_120.clone()),
        tag: Some("0.9.0".into()),
        ..OciRef::default()
    };
    let resolved = client
        .resolve(&repo, &by_digest)
        .await
        .expect("digest wins");
    assert_eq!(resolved.revision, digest_120);
}

#[tokio::test]
async fn tag_listing_follows_pagination() {
    common::init_tls();
    let registry = require!(Registry::start(None));
    let client = insecure(OciAuth::Anonymous);
    let repo = format!("oci://{}/team-a/many", registry.host());
    push_version(&client, &format!("{repo}:t000"), "0")
        .await
        .expect("push");
    // More tags than one page (100) of the registry's tag list.
    for i in 1..=130 {
        client
            .tag(&format!("{repo}:t000"), &format!("t{i:03}"))
            .await
            .expect("tag");
    }
    let tags = client.list_tags(&repo).await.expect("list");
    assert_eq!(tags.len(), 131);
    let mut sorted = tags.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 131, "no duplicates across pages");
}

#[tokio::test]
async fn basic_auth_registry_with_dockerconfigjson() {
    common::init_tls();
    let creds = Credentials::generate();
    let registry = require!(Registry::start(Some(creds.clone())));
    let url = format!("oci://{}/team-b/app:1.0.0", registry.host());
    let src = manifests_dir("1.0.0");

    let anonymous = insecure(OciAuth::Anonymous);
    let err = anonymous
        .push_dir(&url, src.path(), &IgnoreRules::none(), &meta("1.0.0"))
        .await
        .expect_err("anonymous push refused");
    assert!(matches!(err, OciError::Auth { .. }), "{err}");

    let config = serde_json::json!({
        "auths": { registry.host(): { "username": creds.username, "password": creds.password } }
    })
    .to_string();
    let auth =
        oci::auth_from_dockerconfigjson(config.as_bytes(), &registry.host()).expect("config");
    let client = insecure(auth);
    let pushed = client
        .push_dir(&url, src.path(), &IgnoreRules::none(), &meta("1.0.0"))
        .await
        .expect("push with credentials");
    let pulled = client
        .pull(&url, None)
        .await
        .expect("pull with credentials");
    assert_eq!(pulled.digest, pushed.digest);
    let tags = client
        .list_tags(&format!("oci://{}/team-b/app", registry.host()))
        .await
        .expect("list");
    assert_eq!(tags, ["1.0.0"]);

    let wrong = format!("{}-wrong", creds.password);
    let bad = insecure(OciAuth::Basic {
        username: creds.username.clone(),
        password: wrong.clone(),
    });
    let err = bad.pull(&url, None).await.expect_err("wrong password");
    eprintln!("wrong-credential error as users see it: {err}");
    assert!(matches!(err, OciError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains(&wrong), "secret leaked: {err}");
}

#[tokio::test]
async fn cosign_signed_verifies_unsigned_and_tampered_do_not() {
    common::init_tls();
    let registry = require!(Registry::start(None));
    let client = insecure(OciAuth::Anonymous);
    let repo = format!("oci://{}/team-a/signed", registry.host());
    let key = SigningKey::from_slice(&seed_bytes()).expect("scalar");
    let pem = {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem")
    };
    let keys = PublicKeys::from_pems([("cosign.pub", pem.as_str())]).expect("keys");

    let signed = push_version(&client, &format!("{repo}:1.0.0"), "1.0.0")
        .await
        .expect("push");
    cosign::sign(&client, &repo, &signed.digest, &key)
        .await
        .expect("sign");
    let verified = cosign::verify(&client, &repo, &signed.digest, &keys)
        .await
        .expect("signed verifies");
    assert_eq!(verified.key, "cosign.pub");
    let sig_tags = client.list_tags(&repo).await.expect("list");
    assert!(
        sig_tags.contains(&cosign::signature_tag(&signed.digest)),
        "{sig_tags:?}"
    );

    let unsigned = push_version(&client, &format!("{repo}:1.1.0"), "1.1.0")
        .await
        .expect("push");
    let err = cosign::verify(&client, &repo, &unsigned.digest, &keys)
        .await
        .expect_err("unsigned");
    assert!(matches!(err, CosignError::NoSignature { .. }), "{err}");

    // Tampered: the signature made for 1.0.0's digest, placed under 1.2.0's signature tag.
    let tampered = push_version(&client, &format!("{repo}:1.2.0"), "1.2.0")
        .await
        .expect("push");
    let payload = cosign::simple_signing_payload(
        &format!("{}/team-a/signed", registry.host()),
        &signed.digest,
    );
    let sig_b64 = {
        use base64::Engine as _;
        use p256::ecdsa::signature::Signer;
        let sig: p256::ecdsa::DerSignature = key.sign(&payload);
        base64::engine::general_purpose::STANDARD.encode(sig.as_bytes())
    };
    cosign::push_signature_layer(&client, &repo, &tampered.digest, payload, &sig_b64)
        .await
        .expect("push copied signature");
    let err = cosign::verify(&client, &repo, &tampered.digest, &keys)
        .await
        .expect_err("tampered");
    assert!(matches!(err, CosignError::Invalid { .. }), "{err}");
    assert!(
        err.to_string().contains(&signed.digest),
        "names the digest it was made for: {err}"
    );

    // A different key does not verify the genuine signature either.
    let other = SigningKey::from_slice(&[9u8; 32]).expect("scalar");
    let other_pem = {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        other
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem")
    };
    let other_keys = PublicKeys::from_pems([("other.pub", other_pem.as_str())]).expect("keys");
    let err = cosign::verify(&client, &repo, &signed.digest, &other_keys)
        .await
        .expect_err("wrong key");
    assert!(matches!(err, CosignError::Invalid { .. }), "{err}");
}

/// A key scalar derived from the test's process and time, so each run signs with a new key.
fn seed_bytes() -> [u8; 32] {
    let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    use sha2::Digest as _;
    let mut out = [0u8; 32];
    out.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes()));
    out[0] &= 0x7f; // stay below the curve order
    out
}

#[tokio::test]
async fn tls_registry_needs_its_ca_certificate() {
    common::init_tls();
    let registry = require!(Registry::start_tls(None));
    let ca = registry.ca_pem().expect("a TLS registry has a certificate");
    let url = format!("oci://{}/team-a/tls:1.0.0", registry.host());
    let trusted = OciClient::new(&OciOptions {
        ca_certs: vec![ca.as_bytes().to_vec()],
        ..OciOptions::default()
    })
    .expect("client");
    let pushed = push_version(&trusted, &url, "1.0.0")
        .await
        .expect("push over TLS with the CA");
    assert_eq!(
        trusted.pull(&url, None).await.expect("pull").digest,
        pushed.digest
    );

    let untrusted = OciClient::new(&OciOptions::default()).expect("client");
    let err = untrusted.pull(&url, None).await.expect_err("unknown CA");
    eprintln!("untrusted TLS error as users see it: {err}");
    assert!(matches!(err, OciError::Registry { .. }), "{err}");

    let err = OciClient::new(&OciOptions {
        ca_certs: vec![b"not a certificate".to_vec()],
        ..OciOptions::default()
    });
    assert!(
        err.is_err(),
        "a bad CA must be an error, not a silent default client"
    );
}

#[tokio::test]
async fn helm_chart_from_an_oci_repository_by_semver() {
    use ferroflux_source::oci::helm::{
        HELM_CHART_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE, version_to_tag,
    };
    common::init_tls();
    let registry = require!(Registry::start(None));
    let client = insecure(OciAuth::Anonymous);
    let repo = format!("oci://{}/charts/podinfo", registry.host());
    for v in ["0.9.0", "1.0.0", "1.2.0+build.7", "2.0.0-rc.1"] {
        let chart = tempfile::tempdir().expect("tempdir");
        common::write_tree(
            chart.path(),
            &[(
                "podinfo/Chart.yaml",
                &format!("apiVersion: v2\nname: podinfo\nversion: {v}\n"),
            )],
        );
        let mut tgz = Vec::new();
        ferroflux_source::artifact::pack_dir(chart.path(), &IgnoreRules::none(), &mut tgz)
            .expect("pack");
        let config =
            serde_json::json!({"apiVersion": "v2", "name": "podinfo", "version": v}).to_string();
        client
            .push_layers(
                &format!("{repo}:{}", version_to_tag(v)),
                HELM_CONFIG_MEDIA_TYPE,
                config.into_bytes(),
                vec![(HELM_CHART_MEDIA_TYPE.to_string(), tgz)],
                BTreeMap::new(),
            )
            .await
            .expect("push chart");
    }
    let (version, pulled) = client
        .pull_helm_chart(&repo, ">=1.0.0")
        .await
        .expect("pull chart");
    assert_eq!(version, "1.2.0+build.7");
    assert_eq!(pulled.media_type, HELM_CHART_MEDIA_TYPE);
    let out = tempfile::tempdir().expect("tempdir");
    ferroflux_source::artifact::extract_tar_gz(
        &pulled.layer[..],
        out.path(),
        &ExtractOptions::default(),
    )
    .expect("extract chart");
    assert!(
        std::fs::read_to_string(out.path().join("podinfo/Chart.yaml"))
            .expect("Chart.yaml")
            .contains("version: 1.2.0+build.7")
    );
    let err = client
        .pull_helm_chart(&repo, ">=3")
        .await
        .expect_err("no match");
    assert!(matches!(err, OciError::NoSemverMatch { .. }), "{err}");
}
