//! Flux OCI artifacts: push, pull, tag, list and resolve, with cosign keyed signatures.
//!
//! The format is Flux's own (what `flux push artifact` writes and source-controller reads):
//! an OCI image manifest whose config has media type [`FLUX_CONFIG_MEDIA_TYPE`] (an empty
//! JSON object), one layer [`FLUX_CONTENT_MEDIA_TYPE`] holding the tar.gz, and the
//! annotations [`ANNOTATION_SOURCE`], [`ANNOTATION_REVISION`] and [`ANNOTATION_CREATED`].
//!
//! Expected flow for the CLI:
//! - `push artifact oci://HOST/REPO:TAG --path DIR`: [`OciClient::push_dir`];
//! - `pull artifact oci://... --output DIR`: [`OciClient::pull_to_dir`];
//! - `tag artifact oci://...:TAG --tag T`: [`OciClient::tag`];
//! - `list artifacts oci://HOST/REPO [--filter-semver R]`: [`OciClient::list_tags`] and
//!   [`matching_tags`];
//! - `diff artifact oci://... --path DIR`: [`OciClient::diff`];
//! - `--creds USER:PASS` is [`OciAuth::Basic`], a dockerconfigjson Secret goes through
//!   [`auth_from_dockerconfigjson`], `--insecure-registry` is [`OciOptions::insecure`].
//!
//! For an OCIRepository reconcile: [`OciClient::resolve`] (tag / semver / digest to a
//! digest and a revision `<tag>@sha256:<hex>`), [`cosign::verify`] when `spec.verify` is
//! set, then [`OciClient::pull`] and store the layer.

pub mod cosign;
mod diff;
mod dockerconfig;
pub mod helm;
mod select;

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub use diff::DiffEntry;
pub use dockerconfig::auth_from_dockerconfigjson;
pub use select::{OciRef, matching_tags, select_tag};

use crate::artifact::{
    ExtractError, ExtractOptions, ExtractSummary, IgnoreRules, PackError, pack_path,
};
use crate::sha256_digest;
use crate::version::RangeError;

/// Config media type of a Flux artifact.
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Layer media type of a Flux artifact (a tar.gz).
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Annotation: where the content came from (e.g. a Git URL).
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// Annotation: the source revision (e.g. `main@sha1:<hash>`).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// Annotation: creation time, RFC 3339.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const TAG_PAGE: usize = 100;

/// An OCI operation failed. Messages never contain passwords or tokens.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The URL is not `oci://HOST/REPO[:TAG|@DIGEST]`.
    #[error("invalid OCI URL {url:?}: {why}; use oci://HOST/REPOSITORY[:TAG]")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// The registry refused the credentials or needs some.
    #[error(
        "authentication to {registry} failed: {message}; check the credentials (secretRef / --creds)"
    )]
    Auth {
        /// The registry host.
        registry: String,
        /// What the registry said (redacted).
        message: String,
    },
    /// The tag, digest or repository does not exist.
    #[error("{what} not found in {repository}")]
    NotFound {
        /// e.g. `tag "1.0.0"`.
        what: String,
        /// The repository.
        repository: String,
    },
    /// No tag matches the semver range (and filter).
    #[error("no tag of {repository} matches semver range {range:?}")]
    NoSemverMatch {
        /// The range.
        range: String,
        /// The repository.
        repository: String,
    },
    /// The semver range does not parse.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The `semverFilter` regex does not parse.
    #[error("semverFilter {filter:?} is not a valid regular expression: {source}")]
    Filter {
        /// The pattern.
        filter: String,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// The manifest is not a Flux/OCI image manifest, or has no matching layer.
    #[error("artifact {reference}: {why}")]
    BadArtifact {
        /// The reference.
        reference: String,
        /// What is wrong.
        why: String,
    },
    /// Downloaded content does not match its digest.
    #[error(
        "{what} of {reference} has digest {actual}, expected {expected}; the registry served tampered or corrupt content"
    )]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// The reference.
        reference: String,
        /// The digest in the manifest.
        expected: String,
        /// The digest computed.
        actual: String,
    },
    /// The layer is larger than allowed.
    #[error(
        "artifact {reference} layer is {size} bytes, over the limit of {max}; raise --artifact-max-size if this is expected"
    )]
    TooLarge {
        /// The reference.
        reference: String,
        /// Layer size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The dockerconfigjson Secret data is not valid.
    #[error(
        "dockerconfigjson: {0}; it must be {{\"auths\": {{\"HOST\": {{\"username\": ..., \"password\": ...}}}}}}"
    )]
    DockerConfig(String),
    /// Packing the directory failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// Extracting the artifact failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Any other registry or transport failure.
    #[error("registry {action} {reference}: {message}")]
    Registry {
        /// What was being done.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The error (redacted).
        message: String,
    },
}

/// Registry credentials.
#[derive(Clone, Default)]
pub enum OciAuth {
    /// No credentials.
    #[default]
    Anonymous,
    /// Basic auth (also used to obtain bearer tokens from token servers).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token.
    Bearer(String),
}

impl std::fmt::Debug for OciAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OciAuth::Anonymous => write!(f, "Anonymous"),
            OciAuth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            OciAuth::Bearer(_) => write!(f, "Bearer(<redacted>)"),
        }
    }
}

impl OciAuth {
    fn to_registry_auth(&self) -> RegistryAuth {
        match self {
            OciAuth::Anonymous => RegistryAuth::Anonymous,
            OciAuth::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            OciAuth::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            OciAuth::Anonymous => None,
            OciAuth::Basic { password, .. } => Some(password),
            OciAuth::Bearer(t) => Some(t),
        }
    }
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct OciOptions {
    /// Credentials.
    pub auth: OciAuth,
    /// Plain HTTP (Flux's `spec.insecure` / `--insecure-registry`).
    pub insecure: bool,
    /// Refuse layers larger than this many bytes (`None`: the extraction budget,
    /// [`DEFAULT_MAX_UNTAR_SIZE`](crate::artifact::DEFAULT_MAX_UNTAR_SIZE): a layer is
    /// held in memory while it downloads, so there is always a cap).
    pub max_layer_size: Option<u64>,
    /// Extra CA certificates (PEM) to trust, e.g. `ca.crt` of Flux's `certSecretRef`.
    pub ca_certs: Vec<Vec<u8>>,
}

/// Metadata recorded in a pushed artifact's annotations.
#[derive(Debug, Clone, Default)]
pub struct PushMetadata {
    /// `org.opencontainers.image.source`, e.g. the Git URL.
    pub source: String,
    /// `org.opencontainers.image.revision`, e.g. `main@sha1:<hash>`.
    pub revision: String,
    /// `org.opencontainers.image.created`; now when `None`.
    pub created: Option<jiff::Timestamp>,
    /// More annotations (`--annotations k=v`).
    pub annotations: BTreeMap<String, String>,
}

/// The result of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// `HOST/REPO@sha256:<hex>`.
    pub reference: String,
    /// `sha256:<hex>` of the content layer.
    pub layer_digest: String,
}

/// A pulled artifact.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// The manifest's annotations (source, revision, created, ...).
    pub annotations: BTreeMap<String, String>,
    /// The selected layer's media type.
    pub media_type: String,
    /// The selected layer's bytes (a tar.gz for Flux artifacts), digest-verified.
    pub layer: Vec<u8>,
}

/// A tag or digest resolved on the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The tag chosen, when the reference was a tag or semver range.
    pub tag: Option<String>,
    /// The manifest digest.
    pub digest: String,
    /// Flux's revision: `<tag>@sha256:<hex>` or `sha256:<hex>`.
    pub revision: String,
}

/// Parses `oci://HOST/REPO[:TAG|@DIGEST]` (the `oci://` prefix is optional).
///
/// # Errors
/// [`OciError::InvalidUrl`].
pub fn parse_url(url: &str) -> Result<Reference, OciError> {
    let bare = url.strip_prefix("oci://").unwrap_or(url);
    if bare.contains("://") {
        return Err(OciError::InvalidUrl {
            url: url.into(),
            why: "only the oci:// scheme is supported".into(),
        });
    }
    if !bare
        .split('/')
        .next()
        .is_some_and(|h| h.contains('.') || h.contains(':') || h == "localhost")
    {
        return Err(OciError::InvalidUrl {
            url: url.into(),
            why: "the first path element must be a registry host".into(),
        });
    }
    bare.parse::<Reference>().map_err(|e| OciError::InvalidUrl {
        url: url.into(),
        why: e.to_string(),
    })
}

/// A registry client holding one set of credentials.
pub struct OciClient {
    client: Client,
    auth: OciAuth,
    max_layer_size: Option<u64>,
    progress: Option<ProgressFn>,
}

/// Called while blobs transfer: (what, bytes done, total bytes if known).
pub type ProgressFn = std::sync::Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

impl OciClient {
    /// A client for `options`. Install a rustls crypto provider first (see DEPENDENCIES.md).
    ///
    /// # Errors
    /// [`OciError::Registry`] when a CA certificate is not valid PEM.
    pub fn new(options: &OciOptions) -> Result<Self, OciError> {
        use oci_client::client::{Certificate, CertificateEncoding};
        for (i, pem) in options.ca_certs.iter().enumerate() {
            let parsed = reqwest::Certificate::from_pem_bundle(pem);
            if !parsed.is_ok_and(|certs| !certs.is_empty()) {
                return Err(OciError::Registry {
                    action: "configure TLS for",
                    reference: "the registry client".into(),
                    message: format!(
                        "CA certificate {i} holds no valid PEM certificate; check ca.crt in the certSecretRef"
                    ),
                });
            }
        }
        let config = ClientConfig {
            protocol: if options.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: options
                .ca_certs
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            // Like every HTTP client of ferroflux (see `crate::http`): a registry that accepts
            // and never answers fails instead of hanging the reconcile.
            connect_timeout: Some(crate::http::DEFAULT_CONNECT_TIMEOUT),
            read_timeout: Some(crate::http::DEFAULT_TIMEOUT),
            ..ClientConfig::default()
        };
        // `Client::new` would fall back to defaults on a bad certificate; fail instead.
        let client = Client::try_from(config).map_err(|e| OciError::Registry {
            action: "configure TLS for",
            reference: "the registry client".into(),
            message: e.to_string(),
        })?;
        Ok(OciClient {
            client,
            auth: options.auth.clone(),
            max_layer_size: options.max_layer_size,
            progress: None,
        })
    }

    /// Reports transfer progress to `f` (for the CLI's long pushes and pulls): downloads
    /// report every chunk, uploads once per blob when it is sent.
    #[must_use]
    pub fn with_progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    fn report(&self, what: &str, done: u64, total: Option<u64>) {
        if let Some(f) = &self.progress {
            f(what, done, total);
        }
    }

    pub(crate) fn registry_auth(&self) -> RegistryAuth {
        self.auth.to_registry_auth()
    }

    pub(crate) fn err(
        &self,
        action: &'static str,
        reference: &Reference,
        e: oci_client::errors::OciDistributionError,
    ) -> OciError {
        use oci_client::errors::OciDistributionError as E;
        // reqwest hides the cause (TLS, DNS, refused) in the source chain.
        let mut message = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let text = c.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = c.source();
        }
        let message = crate::redact::redact(&message, &[self.auth.secret().unwrap_or_default()]);
        let status = match &e {
            E::ServerError { code, .. } => Some(*code),
            E::RegistryError { .. } => None,
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => Some(401),
            _ => None,
        };
        let lower = message.to_ascii_lowercase();
        if status == Some(401)
            || status == Some(403)
            || lower.contains("unauthorized")
            || lower.contains("authentication required")
        {
            return OciError::Auth {
                registry: reference.resolve_registry().to_string(),
                message,
            };
        }
        if status == Some(404)
            || [
                "manifest unknown",
                "manifest_unknown",
                "name unknown",
                "name_unknown",
                "not found",
            ]
            .iter()
            .any(|m| lower.contains(m))
        {
            return OciError::NotFound {
                what: match (reference.digest(), reference.tag()) {
                    (Some(d), _) => format!("digest {d}"),
                    (None, Some(t)) => format!("tag {t:?}"),
                    _ => "artifact".into(),
                },
                repository: repository_of(reference),
            };
        }
        OciError::Registry {
            action,
            reference: reference.whole(),
            message,
        }
    }

    /// Packs `dir` (a directory with `rules`, or a single file) and pushes it as a Flux
    /// artifact to `url` (`oci://HOST/REPO:TAG`).
    ///
    /// # Errors
    /// [`OciError`] for packing, auth or registry failures.
    pub async fn push_dir(
        &self,
        url: &str,
        dir: &Path,
        rules: &IgnoreRules,
        metadata: &PushMetadata,
    ) -> Result<Pushed, OciError> {
        let mut tarball = Vec::new();
        pack_path(dir, rules, &mut tarball)?;
        self.push_artifact(url, tarball, metadata).await
    }

    /// Pushes an already packed tar.gz as a Flux artifact to `url`.
    ///
    /// Guarantees: the manifest is exactly Flux's format (see the module docs); the returned
    /// digest is the sha256 of the manifest bytes pushed.
    ///
    /// # Errors
    /// [`OciError`] for auth or registry failures.
    pub async fn push_artifact(
        &self,
        url: &str,
        tarball: Vec<u8>,
        metadata: &PushMetadata,
    ) -> Result<Pushed, OciError> {
        let reference = parse_url(url)?;
        let mut annotations = metadata.annotations.clone();
        let created = metadata.created.unwrap_or_else(jiff::Timestamp::now);
        annotations.insert(
            ANNOTATION_CREATED.into(),
            created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        annotations.insert(ANNOTATION_SOURCE.into(), metadata.source.clone());
        annotations.insert(ANNOTATION_REVISION.into(), metadata.revision.clone());
        let layer_digest = sha256_digest(&tarball);
        let digest = self
            .push_layers(
                url,
                FLUX_CONFIG_MEDIA_TYPE,
                b"{}".to_vec(),
                vec![(FLUX_CONTENT_MEDIA_TYPE.to_string(), tarball)],
                annotations,
            )
            .await?;
        Ok(Pushed {
            reference: format!(
                "{}/{}@{digest}",
                reference.registry(),
                reference.repository()
            ),
            digest,
            layer_digest,
        })
    }

    /// Pushes any single-manifest artifact: a config blob of `config_media_type` and the
    /// given layers (media type, bytes), with manifest annotations; returns the manifest
    /// digest. [`OciClient::push_artifact`] is this with Flux's media types.
    ///
    /// # Errors
    /// [`OciError`] for auth or registry failures.
    pub async fn push_layers(
        &self,
        url: &str,
        config_media_type: &str,
        config: Vec<u8>,
        layers: Vec<(String, Vec<u8>)>,
        annotations: BTreeMap<String, String>,
    ) -> Result<String, OciError> {
        let reference = parse_url(url)?;
        let mut descriptors = Vec::new();
        let mut blobs = vec![(config.clone(), None)];
        for (media_type, data) in layers {
            let layer = blob_descriptor(media_type, &data);
            blobs.push((data, Some(layer.digest.clone())));
            descriptors.push(layer);
        }
        let manifest = image_manifest(
            blob_descriptor(config_media_type, &config),
            descriptors,
            (!annotations.is_empty()).then_some(annotations),
        );
        self.push_blobs_and_manifest(&reference, blobs, &manifest)
            .await
    }

    pub(crate) async fn push_blobs_and_manifest(
        &self,
        reference: &Reference,
        blobs: Vec<(Vec<u8>, Option<String>)>,
        manifest: &OciImageManifest,
    ) -> Result<String, OciError> {
        let auth = self.registry_auth();
        // Push auth must be obtained before blob uploads (oci-client's push_blob does not).
        self.client
            .auth(reference, &auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| self.err("authenticate for push to", reference, e))?;
        for (data, digest) in blobs {
            let digest = digest.unwrap_or_else(|| sha256_digest(&data));
            let len = data.len() as u64;
            self.client
                .push_blob(reference, data, &digest)
                .await
                .map_err(|e| self.err("push blob to", reference, e))?;
            self.report(&digest, len, Some(len));
        }
        let body = serde_json::to_vec(manifest).map_err(|e| OciError::Registry {
            action: "encode manifest for",
            reference: reference.whole(),
            message: e.to_string(),
        })?;
        let digest = sha256_digest(&body);
        self.client
            .push_manifest_raw(
                reference,
                body,
                reqwest::header::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
            )
            .await
            .map_err(|e| self.err("push manifest to", reference, e))?;
        Ok(digest)
    }

    /// The raw manifest bytes and digest at `reference`.
    pub(crate) async fn manifest_raw(
        &self,
        reference: &Reference,
    ) -> Result<(Vec<u8>, String), OciError> {
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(
                reference,
                &self.registry_auth(),
                &[OCI_IMAGE_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
            )
            .await
            .map_err(|e| self.err("pull manifest of", reference, e))?;
        Ok((bytes.to_vec(), digest))
    }

    pub(crate) async fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(OciImageManifest, String), OciError> {
        let (bytes, digest) = self.manifest_raw(reference).await?;
        let actual = sha256_digest(&bytes);
        if digest.starts_with("sha256:") && actual != digest {
            return Err(OciError::DigestMismatch {
                what: "manifest".into(),
                reference: reference.whole(),
                expected: digest,
                actual,
            });
        }
        if let Some(want) = reference.digest()
            && want != actual
        {
            return Err(OciError::DigestMismatch {
                what: "manifest".into(),
                reference: reference.whole(),
                expected: want.to_string(),
                actual,
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| OciError::BadArtifact {
                reference: reference.whole(),
                why: format!("the manifest is not an OCI image manifest: {e}"),
            })?;
        Ok((manifest, actual))
    }

    pub(crate) async fn blob(
        &self,
        reference: &Reference,
        desc: &OciDescriptor,
        what: &str,
    ) -> Result<Vec<u8>, OciError> {
        let size = u64::try_from(desc.size).unwrap_or(u64::MAX);
        let max = self
            .max_layer_size
            .unwrap_or(crate::artifact::DEFAULT_MAX_UNTAR_SIZE);
        if size > max {
            return Err(OciError::TooLarge {
                reference: reference.whole(),
                size,
                max,
            });
        }
        use futures::TryStreamExt as _;
        let mut stream = self
            .client
            .pull_blob_stream(reference, desc)
            .await
            .map_err(|e| self.err("pull blob of", reference, e))?;
        // The descriptor's size is the registry's word; cap what is actually received.
        let cap = max.min(size);
        let total = stream.content_length.or(Some(size));
        let mut out = Vec::new();
        while let Some(chunk) = stream.try_next().await.map_err(|e| OciError::Registry {
            action: "download blob of",
            reference: reference.whole(),
            message: e.to_string(),
        })? {
            out.extend_from_slice(&chunk);
            if out.len() as u64 > cap {
                return Err(OciError::TooLarge {
                    reference: reference.whole(),
                    size: out.len() as u64,
                    max: cap,
                });
            }
            self.report(what, out.len() as u64, total);
        }
        let actual = sha256_digest(&out);
        if actual != desc.digest {
            return Err(OciError::DigestMismatch {
                what: what.into(),
                reference: reference.whole(),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// Pulls the artifact at `url` (tag or digest) and returns the layer of `media_type`
    /// (default: Flux's content layer, else the first layer).
    ///
    /// # Errors
    /// [`OciError`]: not found, auth, no layer, digest mismatch, size limit.
    pub async fn pull(&self, url: &str, media_type: Option<&str>) -> Result<Pulled, OciError> {
        let reference = parse_url(url)?;
        let (manifest, digest) = self.manifest(&reference).await?;
        let layer = match media_type {
            Some(mt) => manifest.layers.iter().find(|l| l.media_type == mt),
            None => manifest
                .layers
                .iter()
                .find(|l| l.media_type == FLUX_CONTENT_MEDIA_TYPE)
                .or_else(|| manifest.layers.first()),
        }
        .ok_or_else(|| OciError::BadArtifact {
            reference: reference.whole(),
            why: match media_type {
                Some(mt) => format!("no layer has media type {mt:?}"),
                None => "the manifest has no layers".into(),
            },
        })?;
        let bytes = self.blob(&reference, layer, "layer").await?;
        Ok(Pulled {
            digest,
            annotations: manifest.annotations.clone().unwrap_or_default(),
            media_type: layer.media_type.clone(),
            layer: bytes,
        })
    }

    /// Pulls the artifact at `url` and safely extracts its content layer into `dest`.
    ///
    /// # Errors
    /// As [`OciClient::pull`], plus [`OciError::Extract`] for unsafe or corrupt tarballs.
    pub async fn pull_to_dir(
        &self,
        url: &str,
        dest: &Path,
        options: &ExtractOptions,
    ) -> Result<(Pulled, ExtractSummary), OciError> {
        let pulled = self.pull(url, None).await?;
        let summary = crate::artifact::extract_tar_gz(&pulled.layer[..], dest, options)?;
        Ok((pulled, summary))
    }

    /// Points tag `new_tag` at the manifest `url` refers to (`flux tag artifact`); returns
    /// the digest.
    ///
    /// # Errors
    /// [`OciError`].
    pub async fn tag(&self, url: &str, new_tag: &str) -> Result<String, OciError> {
        let source = parse_url(url)?;
        let (bytes, _) = self.manifest_raw(&source).await?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| OCI_IMAGE_MEDIA_TYPE.to_string());
        let target = Reference::with_tag(
            source.registry().to_string(),
            source.repository().to_string(),
            new_tag.to_string(),
        );
        let header = reqwest::header::HeaderValue::from_str(&media_type).map_err(|e| {
            OciError::BadArtifact {
                reference: source.whole(),
                why: format!("manifest media type {media_type:?}: {e}"),
            }
        })?;
        self.client
            .auth(
                &target,
                &self.registry_auth(),
                oci_client::RegistryOperation::Push,
            )
            .await
            .map_err(|e| self.err("authenticate for push to", &target, e))?;
        let digest = sha256_digest(&bytes);
        self.client
            .push_manifest_raw(&target, bytes, header)
            .await
            .map_err(|e| self.err("tag", &target, e))?;
        Ok(digest)
    }

    /// Every tag of the repository of `url` (any tag/digest in `url` is ignored), following
    /// pagination (`?n=&last=`), in the registry's order.
    ///
    /// # Errors
    /// [`OciError`].
    pub async fn list_tags(&self, url: &str) -> Result<Vec<String>, OciError> {
        let reference = parse_url(url)?;
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = self
                .client
                .list_tags(
                    &reference,
                    &self.registry_auth(),
                    Some(TAG_PAGE),
                    last.as_deref(),
                )
                .await
                .map_err(|e| self.err("list tags of", &reference, e))?;
            let n = page.tags.len();
            // A registry that ignores `last` would repeat itself: stop on no progress.
            let new: Vec<String> = page
                .tags
                .into_iter()
                .filter(|t| !tags.contains(t))
                .collect();
            let progressed = !new.is_empty();
            tags.extend(new);
            if n < TAG_PAGE || !progressed {
                break;
            }
        }
        Ok(tags)
    }

    /// The manifest digest `url` points to now.
    ///
    /// # Errors
    /// [`OciError`].
    pub async fn digest(&self, url: &str) -> Result<String, OciError> {
        let reference = parse_url(url)?;
        if let Some(d) = reference.digest() {
            return Ok(d.to_string());
        }
        let (_, digest) = self.manifest(&reference).await?;
        Ok(digest)
    }

    /// Resolves an OCIRepository `spec.ref` against the repository at `url`
    /// (`oci://HOST/REPO`): digest > semver (+ filter) > tag > `latest`, as Flux.
    ///
    /// # Errors
    /// [`OciError::NoSemverMatch`], [`OciError::NotFound`] and transport errors.
    pub async fn resolve(&self, url: &str, oci_ref: &OciRef) -> Result<Resolved, OciError> {
        let base = parse_url(url)?;
        let repo = format!("oci://{}/{}", base.registry(), base.repository());
        if let Some(d) = oci_ref.digest.as_deref().filter(|d| !d.is_empty()) {
            let digest = self.digest(&format!("{repo}@{d}")).await?;
            return Ok(Resolved {
                tag: None,
                revision: digest.clone(),
                digest,
            });
        }
        let tag = if let Some(range) = oci_ref.semver.as_deref().filter(|s| !s.is_empty()) {
            let tags = self.list_tags(&repo).await?;
            select_tag(&tags, range, oci_ref.semver_filter.as_deref())?.ok_or_else(|| {
                OciError::NoSemverMatch {
                    range: range.to_string(),
                    repository: repository_of(&base),
                }
            })?
        } else {
            oci_ref
                .tag
                .clone()
                .filter(|t| !t.is_empty())
                .or_else(|| base.tag().map(str::to_string))
                .unwrap_or_else(|| "latest".to_string())
        };
        let digest = self.digest(&format!("{repo}:{tag}")).await?;
        Ok(Resolved {
            revision: format!("{tag}@{digest}"),
            tag: Some(tag),
            digest,
        })
    }
}

fn repository_of(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

/// The descriptor of a blob of `media_type`: its sha256 digest and size.
pub(crate) fn blob_descriptor(media_type: impl Into<String>, data: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.into(),
        digest: sha256_digest(data),
        size: data.len() as i64,
        ..OciDescriptor::default()
    }
}

/// An OCI image manifest (schema 2) of a config blob and layers, without subject or
/// artifact type.
pub(crate) fn image_manifest(
    config: OciDescriptor,
    layers: Vec<OciDescriptor>,
    annotations: Option<BTreeMap<String, String>>,
) -> OciImageManifest {
    OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
        config,
        layers,
        subject: None,
        artifact_type: None,
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_registry_host_and_the_oci_scheme() {
        let r = parse_url("oci://127.0.0.1:5000/team-a/app:1.0.0").expect("valid");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "team-a/app");
        assert_eq!(r.tag(), Some("1.0.0"));
        assert!(parse_url("https://example.com/x").is_err());
        assert!(parse_url("oci://library/app").is_err());
    }
}
