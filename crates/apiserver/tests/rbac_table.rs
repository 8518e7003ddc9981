//! RBAC decisions without a server: a table of requests against one policy, the 403 message
//! shapes, aggregation and escalation prevention.

mod common;

use ferroflux_apiserver::rbac::{
    Attributes, Policy, PolicyRule, UserInfo, default_cluster_role_bindings, default_cluster_roles,
    forbidden_message,
};
use serde_json::{Value, json};

fn role(ns: &str, name: &str, rules: Vec<PolicyRule>) -> Value {
    json!({"kind": "Role", "metadata": {"namespace": ns, "name": name}, "rules": rules})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<PolicyRule>) -> Value {
    json!({"kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn binding(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    let mut v = json!({"metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}, "subjects": subjects});
    if !ns.is_empty() {
        v["metadata"]["namespace"] = json!(ns);
    }
    v
}

fn policy() -> Policy {
    let mut cluster_roles = default_cluster_roles();
    cluster_roles.push(cluster_role(
        "crd-reader",
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        vec![PolicyRule::resource(
            &["get", "list"],
            &["example.com"],
            &["widgets"],
        )],
    ));
    cluster_roles.push(cluster_role(
        "scaler",
        json!({}),
        vec![
            PolicyRule::resource(&["get", "update"], &["apps"], &["deployments/scale"]),
            PolicyRule::resource(&["get"], &["*"], &["*/status"]),
            PolicyRule::non_resource(&["get"], &["/metrics", "/logs/*"]),
        ],
    ));
    let roles = vec![
        role(
            "team-a",
            "tenant-app-admin",
            vec![
                PolicyRule::resource(
                    &["*"],
                    &["", "apps"],
                    &["deployments", "services", "configmaps"],
                ),
                PolicyRule::resource(
                    &["get", "list", "create"],
                    &["rbac.authorization.k8s.io"],
                    &["roles", "rolebindings"],
                ),
                PolicyRule::resource(&["get", "update"], &[""], &["secrets"])
                    .named(&["app-secret"]),
            ],
        ),
        role(
            "team-a",
            "binder",
            vec![
                PolicyRule::resource(&["bind"], &["rbac.authorization.k8s.io"], &["clusterroles"])
                    .named(&["view"]),
            ],
        ),
    ];
    let sa = json!([{"kind": "ServiceAccount", "name": "team-a", "namespace": "team-a"}]);
    let role_bindings = vec![
        binding("team-a", "tenant", "Role", "tenant-app-admin", sa.clone()),
        binding(
            "team-b",
            "viewer",
            "ClusterRole",
            "view",
            json!([{"kind": "User", "name": "alice"}]),
        ),
        binding(
            "team-b",
            "editors",
            "ClusterRole",
            "edit",
            json!([{"kind": "Group", "name": "editors"}]),
        ),
        binding(
            "team-c",
            "dangling",
            "Role",
            "missing",
            json!([{"kind": "User", "name": "bob"}]),
        ),
        binding(
            "team-a",
            "sa-default-ns",
            "ClusterRole",
            "view",
            json!([{"kind": "ServiceAccount", "name": "reader"}]),
        ),
    ];
    let mut crbs = default_cluster_role_bindings();
    crbs.push(binding(
        "",
        "scalers",
        "ClusterRole",
        "scaler",
        json!([{"kind": "User", "name": "carol"}]),
    ));
    crbs.push(binding(
        "",
        "admins",
        "ClusterRole",
        "admin",
        json!([{"kind": "User", "name": "dave"}]),
    ));
    Policy::new(&roles, &cluster_roles, &role_bindings, &crbs)
}

fn sa_team_a() -> UserInfo {
    UserInfo::service_account("team-a", "team-a")
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    let mut g: Vec<&str> = groups.to_vec();
    g.push("system:authenticated");
    UserInfo::new(name, &g)
}

#[test]
fn decision_table() {
    let p = policy();
    let sa = sa_team_a();
    let alice = user("alice", &[]);
    let eve = user("eve", &["editors"]);
    let carol = user("carol", &[]);
    let dave = user("dave", &[]);
    let root = UserInfo::new("root", &["system:masters"]);
    let reader = UserInfo::service_account("team-a", "reader");
    let r = Attributes::resource;
    let cases: Vec<(&str, Attributes, bool)> = vec![
        (
            "sa creates deployment in own ns",
            r(&sa, "create", "apps", "deployments", "team-a", ""),
            true,
        ),
        (
            "sa deletes deployment in own ns (verb *)",
            r(&sa, "delete", "apps", "deployments", "team-a", "web"),
            true,
        ),
        (
            "sa creates deployment in other ns",
            r(&sa, "create", "apps", "deployments", "team-b", ""),
            false,
        ),
        (
            "sa core group also listed",
            r(&sa, "list", "", "configmaps", "team-a", ""),
            true,
        ),
        (
            "group list is per rule: services in apps group",
            r(&sa, "get", "apps", "services", "team-a", "x"),
            true,
        ),
        (
            "sa cannot scale (subresource not granted)",
            r(&sa, "update", "apps", "deployments/scale", "team-a", "web"),
            false,
        ),
        (
            "sa resourceNames hit",
            r(&sa, "get", "", "secrets", "team-a", "app-secret"),
            true,
        ),
        (
            "sa resourceNames miss",
            r(&sa, "get", "", "secrets", "team-a", "other"),
            false,
        ),
        (
            "resourceNames never match list",
            r(&sa, "list", "", "secrets", "team-a", ""),
            false,
        ),
        (
            "sa cluster scope denied",
            r(
                &sa,
                "create",
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                "",
                "",
            ),
            false,
        ),
        (
            "sa may create SelfSubjectAccessReview (basic-user)",
            r(
                &sa,
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                "",
            ),
            true,
        ),
        (
            "sa discovery path",
            Attributes::path(&sa, "get", "/apis/apps"),
            true,
        ),
        (
            "sa cannot post discovery",
            Attributes::path(&sa, "post", "/apis"),
            false,
        ),
        (
            "sa metrics path denied",
            Attributes::path(&sa, "get", "/metrics"),
            false,
        ),
        (
            "alice view in team-b",
            r(&alice, "list", "apps", "deployments", "team-b", ""),
            true,
        ),
        (
            "alice view: no secrets",
            r(&alice, "get", "", "secrets", "team-b", "s"),
            false,
        ),
        (
            "alice view: no writes",
            r(&alice, "create", "apps", "deployments", "team-b", ""),
            false,
        ),
        (
            "alice view aggregated CRD reader",
            r(&alice, "list", "example.com", "widgets", "team-b", ""),
            true,
        ),
        (
            "alice view: not in team-a",
            r(&alice, "list", "apps", "deployments", "team-a", ""),
            false,
        ),
        (
            "eve (group editors) edit in team-b",
            r(&eve, "patch", "apps", "deployments", "team-b", "web"),
            true,
        ),
        (
            "eve edit includes view (transitive aggregation)",
            r(&eve, "watch", "apps", "replicasets", "team-b", ""),
            true,
        ),
        (
            "eve edit includes aggregated CRD reader",
            r(&eve, "get", "example.com", "widgets", "team-b", "w"),
            true,
        ),
        (
            "eve edit: no roles",
            r(
                &eve,
                "create",
                "rbac.authorization.k8s.io",
                "roles",
                "team-b",
                "",
            ),
            false,
        ),
        (
            "eve edit: scale subresource",
            r(&eve, "update", "apps", "deployments/scale", "team-b", "web"),
            true,
        ),
        (
            "carol scale via cluster binding in any ns",
            r(
                &carol,
                "update",
                "apps",
                "deployments/scale",
                "team-z",
                "web",
            ),
            true,
        ),
        (
            "carol: not the main resource",
            r(&carol, "update", "apps", "deployments", "team-z", "web"),
            false,
        ),
        (
            "carol */status wildcard",
            r(&carol, "get", "batch", "jobs/status", "team-z", "j"),
            true,
        ),
        (
            "carol */status not a plain get",
            r(&carol, "get", "batch", "jobs", "team-z", "j"),
            false,
        ),
        (
            "carol nonResourceURL exact",
            Attributes::path(&carol, "get", "/metrics"),
            true,
        ),
        (
            "carol nonResourceURL prefix",
            Attributes::path(&carol, "get", "/logs/kube.log"),
            true,
        ),
        (
            "carol nonResourceURL prefix miss",
            Attributes::path(&carol, "get", "/logsx"),
            false,
        ),
        (
            "dave admin everywhere: roles",
            r(
                &dave,
                "create",
                "rbac.authorization.k8s.io",
                "roles",
                "team-q",
                "",
            ),
            true,
        ),
        (
            "dave admin: not cluster-scoped namespaces create",
            r(&dave, "create", "", "namespaces", "", ""),
            false,
        ),
        (
            "root system:masters bypass",
            r(
                &root,
                "create",
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                "",
                "",
            ),
            true,
        ),
        (
            "sa subject without namespace uses binding's",
            r(&reader, "get", "apps", "deployments", "team-a", "x"),
            true,
        ),
        (
            "that sa is not bound elsewhere",
            r(&reader, "get", "apps", "deployments", "team-b", "x"),
            false,
        ),
        (
            "impersonate not granted",
            r(&sa, "impersonate", "", "users", "", "alice"),
            false,
        ),
        (
            "eve (edit) may impersonate SAs in team-b",
            r(&eve, "impersonate", "", "serviceaccounts", "team-b", "x"),
            true,
        ),
    ];
    let mut failed = Vec::new();
    for (name, attrs, want) in &cases {
        let got = p.authorize(attrs).allowed;
        if got != *want {
            failed.push(format!("{name}: want {want}, got {got}"));
        }
    }
    common::assert_case_table(cases.len(), &failed);
}

#[test]
fn forbidden_messages_have_kube_apiserver_shape() {
    let p = policy();
    let sa = sa_team_a();
    let a = Attributes::resource(&sa, "create", "apps", "deployments", "team-b", "");
    let d = p.authorize(&a);
    assert!(!d.allowed);
    assert_eq!(
        forbidden_message(&a, &d.reason),
        r#"deployments.apps is forbidden: User "system:serviceaccount:team-a:team-a" cannot create resource "deployments" in API group "apps" in the namespace "team-b""#
    );
    let a = Attributes::resource(&sa, "get", "", "secrets", "team-a", "other");
    assert_eq!(
        forbidden_message(&a, ""),
        r#"secrets "other" is forbidden: User "system:serviceaccount:team-a:team-a" cannot get resource "secrets" in API group "" in the namespace "team-a""#
    );
    let a = Attributes::resource(
        &sa,
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "",
        "",
    );
    assert_eq!(
        forbidden_message(&a, ""),
        r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "system:serviceaccount:team-a:team-a" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#
    );
    let a = Attributes::resource(&sa, "update", "apps", "deployments/scale", "team-a", "web");
    assert_eq!(
        forbidden_message(&a, ""),
        r#"deployments.apps "web" is forbidden: User "system:serviceaccount:team-a:team-a" cannot update resource "deployments/scale" in API group "apps" in the namespace "team-a""#
    );
    let a = Attributes::path(&sa, "get", "/metrics");
    assert_eq!(
        forbidden_message(&a, ""),
        r#"forbidden: User "system:serviceaccount:team-a:team-a" cannot get path "/metrics""#
    );
}

#[test]
fn a_binding_to_a_missing_role_is_named_in_the_reason() {
    let p = policy();
    let bob = user("bob", &[]);
    let a = Attributes::resource(&bob, "get", "", "configmaps", "team-c", "x");
    let d = p.authorize(&a);
    assert!(!d.allowed);
    assert_eq!(
        d.reason,
        r#"RBAC: role.rbac.authorization.k8s.io "missing" not found"#
    );
    assert!(forbidden_message(&a, &d.reason).ends_with(
        r#"in the namespace "team-c": RBAC: role.rbac.authorization.k8s.io "missing" not found"#
    ));
}

#[test]
fn escalation_needs_every_permission_granted() {
    let p = policy();
    let sa = sa_team_a();
    // Holding deployments/* in apps: a role with a subset is fine.
    assert!(
        p.confirm_no_escalation(
            &sa,
            "team-a",
            &[PolicyRule::resource(
                &["get", "delete"],
                &["apps"],
                &["deployments"]
            )]
        )
        .is_ok()
    );
    // Not in another namespace.
    assert!(
        p.confirm_no_escalation(
            &sa,
            "team-b",
            &[PolicyRule::resource(&["get"], &["apps"], &["deployments"])]
        )
        .is_err()
    );
    let err = p
        .confirm_no_escalation(
            &sa,
            "team-a",
            &[
                PolicyRule::resource(&["get"], &["apps"], &["deployments"]),
                PolicyRule::resource(&["get", "list"], &[""], &["pods"]),
                PolicyRule::resource(&["get"], &[""], &["secrets"]).named(&["app-secret", "db"]),
            ],
        )
        .expect_err("pods and secret db are not held")
        .to_string();
    assert_eq!(
        err,
        "user \"system:serviceaccount:team-a:team-a\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:team-a\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"db\"], Verbs:[\"get\"]}"
    );
    let cluster_admin = p
        .role_ref_rules(
            &serde_json::from_value(json!({"kind": "ClusterRole", "name": "cluster-admin"}))
                .expect("roleRef"),
            "team-a",
        )
        .expect("cluster-admin exists")
        .to_vec();
    let err = p
        .confirm_no_escalation(&sa, "team-a", &cluster_admin)
        .expect_err("not held")
        .to_string();
    assert!(err.ends_with(
        ":\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"
    ), "{err}");
    let root = UserInfo::new("root", &["system:masters"]);
    assert!(
        p.confirm_no_escalation(&root, "team-a", &cluster_admin)
            .is_ok()
    );
    // */status held by carol covers any subresource status, and prefixes cover paths.
    let carol = user("carol", &[]);
    assert!(
        p.confirm_no_escalation(
            &carol,
            "x",
            &[
                PolicyRule::resource(&["get"], &["batch"], &["jobs/status"]),
                PolicyRule::non_resource(&["get"], &["/logs/a"]),
            ],
        )
        .is_ok()
    );
    assert!(
        p.confirm_no_escalation(
            &carol,
            "x",
            &[PolicyRule::resource(&["get"], &["batch"], &["jobs"])]
        )
        .is_err()
    );
}

#[test]
fn rules_for_lists_cluster_then_namespace_rules() {
    let p = policy();
    let (rules, errors) = p.rules_for(&sa_team_a(), "team-a");
    assert!(errors.is_empty());
    assert!(rules.iter().any(|r| {
        r.resources
            .contains(&"selfsubjectaccessreviews".to_string())
    }));
    assert!(
        rules
            .iter()
            .any(|r| r.resource_names == vec!["app-secret".to_string()])
    );
    let (rules_b, _) = p.rules_for(&sa_team_a(), "team-b");
    assert!(rules_b.len() < rules.len());
}
