//! Flagger's webhook payload (`CanaryWebhookPayload`) and the webhook types.

use std::collections::BTreeMap;

use ferroflux_api::flagger::{Canary, CanaryWebhook};

/// The webhook types Flagger knows; an empty type is `rollout`.
pub const TYPES: &[&str] = &[
    "",
    "rollout",
    "pre-rollout",
    "post-rollout",
    "confirm-rollout",
    "confirm-promotion",
    "confirm-traffic-increase",
    "rollback",
    "event",
];

/// Flagger's default webhook timeout.
pub const DEFAULT_TIMEOUT: &str = "10s";

/// The JSON body Flagger posts to a webhook: name, namespace, phase, checksum and metadata.
pub fn payload(canary: &Canary, phase: &str, hook: &CanaryWebhook) -> serde_json::Value {
    let metadata = hook.metadata.clone().unwrap_or_default();
    body(canary, phase, metadata)
}

/// The body of an `event` webhook: the event's message and type and a millisecond timestamp
/// in the metadata, ahead of the hook's own metadata (which never overrides them).
pub fn event_payload(
    canary: &Canary,
    hook: &CanaryWebhook,
    message: &str,
    event_type: &str,
    timestamp_ms: i64,
) -> serde_json::Value {
    let mut metadata = BTreeMap::from([
        ("eventMessage".to_string(), message.to_string()),
        ("eventType".to_string(), event_type.to_string()),
        ("timestamp".to_string(), timestamp_ms.to_string()),
    ]);
    for (key, value) in hook.metadata.iter().flatten() {
        metadata.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let phase = canary
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    body(canary, &phase, metadata)
}

fn body(canary: &Canary, phase: &str, metadata: BTreeMap<String, String>) -> serde_json::Value {
    let mut value = serde_json::json!({
        "name": canary.metadata.name.clone().unwrap_or_default(),
        "namespace": canary.metadata.namespace.clone().unwrap_or_default(),
        "phase": phase,
        "checksum": checksum(canary),
    });
    if !metadata.is_empty() {
        value["metadata"] = serde_json::json!(metadata);
    }
    value
}

/// Flagger's canary checksum: a hash of the applied spec and the tracked configs, which
/// changes with each new revision (load testers key their runs on it).
pub fn checksum(canary: &Canary) -> String {
    let status = canary.status.clone().unwrap_or_default();
    crate::spec_hash(&serde_json::json!({
        "lastAppliedSpec": status.last_applied_spec,
        "trackedConfigs": status.tracked_configs,
    }))
}
