//! Kubernetes events as Flux's controllers record them: core/v1 Events with `source`, `count`
//! and first/last timestamps, as client-go's recorder (which Flux uses) writes them, so
//! `kubectl get events --sort-by=.lastTimestamp` orders them and `events.k8s.io/v1` readers see
//! the same Events. Like client-go's recorder, the same event again (same object, type, reason and message) within a few minutes counts
//! up the series of the first Event, and an event with a new message is a new Event. kube-rs's
//! `Recorder` leaves the message out of that match, so a new artifact or change set showed in
//! `flux events` as one more repeat of the previous message.
//!
//! When the controller has an events address (Flux's `--events-addr`), each event is also
//! posted there as Flux's event payload ([`ferroflux_notify::Event`]) for the notification
//! controller: best-effort, in the background, bounded in time and in number in flight, so a
//! slow or absent notification controller never holds a reconcile up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long a repeat counts up the first Event's series (kube-rs's and client-go's window).
const SERIES_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(6);
/// At most this many recent events are remembered; the oldest is forgotten first.
const MAX_RECENT: usize = 1024;
/// How long one post to the events address may take (Flux's recorder gives up about as soon).
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Posts in flight at most; beyond that an event is dropped (logged), never queued.
const MAX_IN_FLIGHT: usize = 64;

/// What makes two events the same event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: (String, String, String, String),
    warning: bool,
    reason: String,
    note: String,
}

/// The Event recorded for a key, and its series so far.
#[derive(Debug, Clone)]
struct Recent {
    namespace: String,
    name: String,
    count: i32,
    last: jiff::Timestamp,
}

/// Records events as one controller (core/v1 Events, which the API server also serves as
/// `events.k8s.io/v1`).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    controller: String,
    recent: Arc<Mutex<HashMap<Key, Recent>>>,
    /// The HTTP client and the permits of posts to the events address, made on first use.
    forward: Arc<OnceLock<(reqwest::Client, Arc<tokio::sync::Semaphore>)>>,
}

impl Recorder {
    /// A recorder reporting as `controller` (e.g. `source-controller`).
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Recorder {
            client,
            controller: controller.to_string(),
            recent: Arc::default(),
            forward: Arc::default(),
        }
    }

    /// The controller the events are reported as.
    pub fn controller(&self) -> &str {
        &self.controller
    }

    /// Posts `event` to the notification controller at `address` (a URL, or `host:port` for
    /// `http://host:port/`) in the background. Best-effort: a failure is logged, an event
    /// beyond [`MAX_IN_FLIGHT`] posts is dropped, and no post outlives [`POST_TIMEOUT`].
    pub fn forward(&self, address: &str, event: &ferroflux_notify::Event) {
        let (http, permits) = self.forward.get_or_init(|| {
            let http = ferroflux_source::http::HttpOptions {
                connect_timeout: POST_TIMEOUT,
                timeout: POST_TIMEOUT,
                ca_pem: Vec::new(),
            }
            .client()
            .unwrap_or_else(|_| ferroflux_source::http::default_client());
            (http, Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)))
        });
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(reason = %event.reason, "too many event posts in flight: event dropped");
            return;
        };
        let url = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}/")
        };
        let request = http
            .post(url)
            .header("Content-Type", "application/json")
            .body(event.to_json());
        let reason = event.reason.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match request.send().await {
                Ok(answer) if answer.status().is_success() || answer.status().as_u16() == 429 => {}
                Ok(answer) => {
                    tracing::warn!(status = %answer.status(), %reason, "the events address refused an event");
                }
                Err(err) => {
                    tracing::warn!(err = %err.without_url(), %reason, "could not post an event");
                }
            }
        });
    }

    /// Records an event about `regarding`: a new Event, or one more in the series of the same
    /// event recorded in the last minutes.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let now = jiff::Timestamp::now();
        let key = Key {
            regarding: (
                regarding.kind.clone().unwrap_or_default(),
                regarding.namespace.clone().unwrap_or_default(),
                regarding.name.clone().unwrap_or_default(),
                regarding.uid.clone().unwrap_or_default(),
            ),
            warning,
            reason: reason.to_string(),
            note: note.to_string(),
        };
        if let Some(recent) = self.remember(&key, now) {
            let events: Api<Event> = Api::namespaced(self.client.clone(), &recent.namespace);
            let patch = json!({
                "count": recent.count,
                "lastTimestamp": Time(now),
            });
            match events
                .patch(&recent.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                // The Event was deleted meanwhile: it is recorded anew.
                Err(kube::Error::Api(status)) if status.code == 404 => self.forget(&key),
                patched => return patched.map(|_| ()),
            }
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: regarding.clone(),
            reason: Some(reason.to_string()),
            message: Some(note.to_string()),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(self.controller.clone()),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        events.create(&PostParams::default(), &event).await?;
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                Recent {
                    namespace,
                    name,
                    count: 1,
                    last: now,
                },
            );
        Ok(())
    }

    /// The series of `key` counted up to `now`, when it was recorded within the window; drops
    /// what fell out of the window, and the oldest entries beyond the bound.
    fn remember(&self, key: &Key, now: jiff::Timestamp) -> Option<Recent> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|_, r| r.last + SERIES_WINDOW > now);
        while recent.len() >= MAX_RECENT {
            let oldest = recent
                .iter()
                .min_by_key(|(_, r)| r.last)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(oldest) => recent.remove(&oldest),
                None => break,
            };
        }
        let entry = recent.get_mut(key)?;
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        Some(entry.clone())
    }

    fn forget(&self, key: &Key) {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// Flux's event payload of an event about `regarding`: severity `error` for a Warning, `info`
/// otherwise, with `metadata` (keys under the object's group, e.g.
/// `kustomize.toolkit.fluxcd.io/revision`).
pub fn payload(
    regarding: &ObjectReference,
    warning: bool,
    reason: &str,
    message: &str,
    controller: &str,
    metadata: BTreeMap<String, String>,
) -> ferroflux_notify::Event {
    use ferroflux_notify::event::{ObjectReference as Involved, SEVERITY_ERROR, SEVERITY_INFO};
    let field = |f: &Option<String>| f.clone().unwrap_or_default();
    let seconds = jiff::Timestamp::now().as_second();
    ferroflux_notify::Event {
        involved_object: Involved {
            kind: field(&regarding.kind),
            namespace: field(&regarding.namespace),
            name: field(&regarding.name),
            uid: field(&regarding.uid),
            api_version: field(&regarding.api_version),
            resource_version: field(&regarding.resource_version),
            field_path: field(&regarding.field_path),
        },
        severity: if warning {
            SEVERITY_ERROR
        } else {
            SEVERITY_INFO
        }
        .to_string(),
        timestamp: jiff::Timestamp::from_second(seconds)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default(),
        message: message.to_string(),
        reason: reason.to_string(),
        metadata,
        reporting_controller: controller.to_string(),
        reporting_instance: controller.to_string(),
    }
}

/// The metadata Flux's controllers attach to an event of an object of `api_version`/`kind`
/// whose status (after the reconcile) is `status`: the revision (the artifact's, or the
/// source revision a Kustomization or HelmRelease last attempted) and, on a success of those
/// two, Flux's commit status update mark (which Git commit status providers take).
pub fn metadata(
    api_version: &str,
    kind: &str,
    status: &serde_json::Value,
    warning: bool,
) -> BTreeMap<String, String> {
    use ferroflux_notify::event::{META_COMMIT_STATUS, META_COMMIT_STATUS_UPDATE, META_REVISION};
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let revision = status
        .pointer("/artifact/revision")
        .or_else(|| status.get("lastAttemptedRevision"))
        .or_else(|| status.get("lastAppliedRevision"))
        .and_then(serde_json::Value::as_str)
        .filter(|r| !r.is_empty());
    let mut metadata = BTreeMap::new();
    if let Some(revision) = revision {
        metadata.insert(format!("{group}/{META_REVISION}"), revision.to_string());
        if !warning && matches!(kind, "Kustomization" | "HelmRelease") {
            metadata.insert(
                format!("{group}/{META_COMMIT_STATUS}"),
                META_COMMIT_STATUS_UPDATE.to_string(),
            );
        }
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_revision_and_a_success_of_a_kustomization_updates_commit_statuses() {
        let status = serde_json::json!({"lastAttemptedRevision": "main@sha1:abc"});
        let failed = metadata(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            &status,
            true,
        );
        assert_eq!(
            failed,
            [(
                "kustomize.toolkit.fluxcd.io/revision".to_string(),
                "main@sha1:abc".to_string()
            )]
            .into()
        );
        let applied = metadata(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            &status,
            false,
        );
        assert_eq!(
            applied.get("kustomize.toolkit.fluxcd.io/commit_status"),
            Some(&"update".to_string())
        );
        let source = serde_json::json!({"artifact": {"revision": "main@sha1:def"}});
        let git = metadata(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            &source,
            false,
        );
        assert_eq!(git.len(), 1);
        assert_eq!(
            git.get("source.toolkit.fluxcd.io/revision"),
            Some(&"main@sha1:def".to_string())
        );
        let reference = ObjectReference {
            kind: Some("GitRepository".into()),
            namespace: Some("flux-system".into()),
            name: Some("fleet".into()),
            api_version: Some("source.toolkit.fluxcd.io/v1".into()),
            ..ObjectReference::default()
        };
        let event = payload(
            &reference,
            true,
            "GitOperationFailed",
            "boom",
            "source-controller",
            git,
        );
        assert_eq!(event.severity, "error");
        assert_eq!(event.involved_object.group(), "source.toolkit.fluxcd.io");
        assert!(event.timestamp.ends_with('Z'));
    }
}
