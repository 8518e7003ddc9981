//! Types and constants shared by every Flux kind (Flux's `fluxcd/pkg/apis/meta`): references,
//! artifacts, conditions, reconcile requests, inventories.

use std::collections::BTreeMap;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Annotation that asks a controller to reconcile now; its value is echoed in
/// `status.lastHandledReconcileAt` once handled.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Condition types Flux controllers write.
pub mod condition_type {
    /// The object is reconciled and healthy.
    pub const READY: &str = "Ready";
    /// The controller is working on the object.
    pub const RECONCILING: &str = "Reconciling";
    /// The controller cannot go on without a change by the user.
    pub const STALLED: &str = "Stalled";
    /// The applied workloads pass their health checks.
    pub const HEALTHY: &str = "Healthy";
    /// A source could not be fetched.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// The artifact is in storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// The artifact's signature was verified.
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
    /// An artifact is outdated and a new one is being made.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
}

/// Condition reasons Flux controllers write.
pub mod reason {
    /// Reconciliation succeeded.
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// Reconciliation failed.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// A reconciliation is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// A dependency is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A reference points where the controller may not go.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// The source artifact could not be fetched.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// The build (kustomize, substitution) failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Health checks failed within the timeout.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Signature verification failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// Authentication with the source failed.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// A Git operation failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// An OCI registry operation failed.
    pub const OCI_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// The spec is invalid.
    pub const INVALID: &str = "InvalidSpec";
}

/// A reference to an object in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

api_struct! {
    /// A reference to an object in the same or (when allowed) another namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct NamespacedObjectReference {
        /// Name of the referent.
        pub name: String,
        /// Namespace of the referent; defaults to the referrer's namespace.
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// A reference to an object of a given kind, optionally in another namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NamespacedObjectKindReference {
        /// API version of the referent.
        pub api_version: Option<String>,
        /// Kind of the referent.
        pub kind: String,
        /// Name of the referent.
        pub name: String,
        /// Namespace of the referent; defaults to the referrer's namespace.
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// A reference to a key of a Secret in the same namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct SecretKeyReference {
        /// Name of the Secret.
        pub name: String,
        /// Key in the Secret; when empty the controller's default key is used.
        pub key: Option<String>,
    }
}

api_struct! {
    /// A reference to a key of a ConfigMap in the same namespace.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct ConfigMapKeyReference {
        /// Name of the ConfigMap.
        pub name: String,
        /// Key in the ConfigMap.
        pub key: Option<String>,
    }
}

api_struct! {
    /// A KubeConfig for reconciling against a remote cluster.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "has(self.configMapRef) || has(self.secretRef)",
         "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"},
        {"rule": "!has(self.configMapRef) || !has(self.secretRef)",
         "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"}
    ]))]
    pub struct KubeConfigReference {
        /// Secret holding the kubeconfig (key `value` or `value.yaml` unless given).
        pub secret_ref: Option<SecretKeyReference>,
        /// ConfigMap with a provider-based kubeconfig.
        pub config_map_ref: Option<LocalObjectReference>,
    }
}

api_struct! {
    /// A dependency on another object of the same kind that must be Ready first.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct DependencyReference {
        /// Name of the dependency.
        pub name: String,
        /// Namespace of the dependency; defaults to the dependent's namespace.
        pub namespace: Option<String>,
        /// A CEL expression that decides readiness instead of the Ready condition.
        pub ready_expr: Option<String>,
    }
}

/// Namespaces allowed to reference an object (`spec.accessFrom`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespaces whose labels match any of these selectors may reference the object.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

api_struct! {
    /// A label selector for namespaces.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NamespaceSelector {
        /// Labels a namespace must carry.
        pub match_labels: Option<BTreeMap<String, String>>,
    }
}

/// The output of a source reconciliation: a tarball served over HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the artifact relative to the storage root.
    pub path: String,
    /// HTTP address the artifact can be downloaded from.
    pub url: String,
    /// Human-readable source revision, e.g. `main@sha1:<hash>` or `1.2.0@sha256:<digest>`.
    pub revision: String,
    /// Digest of the file, `<algorithm>:<hex>`. Required by the schema as upstream's; kept an
    /// `Option` (serde reads a missing one as `None`) so stored objects of older writers decode.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(
        required,
        regex(pattern = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
    )]
    pub digest: Option<String>,
    /// When the artifact was last updated.
    pub last_update_time: Time,
    /// Size of the file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Metadata of the source (e.g. OCI annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// An object's entry in a Kustomization inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceRef {
    /// `<namespace>_<name>_<group>_<kind>`, the form Flux writes.
    pub id: String,
    /// API version of the object.
    pub v: String,
}

/// The objects a Kustomization applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceInventory {
    /// One entry per applied object.
    pub entries: Vec<ResourceRef>,
}

api_struct! {
    /// One distinct reconciliation in an object's `status.history`: the same digest of the applied
    /// set is counted, not repeated.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Snapshot {
        /// Digest of what was reconciled, `<algorithm>:<hex>`.
        pub digest: String,
        /// When this digest was reconciled first.
        pub first_reconciled: Time,
        /// When this digest was reconciled last.
        pub last_reconciled: Time,
        /// How long the last reconciliation took, a Go duration.
        pub last_reconciled_duration: String,
        /// Outcome of the last reconciliation, e.g. `ReconciliationSucceeded`.
        pub last_reconciled_status: String,
        /// How many times this digest was reconciled.
        pub total_reconciliations: i64,
        /// Facts about the reconciliation (e.g. the source revision).
        pub metadata: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// Metadata copied onto every object a Kustomization or HelmRelease applies.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct CommonMetadata {
        /// Annotations to add.
        pub annotations: Option<BTreeMap<String, String>>,
        /// Labels to add.
        pub labels: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// A kustomize resource selector, used by patch targets.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Selector {
        /// API group.
        pub group: Option<String>,
        /// API version.
        pub version: Option<String>,
        /// Kind.
        pub kind: Option<String>,
        /// Namespace.
        pub namespace: Option<String>,
        /// Name (a regular expression).
        pub name: Option<String>,
        /// Annotation selector.
        pub annotation_selector: Option<String>,
        /// Label selector.
        pub label_selector: Option<String>,
    }
}

api_struct! {
    /// A strategic merge or JSON6902 patch with an optional target.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct Patch {
        /// The patch, YAML or JSON.
        pub patch: String,
        /// Objects the patch applies to.
        pub target: Option<Selector>,
    }
}

api_struct! {
    /// A kustomize image override.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Image {
        /// Image name to match, without tag.
        pub name: String,
        /// New image name.
        pub new_name: Option<String>,
        /// New tag.
        pub new_tag: Option<String>,
        /// Digest, replacing the tag.
        pub digest: Option<String>,
    }
}
