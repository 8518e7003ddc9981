//! `kustomize.toolkit.fluxcd.io/v1`: Kustomization, a source path built with kustomize and
//! applied to the cluster.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{
    CommonMetadata, Condition, DependencyReference, Image, KubeConfigReference,
    LocalObjectReference, NamespacedObjectKindReference, Patch, ResourceInventory, Selector,
    Snapshot,
};
use crate::schema_helpers;

/// API group of Kustomization.
pub const GROUP: &str = "kustomize.toolkit.fluxcd.io";

/// Annotations and labels the kustomize controller honours on applied objects.
pub mod annotation {
    /// `Merge`, `IfNotPresent` or `Ignore`: how server-side apply treats the object.
    pub const SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";
    /// `disabled`: the object is never pruned.
    pub const PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
    /// `disabled`: the object is left alone.
    pub const RECONCILE: &str = "kustomize.toolkit.fluxcd.io/reconcile";
    /// `disabled`: post-build substitution skips the object.
    pub const SUBSTITUTE: &str = "kustomize.toolkit.fluxcd.io/substitute";
    /// `enabled`: the object is recreated when an immutable field changes.
    pub const FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
}

api_struct! {
    /// Decryption of SOPS-encrypted manifests.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Decryption {
        /// `sops`.
        #[schemars(extend("enum" = ["sops"]))]
        pub provider: String,
        /// Secret with the decryption keys.
        pub secret_ref: Option<LocalObjectReference>,
        /// ServiceAccount used for KMS workload identity.
        pub service_account_name: Option<String>,
    }
}

api_struct! {
    /// Variables substituted in the built manifests.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PostBuild {
        /// Variables by name.
        pub substitute: Option<BTreeMap<String, String>>,
        /// ConfigMaps and Secrets whose data are variables.
        pub substitute_from: Option<Vec<SubstituteReference>>,
        /// `WithVariables` (the default) substitutes only when variables are given; `Always` also
        /// runs substitution (and its `${VAR:=default}` forms) without any.
        #[schemars(extend("enum" = ["WithVariables", "Always"]))]
        pub substitute_strategy: Option<String>,
    }
}

api_struct! {
    /// A ConfigMap or Secret holding substitution variables.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct SubstituteReference {
        /// `ConfigMap` or `Secret`.
        #[schemars(extend("enum" = ["Secret", "ConfigMap"]))]
        pub kind: String,
        /// Name of the object, in the Kustomization's namespace.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// A missing object is not an error.
        #[schemars(extend("default" = false))]
        pub optional: Option<bool>,
    }
}

api_struct! {
    /// A CEL health check for a custom resource kind.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CustomHealthCheck {
        /// API version of the kind.
        pub api_version: String,
        /// Kind the expressions apply to.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub kind: String,
        /// CEL expression: the object is in progress.
        pub in_progress: Option<String>,
        /// CEL expression: the object failed.
        pub failed: Option<String>,
        /// CEL expression: the object is healthy.
        pub current: String,
    }
}

api_struct! {
    /// Fields of the applied objects left out of drift detection and correction.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct IgnoreRule {
        /// JSON pointers (RFC 6901) of the ignored fields, e.g. `/spec/replicas`.
        pub paths: Vec<String>,
        /// The objects the rule applies to (regular expressions and label selectors); every
        /// applied object when unset.
        pub target: Option<Selector>,
    }
}

api_struct! {
    /// The source a Kustomization builds from.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceSourceReference {
        /// API version of the source.
        pub api_version: Option<String>,
        /// `OCIRepository`, `GitRepository`, `Bucket` or `ExternalArtifact`.
        #[schemars(extend("enum" = ["OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"]))]
        pub kind: String,
        /// Name of the source.
        pub name: String,
        /// Namespace of the source; the Kustomization's by default.
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// Kustomization: builds a path of a source artifact and applies it.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "kustomize.toolkit.fluxcd.io",
        version = "v1",
        kind = "Kustomization",
        namespaced,
        status = "KustomizationStatus",
        shortname = "ks",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct KustomizationSpec {
        /// Labels and annotations added to every applied object.
        pub common_metadata: Option<CommonMetadata>,
        /// Build annotations kustomize adds to objects: `originAnnotations`,
        /// `transformerAnnotations`.
        #[schemars(extend("items" = {"type": "string", "enum": ["originAnnotations", "transformerAnnotations"]}))]
        pub build_metadata: Option<Vec<String>>,
        /// Fields left out of drift detection, so other controllers may change them.
        pub ignore: Option<Vec<IgnoreRule>>,
        /// Components to include, relative to `path`.
        pub components: Option<Vec<String>>,
        /// Kustomizations that must be Ready first.
        pub depends_on: Option<Vec<DependencyReference>>,
        /// Decryption of encrypted manifests.
        pub decryption: Option<Decryption>,
        /// How often to reconcile (and correct drift).
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Interval after a failure; `interval` by default.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub retry_interval: Option<String>,
        /// Apply to a remote cluster.
        pub kube_config: Option<KubeConfigReference>,
        /// Path in the artifact to build; the root by default.
        pub path: Option<String>,
        /// Variable substitution after the build.
        pub post_build: Option<PostBuild>,
        /// Delete objects that left the source.
        pub prune: bool,
        /// Objects whose health gates readiness.
        pub health_checks: Option<Vec<NamespacedObjectKindReference>>,
        /// CEL health checks for custom resource kinds.
        pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
        /// Prefix added to every name.
        #[schemars(length(min = 1, max = 200))]
        pub name_prefix: Option<String>,
        /// Suffix added to every name.
        #[schemars(length(min = 1, max = 200))]
        pub name_suffix: Option<String>,
        /// Patches applied after the build.
        pub patches: Option<Vec<Patch>>,
        /// Image overrides applied after the build.
        pub images: Option<Vec<Image>>,
        /// ServiceAccount to impersonate when applying.
        pub service_account_name: Option<String>,
        /// The source to build from.
        pub source_ref: CrossNamespaceSourceReference,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// Namespace set on every namespaced object.
        #[schemars(length(min = 1, max = 63))]
        pub target_namespace: Option<String>,
        /// Timeout for apply and health checks; `interval` by default.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub timeout: Option<String>,
        /// Recreate objects whose immutable fields changed.
        #[schemars(extend("default" = false))]
        pub force: Option<bool>,
        /// Wait for every applied object to be healthy.
        pub wait: Option<bool>,
        /// `MirrorPrune` (default), `Delete`, `WaitForTermination` or `Orphan`.
        #[schemars(extend("enum" = ["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]))]
        pub deletion_policy: Option<String>,
        /// Do not fail when a component is missing.
        pub ignore_missing_components: Option<bool>,
    }
}

api_struct! {
    /// Observed state of a Kustomization.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct KustomizationStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// Revision last applied successfully.
        pub last_applied_revision: Option<String>,
        /// Origin revision (OCI annotation) last applied.
        pub last_applied_origin_revision: Option<String>,
        /// Revision last attempted.
        pub last_attempted_revision: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
        /// Objects applied by the last successful reconciliation.
        pub inventory: Option<ResourceInventory>,
        /// The latest distinct reconciliations, newest first.
        pub history: Option<Vec<Snapshot>>,
    }
}
