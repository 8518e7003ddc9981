//! `kyverno.io/v1`: ClusterPolicy, the validate subset that ferroflux's admission enforces.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::LabelSelector;
use crate::schema_helpers;

/// API group of ClusterPolicy.
pub const GROUP: &str = "kyverno.io";

/// Which resources a filter selects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescription {
    /// Kinds, as `Kind`, `group/version/Kind` or with wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Deprecated: one name (use names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Names, with wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Namespaces, with wildcards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Annotations the resource must carry (values with wildcards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::label_selector")]
    pub selector: Option<LabelSelector>,
    /// Labels of the resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::label_selector")]
    pub namespace_selector: Option<LabelSelector>,
    /// Operations: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

/// A user, group or ServiceAccount a filter selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// Name of the subject.
    pub name: String,
    /// Namespace, for ServiceAccounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// API group of the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

/// One filter: resources, subjects and roles that must all match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFilter {
    /// Resources selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceDescription>,
    /// Subjects selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<Subject>>,
    /// Roles of the requester selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// ClusterRoles of the requester selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_roles: Option<Vec<String>>,
}

/// Which requests a rule applies to: `any` or `all` of the filters, or one inline filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchResources {
    /// Any of these filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ResourceFilter>>,
    /// All of these filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ResourceFilter>>,
    /// Deprecated inline filter: resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceDescription>,
    /// Deprecated inline filter: subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<Subject>>,
    /// Deprecated inline filter: roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Deprecated inline filter: cluster roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_roles: Option<Vec<String>>,
}

/// A validation: the resource must match a pattern (or any of several).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Message returned when the validation fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pattern the resource must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::preserve_object")]
    pub pattern: Option<serde_json::Value>,
    /// Patterns of which the resource must match at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema_helpers::preserve_object_list")]
    pub any_pattern: Option<Vec<serde_json::Value>>,
    /// `Audit` or `Enforce`, overriding the policy's action for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
}

/// One rule of a policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rule {
    /// Name of the rule.
    pub name: String,
    /// Requests the rule applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<MatchResources>,
    /// Requests excluded from the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<MatchResources>,
    /// The validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<Validation>,
}

/// ClusterPolicy: cluster-wide admission rules.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kyverno.io",
    version = "v1",
    kind = "ClusterPolicy",
    shortname = "cpol",
    category = "kyverno",
    derive = "PartialEq",
    status = "ClusterPolicyStatus",
    printcolumn = r#"{"name":"Action","type":"string","jsonPath":".spec.validationFailureAction"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPolicySpec {
    /// `Audit` (default) or `Enforce` (also lower-case, as Kyverno accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["audit", "enforce", "Audit", "Enforce"]))]
    pub validation_failure_action: Option<String>,
    /// Also report on existing resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// Observed state of a ClusterPolicy; kept as written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterPolicyStatus {
    /// Whether the policy is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}
