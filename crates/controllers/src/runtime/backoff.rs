//! Flux's requeue after errors: a per-object exponential backoff.

use std::time::Duration;

use kube::runtime::controller::Action;

use super::ReconcileError;

/// Flux's requeue of source objects (controller-runtime's per-object exponential failure
/// backoff with Flux's `--min-retry-delay` and `--max-retry-delay`): after a generic error the
/// delay doubles with every failure in a row, from [`Backoff::MIN`] up to [`Backoff::MAX`]; a
/// success resets it and requeues at the interval.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Backoff {
    /// The first retry delay.
    pub(super) const MIN: Duration = Duration::from_millis(750);
    /// The longest retry delay.
    pub(super) const MAX: Duration = Duration::from_secs(15 * 60);
    /// Objects tracked at once; past it the counts start over (bounds memory when objects
    /// are deleted while failing).
    const TRACKED: usize = 10_000;

    /// The action after one reconcile of `key` (`namespace/name`): `Ok(interval)` on success,
    /// else the error's own requeue, a generic error retried after the backoff delay.
    pub(super) fn action(&self, key: &str, outcome: Result<Duration, &ReconcileError>) -> Action {
        let mut failures = super::driver::lock(&self.failures);
        match outcome {
            Ok(interval) => {
                failures.remove(key);
                Action::requeue(interval)
            }
            Err(err) => {
                if failures.len() >= Self::TRACKED && !failures.contains_key(key) {
                    failures.clear();
                }
                let count = failures.entry(key.to_string()).or_insert(0);
                let delay = Self::MIN
                    .checked_mul(2u32.saturating_pow(*count))
                    .map_or(Self::MAX, |d| d.min(Self::MAX));
                *count = count.saturating_add(1);
                err.action(delay)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_errors_back_off_exponentially_until_a_success() {
        let backoff = Backoff::default();
        let failed = ReconcileError::generic("AuthenticationFailed", "denied");
        let delays: Vec<Action> = (0..3)
            .map(|_| backoff.action("ns/a", Err(&failed)))
            .collect();
        assert_eq!(
            delays,
            [
                Action::requeue(Duration::from_millis(750)),
                Action::requeue(Duration::from_millis(1500)),
                Action::requeue(Duration::from_millis(3000)),
            ]
        );
        assert_eq!(
            backoff.action("ns/b", Err(&failed)),
            Action::requeue(Duration::from_millis(750)),
            "per object"
        );
        let interval = Duration::from_secs(60);
        assert_eq!(
            backoff.action("ns/a", Ok(interval)),
            Action::requeue(interval)
        );
        assert_eq!(
            backoff.action("ns/a", Err(&failed)),
            Action::requeue(Duration::from_millis(750)),
            "a success resets it"
        );
        let stalled = ReconcileError::stalling("InvalidSpec", "bad");
        assert_eq!(
            backoff.action("ns/c", Err(&stalled)),
            Action::await_change()
        );
        for _ in 0..40 {
            backoff.action("ns/d", Err(&failed));
        }
        assert_eq!(
            backoff.action("ns/d", Err(&failed)),
            Action::requeue(Backoff::MAX)
        );
    }
}
