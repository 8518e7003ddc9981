//! Flagger's canary controller (`flagger.app/v1beta1` Canary) on the shared runtime: every
//! analysis interval one tick initializes the primary, the Services and the route, observes
//! the target and asks `ferroflux_canary::decide` what comes next, evaluating the webhooks and
//! metrics it asks for, then scales, promotes, routes, records Flagger's events and writes
//! the status. What ferroflux does not implement (other providers, mirroring, A/B, DaemonSet
//! targets, autoscalers, ...) is refused: phase Failed with a Promoted condition naming the
//! fields, and nothing touched.
//!
//! `lastAppliedSpec` is `ferroflux_canary::spec_hash` of the target's pod template (SHA-256 of
//! its JSON), not Flagger's FNV hash of Go's printed struct: the same role, another value.

mod checks;
mod configs;
pub mod router;
mod workload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferroflux_api::flagger::{Canary, CanaryStatus};
use ferroflux_api::meta::Time;
use ferroflux_canary::{
    Action, Event, Gates, Observed, Readiness, StatusUpdate, Step, phase, spec,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::{Resource, ResourceExt};

pub use crate::runtime::run;
use crate::runtime::{self, ReconcileError, Reconciler, Scheduled};

/// The controller's name in events and as field manager (Flagger's Deployment name).
pub const CONTROLLER: &str = "flagger";

/// Flagger's event reason: every event it records says `Synced`.
pub const REASON: &str = "Synced";

/// The canary controller's state.
pub struct Context {
    /// The shared runtime.
    pub runtime: runtime::Context,
    /// The HTTP client of webhooks and metric queries.
    pub http: reqwest::Client,
    /// Flagger's `-metrics-server`: the Prometheus of builtin metrics when a Canary has no
    /// `spec.metricsServer`.
    pub metrics_server: Option<String>,
    /// The shortest analysis interval (Flagger: ten seconds); tests lower it.
    pub min_interval: Duration,
    /// When each Canary last ticked.
    ticks: Mutex<HashMap<String, Instant>>,
}

impl Context {
    /// A controller on `client` with Flagger's defaults and no default metrics server.
    pub fn new(client: kube::Client) -> Self {
        Context {
            runtime: runtime::Context::new(client, CONTROLLER),
            http: ferroflux_source::http::default_client(),
            metrics_server: None,
            min_interval: spec::MIN_INTERVAL,
            ticks: Mutex::default(),
        }
    }

    fn key(canary: &Canary) -> String {
        format!(
            "{}/{}",
            canary.namespace().unwrap_or_default(),
            canary.name_any()
        )
    }
}

impl Scheduled for Canary {
    fn suspended(&self) -> bool {
        self.spec.suspend == Some(true)
    }
    /// The analysis interval with a one-second floor; the controller's own floor (Flagger's
    /// ten seconds) is kept by `not_due`.
    fn interval(&self) -> Result<Duration, ReconcileError> {
        Ok(spec::interval(self, Duration::from_secs(1)))
    }
}

impl Reconciler for Context {
    type Kind = Canary;
    type Done = CanaryStatus;
    type Failure = ReconcileError;
    type Status = CanaryStatus;
    const OBSERVES_GENERATION: bool = false;
    const FINALIZER: &'static str = "finalizer.flagger.app";

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    fn not_due(
        &self,
        canary: &Canary,
        _interval: Duration,
    ) -> impl Future<Output = Option<Duration>> + Send {
        let every = spec::interval(canary, self.min_interval);
        let last = runtime_lock(&self.ticks).get(&Self::key(canary)).copied();
        let wait = last
            .map(|at| at.elapsed())
            .filter(|elapsed| *elapsed < every)
            .map(|elapsed| every - elapsed);
        async move { wait }
    }

    async fn reconcile(&self, canary: &Canary) -> Result<CanaryStatus, ReconcileError> {
        runtime_lock(&self.ticks).insert(Self::key(canary), Instant::now());
        let mut events = Vec::new();
        let result = self.tick(canary, &mut events).await;
        self.publish(canary, &events).await;
        result
    }

    fn event(&self, _canary: &Canary, _done: &CanaryStatus) -> Option<runtime::Note> {
        None
    }

    fn summarize(
        &self,
        canary: &Canary,
        outcome: Result<CanaryStatus, ReconcileError>,
        _at: Time,
    ) -> CanaryStatus {
        outcome.unwrap_or_else(|_| canary.status.clone().unwrap_or_default())
    }

    fn cleanup(&self, canary: &Canary) -> impl Future<Output = ()> + Send {
        runtime_lock(&self.ticks).remove(&Self::key(canary));
        async {}
    }
}

fn runtime_lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `spec.progressDeadlineSeconds` (Flagger: 600 by default).
fn deadline(canary: &Canary) -> i32 {
    canary
        .spec
        .progress_deadline_seconds
        .unwrap_or(spec::DEFAULT_PROGRESS_DEADLINE_SECONDS)
}

fn api_error(err: kube::Error) -> ReconcileError {
    ReconcileError::generic("ReconciliationFailed", err.to_string())
}

fn warn(events: &mut Vec<Event>, message: String) {
    events.push(Event {
        warning: true,
        message,
    });
}

/// What a tick observed of the workloads.
struct Workloads<'a> {
    target: &'a Deployment,
    primary: &'a Deployment,
    /// The selector label (`app`, `name` or `app.kubernetes.io/name`).
    label: &'a str,
    /// The tracked configs and their checksums.
    tracked: &'a BTreeMap<String, String>,
}

/// The most gates one tick evaluates (there are six kinds): a bound on the decide loop.
const MAX_GATES: usize = 8;

impl Context {
    /// Records `events` as Kubernetes Events (reason `Synced`), forwards them to the
    /// notification controller and the Canary's `event` webhooks.
    async fn publish(&self, canary: &Canary, events: &[Event]) {
        let reference = canary.object_ref(&());
        for event in events {
            let mut end = event.message.len().min(1024);
            while !event.message.is_char_boundary(end) {
                end -= 1;
            }
            let note = &event.message[..end];
            if let Some(address) = &self.runtime.flags.events_addr {
                let payload = crate::events::payload(
                    &reference,
                    event.warning,
                    REASON,
                    &event.message,
                    CONTROLLER,
                    Default::default(),
                );
                self.runtime.recorder.forward(address, &payload);
            }
            if let Err(err) = self
                .runtime
                .recorder
                .publish(&reference, event.warning, REASON, note)
                .await
            {
                tracing::warn!(%err, "could not record an event");
            }
            checks::event_hooks(&self.http, canary, event).await;
        }
    }

    /// The status of a refused Canary: Failed, the Promoted condition naming the fields.
    fn refuse(
        &self,
        canary: &Canary,
        refusals: &[String],
        events: &mut Vec<Event>,
    ) -> CanaryStatus {
        let message = format!("Canary refused: {}", refusals.join("; "));
        let mut status = canary.status.clone().unwrap_or_default();
        let kind = canary
            .spec
            .target_ref
            .kind
            .as_deref()
            .unwrap_or("Deployment");
        let before = status.clone();
        status.phase = Some(phase::FAILED.into());
        let now = now();
        ferroflux_canary::set_promoted(&mut status, phase::FAILED, kind, Some(&message), &now);
        if status != before {
            status.last_transition_time = Some(now);
            warn(events, message);
        }
        status
    }

    /// One tick of Flagger's scheduler.
    async fn tick(
        &self,
        canary: &Canary,
        events: &mut Vec<Event>,
    ) -> Result<CanaryStatus, ReconcileError> {
        let refusals = spec::refusals(canary);
        if !refusals.is_empty() {
            return Ok(self.refuse(canary, &refusals, events));
        }
        let client = &self.runtime.client;
        let namespace = canary.namespace().unwrap_or_default();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let target_name = &canary.spec.target_ref.name;
        let target = deployments
            .get_opt(target_name)
            .await
            .map_err(api_error)?
            .ok_or_else(|| {
                ReconcileError::generic(
                    "TargetNotFound",
                    format!("deployment {target_name}.{namespace} get query error: not found"),
                )
            })?;
        let label = workload::selector_label(&target)?;
        let tracked = configs::track(client, &namespace, &workload::pod_spec(&target))
            .await
            .map_err(api_error)?;
        let hash = workload::template_hash(&target, &tracked);
        let now = now();
        let mut working = canary.clone();
        let status = canary.status.clone().unwrap_or_default();
        let current = status.phase.clone().unwrap_or_default();
        let initializing = current.is_empty()
            || current == phase::INITIALIZING
            || (current == phase::FAILED && status.last_promoted_spec.is_none());
        if initializing && current != phase::INITIALIZING {
            let update = StatusUpdate::Phase(phase::INITIALIZING);
            working.status = Some(ferroflux_canary::next_status(
                &working, &update, &hash, &now,
            ));
        }
        let analysis = ferroflux_canary::Analysis::of(canary);
        if initializing {
            configs::copy_to_primary(client, canary, &tracked)
                .await
                .map_err(api_error)?;
        }
        let primary = workload::ensure_primary(&deployments, canary, &target, &label, &tracked)
            .await
            .map_err(api_error)?;
        if initializing
            && !analysis.skip
            && let Readiness::NotReady(why) | Readiness::DeadlineExceeded(why) =
                workload::readiness(&primary, deadline(canary))
        {
            let primary_id = format!("{}.{namespace}", workload::primary_name(target_name));
            warn(events, format!("Halt advancement {primary_id} {why}"));
            return Ok(working.status.unwrap_or_default());
        }
        workload::ensure_services(client, canary, &label)
            .await
            .map_err(api_error)?;
        if initializing {
            workload::scale(&deployments, target_name, 0)
                .await
                .map_err(api_error)?;
        }
        router::reconcile(client, canary).await.map_err(api_error)?;
        if initializing {
            let update = StatusUpdate::Sync {
                phase: phase::INITIALIZED,
                canary_weight: 0,
                failed_checks: 0,
                iterations: 0,
            };
            events.push(Event {
                warning: false,
                message: format!("Initialization done! {}.{namespace}", canary.name_any()),
            });
            let mut status = ferroflux_canary::next_status(&working, &update, &hash, &now);
            status.tracked_configs = (!tracked.is_empty()).then_some(tracked);
            return Ok(status);
        }
        let observed = Workloads {
            target: &target,
            primary: &primary,
            label: &label,
            tracked: &tracked,
        };
        let mut status = self.advance(&working, &observed, &hash, events).await?;
        if status.last_applied_spec.as_deref() == Some(hash.as_str()) {
            status.tracked_configs = (!tracked.is_empty()).then_some(tracked);
        }
        Ok(status)
    }

    /// The analysis part of a tick: observe, decide (evaluating the gates asked for), act.
    async fn advance(
        &self,
        canary: &Canary,
        workloads: &Workloads<'_>,
        hash: &str,
        events: &mut Vec<Event>,
    ) -> Result<CanaryStatus, ReconcileError> {
        let (target, primary) = (workloads.target, workloads.primary);
        let client = &self.runtime.client;
        let namespace = canary.namespace().unwrap_or_default();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let (primary_weight, canary_weight) = router::get_routes(client, canary)
            .await
            .map_err(api_error)?;
        let canary_ready = match workload::readiness(target, deadline(canary)) {
            Readiness::NotReady(why) => Readiness::NotReady(format!(
                "Halt advancement {}.{namespace} {why}",
                target.name_any()
            )),
            other => other,
        };
        let primary_ready = match workload::readiness(primary, deadline(canary)) {
            Readiness::NotReady(why) => Readiness::NotReady(format!(
                "Halt advancement {}.{namespace} {why}",
                primary.name_any()
            )),
            other => other,
        };
        let observed = Observed {
            target_hash: hash.to_string(),
            primary: primary_ready,
            canary: canary_ready,
            primary_weight,
            canary_weight,
        };
        let checks = checks::Checks {
            http: &self.http,
            client,
            metrics_server: canary
                .spec
                .metrics_server
                .clone()
                .or_else(|| self.metrics_server.clone()),
        };
        let mut gates = Gates::default();
        let mut evaluated = 0;
        let decision = loop {
            match ferroflux_canary::decide(canary, &observed, &gates) {
                Step::Decided(decision) => break decision,
                Step::Run(gate) if evaluated < MAX_GATES => {
                    evaluated += 1;
                    let result = checks.run(canary, gate, events).await;
                    gates.set(gate, result);
                }
                Step::Run(gate) => {
                    return Err(ReconcileError::generic(
                        "ReconciliationFailed",
                        format!("the analysis asked for {gate:?} more than {MAX_GATES} times"),
                    ));
                }
            }
        };
        let now = now();
        let status = ferroflux_canary::next_status(canary, &decision.status, hash, &now);
        let mut after = canary.clone();
        after.status = Some(status.clone());
        let target_name = target.name_any();
        for action in &decision.actions {
            let done = match action {
                Action::ScaleTargetFromZero => {
                    let replicas = workload::scale_up_replicas(primary);
                    workload::scale(&deployments, &target_name, replicas).await
                }
                Action::ScaleTargetToZero => workload::scale(&deployments, &target_name, 0).await,
                Action::SetRoutes {
                    primary,
                    canary: weight,
                } => router::set_routes(client, canary, *primary, *weight).await,
                Action::Promote => {
                    let tracked = workloads.tracked;
                    match configs::copy_to_primary(client, canary, tracked).await {
                        Ok(()) => {
                            workload::promote(&deployments, target, workloads.label, tracked).await
                        }
                        Err(err) => Err(err),
                    }
                }
                Action::PostRolloutHooks(phase) => {
                    checks::post_rollout(&self.http, &after, phase, events).await;
                    Ok(())
                }
            };
            done.map_err(api_error)?;
        }
        events.extend(decision.events);
        Ok(status)
    }
}
