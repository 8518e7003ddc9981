//! Kubernetes events as Flux's controllers record them. Like client-go's recorder, which Flux
//! uses, the same event again (same object, type, reason and message) within a few minutes counts
//! up the series of the first Event, and an event with a new message is a new Event. kube-rs's
//! `Recorder` leaves the message out of that match, so a new artifact or change set showed in
//! `flux events` as one more repeat of the previous message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long a repeat counts up the first Event's series (kube-rs's and client-go's window).
const SERIES_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(6);
/// At most this many recent events are remembered; the oldest is forgotten first.
const MAX_RECENT: usize = 1024;

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

/// Records events as one controller (`events.k8s.io/v1`; the API server serves them as core
/// Events too, which `flux events` lists).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    controller: String,
    recent: Arc<Mutex<HashMap<Key, Recent>>>,
}

impl Recorder {
    /// A recorder reporting as `controller` (e.g. `source-controller`).
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Recorder {
            client,
            controller: controller.to_string(),
            recent: Arc::default(),
        }
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
            let patch = json!({"series": {
                "count": recent.count,
                "lastObservedTime": MicroTime(now),
            }});
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
            action: Some("Reconcile".to_string()),
            event_time: Some(MicroTime(now)),
            note: Some(note.to_string()),
            reason: Some(reason.to_string()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
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
