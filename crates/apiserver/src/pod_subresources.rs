//! The pod subresources kubectl exec, attach, logs, port-forward and debug call: `exec`,
//! `attach`, `log`, `portforward` and `ephemeralcontainers`.
//!
//! This server runs no kubelet, so streams are never opened; the answers are kube-apiserver's
//! for a pod whose node cannot be reached: a pod with no node gets its 400 ("does not have a
//! host assigned") for exec, attach and port-forward and an empty log, a pod on a node that is
//! not registered gets the node's 404, and one on a registered node gets a 500 saying no kubelet
//! is reachable. Ephemeral containers are stored as kube-apiserver does (only
//! `spec.ephemeralContainers` changes, existing ones are frozen), so `kubectl debug` works.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::handlers::{App, Ctx, json_response, present};
use crate::patch::{self, PatchKind};
use crate::status::{ApiError, ApiResult, Cause, Target};

/// The pod subresources served here.
pub const SUBRESOURCES: &[&str] = &[
    "attach",
    "ephemeralcontainers",
    "exec",
    "log",
    "portforward",
];

/// Whether `ctx` names one of these subresources of a pod.
pub fn handles(ctx: &Ctx) -> bool {
    !ctx.res.custom
        && ctx.res.group.is_empty()
        && ctx.res.plural == "pods"
        && ctx.name.is_some()
        && SUBRESOURCES.contains(&ctx.sub.as_str())
}

fn not_allowed(method: &Method, ctx: &Ctx) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow the method {method} on pods/{}",
        ctx.sub
    ))
}

/// Serves a request [`handles`] accepted.
pub async fn serve(app: &App, ctx: &Ctx, method: Method, body: &Bytes) -> ApiResult<Response> {
    let stored = app
        .store
        .get(&ctx.key())
        .ok_or_else(|| ApiError::not_found(ctx.target(ctx.name())))?;
    let pod = present(&stored.obj(), &ctx.res);
    match (ctx.sub.as_str(), &method) {
        ("ephemeralcontainers", &Method::GET) => Ok(json_response(StatusCode::OK, &pod)),
        ("ephemeralcontainers", &Method::PUT | &Method::PATCH) => {
            ephemeral_update(app, ctx, &method, pod, body).await
        }
        ("log", &Method::GET) => {
            container(&pod, ctx.query.get("container"))?;
            if node_of(&pod).is_none() {
                // kube-apiserver streams nothing for a pod that no node runs yet.
                return Ok(
                    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
                );
            }
            Err(unreachable_node(app, &pod))
        }
        ("exec" | "attach", &Method::GET | &Method::POST) => {
            container(&pod, ctx.query.get("container"))?;
            Err(no_host(app, ctx, &pod))
        }
        ("portforward", &Method::GET | &Method::POST) => Err(no_host(app, ctx, &pod)),
        _ => Err(not_allowed(&method, ctx)),
    }
}

fn node_of(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// The stream error of a pod: no node, or a node no kubelet serves.
fn no_host(app: &App, ctx: &Ctx, pod: &Value) -> ApiError {
    if node_of(pod).is_none() {
        return ApiError::bad_request(format!("pod {} does not have a host assigned", ctx.name()));
    }
    unreachable_node(app, pod)
}

/// kube-apiserver looks the node up for its kubelet's address: a missing node is its 404,
/// and this server has no kubelet to dial for a node that exists.
fn unreachable_node(app: &App, pod: &Value) -> ApiError {
    let node = node_of(pod).unwrap_or("");
    let registered = app
        .registry
        .lookup("", "v1", "nodes")
        .is_some_and(|r| app.store.get(&r.key("", node)).is_some());
    if !registered {
        return ApiError::not_found(Target {
            resource: "nodes",
            group: "",
            name: node,
            kind: "Node",
        });
    }
    ApiError::internal(format!(
        "error dialing backend: no kubelet serves node {node:?} on this API server"
    ))
}

/// The names of a pod's containers, init and ephemeral ones included (`VisitContainers`).
fn container_names(pod: &Value) -> Vec<&str> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect()
}

/// kube-apiserver's `validateContainer`: the named container exists, or the pod has exactly one.
fn container(pod: &Value, wanted: Option<&String>) -> ApiResult<()> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    match wanted.filter(|c| !c.is_empty()) {
        Some(c) if container_names(pod).contains(&c.as_str()) => Ok(()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => match pod["spec"]["containers"].as_array().map_or(0, Vec::len) {
            1 => Ok(()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                container_names(pod).join(" ")
            ))),
        },
    }
}

/// `PUT` or `PATCH` of `pods/<name>/ephemeralcontainers`: the body (or the patched pod) only
/// contributes its `spec.ephemeralContainers`, which may add containers but not change or
/// remove existing ones.
async fn ephemeral_update(
    app: &App,
    ctx: &Ctx,
    method: &Method,
    pod: Value,
    body: &Bytes,
) -> ApiResult<Response> {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let parse = |b: &[u8]| -> ApiResult<Value> {
        serde_json::from_slice(b)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    };
    let new = if *method == Method::PUT {
        parse(body)?
    } else {
        let p = parse(body)?;
        match PatchKind::from_content_type(ct) {
            Some(PatchKind::Json) => patch::json_patch(&pod, &p).map_err(ApiError::bad_request)?,
            Some(PatchKind::Merge) => patch::merge_patch(&pod, &p),
            Some(PatchKind::Strategic) => {
                patch::strategic_merge(&pod, &p).map_err(ApiError::bad_request)?
            }
            _ => return Err(ApiError::unsupported_media_type(ct)),
        }
    };
    let old_list = pod["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_list = new["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let causes = validate_ephemeral(&pod, &old_list, &new_list);
    if !causes.is_empty() {
        return Err(ApiError::invalid(ctx.target(ctx.name()), causes));
    }
    let mut updated = pod;
    updated["spec"]["ephemeralContainers"] = Value::Array(new_list);
    let text = serde_json::to_vec(&updated)
        .map_err(|e| ApiError::internal(format!("encoding the pod: {e}")))?;
    let mut headers: HeaderMap = ctx.headers.clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let main = Ctx {
        res: ctx.res.clone(),
        ns: ctx.ns.clone(),
        name: ctx.name.clone(),
        sub: String::new(),
        query: ctx.query.clone(),
        headers,
        user: ctx.user.clone(),
        warnings: Default::default(),
    };
    crate::write::update(app, &main, &text).await
}

/// kube-apiserver's `ValidatePodEphemeralContainersUpdate`, for what kubectl can send:
/// existing ephemeral containers are frozen, new ones need a unique name and an image.
fn validate_ephemeral(pod: &Value, old: &[Value], new: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, o) in old.iter().enumerate() {
        let name = o["name"].as_str().unwrap_or("");
        match new.iter().position(|n| n["name"] == o["name"]) {
            None => causes.push(Cause {
                reason: "FieldValueForbidden",
                message: format!(
                    "Forbidden: existing ephemeral containers {name:?} may not be removed"
                ),
                field: "spec.ephemeralContainers".into(),
            }),
            Some(j) if new[j] != *o => causes.push(Cause {
                reason: "FieldValueForbidden",
                message: format!(
                    "Forbidden: existing ephemeral containers {name:?} may not be changed"
                ),
                field: format!("spec.ephemeralContainers[{i}]"),
            }),
            Some(_) => {}
        }
    }
    let regular: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in new.iter().enumerate() {
        if old.iter().any(|o| o["name"] == c["name"]) {
            seen.extend(c["name"].as_str());
            continue;
        }
        let field = format!("spec.ephemeralContainers[{i}]");
        match c["name"].as_str().filter(|n| !n.is_empty()) {
            None => causes.push(Cause::required(format!("{field}.name"))),
            Some(n) if regular.contains(&n) || seen.contains(&n) => causes.push(Cause {
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: {n:?}"),
                field: format!("{field}.name"),
            }),
            Some(n) => seen.push(n),
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("{field}.image")));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_container_is_named_or_the_only_one() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(container(&pod, Some(&"i".to_string())).is_ok());
        let e = container(&pod, None).expect_err("two containers");
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [i a b]"
        );
        let e = container(&pod, Some(&"x".to_string())).expect_err("unknown");
        assert_eq!(e.message, "container x is not valid for pod p");
    }

    #[test]
    fn ephemeral_containers_are_added_never_changed() {
        let pod = json!({"spec": {"containers": [{"name": "web"}]}});
        let dbg = json!({"name": "dbg", "image": "busybox"});
        assert!(validate_ephemeral(&pod, &[], std::slice::from_ref(&dbg)).is_empty());
        let changed = json!({"name": "dbg", "image": "alpine"});
        let c = validate_ephemeral(&pod, std::slice::from_ref(&dbg), &[changed]);
        assert_eq!(c[0].field, "spec.ephemeralContainers[0]");
        let c = validate_ephemeral(&pod, std::slice::from_ref(&dbg), &[]);
        assert!(c[0].message.contains("may not be removed"));
        let c = validate_ephemeral(&pod, &[], &[json!({"name": "web", "image": "x"})]);
        assert_eq!(c[0].reason, "FieldValueDuplicate");
    }
}
