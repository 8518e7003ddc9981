//! Kyverno-style admission on both servers: the same policies decide a write on the embedded
//! API server of `ferroflux up` and on a real kube-apiserver.
//!
//! - [`PolicyCache`] watches `ClusterPolicy`/`Policy` (kyverno.io) and Namespaces through any
//!   API server, keeps a loaded [`ferroflux_policy::PolicySet`] and writes each policy's
//!   `Ready` condition as Kyverno does.
//! - [`decide`] turns one `AdmissionReview` request into the engine's request and its verdict
//!   into Kyverno's answer (block message, audit warnings). Both paths go through it: the
//!   embedded server's in-process [`Validators`](ferroflux_apiserver::admission::Validators)
//!   (via [`validators`]) and the HTTPS [`webhook`] that a real cluster calls.
//!
//! ```text
//! up:               API server --(in-process Validator)--> decide --> PolicyCache
//! real cluster:  kube-apiserver --(ValidatingWebhook, TLS)--> webhook --> decide --> PolicyCache
//! ```

pub mod cache;
pub mod reports;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use ferroflux_apiserver::admission::{Request as ServerRequest, Validator, Validators, Verdict};
use ferroflux_policy::{Operation, PolicySet, Request, UserInfo};

pub use cache::PolicyCache;

/// Kyverno's resource webhook, the name kube-apiserver puts in front of a denial.
pub const RESOURCE_WEBHOOK: &str = "validate.kyverno.svc-fail";

/// Kyverno's policy webhook: refuses a policy the engine cannot evaluate.
pub const POLICY_WEBHOOK: &str = "validate-policy.kyverno.svc";

/// What admission answers for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The write may proceed.
    pub allowed: bool,
    /// Why not (Kyverno's block message), empty when allowed.
    pub message: String,
    /// Warnings for the client (audited violations).
    pub warnings: Vec<String>,
}

impl Decision {
    fn allow(warnings: Vec<String>) -> Decision {
        Decision {
            allowed: true,
            message: String::new(),
            warnings,
        }
    }

    fn deny(message: String) -> Decision {
        Decision {
            allowed: false,
            message,
            warnings: Vec::new(),
        }
    }
}

/// Which of Kyverno's two webhooks is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Resources against the loaded policies ([`RESOURCE_WEBHOOK`]).
    Resources,
    /// Policies themselves: can the engine evaluate them ([`POLICY_WEBHOOK`])?
    Policies,
}

impl Hook {
    /// The webhook's name.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Resources => RESOURCE_WEBHOOK,
            Hook::Policies => POLICY_WEBHOOK,
        }
    }
}

/// Whether an object is a Kyverno policy.
fn is_policy(request: &Value) -> bool {
    request["kind"]["group"] == "kyverno.io"
        && matches!(
            request["kind"]["kind"].as_str(),
            Some("ClusterPolicy" | "Policy")
        )
}

/// Decides one `AdmissionReview.request` (admission.k8s.io/v1) with the cache's policies.
///
/// Until the cache has listed policies and namespaces once, every resource write is refused:
/// a webhook that answers before it knows the policies would let through what they forbid.
pub fn decide(cache: &PolicyCache, hook: Hook, review: &Value) -> Decision {
    match hook {
        Hook::Policies => check_policy(review),
        Hook::Resources => {
            if is_policy(review) || review["operation"] == "CONNECT" {
                return Decision::allow(Vec::new());
            }
            let Some(policies) = cache.policies() else {
                return Decision::deny(
                    "the policy cache has not listed the policies yet; retry".into(),
                );
            };
            let request = engine_request(review, cache);
            let admission = policies.admit(&request);
            if admission.allowed {
                // Audit results land in the resource's report through the rescan this wakes.
                cache.admitted(review["kind"]["kind"].as_str().unwrap_or(""));
                Decision::allow(admission.warnings)
            } else {
                Decision::deny(admission.message)
            }
        }
    }
}

/// Refuses a ClusterPolicy/Policy the engine would drop (mutate rules, unknown operators...),
/// so that no policy is stored that silently enforces less than it says.
fn check_policy(review: &Value) -> Decision {
    if !is_policy(review) || review["operation"] == "DELETE" {
        return Decision::allow(Vec::new());
    }
    let (_, errors) = PolicySet::from_objects(std::slice::from_ref(&review["object"]));
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    problems.extend(unsent_operations(&review["object"]));
    if problems.is_empty() {
        return Decision::allow(Vec::new());
    }
    Decision::deny(problems.join("; "))
}

/// Rules that select DELETE or CONNECT: ferroflux's admission (both servers) receives only
/// creates and updates, so such a rule would silently never run for them.
fn unsent_operations(policy: &Value) -> Vec<String> {
    fn selects(filter: &Value) -> bool {
        match filter {
            Value::Object(map) => map.iter().any(|(key, value)| {
                (key == "operations"
                    && value
                        .as_array()
                        .is_some_and(|ops| ops.iter().any(|op| op == "DELETE" || op == "CONNECT")))
                    || selects(value)
            }),
            Value::Array(items) => items.iter().any(selects),
            _ => false,
        }
    }
    let name = policy["metadata"]["name"].as_str().unwrap_or("");
    policy["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rule| selects(&rule["match"]))
        .map(|rule| {
            format!(
                "policy {name} rule {}: DELETE and CONNECT requests are not sent to admission \
                 by ferroflux; match CREATE and UPDATE only",
                rule["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The engine's request for an AdmissionReview request.
fn engine_request(review: &Value, cache: &PolicyCache) -> Request {
    let operation = review["operation"]
        .as_str()
        .and_then(Operation::parse)
        .unwrap_or_default();
    let object = review["object"].clone();
    let namespace = review["namespace"].as_str().unwrap_or("");
    let namespace_labels = if review["kind"]["kind"] == "Namespace" && review["kind"]["group"] == ""
    {
        Some(labels(&object))
    } else if namespace.is_empty() {
        None
    } else {
        cache.namespace_labels(namespace)
    };
    let user = &review["userInfo"];
    let username = user["username"].as_str().unwrap_or("");
    let groups: Vec<String> = user["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    let (roles, cluster_roles) = cache.roles_of(username, &groups);
    Request {
        operation,
        object,
        old_object: review["oldObject"].clone(),
        user_info: UserInfo {
            username: username.to_string(),
            groups,
        },
        roles,
        cluster_roles,
        namespace_labels,
        ..Request::default()
    }
}

/// `metadata.labels` of an object as a map.
fn labels(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// One of Kyverno's webhooks as an in-process validator of the embedded API server.
struct InProcess {
    cache: Arc<PolicyCache>,
    hook: Hook,
}

impl Validator for InProcess {
    fn name(&self) -> &str {
        self.hook.name()
    }

    fn validate(&self, request: &ServerRequest<'_>) -> Verdict {
        // The same AdmissionReview a webhook would receive, so both servers decide alike.
        let review = ferroflux_apiserver::webhook::review(request, "in-process");
        let decision = decide(&self.cache, self.hook, &review["request"]);
        if decision.allowed {
            Verdict::Allow(decision.warnings)
        } else {
            // Kyverno denies without a code; kube-apiserver makes that a 400 without a reason.
            Verdict::Deny {
                code: 400,
                message: decision.message,
            }
        }
    }
}

/// Kyverno's two webhooks as in-process validators of the embedded API server.
pub fn validators(cache: &Arc<PolicyCache>) -> Validators {
    Validators(
        [Hook::Policies, Hook::Resources]
            .into_iter()
            .map(|hook| {
                Arc::new(InProcess {
                    cache: cache.clone(),
                    hook,
                }) as Arc<dyn Validator>
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The seed's source allowlist (the fixture the integration tests use too).
    fn oci_policy() -> Value {
        serde_json::from_str(include_str!(
            "../tests/fixtures/restrict-flux-source-urls.json"
        ))
        .expect("fixture is JSON")
    }

    fn review(url: &str) -> Value {
        json!({"operation": "CREATE", "namespace": "team-a",
            "kind": {"group": "source.toolkit.fluxcd.io", "version": "v1", "kind": "OCIRepository"},
            "userInfo": {"username": "system:serviceaccount:team-a:team-a"},
            "object": {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                "metadata": {"name": "x", "namespace": "team-a"},
                "spec": {"url": url, "interval": "1m"}}})
    }

    #[test]
    fn a_url_outside_the_allowlist_is_blocked_with_kyvernos_message() {
        let cache = PolicyCache::default();
        cache.load_for_test(&[oci_policy()], &[("team-a", &[])]);
        let allowed = decide(
            &cache,
            Hook::Resources,
            &review("oci://ghcr.io/acme-platform/manifests/app"),
        );
        assert!(allowed.allowed, "{allowed:?}");
        let blocked = decide(
            &cache,
            Hook::Resources,
            &review("oci://evil.example.com/app"),
        );
        assert!(!blocked.allowed);
        // Kyverno's block message, to the trailing space after "policies".
        assert_eq!(
            blocked.message,
            "\n\nresource OCIRepository/team-a/x was blocked due to the following policies \n\n\
             restrict-flux-source-urls:\n  oci-url-allowlist: 'validation error: OCIRepository url \
             must be under the platform registry. rule oci-url-allowlist failed at path /spec/url/'\n"
        );
    }

    #[test]
    fn nothing_is_admitted_before_the_first_list() {
        let cache = PolicyCache::default();
        let d = decide(&cache, Hook::Resources, &review("oci://anything/x"));
        assert!(!d.allowed);
        assert!(d.message.contains("not listed"), "{}", d.message);
    }

    #[test]
    fn a_policy_the_engine_cannot_evaluate_is_refused() {
        let mut policy = oci_policy();
        policy["spec"]["rules"][0]["mutate"] =
            json!({"patchStrategicMerge": {"metadata": {"labels": {"+(a)": "b"}}}});
        policy["spec"]["rules"][0]
            .as_object_mut()
            .expect("rule")
            .remove("validate");
        let review = json!({"operation": "CREATE",
            "kind": {"group": "kyverno.io", "version": "v1", "kind": "ClusterPolicy"},
            "object": policy});
        let d = decide(&PolicyCache::default(), Hook::Policies, &review);
        assert!(!d.allowed, "{d:?}");
        assert!(
            d.message.contains("restrict-flux-source-urls"),
            "{}",
            d.message
        );
        let fine = json!({"operation": "CREATE",
            "kind": {"group": "kyverno.io", "version": "v1", "kind": "ClusterPolicy"},
            "object": oci_policy()});
        assert!(decide(&PolicyCache::default(), Hook::Policies, &fine).allowed);
        let mut on_delete = oci_policy();
        on_delete["spec"]["rules"][0]["match"]["any"][0]["resources"]["operations"] =
            json!(["CREATE", "DELETE"]);
        let review = json!({"operation": "CREATE",
            "kind": {"group": "kyverno.io", "version": "v1", "kind": "ClusterPolicy"},
            "object": on_delete});
        let d = decide(&PolicyCache::default(), Hook::Policies, &review);
        assert!(!d.allowed);
        assert!(d.message.contains("DELETE and CONNECT"), "{}", d.message);
    }

    #[test]
    fn roles_come_from_the_requesters_bindings() {
        let cache = PolicyCache::default();
        cache.load_bindings_for_test(&[
            json!({"kind": "RoleBinding", "metadata": {"name": "a", "namespace": "team-a"},
                "roleRef": {"kind": "Role", "name": "deployer"},
                "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "team-a"},
                "roleRef": {"kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "Group", "name": "team-a-devs"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "c"},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "alice"}]}),
        ]);
        assert_eq!(
            cache.roles_of("system:serviceaccount:team-a:ci", &[]),
            (vec!["team-a:deployer".to_string()], vec![])
        );
        assert_eq!(
            cache.roles_of("bob", &["team-a-devs".to_string()]),
            (vec![], vec!["admin".to_string()])
        );
        assert_eq!(
            cache.roles_of("alice", &[]),
            (vec![], vec!["cluster-admin".to_string()])
        );
        assert_eq!(cache.roles_of("mallory", &[]), (vec![], vec![]));
    }
}
