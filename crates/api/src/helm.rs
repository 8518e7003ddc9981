//! `helm.toolkit.fluxcd.io/v2`: HelmRelease, a Helm chart installed and upgraded in the cluster.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kustomize::CustomHealthCheck;
use crate::meta::{
    CommonMetadata, Condition, DependencyReference, Image, KubeConfigReference, Patch,
    ResourceInventory, Selector,
};
use crate::schema_helpers;
use crate::source::OCIRepositoryVerification;

/// API group of HelmRelease.
pub const GROUP: &str = "helm.toolkit.fluxcd.io";

api_struct! {
    /// The source of a chart template.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceObjectReference {
        /// API version of the source.
        pub api_version: Option<String>,
        /// `HelmRepository`, `GitRepository` or `Bucket`.
        #[schemars(extend("enum" = ["HelmRepository", "GitRepository", "Bucket"]))]
        pub kind: String,
        /// Name of the source.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Namespace of the source.
        #[schemars(length(min = 1, max = 63))]
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// Metadata of the HelmChart made from a template.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct HelmChartTemplateObjectMeta {
        /// Labels of the HelmChart.
        pub labels: Option<BTreeMap<String, String>>,
        /// Annotations of the HelmChart.
        pub annotations: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// Spec of the HelmChart made from a template.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct HelmChartTemplateSpec {
        /// Chart name or path.
        #[schemars(length(min = 1, max = 2048))]
        pub chart: String,
        /// Semver range; `*` by default.
        #[schemars(extend("default" = "*"))]
        pub version: Option<String>,
        /// Where the chart comes from.
        pub source_ref: CrossNamespaceObjectReference,
        /// How often to check for a new chart.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// `ChartVersion` (the default) or `Revision`.
        #[schemars(extend("enum" = ["ChartVersion", "Revision"], "default" = "ChartVersion"))]
        pub reconcile_strategy: Option<String>,
        /// Values files merged into the chart's values.
        pub values_files: Option<Vec<String>>,
        /// Do not fail when a values file is missing.
        pub ignore_missing_values_files: Option<bool>,
        /// Signature verification of OCI charts.
        pub verify: Option<OCIRepositoryVerification>,
    }
}

api_struct! {
    /// A template of the HelmChart the controller creates for the release.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct HelmChartTemplate {
        /// Metadata of the HelmChart.
        pub metadata: Option<HelmChartTemplateObjectMeta>,
        /// Spec of the HelmChart.
        pub spec: HelmChartTemplateSpec,
    }
}

api_struct! {
    /// A reference to an existing chart source (OCIRepository, HelmChart or ExternalArtifact).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceSourceReference {
        /// API version of the source.
        pub api_version: Option<String>,
        /// `OCIRepository`, `HelmChart` or `ExternalArtifact`.
        #[schemars(extend("enum" = ["OCIRepository", "HelmChart", "ExternalArtifact"]))]
        pub kind: String,
        /// Name of the source.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Namespace of the source.
        #[schemars(length(min = 1, max = 63))]
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// Paths ignored by drift detection, optionally for some objects only.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct IgnoreRule {
        /// JSON pointers to ignore.
        pub paths: Vec<String>,
        /// The objects the rule applies to.
        pub target: Option<Selector>,
    }
}

api_struct! {
    /// Drift detection of the release's objects.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct DriftDetection {
        /// `enabled`, `warn` or `disabled` (default).
        #[schemars(extend("enum" = ["enabled", "warn", "disabled"]))]
        pub mode: Option<String>,
        /// Fields to ignore.
        pub ignore: Option<Vec<IgnoreRule>>,
    }
}

api_struct! {
    /// What to do when an install fails.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct InstallRemediation {
        /// Retries before giving up; negative is forever.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub retries: Option<i64>,
        /// Test failures do not trigger remediation.
        pub ignore_test_failures: Option<bool>,
        /// Remediate the last failure when retries are exhausted.
        pub remediate_last_failure: Option<bool>,
    }
}

api_struct! {
    /// What to do when an upgrade fails.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct UpgradeRemediation {
        /// Retries before giving up; negative is forever.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub retries: Option<i64>,
        /// Test failures do not trigger remediation.
        pub ignore_test_failures: Option<bool>,
        /// Remediate the last failure when retries are exhausted.
        pub remediate_last_failure: Option<bool>,
        /// `rollback` (the default) or `uninstall`.
        #[schemars(extend("enum" = ["rollback", "uninstall"]))]
        pub strategy: Option<String>,
    }
}

api_struct! {
    /// How an install reacts to failure: remediate (the default) or retry.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.retryInterval) || self.name != 'RemediateOnFailure'",
         "message": ".retryInterval cannot be set when .name is 'RemediateOnFailure'"}
    ]))]
    pub struct InstallStrategy {
        /// `RemediateOnFailure` or `RetryOnFailure`.
        #[schemars(extend("enum" = ["RemediateOnFailure", "RetryOnFailure"]))]
        pub name: String,
        /// Wait between retries (`RetryOnFailure` only).
        #[schemars(schema_with = "schema_helpers::duration")]
        pub retry_interval: Option<String>,
    }
}

api_struct! {
    /// How an upgrade reacts to failure: remediate (the default) or retry.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.retryInterval) || self.name == 'RetryOnFailure'",
         "message": ".retryInterval can only be set when .name is 'RetryOnFailure'"}
    ]))]
    pub struct UpgradeStrategy {
        /// `RemediateOnFailure` or `RetryOnFailure`.
        #[schemars(extend("enum" = ["RemediateOnFailure", "RetryOnFailure"]))]
        pub name: String,
        /// Wait between retries (`RetryOnFailure` only).
        #[schemars(schema_with = "schema_helpers::duration")]
        pub retry_interval: Option<String>,
    }
}

api_struct! {
    /// Helm install settings.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Install {
        /// Timeout of the install.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Failure remediation.
        pub remediation: Option<InstallRemediation>,
        /// Remediate or retry on failure.
        pub strategy: Option<InstallStrategy>,
        /// Do not wait for resources to be ready.
        pub disable_wait: Option<bool>,
        /// Do not wait for Jobs to complete.
        pub disable_wait_for_jobs: Option<bool>,
        /// Do not run hooks.
        pub disable_hooks: Option<bool>,
        /// Do not validate against the OpenAPI schema.
        #[serde(rename = "disableOpenAPIValidation")]
        pub disable_open_api_validation: Option<bool>,
        /// Do not validate values against the chart's JSON schema.
        pub disable_schema_validation: Option<bool>,
        /// Do not take ownership of objects that already exist.
        pub disable_take_ownership: Option<bool>,
        /// Apply the manifests with server-side apply.
        pub server_side_apply: Option<bool>,
        /// Reuse the name of a deleted release.
        pub replace: Option<bool>,
        /// Deprecated: skip CRDs (use `crds: Skip`).
        #[serde(rename = "skipCRDs")]
        pub skip_crds: Option<bool>,
        /// `Skip`, `Create` (default) or `CreateReplace`.
        #[schemars(extend("enum" = ["Skip", "Create", "CreateReplace"]))]
        pub crds: Option<String>,
        /// Create the target namespace.
        pub create_namespace: Option<bool>,
    }
}

api_struct! {
    /// Helm upgrade settings.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Upgrade {
        /// Timeout of the upgrade.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Failure remediation.
        pub remediation: Option<UpgradeRemediation>,
        /// Remediate or retry on failure.
        pub strategy: Option<UpgradeStrategy>,
        /// `InPlaceUpdate` or `Reinstall`: what happens when the chart's name changes.
        #[schemars(extend("enum" = ["InPlaceUpdate", "Reinstall"]))]
        pub chart_name_change_strategy: Option<String>,
        /// Do not take ownership of objects that already exist.
        pub disable_take_ownership: Option<bool>,
        /// `enabled`, `disabled` or `auto` (as the release was installed): server-side apply.
        #[schemars(extend("enum" = ["enabled", "disabled", "auto"]))]
        pub server_side_apply: Option<String>,
        /// Do not wait for resources to be ready.
        pub disable_wait: Option<bool>,
        /// Do not wait for Jobs to complete.
        pub disable_wait_for_jobs: Option<bool>,
        /// Do not run hooks.
        pub disable_hooks: Option<bool>,
        /// Do not validate against the OpenAPI schema.
        #[serde(rename = "disableOpenAPIValidation")]
        pub disable_open_api_validation: Option<bool>,
        /// Do not validate values against the chart's JSON schema.
        pub disable_schema_validation: Option<bool>,
        /// Force resource updates through replacement.
        pub force: Option<bool>,
        /// Reuse the last release's values.
        pub preserve_values: Option<bool>,
        /// Delete new resources when the upgrade fails.
        pub cleanup_on_fail: Option<bool>,
        /// `Skip` (default), `Create` or `CreateReplace`.
        #[schemars(extend("enum" = ["Skip", "Create", "CreateReplace"]))]
        pub crds: Option<String>,
    }
}

api_struct! {
    /// Helm test settings.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Test {
        /// Run tests after install and upgrade.
        pub enable: Option<bool>,
        /// Timeout of the tests.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Test failures do not fail the release.
        pub ignore_failures: Option<bool>,
        /// Tests to run or skip by name.
        pub filters: Option<Vec<TestFilter>>,
    }
}

api_struct! {
    /// Selects a Helm test by name.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct TestFilter {
        /// Name of the test.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Skip this test instead of running only the selected ones.
        pub exclude: Option<bool>,
    }
}

api_struct! {
    /// Helm rollback settings.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Rollback {
        /// Timeout of the rollback.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Do not wait for resources to be ready.
        pub disable_wait: Option<bool>,
        /// Do not wait for Jobs to complete.
        pub disable_wait_for_jobs: Option<bool>,
        /// Do not run hooks.
        pub disable_hooks: Option<bool>,
        /// Recreate pods.
        pub recreate: Option<bool>,
        /// Force resource updates through replacement.
        pub force: Option<bool>,
        /// Delete new resources when the rollback fails.
        pub cleanup_on_fail: Option<bool>,
        /// `enabled`, `disabled` or `auto` (as the target release was applied): server-side apply.
        #[schemars(extend("enum" = ["enabled", "disabled", "auto"]))]
        pub server_side_apply: Option<String>,
    }
}

api_struct! {
    /// Helm uninstall settings.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Uninstall {
        /// Timeout of the uninstall.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Do not run hooks.
        pub disable_hooks: Option<bool>,
        /// Keep the release history.
        pub keep_history: Option<bool>,
        /// Do not wait for deletion.
        pub disable_wait: Option<bool>,
        /// `background` (default), `foreground` or `orphan`.
        #[schemars(extend("enum" = ["background", "foreground", "orphan"], "default" = "background"))]
        pub deletion_propagation: Option<String>,
    }
}

api_struct! {
    /// Values taken from a ConfigMap or Secret.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ValuesReference {
        /// `ConfigMap` or `Secret`.
        #[schemars(extend("enum" = ["Secret", "ConfigMap"]))]
        pub kind: String,
        /// Name of the object.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Key holding the values; `values.yaml` by default.
        #[schemars(length(max = 253), regex(pattern = r"^[\-._a-zA-Z0-9]+$"))]
        pub values_key: Option<String>,
        /// Path in the values where the value goes.
        #[schemars(
            length(max = 250),
            regex(pattern = r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$")
        )]
        pub target_path: Option<String>,
        /// A missing object or key is not an error.
        pub optional: Option<bool>,
        /// Set the value at `targetPath` as the literal string, without Helm's `--set` parsing.
        pub literal: Option<bool>,
    }
}

api_struct! {
    /// Kustomize post-renderer.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct Kustomize {
        /// Patches applied to the rendered manifests.
        pub patches: Option<Vec<Patch>>,
        /// Image overrides.
        pub images: Option<Vec<Image>>,
    }
}

api_struct! {
    /// A post-renderer of the rendered manifests.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct PostRenderer {
        /// Kustomize patches and images.
        pub kustomize: Option<Kustomize>,
    }
}

api_struct! {
    /// HelmRelease: a Helm release reconciled from a chart and values.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "helm.toolkit.fluxcd.io",
        version = "v2",
        kind = "HelmRelease",
        namespaced,
        status = "HelmReleaseStatus",
        shortname = "hr",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))",
         "message": "either chart or chartRef must be set"}
    ]))]
    pub struct HelmReleaseSpec {
        /// The chart to make a HelmChart from.
        pub chart: Option<HelmChartTemplate>,
        /// An existing chart source.
        pub chart_ref: Option<CrossNamespaceSourceReference>,
        /// How often to reconcile.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Release to a remote cluster.
        pub kube_config: Option<KubeConfigReference>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// Release name; `[targetNamespace-]name` by default.
        #[schemars(length(min = 1, max = 53))]
        pub release_name: Option<String>,
        /// Namespace to install into.
        #[schemars(length(min = 1, max = 63))]
        pub target_namespace: Option<String>,
        /// Namespace holding the release records.
        #[schemars(length(min = 1, max = 63))]
        pub storage_namespace: Option<String>,
        /// HelmReleases that must be Ready first.
        pub depends_on: Option<Vec<DependencyReference>>,
        /// Timeout of Helm actions; 5m by default.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Release records to keep; 5 by default.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub max_history: Option<i64>,
        /// ServiceAccount to impersonate.
        #[schemars(length(min = 1, max = 253))]
        pub service_account_name: Option<String>,
        /// How to wait for the release's objects: `poller` (kstatus) or `legacy` (Helm's own).
        pub wait_strategy: Option<WaitStrategy>,
        /// CEL health checks for custom resource kinds of the release.
        pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
        /// Reuse one Kubernetes client for all actions.
        pub persistent_client: Option<bool>,
        /// Drift detection.
        pub drift_detection: Option<DriftDetection>,
        /// Install settings.
        pub install: Option<Install>,
        /// Upgrade settings.
        pub upgrade: Option<Upgrade>,
        /// Test settings.
        pub test: Option<Test>,
        /// Rollback settings.
        pub rollback: Option<Rollback>,
        /// Uninstall settings.
        pub uninstall: Option<Uninstall>,
        /// Values taken from ConfigMaps and Secrets, merged in order.
        pub values_from: Option<Vec<ValuesReference>>,
        /// Inline values, merged last.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub values: Option<serde_json::Value>,
        /// Post-renderers, applied in order.
        pub post_renderers: Option<Vec<PostRenderer>>,
        /// How hooks reach the post-renderers: `nohooks` (not at all), `combined` (with the
        /// templates) or `separate` (in a stream of their own).
        #[schemars(extend("enum" = ["nohooks", "combined", "separate"]))]
        pub post_render_strategy: Option<String>,
        /// Labels and annotations added to every object of the release.
        pub common_metadata: Option<CommonMetadata>,
    }
}

/// How the controller waits for a release's objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitStrategy {
    /// `poller` or `legacy`.
    #[schemars(extend("enum" = ["poller", "legacy"]))]
    pub name: String,
}

api_struct! {
    /// State of one Helm test hook of a release.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct TestHookStatus {
        /// When the test started.
        #[schemars(extend("format" = "date-time"))]
        pub last_started: Option<String>,
        /// When the test finished.
        #[schemars(extend("format" = "date-time"))]
        pub last_completed: Option<String>,
        /// Helm's phase of the test, e.g. `Succeeded`.
        pub phase: Option<String>,
    }
}

api_struct! {
    /// One release in the history of a HelmRelease.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Snapshot {
        /// API version of the snapshot.
        pub api_version: Option<String>,
        /// Digest of the release record.
        pub digest: String,
        /// Release name.
        pub name: String,
        /// Release namespace.
        pub namespace: String,
        /// Release version.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub version: i64,
        /// Release status, as Helm writes it.
        pub status: String,
        /// Chart name.
        pub chart_name: String,
        /// Chart version.
        pub chart_version: String,
        /// App version of the chart.
        pub app_version: Option<String>,
        /// Digest of the values.
        pub config_digest: String,
        /// When the release was first deployed.
        #[schemars(extend("format" = "date-time"))]
        pub first_deployed: String,
        /// When the release was last deployed.
        #[schemars(extend("format" = "date-time"))]
        pub last_deployed: String,
        /// When the release was deleted.
        #[schemars(extend("format" = "date-time"))]
        pub deleted: Option<String>,
        /// OCI digest of the chart.
        pub oci_digest: Option<String>,
        /// The Helm action that made this release, e.g. `install` or `upgrade`.
        pub action: Option<String>,
        /// Test hooks of the release by name.
        pub test_hooks: Option<BTreeMap<String, TestHookStatus>>,
    }
}

api_struct! {
    /// Observed state of a HelmRelease.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct HelmReleaseStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Digest of the post-renderers last applied.
        pub observed_post_renderers_digest: Option<String>,
        /// Generation last attempted.
        pub last_attempted_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// `namespace/name` of the HelmChart made for this release.
        pub helm_chart: Option<String>,
        /// Namespace of the release records.
        #[schemars(length(min = 1, max = 63))]
        pub storage_namespace: Option<String>,
        /// Digest of `spec.commonMetadata` last applied.
        pub observed_common_metadata_digest: Option<String>,
        /// Objects of the last release.
        pub inventory: Option<ResourceInventory>,
        /// Releases, newest first.
        pub history: Option<Vec<Snapshot>>,
        /// Last attempted action: `install` or `upgrade`.
        #[schemars(extend("enum" = ["install", "upgrade"]))]
        pub last_attempted_release_action: Option<String>,
        /// How long the last attempted action took, a Go duration.
        pub last_attempted_release_action_duration: Option<String>,
        /// Checksum of the values last attempted (deprecated: `lastAttemptedConfigDigest`
        /// replaced it).
        pub last_attempted_values_checksum: Option<String>,
        /// Version of the last successful release (deprecated: `history` replaced it).
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub last_release_revision: Option<i64>,
        /// Failures since the last success.
        pub failures: Option<i64>,
        /// Install failures since the last success.
        pub install_failures: Option<i64>,
        /// Upgrade failures since the last success.
        pub upgrade_failures: Option<i64>,
        /// Chart version last attempted.
        pub last_attempted_revision: Option<String>,
        /// Chart digest last attempted.
        pub last_attempted_revision_digest: Option<String>,
        /// Values digest last attempted.
        pub last_attempted_config_digest: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/forceAt` annotation.
        pub last_handled_force_at: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/resetAt` annotation.
        pub last_handled_reset_at: Option<String>,
    }
}
