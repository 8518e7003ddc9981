//! The gates of the analysis over HTTP: webhooks with Flagger's payload and the metric queries
//! against Prometheus (builtin metrics and MetricTemplates with provider `prometheus`). URLs,
//! queries and answers are tenant-written: every call has a timeout and every answer a size
//! limit, and a failure is a held gate with a message, never a panic.

use std::time::Duration;

use ferroflux_api::flagger::{Canary, CanaryMetric, CanaryWebhook};
use ferroflux_canary::query::{self, Model, ResultError};
use ferroflux_canary::{Event, Gate, GateResult, webhook};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

/// Longest webhook timeout honoured.
const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// Most retries of a webhook call honoured.
const MAX_HOOK_RETRIES: i32 = 10;
/// Timeout of a metric query (Flagger's Prometheus client has five seconds).
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes read of a webhook's or Prometheus' answer.
const MAX_ANSWER: usize = 1 << 20;
/// Most characters of an answer quoted in an event.
const MAX_QUOTED: usize = 256;

/// What the gates need.
pub struct Checks<'a> {
    /// The HTTP client (its own timeouts apply as well).
    pub http: &'a reqwest::Client,
    /// The Kubernetes client (MetricTemplates).
    pub client: &'a kube::Client,
    /// The Prometheus address of builtin metrics: `spec.metricsServer`, else the controller's.
    pub metrics_server: Option<String>,
}

fn info(events: &mut Vec<Event>, message: String) {
    events.push(Event {
        warning: false,
        message,
    });
}

fn warn(events: &mut Vec<Event>, message: String) {
    events.push(Event {
        warning: true,
        message,
    });
}

fn id(canary: &Canary) -> String {
    format!(
        "{}.{}",
        canary.name_any(),
        canary.namespace().unwrap_or_default()
    )
}

/// Reads at most [`MAX_ANSWER`] bytes of `response`.
async fn bounded_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("answer larger than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn quoted(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(MAX_QUOTED)
        .collect()
}

/// Posts Flagger's payload to `hook`; an answer above 202 is an error with its body.
pub async fn call_webhook(
    http: &reqwest::Client,
    canary: &Canary,
    phase: &str,
    hook: &CanaryWebhook,
) -> Result<(), String> {
    let timeout = hook
        .timeout
        .as_deref()
        .filter(|t| t.len() >= 2)
        .and_then(ferroflux_canary::spec::parse_duration)
        .unwrap_or(Duration::from_secs(10))
        .min(MAX_HOOK_TIMEOUT);
    let url = reqwest::Url::parse(&hook.url).map_err(|e| format!("parse {:?}: {e}", hook.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported URL scheme {:?}", url.scheme()));
    }
    let payload = webhook::payload(canary, phase, hook);
    // Flagger retries with go-retryablehttp: `retries` more attempts after a failure.
    let attempts = hook.retries.unwrap_or(0).clamp(0, MAX_HOOK_RETRIES) + 1;
    let mut last = String::new();
    for _ in 0..attempts {
        let sent = http
            .post(url.clone())
            .timeout(timeout)
            .json(&payload)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                last = err.without_url().to_string();
                continue;
            }
        };
        let status = response.status();
        let body = bounded_body(response).await?;
        if status.as_u16() <= 202 {
            return Ok(());
        }
        last = quoted(&body);
        // go-retryablehttp retries server errors, not refusals.
        if status.as_u16() < 500 {
            break;
        }
    }
    Err(last)
}

fn hooks<'c>(canary: &'c Canary, kind: &'c str) -> impl Iterator<Item = &'c CanaryWebhook> {
    canary
        .spec
        .analysis
        .iter()
        .flat_map(|a| a.webhooks.iter().flatten())
        .filter(move |h| {
            let t = h.hook_type.as_deref().unwrap_or("");
            t == kind || (kind == "rollout" && t.is_empty())
        })
}

impl Checks<'_> {
    /// Evaluates `gate` as Flagger's scheduler hooks do, recording their events.
    pub async fn run(&self, canary: &Canary, gate: Gate, events: &mut Vec<Event>) -> GateResult {
        let current = canary
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let id = id(canary);
        match gate {
            Gate::ConfirmRollout | Gate::ConfirmPromotion | Gate::ConfirmTrafficIncrease => {
                let phase = if gate == Gate::ConfirmRollout {
                    current.as_str()
                } else {
                    ferroflux_canary::phase::PROGRESSING
                };
                let label = match gate {
                    Gate::ConfirmRollout => "Confirm-rollout",
                    Gate::ConfirmPromotion => "Confirm-promotion",
                    _ => "Confirm-traffic-increase",
                };
                for hook in hooks(canary, gate.hook_type()) {
                    if call_webhook(self.http, canary, phase, hook).await.is_err() {
                        return Err(hook.name.clone());
                    }
                    info(events, format!("{label} check {} passed", hook.name));
                }
                Ok(())
            }
            Gate::PreRollout => {
                for hook in hooks(canary, "pre-rollout") {
                    let phase = ferroflux_canary::phase::PROGRESSING;
                    if let Err(err) = call_webhook(self.http, canary, phase, hook).await {
                        warn(
                            events,
                            format!(
                                "Halt {id} advancement pre-rollout check {} failed {err}",
                                hook.name
                            ),
                        );
                        return Err(hook.name.clone());
                    }
                    info(events, format!("Pre-rollout check {} passed", hook.name));
                }
                Ok(())
            }
            Gate::Rollback => {
                for hook in hooks(canary, "rollback") {
                    if call_webhook(self.http, canary, &current, hook)
                        .await
                        .is_err()
                    {
                        info(
                            events,
                            format!("Rollback hook {} not signaling a rollback", hook.name),
                        );
                    } else {
                        warn(events, format!("Rollback check {} passed", hook.name));
                        return Ok(());
                    }
                }
                Err(String::new())
            }
            Gate::Analysis => self.analysis(canary, events).await,
        }
    }

    /// Flagger's `runAnalysis`: rollout webhooks, then every metric.
    async fn analysis(&self, canary: &Canary, events: &mut Vec<Event>) -> GateResult {
        let id = id(canary);
        for hook in hooks(canary, "rollout") {
            let phase = ferroflux_canary::phase::PROGRESSING;
            if let Err(err) = call_webhook(self.http, canary, phase, hook).await {
                warn(
                    events,
                    format!(
                        "Halt {id} advancement external check {} failed {err}",
                        hook.name
                    ),
                );
                return Err(hook.name.clone());
            }
        }
        let metrics = canary
            .spec
            .analysis
            .iter()
            .flat_map(|a| a.metrics.iter().flatten());
        for metric in metrics {
            if let Err(message) = self.metric(canary, metric).await {
                warn(events, message);
                return Err(metric.name.clone());
            }
        }
        Ok(())
    }

    /// One metric: its query, its value, its thresholds; the Halt message when it fails.
    async fn metric(&self, canary: &Canary, metric: &CanaryMetric) -> Result<(), String> {
        let id = id(canary);
        let model = Model::new(canary, metric);
        let (address, template, custom) = if let Some(reference) = &metric.template_ref {
            let namespace = reference
                .namespace
                .clone()
                .or_else(|| canary.namespace())
                .unwrap_or_default();
            let (address, query) = self.template(&reference.name, &namespace).await?;
            (address, query, true)
        } else {
            let builtin = match metric.name.as_str() {
                "request-success-rate" => query::REQUEST_SUCCESS_RATE.to_string(),
                "request-duration" => query::REQUEST_DURATION.to_string(),
                _ => metric.query.clone().unwrap_or_default(),
            };
            let address = self.metrics_server.clone().ok_or_else(|| {
                "Prometheus query failed: no metrics server (spec.metricsServer)".to_string()
            })?;
            (address, builtin, metric.query.is_some())
        };
        let rendered = query::render(&template, &model).map_err(|e| {
            format!(
                "Metric template {}.{} query render error: {e}",
                metric.name, model.namespace
            )
        })?;
        let value = match prometheus_query(self.http, &address, &rendered).await {
            Ok(value) => value,
            Err(ResultError::NoValues) if custom => {
                return Err(format!(
                    "Halt advancement no values found for custom metric: {}: no values found",
                    metric.name
                ));
            }
            Err(ResultError::NoValues) => {
                return Err(format!(
                    "Halt advancement no values found for {} metric {} probably {}.{} is not receiving traffic: no values found",
                    canary.spec.provider.as_deref().unwrap_or(""),
                    metric.name,
                    canary.spec.target_ref.name,
                    model.namespace
                ));
            }
            Err(ResultError::Invalid(err)) => {
                return Err(format!("Metric query failed for {}: {err}", metric.name));
            }
        };
        match query::check(&id, metric, value) {
            Some(halt) => Err(halt),
            None => Ok(()),
        }
    }

    /// The Prometheus address and query of a MetricTemplate.
    async fn template(&self, name: &str, namespace: &str) -> Result<(String, String), String> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("flagger.app", "v1beta1", "MetricTemplate"),
            "metrictemplates",
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let template = api
            .get_opt(name)
            .await
            .map_err(|e| format!("Metric template {name}.{namespace} error: {e}"))?
            .ok_or_else(|| format!("Metric template {name}.{namespace} error: not found"))?;
        let spec = &template.data["spec"];
        let provider = spec["provider"]["type"].as_str().unwrap_or_default();
        if provider != "prometheus" {
            return Err(format!(
                "Metric template {name}.{namespace} provider {provider} error: not supported by ferroflux (only prometheus)"
            ));
        }
        if spec["provider"]["secretRef"].is_object() || spec["provider"]["headers"].is_object() {
            return Err(format!(
                "Metric template {name}.{namespace} provider prometheus error: secretRef and headers are not supported"
            ));
        }
        let address = spec["provider"]["address"]
            .as_str()
            .map(str::to_string)
            .or_else(|| self.metrics_server.clone())
            .ok_or_else(|| {
                format!("Metric template {name}.{namespace} provider prometheus error: no address")
            })?;
        let query = spec["query"].as_str().unwrap_or_default().to_string();
        Ok((address, query))
    }
}

/// Runs `query` on Prometheus at `address` (`/api/v1/query`).
pub async fn prometheus_query(
    http: &reqwest::Client,
    address: &str,
    query: &str,
) -> Result<f64, ResultError> {
    let base = address.trim_end_matches('/');
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), [("query", query)])
        .map_err(|e| ResultError::Invalid(format!("invalid address {address:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ResultError::Invalid(format!(
            "invalid address {address:?}: not http(s)"
        )));
    }
    let response = http
        .get(url)
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| ResultError::Invalid(e.without_url().to_string()))?;
    let body = bounded_body(response).await.map_err(ResultError::Invalid)?;
    query::prometheus_value(&body)
}

/// Runs the `post-rollout` webhooks with `phase`, recording Flagger's events.
pub async fn post_rollout(
    http: &reqwest::Client,
    canary: &Canary,
    phase: &str,
    events: &mut Vec<Event>,
) {
    for hook in hooks(canary, "post-rollout") {
        match call_webhook(http, canary, phase, hook).await {
            Ok(()) => info(events, format!("Post-rollout check {} passed", hook.name)),
            Err(err) => warn(
                events,
                format!("Post-rollout hook {} failed {err}", hook.name),
            ),
        }
    }
}

/// Sends `event` to the `event` webhooks (Flagger's `sendEventToWebhook`), failures logged.
pub async fn event_hooks(http: &reqwest::Client, canary: &Canary, event: &Event) {
    let timestamp = jiff::Timestamp::now().as_millisecond();
    let event_type = if event.warning { "Warning" } else { "Normal" };
    for hook in hooks(canary, "event") {
        let body = webhook::event_payload(canary, hook, &event.message, event_type, timestamp);
        let sent = http
            .post(hook.url.as_str())
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err.without_url(), hook = %hook.name, "event webhook failed");
        }
    }
}
