//! Schema fragments that schemars cannot derive in the structural form Kubernetes requires.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Go `metav1.Duration` as Flux validates it, e.g. `5m`, `1h30m`, `500ms`.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
    })
}

/// A timeout of the source and notification kinds: a Go duration in minutes at most, as
/// upstream's CRDs validate it (hours are refused).
pub fn timeout(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m))+$"
    })
}

/// A Go `int` field: upstream's CRDs declare it as an integer without `format` (only `int64`
/// fields carry `format: int64`), and ours say the same.
pub fn go_int(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "integer"
    })
}

/// Free-form JSON object (Helm values, Kyverno patterns): kept as written, never pruned.
pub fn preserve_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// A list of free-form JSON objects (Kyverno `anyPattern`).
pub fn preserve_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// Any JSON value (a string, number, object ...), e.g. Kyverno pattern leaves.
pub fn preserve_any(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Kubernetes `metav1.Condition`, the shape Flux writes into `status.conditions`.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string", "maxLength": 32768},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
                "reason": {"type": "string", "maxLength": 1024, "minLength": 1,
                           "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "type": {"type": "string", "maxLength": 316,
                         "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"}
            }
        }
    })
}

/// Kubernetes `metav1.LabelSelector`.
pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string"},
                        "operator": {"type": "string"},
                        "values": {"type": "array", "items": {"type": "string"},
                                   "x-kubernetes-list-type": "atomic"}
                    }
                },
                "x-kubernetes-list-type": "atomic"
            }
        },
        "x-kubernetes-map-type": "atomic"
    })
}
