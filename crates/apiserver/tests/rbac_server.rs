//! Authentication, RBAC and impersonation through kube-rs over HTTPS: a tenant ServiceAccount
//! bound to a namespaced Role, the same requests by the admin impersonating it, static users,
//! TokenRequest tokens across a restart and after the account is deleted.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const SA: &str = "system:serviceaccount:team-a:team-a";
const SA_GROUPS: &str =
    r#"["system:serviceaccounts" "system:serviceaccounts:team-a" "system:authenticated"]"#;

fn obj<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

/// A RoleBinding or ClusterRoleBinding `name` of the `role_kind` named `role` to `subject`.
fn role_binding<T: DeserializeOwned>(name: &str, role_kind: &str, role: &str, subject: Value) -> T {
    obj(json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [subject]}))
}

/// The tenant's ServiceAccount as a binding subject.
fn tenant_sa() -> Value {
    json!({"kind": "ServiceAccount", "name": "team-a", "namespace": "team-a"})
}

/// A user as a binding subject.
fn user(name: &str) -> Value {
    json!({"kind": "User", "name": name})
}

fn deployment(name: &str) -> Deployment {
    obj(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}
    }))
}

fn forbidden(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => s.message,
        other => panic!("expected 403, got {other:?}"),
    }
}

/// Creates `object` through `api`, which must refuse it with 403; the refusal's message.
async fn create_forbidden<K>(api: &Api<K>, object: &K) -> String
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    forbidden(
        api.create(&PostParams::default(), object)
            .await
            .expect_err("the create must be refused"),
    )
}

async fn start(dir: &Path) -> ferroflux_apiserver::RunningServer {
    common::init_tls();
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, "alice-token,alice,1001,\"devs\"\n").expect("token file");
    let mut config = ferroflux_apiserver::Config::new(dir.join("data"));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.token_file = Some(tokens);
    ferroflux_apiserver::serve(config)
        .await
        .expect("server starts")
}

/// A client with the kubeconfig's admin token swapped for `token`, optionally impersonating.
async fn client_as(
    server: &ferroflux_apiserver::RunningServer,
    token: &str,
    impersonate: Option<&str>,
) -> kube::Client {
    let text = server.kubeconfig.replace(&server.token, token);
    let kc = kube::config::Kubeconfig::from_yaml(&text).expect("kubeconfig parses");
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig usable");
    cfg.auth_info.impersonate = impersonate.map(String::from);
    kube::Client::try_from(cfg).expect("client")
}

async fn setup_tenant(admin: &kube::Client) {
    let ns: Api<Namespace> = Api::all(admin.clone());
    for n in ["team-a", "team-b"] {
        ns.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": n}})),
        )
        .await
        .expect("namespace");
    }
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team-a");
    sa.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "team-a"}})),
    )
    .await
    .expect("service account");
    tenant_role(
        admin,
        "tenant-app-admin",
        "tenant",
        json!([
            {"apiGroups": ["", "apps"], "resources": ["deployments", "services", "configmaps"], "verbs": ["*"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["get", "list", "create", "update"]}
        ]),
    )
    .await;
}

/// Creates the Role `role` with `rules` in team-a and binds it (as `binding`) to the team-a
/// service account.
async fn tenant_role(admin: &kube::Client, role: &str, binding: &str, rules: Value) {
    let roles: Api<Role> = Api::namespaced(admin.clone(), "team-a");
    roles
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": role}, "rules": rules})),
        )
        .await
        .expect("role");
    let rb: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    rb.create(
        &PostParams::default(),
        &role_binding(binding, "Role", role, tenant_sa()),
    )
    .await
    .expect("binding");
}

async fn token_for(admin: &kube::Client, ns: &str, name: &str) -> String {
    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}});
    let tr: Value = sa
        .create_subresource("token", name, &PostParams::default(), &body)
        .await
        .expect("token request");
    assert_eq!(tr["kind"], "TokenRequest");
    assert!(tr["status"]["expirationTimestamp"].is_string());
    tr["status"]["token"]
        .as_str()
        .expect("token issued")
        .to_string()
}

/// The tenant's answers, the same whether it authenticates itself or is impersonated.
async fn tenant_answers(tenant: &kube::Client, admin: &kube::Client, suffix: &str) {
    let in_a: Api<Deployment> = Api::namespaced(tenant.clone(), "team-a");
    in_a.create(&PostParams::default(), &deployment(&format!("web{suffix}")))
        .await
        .expect("the tenant creates in its namespace");

    let in_b: Api<Deployment> = Api::namespaced(tenant.clone(), "team-b");
    let msg = create_forbidden(&in_b, &deployment("web")).await;
    assert_eq!(
        msg,
        format!(
            r#"deployments.apps is forbidden: User "{SA}" cannot create resource "deployments" in API group "apps" in the namespace "team-b""#
        )
    );
    let admin_b: Api<Deployment> = Api::namespaced(admin.clone(), "team-b");
    assert!(
        admin_b.get_opt("web").await.expect("get").is_none(),
        "a denied write leaves the store unchanged"
    );

    let crb: Api<ClusterRoleBinding> = Api::all(tenant.clone());
    let msg = create_forbidden(
        &crb,
        &role_binding("escape", "ClusterRole", "cluster-admin", tenant_sa()),
    )
    .await;
    assert_eq!(
        msg,
        format!(
            r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "{SA}" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope"#
        )
    );

    let rb: Api<RoleBinding> = Api::namespaced(tenant.clone(), "team-a");
    let name = format!("grab-cluster-admin{suffix}");
    let msg = create_forbidden(
        &rb,
        &role_binding(&name, "ClusterRole", "cluster-admin", tenant_sa()),
    )
    .await;
    assert_eq!(
        msg,
        format!(
            "rolebindings.rbac.authorization.k8s.io \"{name}\" is forbidden: user \"{SA}\" (groups={SA_GROUPS}) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}}\n{{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}}"
        )
    );
    let admin_rb: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    assert!(admin_rb.get_opt(&name).await.expect("get").is_none());

    let roles: Api<Role> = Api::namespaced(tenant.clone(), "team-a");
    let name = format!("secret-reader{suffix}");
    let msg = create_forbidden(
        &roles,
        &obj(json!({"metadata": {"name": name}, "rules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]})),
    )
    .await;
    assert_eq!(
        msg,
        format!(
            "roles.rbac.authorization.k8s.io \"{name}\" is forbidden: user \"{SA}\" (groups={SA_GROUPS}) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}}"
        )
    );
    let admin_roles: Api<Role> = Api::namespaced(admin.clone(), "team-a");
    assert!(admin_roles.get_opt(&name).await.expect("get").is_none());

    // What it holds, it may grant.
    roles
        .create(
            &PostParams::default(),
            &obj(
                json!({"metadata": {"name": format!("deploy-reader{suffix}")}, "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]}),
            ),
        )
        .await
        .expect("a role within its own permissions");
    // An update that widens its own role is refused and changes nothing.
    let mut own = admin_roles.get("tenant-app-admin").await.expect("own role");
    let before = own.rules.clone();
    let mut rules = own.rules.clone().unwrap_or_default();
    rules.push(obj(
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}),
    ));
    own.rules = Some(rules);
    forbidden(
        roles
            .replace("tenant-app-admin", &PostParams::default(), &own)
            .await
            .expect_err("no self-escalation"),
    );
    let after = admin_roles.get("tenant-app-admin").await.expect("own role");
    assert_eq!(after.rules, before);
}

#[tokio::test]
async fn tenant_service_account_is_confined_and_impersonation_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    setup_tenant(&admin).await;
    let token = token_for(&admin, "team-a", "team-a").await;

    let tenant = client_as(&server, &token, None).await;
    tenant_answers(&tenant, &admin, "").await;

    let impersonated = client_as(&server, &server.token, Some(SA)).await;
    tenant_answers(&impersonated, &admin, "-imp").await;

    // A user without the impersonate permission.
    let alice_as_sa = client_as(&server, "alice-token", Some(SA)).await;
    let api: Api<Deployment> = Api::namespaced(alice_as_sa, "team-a");
    let msg = forbidden(
        api.list(&Default::default())
            .await
            .expect_err("no impersonation"),
    );
    assert_eq!(
        msg,
        r#"serviceaccounts "team-a" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "team-a""#
    );
    let alice_as_bob = client_as(&server, "alice-token", Some("bob")).await;
    let api: Api<Deployment> = Api::namespaced(alice_as_bob, "team-a");
    let msg = forbidden(
        api.list(&Default::default())
            .await
            .expect_err("no impersonation"),
    );
    assert_eq!(
        msg,
        r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    // Alice herself is authenticated but has no rights.
    let alice = client_as(&server, "alice-token", None).await;
    let api: Api<Deployment> = Api::namespaced(alice, "team-a");
    let msg = forbidden(api.list(&Default::default()).await.expect_err("no rights"));
    assert_eq!(
        msg,
        r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" in the namespace "team-a""#
    );
    server.shutdown().await;
}

#[tokio::test]
async fn service_account_tokens_survive_restart_and_die_with_the_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    setup_tenant(&admin).await;
    let token = token_for(&admin, "team-a", "team-a").await;
    server.shutdown().await;

    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    let tenant = client_as(&server, &token, None).await;
    let api: Api<Deployment> = Api::namespaced(tenant.clone(), "team-a");
    api.list(&Default::default())
        .await
        .expect("the token verifies after a restart");

    let sa: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team-a");
    sa.delete("team-a", &Default::default())
        .await
        .expect("delete account");
    match api.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401 after the account is gone, got {other:?}"),
    }
    // A legacy token Secret is filled by the server and dies with its account too.
    sa.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "legacy"}})),
    )
    .await
    .expect("account");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(admin.clone(), "team-a");
    let s = secrets
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "legacy-token",
                "annotations": {"kubernetes.io/service-account.name": "legacy"}},
                "type": "kubernetes.io/service-account-token"})),
        )
        .await
        .expect("secret");
    let token = s
        .data
        .and_then(|d| d.get("token").cloned())
        .expect("token filled");
    let token = String::from_utf8(token.0).expect("utf-8 token");
    let legacy = client_as(&server, &token, None).await;
    let api_legacy: Api<Deployment> = Api::namespaced(legacy, "team-a");
    let msg = forbidden(
        api_legacy
            .list(&Default::default())
            .await
            .expect_err("no rights yet"),
    );
    assert!(
        msg.contains(r#"User "system:serviceaccount:team-a:legacy""#),
        "{msg}"
    );
    sa.delete("legacy", &Default::default())
        .await
        .expect("delete");
    match api_legacy.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    // Unknown tokens are refused too.
    let stranger = client_as(&server, "not-a-token", None).await;
    let api: Api<Deployment> = Api::namespaced(stranger, "team-a");
    match api.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized")),
        other => panic!("expected 401, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn default_cluster_roles_exist_with_aggregated_rules_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    let crs: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(admin.clone());
    for name in ["cluster-admin", "admin", "edit", "view"] {
        crs.get(name).await.expect("default ClusterRole exists");
    }
    let edit = crs.get("edit").await.expect("edit");
    assert_eq!(
        edit.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("rbac.authorization.k8s.io/aggregate-to-admin"))
            .map(String::as_str),
        Some("true")
    );
    let admin_role = crs.get("admin").await.expect("admin");
    let rules = admin_role.rules.unwrap_or_default();
    assert!(
        rules.iter().any(|r| r
            .resources
            .as_ref()
            .is_some_and(|x| x.contains(&"deployments".to_string()))),
        "aggregated rules are filled: {rules:?}"
    );
    crs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "widget-reader",
                "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]})),
    )
    .await
    .expect("labelled role");
    let mut filled = false;
    for _ in 0..100 {
        let view = crs.get("view").await.expect("view");
        if view.rules.unwrap_or_default().iter().any(|r| {
            r.resources
                .as_ref()
                .is_some_and(|x| x.contains(&"widgets".to_string()))
        }) {
            filled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(filled, "view aggregates the new labelled role");
    // alice bound to `view` in team-a: reads (aggregated rules), no writes.
    let ns: Api<Namespace> = Api::all(admin.clone());
    ns.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "team-a"}})),
    )
    .await
    .expect("ns");
    let rb: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-a");
    rb.create(
        &PostParams::default(),
        &role_binding("alice-view", "ClusterRole", "view", user("alice")),
    )
    .await
    .expect("binding");
    let alice = client_as(&server, "alice-token", None).await;
    let api: Api<Deployment> = Api::namespaced(alice, "team-a");
    api.list(&Default::default()).await.expect("view reads");
    create_forbidden(&api, &deployment("x")).await;
    server.shutdown().await;
}

async fn whoami(client: &kube::Client) -> Result<Value, kube::Error> {
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("authentication.k8s.io", "v1", "SelfSubjectReview"),
        "selfsubjectreviews",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let review = DynamicObject::new("", &ar);
    let out = api.create(&PostParams::default(), &review).await?;
    Ok(out.data["status"]["userInfo"].clone())
}

#[tokio::test]
async fn each_impersonated_attribute_needs_its_own_permission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    let crs: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(admin.clone());
    crs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "impersonate-vera"}, "rules": [
            {"apiGroups": [""], "resources": ["users"], "resourceNames": ["vera"], "verbs": ["impersonate"]},
            {"apiGroups": [""], "resources": ["groups"], "resourceNames": ["operators"], "verbs": ["impersonate"]}]})),
    )
    .await
    .expect("role");
    let crb: Api<ClusterRoleBinding> = Api::all(admin.clone());
    crb.create(
        &PostParams::default(),
        &role_binding(
            "alice-impersonates",
            "ClusterRole",
            "impersonate-vera",
            user("alice"),
        ),
    )
    .await
    .expect("binding");

    let me = whoami(&client_as(&server, "alice-token", None).await)
        .await
        .expect("self review");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["groups"], json!(["devs", "system:authenticated"]));
    let admin_me = whoami(&admin).await.expect("admin review");
    assert_eq!(admin_me["username"], "ferroflux:admin");
    assert!(
        admin_me["groups"]
            .as_array()
            .is_some_and(|g| g.contains(&json!("system:masters")))
    );

    let vera = client_as(&server, "alice-token", Some("vera")).await;
    let me = whoami(&vera).await.expect("as vera");
    assert_eq!(me["username"], "vera");
    assert_eq!(me["groups"], json!(["system:authenticated"]));

    let with_group = |group: &str| {
        let text = server.kubeconfig.replace(&server.token, "alice-token");
        let group = group.to_string();
        async move {
            let kc = kube::config::Kubeconfig::from_yaml(&text).expect("kubeconfig");
            let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .expect("config");
            cfg.auth_info.impersonate = Some("vera".into());
            cfg.auth_info.impersonate_groups = Some(vec![group]);
            kube::Client::try_from(cfg).expect("client")
        }
    };
    let me = whoami(&with_group("operators").await)
        .await
        .expect("as vera in operators");
    assert_eq!(me["groups"], json!(["operators", "system:authenticated"]));
    let msg = forbidden(
        whoami(&with_group("admins").await)
            .await
            .expect_err("group not allowed"),
    );
    assert_eq!(
        msg,
        r#"groups "admins" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope"#
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bind_and_escalate_verbs_allow_granting_what_is_not_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    setup_tenant(&admin).await;
    tenant_role(
        &admin,
        "binder",
        "binder",
        json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["view"], "verbs": ["bind"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]),
    )
    .await;
    let tenant = client_as(&server, &server.token, Some(SA)).await;
    let trb: Api<RoleBinding> = Api::namespaced(tenant.clone(), "team-a");
    // The tenant lacks much of what `view` grants (pods, jobs, ...): the bind verb allows it.
    trb.create(
        &PostParams::default(),
        &role_binding("viewers", "ClusterRole", "view", user("vera")),
    )
    .await
    .expect("bind verb on view");
    create_forbidden(
        &trb,
        &role_binding("editors", "ClusterRole", "edit", user("vera")),
    )
    .await;
    let troles: Api<Role> = Api::namespaced(tenant, "team-a");
    troles
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "wide"}, "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]})),
        )
        .await
        .expect("escalate verb on roles");
    server.shutdown().await;
}

async fn review(
    client: &kube::Client,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
    spec: Value,
) -> Value {
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("authorization.k8s.io", "v1", kind),
        plural,
    );
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut obj = DynamicObject::new("", &ar);
    obj.data = json!({"spec": spec});
    let out = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("review");
    out.data["status"].clone()
}

#[tokio::test]
async fn subject_access_reviews_answer_for_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let admin = common::client(&server.kubeconfig).await;
    setup_tenant(&admin).await;
    let sa_groups = json!([
        "system:serviceaccounts",
        "system:serviceaccounts:team-a",
        "system:authenticated"
    ]);
    let status = review(&admin, "SubjectAccessReview", "subjectaccessreviews", None, json!({
        "user": SA, "groups": sa_groups,
        "resourceAttributes": {"namespace": "team-a", "verb": "create", "group": "apps", "resource": "deployments"}})).await;
    assert_eq!(status["allowed"], true);
    let status = review(&admin, "SubjectAccessReview", "subjectaccessreviews", None, json!({
        "user": SA, "groups": sa_groups,
        "resourceAttributes": {"namespace": "team-b", "verb": "create", "group": "apps", "resource": "deployments"}})).await;
    assert_eq!(status["allowed"], false);
    // The namespace of a LocalSubjectAccessReview is the URL's.
    let status = review(
        &admin,
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        Some("team-a"),
        json!({
        "user": SA, "groups": sa_groups,
        "resourceAttributes": {"namespace": "team-a", "verb": "get", "resource": "configmaps"}}),
    )
    .await;
    assert_eq!(status["allowed"], true);
    // A binding to a missing role is reported.
    let rb: Api<RoleBinding> = Api::namespaced(admin.clone(), "team-b");
    rb.create(
        &PostParams::default(),
        &role_binding("dangling", "Role", "gone", user("zed")),
    )
    .await
    .expect("binding to a missing role is accepted, as in Kubernetes");
    let status = review(&admin, "SubjectAccessReview", "subjectaccessreviews", None, json!({
        "user": "zed", "resourceAttributes": {"namespace": "team-b", "verb": "get", "resource": "pods"}})).await;
    assert_eq!(status["allowed"], false);
    assert_eq!(
        status["reason"],
        r#"RBAC: role.rbac.authorization.k8s.io "gone" not found"#
    );
    // A tenant may not ask about others.
    let tenant = client_as(&server, &server.token, Some(SA)).await;
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("authorization.k8s.io", "v1", "SubjectAccessReview"),
        "subjectaccessreviews",
    );
    let api: Api<kube::core::DynamicObject> = Api::all_with(tenant, &ar);
    let mut o = kube::core::DynamicObject::new("", &ar);
    o.data =
        json!({"spec": {"user": "x", "resourceAttributes": {"verb": "get", "resource": "pods"}}});
    let msg = forbidden(
        api.create(&PostParams::default(), &o)
            .await
            .expect_err("not allowed"),
    );
    assert!(
        msg.starts_with("subjectaccessreviews.authorization.k8s.io is forbidden"),
        "{msg}"
    );
    server.shutdown().await;
}
