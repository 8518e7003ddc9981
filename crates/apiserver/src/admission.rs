//! Validating admission: pluggable validators run on every create and update, after
//! authorization and the server's own checks (NamespaceLifecycle, schema), before the write.
//!
//! Expected flow: a policy engine implements [`Validator`] and is passed in
//! [`crate::Config::validators`]; a denial becomes the request's `Status` (with the
//! validator's code and message) and nothing is stored; warnings go into `Warning` headers.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::rbac::UserInfo;

/// What is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an existing object.
    Update,
}

/// One write, as a validator sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// Create or update.
    pub operation: Operation,
    /// Who writes (`None` for the server's own writes).
    pub user: Option<&'a UserInfo>,
    /// API group.
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Resource (plural).
    pub resource: &'a str,
    /// Subresource (`status`, `scale`) or empty.
    pub subresource: &'a str,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The object as it would be stored.
    pub object: &'a Value,
    /// The stored object, on update.
    pub old_object: Option<&'a Value>,
    /// A dry run (nothing will be stored).
    pub dry_run: bool,
}

/// A validator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admit, with warnings for the client (possibly none).
    Allow(Vec<String>),
    /// Refuse with an HTTP code (usually 400 or 403) and a message.
    Deny {
        /// HTTP code of the Status.
        code: u16,
        /// The message the client sees.
        message: String,
    },
}

/// A validating admission plugin.
pub trait Validator: Send + Sync {
    /// Its name, used in denial messages: `admission webhook "<name>" denied the request: ...`.
    fn name(&self) -> &str;
    /// Decides one write.
    fn validate(&self, request: &Request<'_>) -> Verdict;
}

/// The validators of a server, in order.
#[derive(Clone, Default)]
pub struct Validators(pub Vec<Arc<dyn Validator>>);

impl fmt::Debug for Validators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|v| v.name().to_string()))
            .finish()
    }
}

/// A denial: code, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// HTTP code.
    pub code: u16,
    /// Message.
    pub message: String,
}

impl Validators {
    /// Runs every validator; the first denial wins. Returns the warnings of all.
    ///
    /// Errors: a validator denied, with its message prefixed as kube-apiserver prefixes a
    /// validating webhook's: `admission webhook "<name>" denied the request: <message>`.
    pub fn admit(&self, request: &Request<'_>) -> Result<Vec<String>, Denied> {
        let mut warnings = Vec::new();
        for v in &self.0 {
            match v.validate(request) {
                Verdict::Allow(w) => warnings.extend(w),
                Verdict::Deny { code, message } => {
                    return Err(Denied {
                        code,
                        message: format!(
                            "admission webhook {:?} denied the request: {message}",
                            v.name()
                        ),
                    });
                }
            }
        }
        Ok(warnings)
    }
}

/// A `Warning` header value (RFC 7234 form, code 299, as kube-apiserver sends).
pub fn warning_header(text: &str) -> String {
    let escaped: String = text
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("299 - \"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoLatest;
    impl Validator for NoLatest {
        fn name(&self) -> &str {
            "no-latest"
        }
        fn validate(&self, r: &Request<'_>) -> Verdict {
            if r.object.to_string().contains(":latest") {
                Verdict::Deny {
                    code: 403,
                    message: "images must be pinned".into(),
                }
            } else {
                Verdict::Allow(vec![format!("checked {}", r.name)])
            }
        }
    }

    fn request(obj: &Value) -> Request<'_> {
        Request {
            operation: Operation::Create,
            user: None,
            group: "apps",
            version: "v1",
            kind: "Deployment",
            resource: "deployments",
            subresource: "",
            namespace: "default",
            name: "web",
            object: obj,
            old_object: None,
            dry_run: false,
        }
    }

    #[test]
    fn first_denial_wins_and_warnings_accumulate() {
        let v = Validators(vec![Arc::new(NoLatest), Arc::new(NoLatest)]);
        let ok = json!({"image": "nginx:1.25"});
        assert_eq!(
            v.admit(&request(&ok)),
            Ok(vec!["checked web".to_string(), "checked web".to_string()])
        );
        let bad = json!({"image": "nginx:latest"});
        let d = v.admit(&request(&bad)).expect_err("denied");
        assert_eq!(d.code, 403);
        assert_eq!(
            d.message,
            "admission webhook \"no-latest\" denied the request: images must be pinned"
        );
        assert_eq!(format!("{v:?}"), r#"["no-latest", "no-latest"]"#);
    }

    #[test]
    fn warning_headers_are_quoted() {
        assert_eq!(warning_header(r#"a "b" \c"#), r#"299 - "a \"b\" \\c""#);
    }
}
