//! ValidatingWebhookConfiguration: which webhooks a write must pass (pure), the
//! `admission.k8s.io/v1` AdmissionReview sent to them, and the HTTPS call (caBundle,
//! timeout, failurePolicy).

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::admission::{Operation, Request};

/// One webhook a write must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `webhooks[].name`.
    pub name: String,
    /// HTTPS URL (`clientConfig.url`; a `service` reference cannot be reached here and fails).
    pub url: Option<String>,
    /// PEM CA bundle (`clientConfig.caBundle`, decoded).
    pub ca_pem: Option<String>,
    /// `timeoutSeconds` (default 10).
    pub timeout: Duration,
    /// `failurePolicy: Ignore` (default Fail).
    pub ignore_failure: bool,
}

fn has_or_star(list: &Value, want: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|s| s == "*" || s == want)
}

fn resource_matches(list: &Value, resource: &str, sub: &str) -> bool {
    let combined = if sub.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{sub}")
    };
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| match r.split_once('/') {
            None => sub.is_empty() && (r == "*" || r == resource),
            Some((res, s)) => {
                (res == "*" || res == resource) && (s == "*" || s == sub) && !sub.is_empty()
                    || r == combined
            }
        })
}

fn rule_matches(rule: &Value, req: &Request<'_>) -> bool {
    let op = match req.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
    };
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => req.namespace.is_empty(),
        "Namespaced" => !req.namespace.is_empty(),
        _ => true,
    };
    has_or_star(&rule["operations"], op)
        && has_or_star(&rule["apiGroups"], req.group)
        && has_or_star(&rule["apiVersions"], req.version)
        && resource_matches(&rule["resources"], req.resource, req.subresource)
        && scope_ok
}

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    selector.is_null() || crate::rbac::labels_match(selector, labels)
}

/// The webhooks of `configs` (ValidatingWebhookConfiguration objects) that `req` must pass;
/// `namespace_labels` are the labels of the request's namespace (of the object itself for a
/// Namespace). Writes of webhook configurations themselves are never sent to webhooks.
pub fn select(configs: &[Value], req: &Request<'_>, namespace_labels: &Value) -> Vec<Call> {
    if req.group == "admissionregistration.k8s.io" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in configs {
        for w in c["webhooks"].as_array().into_iter().flatten() {
            let rules = w["rules"].as_array().into_iter().flatten();
            if !rules.into_iter().any(|r| rule_matches(r, req)) {
                continue;
            }
            if (!req.namespace.is_empty() || req.kind == "Namespace")
                && !selector_matches(&w["namespaceSelector"], namespace_labels)
            {
                continue;
            }
            if !selector_matches(&w["objectSelector"], &req.object["metadata"]["labels"]) {
                continue;
            }
            let cc = &w["clientConfig"];
            let ca_pem = cc["caBundle"].as_str().and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok())
            });
            out.push(Call {
                name: w["name"].as_str().unwrap_or("").to_string(),
                url: cc["url"].as_str().map(String::from),
                ca_pem,
                timeout: Duration::from_secs(
                    w["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30),
                ),
                ignore_failure: w["failurePolicy"] == "Ignore",
            });
        }
    }
    out
}

/// The AdmissionReview request body.
pub fn review(req: &Request<'_>, uid: &str) -> Value {
    let op = match req.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
    };
    let user = req.user.map(|u| {
        let mut v = json!({"username": u.name, "groups": u.groups});
        if !u.uid.is_empty() {
            v["uid"] = json!(u.uid);
        }
        if !u.extra.is_empty() {
            v["extra"] = json!(u.extra);
        }
        v
    });
    let kind = json!({"group": req.group, "version": req.version, "kind": req.kind});
    let resource = json!({"group": req.group, "version": req.version, "resource": req.resource});
    let mut r = json!({
        "uid": uid, "kind": kind, "resource": resource,
        "requestKind": kind, "requestResource": resource,
        "name": req.name, "operation": op,
        "userInfo": user.unwrap_or_else(|| json!({})),
        "object": req.object, "oldObject": req.old_object,
        "dryRun": req.dry_run,
    });
    if !req.subresource.is_empty() {
        r["subResource"] = json!(req.subresource);
    }
    if !req.namespace.is_empty() {
        r["namespace"] = json!(req.namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": r})
}

/// What a webhook answered: allowed with warnings, or denied with code and message.
pub fn verdict(response: &Value) -> Result<Vec<String>, (u16, String, String)> {
    let r = &response["response"];
    let warnings: Vec<String> = r["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(String::from))
        .collect();
    if r["allowed"].as_bool() == Some(true) {
        return Ok(warnings);
    }
    let code = r["status"]["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400);
    let reason = r["status"]["reason"].as_str().unwrap_or("").to_string();
    let message = r["status"]["message"]
        .as_str()
        .filter(|m| !m.is_empty())
        .or_else(|| r["status"]["reason"].as_str())
        .unwrap_or("")
        .to_string();
    Err((code, reason, message))
}

/// Why a webhook could not be called or answered nothing usable; the text is what
/// kube-apiserver reports (and logs under failurePolicy Ignore).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The webhook names a Service, which the embedded server cannot reach.
    #[error("clientConfig.service cannot be reached by the embedded server; use clientConfig.url")]
    ServiceUnreachable,
    /// The URL is not HTTPS.
    #[error("webhook URL {0:?} must use https")]
    NotHttps(String),
    /// The CA bundle is not PEM.
    #[error("caBundle is not PEM: {0}")]
    CaBundle(reqwest::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
    /// The request failed or timed out.
    #[error("failed to call webhook: Post {url:?}: {error}")]
    Send {
        /// The webhook's URL.
        url: String,
        /// What failed.
        error: reqwest::Error,
    },
    /// The webhook answered with a non-success status.
    #[error("failed to call webhook: the server responded {0}")]
    Status(reqwest::StatusCode),
    /// The answer is not JSON.
    #[error("received invalid webhook response: {0}")]
    Response(reqwest::Error),
}

/// Calls one webhook.
///
/// Errors: the URL is missing or not HTTPS, the CA bundle is not PEM, the call failed or
/// timed out, or the answer is not an AdmissionReview (the caller applies failurePolicy).
pub async fn call(c: &Call, body: &Value) -> Result<Value, CallError> {
    let url = c.url.as_deref().ok_or(CallError::ServiceUnreachable)?;
    if !url.starts_with("https://") {
        return Err(CallError::NotHttps(url.to_string()));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(c.timeout);
    if let Some(pem) = &c.ca_pem {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(CallError::CaBundle)?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(CallError::Client)?;
    let resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|error| CallError::Send {
            url: url.to_string(),
            error,
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(CallError::Status(status));
    }
    resp.json::<Value>().await.map_err(CallError::Response)
}

/// Runs the ValidatingWebhookConfigurations that match a write (after the in-process
/// validators); warnings are kept for the response headers.
///
/// Errors: a webhook denied (its code, `admission webhook "<name>" denied the request: ...`),
/// or failed with `failurePolicy: Fail` (500, `failed calling webhook "<name>": ...`).
pub async fn admit(
    app: &crate::handlers::App,
    ctx: &crate::handlers::Ctx,
    req: &Request<'_>,
) -> crate::status::ApiResult<()> {
    use crate::status::ApiError;
    let prefix = "/registry/admissionregistration.k8s.io/validatingwebhookconfigurations/";
    let configs: Vec<Value> = app
        .store
        .list(prefix)
        .1
        .into_iter()
        .map(|(_, s)| s.obj())
        .collect();
    if configs.is_empty() {
        return Ok(());
    }
    let ns_labels = if req.kind == "Namespace" && req.group.is_empty() {
        req.object["metadata"]["labels"].clone()
    } else {
        app.registry
            .lookup("", "v1", "namespaces")
            .and_then(|r| app.store.get(&r.key("", req.namespace)))
            .map(|s| s.obj()["metadata"]["labels"].clone())
            .unwrap_or(Value::Null)
    };
    for c in select(&configs, req, &ns_labels) {
        let body = review(req, &uuid::Uuid::new_v4().to_string());
        match call(&c, &body).await {
            Ok(resp) => match verdict(&resp) {
                Ok(w) => ctx
                    .warnings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(w),
                Err((code, reason, message)) => {
                    let msg = format!(
                        "admission webhook {:?} denied the request: {message}",
                        c.name
                    );
                    return Err(ApiError::webhook_denial(code, &reason, msg));
                }
            },
            Err(e) if c.ignore_failure => {
                tracing::warn!(webhook = %c.name, error = %e, "webhook failed; failurePolicy Ignore");
            }
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "Internal error occurred: failed calling webhook {:?}: {e}",
                    c.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(obj: &'a Value, resource: &'a str, sub: &'a str, ns: &'a str) -> Request<'a> {
        Request {
            operation: Operation::Create,
            user: None,
            group: "apps",
            version: "v1",
            kind: "Deployment",
            resource,
            subresource: sub,
            namespace: ns,
            name: "web",
            object: obj,
            old_object: None,
            dry_run: false,
        }
    }

    fn config(rules: Value, extra: Value) -> Value {
        let mut w = json!({"name": "w.example.com", "rules": rules,
            "clientConfig": {"url": "https://127.0.0.1:1/validate",
                "caBundle": base64::engine::general_purpose::STANDARD.encode("PEM")}});
        if let (Some(m), Some(e)) = (w.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        json!({"webhooks": [w]})
    }

    #[test]
    fn selection_follows_rules_scope_and_selectors() {
        let obj = json!({"metadata": {"labels": {"tier": "web"}}});
        let rule = |ops: &str, res: &str, scope: &str| json!([{"operations": [ops], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": [res], "scope": scope}]);
        let labels = json!({"team": "a"});
        let picked = |c: Value, r: &Request<'_>| select(&[c], r, &labels).len();
        let r = req(&obj, "deployments", "", "team-a");
        assert_eq!(
            picked(config(rule("CREATE", "deployments", "*"), json!({})), &r),
            1
        );
        assert_eq!(
            picked(config(rule("UPDATE", "deployments", "*"), json!({})), &r),
            0
        );
        assert_eq!(
            picked(config(rule("*", "*", "Namespaced"), json!({})), &r),
            1
        );
        assert_eq!(picked(config(rule("*", "*", "Cluster"), json!({})), &r), 0);
        assert_eq!(picked(config(rule("*", "services", "*"), json!({})), &r), 0);
        let scale = req(&obj, "deployments", "scale", "team-a");
        assert_eq!(
            picked(config(rule("*", "deployments", "*"), json!({})), &scale),
            0
        );
        assert_eq!(
            picked(config(rule("*", "deployments/*", "*"), json!({})), &scale),
            1
        );
        assert_eq!(
            picked(config(rule("*", "*/scale", "*"), json!({})), &scale),
            1
        );
        let ns_sel = json!({"namespaceSelector": {"matchLabels": {"team": "b"}}});
        assert_eq!(picked(config(rule("*", "*", "*"), ns_sel), &r), 0);
        let obj_sel = json!({"objectSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
            "failurePolicy": "Ignore", "timeoutSeconds": 3});
        let calls = select(&[config(rule("*", "*", "*"), obj_sel)], &r, &labels);
        assert_eq!(calls.len(), 1);
        assert!(calls[0].ignore_failure);
        assert_eq!(calls[0].timeout, Duration::from_secs(3));
        assert_eq!(calls[0].ca_pem.as_deref(), Some("PEM"));
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(&json!({"response": {"allowed": true, "warnings": ["w"]}})),
            Ok(vec!["w".to_string()])
        );
        assert_eq!(
            verdict(
                &json!({"response": {"allowed": false, "status": {"code": 400, "message": "no"}}})
            ),
            Err((400, String::new(), "no".to_string()))
        );
        // kube-apiserver makes a denial without a code a 400 with the webhook's (empty) reason.
        assert_eq!(
            verdict(&json!({})),
            Err((400, String::new(), String::new()))
        );
    }

    #[test]
    fn review_carries_the_request() {
        let obj = json!({"metadata": {"name": "web"}});
        let r = review(&req(&obj, "deployments", "", "team-a"), "u1");
        assert_eq!(r["request"]["operation"], "CREATE");
        assert_eq!(r["request"]["namespace"], "team-a");
        assert_eq!(r["request"]["resource"]["resource"], "deployments");
        assert_eq!(r["request"]["object"], obj);
    }
}
