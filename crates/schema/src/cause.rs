//! One invalid field, as kube-apiserver lists them in a Status's `details.causes` (and in its
//! message, `field: message`).

use serde_json::Value;

/// One invalid field.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// e.g. `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// Human message.
    pub message: String,
    /// Field path, e.g. `spec.replicas`.
    pub field: String,
}

impl Cause {
    fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason,
            message: message.into(),
            field: field.into(),
        }
    }
    /// An invalid value.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", short(value)),
        )
    }
    /// A required value missing.
    pub fn required(field: impl Into<String>) -> Cause {
        Cause::new("FieldValueRequired", field, "Required value")
    }
    /// A required value missing, with kube's explanation after it.
    pub fn required_because(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new(
            "FieldValueRequired",
            field,
            format!("Required value: {detail}"),
        )
    }
    /// A value outside an enum.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Cause {
        let list: Vec<String> = allowed.iter().map(short).collect();
        Cause::new(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                short(value),
                list.join(", ")
            ),
        )
    }
    /// A type mismatch.
    pub fn type_invalid(field: impl Into<String>, value: &Value, want: &str) -> Cause {
        Cause::new(
            "FieldValueTypeInvalid",
            field,
            format!("Invalid value: {}: {want} expected", short(value)),
        )
    }
    /// A value refused by policy rather than by form (kube's `field.Forbidden`).
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }
    /// A value too long (kube reports it without the value).
    pub fn too_long(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new("FieldValueTooLong", field, format!("Too long: {detail}"))
    }
    /// A list with too many items.
    pub fn too_many(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new("FieldValueTooMany", field, format!("Too many: {detail}"))
    }
    /// A duplicate entry (e.g. in a `x-kubernetes-list-type: set`).
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
        Cause::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", short(value)),
        )
    }
    /// An internal failure while checking the field (kube's `field.InternalError`).
    pub fn internal(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new("InternalError", field, format!("Internal error: {detail}"))
    }
}

/// The value as kube's field errors quote it, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(77).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
