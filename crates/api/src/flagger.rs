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
        /// Application protocol of the port.
        pub app_protocol: Option<String>,
        /// Traffic distribution of the Services.
        pub traffic_distribution: Option<String>,
        /// Headless Services.
        pub headless: Option<bool>,
        /// Request timeout (mesh providers).
        pub timeout: Option<String>,
        /// Backend timeout (mesh providers).
        pub backend_timeout: Option<String>,
        /// Mesh name (App Mesh).
        pub mesh_name: Option<String>,
        /// Backends (App Mesh).
        pub backends: Option<Vec<String>>,
        /// Delegation (Istio).
        pub delegation: Option<bool>,
        /// The mesh providers' route settings below are kept as written (ferroflux's routers
        /// refuse them): match conditions.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub r#match: Option<Vec<serde_json::Value>>,
        /// Retries.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub retries: Option<serde_json::Value>,
        /// Rewrites.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub rewrite: Option<serde_json::Value>,
        /// Mirrors.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub mirror: Option<Vec<serde_json::Value>>,
        /// Header operations.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub headers: Option<serde_json::Value>,
        /// CORS policy.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub cors_policy: Option<serde_json::Value>,
        /// Traffic policy.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub traffic_policy: Option<serde_json::Value>,
        /// Metadata of the apex Service.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub apex: Option<serde_json::Value>,
        /// Metadata of the primary Service.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub primary: Option<serde_json::Value>,
        /// Metadata of the canary Service.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub canary: Option<serde_json::Value>,
        /// Metadata left to others.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub unmanaged_metadata: Option<serde_json::Value>,
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
        /// Send no alert when the hook fails.
        #[serde(rename = "muteAlert")]
        pub mute_alert: Option<bool>,
        /// Retries of the call.
        pub retries: Option<i32>,
        /// Skip TLS verification.
        #[serde(rename = "disableTLS")]
        pub disable_tls: Option<bool>,
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
        /// Alerts sent through AlertProviders.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub alerts: Option<Vec<serde_json::Value>>,
        /// Session affinity of a canary run.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub session_affinity: Option<serde_json::Value>,
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
        /// APISIX route (kept as written; refused).
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub route_ref: Option<serde_json::Value>,
        /// Gloo upstream (kept as written; refused).
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub upstream_ref: Option<serde_json::Value>,
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
        /// Session affinity cookie of the current run.
        pub session_affinity_cookie: Option<String>,
        /// Primary session affinity cookie of the current run.
        pub primary_session_affinity_cookie: Option<String>,
        /// Session affinity cookie of the previous run.
        pub previous_session_affinity_cookie: Option<String>,
    }
}

api_struct! {
    /// A reference to a Secret in the object's namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct SecretReference {
        /// Name of the Secret.
        pub name: String,
    }
}

api_struct! {
    /// Where a MetricTemplate's query runs.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct MetricTemplateProvider {
        /// Provider type (ferroflux runs `prometheus`).
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["prometheus", "influxdb", "datadog", "externalmetrics",
            "stackdriver", "cloudwatch", "newrelic", "graphite", "dynatrace", "keptn", "splunk"]))]
        pub provider_type: String,
        /// API address.
        pub address: Option<String>,
        /// Headers of the requests.
        pub headers: Option<BTreeMap<String, Vec<String>>>,
        /// Secret with the credentials.
        pub secret_ref: Option<SecretReference>,
        /// Region (cloud providers).
        pub region: Option<String>,
        /// Skip TLS verification.
        pub insecure_skip_verify: Option<bool>,
    }
}

api_struct! {
    /// MetricTemplate: a query the Canary analysis runs.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "flagger.app",
        version = "v1beta1",
        kind = "MetricTemplate",
        namespaced,
        status = "FlaggerStatus",
        category = "all",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider.type"}"#
    )]
    pub struct MetricTemplateSpec {
        /// Where the query runs.
        pub provider: MetricTemplateProvider,
        /// The query, a Go template.
        pub query: String,
    }
}

api_struct! {
    /// AlertProvider: where Canary alerts are sent.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "flagger.app",
        version = "v1beta1",
        kind = "AlertProvider",
        namespaced,
        status = "FlaggerStatus",
        category = "all",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct AlertProviderSpec {
        /// Provider type.
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["slack", "msteams", "discord", "rocket", "gchat"]))]
        pub provider_type: String,
        /// Channel.
        pub channel: Option<String>,
        /// Bot user name.
        pub username: Option<String>,
        /// Hook URL.
        pub address: Option<String>,
        /// HTTP(S) proxy.
        pub proxy: Option<String>,
        /// Secret holding the address.
        pub secret_ref: Option<SecretReference>,
    }
}

api_struct! {
    /// The status of MetricTemplates and AlertProviders: Flagger's conditions.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct FlaggerStatus {
        /// Conditions.
        pub conditions: Option<Vec<CanaryCondition>>,
    }
}
