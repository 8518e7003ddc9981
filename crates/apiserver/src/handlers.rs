//! REST handlers: routing, get/list, create, update, patch, delete, subresources.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::discovery;
use crate::meta;
use crate::registry::{Registry, Resource};
use crate::selector::{FieldSelector, LabelSelector};
use crate::ssa;
use crate::status::{ApiError, ApiResult, Target};
use crate::store::{Store, Stored};
use crate::table;
use crate::write;

/// Largest request body accepted (kube-apiserver's limit is 3 MiB per object).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Shared server state.
pub struct App {
    /// The store.
    pub store: Arc<Store>,
    /// Served kinds.
    pub registry: Registry,
    /// The admin bearer token.
    pub token: String,
    /// Queue of the garbage collector.
    pub gc: tokio::sync::mpsc::UnboundedSender<crate::gc::Job>,
    /// Who may call.
    pub auth: crate::auth::Authenticator,
    /// The RBAC snapshot.
    pub policy: crate::authz::PolicyCache,
    /// What the stored Services hold of the cluster IP and node port ranges.
    pub services: crate::defaults::ServiceAllocations,
    /// Validating admission plugins.
    pub validators: crate::admission::Validators,
    /// The CA certificate (PEM) the server serves with, published in every namespace.
    pub root_ca: Option<String>,
}

/// A request for a resource.
pub struct Ctx {
    /// The resource.
    pub res: Arc<Resource>,
    /// Namespace from the URL.
    pub ns: Option<String>,
    /// Name from the URL.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`).
    pub sub: String,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// Who asks (after impersonation); `None` for the server's own operations.
    pub user: Option<Arc<crate::rbac::UserInfo>>,
    /// Admission warnings for the response's `Warning` headers.
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    pub(crate) fn target<'a>(&'a self, name: &'a str) -> Target<'a> {
        Target {
            resource: &self.res.plural,
            group: &self.res.group,
            name,
            kind: &self.res.kind,
        }
    }
    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
    pub(crate) fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or("")
    }
    pub(crate) fn key(&self) -> String {
        self.res.key(self.ns(), self.name())
    }
    pub(crate) fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }
    pub(crate) fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.clone();
        }
        let ua = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        ua.split('/').next().unwrap_or("unknown").to_string()
    }
    pub(crate) fn hints(&self) -> ssa::Hints<'_> {
        ssa::Hints {
            schema: self.res.schema.as_deref(),
            builtin: (!self.res.custom).then_some((
                self.res.group.as_str(),
                self.res.version.as_str(),
                self.res.kind.as_str(),
            )),
            status: self.sub == "status",
        }
    }
}

/// What a path names.
enum Route {
    Version,
    Health,
    Api,
    ResourceList(String, String),
    Apis,
    Group(String),
    OpenApiV2,
    OpenApiV3,
    OpenApiV3Gv(String, String),
    Resource(Box<Ctx>),
}

fn route(
    reg: &Registry,
    path: &str,
    query: HashMap<String, String>,
    headers: HeaderMap,
) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::Api),
        ["apis"] => return Some(Route::Apis),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["openapi", "v2"] => return Some(Route::OpenApiV2),
        ["openapi", "v3"] => return Some(Route::OpenApiV3),
        ["openapi", "v3", "api", v] => {
            return Some(Route::OpenApiV3Gv(String::new(), v.to_string()));
        }
        ["openapi", "v3", "apis", g, v] => {
            return Some(Route::OpenApiV3Gv(g.to_string(), v.to_string()));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if reg
                .lookup(group, version, plural)
                .is_some_and(|r| r.namespaced) =>
        {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [] => return Some(Route::ResourceList(group.into(), version.into())),
        [p] => (*p, None, ""),
        [p, n] => (*p, Some(n.to_string()), ""),
        [p, n, s] => (*p, Some(n.to_string()), *s),
        _ => return None,
    };
    let res = reg.lookup(group, version, plural)?;
    Some(Route::Resource(Box::new(Ctx {
        res,
        ns,
        name,
        sub: sub.to_string(),
        query,
        headers,
        user: None,
        warnings: Default::default(),
    })))
}

/// Whether `path` lies in a group version the server serves (`/api/v1/...`,
/// `/apis/<group>/<version>/...`): kube-apiserver answers unknown paths there with a Status,
/// and anything else from its HTTP mux.
fn serves_group_version(reg: &Registry, path: &str) -> bool {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let (group, version) = match (segs.next(), segs.next(), segs.next()) {
        (Some("api"), Some(v), _) => ("", v),
        (Some("apis"), Some(g), Some(v)) => (g, v),
        _ => return false,
    };
    reg.versions(group).iter().any(|v| v == version)
}

/// JSON response.
pub fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The single entry point: routes every request.
pub async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let started = std::time::Instant::now();
    let resp = serve_request(app, req).await;
    tracing::debug!(
        %method,
        %uri,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn serve_request(app: Arc<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let Some(r) = route(
        &app.registry,
        parts.uri.path(),
        query,
        parts.headers.clone(),
    ) else {
        return if serves_group_version(&app.registry, parts.uri.path()) {
            ApiError::no_route()
        } else {
            ApiError::not_served()
        }
        .into_response();
    };
    let user = if matches!(r, Route::Health | Route::Version) {
        None
    } else {
        let checked = crate::authz::authenticate(&app, &parts.headers)
            .and_then(|u| crate::authz::impersonate(&app, u, &parts.headers))
            .and_then(|u| {
                match &r {
                    Route::Resource(ctx) => {
                        crate::authz::authorize_resource(&app, &u, &parts.method, ctx)?
                    }
                    _ => crate::authz::authorize_path(&app, &u, &parts.method, parts.uri.path())?,
                }
                Ok(u)
            });
        match checked {
            Ok(u) => Some(Arc::new(u)),
            Err(e) => return e.into_response(),
        }
    };
    let ok = |v: Option<Value>| match v {
        Some(v) => json_response(StatusCode::OK, &v),
        None => ApiError::not_served().into_response(),
    };
    match r {
        Route::Version => ok(Some(discovery::version())),
        Route::Health => (StatusCode::OK, "ok").into_response(),
        Route::Api => ok(Some(discovery::core_versions())),
        Route::Apis => ok(Some(discovery::group_list(&app.registry))),
        Route::Group(g) => ok(discovery::group(&app.registry, &g)),
        Route::ResourceList(g, v) => ok(discovery::resource_list(&app.registry, &g, &v)),
        Route::OpenApiV2 => {
            let accept = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("protobuf") {
                (
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    )],
                    discovery::openapi_v2_proto(&app.registry),
                )
                    .into_response()
            } else {
                ok(Some(discovery::openapi_v2(&app.registry)))
            }
        }
        Route::OpenApiV3 => ok(Some(discovery::openapi_v3_root(&app.registry))),
        Route::OpenApiV3Gv(g, v) => ok(discovery::openapi_v3_gv(&app.registry, &g, &v)),
        Route::Resource(mut ctx) => {
            ctx.user = user;
            let body = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(b) => b,
                Err(_) => return ApiError::too_large(MAX_BODY).into_response(),
            };
            let ctx = *ctx;
            let encoding = match crate::proto::negotiate(&ctx.headers, &ctx.res) {
                Ok(e) => e,
                Err(e) => return e.into_response(),
            };
            if parts.method == Method::GET
                && ctx.name.is_none()
                && !crate::authz::is_virtual(&ctx)
                && ctx
                    .query
                    .get("watch")
                    .is_some_and(|w| w == "true" || w == "1")
            {
                let resp = crate::watch::watch(app, ctx)
                    .await
                    .unwrap_or_else(|e| e.into_response());
                return crate::proto::respond(encoding, resp, true).await;
            }
            let resp = match resource(app, &ctx, parts.method, body).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            let mut resp = crate::proto::respond(encoding, resp, false).await;
            let warnings =
                std::mem::take(&mut *ctx.warnings.lock().unwrap_or_else(|e| e.into_inner()));
            for w in warnings {
                if let Ok(v) = header::HeaderValue::from_str(&crate::admission::warning_header(&w))
                {
                    resp.headers_mut().append(header::WARNING, v);
                }
            }
            resp
        }
    }
}

async fn resource(app: Arc<App>, ctx: &Ctx, method: Method, body: Bytes) -> ApiResult<Response> {
    // After authorization, as kube-apiserver's filters run before its routes: a subresource
    // the kind does not have is not found, never the object under another name.
    if !ctx.res.has_subresource(&ctx.sub) {
        return Err(ApiError::no_route());
    }
    if crate::pod_subresources::handles(ctx) {
        return crate::pod_subresources::serve(&app, ctx, method, &body).await;
    }
    let collection = ctx.name.is_none();
    if crate::authz::is_virtual(ctx) {
        if method != Method::POST {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow the method {method} on {}",
                ctx.res.plural
            )));
        }
        let v = crate::authz::serve_virtual(&app, ctx, &body)?;
        return Ok(json_response(StatusCode::CREATED, &v));
    }
    if method == Method::GET {
        ensure_fresh(&app, ctx).await?;
    }
    match (method, collection) {
        (Method::GET, true) => list(&app, ctx),
        (Method::GET, false) => get(&app, ctx),
        (Method::POST, true) => write::create(&app, ctx, &body).await,
        (Method::PUT, false) => write::update(&app, ctx, &body).await,
        (Method::PATCH, false) => write::patch_object(&app, ctx, &body).await,
        (Method::DELETE, false) => {
            let opts: Value = if body.is_empty() {
                json!({})
            } else if crate::proto::is_protobuf(&ctx.headers) {
                crate::proto::decode_request(&body, "meta.k8s.io/v1", "DeleteOptions")?
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            };
            let (code, v) = write::delete_retrying(&app, ctx, &opts).await?;
            Ok(json_response(code, &v))
        }
        (Method::DELETE, true) => write::delete_collection(&app, ctx).await,
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow the method {m} on {}",
            ctx.res.plural
        ))),
    }
}

/// The `resourceVersion` of a read, as kube-apiserver's storage parses it: empty and `0` mean
/// any revision, anything else must be a decimal uint64.
///
/// Errors: kube's message for the field, e.g. `resourceVersion: Invalid value: "abc":
/// strconv.ParseUint: parsing "abc": invalid syntax`.
fn parse_resource_version(rv: &str) -> Result<u64, String> {
    if rv.is_empty() {
        return Ok(0);
    }
    // Go's ParseUint takes digits only (no sign, unlike Rust's).
    let parsed = if rv.bytes().all(|b| b.is_ascii_digit()) {
        rv.parse::<u64>().map_err(|_| "value out of range")
    } else {
        Err("invalid syntax")
    };
    parsed.map_err(|why| {
        let quoted = Value::String(rv.to_string()).to_string();
        format!(
            "resourceVersion: Invalid value: {quoted}: strconv.ParseUint: parsing {quoted}: {why}"
        )
    })
}

/// The request's `resourceVersion` ([`parse_resource_version`]) with kube-apiserver's answer
/// to a malformed one: a list validates it (400 BadRequest); a get or a watch hands the watch
/// cache's parse error through unconverted, a 500 without a reason, except a get of events,
/// which kube does not cache, whose storage answers 400 like a list.
pub(crate) fn resource_version(ctx: &Ctx, watch: bool) -> ApiResult<u64> {
    let rv = ctx.query.get("resourceVersion").map_or("", String::as_str);
    parse_resource_version(rv).map_err(|field| {
        if !watch && (ctx.name.is_none() || ctx.res.plural == "events") {
            ApiError::bad_request(format!("invalid resource version: {field}"))
        } else {
            ApiError {
                code: 500,
                reason: "",
                message: field,
                details: None,
            }
        }
    })
}

/// A read with a `resourceVersion` newer than the store's waits for it (briefly), as
/// kube-apiserver's watch cache does; an exact list of a future revision fails at once.
async fn ensure_fresh(app: &App, ctx: &Ctx) -> ApiResult<()> {
    let Some(want) = i64::try_from(resource_version(ctx, false)?)
        .ok()
        .filter(|r| *r > 0)
    else {
        return Ok(());
    };
    let current = app.store.revision();
    if want <= current {
        return Ok(());
    }
    if ctx
        .query
        .get("resourceVersionMatch")
        .is_some_and(|m| m == "Exact")
    {
        return Err(ApiError::too_large_resource_version(want, current, 0));
    }
    crate::watch::wait_for_revision(&app.store, want, 1).await
}

/// The object as served in the requested version.
pub fn present(obj: &Value, res: &Resource) -> Value {
    if res.is_events_api() && obj["apiVersion"] == "v1" {
        return crate::convert::core_to_events(obj);
    }
    let mut o = obj.clone();
    o["apiVersion"] = json!(res.api_version());
    // As kube-apiserver's storage decoder: a CRD's defaults apply to stored objects on every
    // read too, so a default added to the schema later shows on objects stored before.
    if let Some(schema) = res.schema.as_deref() {
        ferroflux_schema::apply_defaults(&mut o, schema);
    }
    o
}

/// A stored object as the request's API sees it, for selectors (only Events convert).
pub fn view(obj: Value, res: &Resource) -> Value {
    if res.is_events_api() {
        present(&obj, res)
    } else {
        obj
    }
}

/// An object of the request's API in its stored form (only Events convert).
pub fn to_storage(obj: Value, res: &Resource) -> Value {
    if res.is_events_api() {
        crate::convert::events_to_core(&obj)
    } else {
        obj
    }
}

fn wants_table(ctx: &Ctx) -> bool {
    ctx.headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(table::wants_table)
}

/// The `meta.k8s.io` version when the client asked for metadata only (see
/// [`meta::partial_metadata_version`]).
pub fn wants_partial_metadata(ctx: &Ctx, list: bool) -> Option<String> {
    let accept = ctx.headers.get(header::ACCEPT)?.to_str().ok()?;
    meta::partial_metadata_version(accept, list).map(str::to_string)
}

/// The stored text as served in the requested version: as is when the versions agree and no
/// schema defaults apply (no parsing), otherwise converted (CRD versions use the `None`
/// strategy) and defaulted.
pub fn served_text(raw: &str, res: &Resource) -> String {
    if res.schema.is_none()
        && crate::store::raw_api_version(raw).as_deref() == Some(res.api_version().as_str())
    {
        raw.to_string()
    } else {
        let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        present(&v, res).to_string()
    }
}

fn raw_response(code: StatusCode, text: String) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn get(app: &App, ctx: &Ctx) -> ApiResult<Response> {
    let stored = app
        .store
        .get(&ctx.key())
        .ok_or_else(|| ApiError::not_found(ctx.target(ctx.name())))?;
    let table = wants_table(ctx) && ctx.sub.is_empty();
    if ctx.sub.is_empty()
        && let Some(version) = wants_partial_metadata(ctx, false)
    {
        return Ok(json_response(
            StatusCode::OK,
            &meta::partial_object_metadata(&stored.obj(), &version),
        ));
    }
    let obj = match ctx.sub.as_str() {
        "" | "status" if !table => {
            return Ok(raw_response(
                StatusCode::OK,
                served_text(&stored.raw, &ctx.res),
            ));
        }
        "" | "status" => present(&stored.obj(), &ctx.res),
        "scale" => write::scale_of(&ctx.res, &stored.obj())?,
        _ => return Err(ApiError::no_route()),
    };
    if table {
        let meta = json!({"resourceVersion": stored.rev.to_string()});
        return Ok(json_response(StatusCode::OK, &table_of(ctx, &[obj], meta)));
    }
    Ok(json_response(StatusCode::OK, &obj))
}

/// The Table of `objs`, their row objects as the request's `includeObject` asks.
pub fn table_of(ctx: &Ctx, objs: &[Value], meta: Value) -> Value {
    let mut t = table::table(&ctx.res, objs, meta);
    table::include_objects(&mut t, ctx.query.get("includeObject").map(String::as_str));
    t
}

/// The list prefix of a request (namespace-scoped or all).
pub fn list_prefix(ctx: &Ctx) -> String {
    match &ctx.ns {
        Some(ns) => format!("{}{ns}/", ctx.res.prefix()),
        None => ctx.res.prefix(),
    }
}

/// Parses the selectors of a request.
pub fn selectors(ctx: &Ctx) -> ApiResult<(LabelSelector, FieldSelector)> {
    let ls = LabelSelector::parse(
        ctx.query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let fs = FieldSelector::parse(
        ctx.query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or(""),
    )
    .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
    Ok((ls, fs))
}

fn list(app: &App, ctx: &Ctx) -> ApiResult<Response> {
    let (ls, fs) = selectors(ctx)?;
    let (rev, items) = app.store.list(&list_prefix(ctx));
    // Lists are served from the live index: any resourceVersion not newer than it is satisfied
    // ("0", NotOlderThan), but an older exact snapshot is not kept.
    if ctx
        .query
        .get("resourceVersionMatch")
        .is_some_and(|m| m == "Exact")
        && let Some(want) = ctx
            .query
            .get("resourceVersion")
            .and_then(|r| r.parse::<i64>().ok())
        && want != rev
    {
        return Err(ApiError::gone(format!(
            "too old resource version: {want} ({rev}); only the latest revision can be listed exactly"
        )));
    }
    let limit: usize = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = match ctx.query.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_continue(c)?),
        None => None,
    };
    let mut out = Vec::new();
    let mut next = None;
    let mut remaining = 0usize;
    let filter = !ls.is_empty() || !fs.is_empty();
    for (key, s) in items.iter() {
        if after.as_ref().is_some_and(|a| key.as_str() <= a.as_str()) {
            continue;
        }
        if filter {
            let o = view(s.obj(), &ctx.res);
            if !ls.matches(&o) || !fs.matches(&o) {
                continue;
            }
        }
        if out.len() >= limit {
            if next.is_none() {
                next = out.last().map(|(k, _): &(String, &Stored)| k.clone());
            }
            remaining += 1;
            continue;
        }
        out.push((key.clone(), s));
    }
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if let Some(k) = next {
        meta["continue"] = json!(encode_continue(&k));
        meta["remainingItemCount"] = json!(remaining);
    }
    if wants_table(ctx) {
        let objs: Vec<Value> = out
            .iter()
            .map(|(_, s)| present(&s.obj(), &ctx.res))
            .collect();
        return Ok(json_response(StatusCode::OK, &table_of(ctx, &objs, meta)));
    }
    if let Some(version) = wants_partial_metadata(ctx, true) {
        let items: Vec<Value> = out
            .iter()
            .map(|(_, s)| meta::partial_object_metadata(&s.obj(), &version))
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({"kind": "PartialObjectMetadataList",
                "apiVersion": format!("meta.k8s.io/{version}"),
                "metadata": meta, "items": items}),
        ));
    }
    if ctx.res.custom && meta.get("continue").is_none() {
        // kube serves custom objects as unstructured lists, whose metadata always carries the
        // (empty) continue token; typed lists, tables and metadata-only lists omit it.
        meta["continue"] = json!("");
    }
    // Assembled from the stored texts: a list of 10,000 objects parses none of them.
    let mut text =
        String::with_capacity(out.iter().map(|(_, s)| s.raw.len() + 1).sum::<usize>() + 256);
    text.push_str(&format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{meta},\"items\":[",
        json!(format!("{}List", ctx.res.kind)),
        json!(ctx.res.api_version())
    ));
    for (i, (_, s)) in out.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&served_text(&s.raw, &ctx.res));
    }
    text.push_str("]}");
    Ok(raw_response(StatusCode::OK, text))
}

fn encode_continue(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_continue(c: &str) -> ApiResult<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("invalid continue token"))
}

/// A context for a server-initiated operation on one object.
pub fn internal_ctx(res: Arc<Resource>, ns: &str, name: &str) -> Ctx {
    Ctx {
        res,
        ns: (!ns.is_empty()).then(|| ns.to_string()),
        name: Some(name.to_string()),
        sub: String::new(),
        query: HashMap::new(),
        headers: HeaderMap::new(),
        user: None,
        warnings: Default::default(),
    }
}
