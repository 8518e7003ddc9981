//! What the source kinds (GitRepository, OCIRepository, Bucket, HelmRepository) share on the
//! runtime: a context with the artifact storage, the removal of a deleted object's artifacts and
//! the `NewArtifact` event, the one [`Reconciler`] of every kind that fetches one artifact
//! ([`ArtifactSource`]); and the watch of source artifacts for the kinds that read them.

use std::marker::PhantomData;
use std::sync::Arc;

use ferroflux_api::meta::{Artifact, Time};
use ferroflux_api::source::{BucketStatus, GitRepositoryStatus, HelmRepositoryStatus};
use ferroflux_source::storage::{ObjectKey, Storage};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::core::object::HasStatus;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::warn;

use crate::metrics::Metrics;
use crate::runtime::{self, Conditioned, Note, Object, ReconcileError, Reconciler, SUCCEEDED};

/// Flux's reason when an artifact cannot be written to the storage.
pub const STORAGE_FAILED: &str = "StorageOperationFailed";

/// The context of the source controller of kind `K`.
pub struct Context<K> {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// Where artifacts are kept and served from.
    pub storage: Arc<Storage>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Object> Context<K> {
    /// A context whose events are reported as `source-controller`.
    pub fn new(client: Client, storage: Arc<Storage>) -> Self {
        Context {
            runtime: runtime::Context::new(client, "source-controller"),
            storage,
            kind: PhantomData,
        }
    }

    /// Records Flux's metrics of every reconciliation in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.runtime = self.runtime.with_metrics(metrics);
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.runtime.client
    }

    /// Where the artifacts of `object` are stored.
    pub fn key(&self, object: &K) -> ObjectKey {
        ObjectKey::new(
            &K::kind(&()),
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        )
    }

    /// Removes every artifact of a deleted `object`; a failure is logged, never fatal.
    pub fn remove_artifacts(&self, object: &K) {
        if let Err(err) = self.storage.remove_all(&self.key(object)) {
            let kind = K::kind(&());
            warn!(%err, "could not remove the artifacts of a deleted {kind}");
        }
    }
}

/// A source kind whose reconciliation fetches one artifact and stores it (GitRepository,
/// Bucket, HelmRepository): the kind says how to fetch and what its status records besides,
/// and its [`Context`] is its [`Reconciler`] (finalizer, artifact removal on deletion,
/// `NewArtifact` events, the `Ready`/`ArtifactInStorage`/`FetchFailed` conditions).
pub trait ArtifactSource: Object + runtime::Scheduled + HasStatus<Status: ArtifactStatus> {
    /// The message of the `NewArtifact` event, e.g. `stored artifact for revision '…'`.
    fn stored_event(artifact: &Artifact) -> String;

    /// The message of `Ready` and `ArtifactInStorage` after a success.
    fn stored_condition(artifact: &Artifact) -> String {
        format!("stored artifact: revision '{}'", artifact.revision)
    }

    /// Whether the object is reconciled at all (see [`Reconciler::manages`]).
    fn managed(&self) -> bool {
        true
    }

    /// Fetches the source and stores its artifact (or finds the current one still valid).
    fn fetch(
        &self,
        ctx: &Context<Self>,
    ) -> impl Future<Output = Result<Artifact, ReconcileError>> + Send;

    /// Records a new `artifact` in `status`, with what it was made from.
    fn record(&self, status: &mut Self::Status, artifact: Artifact);
}

/// The status fields every [`ArtifactSource`] has.
pub trait ArtifactStatus: Conditioned + serde::Serialize + Send {
    /// The artifact the status holds.
    fn artifact(&self) -> Option<&Artifact>;
}

/// [`ArtifactStatus`] for status types with an `artifact` field.
macro_rules! artifact_status {
    ($($status:ty),* $(,)?) => {$(
        impl ArtifactStatus for $status {
            fn artifact(&self) -> Option<&Artifact> {
                self.artifact.as_ref()
            }
        }
    )*};
}

artifact_status!(BucketStatus, GitRepositoryStatus, HelmRepositoryStatus);

impl<K: ArtifactSource> Reconciler for Context<K> {
    type Kind = K;
    type Done = Artifact;
    type Failure = ReconcileError;
    type Status = <K as HasStatus>::Status;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    fn manages(&self, object: &K) -> bool {
        object.managed()
    }

    async fn reconcile(&self, object: &K) -> Result<Artifact, ReconcileError> {
        object.fetch(self).await
    }

    fn event(&self, object: &K, artifact: &Artifact) -> Option<Note> {
        let previous = object.status().and_then(ArtifactStatus::artifact);
        new_artifact(previous, artifact, || K::stored_event(artifact))
    }

    fn summarize(
        &self,
        object: &K,
        outcome: Result<Artifact, ReconcileError>,
        at: Time,
    ) -> <K as HasStatus>::Status {
        summarize(object, outcome, at)
    }

    async fn cleanup(&self, object: &K) {
        self.remove_artifacts(object);
    }
}

/// The status of an [`ArtifactSource`] after a reconciliation: the artifact of a success,
/// the conditions of either (a failure keeps the previous artifact).
pub fn summarize<K: ArtifactSource>(
    object: &K,
    outcome: Result<Artifact, ReconcileError>,
    at: Time,
) -> <K as HasStatus>::Status {
    let generation = object.meta().generation;
    runtime::next_status(object, |status, conds| match outcome {
        Ok(artifact) => {
            let message = K::stored_condition(&artifact);
            let success = Ok((SUCCEEDED, message.as_str()));
            runtime::set_source_conditions(conds, success, generation, &at);
            object.record(status, artifact);
        }
        Err(err) => runtime::set_source_conditions(conds, Err(&err), generation, &at),
    })
}

/// The status form of an artifact the storage holds.
pub fn status_artifact(stored: ferroflux_source::artifact::Artifact) -> Artifact {
    Artifact {
        path: stored.path,
        url: stored.url,
        revision: stored.revision,
        digest: Some(stored.digest),
        last_update_time: Time(stored.last_update_time),
        size: i64::try_from(stored.size).ok(),
        metadata: (!stored.metadata.is_empty()).then_some(stored.metadata),
    }
}

/// Flux's `NewArtifact` event, when `artifact` has another revision than `previous`.
pub fn new_artifact(
    previous: Option<&Artifact>,
    artifact: &Artifact,
    message: impl FnOnce() -> String,
) -> Option<Note> {
    (previous.map(|a| a.revision.as_str()) != Some(artifact.revision.as_str())).then(|| Note {
        warning: false,
        reason: "NewArtifact",
        message: message(),
    })
}

/// The API resource of the source kind `kind` (`source.toolkit.fluxcd.io/v1`).
pub fn source_resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        ferroflux_api::source::GROUP,
        "v1",
        kind,
    ))
}

/// Adds to `controller` a watch of each source kind of `kinds`: a new artifact of a source
/// reconciles the objects for which `reads(object, kind, namespace, name)` holds. Only the
/// artifact counts, as with Flux's `SourceRevisionChangePredicate`: other status writes of a
/// source do not concern its readers.
pub fn watch_artifacts<K, Reads>(
    controller: Controller<K>,
    client: &Client,
    kinds: &[&'static str],
    reads: Reads,
) -> Controller<K>
where
    K: Object,
    Reads: Fn(&K, &str, &str, &str) -> bool + Clone + Send + Sync + 'static,
{
    let store = controller.store();
    let mut controller = controller;
    for &kind in kinds {
        let resource = source_resource(kind);
        let sources: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let sources = watcher::watcher(sources, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .predicate_filter(artifact_hash, Default::default());
        let (store, reads) = (store.clone(), reads.clone());
        let readers = move |source: DynamicObject| {
            let namespace = source.namespace().unwrap_or_default();
            let name = source.name_any();
            store
                .state()
                .into_iter()
                .filter(|object| reads(object, kind, &namespace, &name))
                .map(|object| ObjectRef::from_obj(&*object))
                .collect::<Vec<_>>()
        };
        controller = controller.watches_stream_with(sources, readers, resource);
    }
    controller
}

/// The hash of a source's artifact, which is all its readers read of it.
fn artifact_hash(source: &DynamicObject) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    source.data["status"]["artifact"]
        .to_string()
        .hash(&mut hasher);
    Some(hasher.finish())
}
