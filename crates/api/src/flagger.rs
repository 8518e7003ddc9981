//! `flagger.app/v1beta1`: Canary, Flagger-style progressive delivery of a Deployment.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema_helpers;

/// API group of Canary.
pub const GROUP: &str = "flagger.app";

api_struct! {
    /// A reference to the object a Canary manages or uses.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct LocalObjectReference {
        /// API version of the object.
        pub api_version: Option<String>,
        /// Kind of the object.
        pub kind: Option<String>,
        /// Name of the object.
        pub name: String,
    }
}

api_struct! {
    /// The Service Flagger generates for the primary and canary.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CanaryService {
        /// Service name; the target's name by default.
        pub name: Option<String>,
        /// Container port.
        pub port: i32,
        /// Port name; `http` by default.
        pub port_name: Option<String>,
        /// Target port (number or name).
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub target_port: Option<serde_json::Value>,
        /// Also expose the target's other ports.
        pub port_discovery: Option<bool>,
        /// Hosts of the generated route (mesh / ingress providers).
        pub hosts: Option<Vec<String>>,
        /// Gateways of the generated route.
        pub gateways: Option<Vec<String>>,
        /// Gateway API parent references.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub gateway_refs: Option<Vec<serde_json::Value>>,
    }
}

api_struct! {
    /// Accepted range of a metric.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ThresholdRange {
        /// Lowest accepted value.
        pub min: Option<f64>,
        /// Highest accepted value.
        pub max: Option<f64>,
    }
}

api_struct! {
    /// A metric checked at every analysis step.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CanaryMetric {
        /// Metric name; `request-success-rate` and `request-duration` are built in.
        pub name: String,
        /// Window of the query.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// Deprecated: maximum (use thresholdRange).
        pub threshold: Option<f64>,
        /// Accepted range.
        pub threshold_range: Option<ThresholdRange>,
        /// Inline query.
        pub query: Option<String>,
        /// MetricTemplate to use.
        pub template_ref: Option<CrossNamespaceObjectReference>,
        /// Variables of the template.
        pub template_variables: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// A reference to an object in another namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceObjectReference {
        /// API version.
        pub api_version: Option<String>,
        /// Kind.
        pub kind: Option<String>,
        /// Name.
        pub name: String,
        /// Namespace.
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// A webhook called during the analysis.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct CanaryWebhook {
        /// Name of the hook.
        pub name: String,
        /// When it runs: `confirm-rollout`, `pre-rollout`, `rollout`, `post-rollout`, `rollback`, ...
        #[serde(rename = "type")]
        pub hook_type: Option<String>,
        /// Address to call.
        pub url: String,
        /// Timeout of the call.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Metadata sent with the call.
        pub metadata: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// How the canary is analysed and promoted.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CanaryAnalysis {
        /// Time between steps.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// Iterations, for A/B and blue/green.
        pub iterations: Option<i32>,
        /// Mirror traffic to the canary.
        pub mirror: Option<bool>,
        /// Weight of mirrored traffic.
        pub mirror_weight: Option<i32>,
        /// Highest canary weight before promotion.
        pub max_weight: Option<i32>,
        /// Weight added at each step.
        pub step_weight: Option<i32>,
        /// Explicit weights of the steps.
        pub step_weights: Option<Vec<i32>>,
        /// Weight step during promotion.
        pub step_weight_promotion: Option<i32>,
        /// Failed checks before rollback.
        pub threshold: Option<i32>,
        /// Readiness of the primary required, in percent.
        pub primary_ready_threshold: Option<i32>,
        /// Readiness of the canary required, in percent.
        pub canary_ready_threshold: Option<i32>,
        /// Metrics checked at every step.
        pub metrics: Option<Vec<CanaryMetric>>,
        /// Webhooks called during the analysis.
        pub webhooks: Option<Vec<CanaryWebhook>>,
        /// HTTP match conditions for A/B testing.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub r#match: Option<Vec<serde_json::Value>>,
    }
}

api_struct! {
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
        pub provider: Option<String>,
        /// Prometheus address.
        pub metrics_server: Option<String>,
        /// The Deployment (or DaemonSet) to deliver.
        pub target_ref: LocalObjectReference,
        /// HorizontalPodAutoscaler of the target.
        pub autoscaler_ref: Option<LocalObjectReference>,
        /// Ingress used for traffic shifting.
        pub ingress_ref: Option<LocalObjectReference>,
        /// The Service to generate.
        pub service: CanaryService,
        /// How the canary is analysed.
        pub analysis: Option<CanaryAnalysis>,
        /// Seconds before a stuck rollout is rolled back; 600 by default.
        pub progress_deadline_seconds: Option<i32>,
        /// Promote without analysis.
        pub skip_analysis: Option<bool>,
        /// Stop the analysis.
        pub suspend: Option<bool>,
        /// Restore the original target when the Canary is deleted.
        pub revert_on_deletion: Option<bool>,
    }
}

api_struct! {
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
        pub last_update_time: Option<String>,
        /// When the status last changed.
        pub last_transition_time: Option<String>,
        /// Machine-readable reason.
        pub reason: Option<String>,
        /// Human-readable message.
        pub message: Option<String>,
    }
}

api_struct! {
    /// Observed state of a Canary.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CanaryStatus {
        /// `Initializing`, `Initialized`, `Waiting`, `Progressing`, `Promoting`, `Finalising`,
        /// `Succeeded` or `Failed`.
        pub phase: Option<String>,
        /// Failed checks of the current analysis.
        pub failed_checks: Option<i32>,
        /// Current canary weight.
        pub canary_weight: Option<i32>,
        /// Iterations run.
        pub iterations: Option<i32>,
        /// Hash of the last applied target spec.
        pub last_applied_spec: Option<String>,
        /// Hash of the last promoted target spec.
        pub last_promoted_spec: Option<String>,
        /// ConfigMaps and Secrets tracked, with their checksums.
        pub tracked_configs: Option<BTreeMap<String, String>>,
        /// When the phase last changed.
        pub last_transition_time: Option<String>,
        /// Conditions of the Canary.
        pub conditions: Option<Vec<CanaryCondition>>,
    }
}
