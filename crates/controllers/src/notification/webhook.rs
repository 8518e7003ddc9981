//! The Receivers' webhooks (`POST /hook/<digest>` on `--receiverAddr`), as Flux's receiver
//! server answers, but with 401 for a call that does not authenticate: 404 for a path no
//! Receiver has, 503 for a suspended or not Ready Receiver, 401 Unauthorized for a call whose
//! signature, token or OIDC token does not hold (Flux answers 400 to every failed check; issue 18
//! asks for 401), 400 for a malformed call (a body that is not the sender's payload, an event
//! outside `spec.events`) or a Receiver whose token Secret cannot be read, 500 when a resource
//! could not be annotated, 200 once every matching resource carries a new
//! `reconcile.fluxcd.io/requestedAt`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION;
use ferroflux_api::notification::{CrossNamespaceObjectReference, Receiver};
use ferroflux_notify::receiver::{
    Headers, Refusal, default_api_version, oidc, requested_at, validate,
};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::json;

use super::Context;
use super::dispatch::{MAX_BODY, split_api_version};

/// Objects annotated at most per resource entry with `name: '*'`.
const MAX_MATCHED: u32 = 1000;

/// The Receivers' webhook endpoint, as served on `--receiverAddr`.
pub fn receiver_router(context: Arc<Context>) -> Router {
    Router::new()
        .route("/hook/{digest}", post(handle_payload))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(context)
}

async fn handle_payload(
    State(ctx): State<Arc<Context>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path();
    let receivers: Api<Receiver> = Api::all(ctx.runtime.client.clone());
    let receiver = match receivers.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .find(|r| r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path)),
        Err(err) => {
            tracing::error!(%err, "unable to list receivers");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    };
    let Some(receiver) = receiver else {
        return StatusCode::NOT_FOUND;
    };
    let (name, namespace) = (
        receiver.name_any(),
        receiver.namespace().unwrap_or_default(),
    );
    let ready = receiver
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(|c| crate::conditions::is_true(c, "Ready"));
    if receiver.spec.suspend == Some(true) || !ready {
        tracing::warn!(%name, %namespace, "unable to process request: receiver is suspended or not ready");
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let token = match super::receiver_token(&ctx.runtime.client, &receiver).await {
        Ok(token) => token,
        Err(err) => {
            tracing::warn!(err = %err.message, %name, %namespace, "unable to validate payload");
            return StatusCode::BAD_REQUEST;
        }
    };
    let events = receiver.spec.events.clone().unwrap_or_default();
    let checked = match receiver.spec.receiver_type.as_str() {
        "generic-oidc" => check_oidc(&receiver, Headers(&pairs)).await,
        "gcr" => check_gcr(&ctx, &receiver, Headers(&pairs), &body).await,
        kind => validate(kind, &token, &events, Headers(&pairs), &body).map_err(refusal),
    };
    if let Err((status, err)) = checked {
        tracing::warn!(%err, %name, %namespace, "unable to validate payload");
        return status;
    }
    tracing::info!(%name, %namespace, "handling webhook");
    let mut failed = false;
    for resource in &receiver.spec.resources {
        if let Err(err) = request_reconciliation(&ctx, resource, &namespace).await {
            tracing::warn!(%err, kind = %resource.kind, resource = %resource.name, "unable to request reconciliation");
            failed = true;
        }
    }
    if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Why a call is refused: its answer and the reason logged.
type Refused = (StatusCode, String);

/// The answer to a [`Refusal`]: 401 when the caller did not authenticate, 400 otherwise.
fn refusal(refusal: Refusal) -> Refused {
    let status = if refusal.is_authentication() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, refusal.to_string())
}

/// Annotates the resource (or, for `*`, every one with its `matchLabels`) with a new reconcile
/// request (Flux's `requestReconciliation`).
async fn request_reconciliation(
    ctx: &Context,
    resource: &CrossNamespaceObjectReference,
    receiver_namespace: &str,
) -> Result<(), String> {
    let namespace = match resource.namespace.as_deref() {
        Some(ns) if ctx.no_cross_namespace_refs && ns != receiver_namespace => {
            return Err("cross-namespace references are not allowed".into());
        }
        Some(ns) => ns,
        None => receiver_namespace,
    };
    let api_version = match resource.api_version.as_deref() {
        Some(v) => v,
        None => default_api_version(&resource.kind)
            .ok_or_else(|| format!("apiVersion must be specified for kind {:?}", resource.kind))?,
    };
    let (group, version) = split_api_version(api_version);
    let gvk = GroupVersionKind::gvk(group, version, &resource.kind);
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.runtime.client.clone(),
        namespace,
        &ApiResource::from_gvk(&gvk),
    );
    if resource.name != "*" {
        return annotate(&api, &resource.name).await;
    }
    let Some(labels) = &resource.match_labels else {
        return Err("matchLabels field not set when using wildcard '*' as name".into());
    };
    let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params = ListParams::default()
        .labels(&selector.join(","))
        .limit(MAX_MATCHED);
    let objects = api.list_metadata(&params).await.map_err(|e| {
        format!("failed listing resources in namespace {namespace:?} by matching labels: {e}")
    })?;
    if objects.items.is_empty() {
        tracing::warn!(kind = %resource.kind, %namespace, "no resources found with matching labels");
    }
    for object in objects.items {
        annotate(&api, &object.name_any()).await?;
    }
    Ok(())
}

async fn annotate(api: &Api<DynamicObject>, name: &str) -> Result<(), String> {
    let value = requested_at(jiff::Timestamp::now());
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("unable to annotate {name:?}: {e}"))
}

/// Longest OIDC discovery document or JWKS read.
const MAX_KEYS_DOCUMENT: usize = 1024 * 1024;
/// How long fetching an issuer's keys may take.
const KEYS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A JSON document of at most [`MAX_KEYS_DOCUMENT`] bytes from `url`.
async fn fetch_document(url: &str) -> Result<Vec<u8>, String> {
    let options = ferroflux_source::http::HttpOptions {
        connect_timeout: KEYS_TIMEOUT,
        timeout: KEYS_TIMEOUT,
        ca_pem: Vec::new(),
    };
    let http = options.client().map_err(|e| e.to_string())?;
    let mut answer = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("failed to fetch {url}: {}", e.without_url()))?;
    if !answer.status().is_success() {
        return Err(format!("failed to fetch {url}: {}", answer.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| format!("failed to read {url}: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_KEYS_DOCUMENT {
            return Err(format!("{url} is larger than {MAX_KEYS_DOCUMENT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The JWKS of an OIDC issuer, through its discovery document (whose `issuer` must be the
/// configured one, as go-oidc checks).
async fn issuer_keys(issuer: &str) -> Result<Vec<u8>, String> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let document: serde_json::Value = serde_json::from_slice(&fetch_document(&discovery).await?)
        .map_err(|_| format!("invalid OIDC discovery document of {issuer:?}"))?;
    if document.get("issuer").and_then(|i| i.as_str()) != Some(issuer) {
        return Err(format!(
            "the OIDC discovery document of {issuer:?} names another issuer"
        ));
    }
    let jwks = document
        .get("jwks_uri")
        .and_then(|u| u.as_str())
        .ok_or_else(|| format!("the OIDC discovery document of {issuer:?} has no jwks_uri"))?;
    fetch_document(jwks).await
}

/// `generic-oidc`: the bearer token verified with the keys of the provider of its issuer,
/// for its audience, then the provider's CEL validations (Flux's `validateGenericOIDC`).
/// Every failure is one of authentication (401): without the issuer's keys the caller cannot
/// be authenticated either.
async fn check_oidc(receiver: &Receiver, headers: Headers<'_>) -> Result<(), Refused> {
    let providers = receiver.spec.oidc_providers.as_deref().unwrap_or_default();
    let token = oidc::bearer(headers.get("Authorization")).map_err(refusal)?;
    let issuer = oidc::unverified_issuer(token).map_err(refusal)?;
    let provider = oidc::provider_for(providers, &issuer).map_err(refusal)?;
    let keys = issuer_keys(&provider.issuer_url).await.map_err(|e| {
        refusal(Refusal::Unauthenticated(format!(
            "failed to initialize OIDC provider for issuer {:?}: {e}",
            provider.issuer_url
        )))
    })?;
    let claims = oidc::verify(
        token,
        &keys,
        &[provider.issuer_url.as_str()],
        oidc::audience(provider),
    )
    .map_err(refusal)?;
    oidc::evaluate(provider, &claims).map_err(refusal)
}

/// `gcr`: Google's push token for the Secret's `audience`, issued to its `email`, then the
/// GCR event inside the Pub/Sub message (Flux's `authenticateGCRRequest`).
async fn check_gcr(
    ctx: &Context,
    receiver: &Receiver,
    headers: Headers<'_>,
    body: &[u8],
) -> Result<(), Refused> {
    let misconfigured = |message: String| (StatusCode::BAD_REQUEST, message);
    let namespace = receiver.namespace().unwrap_or_default();
    let secret_ref = receiver
        .spec
        .secret_ref
        .as_ref()
        .ok_or_else(|| misconfigured("secretRef is required for GCR receivers".into()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.runtime.client.clone(), &namespace);
    let secret = secrets
        .get(&secret_ref.name)
        .await
        .map_err(|e| misconfigured(format!("unable to read secret, error: {e}")))?;
    let value = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                misconfigured(format!(
                    "invalid secret data: required field '{key}' for GCR receiver"
                ))
            })
    };
    let (email, audience) = (value("email")?, value("audience")?);
    let unauthenticated = |message: String| refusal(Refusal::Unauthenticated(message));
    let token = oidc::bearer(headers.get("Authorization")).map_err(refusal)?;
    let keys = fetch_document(&ctx.google_certs_url)
        .await
        .map_err(|e| unauthenticated(format!("cannot authenticate GCR request: {e}")))?;
    let claims = oidc::verify(token, &keys, &oidc::GOOGLE_ISSUERS, &audience).map_err(|e| {
        unauthenticated(format!(
            "cannot authenticate GCR request: invalid ID token: {e}"
        ))
    })?;
    oidc::check_google_push(&claims, &email)
        .map_err(|e| unauthenticated(format!("cannot authenticate GCR request: {e}")))?;
    let event = oidc::gcr_event(body).map_err(refusal)?;
    tracing::info!(
        digest = %event.get("digest").and_then(|d| d.as_str()).unwrap_or_default(),
        tag = %event.get("tag").and_then(|d| d.as_str()).unwrap_or_default(),
        "handling GCR event"
    );
    Ok(())
}
