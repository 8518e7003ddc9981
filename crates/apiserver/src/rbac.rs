//! RBAC decisions, as kube-apiserver's RBAC authorizer makes them: pure functions over the
//! Roles, ClusterRoles and bindings of a store snapshot.
//!
//! Expected flow: build a [`Policy`] from the four kinds' objects (aggregated ClusterRoles are
//! resolved on the way), then ask [`Policy::authorize`] for each request, and
//! [`Policy::confirm_no_escalation`] before storing a Role or a binding.
//!
//! Guarantees: a `system:masters` member is always allowed; a binding whose role is missing
//! grants nothing and is reported in the denial's reason, as `RBAC: ... not found`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a role reference cannot be resolved or a grant is refused, in kube-apiserver's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RbacError {
    /// The referenced ClusterRole does not exist.
    #[error("clusterrole.rbac.authorization.k8s.io {0:?} not found")]
    ClusterRoleNotFound(String),
    /// The referenced Role does not exist in the namespace.
    #[error("role.rbac.authorization.k8s.io {0:?} not found")]
    RoleNotFound(String),
    /// A role reference of another kind than Role or ClusterRole.
    #[error("unsupported role reference kind: {0:?}")]
    UnsupportedKind(String),
    /// The user would grant permissions it does not hold: the message lists them (and any
    /// role references that could not be resolved).
    #[error("{0}")]
    Escalation(String),
}

/// The group whose members bypass RBAC.
pub const MASTERS: &str = "system:masters";
/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group kube-apiserver gives anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The API group of RBAC objects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole (`rbac/v1 PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRule {
    /// Verbs, or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,
    /// API groups (`""` is core), or `*`.
    #[serde(default, rename = "apiGroups", skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource` or `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names; empty means all.
    #[serde(
        default,
        rename = "resourceNames",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_names: Vec<String>,
    /// Non-resource paths, a trailing `*` matching a prefix.
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl PolicyRule {
    /// A resource rule.
    pub fn resource(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: strs(verbs),
            api_groups: strs(groups),
            resources: strs(resources),
            ..PolicyRule::default()
        }
    }

    /// A non-resource rule.
    pub fn non_resource(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: strs(verbs),
            non_resource_urls: strs(urls),
            ..PolicyRule::default()
        }
    }

    /// The same rule limited to `names`.
    pub fn named(mut self, names: &[&str]) -> PolicyRule {
        self.resource_names = strs(names);
        self
    }

    /// kube-apiserver's compact form used in escalation messages, e.g.
    /// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["delete"]}`.
    pub fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has_or_star(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        if !has_or_star(&self.api_groups, &a.api_group) {
            return false;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|s| s == a.subresource))
        });
        resource_ok && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }
}

fn has_or_star(set: &[String], v: &str) -> bool {
    set.iter().any(|s| s == "*" || s == v)
}

/// An authenticated identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:team-a:team-a`.
    pub name: String,
    /// UID, if known.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (`Impersonate-Extra-*`).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user in `groups`.
    pub fn new(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.to_string(),
            groups: strs(groups),
            ..UserInfo::default()
        }
    }

    /// `system:serviceaccount:<ns>:<name>` with the ServiceAccount groups.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: service_account_user(namespace, name),
            groups: service_account_groups(namespace),
            ..UserInfo::default()
        }
    }
}

/// The user name of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups kube-apiserver gives a ServiceAccount.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        AUTHENTICATED.to_string(),
    ]
}

/// `(namespace, name)` of a ServiceAccount user name.
pub fn parse_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a request asks to do.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// Verb: `get`, `list`, `watch`, `create`, ..., `impersonate`; for paths the lower-case
    /// HTTP method.
    pub verb: String,
    /// A resource request (else a non-resource path).
    pub resource_request: bool,
    /// Namespace (empty: cluster scope).
    pub namespace: String,
    /// API group.
    pub api_group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name (empty for collections and creates).
    pub name: String,
    /// Request path (non-resource requests).
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(
        user: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user: user.clone(),
            verb: verb.to_string(),
            resource_request: true,
            namespace: namespace.to_string(),
            api_group: group.to_string(),
            resource: resource.to_string(),
            subresource: sub.to_string(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    /// A non-resource request.
    pub fn path(user: &UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: verb.to_string(),
            path: path.to_string(),
            ..Attributes::default()
        }
    }
}

/// kube-apiserver's 403 message for a denied request, e.g. `deployments.apps is forbidden:
/// User "u" cannot create resource "deployments" in API group "apps" in the namespace "x"`.
/// `reason` (from the authorizer) is appended after `: ` when not empty.
pub fn forbidden_message(a: &Attributes, reason: &str) -> String {
    let why = if !a.resource_request {
        format!("User {:?} cannot {} path {:?}", a.user.name, a.verb, a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", a.namespace)
        };
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
            a.user.name, a.verb, resource, a.api_group
        )
    };
    let why = if reason.is_empty() {
        why
    } else {
        format!("{why}: {reason}")
    };
    forbidden_prefix(a, &why)
}

/// `<resource>[.<group>] ["<name>"] is forbidden: <why>` (or `forbidden: <why>` for paths).
pub fn forbidden_prefix(a: &Attributes, why: &str) -> String {
    if !a.resource_request || a.resource.is_empty() {
        return format!("forbidden: {why}");
    }
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    if a.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {:?} is forbidden: {why}", a.name)
    }
}

/// A subject of a binding.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (ServiceAccount).
    #[serde(default)]
    pub namespace: String,
}

impl Subject {
    fn matches(&self, user: &UserInfo, binding_ns: &str) -> bool {
        match self.kind.as_str() {
            "User" => self.name == user.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_ns
                } else {
                    &self.namespace
                };
                parse_service_account(&user.name) == Some((ns, self.name.as_str()))
            }
            _ => false,
        }
    }
}

/// `roleRef` of a binding.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct RoleRef {
    /// `Role` or `ClusterRole`.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone)]
struct Binding {
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_value(v: &Value) -> Binding {
        Binding {
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            role_ref: serde_json::from_value(v["roleRef"].clone()).unwrap_or_default(),
            subjects: serde_json::from_value(v["subjects"].clone()).unwrap_or_default(),
        }
    }
    fn applies_to(&self, user: &UserInfo) -> bool {
        self.subjects
            .iter()
            .any(|s| s.matches(user, &self.namespace))
    }
}

/// An authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed.
    pub allowed: bool,
    /// Why not (kube-apiserver's `RBAC: ...` resolution errors), or empty.
    pub reason: String,
}

fn rules_of(v: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(v["rules"].clone()).unwrap_or_default()
}

/// Whether `labels` match a structured label selector (matchLabels, matchExpressions).
pub fn labels_match(selector: &Value, labels: &Value) -> bool {
    if let Some(m) = selector["matchLabels"].as_object() {
        for (k, want) in m {
            if labels[k] != *want {
                return false;
            }
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = labels[key].as_str();
        let ok = match e["operator"].as_str().unwrap_or("") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The rules of every ClusterRole, aggregated ones filled from the ClusterRoles their
/// `aggregationRule.clusterRoleSelectors` select (transitively, by name order, without
/// duplicates), as the aggregation controller writes them.
pub fn aggregate(cluster_roles: &[Value]) -> BTreeMap<String, Vec<PolicyRule>> {
    let by_name: BTreeMap<String, &Value> = cluster_roles
        .iter()
        .filter_map(|r| Some((r["metadata"]["name"].as_str()?.to_string(), r)))
        .collect();
    let mut out = BTreeMap::new();
    for name in by_name.keys() {
        let mut seen = BTreeSet::new();
        let rules = effective(name, &by_name, &mut seen);
        out.insert(name.clone(), rules);
    }
    out
}

fn effective(
    name: &str,
    by_name: &BTreeMap<String, &Value>,
    seen: &mut BTreeSet<String>,
) -> Vec<PolicyRule> {
    let Some(role) = by_name.get(name) else {
        return Vec::new();
    };
    if !seen.insert(name.to_string()) {
        return Vec::new();
    }
    let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() else {
        return rules_of(role);
    };
    let mut rules: Vec<PolicyRule> = Vec::new();
    for (other, v) in by_name {
        if other == name {
            continue;
        }
        let labels = &v["metadata"]["labels"];
        if selectors.iter().any(|s| labels_match(s, labels)) {
            for r in effective(other, by_name, seen) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    rules
}

/// A snapshot of the RBAC objects, indexed for decisions.
#[derive(Debug, Default)]
pub struct Policy {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<Binding>,
    role_bindings: HashMap<String, Vec<Binding>>,
}

impl Policy {
    /// Builds the snapshot from the objects (as stored JSON).
    pub fn new(
        roles: &[Value],
        cluster_roles: &[Value],
        role_bindings: &[Value],
        cluster_role_bindings: &[Value],
    ) -> Policy {
        let mut p = Policy {
            cluster_roles: aggregate(cluster_roles).into_iter().collect(),
            ..Policy::default()
        };
        for r in roles {
            let ns = r["metadata"]["namespace"].as_str().unwrap_or("");
            let name = r["metadata"]["name"].as_str().unwrap_or("");
            p.roles
                .insert((ns.to_string(), name.to_string()), rules_of(r));
        }
        for b in role_bindings {
            let b = Binding::from_value(b);
            p.role_bindings
                .entry(b.namespace.clone())
                .or_default()
                .push(b);
        }
        p.cluster_bindings = cluster_role_bindings
            .iter()
            .map(Binding::from_value)
            .collect();
        p
    }

    /// The rules a role reference grants in `namespace` (a `Role` only there).
    ///
    /// Errors: the role does not exist, in kube-apiserver's words.
    pub fn role_ref_rules(&self, r: &RoleRef, namespace: &str) -> Result<&[PolicyRule], RbacError> {
        match r.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&r.name)
                .map(Vec::as_slice)
                .ok_or_else(|| RbacError::ClusterRoleNotFound(r.name.clone())),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), r.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| RbacError::RoleNotFound(r.name.clone())),
            other => Err(RbacError::UnsupportedKind(other.to_string())),
        }
    }

    /// Calls `visit` with each rule granted to `user` in `namespace` (cluster bindings first,
    /// then the namespace's); stops when it returns true. Returns resolution errors.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&PolicyRule) -> bool,
    ) -> (bool, Vec<String>) {
        let mut errors = Vec::new();
        let ns_bindings = if namespace.is_empty() {
            None
        } else {
            self.role_bindings.get(namespace)
        };
        let all = self
            .cluster_bindings
            .iter()
            .chain(ns_bindings.into_iter().flatten());
        for b in all {
            if !b.applies_to(user) {
                continue;
            }
            match self.role_ref_rules(&b.role_ref, &b.namespace) {
                Ok(rules) => {
                    if rules.iter().any(&mut visit) {
                        return (true, errors);
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (false, errors)
    }

    /// Decides a request. `system:masters` members are always allowed.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        if a.user.groups.iter().any(|g| g == MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let (allowed, errors) = self.visit(&a.user, &a.namespace, |r| r.allows(a));
        let reason = if allowed || errors.is_empty() {
            String::new()
        } else {
            format!("RBAC: {}", errors.join(", "))
        };
        Decision { allowed, reason }
    }

    /// Every rule granted to `user` in `namespace`, with resolution errors.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut out = Vec::new();
        let (_, errors) = self.visit(user, namespace, |r| {
            out.push(r.clone());
            false
        });
        (out, errors)
    }

    /// Escalation prevention: `user` may grant `rules` in `namespace` only if it holds every
    /// one of them (`system:masters` always does).
    ///
    /// Errors: kube-apiserver's message listing the permissions not held.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), RbacError> {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let (owner, errors) = self.rules_for(user, namespace);
        let missing = uncovered(&owner, rules);
        if missing.is_empty() {
            return Ok(());
        }
        let described: BTreeSet<String> = compact(missing)
            .iter()
            .map(PolicyRule::compact_string)
            .collect();
        let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
        let mut msg = format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            described.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(RbacError::Escalation(msg))
    }
}

/// Splits a rule into one rule per (group, resource, name, verb), or (url, verb).
pub fn breakdown(r: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for g in &r.api_groups {
        for res in &r.resources {
            for v in &r.verbs {
                if r.resource_names.is_empty() {
                    out.push(PolicyRule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        resources: vec![res.clone()],
                        ..PolicyRule::default()
                    });
                }
                for n in &r.resource_names {
                    out.push(PolicyRule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        resources: vec![res.clone()],
                        resource_names: vec![n.clone()],
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    for u in &r.non_resource_urls {
        for v in &r.verbs {
            out.push(PolicyRule {
                verbs: vec![v.clone()],
                non_resource_urls: vec![u.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has_all(set: &[String], want: &[String]) -> bool {
    want.iter().all(|w| set.contains(w))
}

fn covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let star = |v: &[String]| v.iter().any(|s| s == "*");
    let verbs = star(&owner.verbs) || has_all(&owner.verbs, &sub.verbs);
    let groups = star(&owner.api_groups) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = star(&owner.resources)
        || has_all(&owner.resources, &sub.resources)
        || sub.resources.iter().all(|p| {
            owner.resources.contains(p)
                || p.split_once('/')
                    .is_some_and(|(_, s)| owner.resources.contains(&format!("*/{s}")))
        });
    let urls = sub.non_resource_urls.iter().all(|p| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| o == p || o.strip_suffix('*').is_some_and(|pre| p.starts_with(pre)))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// The broken-down parts of `servant` that no rule of `owner` covers.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing = Vec::new();
    for r in servant {
        for part in breakdown(r) {
            if !owner.iter().any(|o| covers(o, &part)) && !missing.contains(&part) {
                missing.push(part);
            }
        }
    }
    missing
}

/// Merges rules with one group, one resource and at most one name, joining their verbs.
pub fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for r in rules {
        let is_simple = r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.resource_names.len() <= 1;
        if !is_simple {
            out.push(r);
            continue;
        }
        match simple.iter_mut().find(|s| {
            s.api_groups == r.api_groups
                && s.resources == r.resources
                && s.resource_names == r.resource_names
        }) {
            Some(s) => s.verbs.extend(r.verbs),
            None => simple.push(r),
        }
    }
    out.extend(simple);
    out
}

/// The default ClusterRoles created on first start: `cluster-admin`, the aggregated `admin`,
/// `edit`, `view` with their `system:aggregate-to-*` parts, and the discovery roles every
/// authenticated user is bound to.
pub fn default_cluster_roles() -> Vec<Value> {
    use serde_json::json;
    let rule = |verbs: &[&str], groups: &[&str], res: &[&str]| {
        serde_json::to_value(PolicyRule::resource(verbs, groups, res)).unwrap_or_default()
    };
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];
    let view_rules = vec![
        rule(
            &read,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
            ],
        ),
        rule(
            &read,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            &read,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            &read,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            &read,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
        rule(
            &read,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(&read, &["discovery.k8s.io"], &["endpointslices"]),
    ];
    let edit_rules = vec![
        rule(
            &write,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(
            &write,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(&read, &[""], &["secrets"]),
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            &write,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(&write, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(&write, &["batch"], &["cronjobs", "jobs"]),
        rule(
            &write,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(&write, &["policy"], &["poddisruptionbudgets"]),
        rule(&write, &["coordination.k8s.io"], &["leases"]),
    ];
    let admin_rules = vec![
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        rule(
            &crate::registry::VERBS,
            &[RBAC_GROUP],
            &["rolebindings", "roles"],
        ),
    ];
    let agg = |name: &str, to: &str, rules: Vec<Value>| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/bootstrapping": "rbac-defaults",
                format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}},
            "rules": rules})
    };
    let aggregated = |name: &str, selects: &str, labels: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {
                format!("rbac.authorization.k8s.io/aggregate-to-{selects}"): "true"}}]},
            "rules": []})
    };
    let plain = |name: &str, rules: Vec<Value>| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": rules})
    };
    let defaults = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    vec![
        plain(
            "cluster-admin",
            vec![
                rule(&["*"], &["*"], &["*"]),
                serde_json::to_value(PolicyRule::non_resource(&["*"], &["*"])).unwrap_or_default(),
            ],
        ),
        aggregated("admin", "admin", defaults.clone()),
        aggregated(
            "edit",
            "edit",
            json!({"kubernetes.io/bootstrapping": "rbac-defaults",
                "rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
        ),
        aggregated(
            "view",
            "view",
            json!({"kubernetes.io/bootstrapping": "rbac-defaults",
                "rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
        ),
        agg("system:aggregate-to-admin", "admin", admin_rules),
        agg("system:aggregate-to-edit", "edit", edit_rules),
        agg("system:aggregate-to-view", "view", view_rules),
        plain(
            "system:discovery",
            vec![
                serde_json::to_value(PolicyRule::non_resource(
                    &["get"],
                    &[
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                ))
                .unwrap_or_default(),
            ],
        ),
        // Separate from system:discovery (and bound to anonymous users too), as in kube, so
        // `kubectl auth can-i --list` shows these paths once per role.
        plain(
            "system:public-info-viewer",
            vec![
                serde_json::to_value(PolicyRule::non_resource(
                    &["get"],
                    &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                ))
                .unwrap_or_default(),
            ],
        ),
        plain(
            "system:basic-user",
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
    ]
}

/// The default ClusterRoleBindings: `cluster-admin` to `system:masters`, the discovery roles
/// to `system:authenticated` (the public-info paths to anonymous users as well).
pub fn default_cluster_role_bindings() -> Vec<Value> {
    use serde_json::json;
    let bind = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}]})
    };
    let mut public = bind(
        "system:public-info-viewer",
        "system:public-info-viewer",
        AUTHENTICATED,
    );
    public["subjects"]
        .as_array_mut()
        .expect("bind writes a subject list")
        .push(json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": UNAUTHENTICATED}));
    vec![
        bind("cluster-admin", "cluster-admin", MASTERS),
        bind("system:discovery", "system:discovery", AUTHENTICATED),
        bind("system:basic-user", "system:basic-user", AUTHENTICATED),
        public,
    ]
}
