//! Conversion between the two Event APIs, which share one storage as in kube-apiserver:
//! `events.k8s.io/v1` objects are stored as `v1` Events, so `kubectl get events` sees the events
//! that kube-rs recorders write, and the reverse.

use serde_json::{Map, Value, json};

/// (core/v1 field, events.k8s.io/v1 field)
const FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("related", "related"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn map(obj: &Value, api_version: &str, to_events: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    out.insert("metadata".into(), obj["metadata"].clone());
    for (core, events) in FIELDS {
        let (from, to) = if to_events {
            (core, events)
        } else {
            (events, core)
        };
        if let Some(v) = obj.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// A stored `v1` Event as `events.k8s.io/v1`.
pub fn core_to_events(obj: &Value) -> Value {
    map(obj, "events.k8s.io/v1", true)
}

/// An `events.k8s.io/v1` Event in its stored `v1` form.
pub fn events_to_core(obj: &Value) -> Value {
    map(obj, "v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started", "type": "Normal",
            "reportingController": "ctl", "eventTime": "2026-01-01T00:00:00.000000Z", "deprecatedCount": 3});
        let core = events_to_core(&ev);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "ctl");
        assert_eq!(core["count"], 3);
        assert_eq!(core_to_events(&core), ev);
    }
}
