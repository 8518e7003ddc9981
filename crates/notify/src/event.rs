//! Flux's event payload (`fluxcd/pkg/apis/event/v1beta1.Event`): what every controller posts to
//! the notification controller's `--events-addr`, and the metadata rules the event server
//! applies before any Alert sees it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The API group of the event API; metadata keys under it come from the object's annotations.
pub const GROUP: &str = "event.toolkit.fluxcd.io";

/// Severity of an informational event (a change).
pub const SEVERITY_INFO: &str = "info";
/// Severity of an error event (a failure).
pub const SEVERITY_ERROR: &str = "error";
/// Severity of a trace event, never forwarded.
pub const SEVERITY_TRACE: &str = "trace";

/// Metadata key (under the object's group) of the source artifact revision.
pub const META_REVISION: &str = "revision";
/// Metadata key (under the object's group) of the source artifact origin revision.
pub const META_ORIGIN_REVISION: &str = "originRevision";
/// Metadata key (under the object's group) of the artifact checksum, dropped on receipt.
pub const META_CHECKSUM: &str = "checksum";
/// Metadata key (under the object's group) of the artifact digest, dropped on receipt.
pub const META_DIGEST: &str = "digest";
/// Metadata key (under the object's group) of the emitter's token, used by the rate limit only.
pub const META_TOKEN: &str = "token";
/// Metadata key (under the object's group) that marks a commit status event.
pub const META_COMMIT_STATUS: &str = "commit_status";
/// The value of [`META_COMMIT_STATUS`] of a commit status update.
pub const META_COMMIT_STATUS_UPDATE: &str = "update";
/// Metadata key (under [`GROUP`]) naming the commit an event is about.
pub const META_COMMIT: &str = "commit";
/// Metadata key of the pull or merge request an event is about (pull request comments).
pub const META_CHANGE_REQUEST: &str = "change_request";
/// The key Alerts' `spec.summary` is written under.
pub const META_SUMMARY: &str = "summary";

/// The object an event is about (Kubernetes' `ObjectReference`, as Go encodes it: every field
/// left out when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Kind, e.g. `Kustomization`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `group/version`, e.g. `kustomize.toolkit.fluxcd.io/v1`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Resource version the event saw.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Field path, when the event is about part of the object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

impl ObjectReference {
    /// The API group of `apiVersion` (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _version)| group)
    }

    /// `Kind/namespace/name`, as Flux names the object in its messages.
    pub fn display(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// `kind/name.namespace` with the kind in lower case: the title of most chat messages.
    pub fn title(&self) -> String {
        format!(
            "{}/{}.{}",
            self.kind.to_lowercase(),
            self.name,
            self.namespace
        )
    }
}

/// One event of a Flux controller (`event.toolkit.fluxcd.io/v1beta1` `Event`). Metadata is
/// ordered by key, as Go's encoder writes a map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The object the event is about.
    pub involved_object: ObjectReference,
    /// `trace`, `info` or `error`.
    pub severity: String,
    /// When the event was recorded, RFC 3339 in whole seconds.
    pub timestamp: String,
    /// What happened.
    pub message: String,
    /// Flux's reason, e.g. `ReconciliationFailed`.
    pub reason: String,
    /// Metadata, e.g. `kustomize.toolkit.fluxcd.io/revision`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The controller that emitted it, e.g. `kustomize-controller`.
    pub reporting_controller: String,
    /// The instance of the controller.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

impl Event {
    /// The revision the event is about: the origin revision first, then the revision (keys as
    /// the Alert's metadata merge leaves them, without a group prefix).
    pub fn revision(&self) -> Option<&str> {
        self.metadata
            .get(META_ORIGIN_REVISION)
            .or_else(|| self.metadata.get(META_REVISION))
            .map(String::as_str)
    }

    /// The event's JSON, as it is posted and signed.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and a string map always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Timestamp in seconds since the epoch (0 when it does not parse).
    pub fn unix_seconds(&self) -> i64 {
        self.timestamp
            .parse::<jiff::Timestamp>()
            .map_or(0, |t| t.as_second())
    }

    /// The metadata key `key` under the involved object's group.
    pub fn object_key(&self, key: &str) -> String {
        format!("{}/{key}", self.involved_object.group())
    }
}

/// Keeps only the metadata Flux alerts on, as the event server does on receipt: keys under the
/// event group or the involved object's group, less the artifact checksum and digest.
pub fn cleanup_metadata(event: &mut Event) {
    let object_prefix = format!("{}/", event.involved_object.group());
    let event_prefix = format!("{GROUP}/");
    let excluded = [
        format!("{object_prefix}{META_CHECKSUM}"),
        format!("{object_prefix}{META_DIGEST}"),
    ];
    event.metadata.retain(|key, _| {
        !excluded.iter().any(|e| e.eq_ignore_ascii_case(key))
            && (key.starts_with(&event_prefix) || key.starts_with(&object_prefix))
    });
}

/// Removes what is only for the rate limit (the emitter's token) before Alerts see the event.
pub fn exclude_internal_metadata(event: &mut Event) {
    let token = event.object_key(META_TOKEN);
    event.metadata.remove(&token);
}

/// The key of Flux's rate limit: one event per key goes through per interval. The same object,
/// message, revisions and token make the same key (hex SHA-256, as Flux's `eventKeyFunc`).
pub fn rate_limit_key(event: &Event) -> String {
    use sha2::Digest;
    let object = &event.involved_object;
    let mut parts = vec![
        "event".to_string(),
        format!("name={}", object.name),
        format!("namespace={}", object.namespace),
        format!("kind={}", object.kind),
        format!("message={}", event.message),
    ];
    for (key, label) in [
        (META_ORIGIN_REVISION, "originRevision"),
        (META_REVISION, "revision"),
        (META_TOKEN, "token"),
    ] {
        if let Some(value) = event.metadata.get(&event.object_key(key)) {
            parts.push(format!("{label}={value}"));
        }
    }
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(parts.join("/").as_bytes()))
}

#[cfg(test)]
pub(crate) use tests::kustomization_event;

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn kustomization_event() -> Event {
        Event {
            involved_object: ObjectReference {
                kind: "Kustomization".into(),
                namespace: "apps".into(),
                name: "podinfo".into(),
                uid: "0c2e3a8e-1b44-4e8f-9c1c-7b5a1f0e2d11".into(),
                api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
                ..ObjectReference::default()
            },
            severity: SEVERITY_ERROR.into(),
            timestamp: "2026-12-07T16:00:00Z".into(),
            message: "Deployment/apps/podinfo dry-run failed".into(),
            reason: "ReconciliationFailed".into(),
            metadata: [(
                "kustomize.toolkit.fluxcd.io/revision".to_string(),
                "main@sha1:8a7b1c".to_string(),
            )]
            .into(),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        }
    }

    #[test]
    fn the_payload_is_flux_s_json() {
        let json: serde_json::Value =
            serde_json::from_slice(&kustomization_event().to_json()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "podinfo",
                    "uid": "0c2e3a8e-1b44-4e8f-9c1c-7b5a1f0e2d11",
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
                "severity": "error", "timestamp": "2026-12-07T16:00:00Z",
                "message": "Deployment/apps/podinfo dry-run failed", "reason": "ReconciliationFailed",
                "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:8a7b1c"},
                "reportingController": "kustomize-controller"
            })
        );
    }

    #[test]
    fn metadata_outside_the_two_groups_and_the_digest_are_dropped() {
        let mut event = kustomization_event();
        event.metadata.extend([
            ("other.io/x".to_string(), "1".to_string()),
            (
                "kustomize.toolkit.fluxcd.io/digest".to_string(),
                "sha256:1".to_string(),
            ),
            (
                "event.toolkit.fluxcd.io/env".to_string(),
                "prod".to_string(),
            ),
        ]);
        cleanup_metadata(&mut event);
        let keys: Vec<_> = event.metadata.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "event.toolkit.fluxcd.io/env",
                "kustomize.toolkit.fluxcd.io/revision"
            ]
        );
    }

    #[test]
    fn the_rate_limit_key_changes_with_message_and_revision_only() {
        let event = kustomization_event();
        let mut later = event.clone();
        later.timestamp = "2026-12-07T16:01:00Z".into();
        assert_eq!(rate_limit_key(&event), rate_limit_key(&later));
        let mut other = event.clone();
        other.message.push('!');
        assert_ne!(rate_limit_key(&event), rate_limit_key(&other));
        let mut revised = event.clone();
        revised.metadata.insert(
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:ffff".into(),
        );
        assert_ne!(rate_limit_key(&event), rate_limit_key(&revised));
        assert_eq!(rate_limit_key(&event).len(), 64);
    }
}
