//! `flagger.app/v1beta1`: Canary, Flagger-style progressive delivery of a Deployment.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema_helpers;

/// API group of Canary.
pub const GROUP: &str = "flagger.app";

/// A reference to the object a Canary manages or uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// API version of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the object.
    pub name: String,
}

/// The Service Flagger generates for the primary and canary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryService {
    /// Service name; the target's name by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Container port.
    pub port: i32,
    /// Port name; `http` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Target port (number or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::preserve_any")]
    pub target_port: Option<serde_json::Value>,
    /// Also expose the target's other ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_discovery: Option<bool>,
    /// Hosts of the generated route (mesh / ingress providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Gateways of the generated route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<Vec<String>>,
    /// Gateway API parent references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::preserve_object_list")]
    pub gateway_refs: Option<Vec<serde_json::Value>>,
}

/// Accepted range of a metric.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ThresholdRange {
    /// Lowest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest accepted value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A metric checked at every analysis step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    /// Metric name; `request-success-rate` and `request-duration` are built in.
    pub name: String,
    /// Window of the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::duration")]
    pub interval: Option<String>,
    /// Deprecated: maximum (use thresholdRange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Accepted range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// Inline query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// MetricTemplate to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<CrossNamespaceObjectReference>,
    /// Variables of the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<BTreeMap<String, String>>,
}

/// A reference to an object in another namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A webhook called during the analysis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CanaryWebhook {
    /// Name of the hook.
    pub name: String,
    /// When it runs: `confirm-rollout`, `pre-rollout`, `rollout`, `post-rollout`, `rollback`, ...
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub hook_type: Option<String>,
    /// Address to call.
    pub url: String,
    /// Timeout of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::duration")]
    pub timeout: Option<String>,
    /// Metadata sent with the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// How the canary is analysed and promoted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAnalysis {
    /// Time between steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::duration")]
    pub interval: Option<String>,
    /// Iterations, for A/B and blue/green.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// Mirror traffic to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<bool>,
    /// Weight of mirrored traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_weight: Option<i32>,
    /// Highest canary weight before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<i32>,
    /// Weight added at each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<i32>,
    /// Explicit weights of the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weights: Option<Vec<i32>>,
    /// Weight step during promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight_promotion: Option<i32>,
    /// Failed checks before rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<i32>,
    /// Readiness of the primary required, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_ready_threshold: Option<i32>,
    /// Readiness of the canary required, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_ready_threshold: Option<i32>,
    /// Metrics checked at every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<CanaryMetric>>,
    /// Webhooks called during the analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<CanaryWebhook>>,
    /// HTTP match conditions for A/B testing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::preserve_object_list")]
    pub r#match: Option<Vec<serde_json::Value>>,
}

/// Canary: progressive delivery of a Deployment.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "Canary",
    namespaced,
    status = "CanaryStatus",
    category = "all",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Weight","type":"string","jsonPath":".status.canaryWeight"}"#,
    printcolumn = r#"{"name":"FailedChecks","type":"string","jsonPath":".status.failedChecks","priority":1}"#,
    printcolumn = r#"{"name":"LastTransitionTime","type":"string","jsonPath":".status.lastTransitionTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// Service mesh or ingress provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Prometheus address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<String>,
    /// The Deployment (or DaemonSet) to deliver.
    pub target_ref: LocalObjectReference,
    /// HorizontalPodAutoscaler of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_ref: Option<LocalObjectReference>,
    /// Ingress used for traffic shifting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_ref: Option<LocalObjectReference>,
    /// The Service to generate.
    pub service: CanaryService,
    /// How the canary is analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CanaryAnalysis>,
    /// Seconds before a stuck rollout is rolled back; 600 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Promote without analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_analysis: Option<bool>,
    /// Stop the analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Restore the original target when the Canary is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_on_deletion: Option<bool>,
}

/// A condition in Flagger's own shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryCondition {
    /// `Promoted`.
    #[serde(rename = "type")]
    pub condition_type: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When it was last updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Observed state of a Canary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// `Initializing`, `Initialized`, `Waiting`, `Progressing`, `Promoting`, `Finalising`,
    /// `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Failed checks of the current analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_checks: Option<i32>,
    /// Current canary weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_weight: Option<i32>,
    /// Iterations run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i32>,
    /// Hash of the last applied target spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_spec: Option<String>,
    /// Hash of the last promoted target spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_promoted_spec: Option<String>,
    /// ConfigMaps and Secrets tracked, with their checksums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracked_configs: Option<BTreeMap<String, String>>,
    /// When the phase last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Conditions of the Canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<CanaryCondition>>,
}
