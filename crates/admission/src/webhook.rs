//! The ValidatingWebhook server a real cluster calls (`ferroflux policy-webhook`): HTTPS with a
//! CA of its own kept in a directory, Kyverno's two webhook paths, and the
//! `ValidatingWebhookConfiguration` that registers them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use ferroflux_apiserver::tls;

use crate::{Hook, PolicyCache, decide};

/// kube-apiserver sends objects up to 3 MiB (etcd's limit) twice (object and oldObject) in one
/// review; anything larger is not a review.
const MAX_REVIEW_BYTES: usize = 8 << 20;

/// The name of the registration, as `kubectl get validatingwebhookconfiguration` lists it.
pub const CONFIGURATION_NAME: &str = "ferroflux-policy";

/// Namespaces the webhook never sees: the control plane's own (kube-controller-manager's
/// leases) must not depend on the webhook being up, as Kyverno leaves them out by default.
const EXCLUDED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Errors starting the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate directory could not be prepared.
    #[error("webhook certificates: {0}")]
    Tls(#[from] tls::TlsError),
    /// The address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Where and how the webhook serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the webhook's CA and serving certificate (made on first start, kept).
    pub cert_dir: PathBuf,
    /// DNS names or IP addresses the serving certificate names besides localhost (the
    /// Service's `NAME.NAMESPACE.svc` in a cluster).
    pub hosts: Vec<String>,
}

/// A running webhook server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The CA certificate (PEM) the API server must trust: the registration's `caBundle`.
    pub ca_pem: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops serving and waits for the connections to close.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts serving `POST /validate` (resources) and `POST /policyvalidate` (policies).
///
/// Errors: the certificates could not be made or read, or the address is taken.
pub async fn serve(cache: Arc<PolicyCache>, options: &Options) -> Result<Running, Error> {
    std::fs::create_dir_all(&options.cert_dir).map_err(|source| tls::TlsError::Io {
        path: options.cert_dir.clone(),
        source,
    })?;
    let pki = tls::load_or_create(&options.cert_dir, &options.hosts)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(&pki)?));
    let bind = |source| Error::Bind {
        addr: options.listen,
        source,
    };
    let listener = TcpListener::bind(options.listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let router = Router::new()
        .route(
            "/validate",
            post(
                |State(c): State<Arc<PolicyCache>>, body: Bytes| async move {
                    answer(&c, Hook::Resources, &body)
                },
            ),
        )
        .route(
            "/policyvalidate",
            post(
                |State(c): State<Arc<PolicyCache>>, body: Bytes| async move {
                    answer(&c, Hook::Policies, &body)
                },
            ),
        )
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
        .with_state(cache);
    let (stop, stopped) = oneshot::channel();
    let task = ferroflux_apiserver::serve_router(listener, router, Some(acceptor), stopped);
    Ok(Running {
        addr,
        ca_pem: pki.ca_pem,
        stop: Some(stop),
        task,
    })
}

/// The AdmissionReview answer to one review body.
fn answer(cache: &PolicyCache, hook: Hook, body: &[u8]) -> Response {
    let Ok(review) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            "the body is not an AdmissionReview",
        )
            .into_response();
    };
    let request = &review["request"];
    if !request.is_object() {
        return (
            StatusCode::BAD_REQUEST,
            "the AdmissionReview has no request",
        )
            .into_response();
    }
    let decision = decide(cache, hook, request);
    let mut response = json!({"uid": request["uid"], "allowed": decision.allowed});
    if !decision.warnings.is_empty() {
        response["warnings"] = json!(decision.warnings);
    }
    if !decision.allowed {
        // Kyverno answers with a Failure status and no code; kube-apiserver makes it a 400.
        response["status"] = json!({"status": "Failure", "message": decision.message});
    }
    axum::Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }))
    .into_response()
}

/// How the API server reaches the webhook: the registration's `clientConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientConfig {
    /// `https://HOST:PORT`: a webhook the API server calls by address (outside the cluster,
    /// or next to the API server on loopback).
    Url(String),
    /// A Service in the cluster, which kube-apiserver calls on port 443 at
    /// `NAME.NAMESPACE.svc` (the name the serving certificate must carry).
    Service(ServiceRef),
}

/// A Service of the cluster, `NAMESPACE/NAME` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// A `--register-service` value that is not `NAMESPACE/NAME`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not NAMESPACE/NAME")]
pub struct InvalidServiceRef(String);

impl std::str::FromStr for ServiceRef {
    type Err = InvalidServiceRef;

    fn from_str(s: &str) -> Result<ServiceRef, InvalidServiceRef> {
        match s.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(ServiceRef {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(InvalidServiceRef(s.to_string())),
        }
    }
}

impl ClientConfig {
    /// The `clientConfig` of the webhook served at `path`, trusting `ca_bundle` (base64).
    fn for_path(&self, path: &str, ca_bundle: &str) -> Value {
        match self {
            ClientConfig::Url(base) => json!({
                "url": format!("{}{path}", base.trim_end_matches('/')),
                "caBundle": ca_bundle,
            }),
            ClientConfig::Service(service) => json!({
                "service": {
                    "namespace": service.namespace,
                    "name": service.name,
                    "path": path,
                    "port": 443,
                },
                "caBundle": ca_bundle,
            }),
        }
    }

    /// The namespaces whose writes the resource webhook never sees: the control plane's and,
    /// for a webhook in the cluster, its own. With `failurePolicy: Fail`, a webhook asked
    /// about its own Pods could never be recreated once down (Kyverno leaves its namespace
    /// out for the same reason).
    fn excluded_namespaces(&self) -> Vec<&str> {
        let mut excluded = EXCLUDED_NAMESPACES.to_vec();
        if let ClientConfig::Service(service) = self
            && !excluded.contains(&service.namespace.as_str())
        {
            excluded.push(&service.namespace);
        }
        excluded
    }
}

/// The `ValidatingWebhookConfiguration` that sends writes to the webhook reached through
/// `client`, trusting `ca_pem`. Resources: every create and update outside the
/// [excluded namespaces](ClientConfig::excluded_namespaces); policies: Kyverno's kinds.
pub fn configuration(client: &ClientConfig, ca_pem: &str) -> Value {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let excluded = client.excluded_namespaces();
    let webhook = |name: &str, path: &str, rules: Value, namespaced_only: bool| {
        let mut w = json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "timeoutSeconds": 10,
            "clientConfig": client.for_path(path, &ca_bundle),
            "rules": rules,
        });
        if namespaced_only {
            w["namespaceSelector"] = json!({"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": excluded,
            }]});
        }
        w
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": CONFIGURATION_NAME,
            "labels": {"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/component": "policy-webhook"},
        },
        "webhooks": [
            webhook(crate::POLICY_WEBHOOK, "/policyvalidate", json!([{
                "apiGroups": ["kyverno.io"], "apiVersions": ["*"],
                "resources": ["clusterpolicies", "policies"],
                "operations": ["CREATE", "UPDATE"], "scope": "*",
            }]), false),
            webhook(crate::RESOURCE_WEBHOOK, "/validate", json!([{
                "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"],
                "operations": ["CREATE", "UPDATE"], "scope": "*",
            }]), true),
        ],
    })
}

/// Registers (or updates) the webhook's configuration by server-side apply.
///
/// Errors: the API server refused the write.
pub async fn register(client: &kube::Client, configuration: &Value) -> Result<(), kube::Error> {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    api.patch(
        CONFIGURATION_NAME,
        &PatchParams::apply("ferroflux-policy-webhook").force(),
        &Patch::Apply(configuration),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_carries_the_uid_and_kyvernos_failure_status() {
        let cache = PolicyCache::default();
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE",
                "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "object": {"metadata": {"name": "c"}}}});
        let response = answer(
            &cache,
            Hook::Resources,
            &serde_json::to_vec(&body).expect("json"),
        );
        assert_eq!(response.status(), StatusCode::OK);
        let not_a_review = answer(&cache, Hook::Resources, b"{]");
        assert_eq!(not_a_review.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_configuration_leaves_the_control_planes_namespaces_out() {
        let c = configuration(&ClientConfig::Url("https://127.0.0.1:9443/".into()), "PEM");
        assert_eq!(
            c["webhooks"][1]["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate"
        );
        assert_eq!(
            c["webhooks"][1]["namespaceSelector"]["matchExpressions"][0]["values"][0],
            "kube-system"
        );
        assert_eq!(c["webhooks"][0]["name"], crate::POLICY_WEBHOOK);
    }

    #[test]
    fn a_service_registration_names_the_service_and_leaves_its_namespace_out() {
        let service: ServiceRef = "flux-system/policy-webhook".parse().expect("NS/NAME");
        let c = configuration(&ClientConfig::Service(service), "PEM");
        for (i, path) in [(0, "/policyvalidate"), (1, "/validate")] {
            let client = &c["webhooks"][i]["clientConfig"];
            assert_eq!(
                client["service"],
                json!({"namespace": "flux-system", "name": "policy-webhook", "path": path, "port": 443})
            );
            assert!(client.get("url").is_none(), "{client}");
            assert_eq!(client["caBundle"], "UEVN");
        }
        assert_eq!(
            c["webhooks"][1]["namespaceSelector"]["matchExpressions"][0]["values"],
            json!([
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "flux-system"
            ])
        );
        assert!(c["webhooks"][0].get("namespaceSelector").is_none());
    }

    #[test]
    fn a_service_is_namespace_slash_name() {
        for bad in ["policy-webhook", "/policy-webhook", "flux-system/", "a/b/c"] {
            assert!(bad.parse::<ServiceRef>().is_err(), "{bad} parses");
        }
        let kept: ServiceRef = "$(RUNTIME_NAMESPACE)/policy-webhook"
            .parse()
            .expect("the Deployment's value, before kubelet expands it");
        assert_eq!(kept.namespace, "$(RUNTIME_NAMESPACE)");
    }
}
