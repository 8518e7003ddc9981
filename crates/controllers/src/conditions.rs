//! Flux's rules for `status.conditions` (fluxcd/pkg/runtime/conditions): a condition keeps its
//! `lastTransitionTime` unless its status, reason or message changed; every write stamps
//! `observedGeneration`; `Ready` sorts first and the others alphabetically.

use ferroflux_api::meta::{Condition, Time, condition_type};

use crate::runtime::{ReconcileError, Retry};

/// The wanted state of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// Condition type, e.g. `Ready`.
    pub type_: &'a str,
    /// `True`, `False` or `Unknown`.
    pub status: &'a str,
    /// CamelCase reason, e.g. `ReconciliationSucceeded`.
    pub reason: &'a str,
    /// Human-readable message.
    pub message: &'a str,
}

/// Sets a condition, keeping its transition time when nothing a user sees changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    wanted: Wanted<'_>,
    generation: Option<i64>,
    now: Time,
) {
    let condition = Condition {
        type_: wanted.type_.to_string(),
        status: wanted.status.to_string(),
        reason: wanted.reason.to_string(),
        message: wanted.message.to_string(),
        observed_generation: generation,
        last_transition_time: now,
    };
    match conditions.iter_mut().find(|c| c.type_ == wanted.type_) {
        Some(existing) => {
            let unchanged = existing.status == condition.status
                && existing.reason == condition.reason
                && existing.message == condition.message;
            let kept_time = existing.last_transition_time.clone();
            *existing = condition;
            if unchanged {
                existing.last_transition_time = kept_time;
            }
        }
        None => conditions.push(condition),
    }
    sort(conditions);
}

/// [`set`] of one status write: `type_` to `status` with `reason` and `message`, observed at
/// `generation`, at `at`.
pub fn mark(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    at: &Time,
) {
    let wanted = Wanted {
        type_,
        status,
        reason,
        message,
    };
    set(conditions, wanted, generation, at.clone());
}

/// Flux's conditions of a reconciliation's outcome. Success (`Ok((reason, message))`): Ready
/// True, Stalled removed. Failure: Ready False with the error's reason and message, Stalled True
/// with them when the error stalls (removed otherwise). Reconciling is removed either way: the
/// status is written when the reconciliation is over.
pub fn set_outcome(
    conditions: &mut Vec<Condition>,
    outcome: Result<(&str, &str), &ReconcileError>,
    generation: Option<i64>,
    at: &Time,
) {
    use condition_type::{READY, RECONCILING, STALLED};
    delete(conditions, RECONCILING);
    match outcome {
        Ok((reason, message)) => {
            mark(conditions, READY, "True", reason, message, generation, at);
            delete(conditions, STALLED);
        }
        Err(err) => {
            mark(
                conditions,
                READY,
                "False",
                err.reason,
                &err.message,
                generation,
                at,
            );
            if err.retry == Retry::Stalling {
                mark(
                    conditions,
                    STALLED,
                    "True",
                    err.reason,
                    &err.message,
                    generation,
                    at,
                );
            } else {
                delete(conditions, STALLED);
            }
        }
    }
}

/// Removes a condition type.
pub fn delete(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The condition of a type, if set.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition of this type is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

/// `Ready` first, then the rest by type.
pub fn sort(conditions: &mut [Condition]) {
    conditions.sort_by(|a, b| {
        (a.type_ != condition_type::READY, &a.type_)
            .cmp(&(b.type_ != condition_type::READY, &b.type_))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).expect("valid"))
    }

    fn ready<'a>(status: &'a str, reason: &'a str, message: &'a str) -> Wanted<'a> {
        Wanted {
            type_: "Ready",
            status,
            reason,
            message,
        }
    }

    #[test]
    fn transition_time_is_kept_while_nothing_changes() {
        let mut conditions = Vec::new();
        set(
            &mut conditions,
            ready("True", "ReconciliationSucceeded", "Applied revision: a"),
            Some(1),
            time(100),
        );
        set(
            &mut conditions,
            ready("True", "ReconciliationSucceeded", "Applied revision: a"),
            Some(2),
            time(200),
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, time(100));
        assert_eq!(conditions[0].observed_generation, Some(2));

        set(
            &mut conditions,
            ready("True", "ReconciliationSucceeded", "Applied revision: b"),
            Some(2),
            time(300),
        );
        assert_eq!(
            conditions[0].last_transition_time,
            time(300),
            "a new message is a transition"
        );
        set(
            &mut conditions,
            ready("False", "BuildFailed", "kustomize build failed"),
            Some(3),
            time(400),
        );
        assert_eq!(conditions[0].last_transition_time, time(400));
        assert_eq!(conditions[0].reason, "BuildFailed");
    }

    #[test]
    fn ready_sorts_first_and_others_alphabetically() {
        let mut conditions = Vec::new();
        for type_ in ["Stalled", "Reconciling", "Ready", "Healthy"] {
            set(
                &mut conditions,
                Wanted {
                    type_,
                    status: "True",
                    reason: "Progressing",
                    message: "",
                },
                None,
                time(1),
            );
        }
        let order: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order, ["Ready", "Healthy", "Reconciling", "Stalled"]);
        delete(&mut conditions, "Reconciling");
        assert!(get(&conditions, "Reconciling").is_none());
        assert!(is_true(&conditions, "Stalled"));
        assert!(!is_true(&conditions, "Reconciling"));
    }

    #[test]
    fn an_outcome_sets_ready_and_stalled_and_clears_reconciling() {
        let mut conditions = Vec::new();
        mark(
            &mut conditions,
            "Reconciling",
            "True",
            "Progressing",
            "",
            None,
            &time(1),
        );
        let stalled = ReconcileError::stalling("InvalidSpec", "bad interval");
        set_outcome(&mut conditions, Err(&stalled), Some(1), &time(2));
        assert!(get(&conditions, "Reconciling").is_none());
        assert_eq!(
            get(&conditions, "Ready").map(|c| c.status.as_str()),
            Some("False")
        );
        assert_eq!(
            get(&conditions, "Stalled").map(|c| c.message.as_str()),
            Some("bad interval")
        );
        let retried = ReconcileError::generic("BuildFailed", "broken");
        set_outcome(&mut conditions, Err(&retried), Some(1), &time(3));
        assert!(
            get(&conditions, "Stalled").is_none(),
            "a retried failure does not stall"
        );
        set_outcome(
            &mut conditions,
            Ok(("Succeeded", "done")),
            Some(2),
            &time(4),
        );
        assert!(is_true(&conditions, "Ready"));
        assert_eq!(conditions.len(), 1);
    }
}
