//! The HelmRepository reconciler (part of `ferroflux controller source`): download the
//! repository's `index.yaml` (basic auth from `secretRef`, extra CA from `certSecretRef`) and
//! keep it as the artifact, revision `sha256:<digest of the index>`. Repositories of
//! `type: oci` have no index and no artifact: like Flux, they are left alone.

use std::time::Duration;

use kube::ResourceExt;
use tracing::info;

use ferroflux_api::meta::{Artifact, reason};
use ferroflux_api::source::{HelmRepository, HelmRepositoryStatus};
use ferroflux_source::helm_index::{self, HelmAuth, HelmIndexError};

use crate::ocirepository::{referenced_secret, secret_data};
use crate::runtime::{ReconcileError, optional_spec_duration};
use crate::source::{ArtifactSource, STORAGE_FAILED};

/// Flux's reason when the index cannot be downloaded or parsed.
const INDEXATION_FAILED: &str = "IndexationFailed";
const URL_INVALID: &str = "URLInvalid";

/// What the reconciler needs.
pub type Context = crate::source::Context<HelmRepository>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl ArtifactSource for HelmRepository {
    fn stored_event(artifact: &Artifact) -> String {
        format!(
            "stored fetched index of size {}",
            artifact.size.unwrap_or(0)
        )
    }

    /// An OCI repository is a static object in Flux: no finalizer, no status.
    fn managed(&self) -> bool {
        self.spec.repository_type.as_deref() != Some("oci")
    }

    async fn fetch(&self, ctx: &Context) -> Result<Artifact, ReconcileError> {
        reconcile_artifact(self, ctx).await
    }

    fn record(&self, status: &mut HelmRepositoryStatus, artifact: Artifact) {
        status.url = Some(artifact.url.clone());
        status.artifact = Some(artifact);
    }
}

/// Flux's classification of index errors.
fn index_error(err: HelmIndexError) -> ReconcileError {
    let message = format!("failed to fetch Helm repository index: {err}");
    match err {
        HelmIndexError::Status {
            status: 401 | 403, ..
        } => ReconcileError::generic(reason::AUTHENTICATION_FAILED, message),
        _ => ReconcileError::generic(INDEXATION_FAILED, message),
    }
}

/// An HTTP client trusting `ca.crt` of the `certSecretRef`, and basic auth from `secretRef`.
async fn client_and_auth(
    repo: &HelmRepository,
    ctx: &Context,
) -> Result<(reqwest::Client, Option<HelmAuth>), ReconcileError> {
    let namespace = repo.namespace().unwrap_or_default();
    let timeout = optional_spec_duration(
        "spec.timeout",
        repo.spec.timeout.as_deref(),
        Duration::from_secs(60),
    )?;
    let mut http = ferroflux_source::http::HttpOptions::default().with_timeout(timeout);
    if let Some(cert_ref) = &repo.spec.cert_secret_ref {
        let data = secret_data(
            ctx.client(),
            &namespace,
            &cert_ref.name,
            reason::AUTHENTICATION_FAILED,
        )
        .await?;
        if let Some(pem) = data.get("ca.crt").or_else(|| data.get("caFile")) {
            http.ca_pem.push(pem.clone());
        }
    }
    let client = http.client().map_err(|e| {
        let secret = repo
            .spec
            .cert_secret_ref
            .as_ref()
            .map_or("", |r| r.name.as_str());
        ReconcileError::stalling(
            reason::AUTHENTICATION_FAILED,
            format!("secret '{namespace}/{secret}': ca.crt: {e}"),
        )
    })?;
    let mut auth = None;
    let secret_ref = repo.spec.secret_ref.as_ref();
    if let Some((name, data)) = referenced_secret(ctx.client(), &namespace, secret_ref).await? {
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        match (text("username"), text("password")) {
            (Some(username), Some(password)) => auth = Some(HelmAuth { username, password }),
            (None, None) => {}
            _ => {
                return Err(ReconcileError::stalling(
                    reason::AUTHENTICATION_FAILED,
                    format!("secret '{namespace}/{name}' needs both 'username' and 'password'"),
                ));
            }
        }
    }
    Ok((client, auth))
}

/// Owns `FetchFailed` and the artifact (the index bytes): a new one only when the index
/// changed or the stored file is gone.
async fn reconcile_artifact(
    repo: &HelmRepository,
    ctx: &Context,
) -> Result<Artifact, ReconcileError> {
    let url = repo.spec.url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ReconcileError::stalling(
            URL_INVALID,
            format!(
                "invalid Helm repository URL '{url}': use http:// or https://, or set spec.type: oci for oci:// URLs"
            ),
        ));
    }
    let (client, auth) = client_and_auth(repo, ctx).await?;
    let (index, bytes) = helm_index::fetch_index(&client, url, auth.as_ref())
        .await
        .map_err(index_error)?;
    let revision = ferroflux_source::sha256_digest(&bytes);
    if let Some(current) = repo.status.as_ref().and_then(|s| s.artifact.as_ref())
        && current.revision == revision
        && let Some(url) = ctx.storage.stored_url(&current.path)
    {
        return Ok(Artifact {
            url,
            ..current.clone()
        });
    }
    let key = ctx.key(repo);
    let stored = ctx
        .storage
        .store_bytes(&key, &revision, &bytes)
        .map_err(|e| {
            ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
        })?;
    info!(%revision, repository = %key.name, charts = index.entries.len(), "stored index");
    Ok(crate::source::status_artifact(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions;
    use crate::runtime::Retry;
    use crate::source::summarize;
    use ferroflux_api::meta::Time;

    #[test]
    fn unauthorized_is_an_authentication_failure_and_others_indexation() {
        let denied = index_error(HelmIndexError::Status {
            url: "http://h/index.yaml".into(),
            status: 401,
            hint: "",
        });
        assert_eq!(denied.reason, reason::AUTHENTICATION_FAILED);
        let missing = index_error(HelmIndexError::Status {
            url: "http://h/index.yaml".into(),
            status: 404,
            hint: "",
        });
        assert_eq!(
            (missing.reason, missing.retry),
            (INDEXATION_FAILED, Retry::Generic)
        );
        assert!(
            missing
                .message
                .starts_with("failed to fetch Helm repository index")
        );
    }

    #[test]
    fn a_stalled_failure_sets_stalled_and_success_clears_it() {
        let mut repo = HelmRepository::new("podinfo", Default::default());
        repo.metadata.generation = Some(1);
        let at = Time(jiff::Timestamp::from_second(1).expect("valid"));
        let status = summarize(
            &repo,
            Err(ReconcileError::stalling(URL_INVALID, "bad")),
            at.clone(),
        );
        let conds = status.conditions.clone().unwrap_or_default();
        assert!(conditions::is_true(&conds, "Stalled"));
        assert!(conditions::is_true(&conds, "FetchFailed"));
        repo.status = Some(status);
        let artifact = Artifact {
            path: "p".into(),
            url: "u".into(),
            revision: "sha256:ab".into(),
            digest: None,
            last_update_time: at.clone(),
            size: None,
            metadata: None,
        };
        let status = summarize(&repo, Ok(artifact), at);
        let conds = status.conditions.unwrap_or_default();
        assert!(conditions::is_true(&conds, "Ready"));
        assert!(conditions::get(&conds, "Stalled").is_none());
        assert!(conditions::get(&conds, "FetchFailed").is_none());
    }
}
