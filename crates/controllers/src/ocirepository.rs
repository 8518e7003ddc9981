//! The OCIRepository reconciler (part of `ferroflux controller source`): resolve `spec.ref`
//! (digest > semver > tag) on the registry, verify the cosign signature of the resolved digest
//! when `spec.verify` asks for it, pull the selected layer by digest and store it as the
//! artifact. A failed verification keeps the previous artifact in place.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::{Client, ResourceExt};
use tracing::info;

use ferroflux_api::meta::{Artifact, Time, condition_type, reason};
use ferroflux_api::source::{OCILayerSelector, OCIRepository, OCIRepositoryStatus};
use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::oci::cosign::{self, PublicKeys};
use ferroflux_source::oci::{self, OciAuth, OciClient, OciError, OciOptions, OciRef, Resolved};
use ferroflux_source::storage::{ObjectKey, Storage};

use crate::conditions;
use crate::runtime::SUCCEEDED;
use crate::runtime::{
    Failure, Note, ReconcileError, Reconciler, go_duration, optional_spec_duration,
};
use crate::source::STORAGE_FAILED;
use crate::source::new_artifact;

/// Flux's reason for an unparsable `spec.url`.
const URL_INVALID: &str = "URLInvalid";
/// Flux's reason for a failed artifact write.
/// Flux's reason on `ArtifactOutdated` when the registry has a newer revision.
const NEW_REVISION: &str = "NewRevision";

/// What the reconciler needs.
pub type Context = crate::source::Context<OCIRepository>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = OCIRepository;
    type Done = Stored;
    type Failure = Failed;
    type Status = OCIRepositoryStatus;

    fn runtime(&self) -> &crate::runtime::Context {
        &self.runtime
    }

    async fn reconcile(&self, repo: &OCIRepository) -> Outcome {
        reconcile_source(repo, self).await
    }

    fn event(&self, repo: &OCIRepository, stored: &Stored) -> Option<Note> {
        let previous = repo.status.as_ref().and_then(|s| s.artifact.as_ref());
        new_artifact(previous, &stored.artifact, || {
            format!(
                "stored artifact with revision '{}'",
                stored.artifact.revision
            )
        })
    }

    fn summarize(&self, repo: &OCIRepository, outcome: Outcome, at: Time) -> OCIRepositoryStatus {
        summarize(repo, &outcome, at)
    }

    async fn cleanup(&self, repo: &OCIRepository) {
        self.remove_artifacts(repo);
    }
}

/// The step a reconciliation failed in: it decides which condition carries the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Credentials, resolving the ref, pulling: `FetchFailed`.
    Fetch,
    /// Signature verification: `SourceVerified=False`.
    Verify,
    /// Extracting or storing the layer: `Ready` only.
    Store,
}

/// A failed reconciliation: the error and where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    step: Step,
    error: ReconcileError,
    /// The revision the registry offers, when resolving got that far.
    revision: Option<String>,
}

/// A successful reconciliation: the artifact and whether it is verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    artifact: Artifact,
    /// Whether a signature was verified for this revision (by this or an earlier reconcile).
    verified: bool,
}

type Outcome = Result<Stored, Failed>;

fn fetch_failed(error: ReconcileError) -> Failed {
    Failed {
        step: Step::Fetch,
        error,
        revision: None,
    }
}

/// A failure before the registry was asked (an invalid interval) is a failure to fetch.
impl From<ReconcileError> for Failed {
    fn from(error: ReconcileError) -> Self {
        fetch_failed(error)
    }
}

impl Failure for Failed {
    fn error(&self) -> &ReconcileError {
        &self.error
    }
}

/// Flux's classification of registry errors.
fn oci_error(context: &str, err: OciError) -> ReconcileError {
    let message = format!("{context}: {err}");
    match err {
        OciError::Auth { .. } => ReconcileError::generic(reason::AUTHENTICATION_FAILED, message),
        OciError::InvalidUrl { .. } => ReconcileError::stalling(URL_INVALID, message),
        // A bad range or filter cannot start working without a spec change.
        OciError::Range(_) | OciError::Filter { .. } => {
            ReconcileError::stalling(reason::OCI_PULL_FAILED, message)
        }
        _ => ReconcileError::generic(reason::OCI_PULL_FAILED, message),
    }
}

/// The Secret `name` in the object's namespace, as key -> bytes.
pub(crate) async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
    why: &'static str,
) -> Result<BTreeMap<String, Vec<u8>>, ReconcileError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match secrets.get_opt(name).await {
        Ok(Some(secret)) => Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()),
        Ok(None) => Err(ReconcileError::generic(
            why,
            format!("secret '{namespace}/{name}' not found"),
        )),
        Err(err) => Err(ReconcileError::generic(
            why,
            format!(
                "reading secret '{namespace}/{name}': {}",
                ferroflux_apply::manager::api_message(&err)
            ),
        )),
    }
}

/// The name and data of the Secret `secret_ref` names (`None` when it names none); one that
/// cannot be read fails authentication.
pub(crate) async fn referenced_secret<'a>(
    client: &Client,
    namespace: &str,
    secret_ref: Option<&'a ferroflux_api::meta::LocalObjectReference>,
) -> Result<Option<(&'a str, BTreeMap<String, Vec<u8>>)>, ReconcileError> {
    let Some(secret_ref) = secret_ref else {
        return Ok(None);
    };
    let why = reason::AUTHENTICATION_FAILED;
    let data = secret_data(client, namespace, &secret_ref.name, why).await?;
    Ok(Some((&secret_ref.name, data)))
}

/// Registry credentials: the `secretRef` dockerconfigjson, else the imagePullSecrets of
/// `serviceAccountName` (the first that has an entry for the registry).
async fn registry_auth(
    repo: &OCIRepository,
    ctx: &Context,
    registry: &str,
) -> Result<OciAuth, ReconcileError> {
    let namespace = repo.namespace().unwrap_or_default();
    let secret_names = match (&repo.spec.secret_ref, &repo.spec.service_account_name) {
        (Some(secret_ref), _) => vec![secret_ref.name.clone()],
        (None, Some(account)) => pull_secret_names(ctx.client(), &namespace, account).await?,
        (None, None) => Vec::new(),
    };
    dockerconfig_auth(ctx.client(), &namespace, &secret_names, registry).await
}

/// The `imagePullSecrets` of the ServiceAccount `account`; a missing account fails
/// authentication.
pub(crate) async fn pull_secret_names(
    client: &Client,
    namespace: &str,
    account: &str,
) -> Result<Vec<String>, ReconcileError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let found = accounts.get_opt(account).await.ok().flatten().ok_or_else(|| {
        ReconcileError::generic(
            reason::AUTHENTICATION_FAILED,
            format!(
                "service account '{namespace}/{account}' not found; check spec.serviceAccountName"
            ),
        )
    })?;
    Ok(found
        .image_pull_secrets
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect())
}

/// Credentials for `registry` from the first of the dockerconfigjson Secrets `secret_names`
/// that has an entry for it; anonymous when none has.
pub(crate) async fn dockerconfig_auth(
    client: &Client,
    namespace: &str,
    secret_names: &[String],
    registry: &str,
) -> Result<OciAuth, ReconcileError> {
    for name in secret_names {
        let data = secret_data(client, namespace, name, reason::AUTHENTICATION_FAILED).await?;
        let Some(config) = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"))
        else {
            return Err(ReconcileError::stalling(
                reason::AUTHENTICATION_FAILED,
                format!(
                    "secret '{namespace}/{name}' has no .dockerconfigjson key; create it with `kubectl create secret docker-registry`"
                ),
            ));
        };
        match oci::auth_from_dockerconfigjson(config, registry) {
            Ok(OciAuth::Anonymous) => continue,
            Ok(auth) => return Ok(auth),
            Err(err) => {
                return Err(ReconcileError::stalling(
                    reason::AUTHENTICATION_FAILED,
                    format!("secret '{namespace}/{name}': {err}"),
                ));
            }
        }
    }
    Ok(OciAuth::Anonymous)
}

async fn client_options(
    repo: &OCIRepository,
    ctx: &Context,
    registry: &str,
) -> Result<OciOptions, ReconcileError> {
    let provider = repo.spec.provider.as_deref().unwrap_or("generic");
    if provider != "generic" {
        // Cloud providers need their metadata services for tokens, which are not here.
        return Err(ReconcileError::stalling(
            reason::AUTHENTICATION_FAILED,
            format!(
                "provider '{provider}' is not supported; use provider 'generic' with a dockerconfigjson secretRef"
            ),
        ));
    }
    let mut ca_certs = Vec::new();
    if let Some(cert_ref) = &repo.spec.cert_secret_ref {
        let namespace = repo.namespace().unwrap_or_default();
        let data = secret_data(
            ctx.client(),
            &namespace,
            &cert_ref.name,
            reason::AUTHENTICATION_FAILED,
        )
        .await?;
        // `caFile` is the key of the deprecated v1beta2 format.
        ca_certs.extend(data.get("ca.crt").or_else(|| data.get("caFile")).cloned());
    }
    Ok(OciOptions {
        auth: registry_auth(repo, ctx, registry).await?,
        insecure: repo.spec.insecure == Some(true),
        max_layer_size: None,
        ca_certs,
    })
}

/// The trusted keys of a `verify` spec: every `*.pub` entry of its `secretRef` in `namespace`.
/// Shared by every source kind that verifies OCI artifacts (OCIRepository, HelmChart).
pub(crate) async fn cosign_keys(
    client: &kube::Client,
    namespace: &str,
    verify: &ferroflux_api::source::OCIRepositoryVerification,
) -> Result<PublicKeys, ReconcileError> {
    if verify.provider != "cosign" {
        return Err(ReconcileError::stalling(
            reason::VERIFICATION_ERROR,
            format!(
                "verification provider '{}' is not supported; use 'cosign'",
                verify.provider
            ),
        ));
    }
    // Flux hands a Sigstore trusted root to cosign to check Fulcio certificates and Rekor
    // entries; this verifier checks keyed signatures only and could not honour it, so the
    // field is refused rather than accepted and ignored.
    if let Some(root) = &verify.trusted_root_secret_ref {
        return Err(ReconcileError::stalling(
            reason::VERIFICATION_ERROR,
            format!(
                "spec.verify.trustedRootSecretRef ('{}') is not supported: custom Sigstore infrastructure (Fulcio, Rekor) cannot be verified; remove it and verify with the public keys of spec.verify.secretRef",
                root.name
            ),
        ));
    }
    let Some(secret_ref) = &verify.secret_ref else {
        return Err(ReconcileError::stalling(
            reason::VERIFICATION_ERROR,
            "keyless cosign verification is not supported; set spec.verify.secretRef to a Secret with *.pub keys",
        ));
    };
    let data = secret_data(
        client,
        namespace,
        &secret_ref.name,
        reason::VERIFICATION_ERROR,
    )
    .await?;
    let pems: Vec<(String, String)> = data
        .iter()
        .filter(|(k, _)| k.ends_with(".pub"))
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    PublicKeys::from_pems(pems.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| {
        ReconcileError::stalling(
            reason::VERIFICATION_ERROR,
            format!("secret '{namespace}/{}': {e}", secret_ref.name),
        )
    })
}

fn oci_ref(repo: &OCIRepository) -> OciRef {
    let r = repo.spec.reference.clone().unwrap_or_default();
    OciRef {
        tag: r.tag,
        semver: r.semver,
        semver_filter: r.semver_filter,
        digest: r.digest,
    }
}

/// Whether the stored artifact already is what the spec and the registry ask for.
fn is_current(repo: &OCIRepository, resolved: &Resolved, storage: &Storage) -> Option<Artifact> {
    let status = repo.status.as_ref()?;
    let current = status.artifact.as_ref()?;
    (current.revision == resolved.revision
        && status.observed_ignore == repo.spec.ignore
        && status.observed_layer_selector == repo.spec.layer_selector)
        .then(|| storage.stored_url(&current.path))
        .flatten()
        .map(|url| Artifact {
            url,
            ..current.clone()
        })
}

/// Owns `FetchFailed`, `SourceVerified` and the artifact. Requeues on the interval; registry
/// errors retry, spec errors stall.
async fn reconcile_source(repo: &OCIRepository, ctx: &Context) -> Outcome {
    let timeout = optional_spec_duration(
        "spec.timeout",
        repo.spec.timeout.as_deref(),
        Duration::from_secs(60),
    )
    .map_err(fetch_failed)?;
    match tokio::time::timeout(timeout, reconcile_source_inner(repo, ctx)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(fetch_failed(ReconcileError::generic(
            reason::OCI_PULL_FAILED,
            format!(
                "registry operations did not finish within the timeout of {}; raise spec.timeout if the artifact is large",
                go_duration(timeout)
            ),
        ))),
    }
}

async fn reconcile_source_inner(repo: &OCIRepository, ctx: &Context) -> Outcome {
    let url = repo.spec.url.as_str();
    let base = oci::parse_url(url).map_err(|e| fetch_failed(oci_error("invalid spec.url", e)))?;
    let registry = base.registry().to_string();
    let repository = format!("oci://{registry}/{}", base.repository());
    let options = client_options(repo, ctx, &registry)
        .await
        .map_err(fetch_failed)?;
    let client = OciClient::new(&options)
        .map_err(|e| fetch_failed(oci_error("configuring the registry client", e)))?;
    let resolved = client
        .resolve(&repository, &oci_ref(repo))
        .await
        .map_err(|e| fetch_failed(oci_error("failed to determine artifact digest", e)))?;
    let with_revision = |step, error| Failed {
        step,
        error,
        revision: Some(resolved.revision.clone()),
    };

    let current = is_current(repo, &resolved, &ctx.storage);
    let mut verified = false;
    if let Some(verify) = &repo.spec.verify {
        let previously_verified = current.is_some()
            && repo
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .and_then(|c| conditions::get(c, condition_type::SOURCE_VERIFIED))
                // A spec change (e.g. other keys) needs a new verification, as in Flux.
                .is_some_and(|c| {
                    c.status == "True" && c.observed_generation == repo.metadata.generation
                });
        if !previously_verified {
            let keys = cosign_keys(ctx.client(), &repo.namespace().unwrap_or_default(), verify)
                .await
                .map_err(|e| with_revision(Step::Verify, e))?;
            let verification = cosign::verify(&client, &repository, &resolved.digest, &keys)
                .await
                .map_err(|e| {
                    ReconcileError::generic(
                        reason::VERIFICATION_ERROR,
                        format!("failed to verify the signature using provider 'cosign': {e}"),
                    )
                });
            let ok = verification.map_err(|e| with_revision(Step::Verify, e))?;
            info!(revision = %resolved.revision, key = %ok.key, "verified cosign signature");
        }
        verified = true;
    }
    if let Some(artifact) = current {
        return Ok(Stored { artifact, verified });
    }

    // Pull by digest: the bytes stored are exactly the ones whose signature was checked.
    let selector = repo.spec.layer_selector.clone().unwrap_or_default();
    let pulled = client
        .pull(
            &format!("{repository}@{}", resolved.digest),
            selector.media_type.as_deref(),
        )
        .await
        .map_err(|e| {
            with_revision(
                Step::Fetch,
                oci_error(&format!("failed to pull artifact from '{url}'"), e),
            )
        })?;
    let key = ctx.key(repo);
    let stored = store_layer(
        &ctx.storage,
        &key,
        &resolved.revision,
        pulled.layer,
        &selector,
        repo.spec.ignore.clone(),
    )
    .await
    .map_err(|e| with_revision(Step::Store, e))?;
    info!(revision = %resolved.revision, repository = %key.name, "stored artifact");
    let mut metadata = stored.metadata.clone();
    metadata.extend(pulled.annotations);
    Ok(Stored {
        artifact: Artifact {
            metadata: (!metadata.is_empty()).then_some(metadata),
            ..crate::source::status_artifact(stored)
        },
        verified,
    })
}

/// `copy` stores the layer as it is; `extract` (the default) unpacks it safely first, so a
/// malicious tarball is refused, and repacks it when `spec.ignore` drops files.
async fn store_layer(
    storage: &Storage,
    key: &ObjectKey,
    revision: &str,
    layer: Vec<u8>,
    selector: &OCILayerSelector,
    ignore: Option<String>,
) -> Result<ferroflux_source::Artifact, ReconcileError> {
    let storage_error = |e: ferroflux_source::storage::StorageError| {
        ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
    };
    if selector.operation.as_deref() == Some("copy") {
        return storage
            .store_bytes(key, revision, &layer)
            .map_err(storage_error);
    }
    let (storage, key, revision) = (storage.clone(), key.clone(), revision.to_string());
    tokio::task::spawn_blocking(move || {
        let workdir = tempfile::tempdir().map_err(|e| {
            ReconcileError::generic(STORAGE_FAILED, format!("temporary directory: {e}"))
        })?;
        ferroflux_source::artifact::extract_tar_gz(
            &layer[..],
            workdir.path(),
            &ExtractOptions::default(),
        )
        .map_err(|e| {
            ReconcileError::generic(
                reason::OCI_PULL_FAILED,
                format!("failed to extract layer: {e}"),
            )
        })?;
        match ignore {
            Some(ignore) => storage.store_dir(
                &key,
                &revision,
                workdir.path(),
                &IgnoreRules::none().with_spec_ignore(&ignore),
            ),
            None => storage.store_bytes(&key, &revision, &layer),
        }
        .map_err(storage_error)
    })
    .await
    .map_err(|e| ReconcileError::generic(STORAGE_FAILED, e.to_string()))?
}

/// The status a reconciliation ends with, in Flux's words: `Ready`, `ArtifactInStorage`,
/// `FetchFailed`, `SourceVerified`, `ArtifactOutdated` and `Stalled`.
fn summarize(repo: &OCIRepository, outcome: &Outcome, at: Time) -> OCIRepositoryStatus {
    use condition_type::{ARTIFACT_IN_STORAGE, ARTIFACT_OUTDATED, FETCH_FAILED, SOURCE_VERIFIED};
    let mut status = repo.status.clone().unwrap_or_default();
    let generation = repo.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    let mark = |conds: &mut Vec<_>, type_, state, reason, message: &str| {
        conditions::mark(conds, type_, state, reason, message, generation, &at);
    };
    match outcome {
        Ok(stored) => {
            let revision = &stored.artifact.revision;
            let message = format!("stored artifact for digest '{revision}'");
            conditions::set_outcome(&mut conds, Ok((SUCCEEDED, &message)), generation, &at);
            mark(&mut conds, ARTIFACT_IN_STORAGE, "True", SUCCEEDED, &message);
            if stored.verified {
                let verified = format!("verified signature of revision {revision}");
                mark(&mut conds, SOURCE_VERIFIED, "True", SUCCEEDED, &verified);
            } else {
                conditions::delete(&mut conds, SOURCE_VERIFIED);
            }
            for gone in [FETCH_FAILED, ARTIFACT_OUTDATED] {
                conditions::delete(&mut conds, gone);
            }
            status.url = Some(stored.artifact.url.clone());
            status.artifact = Some(stored.artifact.clone());
            status.observed_ignore = repo.spec.ignore.clone();
            status.observed_layer_selector = repo.spec.layer_selector.clone();
        }
        Err(failed) => {
            let err = &failed.error;
            conditions::set_outcome(&mut conds, Err(err), generation, &at);
            match failed.step {
                Step::Fetch => mark(&mut conds, FETCH_FAILED, "True", err.reason, &err.message),
                Step::Verify => {
                    conditions::delete(&mut conds, FETCH_FAILED);
                    mark(
                        &mut conds,
                        SOURCE_VERIFIED,
                        "False",
                        err.reason,
                        &err.message,
                    );
                }
                Step::Store => conditions::delete(&mut conds, FETCH_FAILED),
            }
            match (&failed.revision, status.artifact.as_ref()) {
                (Some(revision), Some(current)) if &current.revision != revision => {
                    let message = format!("new digest '{revision}' for '{}'", repo.spec.url);
                    mark(
                        &mut conds,
                        ARTIFACT_OUTDATED,
                        "True",
                        NEW_REVISION,
                        &message,
                    );
                }
                _ => conditions::delete(&mut conds, ARTIFACT_OUTDATED),
            }
        }
    }
    status.conditions = Some(conds);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Retry;
    use ferroflux_api::source::OCIRepositorySpec;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    fn artifact(revision: &str) -> Artifact {
        Artifact {
            path: "ocirepository/ns/app/x.tar.gz".into(),
            url: "http://storage/ocirepository/ns/app/x.tar.gz".into(),
            revision: revision.into(),
            digest: Some("sha256:00".into()),
            last_update_time: time(1),
            size: Some(10),
            metadata: None,
        }
    }

    fn repo(status: Option<OCIRepositoryStatus>) -> OCIRepository {
        let mut repo = OCIRepository::new(
            "app",
            OCIRepositorySpec {
                url: "oci://r.example/app".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        repo.metadata.generation = Some(3);
        repo.status = status;
        repo
    }

    fn cond<'a>(
        status: &'a OCIRepositoryStatus,
        type_: &str,
    ) -> Option<&'a ferroflux_api::meta::Condition> {
        conditions::get(status.conditions.as_deref().unwrap_or_default(), type_)
    }

    #[test]
    fn success_sets_ready_artifact_and_verified() {
        let outcome = Ok(Stored {
            artifact: artifact("1.2.0@sha256:ab"),
            verified: true,
        });
        let status = summarize(&repo(None), &outcome, time(5));
        let ready = cond(&status, "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Succeeded")
        );
        assert_eq!(
            ready.message,
            "stored artifact for digest '1.2.0@sha256:ab'"
        );
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(
            cond(&status, "SourceVerified").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            cond(&status, "ArtifactInStorage").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            status.url.as_deref(),
            Some("http://storage/ocirepository/ns/app/x.tar.gz")
        );
    }

    #[test]
    fn verification_failure_keeps_the_previous_artifact() {
        let first = summarize(
            &repo(None),
            &Ok(Stored {
                artifact: artifact("1.0.0@sha256:aa"),
                verified: true,
            }),
            time(5),
        );
        let failed = Failed {
            step: Step::Verify,
            error: ReconcileError::generic(reason::VERIFICATION_ERROR, "no signature"),
            revision: Some("1.1.0@sha256:bb".into()),
        };
        let status = summarize(&repo(Some(first)), &Err(failed), time(9));
        let ready = cond(&status, "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "VerificationError")
        );
        let verified = cond(&status, "SourceVerified").expect("SourceVerified");
        assert_eq!(
            (verified.status.as_str(), verified.reason.as_str()),
            ("False", "VerificationError")
        );
        assert_eq!(
            status.artifact.as_ref().map(|a| a.revision.as_str()),
            Some("1.0.0@sha256:aa")
        );
        assert_eq!(
            cond(&status, "ArtifactInStorage").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            cond(&status, "ArtifactOutdated").map(|c| c.reason.as_str()),
            Some("NewRevision")
        );
        assert!(cond(&status, "FetchFailed").is_none());
        assert!(
            cond(&status, "Stalled").is_none(),
            "verification failures retry"
        );
    }

    #[test]
    fn fetch_failures_set_fetch_failed_and_stall_only_on_spec_errors() {
        let failed = Failed {
            step: Step::Fetch,
            error: ReconcileError::stalling(URL_INVALID, "bad url"),
            revision: None,
        };
        let status = summarize(&repo(None), &Err(failed), time(5));
        assert_eq!(
            cond(&status, "FetchFailed").map(|c| c.reason.as_str()),
            Some("URLInvalid")
        );
        assert_eq!(
            cond(&status, "Stalled").map(|c| c.status.as_str()),
            Some("True")
        );
        let failed = Failed {
            step: Step::Fetch,
            error: ReconcileError::generic(reason::AUTHENTICATION_FAILED, "401"),
            revision: None,
        };
        let status = summarize(&repo(Some(status)), &Err(failed), time(6));
        assert_eq!(
            cond(&status, "Ready").map(|c| c.reason.as_str()),
            Some("AuthenticationFailed")
        );
        assert!(cond(&status, "Stalled").is_none());
        assert!(status.artifact.is_none());
    }

    #[test]
    fn registry_errors_are_classified_like_flux() {
        let auth = oci_error(
            "x",
            OciError::Auth {
                registry: "r".into(),
                message: "401".into(),
            },
        );
        assert_eq!(
            (auth.reason, auth.retry),
            (reason::AUTHENTICATION_FAILED, Retry::Generic)
        );
        let url = oci_error(
            "x",
            OciError::InvalidUrl {
                url: "u".into(),
                why: "w".into(),
            },
        );
        assert_eq!((url.reason, url.retry), (URL_INVALID, Retry::Stalling));
        let missing = oci_error(
            "x",
            OciError::NoSemverMatch {
                range: ">=9".into(),
                repository: "r".into(),
            },
        );
        assert_eq!(
            (missing.reason, missing.retry),
            (reason::OCI_PULL_FAILED, Retry::Generic)
        );
    }
}
