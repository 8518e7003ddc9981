//! `image.toolkit.fluxcd.io`: registry scanning (ImageRepository), tag selection
//! (ImagePolicy) and Git updates (ImageUpdateAutomation). Storage version `v1`; `v1beta2` is
//! served for all three and `v1beta1` for ImageUpdateAutomation.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{
    AccessFrom, Condition, LabelSelector, LocalObjectReference, NamespacedObjectReference,
};
use crate::schema_helpers;

/// API group of the image kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";

/// The exclusion list an ImageRepository gets when it sets none: cosign signature tags.
pub const DEFAULT_EXCLUSION_LIST: &[&str] = &["^.*\\.sig$"];

api_struct! {
    /// ImageRepository: a registry repository whose tags are scanned.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "image.toolkit.fluxcd.io",
        version = "v1",
        kind = "ImageRepository",
        namespaced,
        status = "ImageRepositoryStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Last scan","type":"string","jsonPath":".status.lastScanResult.scanTime"}"#,
        printcolumn = r#"{"name":"Tags","type":"string","jsonPath":".status.lastScanResult.tagCount"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ImageRepositorySpec {
        /// Image name, with or without registry host.
        pub image: String,
        /// Secret with TLS client certificate and CA.
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Secret with proxy settings.
        pub proxy_secret_ref: Option<LocalObjectReference>,
        /// A `kubernetes.io/dockerconfigjson` Secret.
        pub secret_ref: Option<LocalObjectReference>,
        /// ServiceAccount whose imagePullSecrets are used.
        #[schemars(length(max = 253))]
        pub service_account_name: Option<String>,
        /// How often to scan.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Timeout of a scan; `interval` by default.
        #[schemars(schema_with = "schema_helpers::timeout")]
        pub timeout: Option<String>,
        /// Regular expressions of tags to ignore; `^.*\.sig$` by default.
        #[schemars(length(max = 25), extend("default" = ["^.*\\.sig$"]))]
        pub exclusion_list: Option<Vec<String>>,
        /// Namespaces whose ImagePolicies may reference this repository.
        pub access_from: Option<AccessFrom>,
        /// Stop scanning.
        pub suspend: Option<bool>,
        /// `generic` (default), `aws`, `azure` or `gcp`.
        #[schemars(extend("enum" = ["generic", "aws", "azure", "gcp"], "default" = "generic"))]
        pub provider: Option<String>,
        /// Talk plain HTTP to the registry.
        pub insecure: Option<bool>,
    }
}

api_struct! {
    /// The result of the last scan.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ScanResult {
        /// Digest of the tag list.
        pub revision: Option<String>,
        /// Number of tags found.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub tag_count: i64,
        /// When the scan happened.
        #[schemars(extend("format" = "date-time"))]
        pub scan_time: Option<String>,
        /// The ten most recent tags, in Flux's order.
        pub latest_tags: Option<Vec<String>>,
    }
}

api_struct! {
    /// Observed state of an ImageRepository.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct ImageRepositoryStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The image name with its registry host, as scanned.
        pub canonical_image_name: Option<String>,
        /// The last scan.
        pub last_scan_result: Option<ScanResult>,
        /// The exclusion list used by the last scan.
        pub observed_exclusion_list: Option<Vec<String>>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// Tag ordering: `asc` or `desc`.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct OrderPolicy {
        /// `asc` (default) or `desc`.
        #[schemars(extend("enum" = ["asc", "desc"], "default" = "asc"))]
        pub order: Option<String>,
    }
}

/// A semver range policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SemVerPolicy {
    /// The range tags must satisfy; the highest wins.
    pub range: String,
}

api_struct! {
    /// How the latest tag is chosen: exactly one field is set.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct ImagePolicyChoice {
        /// Highest semver in a range.
        pub semver: Option<SemVerPolicy>,
        /// Last in byte order (or first with `desc`).
        pub alphabetical: Option<OrderPolicy>,
        /// Highest number (or lowest with `desc`).
        pub numerical: Option<OrderPolicy>,
    }
}

api_struct! {
    /// Tag filter applied before the policy.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct TagFilter {
        /// Regular expression (RE2 syntax) tags must match.
        pub pattern: Option<String>,
        /// Replacement (`$1`, `$name`) of the match that is ranked instead of the tag.
        pub extract: Option<String>,
    }
}

api_struct! {
    /// ImagePolicy: picks the latest tag of an ImageRepository.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "image.toolkit.fluxcd.io",
        version = "v1",
        kind = "ImagePolicy",
        namespaced,
        status = "ImagePolicyStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.latestRef.name"}"#,
        printcolumn = r#"{"name":"Tag","type":"string","jsonPath":".status.latestRef.tag"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')",
         "message": "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'"},
        {"rule": "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'",
         "message": "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'"}
    ]))]
    pub struct ImagePolicySpec {
        /// The ImageRepository whose tags are considered.
        pub image_repository_ref: NamespacedObjectReference,
        /// How the latest tag is chosen.
        pub policy: ImagePolicyChoice,
        /// Filter applied before the policy.
        pub filter_tags: Option<TagFilter>,
        /// `Never` (default), `IfNotPresent` or `Always`: reflect the tag's digest.
        #[schemars(extend("enum" = ["Always", "IfNotPresent", "Never"], "default" = "Never"))]
        pub digest_reflection_policy: Option<String>,
        /// With `digestReflectionPolicy: Always`, how often to re-read the digest.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// An image reference split into its parts.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct ImageRef {
        /// Image name with registry host.
        pub name: String,
        /// Tag.
        pub tag: String,
        /// Digest, when reflected.
        pub digest: Option<String>,
    }
}

api_struct! {
    /// Observed state of an ImagePolicy.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct ImagePolicyStatus {
        /// The selected image (v1).
        pub latest_ref: Option<ImageRef>,
        /// The previously selected image (v1).
        pub observed_previous_ref: Option<ImageRef>,
        /// v1beta2: the selected image as `name:tag`.
        pub latest_image: Option<String>,
        /// v1beta2: the previously selected image as `name:tag`.
        pub observed_previous_image: Option<String>,
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// The GitRepository an automation writes to.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceSourceReference {
        /// API version of the source.
        pub api_version: Option<String>,
        /// `GitRepository`.
        #[schemars(extend("enum" = ["GitRepository"], "default" = "GitRepository"))]
        pub kind: String,
        /// Name of the source.
        pub name: String,
        /// Namespace of the source.
        pub namespace: Option<String>,
    }
}

/// What to check out before updating.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GitCheckoutSpec {
    /// The ref to check out (as GitRepository's `ref`).
    #[serde(rename = "ref")]
    pub reference: crate::source::GitRepositoryRef,
}

api_struct! {
    /// Commit author.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct CommitUser {
        /// Name of the author.
        pub name: Option<String>,
        /// Email of the author.
        pub email: String,
    }
}

api_struct! {
    /// The key commits are signed with.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct SigningKey {
        /// Secret with the key: `git.asc` (and `passphrase`) for `gpg`, `identity` (and
        /// `password`) for `ssh`, the keys a GitRepository's SSH Secret uses.
        pub secret_ref: LocalObjectReference,
        /// `gpg` (OpenPGP, the default) or `ssh`.
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["gpg", "ssh"]))]
        pub key_type: Option<String>,
    }
}

api_struct! {
    /// How commits are made.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CommitSpec {
        /// Author of the commits.
        pub author: CommitUser,
        /// Signing key.
        pub signing_key: Option<SigningKey>,
        /// Go template of the commit message.
        pub message_template: Option<String>,
        /// Extra values for the message template (`.Values`).
        pub message_template_values: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// Where commits are pushed.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct PushSpec {
        /// Branch to push to; the checkout branch by default.
        pub branch: Option<String>,
        /// Refspec to push.
        pub refspec: Option<String>,
        /// Git push options.
        pub options: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// Git settings of an automation.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct GitSpec {
        /// What to check out; the GitRepository's ref by default.
        pub checkout: Option<GitCheckoutSpec>,
        /// How to commit.
        pub commit: CommitSpec,
        /// Where to push.
        pub push: Option<PushSpec>,
    }
}

api_struct! {
    /// Which files to update, and how.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct UpdateStrategy {
        /// Path in the repository; the root by default.
        pub path: Option<String>,
        /// `Setters`, the default and only strategy (empty means the default).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        #[schemars(extend("enum" = ["Setters"], "default" = "Setters"))]
        pub strategy: String,
    }
}

api_struct! {
    /// ImageUpdateAutomation: rewrites image setters in Git and pushes a commit.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "image.toolkit.fluxcd.io",
        version = "v1",
        kind = "ImageUpdateAutomation",
        namespaced,
        status = "ImageUpdateAutomationStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Last run","type":"string","jsonPath":".status.lastAutomationRunTime"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ImageUpdateAutomationSpec {
        /// The GitRepository to update.
        pub source_ref: CrossNamespaceSourceReference,
        /// Git checkout, commit and push settings.
        pub git: Option<GitSpec>,
        /// How often to run.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Which ImagePolicies to use; all in the namespace by default.
        #[schemars(schema_with = "schema_helpers::label_selector")]
        pub policy_selector: Option<LabelSelector>,
        /// Which files to update, and how.
        #[schemars(extend("default" = {"strategy": "Setters"}))]
        pub update: Option<UpdateStrategy>,
        /// Stop running.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// Observed state of an ImageUpdateAutomation.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct ImageUpdateAutomationStatus {
        /// When the automation last ran.
        #[schemars(extend("format" = "date-time"))]
        pub last_automation_run_time: Option<String>,
        /// The commit last pushed.
        pub last_push_commit: Option<String>,
        /// When the last push happened.
        #[schemars(extend("format" = "date-time"))]
        pub last_push_time: Option<String>,
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// The policies and images the last run used.
        pub observed_policies: Option<BTreeMap<String, ImageRef>>,
        /// Revision of the source the last run started from.
        pub observed_source_revision: Option<String>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}
