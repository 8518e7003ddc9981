//! `status.history`, as Flux keeps it: one snapshot per distinct (digest of the applied set,
//! outcome), newest first. Reconciling the same set with the same outcome again updates its
//! snapshot (last time, duration, count) and moves it to the front; anything else adds one.
//! At most [`MAX_SNAPSHOTS`] are kept, Flux's `HistoryMaxSize`.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroflux_api::meta::{Snapshot, Time};

/// Snapshots kept, the oldest dropped first.
pub const MAX_SNAPSHOTS: usize = 5;

/// Records one reconciliation of the set `digest` with outcome `status` (a Flux reason).
pub fn upsert(
    history: &mut Vec<Snapshot>,
    digest: &str,
    at: Time,
    duration: Duration,
    status: &str,
    metadata: BTreeMap<String, String>,
) {
    let duration = crate::runtime::go_duration(duration);
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let found = history
        .iter()
        .position(|s| s.digest == digest && s.last_reconciled_status == status);
    let snapshot = match found {
        Some(index) => {
            let mut snapshot = history.remove(index);
            snapshot.last_reconciled = at;
            snapshot.last_reconciled_duration = duration;
            snapshot.total_reconciliations = snapshot.total_reconciliations.saturating_add(1);
            snapshot.metadata = metadata;
            snapshot
        }
        None => Snapshot {
            digest: digest.to_string(),
            first_reconciled: at.clone(),
            last_reconciled: at,
            last_reconciled_duration: duration,
            last_reconciled_status: status.to_string(),
            total_reconciliations: 1,
            metadata,
        },
    };
    history.insert(0, snapshot);
    history.truncate(MAX_SNAPSHOTS);
}

/// Whether the newest snapshot is of the set `digest` with outcome `status`.
pub fn repeats_newest(history: &[Snapshot], digest: &str, status: &str) -> bool {
    history
        .first()
        .is_some_and(|s| s.digest == digest && s.last_reconciled_status == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(second).expect("in range"))
    }

    #[test]
    fn the_same_set_and_outcome_is_counted_and_moved_to_the_front() {
        let mut history = Vec::new();
        let meta = |rev: &str| BTreeMap::from([("revision".to_string(), rev.to_string())]);
        let ms = Duration::from_millis(1500);
        upsert(
            &mut history,
            "sha256:a",
            at(10),
            ms,
            "ReconciliationSucceeded",
            meta("r1"),
        );
        upsert(
            &mut history,
            "sha256:b",
            at(20),
            ms,
            "ReconciliationSucceeded",
            meta("r2"),
        );
        upsert(
            &mut history,
            "sha256:b",
            at(25),
            ms,
            "HealthCheckFailed",
            meta("r2"),
        );
        upsert(
            &mut history,
            "sha256:a",
            at(30),
            ms,
            "ReconciliationSucceeded",
            meta("r3"),
        );
        let digests: Vec<(&str, &str, i64)> = history
            .iter()
            .map(|s| {
                (
                    s.digest.as_str(),
                    s.last_reconciled_status.as_str(),
                    s.total_reconciliations,
                )
            })
            .collect();
        assert_eq!(
            digests,
            [
                ("sha256:a", "ReconciliationSucceeded", 2),
                ("sha256:b", "HealthCheckFailed", 1),
                ("sha256:b", "ReconciliationSucceeded", 1),
            ]
        );
        let latest = &history[0];
        assert_eq!(
            (
                latest.first_reconciled.clone(),
                latest.last_reconciled.clone()
            ),
            (at(10), at(30))
        );
        assert_eq!(latest.last_reconciled_duration, "1.5s");
        assert_eq!(latest.metadata, Some(meta("r3")));
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() {
        let mut history = Vec::new();
        for i in 0..8 {
            upsert(
                &mut history,
                &format!("sha256:{i}"),
                at(i),
                Duration::ZERO,
                "ReconciliationSucceeded",
                BTreeMap::new(),
            );
        }
        assert_eq!(history.len(), MAX_SNAPSHOTS);
        assert_eq!(history[0].digest, "sha256:7");
        assert_eq!(history[MAX_SNAPSHOTS - 1].digest, "sha256:3");
        assert_eq!(history[0].metadata, None);
    }
}
