//! Kyverno-compatible `validate` policies: `ClusterPolicy` and `Policy` (`kyverno.io/v1`,
//! `v2beta1`) evaluated with Kyverno's semantics, for the API server's admission and the CLI.
//! Pure: no I/O, no clock, no cluster lookups.
//!
//! What a rule may use: `pattern`/`anyPattern` with wildcards, value operators (`>`, `<=`,
//! `!`, `|`, `&`, ranges) and anchors (`(k)`, `=(k)`, `^(k)`, `X(k)`, `<(k)`); `deny` with
//! `any`/`all` conditions and Kyverno's operators; `foreach` (nested, `elementScope`);
//! `preconditions`; `context` entries of type `variable`; `{{ }}` JMESPath variables with
//! Kyverno's custom functions; `match`/`exclude`; autogen for Pod controllers. Anything else
//! (mutate, generate, verifyImages, CEL, podSecurity, API calls) is refused when the policy is
//! loaded, as a [`PolicyError`], never silently ignored.
//!
//! Every evaluation is bounded: pattern depth ([`validate::MAX_PATTERN_DEPTH`]), JMESPath
//! expression size, nesting and steps ([`jmespath`]), foreach length and work
//! ([`engine::MAX_FOREACH_ELEMENTS`], [`engine::MAX_FOREACH_WORK`]), regular expression size,
//! and wildcard matching is linear, so a hostile policy or object cannot hang or crash it.
//!
//! ```
//! use ferroflux_policy::{PolicySet, Request, RuleStatus};
//! use serde_json::json;
//!
//! let policy = json!({
//!     "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
//!     "metadata": {"name": "disallow-latest"},
//!     "spec": {"validationFailureAction": "Enforce", "rules": [{
//!         "name": "no-latest",
//!         "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
//!         "validate": {"message": "no latest tags",
//!                      "pattern": {"spec": {"containers": [{"image": "!*:latest"}]}}}}]}});
//! let (set, errors) = PolicySet::from_objects(&[policy]);
//! assert!(errors.is_empty());
//! let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "prod"},
//!                  "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}});
//! let admission = set.admit(&Request::create(pod));
//! assert!(!admission.allowed);
//! assert_eq!(admission.results[0].status, RuleStatus::Fail);
//! assert_eq!(
//!     admission.results[0].message,
//!     "validation error: no latest tags. rule no-latest failed at path /spec/containers/0/image/"
//! );
//! ```

use std::collections::BTreeMap;

use serde_json::Value;

mod admission;
mod anchor;
mod autogen;
mod conditions;
mod context;
pub mod engine;
mod gofmt;
mod images;
pub mod jmespath;
mod matching;
mod pattern;
mod policy;
mod quantity;
mod references;
pub mod validate;
mod variables;
mod wildcard;

pub use admission::Admission;
pub use autogen::POD_CONTROLLERS;

/// The admission operation of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operation {
    /// `CREATE`.
    #[default]
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE`: the object is gone, `old_object` holds it.
    Delete,
    /// `CONNECT`.
    Connect,
}

impl Operation {
    /// The operation as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    /// Parses `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn parse(text: &str) -> Option<Operation> {
        Some(match text {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => return None,
        })
    }
}

/// The requesting user (`request.userInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// `system:serviceaccount:<ns>:<name>` for a service account.
    pub username: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// One admission request (or one CLI evaluation).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// What is being done.
    pub operation: Operation,
    /// The new object; `Null` on DELETE.
    pub object: Value,
    /// The previous object on UPDATE and DELETE; `Null` otherwise.
    pub old_object: Value,
    /// Who asks; empty means unknown, and then `subjects`/`roles`/`clusterRoles` in `match`
    /// are ignored, as the Kyverno CLI does.
    pub user_info: UserInfo,
    /// Roles bound to the user in the object's namespace (`namespace/name`).
    pub roles: Vec<String>,
    /// Cluster roles bound to the user.
    pub cluster_roles: Vec<String>,
    /// Labels of the object's namespace, for `namespaceSelector`; `None` when unknown.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// Variable values that override the context, keyed by variable path
    /// (`request.object.metadata.annotations."a/b"`), as the CLI's `values` do.
    pub variables: BTreeMap<String, Value>,
}

impl Request {
    /// What the Kyverno CLI evaluates for a resource of a test: the operation from the
    /// `request.operation` value (CREATE by default), the resource as `object` (as
    /// `old_object` on DELETE), the values as variable overrides.
    pub fn offline(
        resource: &Value,
        variables: BTreeMap<String, Value>,
        namespace_labels: BTreeMap<String, String>,
    ) -> Request {
        let operation = variables
            .get("request.operation")
            .and_then(Value::as_str)
            .and_then(Operation::parse)
            .unwrap_or_default();
        let (object, old_object) = match operation {
            Operation::Delete => (Value::Null, resource.clone()),
            _ => (resource.clone(), Value::Null),
        };
        Request {
            operation,
            object,
            old_object,
            namespace_labels: Some(namespace_labels),
            variables,
            ..Request::default()
        }
    }

    /// A CREATE of `object` with no user information.
    pub fn create(object: Value) -> Request {
        Request {
            object,
            ..Request::default()
        }
    }
}

/// The result of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    /// The resource satisfies the rule.
    Pass,
    /// The resource violates the rule.
    Fail,
    /// A violation of a policy annotated `policies.kyverno.io/scored: "false"`.
    Warn,
    /// The rule does not apply (a precondition or an anchor says so).
    Skip,
    /// The rule could not be evaluated (a JMESPath error, a bad variable).
    Error,
}

impl RuleStatus {
    /// Kyverno's word: `pass`, `fail`, `warn`, `skip`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Pass => "pass",
            RuleStatus::Fail => "fail",
            RuleStatus::Warn => "warn",
            RuleStatus::Skip => "skip",
            RuleStatus::Error => "error",
        }
    }
}

/// What one rule said about one request. Rules that do not select the resource give none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResponse {
    /// The policy's `metadata.name`.
    pub policy: String,
    /// The namespace of a `Policy`; empty for a `ClusterPolicy`.
    pub namespace: String,
    /// The rule's name (`autogen-...` for generated rules).
    pub rule: String,
    /// The result.
    pub status: RuleStatus,
    /// Kyverno's message.
    pub message: String,
    /// The rule's failure action is `Enforce` (else `Audit`).
    pub enforce: bool,
}

/// A policy (or one of its rules) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy {policy}{}: {message}", rule.as_ref().map(|r| format!(" rule {r}")).unwrap_or_default())]
pub struct PolicyError {
    /// The policy's name (empty when it has none).
    pub policy: String,
    /// The rule left out, when the problem is one rule's.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A set of loaded policies.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<policy::Policy>,
}

impl PolicySet {
    /// Loads every `ClusterPolicy`/`Policy` of `objects`. Objects that are not usable policies
    /// and rules this engine cannot evaluate are reported, the rest is kept.
    pub fn from_objects(objects: &[Value]) -> (PolicySet, Vec<PolicyError>) {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        for object in objects {
            match policy::load(object) {
                Ok((policy, problems)) => {
                    errors.extend(problems);
                    set.policies.push(policy);
                }
                Err(err) => errors.push(err),
            }
        }
        (set, errors)
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether no policy is loaded.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Every selected rule's response, policy by policy in load order.
    pub fn evaluate(&self, request: &Request) -> Vec<RuleResponse> {
        self.policies
            .iter()
            .flat_map(|p| {
                p.rules
                    .iter()
                    .filter_map(|rule| engine::evaluate_rule(p, rule, request))
            })
            .collect()
    }

    /// The admission verdict: refused when an enforced rule fails (or errors, unless its
    /// policy's `failurePolicy` is `Ignore`), with Kyverno's block message and warnings.
    pub fn admit(&self, request: &Request) -> Admission {
        admission::admit(self, request)
    }
}
