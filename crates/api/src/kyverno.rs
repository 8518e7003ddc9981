//! `kyverno.io/v1`: ClusterPolicy, the validate subset that ferroflux's admission enforces.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::LabelSelector;
use crate::schema_helpers;

/// API group of ClusterPolicy.
pub const GROUP: &str = "kyverno.io";

api_struct! {
    /// Which resources a filter selects.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceDescription {
        /// Kinds, as `Kind`, `group/version/Kind` or with wildcards.
        pub kinds: Option<Vec<String>>,
        /// Deprecated: one name (use names).
        pub name: Option<String>,
        /// Names, with wildcards.
        pub names: Option<Vec<String>>,
        /// Namespaces, with wildcards.
        pub namespaces: Option<Vec<String>>,
        /// Annotations the resource must carry (values with wildcards).
        pub annotations: Option<BTreeMap<String, String>>,
        /// Labels of the resource.
        #[schemars(schema_with = "schema_helpers::label_selector")]
        pub selector: Option<LabelSelector>,
        /// Labels of the resource's namespace.
        #[schemars(schema_with = "schema_helpers::label_selector")]
        pub namespace_selector: Option<LabelSelector>,
        /// Operations: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
        pub operations: Option<Vec<String>>,
    }
}

api_struct! {
    /// A user, group or ServiceAccount a filter selects.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Subject {
        /// `User`, `Group` or `ServiceAccount`.
        pub kind: String,
        /// Name of the subject.
        pub name: String,
        /// Namespace, for ServiceAccounts.
        pub namespace: Option<String>,
        /// API group of the subject.
        pub api_group: Option<String>,
    }
}

api_struct! {
    /// One filter: resources, subjects and roles that must all match.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceFilter {
        /// Resources selected.
        pub resources: Option<ResourceDescription>,
        /// Subjects selected.
        pub subjects: Option<Vec<Subject>>,
        /// Roles of the requester selected.
        pub roles: Option<Vec<String>>,
        /// ClusterRoles of the requester selected.
        pub cluster_roles: Option<Vec<String>>,
    }
}

api_struct! {
    /// Which requests a rule applies to: `any` or `all` of the filters, or one inline filter.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct MatchResources {
        /// Any of these filters.
        pub any: Option<Vec<ResourceFilter>>,
        /// All of these filters.
        pub all: Option<Vec<ResourceFilter>>,
        /// Deprecated inline filter: resources.
        pub resources: Option<ResourceDescription>,
        /// Deprecated inline filter: subjects.
        pub subjects: Option<Vec<Subject>>,
        /// Deprecated inline filter: roles.
        pub roles: Option<Vec<String>>,
        /// Deprecated inline filter: cluster roles.
        pub cluster_roles: Option<Vec<String>>,
    }
}

api_struct! {
    /// A validation: the resource must match a pattern (or any of several).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Validation {
        /// Message returned when the validation fails.
        pub message: Option<String>,
        /// The pattern the resource must match.
        #[schemars(schema_with = "schema_helpers::preserve_object")]
        pub pattern: Option<serde_json::Value>,
        /// Patterns of which the resource must match at least one.
        #[schemars(schema_with = "schema_helpers::preserve_object_list")]
        pub any_pattern: Option<Vec<serde_json::Value>>,
        /// `Audit` or `Enforce`, overriding the policy's action for this rule.
        pub failure_action: Option<String>,
    }
}

api_struct! {
    /// One rule of a policy.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct Rule {
        /// Name of the rule.
        pub name: String,
        /// Requests the rule applies to.
        pub r#match: Option<MatchResources>,
        /// Requests excluded from the rule.
        pub exclude: Option<MatchResources>,
        /// The validation.
        pub validate: Option<Validation>,
    }
}

api_struct! {
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
        #[schemars(extend("enum" = ["audit", "enforce", "Audit", "Enforce"]))]
        pub validation_failure_action: Option<String>,
        /// Also report on existing resources.
        pub background: Option<bool>,
        /// The rules.
        pub rules: Vec<Rule>,
    }
}

api_struct! {
    /// Observed state of a ClusterPolicy; kept as written.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ClusterPolicyStatus {
        /// Whether the policy is ready.
        pub ready: Option<bool>,
    }
}
