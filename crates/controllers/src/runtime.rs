//! What every reconciler shares: Flux's classification of reconcile errors (which decides the
//! requeue), and the status write that ends every reconciliation.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, finalizer};
use serde::de::DeserializeOwned;
use serde_json::Value;

use ferroflux_api::meta::Time;

/// The finalizer every Flux controller puts on its objects.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

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

/// Parses a Go duration as Flux writes them (`1h30m`, `5m`, `30s`, `500ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::from_secs_f64(number * seconds);
    }
    Some(total)
}

/// An event recorder that reports as `controller` (e.g. `source-controller`).
pub fn recorder(client: &kube::Client, controller: &str) -> Recorder {
    let reporter = Reporter {
        controller: controller.into(),
        instance: None,
    };
    Recorder::new(client.clone(), reporter)
}

/// Runs a configured controller until `shutdown` resolves. A reconciliation that fails before
/// it could write its status (the API server refused the status or the finalizer) is logged and
/// retried after ten seconds; every other failure is reported in the status by the reconciler.
pub async fn drive<K, Ctx, ReconcileFut>(
    controller: Controller<K>,
    reconcile: impl FnMut(std::sync::Arc<K>, std::sync::Arc<Ctx>) -> ReconcileFut,
    context: std::sync::Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    Ctx: Send + Sync + 'static,
    ReconcileFut:
        futures::TryFuture<Ok = Action, Error = finalizer::Error<kube::Error>> + Send + 'static,
{
    use futures::StreamExt;
    let kind = K::kind(&()).to_string();
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            reconcile,
            |_, error, _| {
                tracing::warn!(%error, "reconciliation failed");
                Action::requeue(Duration::from_secs(10))
            },
            context,
        )
        .for_each(|result| {
            let kind = kind.clone();
            async move {
                if let Err(error) = result {
                    tracing::warn!(%error, %kind, "reconcile loop error");
                }
            }
        })
        .await;
}

/// Records a Kubernetes event about `object`: `Normal` or `Warning`, with a Flux reason and a
/// note cut to the 1 KiB the Events API allows. A failure to record is logged, never fatal.
pub async fn record(
    recorder: &Recorder,
    object: &ObjectReference,
    warning: bool,
    reason: &str,
    note: &str,
) {
    let mut end = note.len().min(1024);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note[..end].to_string()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, object).await {
        tracing::warn!(%err, "could not record an event");
    }
}

/// Flux's source conditions after one reconciliation. Success (`Ok((reason, message))`): Ready
/// and ArtifactInStorage True; FetchFailed, Stalled and Reconciling removed. Failure: Ready False
/// and FetchFailed True with the error's reason and message, Stalled True when the error stalls.
pub fn set_source_conditions(
    conds: &mut Vec<ferroflux_api::meta::Condition>,
    outcome: Result<(&str, &str), &ReconcileError>,
    generation: Option<i64>,
    at: &Time,
) {
    use crate::conditions::{self, Wanted};
    use ferroflux_api::meta::condition_type::{
        ARTIFACT_IN_STORAGE, FETCH_FAILED, READY, RECONCILING, STALLED,
    };
    let mut set = |type_, status, reason, message| {
        conditions::set(
            conds,
            Wanted {
                type_,
                status,
                reason,
                message,
            },
            generation,
            at.clone(),
        );
    };
    match outcome {
        Ok((reason, message)) => {
            set(READY, "True", reason, message);
            set(ARTIFACT_IN_STORAGE, "True", reason, message);
            for gone in [FETCH_FAILED, STALLED, RECONCILING] {
                conditions::delete(conds, gone);
            }
        }
        Err(err) => {
            set(READY, "False", err.reason, &err.message);
            set(FETCH_FAILED, "True", err.reason, &err.message);
            if err.retry == Retry::Stalling {
                set(STALLED, "True", err.reason, &err.message);
            } else {
                conditions::delete(conds, STALLED);
            }
            conditions::delete(conds, RECONCILING);
        }
    }
}

/// Writes `status` with a merge patch of the status subresource.
pub async fn patch_status<K>(api: &Api<K>, name: &str, status: Value) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("m"), None);
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
