//! `kyverno.io`: ClusterPolicy and Policy (`v1`, also served as `v2beta1`), limited to what
//! `ferroflux-policy` evaluates: `validate` rules with `pattern`/`anyPattern`, `deny`
//! conditions, `foreach`, `preconditions`, `variable` context entries and `match`/`exclude`.
//!
//! Kyverno's other rule types (`mutate`, `generate`, `verifyImages`), CEL and podSecurity
//! validations, API-call/ConfigMap/image-registry context entries and the webhook tuning
//! fields are not in the schema on purpose: the API server (kube-apiserver too) prunes them,
//! kubectl's strict field validation refuses them as unknown fields, and the admission policy
//! webhook refuses such policies. A field here is one the engine honours.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta::{Condition, LabelSelector};
use crate::schema_helpers;

/// API group of ClusterPolicy and Policy.
pub const GROUP: &str = "kyverno.io";

/// Why `spec.admission: false` is refused: Kyverno would then apply the policy only in
/// background scans, which ferroflux does not run, so the policy would silently do nothing.
const CEL_ADMISSION_ONLY: &str = "!has(self.admission) || self.admission";

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
        #[schemars(schema_with = "operations")]
        pub operations: Option<Vec<String>>,
    }
}

/// The admission operations a filter may name.
fn operations(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "string", "enum": ["CREATE", "CONNECT", "UPDATE", "DELETE"]}
    })
}

api_struct! {
    /// A user, group or ServiceAccount a filter selects.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
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
        /// Roles of the requester selected (`namespace:name`).
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
    /// A `variable` context entry: a literal value or a JMESPath over the request.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Variable {
        /// A value (with `{{ }}` variables) for the entry.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub value: Option<Value>,
        /// A JMESPath over the value, or over the request when there is no value.
        pub jmes_path: Option<String>,
        /// The value when the expression gives nothing.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub default: Option<Value>,
    }
}

api_struct! {
    /// A named entry of a rule's context. Only `variable` entries: the engine makes no API
    /// calls and reads no ConfigMaps or registries.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ContextEntry {
        /// The variable's name in `{{ }}` expressions.
        pub name: String,
        /// Its value.
        pub variable: Variable,
    }
}

api_struct! {
    /// One condition: `key operator value`.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct ConditionExpression {
        /// The left side (with `{{ }}` variables).
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub key: Option<Value>,
        /// Kyverno's operator.
        #[schemars(extend("enum" = [
            "Equals", "NotEquals", "In", "AnyIn", "AllIn", "NotIn", "AnyNotIn", "AllNotIn",
            "GreaterThanOrEquals", "GreaterThan", "LessThanOrEquals", "LessThan",
            "DurationGreaterThanOrEquals", "DurationGreaterThan", "DurationLessThanOrEquals",
            "DurationLessThan"
        ]))]
        pub operator: Option<String>,
        /// The right side (with `{{ }}` variables).
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub value: Option<Value>,
        /// Message when the condition fails.
        pub message: Option<String>,
    }
}

api_struct! {
    /// Conditions of which `any` must hold, and `all` must hold.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct AnyAllConditions {
        /// At least one of these.
        pub any: Option<Vec<ConditionExpression>>,
        /// Every one of these.
        pub all: Option<Vec<ConditionExpression>>,
    }
}

api_struct! {
    /// A deny validation: the request is refused when the conditions hold.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct Deny {
        /// `any`/`all` conditions (or Kyverno's older list of conditions).
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub conditions: Option<Value>,
    }
}

api_struct! {
    /// A validation applied to each element of a list in the request.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ForEachValidation {
        /// JMESPath of the list, e.g. `request.object.spec.containers`.
        pub list: Option<String>,
        /// Whether `pattern` applies to the element (default: when it is an object).
        pub element_scope: Option<bool>,
        /// Variables for each element.
        pub context: Option<Vec<ContextEntry>>,
        /// Conditions on each element before it is checked.
        pub preconditions: Option<AnyAllConditions>,
        /// The pattern each element must match.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub pattern: Option<Value>,
        /// Patterns of which each element must match one.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub any_pattern: Option<Value>,
        /// Deny conditions for each element.
        pub deny: Option<Deny>,
        /// Nested loops, with the same shape as this one.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub foreach: Option<Value>,
    }
}

api_struct! {
    /// A validation: a pattern, one of several patterns, deny conditions or a loop.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Validation {
        /// Message returned when the validation fails.
        pub message: Option<String>,
        /// The pattern the resource must match.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub pattern: Option<Value>,
        /// Patterns of which the resource must match at least one.
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub any_pattern: Option<Value>,
        /// The request is refused when these conditions hold.
        pub deny: Option<Deny>,
        /// Validations of each element of a list.
        pub foreach: Option<Vec<ForEachValidation>>,
        /// `Audit` or `Enforce`, overriding the policy's `validationFailureAction`.
        #[schemars(extend("enum" = ["Audit", "Enforce"]))]
        pub failure_action: Option<String>,
        /// On UPDATE, an enforced rule lets through an object that already violated it.
        #[schemars(extend("default" = true))]
        pub allow_existing_violations: Option<bool>,
    }
}

api_struct! {
    /// One rule of a policy: which requests, under which conditions, validated how.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct Rule {
        /// Name of the rule.
        #[schemars(length(max = 63))]
        pub name: String,
        /// Requests the rule applies to.
        pub r#match: MatchResources,
        /// Requests excluded from the rule.
        pub exclude: Option<MatchResources>,
        /// Variables the rule's expressions may use.
        pub context: Option<Vec<ContextEntry>>,
        /// Conditions that must hold for the rule to apply (`any`/`all`, or a list).
        #[schemars(schema_with = "schema_helpers::preserve_any")]
        pub preconditions: Option<Value>,
        /// The validation: the only rule type the engine evaluates.
        pub validate: Validation,
    }
}

api_struct! {
    /// The spec shared by ClusterPolicy and Policy (Kyverno's `Spec`).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": CEL_ADMISSION_ONLY,
        "message": "admission: false is not supported: ferroflux applies policies in admission only (it runs no background scans)",
    }]))]
    pub struct Spec {
        /// Apply the rules in admission. Only `true`: see the validation message.
        #[schemars(extend("default" = true))]
        pub admission: Option<bool>,
        /// Also apply the rules to existing resources in background scans, whose results
        /// land in PolicyReports (`wgpolicy`); `false` leaves the policy out of the scans.
        #[schemars(extend("default" = true))]
        pub background: Option<bool>,
        /// `Ignore`: a rule that cannot be evaluated does not block admission.
        #[schemars(extend("enum" = ["Ignore", "Fail"]))]
        pub failure_policy: Option<String>,
        /// `Audit` (warn) or `Enforce` (refuse); Kyverno also accepts lower case.
        #[schemars(extend("enum" = ["audit", "enforce", "Audit", "Enforce"], "default" = "Audit"))]
        pub validation_failure_action: Option<String>,
        /// The rules (the engine refuses a policy without any).
        pub rules: Vec<Rule>,
    }
}

api_struct! {
    /// How many rules of each type a policy holds.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct RuleCount {
        /// Validate rules.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub validate: i64,
        /// Mutate rules (always 0 here).
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub mutate: i64,
        /// Generate rules (always 0 here).
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub generate: i64,
        /// VerifyImages rules (always 0 here).
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub verifyimages: i64,
    }
}

api_struct! {
    /// Observed state of a policy, as the admission policy cache writes it.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    pub struct PolicyStatus {
        /// Deprecated in Kyverno (read the Ready condition); still written.
        pub ready: Option<bool>,
        /// `Ready`: every rule loaded (`Succeeded`) or why not (`Failed`).
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// Rules per type.
        pub rulecount: Option<RuleCount>,
    }
}

/// Declares one policy kind over [`Spec`], with Kyverno's names, categories and columns.
macro_rules! policy_kind {
    ($(#[$doc:meta])* $spec:ident, kind = $kind:tt, shortname = $short:tt $(, $scope:ident)?) => {
        $(#[$doc])*
        #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[kube(
            group = "kyverno.io",
            version = "v1",
            kind = $kind,
            shortname = $short,
            category = "kyverno",
            $($scope,)?
            derive = "PartialEq",
            status = "PolicyStatus",
            printcolumn = r#"{"name":"ADMISSION","type":"boolean","jsonPath":".spec.admission"}"#,
            printcolumn = r#"{"name":"BACKGROUND","type":"boolean","jsonPath":".spec.background"}"#,
            printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type == \"Ready\")].status"}"#,
            printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
            printcolumn = r#"{"name":"FAILURE POLICY","type":"string","jsonPath":".spec.failurePolicy","priority":1}"#,
            printcolumn = r#"{"name":"VALIDATE","type":"integer","jsonPath":".status.rulecount.validate","priority":1}"#,
            printcolumn = r#"{"name":"MUTATE","type":"integer","jsonPath":".status.rulecount.mutate","priority":1}"#,
            printcolumn = r#"{"name":"GENERATE","type":"integer","jsonPath":".status.rulecount.generate","priority":1}"#,
            printcolumn = r#"{"name":"VERIFY IMAGES","type":"integer","jsonPath":".status.rulecount.verifyimages","priority":1}"#,
            printcolumn = r#"{"name":"MESSAGE","type":"string","jsonPath":".status.conditions[?(@.type == \"Ready\")].message"}"#
        )]
        #[serde(transparent)]
        pub struct $spec(pub Spec);

        impl Deref for $spec {
            type Target = Spec;
            fn deref(&self) -> &Spec {
                &self.0
            }
        }

        impl DerefMut for $spec {
            fn deref_mut(&mut self) -> &mut Spec {
                &mut self.0
            }
        }
    };
}

policy_kind! {
    /// ClusterPolicy: validate rules for resources of every namespace and cluster-scoped ones.
    ClusterPolicySpec, kind = "ClusterPolicy", shortname = "cpol"
}

policy_kind! {
    /// Policy: validate rules for the resources of its own namespace.
    PolicySpec, kind = "Policy", shortname = "pol", namespaced
}
