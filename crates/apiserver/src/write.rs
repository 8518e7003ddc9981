//! Write handlers: create, update, patch (JSON, merge, strategic, apply), the scale
//! subresource, delete and deletecollection.

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::admission::Operation;
use crate::handlers::{
    App, Ctx, json_response, list_prefix, present, selectors, served_text, to_storage, view,
};
use crate::meta;
use crate::patch::{self, PatchKind};
use crate::registry::{Resource, crd_resources, crd_status, validate_crd};
use crate::ssa;
use crate::status::{ApiError, ApiResult, Cause, Target};
use crate::store::Stored;
use crate::table;

/// Parses a create/update body: JSON, or protobuf for built-in kinds. Other encodings (and
/// protobuf for custom resources, as in kube-apiserver) get 415.
fn parse_typed_body(ctx: &Ctx, body: &[u8]) -> ApiResult<Value> {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "" | "application/json" | "*/*" => parse_body(body),
        crate::proto::MEDIA_TYPE if !ctx.res.custom => {
            crate::proto::decode_request(body, &ctx.res.api_version(), &ctx.res.kind)
        }
        _ => Err(ApiError::unsupported_media_type(ct)),
    }
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

/// `POST` to a collection.
pub async fn create(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Response> {
    if !ctx.sub.is_empty() {
        return Err(ApiError::method_not_allowed(
            "create is not allowed on a subresource",
        ));
    }
    let mut obj = parse_typed_body(ctx, body)?;
    meta::check_type(&mut obj, &ctx.res)?;
    meta::check_namespace(&mut obj, &ctx.res, ctx.ns.as_deref())?;
    let (code, v) = commit_create(app, ctx, obj, Some(ctx.manager())).await?;
    Ok(json_response(code, &v))
}

fn check_namespace_open(app: &App, ctx: &Ctx, ns: &str) -> ApiResult<()> {
    if !ctx.res.namespaced {
        return Ok(());
    }
    let ns_res = app
        .registry
        .lookup("", "v1", "namespaces")
        .expect("namespaces are built in");
    match app.store.get(&ns_res.key("", ns)) {
        None => Err(ApiError::not_found(Target {
            resource: "namespaces",
            group: "",
            name: ns,
            kind: "Namespace",
        })),
        Some(s) if s.obj()["metadata"]["deletionTimestamp"].is_string() => {
            Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ctx.res.plural,
                s.obj()["metadata"]["name"].as_str().unwrap_or("")
            )))
        }
        Some(_) => Ok(()),
    }
}

/// Creates `obj` (type and namespace already checked). `manager` records managedFields for
/// a non-apply create.
async fn commit_create(
    app: &App,
    ctx: &Ctx,
    mut obj: Value,
    manager: Option<String>,
) -> ApiResult<(StatusCode, Value)> {
    let now = meta::now();
    if ctx.res.custom {
        integral_floats(&mut obj);
    }
    let name = meta::prepare_create(&mut obj, &ctx.res, &now)?;
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    check_namespace_open(app, ctx, &ns)?;
    if ctx.res.status
        && ctx.res.custom
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    apply_schema(ctx, &mut obj, None, &name)?;
    crate::defaults::apply(&ctx.res, &mut obj, true);
    let causes = builtin_causes(&ctx.res, &obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(ctx.target(&name), causes));
    }
    crate::defaults::allocate_service(&ctx.res, &mut obj, &app.store, &app.services)
        .map_err(|e| ApiError::internal(format!("Internal error occurred: {e}")))?;
    kind_hooks(ctx, &mut obj, None, &name, &now)?;
    crate::authz::check_rbac_write(app, ctx, &obj, None)?;
    admit(app, ctx, Operation::Create, &obj, None, &name).await?;
    crate::authz::fill_legacy_token(app, ctx, &mut obj);
    if let Some(m) = manager {
        let w = ssa::Writer {
            manager: &m,
            api_version: &ctx.res.api_version(),
            subresource: "",
            now: &now,
        };
        ssa::record_update(None, &mut obj, &w, ctx.hints());
    }
    if ctx.dry_run() {
        return Ok((StatusCode::CREATED, present(&obj, &ctx.res)));
    }
    let key = ctx.res.key(&ns, &name);
    let stored = put(app, key, to_storage(obj, &ctx.res), true, None)
        .await
        .map_err(|e| ApiError::from_store(e, ctx.target(&name)))?;
    after_write(app, ctx, &stored);
    if ctx.res.kind == "Namespace" && ctx.res.group.is_empty() {
        // The namespace exists either way; like kube-controller-manager's, this is best effort.
        if let Err(e) = crate::ensure_namespace_content(
            &app.store,
            &app.registry,
            &name,
            app.root_ca.as_deref(),
        ) {
            tracing::warn!(namespace = %name, error = %e, "default namespace content not created");
        }
    }
    Ok((StatusCode::CREATED, present(&stored.obj(), &ctx.res)))
}

/// Metadata rules, then the CRD schema (`old` is the stored object on an update, for
/// transition rules).
fn apply_schema(ctx: &Ctx, obj: &mut Value, old: Option<&Value>, name: &str) -> ApiResult<()> {
    let causes = meta::validate_metadata(obj);
    if !causes.is_empty() {
        return Err(ApiError::invalid(ctx.target(name), causes));
    }
    if let Some(s) = &ctx.res.schema {
        let admission = ferroflux_schema::admit(obj, s, old);
        let list: Vec<String> = admission
            .unknown_fields
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        // kube-apiserver's field validation: Strict refuses, Ignore drops silently, and Warn
        // (the default) drops with one warning per field.
        match ctx.query.get("fieldValidation").map(String::as_str) {
            _ if list.is_empty() => {}
            Some("Strict") => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    list.join(", "),
                    kind = ctx.res.kind,
                    v = ctx.res.version
                )));
            }
            Some("Ignore") => {}
            _ => ctx
                .warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(list),
        }
        let mut causes = admission.causes;
        causes.extend(scale_replicas_causes(obj, &ctx.res));
        if !causes.is_empty() {
            return Err(ApiError::invalid(ctx.target(name), causes));
        }
    }
    Ok(())
}

/// Turns integral floats (`1.0`) into integers, as kube's decoding of custom objects does
/// (Go writes a float64 1 as `1`), so they are stored and served as kube serves them.
fn integral_floats(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(integral_floats),
        Value::Array(items) => items.iter_mut().for_each(integral_floats),
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            // Beyond 2^53 a float no longer holds every integer exactly; kube keeps it a float.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < EXACT
            {
                *v = Value::from(f as i64);
            }
        }
        _ => {}
    }
}

/// The part of kube-apiserver's validation of built-in kinds that ferroflux carries, in its
/// words: a Pod and a Deployment's pod template need containers, a Deployment's template
/// labels must match its selector, and a CronJob's schedule needs five fields.
fn builtin_causes(res: &Resource, obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if res.custom {
        return out;
    }
    let containers = |spec: &Value, path: &str, out: &mut Vec<Cause>| {
        if spec["containers"].as_array().is_none_or(Vec::is_empty) {
            out.push(Cause::required(format!("{path}.containers")));
        }
    };
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => containers(&obj["spec"], "spec", &mut out),
        ("apps", "Deployment") => {
            let labels = &obj["spec"]["template"]["metadata"]["labels"];
            if let Some(selector) = obj["spec"]["selector"]["matchLabels"].as_object()
                && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            {
                out.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    labels,
                    "`selector` does not match template `labels`",
                ));
            }
            containers(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut out,
            );
        }
        ("batch", "CronJob") => {
            // The cron parser's own words; descriptors such as @hourly are single fields.
            if let Some(schedule) = obj["spec"]["schedule"].as_str()
                && !schedule.starts_with('@')
            {
                let fields: Vec<&str> = schedule.split_whitespace().collect();
                if fields.len() != 5 {
                    out.push(Cause::invalid(
                        "spec.schedule",
                        &json!(schedule),
                        &format!(
                            "expected exactly 5 fields, found {}: [{}]",
                            fields.len(),
                            fields.join(" ")
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// kube-apiserver's check of a custom resource's scale subresource: the value at
/// `specReplicasPath` must be a non-negative 32-bit integer; the cause names the path as the
/// CRD writes it (`.spec.replicas`).
fn scale_replicas_causes(obj: &Value, res: &Resource) -> Vec<Cause> {
    let Some((spec_path, _, _)) = res.scale.as_ref().filter(|_| res.custom) else {
        return Vec::new();
    };
    let pointer = spec_path.replace('.', "/");
    let Some(value) = obj.pointer(&pointer) else {
        return Vec::new();
    };
    let message = match value.as_i64() {
        Some(n) if n < 0 => "should be a non-negative integer".to_string(),
        Some(n) if n > i64::from(i32::MAX) => {
            format!("should be less than or equal to {}", i32::MAX)
        }
        _ => return Vec::new(),
    };
    vec![Cause::invalid(spec_path.clone(), value, &message)]
}

fn kind_hooks(
    ctx: &Ctx,
    obj: &mut Value,
    old: Option<&Value>,
    name: &str,
    now: &str,
) -> ApiResult<()> {
    if ctx.res.kind == "CustomResourceDefinition" && ctx.res.group == "apiextensions.k8s.io" {
        crd_resources(obj).map_err(|e| {
            ApiError::invalid(
                ctx.target(name),
                vec![Cause::invalid("spec", &Value::Null, &e.to_string())],
            )
        })?;
        let causes = validate_crd(obj, old);
        if !causes.is_empty() {
            return Err(ApiError::invalid(ctx.target(name), causes));
        }
        let old_conditions = obj["status"]["conditions"].clone();
        obj["status"] = crd_status(obj, now);
        if old_conditions.is_array() {
            obj["status"]["conditions"] = old_conditions;
        }
    }
    Ok(())
}

/// Runs the validating admission plugins, then the matching webhooks; warnings are kept for
/// the response headers.
async fn admit(
    app: &App,
    ctx: &Ctx,
    operation: Operation,
    obj: &Value,
    old: Option<&Value>,
    name: &str,
) -> ApiResult<()> {
    let request = crate::admission::Request {
        operation,
        user: ctx.user.as_deref(),
        group: &ctx.res.group,
        version: &ctx.res.version,
        kind: &ctx.res.kind,
        resource: &ctx.res.plural,
        subresource: &ctx.sub,
        namespace: obj["metadata"]["namespace"].as_str().unwrap_or(""),
        name,
        object: obj,
        old_object: old,
        dry_run: ctx.dry_run(),
    };
    match app.validators.admit(&request) {
        Ok(w) => ctx
            .warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(w),
        Err(d) => {
            let reason = if d.code == 403 { "Forbidden" } else { "" };
            return Err(ApiError::webhook_denial(d.code, reason, d.message));
        }
    }
    crate::webhook::admit(app, ctx, &request).await
}

/// Effects of a committed write on the server itself (serving CRDs).
fn after_write(app: &App, ctx: &Ctx, stored: &Stored) {
    crate::authz::after_cluster_role_change(app, ctx);
    if ctx.res.kind != "CustomResourceDefinition" || ctx.res.group != "apiextensions.k8s.io" {
        return;
    }
    let obj = &stored.obj();
    if obj["metadata"]["deletionTimestamp"].is_null()
        && let Err(e) = app.registry.install_crd(obj)
    {
        tracing::warn!(crd = %obj["metadata"]["name"], error = %e, "CRD not served");
    }
}

/// Stores on a blocking thread.
pub async fn put(
    app: &App,
    key: String,
    obj: Value,
    create: bool,
    expected: Option<i64>,
) -> Result<Stored, crate::store::StoreError> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.put(&key, obj, create, expected))
        .await
        .unwrap_or_else(|e| {
            Err(crate::store::StoreError::NotFound(format!(
                "write task failed: {e}"
            )))
        })
}

async fn remove(
    app: &App,
    key: String,
    expected: Option<i64>,
) -> Result<Stored, crate::store::StoreError> {
    let store = app.store.clone();
    tokio::task::spawn_blocking(move || store.delete(&key, expected))
        .await
        .unwrap_or_else(|e| {
            Err(crate::store::StoreError::NotFound(format!(
                "delete task failed: {e}"
            )))
        })
}

fn body_rv(obj: &Value) -> ApiResult<Option<i64>> {
    match obj["metadata"]["resourceVersion"].as_str() {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {s:?}"))),
    }
}

/// Whether a failed write lost a race with another writer (and may be retried on fresh state).
fn lost_race(e: &ApiError) -> bool {
    (e.code == 409 && e.reason == "Conflict" && e.message.contains("the object has been modified"))
        || e.reason == "AlreadyExists"
}

/// Retries a write that lost a race, as kube-apiserver's update loop does: a patch or an
/// unconditional update applies to whatever is current. Preconditions the client gave still
/// fail (they are checked again on each attempt).
async fn retrying<'a, F, Fut>(f: F) -> ApiResult<Response>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ApiResult<Response>> + 'a,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if lost_race(&e) && attempt < 64 => attempt += 1,
            other => return other,
        }
    }
}

/// `PUT` of an object (or its status or scale).
pub async fn update(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Response> {
    retrying(|| update_once(app, ctx, body)).await
}

async fn update_once(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Response> {
    let mut obj = parse_typed_body(ctx, body)?;
    let old = app
        .store
        .get(&ctx.key())
        .ok_or_else(|| ApiError::not_found(ctx.target(ctx.name())))?;
    if ctx.sub == "scale" {
        return scale_update(app, ctx, old, &obj).await;
    }
    meta::check_type(&mut obj, &ctx.res)?;
    meta::check_namespace(&mut obj, &ctx.res, ctx.ns.as_deref())?;
    if obj["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != ctx.name())
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let rv = body_rv(&obj)?;
    if rv.is_some_and(|rv| rv != old.rev) {
        return Err(ApiError::from_store(
            crate::store::StoreError::Conflict {
                key: ctx.key(),
                expected: rv.unwrap_or(0),
                current: old.rev,
            },
            ctx.target(ctx.name()),
        ));
    }
    let (code, v) = commit_update(app, ctx, old, obj, Some(ctx.manager())).await?;
    Ok(json_response(code, &v))
}

/// Writes `new` over `old`: metadata rules, schema, managedFields, no-op detection, finalizer
/// completion, optimistic concurrency against `old`'s revision.
async fn commit_update(
    app: &App,
    ctx: &Ctx,
    old: Stored,
    mut new: Value,
    manager: Option<String>,
) -> ApiResult<(StatusCode, Value)> {
    let name = ctx.name().to_string();
    let now = meta::now();
    let old_obj = present(&old.obj(), &ctx.res);
    if ctx.res.custom {
        integral_floats(&mut new);
    }
    // Before the generation and no-op checks, which compare defaulted objects as kube does.
    crate::defaults::apply(&ctx.res, &mut new, false);
    crate::defaults::keep_allocated(&ctx.res, &mut new, &old_obj);
    meta::prepare_update(&old_obj, &mut new, &ctx.res, &ctx.sub)?;
    // As kube-apiserver's RBAC storage: the escalation check comes before validation.
    crate::authz::check_rbac_write(app, ctx, &new, Some(&old_obj))?;
    // As kube-apiserver: the new object's own faults first, then what may not change.
    let mut frozen = if ctx.sub.is_empty() {
        let mut causes = meta::data_key_causes(&new, &ctx.res);
        causes.extend(builtin_causes(&ctx.res, &new));
        causes
    } else {
        Vec::new()
    };
    frozen.extend(meta::immutable_changes(&old_obj, &new, &ctx.res));
    if !frozen.is_empty() {
        return Err(ApiError::invalid(ctx.target(&name), frozen));
    }
    apply_schema(ctx, &mut new, Some(&old_obj), &name)?;
    kind_hooks(ctx, &mut new, Some(&old_obj), &name, &now)?;
    admit(app, ctx, Operation::Update, &new, Some(&old_obj), &name).await?;
    if let Some(m) = manager {
        let av = ctx.res.api_version();
        let w = ssa::Writer {
            manager: &m,
            api_version: &av,
            subresource: &ctx.sub,
            now: &now,
        };
        ssa::record_update(Some(&old_obj), &mut new, &w, ctx.hints());
    }
    new["metadata"]["resourceVersion"] = json!(old.rev.to_string());
    // A write that changes nothing but managedFields timestamps is a no-op, as in
    // kube-apiserver: no new revision, no event, and repeated applies compare equal.
    if without_times(&new) == without_times(&old_obj) {
        return Ok((StatusCode::OK, present(&old_obj, &ctx.res)));
    }
    if ctx.dry_run() {
        return Ok((StatusCode::OK, present(&new, &ctx.res)));
    }
    let key = ctx.key();
    if new["metadata"]["deletionTimestamp"].is_string() && !meta::has_finalizers(&new) {
        let gone = remove(app, key, Some(old.rev))
            .await
            .map_err(|e| ApiError::from_store(e, ctx.target(&name)))?;
        after_delete(app, ctx, &gone.obj(), "Background");
        return Ok((StatusCode::OK, present(&new, &ctx.res)));
    }
    let stored = put(app, key, to_storage(new, &ctx.res), false, Some(old.rev))
        .await
        .map_err(|e| ApiError::from_store(e, ctx.target(&name)))?;
    after_write(app, ctx, &stored);
    let served: Value =
        serde_json::from_str(&served_text(&stored.raw, &ctx.res)).unwrap_or(Value::Null);
    Ok((StatusCode::OK, served))
}

fn without_times(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(entries) = o["metadata"]["managedFields"].as_array_mut() {
        for e in entries {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    o
}

fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => ferroflux_gocompat::yaml::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("the apply body is not valid YAML: {e}")))?,
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the apply body must be an object"));
    }
    Ok(v)
}

/// `PATCH` of an object (or its status or scale), by content type.
pub async fn patch_object(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Response> {
    retrying(|| patch_once(app, ctx, body)).await
}

async fn patch_once(app: &App, ctx: &Ctx, body: &[u8]) -> ApiResult<Response> {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchKind::from_content_type(ct)
        .filter(|kind| !(*kind == PatchKind::Strategic && ctx.res.custom))
        .ok_or_else(|| ApiError::unsupported_patch_type(ctx.res.custom))?;
    let old = app.store.get(&ctx.key());
    if kind == PatchKind::Apply {
        return apply_patch(app, ctx, old, body).await;
    }
    let old = old.ok_or_else(|| ApiError::not_found(ctx.target(ctx.name())))?;
    // kube prefixes the decoder's error for JSON and merge patches, not for strategic ones.
    let p: Value = patch::parse_json(body).map_err(|e| {
        ApiError::bad_request(match kind {
            PatchKind::Strategic => e.to_string(),
            _ => format!("error decoding patch: {e}"),
        })
    })?;
    let base = if ctx.sub == "scale" {
        scale_of(&ctx.res, &old.obj())?
    } else {
        present(&old.obj(), &ctx.res)
    };
    let patched = match kind {
        PatchKind::Json => patch::json_patch(&base, &p).map_err(|e| match e {
            patch::JsonPatchError::Decode(msg) => ApiError::bad_request(msg),
            patch::JsonPatchError::Apply(_) => ApiError::patch_not_applicable(),
        })?,
        PatchKind::Merge => patch::merge_patch(&base, &p),
        PatchKind::Strategic => patch::strategic_merge(&base, &p).map_err(ApiError::bad_request)?,
        PatchKind::Apply => unreachable!("handled above"),
    };
    if ctx.sub == "scale" {
        return scale_update(app, ctx, old, &patched).await;
    }
    let mut new = patched;
    if !new.is_object() || !new["metadata"].is_object() {
        return Err(ApiError::bad_request(
            "the patched object is not an object with metadata",
        ));
    }
    meta::check_type(&mut new, &ctx.res)?;
    meta::check_namespace(&mut new, &ctx.res, ctx.ns.as_deref())?;
    if new["metadata"]["name"].as_str() != Some(ctx.name()) {
        return Err(ApiError::bad_request(
            "a patch may not change the object's name",
        ));
    }
    let rv = body_rv(&new)?;
    if rv.is_some_and(|rv| rv != old.rev) {
        return Err(ApiError::conflict(
            ctx.target(ctx.name()),
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    let (code, v) = commit_update(app, ctx, old, new, Some(ctx.manager())).await?;
    Ok(json_response(code, &v))
}

async fn apply_patch(
    app: &App,
    ctx: &Ctx,
    old: Option<Stored>,
    body: &[u8],
) -> ApiResult<Response> {
    let manager = ctx
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request(
                "PATCH with application/apply-patch+yaml requires the fieldManager parameter",
            )
        })?;
    let force = ctx.query.get("force").is_some_and(|f| f == "true");
    if old.is_none() {
        // Apply creates only the object itself, and only for a user who may also create it.
        if !ctx.sub.is_empty() {
            return Err(ApiError::not_found(ctx.target(ctx.name())));
        }
        crate::authz::authorize_create_on_apply(app, ctx)?;
    }
    let mut config = parse_apply_body(body)?;
    if ctx.res.custom {
        integral_floats(&mut config);
    }
    meta::check_type(&mut config, &ctx.res)?;
    meta::check_namespace(&mut config, &ctx.res, ctx.ns.as_deref())?;
    if config["metadata"]["name"].as_str() != Some(ctx.name()) {
        return Err(ApiError::bad_request(
            "the name of the applied object does not match the name on the URL",
        ));
    }
    let now = meta::now();
    let av = ctx.res.api_version();
    let w = ssa::Writer {
        manager: &manager,
        api_version: &av,
        subresource: &ctx.sub,
        now: &now,
    };
    let live = match &old {
        Some(o) => present(&o.obj(), &ctx.res),
        None => {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), json!(ctx.name()));
            if ctx.res.namespaced {
                m.insert("namespace".into(), json!(ctx.ns()));
            }
            json!({"apiVersion": av, "kind": ctx.res.kind, "metadata": m})
        }
    };
    let merged = ssa::apply(&live, &config, &w, force, ctx.hints()).map_err(|conflicts| {
        let mut e = ApiError::conflict(ctx.target(ctx.name()), "");
        e.message = ssa::conflict_message(&conflicts);
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager_label()), "field": c.field}))
            .collect();
        // As kube's apply conflicts: the details name nothing but the causes.
        e.details = Some(json!({"causes": causes}));
        e
    })?;
    let (code, v) = match old {
        Some(old) => commit_update(app, ctx, old, merged, None).await?,
        None => commit_create(app, ctx, merged, None).await?,
    };
    Ok(json_response(code, &v))
}

/// `autoscaling/v1` Scale of an object.
pub fn scale_of(res: &Resource, obj: &Value) -> ApiResult<Value> {
    let Some((spec_path, status_path, selector_path)) = &res.scale else {
        return Err(ApiError::no_route());
    };
    let replicas = table::json_path(obj, spec_path);
    let status_replicas = table::json_path(obj, status_path);
    let selector = selector_path
        .as_ref()
        .map(|p| table::json_path(obj, p))
        .unwrap_or(Value::Null);
    let m = &obj["metadata"];
    let mut status = json!({"replicas": status_replicas.as_i64().unwrap_or(0)});
    if let Some(s) = selector.as_str() {
        status["selector"] = json!(s);
    }
    Ok(json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": replicas.as_i64().unwrap_or(0)}, "status": status}))
}

fn set_path(obj: &mut Value, path: &str, v: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for s in &segs[..segs.len() - 1] {
        if !cur[*s].is_object() {
            cur[*s] = json!({});
        }
        cur = &mut cur[*s];
    }
    cur[segs[segs.len() - 1]] = v;
}

async fn scale_update(app: &App, ctx: &Ctx, old: Stored, scale: &Value) -> ApiResult<Response> {
    let Some((spec_path, _, _)) = &ctx.res.scale else {
        return Err(ApiError::no_route());
    };
    let replicas = scale["spec"]["replicas"].clone();
    if !replicas.is_i64() || replicas.as_i64().is_some_and(|r| r < 0) {
        return Err(ApiError::invalid(
            Target {
                resource: "scale",
                group: "autoscaling",
                name: ctx.name(),
                kind: "Scale",
            },
            vec![Cause::invalid(
                "spec.replicas",
                &replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = old.obj();
    set_path(&mut new, spec_path, replicas);
    let main = Ctx {
        res: ctx.res.clone(),
        ns: ctx.ns.clone(),
        name: ctx.name.clone(),
        sub: String::new(),
        query: ctx.query.clone(),
        headers: ctx.headers.clone(),
        user: ctx.user.clone(),
        warnings: Default::default(),
    };
    let (_, v) = commit_update(app, &main, old, new, Some(ctx.manager())).await?;
    Ok(json_response(StatusCode::OK, &scale_of(&ctx.res, &v)?))
}

/// Deletes (or, with finalizers, marks for deletion) the object of `ctx`.
pub async fn delete_object(app: &App, ctx: &Ctx, opts: &Value) -> ApiResult<(StatusCode, Value)> {
    let name = ctx.name().to_string();
    let old = app
        .store
        .get(&ctx.key())
        .ok_or_else(|| ApiError::not_found(ctx.target(&name)))?;
    let old_obj = old.obj();
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str()
        && old_obj["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::conflict(
            ctx.target(&name),
            "Precondition failed: UID in precondition does not match",
        ));
    }
    if let Some(rv) = pre["resourceVersion"].as_str()
        && rv != old.rev.to_string()
    {
        return Err(ApiError::conflict(
            ctx.target(&name),
            "Precondition failed: ResourceVersion in precondition does not match",
        ));
    }
    let dry = ctx.dry_run()
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let policy = opts["propagationPolicy"].as_str().unwrap_or(
        if opts["orphanDependents"].as_bool() == Some(true) {
            "Orphan"
        } else {
            "Background"
        },
    );
    let is_ns = ctx.res.kind == "Namespace" && ctx.res.group.is_empty();
    if old_obj["metadata"]["deletionTimestamp"].is_string() {
        return Ok((StatusCode::OK, present(&old_obj, &ctx.res)));
    }
    if dry {
        return Ok((StatusCode::OK, present(&old_obj, &ctx.res)));
    }
    let foreground = policy == "Foreground" && crate::gc::has_dependents(app, &old_obj);
    if is_ns || meta::has_finalizers(&old_obj) || foreground {
        let mut new = old_obj.clone();
        new["metadata"]["deletionTimestamp"] = json!(meta::now());
        new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        // As kube-apiserver: marking for deletion changes what the object's controllers must
        // do, so the generation moves (controllers filtering on it see the deletion).
        if let Some(generation) = new["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
            new["metadata"]["generation"] = json!(generation.saturating_add(1));
        }
        if foreground {
            let mut f: Vec<Value> = new["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            f.push(json!("foregroundDeletion"));
            new["metadata"]["finalizers"] = json!(f);
        }
        if is_ns {
            if !new["status"].is_object() {
                new["status"] = json!({});
            }
            new["status"]["phase"] = json!("Terminating");
        }
        let stored = put(app, ctx.key(), new, false, Some(old.rev))
            .await
            .map_err(|e| ApiError::from_store(e, ctx.target(&name)))?;
        if is_ns {
            crate::gc::spawn_namespace_cleanup(app, name.clone());
        }
        if foreground {
            crate::gc::spawn_foreground(app, ctx.res.clone(), Arc::new(stored.obj()));
        }
        return Ok((StatusCode::OK, present(&stored.obj(), &ctx.res)));
    }
    let gone = remove(app, ctx.key(), Some(old.rev))
        .await
        .map_err(|e| ApiError::from_store(e, ctx.target(&name)))?;
    let gone = gone.obj();
    after_delete(app, ctx, &gone, policy);
    if ctx.res.custom {
        // kube's custom-resource store does not return the deleted object but a Success
        // status naming it (its `kind` holds the resource, as kube writes it).
        return Ok((
            StatusCode::OK,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": gone["metadata"]["name"], "group": ctx.res.group,
                    "kind": ctx.res.plural, "uid": gone["metadata"]["uid"]}}),
        ));
    }
    Ok((StatusCode::OK, present(&gone, &ctx.res)))
}

/// [`delete_object`], retried when it loses a race with another writer.
pub async fn delete_retrying(app: &App, ctx: &Ctx, opts: &Value) -> ApiResult<(StatusCode, Value)> {
    let mut attempt = 0;
    loop {
        match delete_object(app, ctx, opts).await {
            Err(e) if lost_race(&e) && attempt < 64 => attempt += 1,
            other => return other,
        }
    }
}

/// Effects of a completed deletion: CRDs stop being served (their objects go), dependents are
/// collected or orphaned.
fn after_delete(app: &App, ctx: &Ctx, obj: &Value, policy: &str) {
    crate::authz::after_cluster_role_change(app, ctx);
    if ctx.res.kind == "CustomResourceDefinition" && ctx.res.group == "apiextensions.k8s.io" {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let served = app.registry.remove_crd(name);
        // Custom objects live under a root of their own, so this prefix holds exactly the
        // CRD's objects (also for a CRD that was stored but never served).
        let defined = crd_resources(obj).unwrap_or_default();
        if let Some(r) = served.first().or(defined.first()) {
            let (_, items) = app.store.list(&r.prefix());
            for (key, _) in items {
                let _ = app.store.delete(&key, None);
            }
        }
    }
    crate::gc::collect_dependents(app, obj, policy);
}

/// `DELETE` of a collection (with selectors).
pub async fn delete_collection(app: &App, ctx: &Ctx) -> ApiResult<Response> {
    let (ls, fs) = selectors(ctx)?;
    let (_, items) = app.store.list(&list_prefix(ctx));
    let mut deleted = Vec::new();
    for (_, s) in items {
        let o = view(s.obj(), &ctx.res);
        if !ls.matches(&o) || !fs.matches(&o) {
            continue;
        }
        let o = s.obj();
        let (name, ns) = meta::name_of(&o);
        let one = Ctx {
            res: ctx.res.clone(),
            ns: (!ns.is_empty()).then(|| ns.to_string()),
            name: Some(name.to_string()),
            sub: String::new(),
            query: ctx.query.clone(),
            headers: ctx.headers.clone(),
            user: ctx.user.clone(),
            warnings: Default::default(),
        };
        match delete_object(app, &one, &json!({})).await {
            Ok((_, v)) => deleted.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let v = json!({"kind": format!("{}List", ctx.res.kind), "apiVersion": ctx.res.api_version(),
        "metadata": {"resourceVersion": app.store.revision().to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apply_body_with_an_alias_bomb_is_a_bad_request() {
        let bomb = include_str!("../../gocompat/testdata/alias-bomb.yaml");
        let start = std::time::Instant::now();
        let err = parse_apply_body(bomb.as_bytes()).expect_err("bomb");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "the apply body is not valid YAML: yaml: document contains excessive aliasing"
        );
    }
}
