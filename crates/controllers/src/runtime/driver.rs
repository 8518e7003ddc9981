//! The generic reconcile driver: one [`Context`], one [`Reconciler`] trait per kind, and the
//! loop that turns a kind's decision into an event, a requeue, metrics and one status patch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroflux_api::meta::{Condition, RECONCILE_REQUEST_ANNOTATION, Time};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event};
use kube::runtime::{Controller, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::backoff::Backoff;
use super::{FINALIZER, ReconcileError, Scheduled, now};
use crate::events::Recorder;
use crate::metrics::Metrics;

/// Flux's `--interval-jitter-percentage` default: a success requeues within ±5% of the
/// interval, so objects created together do not reconcile in lockstep for ever.
pub const DEFAULT_INTERVAL_JITTER_PERCENT: u8 = 5;

/// The controller flags the runtime honours for every kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// Percentage of jitter on success requeues (Flux's `--interval-jitter-percentage`).
    pub interval_jitter_percent: u8,
    /// Where events are also posted as Flux's event payload (Flux's `--events-addr`: the
    /// notification controller's URL, or `host:port`); `None` posts nowhere.
    pub events_addr: Option<String>,
    /// Reconciliations of one kind run at once (Flux's `--concurrent`); 0 leaves it to the
    /// kind (unbounded unless it sets a limit).
    pub concurrent: u16,
    /// Only objects with these labels are reconciled (Flux's `--watch-label-selector`, for
    /// sharding); `None` for every object.
    pub watch_label_selector: Option<String>,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            interval_jitter_percent: DEFAULT_INTERVAL_JITTER_PERCENT,
            events_addr: None,
            concurrent: 0,
            watch_label_selector: None,
        }
    }
}

/// What every controller shares: its client, its event recorder, the process's metrics, its
/// flags and the requeue state.
pub struct Context {
    /// The controller's client.
    pub client: Client,
    /// Records events as the controller (e.g. `source-controller`).
    pub recorder: Recorder,
    /// Flux's `gotk_*` metrics, when the process serves them.
    pub metrics: Option<Arc<Metrics>>,
    /// The flags every kind honours.
    pub flags: Flags,
    backoff: Backoff,
    /// Objects whose status a reconcile in progress has written (see [`Context::report_progress`]).
    progressed: Mutex<HashSet<String>>,
    /// The resourceVersion each object had when its last reconcile ended (after its status
    /// write): a trigger that arrives during a reconcile runs the next one on the watch cache's
    /// copy, which may not hold that write yet (see [`current`]).
    reconciled: Mutex<HashMap<String, String>>,
}

impl Context {
    /// A context whose events are reported as `controller`, without metrics.
    pub fn new(client: Client, controller: &str) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), controller),
            client,
            metrics: None,
            flags: Flags::default(),
            backoff: Backoff::default(),
            progressed: Mutex::default(),
            reconciled: Mutex::default(),
        }
    }

    /// Records Flux's metrics of every reconciliation in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Writes `conditions` to the status of `object` in the middle of a reconcile, before a
    /// long wait (Flux's `Reconciling` and `Ready=Unknown`), so readers see the wait rather
    /// than the previous outcome. The status at the end is then written even when it equals
    /// the one the reconcile started from.
    ///
    /// # Errors
    /// The API server's refusal of the write.
    pub async fn report_progress<K: Object>(
        &self,
        object: &K,
        conditions: &[Condition],
    ) -> Result<(), kube::Error> {
        lock(&self.progressed).insert(key(object));
        let api: Api<K> =
            Api::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        patch_status(
            &api,
            &object.name_any(),
            json!({ "conditions": conditions }),
        )
        .await
        .map(drop)
    }
}

/// The object's key in the runtime's per-object state: `kind/namespace/name`.
fn key<K: Object>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The lock of per-object state; a panic while it was held leaves nothing half-done in it.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failure a kind reports: a [`ReconcileError`] (which decides the requeue and the Warning
/// event), possibly with what the kind needs to summarize it (e.g. the step that failed).
pub trait Failure: From<ReconcileError> + Send {
    /// The error the runtime requeues and reports on.
    fn error(&self) -> &ReconcileError;
}

impl Failure for ReconcileError {
    fn error(&self) -> &ReconcileError {
        self
    }
}

/// An event recorded after a successful reconciliation: Normal, or Warning for what succeeded
/// but needs a human's eye (Flux's `DriftDetected` in `warn` mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// A Warning event (and severity `error` for the notification controller), not Normal.
    pub warning: bool,
    /// Flux's reason, e.g. `NewArtifact`.
    pub reason: &'static str,
    /// The event's message.
    pub message: String,
}

/// The object kind a reconciler drives: namespaced, as every Flux kind.
/// (`Serialize` because kube's finalizer patches the object's finalizers.)
pub trait Object:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The decisions of one kind; [`run`] does the rest. See the [module](super) documentation.
pub trait Reconciler: Send + Sync + Sized + 'static {
    /// The kind reconciled.
    type Kind: Object + super::Scheduled;
    /// What a successful reconciliation produced (e.g. the artifact).
    type Done: Send;
    /// What a failed one reports.
    type Failure: Failure;
    /// The status written at the end of every reconciliation.
    type Status: Serialize;
    /// Whether the status has `observedGeneration` (source-watcher's ArtifactGenerator has
    /// none), which the runtime then stamps.
    const OBSERVES_GENERATION: bool = true;
    /// The finalizer put on the objects (source-watcher has its own).
    const FINALIZER: &'static str = FINALIZER;

    /// The shared context.
    fn runtime(&self) -> &Context;

    /// Which objects of the kind are watched (all by default; e.g. a label selector).
    fn watcher_config(&self) -> watcher::Config {
        watcher::Config::default()
    }

    /// Adds the watches of related kinds that should trigger a reconcile (none by default),
    /// and any other setting of the controller (e.g. its concurrency).
    fn watches(&self, controller: Controller<Self::Kind>) -> Controller<Self::Kind> {
        controller
    }

    /// Whether the object is reconciled at all (finalizer, status); `false` leaves it alone.
    fn manages(&self, _object: &Self::Kind) -> bool {
        true
    }

    /// `spec.retryInterval`, the requeue after a generic failure; `None` backs off
    /// exponentially as controller-runtime does.
    fn retry_interval(&self, _object: &Self::Kind) -> Option<Duration> {
        None
    }

    /// Whether a success requeues at the interval; `false` waits for a change of the object
    /// or of a watched kind.
    fn periodic(&self, _object: &Self::Kind) -> bool {
        true
    }

    /// How long until the next run when a reconcile comes before it is due (kinds that run on
    /// a schedule of their own, e.g. a scan every interval that survives restarts): the
    /// runtime then waits that long and writes nothing. `None` (the default) runs now.
    fn not_due(
        &self,
        _object: &Self::Kind,
        _interval: Duration,
    ) -> impl Future<Output = Option<Duration>> + Send {
        async { None }
    }

    /// One reconciliation: everything the kind decides and does.
    fn reconcile(
        &self,
        object: &Self::Kind,
    ) -> impl Future<Output = Result<Self::Done, Self::Failure>> + Send;

    /// The Normal event after a success, if any (failures are Warning events of their reason).
    fn event(&self, object: &Self::Kind, done: &Self::Done) -> Option<Note>;

    /// A second Normal event of a success, recorded after [`Reconciler::event`]'s, that says
    /// the reconciliation finished `elapsed` after it started (Flux's `ReconciliationSucceeded`
    /// of Kustomizations and HelmReleases, which carries the commit status update).
    fn finished(
        &self,
        _object: &Self::Kind,
        _done: &Self::Done,
        _elapsed: Duration,
    ) -> Option<Note> {
        None
    }

    /// The status after the reconciliation; the runtime stamps `observedGeneration` and
    /// `lastHandledReconcileAt` on it.
    fn summarize(
        &self,
        object: &Self::Kind,
        outcome: Result<Self::Done, Self::Failure>,
        at: Time,
    ) -> Self::Status;

    /// What to undo when the object is deleted (before its finalizer is removed).
    fn cleanup(&self, _object: &Self::Kind) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What stops a controller: a future that resolves on shutdown.
pub trait Shutdown: Future<Output = ()> + Send + Sync + 'static {}

impl<F: Future<Output = ()> + Send + Sync + 'static> Shutdown for F {}

/// Runs the reconciler of `R::Kind` until `shutdown` resolves. A reconciliation that fails
/// before it could write its status (the API server refused the status or the finalizer) is
/// logged and retried after ten seconds; every other failure is reported in the status.
pub async fn run<R: Reconciler>(reconciler: Arc<R>, shutdown: impl Shutdown) {
    use futures::StreamExt;
    let flags = &reconciler.runtime().flags;
    let api: Api<R::Kind> = Api::all(reconciler.runtime().client.clone());
    let mut config = reconciler.watcher_config();
    if let Some(selector) = &flags.watch_label_selector {
        config = config.labels(selector);
    }
    let mut controller = reconciler.watches(controller(api, config));
    if flags.concurrent > 0 {
        controller = controller.with_config(
            kube::runtime::controller::Config::default().concurrency(flags.concurrent),
        );
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile::<R>,
            |_, error, _| {
                tracing::warn!(%error, "reconciliation failed");
                Action::requeue(Duration::from_secs(10))
            },
            reconciler,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                let kind = R::Kind::kind(&());
                tracing::warn!(%error, %kind, "reconcile loop error");
            }
        })
        .await;
}

async fn reconcile<R: Reconciler>(
    object: Arc<R::Kind>,
    reconciler: Arc<R>,
) -> Result<Action, finalizer::Error<kube::Error>> {
    if !reconciler.manages(&object) {
        return Ok(Action::await_change());
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<R::Kind> = Api::namespaced(reconciler.runtime().client.clone(), &namespace);
    let Some(object) = current(reconciler.runtime(), &api, object)
        .await
        .map_err(finalizer::Error::ApplyFailed)?
    else {
        return Ok(Action::await_change());
    };
    finalizer::finalizer(&api, R::FINALIZER, object, |event| async {
        match event {
            Event::Apply(object) => apply(&*reconciler, &api, &object).await,
            Event::Cleanup(object) => {
                reconciler.cleanup(&object).await;
                lock(&reconciler.runtime().reconciled).remove(&key(&*object));
                Ok(Action::await_change())
            }
        }
    })
    .await
}

/// `object` as the API server holds it now. The watch cache's copy is used when it is the
/// version the last reconcile ended with, or the object was never reconciled; otherwise it
/// may predate this controller's own last status write (a trigger queued during a reconcile
/// runs the next one before the watch delivers that write), and deciding on it would undo
/// the write: handle a `resetAt` twice, or forget a condition. Then one GET reads the truth.
/// `None` when the object is gone.
async fn current<K: Object>(
    ctx: &Context,
    api: &Api<K>,
    object: Arc<K>,
) -> Result<Option<Arc<K>>, kube::Error> {
    let stale = lock(&ctx.reconciled)
        .get(&key(&*object))
        .is_some_and(|version| object.resource_version().as_ref() != Some(version));
    if !stale {
        return Ok(Some(object));
    }
    Ok(api.get_opt(&object.name_any()).await?.map(Arc::new))
}

async fn apply<R: Reconciler>(
    reconciler: &R,
    api: &Api<R::Kind>,
    object: &R::Kind,
) -> Result<Action, kube::Error> {
    if object.suspended() {
        return Ok(Action::await_change());
    }
    tracing::debug!(
        object = %key(object),
        version = ?object.resource_version(),
        requested = ?object.annotations().get(RECONCILE_REQUEST_ANNOTATION),
        "reconciling"
    );
    let started = std::time::Instant::now();
    let ctx = reconciler.runtime();
    let interval = object.interval();
    if let Ok(interval) = interval
        && let Some(wait) = reconciler.not_due(object, interval).await
    {
        return Ok(Action::requeue(wait));
    }
    let outcome = match &interval {
        Ok(_) => reconciler.reconcile(object).await,
        Err(err) => Err(err.clone().into()),
    };
    // An invalid interval stalls, so the fallback is never used for a requeue.
    let interval = jitter(
        interval.unwrap_or_default(),
        ctx.flags.interval_jitter_percent,
    );
    let reference = object.object_ref(&());
    // Recorded once the status is known: the event posted to the notification controller
    // carries the revision of the status.
    let note = match &outcome {
        Ok(done) => reconciler
            .event(object, done)
            .map(|note| (note.warning, note.reason, note.message)),
        Err(failed) => Some((true, failed.error().reason, failed.error().message.clone())),
    };
    let finished = outcome
        .as_ref()
        .ok()
        .and_then(|done| reconciler.finished(object, done, started.elapsed()));
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let kind = R::Kind::kind(&());
    let result = outcome.as_ref().map(|_| interval).map_err(Failure::error);
    let key = key(object);
    let action = match (result, reconciler.retry_interval(object)) {
        (Err(err), Some(retry)) => err.action(retry),
        (result, _) => {
            // Called on success too: it resets the object's backoff.
            let action = ctx.backoff.action(&key, result);
            if outcome.is_ok() && !reconciler.periodic(object) {
                Action::await_change()
            } else {
                action
            }
        }
    };
    let status = reconciler.summarize(object, outcome, now());
    let mut status = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    stamp(&mut status, object.meta(), R::OBSERVES_GENERATION);
    // One log line per reconcile, as Flux's controllers write (`flux logs` reads them).
    match &note {
        Some((true, reason, message)) => {
            tracing::error!(%kind, %name, %namespace, %reason, error = %message, "Reconciler error");
        }
        Some((false, reason, message)) => {
            tracing::info!(%kind, %name, %namespace, %reason, "{message}");
        }
        None => {}
    }
    if let Some(note) = &finished {
        tracing::info!(%kind, %name, %namespace, "{}", note.message);
    }
    if let Some((warning, reason, message)) = note {
        record(ctx, &reference, &status, warning, reason, &message).await;
    }
    if let Some(note) = finished {
        record(
            ctx,
            &reference,
            &status,
            note.warning,
            note.reason,
            &note.message,
        )
        .await;
    }
    if let Some(metrics) = &ctx.metrics {
        metrics.observe(&kind, &namespace, &name, started.elapsed());
        metrics.record_conditions(&kind, &namespace, &name, &conditions(&status));
    }
    // An unchanged status is not written: a restart that finds everything as it was rewrites
    // no object. Unless the reconcile wrote its progress: the server's status is then another.
    let progressed = lock(&ctx.progressed).remove(&key);
    let version = if progressed || current_status(object).as_ref() != Some(&status) {
        patch_status(api, &name, status).await?
    } else {
        object.resource_version()
    };
    if let Some(version) = version {
        lock(&ctx.reconciled).insert(key, version);
    }
    Ok(action)
}

/// The object's status as it is now.
fn current_status<K: Serialize>(object: &K) -> Option<Value> {
    serde_json::to_value(object)
        .ok()
        .and_then(|mut o| o.get_mut("status").map(Value::take))
}

/// Stamps what every Flux status carries after a reconciliation: the generation it saw (when
/// the kind reports it) and the reconcile request it handled.
fn stamp(status: &mut Value, meta: &kube::api::ObjectMeta, observes_generation: bool) {
    let Some(fields) = status.as_object_mut() else {
        return;
    };
    if let Some(generation) = meta.generation.filter(|_| observes_generation) {
        fields.insert("observedGeneration".into(), generation.into());
    }
    if let Some(requested) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
    {
        fields.insert("lastHandledReconcileAt".into(), requested.clone().into());
    }
}

/// The conditions of a serialised status, for the metrics.
fn conditions(status: &Value) -> Vec<Condition> {
    status
        .get("conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default()
}

/// `interval` moved by a random amount within ±`percent`% (Flux's `JitteredIntervalDuration`).
pub fn jitter(interval: Duration, percent: u8) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let percent = u64::from(percent.min(99));
    let spread = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(percent)
        / 100;
    if spread == 0 {
        return interval;
    }
    // A fresh randomly seeded hasher is a random number without another dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let offset = random % (2 * spread + 1);
    let shifted = Duration::from_millis(offset);
    (interval + shifted).saturating_sub(Duration::from_millis(spread))
}

/// The hash of what asks a controller to reconcile its own object, as Flux's watch predicates
/// (`GenerationChangedPredicate` or `ReconcileRequestedPredicate`): the generation and the
/// reconcile-request annotation. Status writes, the controller's own above all, leave it
/// unchanged and so never trigger a reconcile. Finalizers and the deletion timestamp are in it
/// because the finalizer step waits for the watch to show them.
fn reconcile_trigger<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION))
        .hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    Some(hasher.finish())
}

/// A controller of `K` that is triggered by [`reconcile_trigger`] changes (and its own
/// requeues), never by status updates.
fn controller<K: Object>(api: Api<K>, config: watcher::Config) -> Controller<K> {
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store();
    let trigger = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(reconcile_trigger, Default::default());
    Controller::for_stream(trigger, reader)
}

/// Records a Kubernetes event about `object`: `Normal` or `Warning`, with a Flux reason and a
/// note cut to the 1 KiB the Events API allows. A failure to record is logged, never fatal.
/// With an events address, the whole message goes there too, with the revision of `status`.
async fn record(
    ctx: &Context,
    object: &ObjectReference,
    status: &Value,
    warning: bool,
    reason: &str,
    note: &str,
) {
    if let Some(address) = &ctx.flags.events_addr {
        let api_version = object.api_version.as_deref().unwrap_or_default();
        let kind = object.kind.as_deref().unwrap_or_default();
        let metadata = crate::events::metadata(api_version, kind, status, warning);
        let controller = ctx.recorder.controller();
        let event = crate::events::payload(object, warning, reason, note, controller, metadata);
        ctx.recorder.forward(address, &event);
    }
    let mut end = note.len().min(1024);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    if let Err(err) = ctx
        .recorder
        .publish(object, warning, reason, &note[..end])
        .await
    {
        tracing::warn!(%err, "could not record an event");
    }
}

/// Writes `status` with a merge patch of the status subresource; the object's new
/// resourceVersion.
async fn patch_status<K: Object>(
    api: &Api<K>,
    name: &str,
    status: Value,
) -> Result<Option<String>, kube::Error> {
    let patch = serde_json::json!({ "status": status });
    let written = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(written.resource_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_percentage() {
        let interval = Duration::from_secs(600);
        for _ in 0..200 {
            let jittered = jitter(interval, 5);
            assert!(jittered >= Duration::from_secs(570), "{jittered:?}");
            assert!(jittered <= Duration::from_secs(630), "{jittered:?}");
        }
        assert_eq!(jitter(interval, 0), interval);
        assert_eq!(jitter(Duration::ZERO, 5), Duration::ZERO);
    }

    #[test]
    fn the_status_is_stamped_with_the_generation_and_the_handled_request() {
        let mut meta = kube::api::ObjectMeta {
            generation: Some(3),
            ..Default::default()
        };
        meta.annotations = Some(
            [(RECONCILE_REQUEST_ANNOTATION.to_string(), "now".to_string())]
                .into_iter()
                .collect(),
        );
        let mut status = serde_json::json!({"conditions": []});
        stamp(&mut status, &meta, true);
        assert_eq!(
            status,
            serde_json::json!({"conditions": [], "observedGeneration": 3, "lastHandledReconcileAt": "now"})
        );
    }
}
