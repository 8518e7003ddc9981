//! What the two controllers that apply manifests (kustomize-controller and helm-controller)
//! share: a context with the controller's config, from which the clients impersonating
//! tenants are made, an HTTP client for artifacts, and the controller's flags.

use std::sync::Arc;

use kube::Client;
use kube::runtime::watcher;

use ferroflux_api::meta::{Condition, condition_type, reason};

use crate::conditions;
use crate::metrics::Metrics;
use crate::runtime::{self, ReconcileError};

/// The flags of an applying controller.
pub trait Flags {
    /// The controller's name: its field manager and the reporter of its events.
    const CONTROLLER: &'static str;
    /// `--watch-label-selector`: only objects matching it are reconciled (sharding).
    fn watch_label_selector(&self) -> Option<&str>;
    /// `--requeue-dependency`: how long to wait for a dependency that is not ready.
    fn requeue_dependency(&self) -> std::time::Duration;
}

/// The context of an applying controller with flags `O`.
pub struct Context<O> {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// The controller's config, from which tenant clients are made.
    pub config: kube::Config,
    /// Downloads artifacts.
    pub http: reqwest::Client,
    /// The flags.
    pub options: O,
}

impl<O: Flags> Context<O> {
    /// A context whose events are reported as the controller `O` names.
    pub fn new(client: Client, config: kube::Config, options: O) -> Self {
        Context {
            runtime: runtime::Context::new(client, O::CONTROLLER),
            config,
            http: ferroflux_source::http::default_client(),
            options,
        }
    }

    /// Records Flux's metrics of every reconciliation in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.runtime = self.runtime.with_metrics(metrics);
        self
    }

    /// The watch of the controller's objects: those `--watch-label-selector` selects.
    pub fn selected(&self) -> watcher::Config {
        let config = watcher::Config::default();
        match self.options.watch_label_selector() {
            Some(selector) => config.labels(selector),
            None => config,
        }
    }

    /// Owns `DependencyNotReady`: the `dependsOn` object `namespace/name` of kind `K` must be
    /// Ready at its generation, or the reconciliation waits `--requeue-dependency`.
    pub async fn dependency_ready<K>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), ReconcileError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
    {
        let api: kube::Api<K> = kube::Api::namespaced(self.client().clone(), namespace);
        let found = api.get_opt(name).await.ok().flatten();
        let object = found.and_then(|d| serde_json::to_value(d).ok());
        let ready = object.is_some_and(|d| {
            let status = &d["status"];
            let conditions: Vec<Condition> =
                serde_json::from_value(status["conditions"].clone()).unwrap_or_default();
            status["observedGeneration"] == d["metadata"]["generation"]
                && conditions::is_true(&conditions, condition_type::READY)
        });
        if ready {
            return Ok(());
        }
        Err(ReconcileError::waiting(
            reason::DEPENDENCY_NOT_READY,
            format!("dependency '{namespace}/{name}' is not ready"),
            self.options.requeue_dependency(),
        ))
    }

    /// The controller's own client.
    pub fn client(&self) -> &Client {
        &self.runtime.client
    }
}
