//! Flux's notification-controller: the event server (`--events-addr`, `POST /`) that forwards
//! controllers' events to the Providers of the matching Alerts, and the Receivers
//! (`notification.toolkit.fluxcd.io/v1`): reconciled to Ready with their webhook path, served on
//! `--receiverAddr`, where a verified call asks each matching resource to reconcile.
//!
//! Alerts and Providers (`v1beta3`) are static objects without status, as in Flux 2.9: nothing
//! reconciles them; an Alert or Provider that cannot deliver says so with a Warning event on the
//! Alert (`NotificationDispatchFailed`, `InvalidConfig`) and a log, at the event it could not
//! deliver. The decisions (matching, metadata, payloads, signatures) are in `ferroflux_notify`.
//!
//! Expected flow: [`Context::new`] -> [`run`] (the Receiver reconciler) and [`listen`] or
//! [`serve`] (both HTTP endpoints) until shutdown. Every other controller posts its events when
//! its `runtime.flags.events_addr` names the event endpoint.

use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::meta::Time;
use ferroflux_api::notification::{Receiver, ReceiverStatus};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};

use crate::conditions::set_outcome;
use crate::runtime::{self, Note, ReconcileError, Reconciler, SUCCEEDED};

mod dispatch;
mod limiter;
mod nats;
mod webhook;

pub use dispatch::events_router;
pub use limiter::RateLimiter;
pub use webhook::receiver_router;

/// Flux's `--rate-limit-interval` default: one identical event per five minutes.
pub const DEFAULT_RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(300);
/// Flux's `--events-addr` default.
pub const DEFAULT_EVENTS_ADDR: &str = ":9090";
/// Flux's `--receiverAddr` default.
pub const DEFAULT_RECEIVER_ADDR: &str = ":9292";
/// Flux's reason of a Receiver whose token Secret cannot be read.
const TOKEN_NOT_FOUND: &str = "TokenNotFound";
/// Flux's reason of a Receiver whose spec is refused.
const VALIDATION_FAILED: &str = "ValidationFailed";

/// What the notification controller needs.
pub struct Context {
    /// The runtime's shared context (events on Alerts and Receivers are reported as
    /// `notification-controller`).
    pub runtime: runtime::Context,
    /// `--no-cross-namespace-refs`: an Alert takes no event of another namespace, a Receiver
    /// reconciles no resource of another namespace.
    pub no_cross_namespace_refs: bool,
    /// Flux's rate limit of identical events.
    pub limiter: RateLimiter,
    /// Where `googlepubsub` Providers publish instead of Google's API (`http://host:port` of
    /// an emulator; `PUBSUB_EMULATOR_HOST` sets it, as for Google's client). Without
    /// credentials in the Provider's Secret, requests to it carry no token.
    pub google_pubsub_endpoint: Option<String>,
    /// Where `gcr` Receivers read Google's keys of push tokens
    /// ([`ferroflux_notify::receiver::oidc::GOOGLE_CERTS_URL`]).
    pub google_certs_url: String,
}

impl Context {
    /// A context whose events are reported as `notification-controller`, with Flux's default
    /// rate limit.
    pub fn new(client: Client) -> Self {
        Context {
            runtime: runtime::Context::new(client, "notification-controller"),
            no_cross_namespace_refs: false,
            limiter: RateLimiter::new(DEFAULT_RATE_LIMIT_INTERVAL),
            google_pubsub_endpoint: std::env::var("PUBSUB_EMULATOR_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .map(|h| format!("http://{h}")),
            google_certs_url: ferroflux_notify::receiver::oidc::GOOGLE_CERTS_URL.to_string(),
        }
    }
}

/// Runs the Receiver reconciler until `shutdown` resolves.
pub use crate::runtime::run;

/// Serves the event endpoint on `events` and the Receivers' webhooks on `receivers` until
/// `shutdown` resolves.
///
/// # Errors
/// The I/O error that ended either server.
pub async fn serve(
    context: Arc<Context>,
    events: tokio::net::TcpListener,
    receivers: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let event_server = axum::serve(events, events_router(context.clone()))
        .with_graceful_shutdown(wait(stopped.clone()));
    let receiver_server =
        axum::serve(receivers, receiver_router(context)).with_graceful_shutdown(wait(stopped));
    let servers = async { tokio::try_join!(event_server, receiver_server).map(|_| ()) };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => result,
        () = shutdown => {
            let _ = stop.send(true);
            servers.await
        }
    }
}

/// Binds Flux-style addresses (`:9090` listens on every interface, `host:port` on one) and
/// [`serve`]s on them until `shutdown` resolves.
///
/// # Errors
/// An address that cannot be bound, or the I/O error that ended a server.
pub async fn listen(
    context: Arc<Context>,
    events_addr: &str,
    receiver_addr: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bind = |addr: &str| {
        let addr = if addr.starts_with(':') {
            format!("0.0.0.0{addr}")
        } else {
            addr.to_string()
        };
        tokio::net::TcpListener::bind(addr)
    };
    let events = bind(events_addr).await?;
    let receivers = bind(receiver_addr).await?;
    serve(context, events, receivers, shutdown).await
}

impl Reconciler for Context {
    type Kind = Receiver;
    type Done = String;
    type Failure = ReconcileError;
    type Status = ReceiverStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    /// Ready with the webhook path `/hook/<sha256(token+name+namespace)>`, as Flux.
    async fn reconcile(&self, receiver: &Receiver) -> Result<String, ReconcileError> {
        let kind = receiver.spec.receiver_type.as_str();
        if !ferroflux_notify::receiver::SUPPORTED.contains(&kind) {
            return Err(ReconcileError::stalling(
                VALIDATION_FAILED,
                format!("receiver type '{kind}' is not supported by ferroflux"),
            ));
        }
        // CEL filters are not evaluated here: refused rather than ignored.
        if receiver.spec.resource_filter.is_some()
            || receiver.spec.resources.iter().any(|r| r.filter.is_some())
        {
            return Err(ReconcileError::stalling(
                VALIDATION_FAILED,
                "resourceFilter and resources[].filter (CEL) are not supported by ferroflux",
            ));
        }
        let oidc = kind == "generic-oidc";
        let providers = receiver.spec.oidc_providers.as_deref().unwrap_or_default();
        let invalid = match (
            oidc,
            providers.is_empty(),
            receiver.spec.secret_ref.is_some(),
        ) {
            (true, true, _) => Some("generic-oidc receiver requires at least one oidcProvider"),
            (false, false, _) => Some("oidcProviders can only be set when type is generic-oidc"),
            (true, _, true) => Some("secretRef cannot be set when type is generic-oidc"),
            _ => None,
        };
        if let Some(message) = invalid {
            return Err(ReconcileError::stalling(VALIDATION_FAILED, message));
        }
        ferroflux_notify::receiver::oidc::check_providers(providers)
            .map_err(|e| ReconcileError::stalling(VALIDATION_FAILED, e))?;
        let token = receiver_token(&self.runtime.client, receiver).await?;
        let namespace = receiver.namespace().unwrap_or_default();
        Ok(ferroflux_notify::receiver::webhook_path(
            &token,
            &receiver.name_any(),
            &namespace,
        ))
    }

    fn event(&self, receiver: &Receiver, path: &String) -> Option<Note> {
        let previous = receiver
            .status
            .as_ref()
            .and_then(|s| s.webhook_path.as_ref());
        (previous != Some(path)).then(|| Note {
            warning: false,
            reason: SUCCEEDED,
            message: format!("Receiver initialized for path: {path}"),
        })
    }

    fn summarize(
        &self,
        receiver: &Receiver,
        outcome: Result<String, ReconcileError>,
        at: Time,
    ) -> ReceiverStatus {
        let mut status = receiver.status.clone().unwrap_or_default();
        let mut conditions = status.conditions.take().unwrap_or_default();
        let generation = receiver.metadata.generation;
        match &outcome {
            Ok(path) => {
                let message = format!("Receiver initialized for path: {path}");
                set_outcome(&mut conditions, Ok((SUCCEEDED, &message)), generation, &at);
                status.webhook_path = Some(path.clone());
            }
            Err(err) => {
                set_outcome(&mut conditions, Err(err), generation, &at);
                // A Receiver without its token serves nothing.
                status.webhook_path = None;
            }
        }
        status.conditions = Some(conditions);
        status
    }
}

/// The `token` of the Receiver's Secret.
async fn receiver_token(client: &Client, receiver: &Receiver) -> Result<String, ReconcileError> {
    let namespace = receiver.namespace().unwrap_or_default();
    // generic-oidc callers authenticate with their ID token: the path is of name and namespace.
    if receiver.spec.receiver_type == "generic-oidc" {
        return Ok(String::new());
    }
    let Some(secret_ref) = &receiver.spec.secret_ref else {
        return Err(ReconcileError::stalling(
            VALIDATION_FAILED,
            "secretRef is required when type is not generic-oidc",
        ));
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let key = format!("{namespace}/{}", secret_ref.name);
    let secret = secrets.get(&secret_ref.name).await.map_err(|e| {
        ReconcileError::generic(
            TOKEN_NOT_FOUND,
            format!("unable to read token from secret '{key}' error: {e}"),
        )
    })?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .map(|t| String::from_utf8_lossy(&t.0).into_owned())
        .ok_or_else(|| {
            ReconcileError::generic(
                TOKEN_NOT_FOUND,
                format!("invalid '{key}' secret data: required field 'token'"),
            )
        })
}
