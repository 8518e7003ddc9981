//! The Bucket reconciler (part of `ferroflux controller source`): list the objects of an
//! S3-compatible bucket under `spec.prefix`, compute Flux's revision over their keys and
//! ETags, and download and package them only when that revision or the ignore rules changed.

use std::time::Duration;

use kube::ResourceExt;
use tracing::info;

use ferroflux_api::meta::{Artifact, reason};
use ferroflux_api::source::{Bucket, BucketStatus};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::bucket::{self, BucketError, BucketSpec};

use crate::ocirepository::referenced_secret;
use crate::runtime::{ReconcileError, go_duration, optional_spec_duration};
use crate::source::{ArtifactSource, STORAGE_FAILED};

/// Flux's reason for failed bucket operations.
const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";

/// What the reconciler needs.
pub type Context = crate::source::Context<Bucket>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl ArtifactSource for Bucket {
    fn stored_event(artifact: &Artifact) -> String {
        format!("stored artifact with revision '{}'", artifact.revision)
    }

    async fn fetch(&self, ctx: &Context) -> Result<Artifact, ReconcileError> {
        reconcile_artifact(self, ctx).await
    }

    fn record(&self, status: &mut BucketStatus, artifact: Artifact) {
        status.url = Some(artifact.url.clone());
        status.artifact = Some(artifact);
        status.observed_ignore = self.spec.ignore.clone();
    }
}

/// Flux's classification of bucket errors.
fn bucket_error(err: BucketError) -> ReconcileError {
    let message = err.to_string();
    match err {
        BucketError::Auth { .. } => ReconcileError::generic(reason::AUTHENTICATION_FAILED, message),
        // Neither a bad endpoint nor a bad ignore pattern fixes itself.
        BucketError::Config { .. } | BucketError::Ignore(_) => {
            ReconcileError::stalling(BUCKET_OPERATION_FAILED, message)
        }
        _ => ReconcileError::generic(BUCKET_OPERATION_FAILED, message),
    }
}

/// The connection settings: spec plus `accesskey`/`secretkey` from the `secretRef`.
async fn connection(object: &Bucket, ctx: &Context) -> Result<BucketSpec, ReconcileError> {
    let provider = object.spec.provider.as_deref().unwrap_or("generic");
    if !["generic", "aws"].contains(&provider) {
        return Err(ReconcileError::stalling(
            BUCKET_OPERATION_FAILED,
            format!("bucket provider '{provider}' is not supported; use 'generic' or 'aws'"),
        ));
    }
    let mut spec = BucketSpec {
        endpoint: object.spec.endpoint.clone(),
        bucket_name: object.spec.bucket_name.clone(),
        region: object.spec.region.clone(),
        prefix: object.spec.prefix.clone(),
        insecure: object.spec.insecure == Some(true),
        access_key: None,
        secret_key: None,
    };
    let namespace = object.namespace().unwrap_or_default();
    let secret_ref = object.spec.secret_ref.as_ref();
    if let Some((name, data)) = referenced_secret(ctx.client(), &namespace, secret_ref).await? {
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        spec.access_key = text("accesskey");
        spec.secret_key = text("secretkey");
        if spec.access_key.is_none() || spec.secret_key.is_none() {
            return Err(ReconcileError::stalling(
                reason::AUTHENTICATION_FAILED,
                format!("secret '{namespace}/{name}' needs both 'accesskey' and 'secretkey'"),
            ));
        }
    }
    Ok(spec)
}

fn ignore_rules(object: &Bucket) -> IgnoreRules {
    match &object.spec.ignore {
        Some(ignore) => IgnoreRules::flux_defaults().with_spec_ignore(ignore),
        None => IgnoreRules::flux_defaults(),
    }
}

/// Owns `FetchFailed` and the artifact: a new one only when the listing's revision or the
/// ignore rules changed, or the stored file is gone.
async fn reconcile_artifact(object: &Bucket, ctx: &Context) -> Result<Artifact, ReconcileError> {
    let timeout = optional_spec_duration(
        "spec.timeout",
        object.spec.timeout.as_deref(),
        Duration::from_secs(60),
    )?;
    match tokio::time::timeout(timeout, fetch_and_store(object, ctx)).await {
        Ok(result) => result,
        Err(_) => Err(ReconcileError::generic(
            BUCKET_OPERATION_FAILED,
            format!(
                "bucket operations did not finish within the timeout of {}; raise spec.timeout",
                go_duration(timeout)
            ),
        )),
    }
}

async fn fetch_and_store(object: &Bucket, ctx: &Context) -> Result<Artifact, ReconcileError> {
    let spec = connection(object, ctx).await?;
    let index = bucket::index(&spec, &ignore_rules(object))
        .await
        .map_err(bucket_error)?;
    let status = object.status.clone().unwrap_or_default();
    if let Some(current) = &status.artifact
        && current.revision == index.revision
        && status.observed_ignore == object.spec.ignore
        && let Some(url) = ctx.storage.stored_url(&current.path)
    {
        return Ok(Artifact {
            url,
            ..current.clone()
        });
    }
    let workdir = tempfile::tempdir().map_err(|e| {
        ReconcileError::generic(STORAGE_FAILED, format!("temporary directory: {e}"))
    })?;
    bucket::download(&spec, &index, workdir.path())
        .await
        .map_err(bucket_error)?;
    let key = ctx.key(object);
    // The listing already applied the ignore rules; pack what was downloaded as it is.
    let stored = ctx
        .storage
        .store_dir(&key, &index.revision, workdir.path(), &IgnoreRules::none())
        .map_err(|e| {
            ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
        })?;
    info!(revision = %index.revision, bucket = %key.name, objects = index.objects.len(), "stored artifact");
    Ok(crate::source::status_artifact(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions;
    use crate::runtime::Retry;
    use crate::source::summarize;
    use ferroflux_api::meta::Time;
    use ferroflux_api::source::BucketSpec as Spec;

    fn object() -> Bucket {
        let mut object = Bucket::new(
            "fleet",
            Spec {
                bucket_name: "fleet".into(),
                endpoint: "127.0.0.1:9000".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        object.metadata.generation = Some(2);
        object
    }

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    #[test]
    fn a_failure_after_success_keeps_the_artifact_and_sets_fetch_failed() {
        let artifact = Artifact {
            path: "bucket/ns/fleet/a.tar.gz".into(),
            url: "http://s/bucket/ns/fleet/a.tar.gz".into(),
            revision: "sha256:aa".into(),
            digest: Some("sha256:bb".into()),
            last_update_time: time(1),
            size: Some(1),
            metadata: None,
        };
        let mut object = object();
        object.status = Some(summarize(&object, Ok(artifact), time(2)));
        let ready = |s: &BucketStatus| {
            conditions::get(s.conditions.as_deref().unwrap_or_default(), "Ready")
                .cloned()
                .expect("Ready")
        };
        let first = object.status.clone().expect("status");
        assert_eq!(
            ready(&first).message,
            "stored artifact: revision 'sha256:aa'"
        );
        let failed = ReconcileError::generic(reason::AUTHENTICATION_FAILED, "access denied");
        let status = summarize(&object, Err(failed), time(3));
        assert_eq!(ready(&status).reason, "AuthenticationFailed");
        assert!(conditions::is_true(
            status.conditions.as_deref().unwrap_or_default(),
            "FetchFailed"
        ));
        assert!(conditions::is_true(
            status.conditions.as_deref().unwrap_or_default(),
            "ArtifactInStorage"
        ));
        assert_eq!(
            status.artifact.map(|a| a.revision).as_deref(),
            Some("sha256:aa")
        );
    }

    #[test]
    fn bucket_errors_are_classified() {
        let auth = bucket_error(BucketError::Auth {
            bucket: "b".into(),
            endpoint: "e".into(),
            message: "403".into(),
        });
        assert_eq!(
            (auth.reason, auth.retry),
            (reason::AUTHENTICATION_FAILED, Retry::Generic)
        );
        let config = bucket_error(BucketError::Config {
            bucket: "b".into(),
            endpoint: "e".into(),
            message: "bad".into(),
        });
        assert_eq!(config.retry, Retry::Stalling);
        let missing = bucket_error(BucketError::NotFound {
            bucket: "b".into(),
            endpoint: "e".into(),
        });
        assert_eq!(
            (missing.reason, missing.retry),
            (BUCKET_OPERATION_FAILED, Retry::Generic)
        );
    }
}
