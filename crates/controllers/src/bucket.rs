//! The Bucket reconciler (part of `ferroflux controller source`): list the objects of an
//! S3-compatible bucket under `spec.prefix`, compute Flux's revision over their keys and
//! ETags, and download and package them only when that revision or the ignore rules changed.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use ferroflux_api::meta::{Artifact, RECONCILE_REQUEST_ANNOTATION, Time, reason};
use ferroflux_api::source::{Bucket, BucketStatus};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::bucket::{self, BucketError, BucketSpec};
use ferroflux_source::storage::{ObjectKey, Storage};

use crate::events::Recorder;
use crate::ocirepository::secret_data;
use crate::runtime::{
    FINALIZER, ReconcileError, go_duration, now, optional_spec_duration, patch_status, record,
    set_source_conditions, spec_duration,
};

/// Flux's reason for failed bucket operations.
const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";
const STORAGE_FAILED: &str = "StorageOperationFailed";
const SUCCEEDED: &str = "Succeeded";
const KIND: &str = "Bucket";

/// What the reconciler needs.
pub struct Context {
    /// The controller's client.
    pub client: Client,
    /// Where artifacts are kept and served from.
    pub storage: Arc<Storage>,
    recorder: Recorder,
    backoff: crate::runtime::Backoff,
}

impl Context {
    /// A context whose events are reported as `source-controller`.
    pub fn new(client: Client, storage: Arc<Storage>) -> Self {
        Context {
            recorder: crate::runtime::recorder(&client, "source-controller"),
            backoff: crate::runtime::Backoff::default(),
            client,
            storage,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Bucket> = Api::all(context.client.clone());
    crate::runtime::drive(
        crate::runtime::controller(api, watcher::Config::default()),
        reconcile,
        context,
        shutdown,
    )
    .await;
}

async fn reconcile(
    object: Arc<Bucket>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Bucket> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Event::Apply(object) => reconcile_apply(&api, &object, &ctx).await,
            Event::Cleanup(object) => {
                let key = ObjectKey::new(KIND, &namespace, &object.name_any());
                if let Err(err) = ctx.storage.remove_all(&key) {
                    warn!(%err, "could not remove the artifacts of a deleted Bucket");
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
}

async fn reconcile_apply(
    api: &Api<Bucket>,
    object: &Bucket,
    ctx: &Context,
) -> Result<Action, kube::Error> {
    if object.spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let interval = spec_duration("spec.interval", &object.spec.interval);
    let previous = object
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone());
    let result = match &interval {
        Ok(_) => reconcile_artifact(object, ctx).await,
        Err(err) => Err(err.clone()),
    };
    // An invalid interval stalls, so the fallback is never used for a requeue.
    let interval = interval.unwrap_or_default();
    let reference = object.object_ref(&());
    match &result {
        Ok(artifact) if previous.as_deref() != Some(artifact.revision.as_str()) => {
            let note = format!("stored artifact with revision '{}'", artifact.revision);
            record(&ctx.recorder, &reference, false, "NewArtifact", &note).await;
        }
        Ok(_) => {}
        Err(err) => record(&ctx.recorder, &reference, true, err.reason, &err.message).await,
    }
    let key = format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    );
    let action = ctx.backoff.action(&key, result.as_ref().map(|_| interval));
    let status = summarize(object, result, now());
    patch_status(
        api,
        &object.name_any(),
        serde_json::to_value(status).expect("status serialises"),
    )
    .await?;
    Ok(action)
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
    if let Some(secret_ref) = &object.spec.secret_ref {
        let namespace = object.namespace().unwrap_or_default();
        let data = secret_data(
            &ctx.client,
            &namespace,
            &secret_ref.name,
            reason::AUTHENTICATION_FAILED,
        )
        .await?;
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
        };
        spec.access_key = text("accesskey");
        spec.secret_key = text("secretkey");
        if spec.access_key.is_none() || spec.secret_key.is_none() {
            return Err(ReconcileError::stalling(
                reason::AUTHENTICATION_FAILED,
                format!(
                    "secret '{namespace}/{}' needs both 'accesskey' and 'secretkey'",
                    secret_ref.name
                ),
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
    let key = ObjectKey::new(
        KIND,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    );
    // The listing already applied the ignore rules; pack what was downloaded as it is.
    let stored = ctx
        .storage
        .store_dir(&key, &index.revision, workdir.path(), &IgnoreRules::none())
        .map_err(|e| {
            ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
        })?;
    info!(revision = %index.revision, bucket = %key.name, objects = index.objects.len(), "stored artifact");
    Ok(Artifact {
        path: stored.path,
        url: stored.url,
        revision: stored.revision,
        digest: Some(stored.digest),
        last_update_time: Time(stored.last_update_time),
        size: i64::try_from(stored.size).ok(),
        metadata: None,
    })
}

fn summarize(object: &Bucket, result: Result<Artifact, ReconcileError>, at: Time) -> BucketStatus {
    let mut status = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    match result {
        Ok(artifact) => {
            let message = format!("stored artifact: revision '{}'", artifact.revision);
            set_source_conditions(&mut conds, Ok((SUCCEEDED, &message)), generation, &at);
            status.url = Some(artifact.url.clone());
            status.artifact = Some(artifact);
            status.observed_ignore = object.spec.ignore.clone();
        }
        Err(err) => set_source_conditions(&mut conds, Err(&err), generation, &at),
    }
    status.conditions = Some(conds);
    status.observed_generation = generation;
    if let Some(requested) = object.annotations().get(RECONCILE_REQUEST_ANNOTATION) {
        status.last_handled_reconcile_at = Some(requested.clone());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions;
    use crate::runtime::Retry;
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
