//! `notification.toolkit.fluxcd.io`: Provider and Alert (`v1beta3`, static objects without
//! status) and Receiver (`v1`).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{Condition, LocalObjectReference};
use crate::schema_helpers;

/// API group of the notification kinds.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";

api_struct! {
    /// Provider: where alerts are sent (Slack, a webhook, a Git forge's commit status, ...).
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1beta3",
        kind = "Provider",
        namespaced,
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)",
         "message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types"}
    ]))]
    pub struct ProviderSpec {
        /// Provider type: `slack`, `discord`, `msteams`, `generic`, `generic-hmac`, `github`, ...
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["slack", "discord", "msteams", "rocket", "generic", "generic-hmac",
            "github", "gitlab", "gitea", "bitbucketserver", "bitbucket", "azuredevops", "googlechat",
            "googlepubsub", "webex", "sentry", "azureeventhub", "telegram", "lark", "matrix",
            "opsgenie", "alertmanager", "grafana", "githubdispatch", "pagerduty", "datadog", "nats",
            "zulip", "otel", "giteapullrequestcomment", "githubpullrequestcomment",
            "gitlabmergerequestcomment", "zoom", "incident.io"]))]
        pub provider_type: String,
        /// Minimum interval between two alerts of the same object.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// Channel, for the chat providers.
        #[schemars(length(max = 2048))]
        pub channel: Option<String>,
        /// Bot name, for the chat providers.
        #[schemars(length(max = 2048))]
        pub username: Option<String>,
        /// Webhook address.
        #[schemars(length(max = 2048))]
        pub address: Option<String>,
        /// Timeout of a send.
        #[schemars(schema_with = "schema_helpers::timeout")]
        pub timeout: Option<String>,
        /// Deprecated: proxy address (use a Secret).
        #[schemars(length(max = 2048), regex(pattern = r"^(http|https)://.*$"))]
        pub proxy: Option<String>,
        /// Secret with `address`, `token`, `headers`, ...
        pub secret_ref: Option<LocalObjectReference>,
        /// Secret with TLS data.
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Secret with proxy settings.
        pub proxy_secret_ref: Option<LocalObjectReference>,
        /// ServiceAccount for workload identity.
        pub service_account_name: Option<String>,
        /// CEL expression of the commit status key.
        pub commit_status_expr: Option<String>,
        /// Stop sending.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// A reference to the objects whose events an Alert forwards or a Receiver reconciles.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceObjectReference {
        /// API version of the object.
        pub api_version: Option<String>,
        /// Kind of the object.
        #[schemars(extend("enum" = ["Bucket", "GitRepository", "Kustomization", "HelmRelease",
            "HelmChart", "HelmRepository", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation",
            "OCIRepository", "ArtifactGenerator", "ExternalArtifact"]))]
        pub kind: String,
        /// Name of the object; `*` for all.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Namespace of the object.
        #[schemars(length(min = 1, max = 253))]
        pub namespace: Option<String>,
        /// Labels the objects must carry, with `name: '*'`.
        pub match_labels: Option<BTreeMap<String, String>>,
        /// Receivers only: a CEL expression on the incoming request that decides whether this
        /// object is reconciled.
        pub filter: Option<String>,
    }
}

api_struct! {
    /// Alert: which events go to which Provider.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1beta3",
        kind = "Alert",
        namespaced,
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct AlertSpec {
        /// The Provider to send to.
        pub provider_ref: LocalObjectReference,
        /// `info` (default, everything) or `error`.
        #[schemars(extend("enum" = ["info", "error"], "default" = "info"))]
        pub event_severity: Option<String>,
        /// Objects whose events are forwarded.
        pub event_sources: Vec<CrossNamespaceObjectReference>,
        /// Regular expressions an event message must match.
        pub inclusion_list: Option<Vec<String>>,
        /// Metadata added to every event.
        pub event_metadata: Option<BTreeMap<String, String>>,
        /// Regular expressions of event messages to drop.
        pub exclusion_list: Option<Vec<String>>,
        /// Deprecated: summary (use eventMetadata).
        #[schemars(length(max = 255))]
        pub summary: Option<String>,
        /// Stop forwarding.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// Receiver: a webhook that triggers reconciliation of resources.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1",
        kind = "Receiver",
        namespaced,
        status = "ReceiverStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)",
         "message": "generic-oidc receivers must define at least one oidcProvider"},
        {"rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0",
         "message": "oidcProviders can only be set when type is generic-oidc"},
        {"rule": "self.type != 'generic-oidc' || !has(self.secretRef)",
         "message": "secretRef cannot be set when type is generic-oidc"},
        {"rule": "self.type == 'generic-oidc' || has(self.secretRef)",
         "message": "secretRef is required when type is not generic-oidc"}
    ]))]
    pub struct ReceiverSpec {
        /// Webhook sender: `generic`, `generic-hmac`, `generic-oidc`, `github`, `gitlab`, ...
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["generic", "generic-hmac", "generic-oidc", "github", "gitlab",
            "bitbucket", "harbor", "dockerhub", "quay", "gcr", "nexus", "acr", "cdevents"]))]
        pub receiver_type: String,
        /// How often to reconcile the Receiver.
        #[schemars(schema_with = "schema_helpers::duration", extend("default" = "10m"))]
        pub interval: Option<String>,
        /// Event types to accept (e.g. GitHub's `push`).
        pub events: Option<Vec<String>>,
        /// Objects to reconcile when a webhook arrives.
        pub resources: Vec<CrossNamespaceObjectReference>,
        /// CEL expression filtering the resources.
        pub resource_filter: Option<String>,
        /// Secret with the `token` that makes the webhook path and checks signatures; every type
        /// but `generic-oidc` needs one.
        pub secret_ref: Option<LocalObjectReference>,
        /// `generic-oidc` only: the OIDC issuers whose ID tokens may call the webhook.
        #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
        pub oidc_providers: Option<Vec<OIDCProvider>>,
        /// Stop accepting webhooks.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// An OIDC issuer a `generic-oidc` Receiver accepts tokens from.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OIDCProvider {
        /// Issuer address, `http(s)://...`.
        #[serde(rename = "issuerURL")]
        #[schemars(regex(pattern = r"^https?://"))]
        pub issuer_url: String,
        /// Audience the token must carry.
        pub audience: Option<String>,
        /// CEL variables computed from the token's claims, usable in `validations`.
        pub variables: Option<Vec<OIDCVariable>>,
        /// CEL checks every token must pass; at least one.
        #[schemars(length(min = 1))]
        pub validations: Vec<OIDCValidation>,
    }
}

/// A named CEL expression over a token's claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OIDCVariable {
    /// Name the expression's value is known by.
    pub name: String,
    /// CEL expression.
    pub expression: String,
}

/// A CEL check of a token, with the message returned when it fails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OIDCValidation {
    /// CEL expression that must be true.
    pub expression: String,
    /// Message when it is not.
    pub message: String,
}

api_struct! {
    /// Observed state of a Receiver.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct ReceiverStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The webhook path, `/hook/<sha256 of token+name+namespace>`.
        pub webhook_path: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}
