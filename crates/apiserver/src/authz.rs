//! The server's side of access control: authenticating a request, impersonation, RBAC on
//! every request, escalation checks on RBAC writes, and the review and TokenRequest APIs.
//! Decisions are in [`crate::rbac`] and [`crate::auth`]; this module reads the store.

use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, Method, header};
use serde_json::{Value, json};

use crate::handlers::{App, Ctx};
use crate::rbac::{
    AUTHENTICATED, Attributes, MASTERS, Policy, PolicyRule, RBAC_GROUP, RoleRef, UNAUTHENTICATED,
    UserInfo, forbidden_message, forbidden_prefix, parse_service_account,
};
use crate::status::{ApiError, ApiResult};

/// The RBAC snapshot, rebuilt when an RBAC object was written.
#[derive(Default)]
pub struct PolicyCache {
    cached: RwLock<Option<(i64, Arc<Policy>)>>,
}

impl PolicyCache {
    /// The current policy of `app`'s store.
    pub fn get(&self, app: &App) -> Arc<Policy> {
        let rev = app
            .store
            .group_revision(&format!("/registry/{RBAC_GROUP}/"));
        if let Ok(g) = self.cached.read()
            && let Some((r, p)) = g.as_ref()
            && *r == rev
        {
            return p.clone();
        }
        let objs = |plural: &str| -> Vec<Value> {
            let prefix = format!("/registry/{RBAC_GROUP}/{plural}/");
            app.store
                .list(&prefix)
                .1
                .into_iter()
                .map(|(_, s)| s.obj())
                .collect()
        };
        let p = Arc::new(Policy::new(
            &objs("roles"),
            &objs("clusterroles"),
            &objs("rolebindings"),
            &objs("clusterrolebindings"),
        ));
        if let Ok(mut g) = self.cached.write() {
            *g = Some((rev, p.clone()));
        }
        p
    }
}

fn sa_uid(app: &App, ns: &str, name: &str) -> Option<String> {
    let s = app
        .store
        .get(&format!("/registry/core/serviceaccounts/{ns}/{name}"))?;
    let o = s.obj();
    if o["metadata"]["deletionTimestamp"].is_string() {
        return None;
    }
    o["metadata"]["uid"].as_str().map(String::from)
}

/// The authenticated user of a request (401 without a valid bearer token).
pub fn authenticate(app: &App, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::unauthorized)?;
    app.auth
        .authenticate(token, |ns, n| sa_uid(app, ns, n))
        .ok_or_else(ApiError::unauthorized)
}

fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let mut e = ApiError::forbidden(forbidden_message(a, reason));
    if a.resource_request {
        e.details = Some(json!({"name": a.name, "group": a.api_group, "kind": a.resource}));
    }
    e
}

fn check(app: &App, policy: &Policy, a: &Attributes) -> ApiResult<()> {
    let _ = app;
    let d = policy.authorize(a);
    if d.allowed {
        Ok(())
    } else {
        Err(forbidden(a, &d.reason))
    }
}

/// Applies `Impersonate-*` headers: each impersonated attribute needs the `impersonate` verb;
/// the request then runs as the impersonated user. A ServiceAccount impersonated without
/// groups gets its own groups, and every non-anonymous user `system:authenticated`.
pub fn impersonate(app: &App, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    // A value that is not UTF-8 is refused: skipping it would run the request as the caller.
    let text = |k: &axum::http::HeaderName, v: &axum::http::HeaderValue| {
        std::str::from_utf8(v.as_bytes())
            .map(str::to_string)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid {} header: the value is not valid UTF-8",
                    k.as_str()
                ))
            })
    };
    let mut name = None;
    let mut groups = Vec::new();
    let mut uid = None;
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (k, v) in headers {
        match k.as_str() {
            "impersonate-user" => name = Some(text(k, v)?),
            "impersonate-group" => groups.push(text(k, v)?),
            "impersonate-uid" => uid = Some(text(k, v)?),
            other => {
                if let Some(key) = other.strip_prefix("impersonate-extra-") {
                    extra.entry(unescape(key)).or_default().push(text(k, v)?);
                }
            }
        }
    }
    let Some(name) = name else {
        if !groups.is_empty() || uid.is_some() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let policy = app.policy.get(app);
    let imp = |group: &str, resource: &str, ns: &str, name: &str| {
        Attributes::resource(&user, "impersonate", group, resource, ns, name)
    };
    let sa = parse_service_account(&name);
    let a = match sa {
        Some((ns, n)) => imp("", "serviceaccounts", ns, n),
        None => imp("", "users", "", &name),
    };
    check(app, &policy, &a)?;
    for g in &groups {
        check(app, &policy, &imp("", "groups", "", g))?;
    }
    if let Some(u) = &uid {
        check(app, &policy, &imp("authentication.k8s.io", "uids", "", u))?;
    }
    for (k, vs) in &extra {
        for v in vs {
            check(
                app,
                &policy,
                &imp("authentication.k8s.io", &format!("userextras/{k}"), "", v),
            )?;
        }
    }
    let mut out_groups = groups.clone();
    if groups.is_empty()
        && let Some((ns, _)) = sa
    {
        out_groups = vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    if name != "system:anonymous"
        && !out_groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        out_groups.push(AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups: out_groups,
        extra,
    })
}

fn unescape(key: &str) -> String {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(h) = std::str::from_utf8(&b[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

/// The verb of a resource request, as kube-apiserver's RequestInfo names it.
pub fn verb(method: &Method, ctx: &Ctx) -> String {
    let collection = ctx.name.is_none();
    let watch = ctx
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1");
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => return method.as_str().to_lowercase(),
    }
    .to_string()
}

/// Attributes of a resource request.
pub fn resource_attributes(user: &UserInfo, method: &Method, ctx: &Ctx) -> Attributes {
    let mut ns = ctx.ns().to_string();
    // kube-apiserver treats a namespace's own URL as inside that namespace.
    if ctx.res.group.is_empty() && ctx.res.plural == "namespaces" && ctx.name.is_some() {
        ns = ctx.name().to_string();
    }
    let mut a = Attributes::resource(
        user,
        &verb(method, ctx),
        &ctx.res.group,
        &ctx.res.plural,
        &ns,
        ctx.name(),
    );
    a.subresource = ctx.sub.clone();
    // As kube-apiserver: a list or watch of one object by `metadata.name` names it, so
    // resourceNames rules apply.
    if a.name.is_empty()
        && (a.verb == "list" || a.verb == "watch")
        && let Some(name) = ctx
            .query
            .get("fieldSelector")
            .and_then(|f| single_name_selector(f))
    {
        a.name = name.to_string();
    }
    a
}

/// `X` of a field selector that is exactly `metadata.name=X` (or `==X`).
fn single_name_selector(selector: &str) -> Option<&str> {
    if selector.contains(',') {
        return None;
    }
    let v = selector.strip_prefix("metadata.name")?;
    let v = v.strip_prefix("==").or_else(|| v.strip_prefix('='))?;
    (!v.is_empty()).then_some(v)
}

/// Authorizes a resource request.
pub fn authorize_resource(app: &App, user: &UserInfo, method: &Method, ctx: &Ctx) -> ApiResult<()> {
    let a = resource_attributes(user, method, ctx);
    check(app, &app.policy.get(app), &a)
}

/// Authorizes a non-resource request (discovery, openapi).
pub fn authorize_path(app: &App, user: &UserInfo, method: &Method, path: &str) -> ApiResult<()> {
    let a = Attributes::path(user, &method.as_str().to_lowercase(), path);
    check(app, &app.policy.get(app), &a)
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(obj["rules"].clone()).unwrap_or_default()
}

/// Whether an update changes only what the garbage collector writes (ownerReferences,
/// finalizers) or bookkeeping (managedFields, resourceVersion): such updates of RBAC objects
/// skip the escalation checks, as in kube-apiserver.
fn only_gc_fields(new: &Value, old: &Value) -> bool {
    let mut copied = new.clone();
    for k in [
        "ownerReferences",
        "finalizers",
        "managedFields",
        "selfLink",
        "resourceVersion",
    ] {
        match old["metadata"].get(k) {
            Some(v) => copied["metadata"][k] = v.clone(),
            None => {
                if let Some(m) = copied["metadata"].as_object_mut() {
                    m.remove(k);
                }
            }
        }
    }
    copied == *old
}

/// Escalation prevention on every write (create, update, patch, apply) of a Role,
/// ClusterRole or binding, as kube-apiserver's RBAC storage does: a role's rules must all be
/// held by the user unless it may `escalate`, and an aggregationRule needs cluster-admin; a
/// binding needs `bind` on its role or every rule the role grants. Only updates that touch
/// nothing but garbage-collection fields pass unchecked.
pub fn check_rbac_write(app: &App, ctx: &Ctx, new: &Value, old: Option<&Value>) -> ApiResult<()> {
    if ctx.res.group != RBAC_GROUP || !ctx.sub.is_empty() {
        return Ok(());
    }
    let Some(user) = ctx.user.as_deref() else {
        return Ok(());
    };
    if user.groups.iter().any(|g| g == MASTERS) {
        return Ok(());
    }
    if old.is_some_and(|o| only_gc_fields(new, o)) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    let ns = new["metadata"]["namespace"].as_str().unwrap_or("");
    let policy = app.policy.get(app);
    let target = Attributes::resource(user, "", RBAC_GROUP, &ctx.res.plural, ns, name);
    let deny = |why: String| {
        let mut e = ApiError::forbidden(forbidden_prefix(&target, &why));
        e.details = Some(json!({"name": name, "group": RBAC_GROUP, "kind": ctx.res.plural}));
        e
    };
    match ctx.res.plural.as_str() {
        "roles" | "clusterroles" => {
            // kube-apiserver asks about the request's own name (none on a create by POST).
            let escalate = Attributes::resource(
                user,
                "escalate",
                RBAC_GROUP,
                &ctx.res.plural,
                ns,
                ctx.name(),
            );
            if policy.authorize(&escalate).allowed {
                return Ok(());
            }
            policy
                .confirm_no_escalation(user, ns, &rules_of(new))
                .map_err(|e| deny(e.to_string()))?;
            // An aggregationRule gathers anything (and keeps a role from being tightened).
            if new["aggregationRule"].is_object()
                || old.is_some_and(|o| o["aggregationRule"].is_object())
            {
                let full = [
                    PolicyRule::resource(&["*"], &["*"], &["*"]),
                    PolicyRule::non_resource(&["*"], &["*"]),
                ];
                policy.confirm_no_escalation(user, ns, &full).map_err(|_| {
                    deny("must have cluster-admin privileges to use the aggregationRule".into())
                })?;
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref: RoleRef =
                serde_json::from_value(new["roleRef"].clone()).unwrap_or_default();
            let resource = match role_ref.kind.as_str() {
                "Role" => "roles",
                "ClusterRole" => "clusterroles",
                _ => "",
            };
            let bind = Attributes::resource(user, "bind", RBAC_GROUP, resource, ns, &role_ref.name);
            if !resource.is_empty() && policy.authorize(&bind).allowed {
                return Ok(());
            }
            let rules = policy
                .role_ref_rules(&role_ref, ns)
                .map_err(|e| deny(e.to_string()))?
                .to_vec();
            policy
                .confirm_no_escalation(user, ns, &rules)
                .map_err(|e| deny(e.to_string()))
        }
        _ => Ok(()),
    }
}

/// A server-side apply that creates the object needs `create` as well as `patch`, as in
/// kube-apiserver.
pub fn authorize_create_on_apply(app: &App, ctx: &Ctx) -> ApiResult<()> {
    let Some(user) = ctx.user.as_deref() else {
        return Ok(());
    };
    let a = resource_attributes(user, &Method::POST, ctx);
    check(app, &app.policy.get(app), &a)
}

/// Whether a resource is one of the create-only review APIs (or TokenRequest).
pub fn is_virtual(ctx: &Ctx) -> bool {
    matches!(
        (ctx.res.group.as_str(), ctx.res.plural.as_str()),
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
                | "subjectaccessreviews"
                | "localsubjectaccessreviews"
                | "selfsubjectrulesreviews"
        ) | (
            "authentication.k8s.io",
            "tokenreviews" | "selfsubjectreviews"
        )
    ) || (ctx.res.group.is_empty() && ctx.res.plural == "serviceaccounts" && ctx.sub == "token")
}

fn review_attributes(user: &UserInfo, spec: &Value, url_ns: &str) -> ApiResult<Attributes> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    if let Some(r) = spec["resourceAttributes"].as_object() {
        let mut ns = s(&r.get("namespace").cloned().unwrap_or_default());
        if !url_ns.is_empty() {
            ns = url_ns.to_string();
        }
        Ok(Attributes {
            user: user.clone(),
            verb: s(&r.get("verb").cloned().unwrap_or_default()),
            resource_request: true,
            namespace: ns,
            api_group: s(&r.get("group").cloned().unwrap_or_default()),
            resource: s(&r.get("resource").cloned().unwrap_or_default()),
            subresource: s(&r.get("subresource").cloned().unwrap_or_default()),
            name: s(&r.get("name").cloned().unwrap_or_default()),
            path: String::new(),
        })
    } else if let Some(n) = spec["nonResourceAttributes"].as_object() {
        Ok(Attributes::path(
            user,
            &s(&n.get("verb").cloned().unwrap_or_default()),
            &s(&n.get("path").cloned().unwrap_or_default()),
        ))
    } else {
        Err(ApiError::bad_request(
            "spec: exactly one of resourceAttributes or nonResourceAttributes must be set",
        ))
    }
}

fn rules_review(policy: &Policy, user: &UserInfo, ns: &str) -> Value {
    let (rules, errors) = policy.rules_for(user, ns);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    if user.groups.iter().any(|g| g == MASTERS) {
        resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    for r in rules {
        if !r.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
        if !r.resources.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        }
    }
    let mut status = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty()});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

fn user_from_spec(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    UserInfo {
        name: spec["user"].as_str().unwrap_or("").to_string(),
        uid: spec["uid"].as_str().unwrap_or("").to_string(),
        groups: strings(&spec["groups"]),
        extra: spec["extra"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), strings(v)))
            .collect(),
    }
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// Serves a POST to a review API or TokenRequest (the caller has authorized `create`).
pub fn serve_virtual(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let user = ctx.user.as_deref().cloned().unwrap_or_default();
    let protobuf = crate::proto::is_protobuf(&ctx.headers);
    let kind = if ctx.res.plural == "serviceaccounts" {
        "TokenRequest"
    } else {
        ctx.res.kind.as_str()
    };
    let mut obj: Value = if body.is_empty() {
        json!({})
    } else if protobuf {
        let api_version = if kind == "TokenRequest" {
            "authentication.k8s.io/v1".to_string()
        } else {
            ctx.res.api_version()
        };
        crate::proto::decode_request(body, &api_version, kind)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?
    };
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    let policy = app.policy.get(app);
    let spec = obj["spec"].clone();
    let status = match ctx.res.plural.as_str() {
        "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let subject = if ctx.res.plural == "selfsubjectaccessreviews" {
                user
            } else {
                user_from_spec(&spec)
            };
            let a = review_attributes(&subject, &spec, ctx.ns())?;
            let d = policy.authorize(&a);
            let mut s = json!({"allowed": d.allowed});
            if !d.reason.is_empty() {
                s["reason"] = json!(d.reason);
            }
            s
        }
        "selfsubjectrulesreviews" => {
            let ns = spec["namespace"].as_str().unwrap_or("");
            rules_review(&policy, &user, ns)
        }
        "selfsubjectreviews" => json!({"userInfo": user_json(&user)}),
        "tokenreviews" => {
            let token = spec["token"].as_str().unwrap_or("");
            match app.auth.authenticate(token, |ns, n| sa_uid(app, ns, n)) {
                Some(u) => json!({"authenticated": true, "user": user_json(&u),
                    "audiences": [crate::auth::API_AUDIENCE]}),
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        "serviceaccounts" => return token_request(app, ctx, obj),
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on {other}"
            )));
        }
    };
    obj["apiVersion"] = json!(ctx.res.api_version());
    obj["kind"] = json!(ctx.res.kind);
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({"creationTimestamp": null});
    }
    obj["status"] = status;
    Ok(obj)
}

/// `spec.expirationSeconds` of a TokenRequest: one hour when unset, else an integer between
/// 10 minutes and 2^32 seconds (kube-apiserver's bounds and messages).
fn token_expiration(v: &Value) -> ApiResult<i64> {
    if v.is_null() {
        return Ok(3600);
    }
    let secs = v.as_i64().ok_or_else(|| {
        // Go's encoding/json words: the number itself, or only the JSON type.
        let what = match v {
            Value::Number(n) => format!("number {n}"),
            Value::String(_) => "string".into(),
            Value::Bool(_) => "bool".into(),
            Value::Array(_) => "array".into(),
            _ => "object".into(),
        };
        ApiError::bad_request(format!(
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal {what} into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
        ))
    })?;
    let why = if secs < 600 {
        "may not specify a duration less than 10 minutes"
    } else if secs > 1 << 32 {
        "may not specify a duration larger than 2^32 seconds"
    } else {
        return Ok(secs);
    };
    Err(ApiError::invalid(
        crate::status::Target {
            resource: "tokenrequests",
            group: "authentication.k8s.io",
            name: "",
            kind: "TokenRequest",
        },
        vec![crate::status::Cause::invalid(
            "spec.expirationSeconds",
            v,
            why,
        )],
    ))
}

fn token_request(app: &App, ctx: &Ctx, mut obj: Value) -> ApiResult<Value> {
    let (ns, name) = (ctx.ns(), ctx.name());
    let uid = sa_uid(app, ns, name).ok_or_else(|| ApiError::not_found(ctx.target(name)))?;
    let audiences: Vec<String> = obj["spec"]["audiences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let secs = token_expiration(&obj["spec"]["expirationSeconds"])?;
    let t = app.auth.issue(ns, name, &uid, &audiences, Some(secs));
    obj["apiVersion"] = json!("authentication.k8s.io/v1");
    obj["kind"] = json!("TokenRequest");
    obj["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": null});
    obj["spec"]["audiences"] = json!(if audiences.is_empty() {
        vec![crate::auth::API_AUDIENCE.to_string()]
    } else {
        audiences
    });
    obj["spec"]["expirationSeconds"] = json!(secs);
    obj["status"] = json!({"token": t.token, "expirationTimestamp": t.expiration});
    Ok(obj)
}

/// Writes the aggregated rules into every ClusterRole with an `aggregationRule` whose stored
/// rules differ, as kube-controller-manager's aggregation controller does, so that
/// `kubectl get clusterrole admin -o yaml` shows what the role grants.
pub fn fill_aggregated(store: &crate::store::Store) {
    let prefix = format!("/registry/{RBAC_GROUP}/clusterroles/");
    let roles: Vec<(String, crate::store::Stored)> = store.list(&prefix).1;
    let objs: Vec<Value> = roles.iter().map(|(_, s)| s.obj()).collect();
    let effective = crate::rbac::aggregate(&objs);
    for ((key, stored), mut obj) in roles.iter().zip(objs) {
        if !obj["aggregationRule"].is_object() {
            continue;
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let want = json!(effective.get(&name).cloned().unwrap_or_default());
        if obj["rules"] == want {
            continue;
        }
        obj["rules"] = want;
        if let Err(e) = store.put(key, obj, false, Some(stored.rev)) {
            tracing::debug!(role = %name, error = %e, "aggregation raced a write; next write retries");
        }
    }
}

/// After a ClusterRole write or delete: refresh the aggregated roles off the request path.
pub fn after_cluster_role_change(app: &App, ctx: &Ctx) {
    if ctx.res.group == RBAC_GROUP && ctx.res.plural == "clusterroles" {
        let store = app.store.clone();
        tokio::task::spawn_blocking(move || fill_aggregated(&store));
    }
}

/// Fills `data.token` (and `namespace`) of a new `kubernetes.io/service-account-token`
/// Secret whose annotated ServiceAccount exists, with a non-expiring token, as the legacy
/// token controller does.
pub fn fill_legacy_token(app: &App, ctx: &Ctx, obj: &mut Value) {
    use base64::Engine;
    if !(ctx.res.group.is_empty() && ctx.res.plural == "secrets")
        || obj["type"] != "kubernetes.io/service-account-token"
    {
        return;
    }
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let Some(sa) = obj["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        .as_str()
        .map(String::from)
    else {
        return;
    };
    let Some(uid) = sa_uid(app, &ns, &sa) else {
        return;
    };
    let t = app.auth.issue(&ns, &sa, &uid, &[], None);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    obj["metadata"]["annotations"]["kubernetes.io/service-account.uid"] = json!(uid);
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    obj["data"]["token"] = json!(b64(&t.token));
    obj["data"]["namespace"] = json!(b64(&ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_name_selectors() {
        assert_eq!(single_name_selector("metadata.name=web"), Some("web"));
        assert_eq!(single_name_selector("metadata.name==web"), Some("web"));
        assert_eq!(single_name_selector("metadata.name!=web"), None);
        assert_eq!(single_name_selector("metadata.name=web,a=b"), None);
        assert_eq!(single_name_selector("metadata.namespace=x"), None);
        assert_eq!(single_name_selector("metadata.name="), None);
    }

    #[test]
    fn impersonation_header_keys_are_unescaped_and_lowercased() {
        assert_eq!(unescape("Example.com%2fScopes"), "example.com/scopes");
        assert_eq!(unescape("bad%zz"), "bad%zz");
        assert_eq!(unescape("trail%2"), "trail%2");
    }
}
