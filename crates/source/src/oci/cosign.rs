//! Cosign keyed signatures (ECDSA P-256), in cosign's own registry format.
//!
//! Cosign stores the signatures of manifest `sha256:<hex>` as an OCI manifest tagged
//! `sha256-<hex>.sig` in the same repository. Each layer (media type
//! [`SIMPLE_SIGNING_MEDIA_TYPE`]) is a "simple signing" JSON payload naming the signed digest;
//! its annotation [`SIGNATURE_ANNOTATION`] holds the base64 DER ECDSA signature of the
//! payload bytes (SHA-256). [`verify`] accepts an artifact when one layer's signature verifies
//! with one of the public keys *and* its payload names the artifact's digest, so a signature
//! copied from another artifact is refused.

use base64::Engine as _;
use oci_client::Reference;
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, OciDescriptor};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

pub use p256::ecdsa::SigningKey;

use super::{OciClient, OciError, blob_descriptor, image_manifest, parse_url};
use crate::sha256_digest;

/// Media type of a cosign signature layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// Signature verification failed or could not run.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// A public key is not a PEM P-256 public key.
    #[error(
        "cosign public key {name}: {why}; expected a PEM \"PUBLIC KEY\" (ECDSA P-256, as `cosign generate-key-pair` writes cosign.pub)"
    )]
    InvalidKey {
        /// Which key (e.g. the Secret key name).
        name: String,
        /// What is wrong.
        why: String,
    },
    /// No keys were given.
    #[error("no cosign public keys given; put one or more *.pub keys in the verify secretRef")]
    NoKeys,
    /// The artifact has no signature manifest.
    #[error(
        "no cosign signature found for {reference} (looked for tag {tag}); sign it with `cosign sign --key`"
    )]
    NoSignature {
        /// The artifact.
        reference: String,
        /// The tag looked up.
        tag: String,
    },
    /// Signatures exist but none verifies for this digest with these keys.
    #[error("no valid cosign signature for {reference}: {reasons}")]
    Invalid {
        /// The artifact.
        reference: String,
        /// Why each signature was refused.
        reasons: String,
    },
    /// The registry failed.
    #[error(transparent)]
    Oci(#[from] OciError),
}

/// Public keys a signature may verify with.
#[derive(Debug, Clone)]
pub struct PublicKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl PublicKeys {
    /// Parses named PEM public keys (e.g. the `*.pub` entries of a Secret).
    ///
    /// # Errors
    /// [`CosignError::InvalidKey`] naming the first bad key; [`CosignError::NoKeys`].
    pub fn from_pems<'a>(
        pems: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, CosignError> {
        let mut keys = Vec::new();
        for (name, pem) in pems {
            let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
                CosignError::InvalidKey {
                    name: name.to_string(),
                    why: e.to_string(),
                }
            })?;
            keys.push((name.to_string(), key));
        }
        if keys.is_empty() {
            return Err(CosignError::NoKeys);
        }
        Ok(PublicKeys { keys })
    }
}

/// What verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The name of the key that verified.
    pub key: String,
    /// The digest the payload names (the artifact's).
    pub digest: String,
}

/// The signature tag cosign uses for `digest` (`sha256:<hex>` -> `sha256-<hex>.sig`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// The simple-signing payload cosign signs for `docker_reference` (`HOST/REPO`) at `digest`.
pub fn simple_signing_payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// Checks one signature layer: the signature over `payload` verifies with one of `keys`, and
/// the payload is a cosign simple-signing document for `digest`. Returns the key's name.
///
/// # Errors
/// A sentence saying why the layer is refused.
pub fn verify_payload(
    keys: &PublicKeys,
    payload: &[u8],
    signature_b64: &str,
    digest: &str,
) -> Result<String, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "the signature annotation is not base64".to_string())?;
    let signature = Signature::from_der(&der)
        .map_err(|_| "the signature is not a DER ECDSA signature".to_string())?;
    let key = keys
        .keys
        .iter()
        .find(|(_, k)| k.verify(payload, &signature).is_ok())
        .map(|(name, _)| name.clone())
        .ok_or_else(|| "the signature does not verify with any of the public keys".to_string())?;
    let doc: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|_| "the signed payload is not JSON".to_string())?;
    let critical = &doc["critical"];
    if critical["type"].as_str() != Some(SIGNATURE_TYPE) {
        return Err(format!(
            "the signed payload's type is not {SIGNATURE_TYPE:?}"
        ));
    }
    match critical["image"]["docker-manifest-digest"].as_str() {
        Some(d) if d == digest => Ok(key),
        Some(d) => Err(format!("the signature is for digest {d}, not {digest}")),
        None => Err("the signed payload names no digest".to_string()),
    }
}

/// Verifies the cosign signatures of the manifest `digest` in the repository of `url`.
///
/// # Errors
/// [`CosignError::NoSignature`] when unsigned, [`CosignError::Invalid`] when no signature
/// verifies for this digest, [`CosignError::Oci`] for registry failures.
pub async fn verify(
    client: &OciClient,
    url: &str,
    digest: &str,
    keys: &PublicKeys,
) -> Result<Verified, CosignError> {
    let base = parse_url(url)?;
    let tag = signature_tag(digest);
    let sig_ref = Reference::with_tag(
        base.registry().into(),
        base.repository().into(),
        tag.clone(),
    );
    let artifact = format!("{}/{}@{digest}", base.registry(), base.repository());
    let manifest = match client.manifest(&sig_ref).await {
        Ok((m, _)) => m,
        Err(OciError::NotFound { .. }) => {
            return Err(CosignError::NoSignature {
                reference: artifact,
                tag,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut reasons = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let Some(sig) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
        else {
            reasons.push(format!("layer {i}: no {SIGNATURE_ANNOTATION} annotation"));
            continue;
        };
        let payload = match client.blob(&sig_ref, layer, "signature payload").await {
            Ok(p) => p,
            Err(e) => {
                reasons.push(format!("layer {i}: {e}"));
                continue;
            }
        };
        match verify_payload(keys, &payload, sig, digest) {
            Ok(key) => {
                return Ok(Verified {
                    key,
                    digest: digest.to_string(),
                });
            }
            Err(why) => reasons.push(format!("layer {i}: {why}")),
        }
    }
    if reasons.is_empty() {
        reasons.push("the signature manifest has no simple-signing layers".into());
    }
    Err(CosignError::Invalid {
        reference: artifact,
        reasons: reasons.join("; "),
    })
}

/// Signs the manifest `digest` in the repository of `url` with `key`, exactly as
/// `cosign sign --key` does (payload, annotation and `sha256-<hex>.sig` tag); an existing
/// signature manifest gets one more layer.
///
/// # Errors
/// [`CosignError::Oci`] for registry failures.
pub async fn sign(
    client: &OciClient,
    url: &str,
    digest: &str,
    key: &SigningKey,
) -> Result<String, CosignError> {
    let base = parse_url(url)?;
    let docker_reference = format!("{}/{}", base.registry(), base.repository());
    let payload = simple_signing_payload(&docker_reference, digest);
    let signature: DerSignature = key.sign(&payload);
    let signature_b64 = base64::engine::general_purpose::STANDARD.encode(signature.as_bytes());
    signature_manifest_push(client, &base, digest, payload, &signature_b64).await
}

/// Pushes a signature layer with an arbitrary payload and signature (for tests of
/// tampering; [`sign`] is the normal entry point). Returns the signature manifest digest.
///
/// # Errors
/// [`CosignError::Oci`] for registry failures.
pub async fn push_signature_layer(
    client: &OciClient,
    url: &str,
    digest: &str,
    payload: Vec<u8>,
    signature_b64: &str,
) -> Result<String, CosignError> {
    let base = parse_url(url)?;
    signature_manifest_push(client, &base, digest, payload, signature_b64).await
}

async fn signature_manifest_push(
    client: &OciClient,
    base: &Reference,
    digest: &str,
    payload: Vec<u8>,
    signature_b64: &str,
) -> Result<String, CosignError> {
    let sig_ref = Reference::with_tag(
        base.registry().into(),
        base.repository().into(),
        signature_tag(digest),
    );
    let mut layers = match client.manifest(&sig_ref).await {
        Ok((m, _)) => m.layers,
        Err(OciError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let payload_digest = sha256_digest(&payload);
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(SIGNATURE_ANNOTATION.to_string(), signature_b64.to_string());
    layers.retain(|l| l.digest != payload_digest);
    layers.push(OciDescriptor {
        annotations: Some(annotations),
        ..blob_descriptor(SIMPLE_SIGNING_MEDIA_TYPE, &payload)
    });
    // The config lists the layers' diff IDs, as go-containerregistry writes it for cosign.
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    })
    .to_string()
    .into_bytes();
    let manifest = image_manifest(
        blob_descriptor(IMAGE_CONFIG_MEDIA_TYPE, &config),
        layers,
        None,
    );
    let digest = client
        .push_blobs_and_manifest(
            &sig_ref,
            vec![(config, None), (payload, Some(payload_digest))],
            &manifest,
        )
        .await?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).expect("a valid scalar")
    }

    fn keys_of(k: &SigningKey) -> PublicKeys {
        let pem = k
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("encodes");
        PublicKeys::from_pems([("cosign.pub", pem.as_str())]).expect("parses")
    }

    fn signed(k: &SigningKey, payload: &[u8]) -> String {
        let sig: DerSignature = k.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(sig.as_bytes())
    }

    #[test]
    fn signature_tag_is_cosigns() {
        assert_eq!(signature_tag("sha256:abcd"), "sha256-abcd.sig");
    }

    #[test]
    fn valid_signature_for_the_digest_verifies() {
        let k = key(7);
        let payload = simple_signing_payload("r/x", "sha256:aa");
        let sig = signed(&k, &payload);
        assert_eq!(
            verify_payload(&keys_of(&k), &payload, &sig, "sha256:aa"),
            Ok("cosign.pub".to_string())
        );
    }

    #[test]
    fn signature_of_another_digest_or_key_or_payload_is_refused() {
        let k = key(7);
        let payload = simple_signing_payload("r/x", "sha256:aa");
        let sig = signed(&k, &payload);
        let other_digest =
            verify_payload(&keys_of(&k), &payload, &sig, "sha256:bb").expect_err("wrong digest");
        assert!(other_digest.contains("sha256:aa"), "{other_digest}");
        assert!(verify_payload(&keys_of(&key(8)), &payload, &sig, "sha256:aa").is_err());
        let tampered = simple_signing_payload("r/x", "sha256:bb");
        assert!(verify_payload(&keys_of(&k), &tampered, &sig, "sha256:bb").is_err());
        assert!(verify_payload(&keys_of(&k), &payload, "not base64!", "sha256:aa").is_err());
    }

    #[test]
    fn bad_pem_is_named() {
        let err = PublicKeys::from_pems([(
            "team.pub",
            "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----",
        )])
        .expect_err("invalid");
        assert!(err.to_string().contains("team.pub"), "{err}");
        assert!(matches!(
            PublicKeys::from_pems([]),
            Err(CosignError::NoKeys)
        ));
    }
}
