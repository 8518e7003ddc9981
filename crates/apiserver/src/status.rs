//! `metav1.Status` errors: every failed request is answered with one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::StoreError;

pub use ferroflux_schema::Cause;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP code.
    pub code: u16,
    /// `reason` of the Status.
    pub reason: &'static str,
    /// Message.
    pub message: String,
    /// `details` of the Status.
    pub details: Option<Value>,
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Who an error is about.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Resource (plural) or `group` qualified plural.
    pub resource: &'a str,
    /// Group.
    pub group: &'a str,
    /// Object name.
    pub name: &'a str,
    /// Kind.
    pub kind: &'a str,
}

impl<'a> Target<'a> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
    fn details(&self) -> Value {
        json!({"name": self.name, "group": self.group, "kind": self.resource})
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    /// A validating webhook's (or in-process validator's) denial, as kube-apiserver reports
    /// it: the webhook's code (400 when it gave none below 400) and its `reason`, which is empty
    /// when the webhook named none (Kyverno names none).
    pub fn webhook_denial(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        const REASONS: [&str; 8] = [
            "BadRequest",
            "Forbidden",
            "Invalid",
            "NotFound",
            "Conflict",
            "Unauthorized",
            "AlreadyExists",
            "InternalError",
        ];
        let reason = REASONS.into_iter().find(|r| *r == reason).unwrap_or("");
        ApiError::new(code.max(400), reason, message)
    }
    /// 400 BadRequest.
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", msg)
    }
    /// 404 NotFound for an object.
    pub fn not_found(t: Target<'_>) -> ApiError {
        let mut e = ApiError::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", t.qualified(), t.name),
        );
        e.details = Some(t.details());
        e
    }
    /// 404 for a path in a served group version that names no resource or subresource.
    pub fn no_route() -> ApiError {
        let mut e = ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }
    /// 404 for a path outside every served group version. kube-apiserver answers those from
    /// its HTTP mux with Go's plain-text `404 page not found`, not a Status (clients then say
    /// "the server could not find the requested resource (get <resource>)"); see the
    /// [`IntoResponse`] impl.
    pub fn not_served() -> ApiError {
        ApiError::new(404, "NotFound", NOT_SERVED)
    }
    /// 409 AlreadyExists.
    pub fn already_exists(t: Target<'_>) -> ApiError {
        let mut e = ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", t.qualified(), t.name),
        );
        e.details = Some(t.details());
        e
    }
    /// 409 Conflict (stale resourceVersion).
    pub fn conflict(t: Target<'_>, why: &str) -> ApiError {
        let mut e = ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {why}",
                t.qualified(),
                t.name
            ),
        );
        e.details = Some(t.details());
        e
    }
    /// 422 Invalid with causes.
    pub fn invalid(t: Target<'_>, causes: Vec<Cause>) -> ApiError {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        // kube-apiserver qualifies the kind with its group ("Deployment.apps").
        let kind = if t.group.is_empty() {
            t.kind.to_string()
        } else {
            format!("{}.{}", t.kind, t.group)
        };
        let msg = if list.len() == 1 {
            format!("{kind} \"{}\" is invalid: {}", t.name, list[0])
        } else {
            format!("{kind} \"{}\" is invalid: [{}]", t.name, list.join(", "))
        };
        let mut e = ApiError::new(422, "Invalid", msg);
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        e.details =
            Some(json!({"name": t.name, "group": t.group, "kind": t.kind, "causes": causes}));
        e
    }
    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(msg: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", msg)
    }
    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
        )
    }
    /// 415 for a PATCH whose content type is not a patch type the resource takes, listing the
    /// ones it takes as kube-apiserver does (custom resources have no strategic merge patch).
    pub fn unsupported_patch_type(custom: bool) -> ApiError {
        let accepted = if custom {
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        } else {
            "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
        };
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {accepted}"
            ),
        )
    }
    /// 422 for a JSON patch whose operations fail on the object: kube-apiserver answers with
    /// its generic Invalid status, no causes (the operation's error is not passed on).
    pub fn patch_not_applicable() -> ApiError {
        let mut e = ApiError::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        );
        e.details = Some(serde_json::json!({}));
        e
    }
    /// 410 Gone.
    pub fn gone(msg: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", msg)
    }
    /// 504 Timeout for a read that asks for a resourceVersion the store has not reached (within
    /// the wait), in kube-apiserver's words; `retry_after` 0 leaves the hint out.
    pub fn too_large_resource_version(want: i64, current: i64, retry_after: u32) -> ApiError {
        let mut e = ApiError::new(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {want}, current: {current}"),
        );
        let mut details = json!({"causes": [{"reason": "ResourceVersionTooLarge",
            "message": "Too large resource version"}]});
        if retry_after > 0 {
            details["retryAfterSeconds"] = json!(retry_after);
        }
        e.details = Some(details);
        e
    }
    /// 401 Unauthorized.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }
    /// 500 InternalError.
    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", msg)
    }
    /// 403 Forbidden (e.g. creating in a terminating namespace).
    pub fn forbidden(msg: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", msg)
    }

    /// Maps a store error for object `t`.
    pub fn from_store(e: StoreError, t: Target<'_>) -> ApiError {
        match e {
            StoreError::AlreadyExists(_) => ApiError::already_exists(t),
            StoreError::NotFound(_) => ApiError::not_found(t),
            StoreError::Conflict { .. } => ApiError::conflict(
                t,
                "the object has been modified; please apply your changes to the latest version and try again",
            ),
            StoreError::Gone {
                requested,
                compacted,
            } => ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            other => ApiError::internal(other.to_string()),
        }
    }

    /// The Status object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

/// The body of [`ApiError::not_served`].
const NOT_SERVED: &str = "404 page not found";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.code == 404 && self.details.is_none() && self.message == NOT_SERVED {
            return (
                code,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                format!("{NOT_SERVED}\n"),
            )
                .into_response();
        }
        (
            code,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.to_status().to_string(),
        )
            .into_response()
    }
}
