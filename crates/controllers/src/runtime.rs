//! What every reconciler shares: one [`Context`], the [`Reconciler`] trait a kind implements
//! with its decisions, and the driver ([`run`]) that does the rest: the finalizer, suspension,
//! Flux's classification of errors into requeues ([`ReconcileError`]: the interval with jitter
//! on success, `spec.retryInterval` or an exponential backoff on error, no requeue when
//! stalled), the events, the `gotk_*` metrics and the one status patch that ends every
//! reconciliation. Controllers run under [`supervise`], which restarts them when they die.
//!
//! # Adding a controller
//!
//! A new controller is one file with its decisions:
//!
//! 1. A context type holding a [`Context`] (built with [`Context::new`] naming the Flux
//!    controller that reports the events, e.g. `source-controller`) and whatever the kind needs
//!    besides (source kinds use [`crate::source::Context`], which adds the artifact storage).
//! 2. `impl Reconciler` for it: the kind, what a success produces (`Done`), what a failure
//!    reports (`Failure`, usually [`ReconcileError`]), the status type; then `retry_interval`
//!    when the kind has one, `reconcile` (everything the kind
//!    decides and does), `event` (the Normal event of a success), `summarize` (the conditions
//!    and fields of the status: the runtime stamps `observedGeneration` and
//!    `lastHandledReconcileAt`), and, when needed, `watches` (related kinds that trigger a
//!    reconcile), `watcher_config`, `manages` (objects left alone), `periodic` and `not_due`
//!    (kinds that do not simply run every interval) and `cleanup` (undone on deletion).
//!    The kind itself says when it runs ([`Scheduled`]: `spec.suspend`, `spec.interval`; one
//!    line in `scheduled_by_spec!` for the usual spec fields).
//! 3. `pub use crate::runtime::run;` (so callers start it as `kind::run(ctx, shutdown)`), and
//!    one entry in `ferroflux_embedded::components` (the wiring both `ferroflux up` and
//!    `ferroflux controller` supervise).
//!
//! The runtime writes the status once, at the end, and not at all when it is unchanged (a
//! restart that finds everything as it was rewrites no object); a reconcile that may wait long
//! (a health check) writes `Reconciling` and `Ready=Unknown` first, as Flux does, with
//! [`Context::report_progress`].

use std::time::Duration;

use kube::runtime::controller::Action;

use ferroflux_api::meta::{Condition, Time};
use kube::core::object::HasStatus;

mod backoff;
mod driver;
pub use driver::{
    Context, DEFAULT_INTERVAL_JITTER_PERCENT, Failure, Flags, Note, Object, Reconciler, Shutdown,
    jitter, run,
};

/// The finalizer every Flux controller puts on its objects.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Flux's reason of a success (`meta.SucceededReason`).
pub const SUCCEEDED: &str = "Succeeded";

/// How a failed reconciliation goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The user must change something: no retry until the object changes (Stalled).
    Stalling,
    /// Something else must happen first (a dependency, a source): retry after the duration.
    Waiting(Duration),
    /// Anything else: retry after the object's retry interval.
    Generic,
}

/// A failed reconciliation, with the Flux reason it is reported under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ReconcileError {
    /// How to go on.
    pub retry: Retry,
    /// Flux's reason, e.g. `BuildFailed`.
    pub reason: &'static str,
    /// What went wrong, for the Ready condition and the event.
    pub message: String,
}

impl ReconcileError {
    /// A failure the user must fix.
    pub fn stalling(reason: &'static str, message: impl Into<String>) -> Self {
        ReconcileError {
            retry: Retry::Stalling,
            reason,
            message: message.into(),
        }
    }

    /// A failure that clears when something else happens.
    pub fn waiting(reason: &'static str, message: impl Into<String>, after: Duration) -> Self {
        ReconcileError {
            retry: Retry::Waiting(after),
            reason,
            message: message.into(),
        }
    }

    /// Any other failure.
    pub fn generic(reason: &'static str, message: impl Into<String>) -> Self {
        ReconcileError {
            retry: Retry::Generic,
            reason,
            message: message.into(),
        }
    }

    /// The controller action for this failure.
    pub fn action(&self, retry_interval: Duration) -> Action {
        match self.retry {
            Retry::Stalling => Action::await_change(),
            Retry::Waiting(after) => Action::requeue(after),
            Retry::Generic => Action::requeue(retry_interval),
        }
    }
}

/// The current time as Kubernetes writes it (whole seconds).
pub fn now() -> Time {
    let seconds = jiff::Timestamp::now().as_second();
    Time(jiff::Timestamp::from_second(seconds).expect("the current time is in range"))
}

/// A duration as Go's `time.Duration.String` prints it (`1m30s`, `1.5s`, `500ms`), the way
/// Flux's messages show timeouts.
pub fn go_duration(duration: Duration) -> String {
    ferroflux_gocompat::duration::format(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX))
}

/// A duration of the spec (`spec.interval`, `spec.timeout`, ...). One that does not parse or
/// does not fit is the user's to fix: a Stalling `InvalidSpec` error naming the field, worded
/// as Go's `time.ParseDuration` refuses it.
pub fn spec_duration(field: &str, text: &str) -> Result<Duration, ReconcileError> {
    ferroflux_gocompat::duration::parse_std(text).map_err(|e| {
        ReconcileError::stalling(
            ferroflux_api::meta::reason::INVALID,
            format!("invalid {field}: {e}"),
        )
    })
}

/// A status that carries Flux's conditions.
pub trait Conditioned: Clone + Default {
    /// The conditions, to update in place.
    fn conditions_mut(&mut self) -> &mut Option<Vec<Condition>>;
}

/// [`Conditioned`] for status types with a `conditions` field.
macro_rules! conditioned {
    ($($status:ty),* $(,)?) => {$(
        impl Conditioned for $status {
            fn conditions_mut(&mut self) -> &mut Option<Vec<Condition>> {
                &mut self.conditions
            }
        }
    )*};
}

conditioned!(
    ferroflux_api::source::BucketStatus,
    ferroflux_api::source::GitRepositoryStatus,
    ferroflux_api::source::HelmRepositoryStatus,
    ferroflux_api::image::ImagePolicyStatus,
    ferroflux_api::image::ImageRepositoryStatus,
    ferroflux_api::image::ImageUpdateAutomationStatus,
);

/// The status a reconciliation ends with: `object`'s status (an empty one the first time) as
/// `update` leaves it, which gets the status and its conditions apart.
pub fn next_status<K>(
    object: &K,
    update: impl FnOnce(&mut K::Status, &mut Vec<Condition>),
) -> K::Status
where
    K: HasStatus<Status: Conditioned>,
{
    let mut status = object.status().cloned().unwrap_or_default();
    let mut conds = status.conditions_mut().take().unwrap_or_default();
    update(&mut status, &mut conds);
    *status.conditions_mut() = Some(conds);
    status
}

/// When a kind runs, as its spec says: Flux's `spec.suspend` and `spec.interval`.
pub trait Scheduled {
    /// A suspended object is not reconciled until it changes.
    fn suspended(&self) -> bool;
    /// The requeue after a success. An invalid interval fails the reconciliation (stalled).
    fn interval(&self) -> Result<Duration, ReconcileError>;
}

/// [`Scheduled`] for kinds with `spec.suspend: Option<bool>` and a `spec.interval` that is
/// required, or optional with Flux's default for the kind (`Kind = seconds`).
macro_rules! scheduled_by_spec {
    ($($kind:ty),* $(,)?) => {$(
        impl Scheduled for $kind {
            fn suspended(&self) -> bool {
                self.spec.suspend == Some(true)
            }
            fn interval(&self) -> Result<Duration, ReconcileError> {
                spec_duration("spec.interval", &self.spec.interval)
            }
        }
    )*};
    ($($kind:ty = $default_secs:expr),* $(,)?) => {$(
        impl Scheduled for $kind {
            fn suspended(&self) -> bool {
                self.spec.suspend == Some(true)
            }
            fn interval(&self) -> Result<Duration, ReconcileError> {
                let default = Duration::from_secs($default_secs);
                optional_spec_duration("spec.interval", self.spec.interval.as_deref(), default)
            }
        }
    )*};
}

scheduled_by_spec!(
    ferroflux_api::source::GitRepository,
    ferroflux_api::source::OCIRepository,
    ferroflux_api::source::Bucket,
    ferroflux_api::source::HelmChart,
    ferroflux_api::image::ImageRepository,
    ferroflux_api::image::ImageUpdateAutomation,
    ferroflux_api::kustomize::Kustomization,
    ferroflux_api::helm::HelmRelease,
);

// Flux's defaults: a minute for HTTP Helm repositories, ten minutes for image policies and
// Receivers.
scheduled_by_spec!(
    ferroflux_api::source::HelmRepository = 60,
    ferroflux_api::image::ImagePolicy = 600,
    ferroflux_api::notification::Receiver = 600,
);

/// [`spec_duration`] of an optional field: `default` when it is unset.
pub fn optional_spec_duration(
    field: &str,
    text: Option<&str>,
    default: Duration,
) -> Result<Duration, ReconcileError> {
    text.map_or(Ok(default), |text| spec_duration(field, text))
}

/// Flux's source conditions after one reconciliation: those of [`conditions::set_outcome`]
/// and, on success, ArtifactInStorage True and FetchFailed removed; on failure FetchFailed True
/// with the error's reason and message.
///
/// [`conditions::set_outcome`]: crate::conditions::set_outcome
pub fn set_source_conditions(
    conds: &mut Vec<ferroflux_api::meta::Condition>,
    outcome: Result<(&str, &str), &ReconcileError>,
    generation: Option<i64>,
    at: &Time,
) {
    use crate::conditions::{delete, mark, set_outcome};
    use ferroflux_api::meta::condition_type::{ARTIFACT_IN_STORAGE, FETCH_FAILED};
    set_outcome(conds, outcome, generation, at);
    match outcome {
        Ok((reason, message)) => {
            mark(
                conds,
                ARTIFACT_IN_STORAGE,
                "True",
                reason,
                message,
                generation,
                at,
            );
            delete(conds, FETCH_FAILED);
        }
        Err(err) => mark(
            conds,
            FETCH_FAILED,
            "True",
            err.reason,
            &err.message,
            generation,
            at,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        for (duration, go) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_micros(1), "1µs"),
        ] {
            assert_eq!(go_duration(duration), go);
        }
    }

    #[test]
    fn an_unparsable_or_overflowing_spec_duration_stalls() {
        let err =
            spec_duration("spec.interval", "99999999999999999999h").expect_err("does not fit");
        assert_eq!(err.retry, Retry::Stalling);
        assert_eq!(err.reason, "InvalidSpec");
        assert_eq!(
            err.message,
            "invalid spec.interval: time: invalid duration \"99999999999999999999h\""
        );
        assert_eq!(
            optional_spec_duration("spec.timeout", None, Duration::from_secs(7)),
            Ok(Duration::from_secs(7))
        );
    }

    #[test]
    fn errors_map_to_requeues() {
        let retry = Duration::from_secs(60);
        assert_eq!(
            ReconcileError::stalling("AccessDenied", "no").action(retry),
            Action::await_change()
        );
        assert_eq!(
            ReconcileError::waiting("DependencyNotReady", "wait", Duration::from_secs(5))
                .action(retry),
            Action::requeue(Duration::from_secs(5))
        );
        assert_eq!(
            ReconcileError::generic("BuildFailed", "x").action(retry),
            Action::requeue(retry)
        );
    }
}

/// When a supervised controller is restarted, and when its supervisor gives up.
///
/// The default gives up on the sixth death within five minutes: a controller that dies on
/// every start (a poison object it cannot get past) then fails its process after about half a
/// minute of backoff (1 s, 2 s, 4 s, 8 s, 16 s) instead of hiding behind a stale status, while a
/// controller that dies once an hour is restarted for ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more death within it gives up.
    pub max_restarts: usize,
    /// How long a death counts against `max_restarts`.
    pub window: Duration,
    /// Wait before the first restart; doubled for every further death within `window`.
    pub initial_backoff: Duration,
    /// The longest wait before a restart.
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(300),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// A supervised controller died more often than its [`RestartPolicy`] allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {controller} controller stopped {deaths} times within {}s; giving up (last: {last})",
    window.as_secs()
)]
pub struct SupervisionError {
    /// The controller's name, as given to [`supervise`].
    pub controller: String,
    /// Deaths within the policy's window.
    pub deaths: usize,
    /// The policy's window.
    pub window: Duration,
    /// How it died the last time, e.g. `panicked: ...`.
    pub last: String,
}

/// Runs the future `start` returns as a task and starts it again whenever it ends before
/// `shutdown` resolves, whether it returned or panicked.
///
/// Expected flow: `start` builds the controller's future with its own shutdown signal (one that
/// resolves together with `shutdown`), e.g. `|| gitrepository::run(ctx.clone(), stop())`.
///
/// Guarantees: every death is logged at error level, naming `controller` and the panic
/// message, before a restart after an exponential backoff. On `shutdown` the running task is
/// awaited (it stops on its own signal) and `Ok(())` is returned.
///
/// Errors: [`SupervisionError`] once the task died more than `policy.max_restarts` times
/// within `policy.window`; the task is not started again.
pub async fn supervise<Start, Fut>(
    controller: &str,
    policy: &RestartPolicy,
    shutdown: impl Future<Output = ()>,
    mut start: Start,
) -> Result<(), SupervisionError>
where
    Start: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut deaths: std::collections::VecDeque<tokio::time::Instant> =
        std::collections::VecDeque::new();
    loop {
        let mut task = tokio::spawn(start());
        let ended = tokio::select! {
            biased;
            () = &mut shutdown => {
                let _ = task.await;
                return Ok(());
            }
            ended = &mut task => ended,
        };
        let how = match ended {
            Ok(()) => "ended unexpectedly".to_string(),
            Err(err) if err.is_panic() => match panic_message(err.into_panic()) {
                Some(message) => format!("panicked: {message}"),
                None => "panicked".to_string(),
            },
            Err(_) => "was cancelled".to_string(),
        };
        let now = tokio::time::Instant::now();
        deaths.push_back(now);
        while deaths
            .front()
            .is_some_and(|at| now.duration_since(*at) > policy.window)
        {
            deaths.pop_front();
        }
        if deaths.len() > policy.max_restarts {
            let error = SupervisionError {
                controller: controller.to_string(),
                deaths: deaths.len(),
                window: policy.window,
                last: how,
            };
            tracing::error!("{error}");
            return Err(error);
        }
        let doublings = u32::try_from(deaths.len() - 1).unwrap_or(u32::MAX);
        let backoff = policy
            .initial_backoff
            .checked_mul(2u32.saturating_pow(doublings))
            .unwrap_or(policy.max_backoff)
            .min(policy.max_backoff);
        tracing::error!(
            "the {controller} controller {how}; restarting in {}ms ({} of {} restarts within {}s)",
            backoff.as_millis(),
            deaths.len(),
            policy.max_restarts,
            policy.window.as_secs()
        );
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> Option<String> {
    match payload.downcast::<String>() {
        Ok(text) => Some(*text),
        Err(payload) => payload.downcast_ref::<&str>().map(|text| text.to_string()),
    }
}

#[cfg(test)]
mod supervise_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn quick(max_restarts: usize) -> RestartPolicy {
        RestartPolicy {
            max_restarts,
            window: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        }
    }

    #[tokio::test]
    async fn a_panicking_controller_is_restarted_then_given_up_with_its_name_and_panic() {
        let starts = Arc::new(AtomicUsize::new(0));
        let counter = starts.clone();
        let result = supervise(
            "GitRepository",
            &quick(3),
            std::future::pending::<()>(),
            move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    panic!("interval out of range");
                }
            },
        )
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 4, "one start and 3 restarts");
        let error = result.expect_err("gives up");
        assert_eq!(
            error.to_string(),
            "the GitRepository controller stopped 4 times within 60s; giving up \
             (last: panicked: interval out of range)"
        );
    }

    #[tokio::test]
    async fn a_controller_that_recovers_after_a_panic_runs_until_shutdown() {
        let starts = Arc::new(AtomicUsize::new(0));
        let counter = starts.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let supervisor = tokio::spawn({
            let signal = signal.clone();
            async move {
                supervise("Kustomization", &quick(1), signal(), move || {
                    let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
                    let stopped = signal();
                    async move {
                        if first {
                            panic!("once");
                        }
                        stopped.await;
                    }
                })
                .await
            }
        });
        while starts.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.send(true).expect("the supervisor listens");
        let result = tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .expect("the supervisor returns on shutdown")
            .expect("the supervisor does not panic");
        assert_eq!(result, Ok(()));
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }
}
