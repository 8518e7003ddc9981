//! `wgpolicyk8s.io/v1alpha2`: PolicyReport and ClusterPolicyReport, the reports of the
//! Kubernetes Policy working group that Kyverno writes (and Policy Reporter, kubectl plugins and
//! dashboards read). Since Kyverno 1.10 there is one report per resource, named by the
//! resource's UID, with `scope` pointing at it; ferroflux's `admission::reports` writes them
//! the same way.
//!
//! Unlike the other kinds these have no `spec`/`status`: the fields sit at the top level, so
//! the types and the CRD are written here rather than derived with `CustomResource`.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::meta::LabelSelector;
use crate::schema_helpers;

/// API group of the reports.
pub const GROUP: &str = "wgpolicyk8s.io";

/// The version Kyverno writes.
pub const VERSION: &str = "v1alpha2";

api_struct! {
    /// A reference to a Kubernetes object (`corev1.ObjectReference`).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub struct ObjectReference {
        /// API version of the referent.
        pub api_version: Option<String>,
        /// Kind of the referent.
        pub kind: Option<String>,
        /// Name of the referent.
        pub name: Option<String>,
        /// Namespace of the referent.
        pub namespace: Option<String>,
        /// UID of the referent.
        pub uid: Option<String>,
        /// Resource version of the referent.
        pub resource_version: Option<String>,
        /// A field of the referent, e.g. `spec.containers{name}`.
        pub field_path: Option<String>,
    }
}

api_struct! {
    /// How many results of each kind a report holds.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct PolicyReportSummary {
        /// Results whose resource satisfies the rule.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub pass: Option<i64>,
        /// Results whose resource violates the rule.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub fail: Option<i64>,
        /// Violations of unscored policies.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub warn: Option<i64>,
        /// Rules that could not be evaluated.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub error: Option<i64>,
        /// Rules that did not apply.
        #[schemars(schema_with = "schema_helpers::go_int")]
        pub skip: Option<i64>,
    }
}

api_struct! {
    /// When a result was produced (`metav1.Timestamp`).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct Timestamp {
        /// Seconds since the Unix epoch.
        #[schemars(extend("format" = "int64"))]
        pub seconds: i64,
        /// Nanoseconds within the second.
        #[schemars(extend("format" = "int32"))]
        pub nanos: i32,
    }
}

api_struct! {
    /// One rule's result for the report's resource.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PolicyReportResult {
        /// The engine that produced it (`kyverno`).
        pub source: Option<String>,
        /// The policy: `name` of a ClusterPolicy, `namespace/name` of a Policy.
        pub policy: String,
        /// The rule.
        pub rule: Option<String>,
        /// `policies.kyverno.io/category` of the policy.
        pub category: Option<String>,
        /// `policies.kyverno.io/severity` of the policy.
        #[schemars(extend("enum" = ["critical", "high", "low", "medium", "info"]))]
        pub severity: Option<String>,
        /// When it was produced.
        pub timestamp: Option<Timestamp>,
        /// `pass`, `fail`, `warn`, `error` or `skip`.
        #[schemars(extend("enum" = ["pass", "fail", "warn", "error", "skip"]))]
        pub result: Option<String>,
        /// Whether the result counts towards a score (`policies.kyverno.io/scored`).
        pub scored: Option<bool>,
        /// The resources it is about, when the report has no `scope`.
        pub resources: Option<Vec<ObjectReference>>,
        /// The resources it is about, by label.
        #[schemars(schema_with = "schema_helpers::label_selector")]
        pub resource_selector: Option<LabelSelector>,
        /// The rule's message.
        pub message: Option<String>,
        /// Free-form details.
        pub properties: Option<BTreeMap<String, String>>,
    }
}

api_struct! {
    /// The fields a PolicyReport and a ClusterPolicyReport share, besides type and metadata.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Report {
        /// The one object the report is about.
        pub scope: Option<ObjectReference>,
        /// The objects the report is about, by label (exclusive with `scope`).
        #[schemars(schema_with = "schema_helpers::label_selector")]
        pub scope_selector: Option<LabelSelector>,
        /// Counts of the results.
        pub summary: Option<PolicyReportSummary>,
        /// The results.
        pub results: Option<Vec<PolicyReportResult>>,
    }
}

api_struct! {
    /// A report of policy results: namespaced as `PolicyReport`, cluster-scoped as
    /// `ClusterPolicyReport` (the same fields).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PolicyReport {
        /// `wgpolicyk8s.io/v1alpha2`.
        pub api_version: Option<String>,
        /// `PolicyReport` or `ClusterPolicyReport`.
        pub kind: Option<String>,
        /// Kyverno names a report by its resource's UID.
        pub metadata: ObjectMeta,
        /// The report itself.
        #[serde(flatten)]
        pub report: Report,
    }
}

/// A cluster-scoped report: the same fields as [`PolicyReport`].
pub type ClusterPolicyReport = PolicyReport;

/// The schema of [`Report`] as kube's derive makes it (inline, structural), with the type and
/// metadata fields of a top-level object.
fn report_schema() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<Report>()).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.remove("title");
        object.insert(
            "description".into(),
            json!("A report of policy results (wgpolicyk8s.io)."),
        );
        if let Some(properties) = object.get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.insert("apiVersion".into(), json!({"type": "string"}));
            properties.insert("kind".into(), json!({"type": "string"}));
            properties.insert("metadata".into(), json!({"type": "object"}));
        }
    }
    // A fixed type always converts; the CRD tests would show an empty schema.
    serde_json::from_value(schema).unwrap_or_default()
}

/// The CRD of one report kind, with upstream's names and printer columns.
fn crd(kind: &str, plural: &str, short: &str, scope: &str) -> CustomResourceDefinition {
    let column = |name: &str, type_: &str, path: &str| json!({"name": name, "type": type_, "jsonPath": path});
    let value = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_lowercase(), "shortNames": [short],
            },
            "scope": scope,
            "versions": [{
                "name": VERSION, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": report_schema()},
                "additionalPrinterColumns": [
                    column("Kind", "string", ".scope.kind"),
                    column("Name", "string", ".scope.name"),
                    column("Pass", "integer", ".summary.pass"),
                    column("Fail", "integer", ".summary.fail"),
                    column("Warn", "integer", ".summary.warn"),
                    column("Error", "integer", ".summary.error"),
                    column("Skip", "integer", ".summary.skip"),
                    column("Age", "date", ".metadata.creationTimestamp"),
                ],
            }],
        },
    });
    serde_json::from_value(value).unwrap_or_default()
}

/// The CRD of `PolicyReport` (namespaced, short name `polr`).
pub fn policy_report_crd() -> CustomResourceDefinition {
    crd("PolicyReport", "policyreports", "polr", "Namespaced")
}

/// The CRD of `ClusterPolicyReport` (cluster-scoped, short name `cpolr`).
pub fn cluster_policy_report_crd() -> CustomResourceDefinition {
    crd(
        "ClusterPolicyReport",
        "clusterpolicyreports",
        "cpolr",
        "Cluster",
    )
}
