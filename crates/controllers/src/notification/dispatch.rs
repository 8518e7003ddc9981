//! The event server: `POST /` takes Flux's event payload from a controller, applies the rate
//! limit, finds the Alerts it matches and sends it to each Alert's Provider in the background
//! (Flux's `handleEvent`). Answers 202 once dispatched, 429 for an event rate limited, 400 for a
//! body that is not an event, 413 beyond 3 MiB.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use ferroflux_api::notification::{Alert, Provider};
use ferroflux_notify::Event;
use ferroflux_notify::alert::{SourceMatch, combine_metadata, filter_message, labels_match};
use ferroflux_notify::event::{cleanup_metadata, exclude_internal_metadata, rate_limit_key};
use ferroflux_notify::provider::{self, Request, ResponseCheck, Settings};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::{Resource, ResourceExt};

use super::Context;
use crate::events::Recorder;

/// Flux's cap on a request body of the event server and the receiver.
pub(super) const MAX_BODY: usize = 3 * 1024 * 1024;
/// How long the handling of one event may take before it is given up (Flux: 15 s).
const HANDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A Provider's `spec.timeout` default.
const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest part of a service's answer kept in an error message.
const MAX_ANSWER_IN_ERROR: usize = 1024;
/// Flux's cap on an address read from a Secret.
const MAX_ADDRESS: usize = 2048;

/// The event endpoint (`POST /`), as served on `--events-addr`.
pub fn events_router(context: Arc<Context>) -> Router {
    Router::new()
        .route("/", post(handle_event))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(context)
}

async fn handle_event(State(ctx): State<Arc<Context>>, body: Bytes) -> StatusCode {
    let mut event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(%err, "decoding the request body failed");
            return StatusCode::BAD_REQUEST;
        }
    };
    cleanup_metadata(&mut event);
    if !ctx.limiter.allow(&rate_limit_key(&event)) {
        tracing::debug!(object = %event.involved_object.display(), "Discarding event, rate limiting duplicate events");
        return StatusCode::TOO_MANY_REQUESTS;
    }
    exclude_internal_metadata(&mut event);
    if tokio::time::timeout(HANDLE_TIMEOUT, dispatch_event(&ctx, &event))
        .await
        .is_err()
    {
        tracing::warn!(object = %event.involved_object.display(), "handling the event timed out");
    }
    StatusCode::ACCEPTED
}

/// Sends `event` to the Provider of every Alert it matches.
async fn dispatch_event(ctx: &Context, event: &Event) {
    let object = event.involved_object.display();
    let alerts: Api<Alert> = Api::all(ctx.runtime.client.clone());
    let alerts = match alerts.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(err) => {
            tracing::error!(%err, "failed listing alerts");
            return;
        }
    };
    let matched = matching_alerts(ctx, alerts, event).await;
    if matched.is_empty() {
        tracing::info!(%object, "discarding event, no alerts found for the involved object");
        return;
    }
    tracing::info!(%object, message = %event.message, "dispatching event");
    for alert in &matched {
        if let Err(err) = dispatch(ctx, event, alert).await {
            tracing::warn!(%err, alert = %alert.name_any(), "failed to dispatch notification");
            let note = format!("failed to dispatch notification for {object}: {err}");
            warn(
                &ctx.runtime.recorder,
                alert,
                "NotificationDispatchFailed",
                &note,
            )
            .await;
        }
    }
}

/// Records a Warning event on `alert`; a failure to record is logged.
async fn warn(recorder: &Recorder, alert: &Alert, reason: &str, note: &str) {
    let mut end = note.len().min(1024);
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    if let Err(err) = recorder
        .publish(&alert.object_ref(&()), true, reason, &note[..end])
        .await
    {
        tracing::warn!(%err, "could not record an event");
    }
}

/// The Alerts that forward `event`: sources (with the object's labels when a source has
/// `matchLabels`), severity, inclusion and exclusion lists.
async fn matching_alerts(ctx: &Context, alerts: Vec<Alert>, event: &Event) -> Vec<Alert> {
    let mut labels: Option<Option<BTreeMap<String, String>>> = None;
    let mut matched = Vec::new();
    for alert in alerts {
        let sourced = match ferroflux_notify::alert::match_sources(&alert, event) {
            SourceMatch::No => false,
            SourceMatch::Yes => true,
            SourceMatch::IfLabels(selectors) => {
                if labels.is_none() {
                    labels = Some(object_labels(ctx, event).await);
                }
                match labels.as_ref().and_then(Option::as_ref) {
                    Some(labels) => selectors.iter().any(|s| labels_match(s, labels)),
                    None => {
                        let note = format!(
                            "error getting source object {}",
                            event.involved_object.display()
                        );
                        warn(&ctx.runtime.recorder, &alert, "SourceFetchFailed", &note).await;
                        false
                    }
                }
            }
        };
        if !sourced {
            continue;
        }
        let verdict = filter_message(&alert, &event.message);
        for pattern in &verdict.invalid {
            let note = format!("failed to compile regex: {pattern}");
            warn(&ctx.runtime.recorder, &alert, "InvalidConfig", &note).await;
        }
        if verdict.forwarded {
            matched.push(alert);
        }
    }
    matched
}

/// The labels of the event's object, `None` when it cannot be read.
async fn object_labels(ctx: &Context, event: &Event) -> Option<BTreeMap<String, String>> {
    let object = &event.involved_object;
    let (group, version) = split_api_version(&object.api_version);
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &object.kind));
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.runtime.client.clone(), &object.namespace, &resource);
    match api.get(&object.name).await {
        Ok(found) => Some(found.labels().clone()),
        Err(err) => {
            tracing::warn!(%err, object = %object.display(), "error getting the involved object");
            None
        }
    }
}

/// `(group, version)` of an `apiVersion` (`v1` is the core group).
pub(super) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Sends `event` through the Provider of `alert` (Flux's `dispatchNotification`): checks,
/// metadata, the Provider's settings, then the requests in the background.
async fn dispatch(ctx: &Context, event: &Event, alert: &Alert) -> Result<(), String> {
    let namespace = alert.namespace().unwrap_or_default();
    if ctx.no_cross_namespace_refs && event.involved_object.namespace != namespace {
        return Err(format!(
            "discarding event, access denied to cross-namespace sources: alert '{namespace}/{}' can't process event from '{}', cross-namespace references have been blocked",
            alert.name_any(),
            event.involved_object.display()
        ));
    }
    let providers: Api<Provider> = Api::namespaced(ctx.runtime.client.clone(), &namespace);
    let provider = providers
        .get(&alert.spec.provider_ref.name)
        .await
        .map_err(|e| format!("failed to read provider: {e}"))?;
    if provider.spec.suspend == Some(true) {
        return Ok(());
    }
    let kind = provider.spec.provider_type.as_str();
    if let Some(reason) = provider::skip(kind, event) {
        tracing::info!(alert = %alert.name_any(), reason, "event dropped for the provider");
        return Ok(());
    }
    let name = provider.name_any();
    if !provider::SUPPORTED.contains(&kind) {
        return Err(format!(
            "failed to initialize notifier for provider '{name}': provider type '{kind}' is not supported by ferroflux"
        ));
    }
    if provider.spec.service_account_name.is_some() {
        return Err("to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller".into());
    }
    let mut notification = event.clone();
    if !combine_metadata(&mut notification, alert).is_empty() {
        let note = "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information)";
        warn(&ctx.runtime.recorder, alert, "MetadataAppendFailed", note).await;
    }
    let commit_status = if provider::is_commit_status_provider(kind) {
        if provider.spec.commit_status_expr.is_some() {
            return Err("failed to create commit status: spec.commitStatusExpr is not supported by ferroflux".into());
        }
        let uid = provider.uid().unwrap_or_default();
        Some(provider::default_commit_status(&uid, &notification))
    } else {
        None
    };
    let (mut settings, transport) = resolve(ctx, &provider, commit_status).await?;
    settings.now = jiff::Timestamp::now().as_second();
    settings.alert_namespace = namespace.clone();
    settings.alert_name = alert.name_any();
    settings.alert_uid = alert.uid().unwrap_or_default();
    let delivery = Delivery::build(ctx, &settings, &notification)
        .map_err(|e| format!("failed to initialize notifier for provider '{name}': {e}"))?;
    let http = transport.client()?;
    let recorder = ctx.runtime.recorder.clone();
    let alert = alert.clone();
    let object = event.involved_object.display();
    // An address read from the Secret is a credential too (a Slack or Teams webhook URL).
    let secret_address = (provider.spec.address.as_deref() != Some(settings.address.as_str()))
        .then(|| settings.address.clone());
    // A Sentry DSN holds its key wherever it is written.
    let sentry_key = (kind == "sentry")
        .then(|| provider::SentryDsn::parse(&settings.address).ok())
        .flatten()
        .map(|dsn| dsn.public_key);
    let secrets: Vec<String> = [
        settings.token.clone(),
        Some(settings.password.clone()),
        secret_address,
        sentry_key,
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect();
    tokio::spawn(async move {
        let sent = tokio::time::timeout(transport.timeout, delivery.send(&http)).await;
        let failure = match sent {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err,
            Err(_) => format!(
                "timeout after {}",
                crate::runtime::go_duration(transport.timeout)
            ),
        };
        let failure = ferroflux_source::redact::redact(&failure, &secrets);
        tracing::warn!(err = %failure, alert = %alert.name_any(), "failed to send notification");
        let note = format!("failed to send notification for {object}: {failure}");
        warn(&recorder, &alert, "NotificationDispatchFailed", &note).await;
    });
    Ok(())
}

/// What one notification sends.
enum Delivery {
    /// HTTP requests, in order.
    Http(Vec<Request>),
    /// A publish on NATS' protocol.
    Nats(provider::NatsPublish),
    /// A pull or merge request comment: who the token is, the comments, then the write.
    Comment(Box<provider::CommentPlan>),
    /// A Pub/Sub publish with a service account key: its token request first.
    PubSub {
        token: Request,
        settings: Box<Settings>,
        event: Box<Event>,
    },
    /// A GitHub provider authenticated as a GitHub App: its installation token request first.
    GitHubApp {
        token: Request,
        settings: Box<Settings>,
        event: Box<Event>,
    },
}

impl Delivery {
    /// The delivery of `event` through a Provider resolved to `settings`; refused before
    /// anything is sent when the settings cannot work.
    fn build(ctx: &Context, settings: &Settings, event: &Event) -> Result<Self, provider::Error> {
        // A token in the Secret wins over App credentials, as in Flux.
        let without_token = settings.token.as_deref().is_none_or(str::is_empty);
        if let Some(app) = settings
            .github_app
            .as_ref()
            .filter(|_| without_token && provider::is_github_app_provider(&settings.provider_type))
        {
            return Ok(Delivery::GitHubApp {
                token: app.token_request(settings.now)?,
                settings: Box::new(settings.clone()),
                event: Box::new(event.clone()),
            });
        }
        match settings.provider_type.as_str() {
            "nats" => Ok(Delivery::Nats(provider::nats(settings, event)?)),
            kind if provider::is_change_request_provider(kind) => Ok(Delivery::Comment(Box::new(
                provider::comment_plan(settings, event)?,
            ))),
            "googlepubsub" => {
                let mut settings = settings.clone();
                settings.api_endpoint = ctx.google_pubsub_endpoint.clone();
                // The publish is built now so a bad project or topic fails here.
                let requests = provider::requests(&settings, event)?;
                match settings.token.as_deref().filter(|t| !t.is_empty()) {
                    Some(key) => Ok(Delivery::PubSub {
                        token: provider::google_token_request(key, settings.now)?,
                        settings: Box::new(settings),
                        event: Box::new(event.clone()),
                    }),
                    None if settings.api_endpoint.is_some() => Ok(Delivery::Http(requests)),
                    None => Err(provider::Error::Invalid(
                        "workload identity is not supported by ferroflux: set a service account key as 'token' in the Provider's Secret".into(),
                    )),
                }
            }
            _ => Ok(Delivery::Http(provider::requests(settings, event)?)),
        }
    }

    async fn send(self, http: &reqwest::Client) -> Result<(), String> {
        match self {
            Delivery::Http(requests) => send_all(http, requests).await,
            Delivery::Nats(publish) => super::nats::publish(&publish).await,
            Delivery::Comment(plan) => send_comment(http, &plan).await,
            Delivery::PubSub {
                token,
                mut settings,
                event,
            } => {
                let answer = send_one(http, token)
                    .await
                    .map_err(|e| format!("failed to get a GCP access token: {e}"))?;
                let access = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|a| a.get("access_token")?.as_str().map(str::to_string))
                    .ok_or("failed to get a GCP access token: no access_token in the answer")?;
                settings.access_token = Some(access.clone());
                let requests = provider::requests(&settings, &event).map_err(|e| e.to_string())?;
                send_all(http, requests)
                    .await
                    .map_err(|e| ferroflux_source::redact::redact(&e, &[access]))
            }
            Delivery::GitHubApp {
                token,
                mut settings,
                event,
            } => {
                let answer = send_one(http, token)
                    .await
                    .map_err(|e| format!("failed to get a GitHub App installation token: {e}"))?;
                let installation = provider::github_app::installation_token(&answer)
                    .map_err(|e| format!("failed to get a GitHub App installation token: {e}"))?;
                settings.token = Some(installation.clone());
                let sent = if provider::is_change_request_provider(&settings.provider_type) {
                    match provider::comment_plan(&settings, &event) {
                        Ok(plan) => send_comment(http, &plan).await,
                        Err(err) => Err(err.to_string()),
                    }
                } else {
                    match provider::requests(&settings, &event) {
                        Ok(requests) => send_all(http, requests).await,
                        Err(err) => Err(err.to_string()),
                    }
                };
                sent.map_err(|e| ferroflux_source::redact::redact(&e, &[installation]))
            }
        }
    }
}

/// A pull or merge request comment: who the token is, the comments, then the write.
async fn send_comment(http: &reqwest::Client, plan: &provider::CommentPlan) -> Result<(), String> {
    let whoami = send_one(http, plan.whoami.clone())
        .await
        .map_err(|e| format!("failed to get authenticated user info: {e}"))?;
    let login = plan.login(&whoami).map_err(|e| e.to_string())?;
    let comments = send_one(http, plan.list.clone())
        .await
        .map_err(|e| format!("failed to list comments: {e}"))?;
    let write = plan.write(&login, &comments).map_err(|e| e.to_string())?;
    send_one(http, write)
        .await
        .map(|_| ())
        .map_err(|e| format!("failed to write the comment: {e}"))
}

/// How a Provider's requests travel.
struct Transport {
    timeout: Duration,
    ca_pem: Vec<Vec<u8>>,
    proxy: Option<String>,
}

impl Transport {
    /// The client: the shared HTTP client builder, or with a proxy the same settings through it.
    fn client(&self) -> Result<reqwest::Client, String> {
        let options = ferroflux_source::http::HttpOptions {
            connect_timeout: self.timeout,
            timeout: self.timeout,
            ca_pem: self.ca_pem.clone(),
        };
        let Some(proxy) = &self.proxy else {
            return options.client().map_err(|e| e.to_string());
        };
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| format!("unable to parse proxy URL: {}", e.without_url()))?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .proxy(proxy);
        for pem in &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "CA bundle holds no valid PEM certificate".to_string())?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// The string value of `key` in a Secret's data.
fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

async fn read_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Secret, String> {
    let secrets: Api<Secret> = Api::namespaced(ctx.runtime.client.clone(), namespace);
    secrets
        .get(name)
        .await
        .map_err(|e| format!("failed to get secret '{namespace}/{name}': {e}"))
}

/// The Provider's settings from its spec and Secrets (Flux's `createNotifier`): the Secret's
/// `address`, `token`, `username`/`password`, `headers` and `proxy` over the spec; the proxy
/// Secret; the CA of `certSecretRef` (or, for Git providers, of the Secret).
async fn resolve(
    ctx: &Context,
    provider: &Provider,
    commit_status: Option<String>,
) -> Result<(Settings, Transport), String> {
    let namespace = provider.namespace().unwrap_or_default();
    let spec = &provider.spec;
    let timeout = match spec.timeout.as_deref() {
        Some(t) => ferroflux_gocompat::duration::parse_std(t)
            .map_err(|e| format!("invalid spec.timeout: {e}"))?,
        None => DEFAULT_PROVIDER_TIMEOUT,
    };
    let mut settings = Settings {
        provider_type: spec.provider_type.clone(),
        address: spec.address.clone().unwrap_or_default(),
        username: spec.username.clone().unwrap_or_default(),
        channel: spec.channel.clone().unwrap_or_default(),
        provider_uid: provider.uid().unwrap_or_default(),
        commit_status,
        ..Settings::default()
    };
    let mut transport = Transport {
        timeout,
        ca_pem: Vec::new(),
        proxy: spec.proxy.clone(),
    };
    let mut provider_secret = None;
    if let Some(secret_ref) = &spec.secret_ref {
        let secret = read_secret(ctx, &namespace, &secret_ref.name).await?;
        if let Some(address) = secret_value(&secret, "address") {
            if address.len() > MAX_ADDRESS {
                return Err(format!(
                    "invalid address in secret: address exceeds maximum length of {MAX_ADDRESS} bytes"
                ));
            }
            settings.address = address.trim().to_string();
        }
        if let Some(proxy) = secret_value(&secret, "proxy") {
            transport.proxy = Some(proxy.trim().to_string());
        }
        if let Some(headers) = secret_value(&secret, "headers") {
            settings.headers = ferroflux_gocompat::yaml::from_str(&headers)
                .map_err(|e| format!("failed to read headers from secret: {e}"))?;
        }
        if let Some(token) = secret_value(&secret, "token") {
            settings.token = Some(token.trim().to_string());
        }
        if spec.provider_type == "nats"
            && (secret_value(&secret, "creds").is_some() || secret_value(&secret, "nkey").is_some())
        {
            return Err("NATS user credentials ('creds') and NKey ('nkey') authentication are not supported by ferroflux".into());
        }
        if let (Some(user), Some(password)) = (
            secret_value(&secret, "username"),
            secret_value(&secret, "password"),
        ) {
            settings.username = user;
            settings.password = password;
        }
        if provider::is_github_app_provider(&spec.provider_type) {
            settings.github_app =
                provider::GitHubApp::from_secret(|key| secret_value(&secret, key))
                    .map_err(|e| e.to_string())?;
        }
        provider_secret = Some(secret);
    }
    if let Some(proxy_ref) = &spec.proxy_secret_ref {
        let secret = read_secret(ctx, &namespace, &proxy_ref.name).await?;
        transport.proxy = Some(proxy_url(&secret)?);
    }
    let ca_secret = match &spec.cert_secret_ref {
        Some(cert_ref) => Some(read_secret(ctx, &namespace, &cert_ref.name).await?),
        None if provider::is_commit_status_provider(&spec.provider_type) => provider_secret,
        None => None,
    };
    if let Some(secret) = ca_secret {
        if spec.cert_secret_ref.is_some() && secret_value(&secret, "tls.crt").is_some() {
            return Err("failed to get TLS config: client certificates (tls.crt, tls.key) are not supported by ferroflux".into());
        }
        if let Some(ca) = secret_value(&secret, "ca.crt") {
            transport.ca_pem.push(ca.into_bytes());
        }
    }
    Ok((settings, transport))
}

/// The proxy of a `proxySecretRef`: `address`, with `username` and `password` when set.
fn proxy_url(secret: &Secret) -> Result<String, String> {
    let address = secret_value(secret, "address")
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .ok_or("failed to get proxy URL: invalid proxy secret: key 'address' not found")?;
    match (
        secret_value(secret, "username"),
        secret_value(secret, "password"),
    ) {
        (Some(user), Some(password)) => {
            let (scheme, rest) = address
                .split_once("://")
                .ok_or("failed to get proxy URL: the address has no scheme")?;
            Ok(format!("{scheme}://{user}:{password}@{rest}"))
        }
        _ => Ok(address),
    }
}

/// Sends the requests in order; the first failure stops.
async fn send_all(http: &reqwest::Client, requests: Vec<Request>) -> Result<(), String> {
    for request in requests {
        send_one(http, request).await?;
    }
    Ok(())
}

/// Sends one request and returns the answer's body once it is judged a success.
async fn send_one(http: &reqwest::Client, request: Request) -> Result<Bytes, String> {
    let method = match request.method {
        provider::Method::Get => reqwest::Method::GET,
        provider::Method::Post => reqwest::Method::POST,
        provider::Method::Put => reqwest::Method::PUT,
        provider::Method::Patch => reqwest::Method::PATCH,
    };
    let mut builder = http.request(method, &request.url).body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let answer = builder
        .send()
        .await
        .map_err(|e| format!("failed to execute request: {}", e.without_url()))?;
    let status = answer.status();
    let body = answer.bytes().await.unwrap_or_default();
    if !status.is_success() {
        let mut text = String::from_utf8_lossy(&body).into_owned();
        if text.len() > MAX_ANSWER_IN_ERROR {
            let mut end = MAX_ANSWER_IN_ERROR;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        return Err(format!(
            "request failed with status code {}: {text}",
            status.as_u16()
        ));
    }
    if request.check == ResponseCheck::SlackOk {
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("unable to unmarshal response body: {e}"))?;
        if answer.get("ok") != Some(&serde_json::Value::Bool(true)) {
            let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("");
            return Err(format!("Slack responded with error: {error}"));
        }
    }
    Ok(body)
}
