//! The analysis settings of a Canary with Flagger's defaults and weight formulas, and the
//! fields ferroflux does not implement (refused, never ignored).

use std::time::Duration;

use ferroflux_api::flagger::{Canary, CanaryMetric, CanaryWebhook};

use crate::TOTAL_WEIGHT;

/// Flagger's default analysis interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Flagger's shortest analysis interval; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Flagger's default metric window.
pub const DEFAULT_METRIC_INTERVAL: &str = "1m";
/// Flagger's default progress deadline.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Blue/green iterations Flagger sets when the `kubernetes` provider has none.
pub const KUBERNETES_DEFAULT_ITERATIONS: i32 = 10;
/// Most metrics and most webhooks one Canary may list (tenant-written input is bounded).
pub const MAX_CHECKS: usize = 32;
/// Most step weights one Canary may list.
pub const MAX_STEP_WEIGHTS: usize = 100;

/// The routers ferroflux implements.
pub const PROVIDERS: &[&str] = &["kubernetes", "gatewayapi", "gatewayapi:v1"];

/// The analysis of a Canary with Flagger's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// `skipAnalysis`, or no analysis at all.
    pub skip: bool,
    /// The `kubernetes` provider (blue/green only, no traffic shifting).
    pub kubernetes: bool,
    /// `threshold`, at least 1.
    pub threshold: i32,
    /// `iterations` (10 for the `kubernetes` provider when unset).
    pub iterations: i32,
    /// `stepWeight`.
    pub step_weight: i32,
    /// `stepWeights`.
    pub step_weights: Vec<i32>,
    /// `maxWeight` (0 when unset).
    pub max_weight: i32,
    /// `stepWeightPromotion`.
    pub step_weight_promotion: i32,
    /// The metrics.
    pub metrics: Vec<CanaryMetric>,
    /// The webhooks.
    pub webhooks: Vec<CanaryWebhook>,
}

impl Analysis {
    /// The analysis of `canary`.
    pub fn of(canary: &Canary) -> Analysis {
        let kubernetes = canary.spec.provider.as_deref() == Some("kubernetes");
        let a = canary.spec.analysis.clone().unwrap_or_default();
        let mut iterations = a.iterations.unwrap_or(0);
        if kubernetes && iterations < 1 {
            iterations = KUBERNETES_DEFAULT_ITERATIONS;
        }
        Analysis {
            skip: canary.spec.analysis.is_none() || canary.spec.skip_analysis == Some(true),
            kubernetes,
            threshold: a.threshold.filter(|t| *t > 0).unwrap_or(1),
            iterations,
            step_weight: a.step_weight.unwrap_or(0),
            step_weights: a.step_weights.unwrap_or_default(),
            max_weight: a.max_weight.unwrap_or(0),
            step_weight_promotion: a.step_weight_promotion.unwrap_or(0),
            metrics: a.metrics.unwrap_or_default(),
            webhooks: a.webhooks.unwrap_or_default(),
        }
    }

    /// Blue/green: iterations without match conditions (A/B is refused).
    pub fn blue_green(&self) -> bool {
        self.iterations > 0
    }

    /// Flagger's `maxWeight`: the last step weight (at most 100), else `maxWeight`, else 100.
    pub fn max_weight(&self) -> i32 {
        if let Some(last) = self.step_weights.last() {
            return (*last).min(TOTAL_WEIGHT);
        }
        if self.max_weight > 0 {
            return self.max_weight;
        }
        TOTAL_WEIGHT
    }

    /// Flagger's `nextStepWeight` from `canary_weight`.
    pub fn next_step_weight(&self, canary_weight: i32) -> i32 {
        if self.step_weight > 0 || self.step_weights.is_empty() {
            return self.step_weight;
        }
        let max_step = TOTAL_WEIGHT - canary_weight;
        if max_step == 0 {
            return 1;
        }
        if canary_weight == 0 {
            return max_step.min(self.step_weights[0]);
        }
        for pair in self.step_weights.windows(2) {
            if pair[0] == canary_weight {
                return max_step.min(pair[1] - canary_weight);
            }
        }
        max_step
    }
}

/// The analysis interval of `canary` (Flagger: one minute by default, an unparsable one is the
/// default too, never below `min`; Flagger's `min` is [`MIN_INTERVAL`]).
pub fn interval(canary: &Canary, min: Duration) -> Duration {
    let text = canary
        .spec
        .analysis
        .as_ref()
        .and_then(|a| a.interval.as_deref());
    let Some(text) = text else {
        return DEFAULT_INTERVAL;
    };
    parse_duration(text).unwrap_or(DEFAULT_INTERVAL).max(min)
}

/// A Go duration of the forms Canaries use (`30s`, `1m`, `1m30s`, `500ms`, `2h`); `None` for
/// anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() || text.len() > 32 {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return None,
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(value).ok()?)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// The fields of `canary` ferroflux does not implement, each as a sentence naming the field;
/// empty when everything the Canary asks for is implemented.
pub fn refusals(canary: &Canary) -> Vec<String> {
    let mut out = Vec::new();
    let spec = &canary.spec;
    let provider = spec.provider.as_deref().unwrap_or("");
    if !PROVIDERS.contains(&provider) {
        out.push(format!(
            "spec.provider {provider:?} is not supported: ferroflux routes with \"kubernetes\" \
             (blue/green) or \"gatewayapi:v1\""
        ));
    }
    let kind = spec.target_ref.kind.as_deref().unwrap_or("");
    if kind != "Deployment" {
        out.push(format!(
            "spec.targetRef.kind {kind:?} is not supported: only Deployment targets are"
        ));
    }
    if spec.autoscaler_ref.is_some() {
        out.push("spec.autoscalerRef is not supported".into());
    }
    if spec.ingress_ref.is_some() {
        out.push("spec.ingressRef is not supported".into());
    }
    if spec.route_ref.is_some() || spec.upstream_ref.is_some() {
        out.push("spec.routeRef and spec.upstreamRef are not supported".into());
    }
    if spec.revert_on_deletion == Some(true) {
        out.push("spec.revertOnDeletion is not supported".into());
    }
    let service = &spec.service;
    if service.port_discovery == Some(true) {
        out.push("spec.service.portDiscovery is not supported".into());
    }
    if service.hosts.as_ref().is_some_and(|h| !h.is_empty())
        || service.gateways.as_ref().is_some_and(|g| !g.is_empty())
    {
        out.push("spec.service.hosts and spec.service.gateways are not supported".into());
    }
    let mesh_settings = [
        ("timeout", service.timeout.is_some()),
        ("backendTimeout", service.backend_timeout.is_some()),
        ("meshName", service.mesh_name.is_some()),
        ("backends", service.backends.is_some()),
        ("delegation", service.delegation == Some(true)),
        ("match", service.r#match.is_some()),
        ("retries", service.retries.is_some()),
        ("rewrite", service.rewrite.is_some()),
        ("mirror", service.mirror.is_some()),
        ("headers", service.headers.is_some()),
        ("corsPolicy", service.cors_policy.is_some()),
        ("trafficPolicy", service.traffic_policy.is_some()),
        ("apex", service.apex.is_some()),
        ("primary", service.primary.is_some()),
        ("canary", service.canary.is_some()),
        ("unmanagedMetadata", service.unmanaged_metadata.is_some()),
    ];
    for (field, set) in mesh_settings {
        if set {
            out.push(format!("spec.service.{field} is not supported"));
        }
    }
    if provider.starts_with("gatewayapi")
        && service.gateway_refs.as_ref().is_none_or(|g| g.is_empty())
    {
        out.push("spec.service.gatewayRefs is required by the gatewayapi provider".into());
    }
    if let Some(a) = &spec.analysis {
        if a.mirror == Some(true) || a.mirror_weight.is_some() {
            out.push(
                "spec.analysis.mirror is not supported (no router of ferroflux mirrors)".into(),
            );
        }
        if a.alerts.as_ref().is_some_and(|m| !m.is_empty()) {
            out.push(
                "spec.analysis.alerts is not supported (use the notification controller's Alerts \
                 on the Canary's events)"
                    .into(),
            );
        }
        if a.session_affinity.is_some() {
            out.push("spec.analysis.sessionAffinity is not supported".into());
        }
        if a.r#match.as_ref().is_some_and(|m| !m.is_empty()) {
            out.push("spec.analysis.match (A/B testing) is not supported".into());
        }
        if a.primary_ready_threshold.is_some_and(|t| t != 100)
            || a.canary_ready_threshold.is_some_and(|t| t != 100)
        {
            out.push(
                "spec.analysis.primaryReadyThreshold and canaryReadyThreshold other than 100 \
                 are not supported"
                    .into(),
            );
        }
        if a.metrics.as_ref().is_some_and(|m| m.len() > MAX_CHECKS)
            || a.webhooks.as_ref().is_some_and(|w| w.len() > MAX_CHECKS)
        {
            out.push(format!(
                "spec.analysis lists more than {MAX_CHECKS} metrics or webhooks"
            ));
        }
        if a.step_weights.as_ref().is_some_and(|w| {
            w.len() > MAX_STEP_WEIGHTS
                || w.windows(2).any(|p| p[0] >= p[1])
                || w.iter().any(|x| *x <= 0)
        }) {
            out.push(format!(
                "spec.analysis.stepWeights must be at most {MAX_STEP_WEIGHTS} increasing \
                 positive weights"
            ));
        }
        for hook in a.webhooks.iter().flatten() {
            let kind = hook.hook_type.as_deref().unwrap_or("");
            if !crate::webhook::TYPES.contains(&kind) {
                out.push(format!(
                    "spec.analysis.webhooks {:?}: type {kind:?} is not supported",
                    hook.name
                ));
            }
            if hook.disable_tls == Some(true) {
                out.push(format!(
                    "spec.analysis.webhooks {:?}: disableTLS is not supported",
                    hook.name
                ));
            }
        }
        for metric in a.metrics.iter().flatten() {
            let builtin = matches!(
                metric.name.as_str(),
                "request-success-rate" | "request-duration"
            );
            if !builtin && metric.template_ref.is_none() && metric.query.is_none() {
                out.push(format!(
                    "spec.analysis.metrics {:?}: not a builtin metric and no templateRef",
                    metric.name
                ));
            }
        }
    }
    out
}
