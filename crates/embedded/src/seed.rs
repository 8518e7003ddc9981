//! `ferroflux up --example seed`: the seed article's platform on one machine (the bundled
//! `examples/seed`). Besides the fleet, `up` plays the parts the article leaves to the outside
//! world: the tenants' Git repositories (team-a's with `$imagepolicy` setters), the platform
//! registry holding team-a's manifests as a cosign-signed OCI artifact and podinfo's
//! `main-<sha>-<ts>` image tags, the `cosign-pub` and `slack-url` Secrets, and a Slack-shaped
//! receiver whose messages `up` prints.

use std::net::SocketAddr;
use std::path::Path;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use include_dir::{Dir, include_dir};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

use ferroflux_apply::manager::{ApplyOptions, ResourceManager};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::cosign::{self, SigningKey};
use ferroflux_source::oci::{OciClient, OciOptions, PushMetadata};

use crate::fleet::{self, Files};
use crate::{Error, Fleet, SourceServers};

/// The seed's platform repository (`examples/seed/fleet-infra`).
pub static SEED_FLEET: Dir<'_> =
    include_dir!("$CARGO_MANIFEST_DIR/../../examples/seed/fleet-infra");
/// team-a's repository (`examples/seed/team-a`): the manifests packaged as its OCI artifact,
/// and where the image automation pushes.
pub static SEED_TEAM_A: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/seed/team-a");
/// team-b's repository (`examples/seed/team-b`).
pub static SEED_TEAM_B: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../examples/seed/team-b");

/// The cluster whose entry point (`clusters/prod`) the seed's fleet holds.
pub const CLUSTER: &str = "prod";
/// The folder of team-a's repository packaged as the OCI artifact.
const TEAM_A_APPS: &str = "apps/team-a/";
/// Where team-a's artifact is pushed in `up`'s registry (the seed's
/// `ghcr.io/acme-platform/manifests/team-a`).
pub const TEAM_A_REPOSITORY: &str = "manifests/team-a";
/// The artifact's tag, which the OCIRepository's `semver: ">=1.0.0"` selects.
pub const TEAM_A_TAG: &str = "1.0.0";
/// podinfo's image repository in `up`'s registry.
pub const PODINFO_REPOSITORY: &str = "podinfo";
/// podinfo's tags, `main-<sha>-<ts>` as the seed's CI pushes them; the ImagePolicy picks the
/// highest `<ts>`, the last one. team-a's repository starts at the first.
pub const PODINFO_TAGS: [&str; 3] = [
    "main-3f8a2c1-1764979200",
    "main-9b1e4d7-1765065600",
    "main-c42f0a9-1765152000",
];
/// The `created` annotation of team-a's artifact: fixed, so that a restart pushes the same
/// digest again instead of moving the tag.
const ARTIFACT_CREATED: &str = "2026-01-01T00:00:00Z";
/// Slack messages the receiver keeps for `up` to print before it drops new ones.
const SLACK_QUEUE: usize = 64;
/// The largest Slack message the receiver reads.
const SLACK_BODY_LIMIT: usize = 64 * 1024;

/// The seed's repositories on the Git server: `fleet-infra` (with the bootstrap files of
/// `cluster`), `team-a` and `team-b`, unless they exist. team-a's files name podinfo's image in
/// `registry` (`HOST:PORT`).
pub fn write_repositories(
    servers: &SourceServers,
    registry: &str,
    cluster: &str,
) -> Result<Fleet, Error> {
    let url = format!("{}/fleet-infra.git", servers.git_url);
    let mut fleet_files = fleet::bundled_files(&SEED_FLEET);
    fleet_files.extend(fleet::bootstrap_files(cluster, &url));
    let (_, created) = fleet::ensure_repository(
        &servers.git_root,
        "fleet-infra",
        &fleet_files,
        "Add Flux sync manifests",
    )?;
    fleet::ensure_repository(
        &servers.git_root,
        "team-a",
        &team_a_files(registry),
        "Add podinfo",
    )?;
    fleet::ensure_repository(
        &servers.git_root,
        "team-b",
        &fleet::bundled_files(&SEED_TEAM_B),
        "Add podinfo",
    )?;
    Ok(Fleet { url, created })
}

/// team-a's files with the registry and podinfo's first tag written in (the image automation
/// reads them as they are: no post-build substitution there).
fn team_a_files(registry: &str) -> Files {
    fleet::bundled_files(&SEED_TEAM_A)
        .into_iter()
        .map(|(path, content)| {
            let text = String::from_utf8_lossy(&content)
                .replace("${registry}", registry)
                .replace("${podinfo_tag}", PODINFO_TAGS[0]);
            (path, text.into_bytes())
        })
        .collect()
}

/// What [`publish`] pushed.
#[derive(Debug, Clone)]
pub struct Published {
    /// `oci://HOST/manifests/team-a:1.0.0`.
    pub artifact: String,
    /// The artifact's manifest digest, the one signed.
    pub digest: String,
    /// The cosign public key (PEM) that verifies it.
    pub public_key: String,
}

/// Pushes podinfo's tags (a tiny image each) and team-a's manifests as a Flux artifact tagged
/// [`TEAM_A_TAG`] into the registry at `registry`, and signs the artifact with a P-256 key
/// generated now, in cosign's format. The artifact is packed from team-a's repository on the
/// Git server (`main`), under `<data_dir>/seed`.
pub async fn publish(
    servers: &SourceServers,
    registry: &str,
    data_dir: &Path,
) -> Result<Published, Error> {
    let client = OciClient::new(&OciOptions {
        insecure: true,
        ..OciOptions::default()
    })?;
    for tag in PODINFO_TAGS {
        push_image(
            &client,
            &format!("oci://{registry}/{PODINFO_REPOSITORY}:{tag}"),
        )
        .await?;
    }
    let (dir, revision) = checkout_team_a(servers, data_dir)?;
    let artifact = format!("oci://{registry}/{TEAM_A_REPOSITORY}:{TEAM_A_TAG}");
    let metadata = PushMetadata {
        source: format!("{}/team-a.git", servers.git_url),
        revision,
        created: ARTIFACT_CREATED.parse().ok(),
        ..PushMetadata::default()
    };
    let pushed = client
        .push_dir(&artifact, &dir, &IgnoreRules::none(), &metadata)
        .await?;
    let key = generate_key()?;
    cosign::sign(&client, &artifact, &pushed.digest, &key).await?;
    let public_key = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Key(e.to_string()))?;
    Ok(Published {
        artifact,
        digest: pushed.digest,
        public_key,
    })
}

/// Writes the files of `apps/team-a` on `main` of team-a's repository to `<data_dir>/seed/
/// team-a` (emptied first); returns the folder and Flux's revision of the commit.
fn checkout_team_a(
    servers: &SourceServers,
    data_dir: &Path,
) -> Result<(std::path::PathBuf, String), Error> {
    let repo = git2::Repository::open_bare(servers.git_root.join("team-a.git"))?;
    let commit = repo.find_reference("refs/heads/main")?.peel_to_commit()?;
    let tree = commit.tree()?;
    let dir = data_dir.join("seed/team-a");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let Ok(name) = entry.name() else {
            return git2::TreeWalkResult::Ok;
        };
        let path = format!("{parent}{name}");
        let Some(relative) = path.strip_prefix(TEAM_A_APPS) else {
            return git2::TreeWalkResult::Ok;
        };
        // Only the blobs directly in the folder: the seed's app has no subfolders.
        if entry.kind() != Some(git2::ObjectType::Blob) || relative.contains('/') {
            return git2::TreeWalkResult::Ok;
        }
        let written = repo
            .find_blob(entry.id())
            .map_err(Error::from)
            .and_then(|blob| Ok(std::fs::write(dir.join(relative), blob.content())?));
        match written {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((dir, format!("main@sha1:{}", commit.id())))
}

/// Pushes a minimal OCI image (an empty uncompressed layer and its config) as `url`: enough
/// for a registry, a tag scan and `docker manifest inspect`.
async fn push_image(client: &OciClient, url: &str) -> Result<(), Error> {
    // An empty tar archive: two zero blocks.
    let layer = vec![0_u8; 1024];
    let diff_id = ferroflux_source::sha256_digest(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    client
        .push_layers(
            url,
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&config)?,
            vec![("application/vnd.oci.image.layer.v1.tar".to_string(), layer)],
            Default::default(),
        )
        .await?;
    Ok(())
}

/// A fresh P-256 signing key from the system's random source (as `cosign generate-key-pair`).
fn generate_key() -> Result<SigningKey, Error> {
    let random = ring::rand::SystemRandom::new();
    // A random 32-byte string is a valid scalar but for a chance of about 2^-32; a few draws
    // make a failure impossible in practice.
    for _ in 0..8 {
        let mut bytes = [0_u8; 32];
        random
            .fill(&mut bytes)
            .map_err(|_| Error::Key("the system's random source failed".into()))?;
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(Error::Key("no valid P-256 scalar drawn".into()))
}

/// Applies what the seed's objects read besides the fleet: the `registry` variable of
/// `cluster-vars` (the fleet's `${registry}`), team-a's namespace with the `cosign-pub`
/// Secret its OCIRepository verifies with, and the `slack-url` Secret of the Slack Provider
/// pointing at `slack`. Server-side apply under its own field manager, beside the bootstrap's.
pub async fn apply_secrets(
    client: &kube::Client,
    registry: &str,
    published: &Published,
    slack: SocketAddr,
) -> Result<(), Error> {
    let secret = |name: &str, namespace: &str, key: &str, value: &str| {
        let mut secret = Secret::default();
        secret.metadata.name = Some(name.into());
        secret.metadata.namespace = Some(namespace.into());
        secret.data = Some(
            [(key.to_string(), ByteString(value.as_bytes().to_vec()))]
                .into_iter()
                .collect(),
        );
        let mut value = serde_json::to_value(secret)?;
        value["apiVersion"] = json!("v1");
        value["kind"] = json!("Secret");
        Ok::<_, Error>(value)
    };
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
            "data": {"registry": registry}}),
        // The tenant's namespace as `create tenant` labels it (the fleet applies it too).
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"toolkit.fluxcd.io/tenant": "team-a"}}}),
        secret("cosign-pub", "team-a", "cosign.pub", &published.public_key)?,
        secret(
            "slack-url",
            "flux-system",
            "address",
            &format!("http://{slack}/slack"),
        )?,
    ];
    ResourceManager::new(client.clone(), "ferroflux-seed")
        .apply_all(&objects, &ApplyOptions::default())
        .await?;
    Ok(())
}

/// A Slack-shaped incoming webhook on loopback (`POST /slack`): each message's text, one line
/// each, goes to the returned channel (bounded: new ones are dropped while it is full).
pub async fn serve_slack() -> Result<(SocketAddr, tokio::sync::mpsc::Receiver<String>), Error> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let (sender, receiver) = tokio::sync::mpsc::channel(SLACK_QUEUE);
    let app = axum::Router::new()
        .route("/slack", axum::routing::post(slack_message))
        .layer(DefaultBodyLimit::max(SLACK_BODY_LIMIT))
        .with_state(sender);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, receiver))
}

async fn slack_message(
    State(sender): State<tokio::sync::mpsc::Sender<String>>,
    Json(message): Json<Value>,
) -> &'static str {
    for line in slack_lines(&message) {
        // A full queue drops the line rather than holding the notification controller.
        let _ = sender.try_send(line);
    }
    "ok"
}

/// The lines a Slack message shows: `#channel author: text` per attachment, or its `text`.
pub fn slack_lines(message: &Value) -> Vec<String> {
    let channel = message["channel"].as_str().unwrap_or_default();
    let prefix = if channel.is_empty() {
        String::new()
    } else {
        format!("#{channel} ")
    };
    let mut lines: Vec<String> = message["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{prefix}{}: {}",
                a["author_name"].as_str().unwrap_or_default(),
                a["text"].as_str().unwrap_or_default().trim_end()
            )
        })
        .collect();
    if let Some(text) = message["text"].as_str() {
        lines.push(format!("{prefix}{}", text.trim_end()));
    }
    lines
}

/// The seed's Verify section against this `up`, to print once everything is Ready.
pub fn verify_commands(kubeconfig: &Path) -> String {
    let kubeconfig = kubeconfig.display();
    format!(
        "export KUBECONFIG={kubeconfig}
flux check
flux get kustomizations -A
flux get sources oci -A
flux get image policy podinfo -n team-a
flux get image update -n team-a
kubectl get sa -n team-a
kubectl -n flux-system get deploy kustomize-controller -o yaml | grep no-cross-namespace-refs
flux reconcile kustomization team-a -n team-a --with-source"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_a_names_the_registry_and_the_first_tag_with_a_setter() {
        let files = team_a_files("127.0.0.1:5050");
        let (_, deployment) = files
            .iter()
            .find(|(p, _)| p == "apps/team-a/deployment.yaml")
            .expect("team-a's deployment");
        let text = String::from_utf8_lossy(deployment);
        let wanted = format!(
            "image: 127.0.0.1:5050/podinfo:{} # {{\"$imagepolicy\": \"team-a:podinfo\"}}",
            PODINFO_TAGS[0]
        );
        assert!(text.contains(&wanted), "{text}");
        assert!(!text.contains("${"), "{text}");
    }

    #[test]
    fn the_newest_podinfo_tag_is_the_last() {
        let ts = |tag: &str| {
            tag.rsplit('-')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .expect("a timestamp")
        };
        assert!(PODINFO_TAGS.windows(2).all(|w| ts(w[0]) < ts(w[1])));
    }

    #[test]
    fn the_bundled_seed_has_the_article_objects() {
        let files: Vec<String> = fleet::bundled_files(&SEED_FLEET)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        for wanted in [
            "clusters/prod/tenants.yaml",
            "infrastructure/policies.yaml",
            "infrastructure/notifications.yaml",
            "tenants/team-a/sync.yaml",
            "tenants/team-a/images.yaml",
            "tenants/team-a/canary.yaml",
            "tenants/team-b/sync.yaml",
        ] {
            assert!(files.iter().any(|f| f == wanted), "{wanted}: {files:?}");
        }
    }

    #[test]
    fn a_slack_message_prints_its_attachments() {
        let message = json!({"channel": "platform-alerts", "attachments": [
            {"author_name": "kustomization/team-a.team-a", "text": "Health check failed\n"}]});
        assert_eq!(
            slack_lines(&message),
            ["#platform-alerts kustomization/team-a.team-a: Health check failed"]
        );
    }

    #[test]
    fn a_generated_key_signs_what_its_public_key_verifies() {
        let key = generate_key().expect("a key");
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM");
        let keys = cosign::PublicKeys::from_pems([("cosign.pub", pem.as_str())]).expect("parses");
        let payload = cosign::simple_signing_payload("r/x", "sha256:aa");
        let signature: p256::ecdsa::DerSignature =
            p256::ecdsa::signature::Signer::sign(&key, &payload);
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(signature.as_bytes())
        };
        assert_eq!(
            cosign::verify_payload(&keys, &payload, &b64, "sha256:aa"),
            Ok("cosign.pub".to_string())
        );
    }
}
