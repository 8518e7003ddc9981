//! `source.toolkit.fluxcd.io`: where artifacts come from. Storage version `v1`; `v1beta2` is
//! served too (same fields; the deprecated v1beta2-only fields are kept so nothing is lost).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{
    AccessFrom, Artifact, Condition, LocalObjectReference, NamespacedObjectKindReference,
};
use crate::schema_helpers;

/// API group of the source kinds.
pub const GROUP: &str = "source.toolkit.fluxcd.io";

api_struct! {
    /// Git branch, tag, semver range, ref name or commit to check out.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct GitRepositoryRef {
        /// Branch to check out; `master` when no other field is set.
        pub branch: Option<String>,
        /// Tag to check out; takes precedence over branch.
        pub tag: Option<String>,
        /// Semver range over the tags; takes precedence over tag.
        pub semver: Option<String>,
        /// Full reference name such as `refs/heads/main` or `refs/pull/420/head`; takes precedence
        /// over semver.
        pub name: Option<String>,
        /// Commit SHA; takes precedence over everything, and pins the branch when both are set.
        pub commit: Option<String>,
    }
}

api_struct! {
    /// OpenPGP verification of Git commits or tags.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct GitRepositoryVerification {
        /// What to verify: `HEAD` (the default; `head` is its older spelling), `Tag` or
        /// `TagAndHEAD`.
        #[schemars(extend("enum" = ["head", "HEAD", "Tag", "TagAndHEAD"], "default" = "HEAD"))]
        pub mode: Option<String>,
        /// Secret with the trusted public keys.
        pub secret_ref: LocalObjectReference,
    }
}

api_struct! {
    /// An artifact of another GitRepository copied into this one's artifact.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct GitRepositoryInclude {
        /// The GitRepository to include.
        pub repository: LocalObjectReference,
        /// Path in the included artifact to copy from; the root by default.
        pub from_path: Option<String>,
        /// Path to copy to; the included repository's name by default.
        pub to_path: Option<String>,
    }
}

api_struct! {
    /// GitRepository: a Git repository checked out at a ref and packaged as an artifact.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "GitRepository",
        namespaced,
        status = "GitRepositoryStatus",
        shortname = "gitrepo",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))",
         "message": "serviceAccountName can only be set when provider is 'azure' or 'aws'"}
    ]))]
    pub struct GitRepositorySpec {
        /// Repository URL: `http(s)://` or `ssh://`.
        #[schemars(regex(pattern = r"^(http|https|ssh)://.*$"))]
        pub url: String,
        /// Secret with credentials: `username`/`password`, `bearerToken`, or `identity` +
        /// `known_hosts` for SSH.
        pub secret_ref: Option<LocalObjectReference>,
        /// Provider used for authentication: `generic` (default), `aws`, `azure` or `github`.
        #[schemars(extend("enum" = ["generic", "aws", "azure", "github"]))]
        pub provider: Option<String>,
        /// How often to check for changes.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Timeout for Git operations; 60s by default.
        #[schemars(schema_with = "schema_helpers::timeout", extend("default" = "60s"))]
        pub timeout: Option<String>,
        /// Ref to check out.
        #[serde(rename = "ref")]
        pub reference: Option<GitRepositoryRef>,
        /// OpenPGP signature verification.
        pub verify: Option<GitRepositoryVerification>,
        /// Secret with proxy settings.
        pub proxy_secret_ref: Option<LocalObjectReference>,
        /// Extra `.gitignore`-style exclusions, on top of the defaults.
        pub ignore: Option<String>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// Check out submodules too.
        pub recurse_submodules: Option<bool>,
        /// Artifacts of other GitRepositories to copy in.
        pub include: Option<Vec<GitRepositoryInclude>>,
        /// ServiceAccount used for provider authentication.
        pub service_account_name: Option<String>,
        /// Directories to check out (sparse checkout).
        pub sparse_checkout: Option<Vec<String>>,
        /// v1beta2 only, deprecated: namespaces that may reference this object.
        pub access_from: Option<AccessFrom>,
        /// v1beta2 only, deprecated and ignored: the Git implementation.
        pub git_implementation: Option<String>,
    }
}

api_struct! {
    /// Observed state of a GitRepository.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct GitRepositoryStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The last successfully reconciled artifact.
        pub artifact: Option<Artifact>,
        /// Artifacts of the included repositories.
        pub included_artifacts: Option<Vec<Artifact>>,
        /// The `spec.ignore` the artifact was made with.
        pub observed_ignore: Option<String>,
        /// The `spec.recurseSubmodules` the artifact was made with.
        pub observed_recurse_submodules: Option<bool>,
        /// The `spec.include` the artifact was made with.
        pub observed_include: Option<Vec<GitRepositoryInclude>>,
        /// The `spec.sparseCheckout` the artifact was made with.
        pub observed_sparse_checkout: Option<Vec<String>>,
        /// The verification mode used for the last verified revision.
        pub source_verification_mode: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
        /// v1beta2 only, deprecated: the download URL of the artifact.
        pub url: Option<String>,
    }
}

api_struct! {
    /// OCI ref: tag, semver range or digest.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OCIRepositoryRef {
        /// Image digest to pull; takes precedence over semver and tag.
        pub digest: Option<String>,
        /// Semver range over the tags; takes precedence over tag.
        pub semver: Option<String>,
        /// Regular expression the tags must match before semver is applied.
        pub semver_filter: Option<String>,
        /// Tag to pull; `latest` by default.
        pub tag: Option<String>,
    }
}

api_struct! {
    /// Which layer of an OCI artifact to use, and how.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OCILayerSelector {
        /// Media type of the layer; the first layer by default.
        pub media_type: Option<String>,
        /// `extract` (default) the tarball, or `copy` it as is.
        #[schemars(extend("enum" = ["extract", "copy"]))]
        pub operation: Option<String>,
    }
}

/// OIDC identity accepted for keyless verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OIDCIdentityMatch {
    /// Regular expression for the issuer.
    pub issuer: String,
    /// Regular expression for the subject.
    pub subject: String,
}

api_struct! {
    /// Signature verification of OCI artifacts.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OCIRepositoryVerification {
        /// `cosign` (the default) or `notation`.
        #[schemars(extend("enum" = ["cosign", "notation"], "default" = "cosign"))]
        pub provider: String,
        /// Secret with the trusted public keys (`*.pub`).
        pub secret_ref: Option<LocalObjectReference>,
        /// Identities accepted for keyless signatures.
        #[serde(rename = "matchOIDCIdentity")]
        pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
        /// Secret with a Sigstore trusted root, for keyless verification
        /// against a private Sigstore instance instead of the public one.
        pub trusted_root_secret_ref: Option<LocalObjectReference>,
    }
}

api_struct! {
    /// OCIRepository: an OCI artifact pulled from a registry.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "OCIRepository",
        namespaced,
        status = "OCIRepositoryStatus",
        shortname = "ocirepo",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct OCIRepositorySpec {
        /// `oci://host/repository`.
        #[schemars(regex(pattern = r"^oci://.*$"))]
        pub url: String,
        /// Tag, semver range or digest to pull.
        #[serde(rename = "ref")]
        pub reference: Option<OCIRepositoryRef>,
        /// Layer to use.
        pub layer_selector: Option<OCILayerSelector>,
        /// `generic` (default), `aws`, `azure` or `gcp`.
        #[schemars(extend("enum" = ["generic", "aws", "azure", "gcp"], "default" = "generic"))]
        pub provider: Option<String>,
        /// A `kubernetes.io/dockerconfigjson` Secret with registry credentials.
        pub secret_ref: Option<LocalObjectReference>,
        /// Signature verification.
        pub verify: Option<OCIRepositoryVerification>,
        /// ServiceAccount whose imagePullSecrets are used.
        pub service_account_name: Option<String>,
        /// Secret with TLS client certificate and CA.
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Secret with proxy settings.
        pub proxy_secret_ref: Option<LocalObjectReference>,
        /// How often to check for new artifacts.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Timeout for registry operations; 60s by default.
        #[schemars(schema_with = "schema_helpers::timeout", extend("default" = "60s"))]
        pub timeout: Option<String>,
        /// `.gitignore`-style exclusions applied to the extracted layer.
        pub ignore: Option<String>,
        /// Talk plain HTTP to the registry.
        pub insecure: Option<bool>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
    }
}

api_struct! {
    /// Observed state of an OCIRepository.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct OCIRepositoryStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The download URL of the artifact.
        pub url: Option<String>,
        /// The last successfully reconciled artifact.
        pub artifact: Option<Artifact>,
        /// The `spec.ignore` the artifact was made with.
        pub observed_ignore: Option<String>,
        /// The `spec.layerSelector` the artifact was made with.
        pub observed_layer_selector: Option<OCILayerSelector>,
        /// v1beta2 only, deprecated: checksum of the content configuration.
        pub content_config_checksum: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// HelmRepository: a Helm chart repository (index.yaml over HTTP, or an OCI registry).
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "HelmRepository",
        namespaced,
        status = "HelmRepositoryStatus",
        shortname = "helmrepo",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct HelmRepositorySpec {
        /// Repository URL: `http(s)://` for an index, `oci://` for a registry.
        #[schemars(regex(pattern = r"^(http|https|oci)://.*$"))]
        pub url: String,
        /// Secret with `username`/`password` (and TLS data, deprecated).
        pub secret_ref: Option<LocalObjectReference>,
        /// Secret with TLS client certificate and CA.
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Send the credentials to chart URLs on other hosts too.
        pub pass_credentials: Option<bool>,
        /// Talk plain HTTP to an OCI registry.
        pub insecure: Option<bool>,
        /// How often to check for changes.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: Option<String>,
        /// Timeout for fetching the index; 60s by default.
        #[schemars(schema_with = "schema_helpers::timeout")]
        pub timeout: Option<String>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// Namespaces that may reference this object.
        pub access_from: Option<AccessFrom>,
        /// `default` (an index) or `oci`.
        #[serde(rename = "type")]
        #[schemars(extend("enum" = ["default", "oci"]))]
        pub repository_type: Option<String>,
        /// `generic` (default), `aws`, `azure` or `gcp`; for `type: oci`.
        #[schemars(extend("enum" = ["generic", "aws", "azure", "gcp"], "default" = "generic"))]
        pub provider: Option<String>,
    }
}

api_struct! {
    /// Observed state of a HelmRepository.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct HelmRepositoryStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The download URL of the index artifact.
        pub url: Option<String>,
        /// The index, cached as an artifact.
        pub artifact: Option<Artifact>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// Where a HelmChart comes from.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct LocalHelmChartSourceReference {
        /// API version of the source.
        pub api_version: Option<String>,
        /// `HelmRepository`, `GitRepository` or `Bucket`.
        #[schemars(extend("enum" = ["HelmRepository", "GitRepository", "Bucket"]))]
        pub kind: String,
        /// Name of the source.
        pub name: String,
    }
}

api_struct! {
    /// HelmChart: a chart packaged from a repository, Git or a bucket.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "HelmChart",
        namespaced,
        status = "HelmChartStatus",
        shortname = "hc",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart"}"#,
        printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
        printcolumn = r#"{"name":"Source Kind","type":"string","jsonPath":".spec.sourceRef.kind"}"#,
        printcolumn = r#"{"name":"Source Name","type":"string","jsonPath":".spec.sourceRef.name"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",
         "message": "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'"}
    ]))]
    pub struct HelmChartSpec {
        /// Chart name (repository) or path (Git, bucket).
        pub chart: String,
        /// Semver range of the chart version; `*` by default.
        #[schemars(extend("default" = "*"))]
        pub version: Option<String>,
        /// Where the chart comes from.
        pub source_ref: LocalHelmChartSourceReference,
        /// How often to check for a new chart.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// `ChartVersion` (default) or `Revision`: what makes a new artifact.
        #[schemars(extend("enum" = ["ChartVersion", "Revision"], "default" = "ChartVersion"))]
        pub reconcile_strategy: Option<String>,
        /// Values files merged in order into the chart's values.yaml.
        pub values_files: Option<Vec<String>>,
        /// Do not fail when a values file is missing.
        pub ignore_missing_values_files: Option<bool>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// Signature verification of OCI charts.
        pub verify: Option<OCIRepositoryVerification>,
        /// v1beta2 only, deprecated: namespaces that may reference this object.
        pub access_from: Option<AccessFrom>,
    }
}

api_struct! {
    /// Observed state of a HelmChart.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct HelmChartStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Revision of the source artifact the chart was built from.
        pub observed_source_artifact_revision: Option<String>,
        /// Name of the chart last built.
        pub observed_chart_name: Option<String>,
        /// Values files merged into the last build.
        pub observed_values_files: Option<Vec<String>>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The download URL of the chart artifact.
        pub url: Option<String>,
        /// The packaged chart.
        pub artifact: Option<Artifact>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// Security Token Service settings of a Bucket.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct BucketSTSSpec {
        /// `aws` or `ldap`.
        #[schemars(extend("enum" = ["aws", "ldap"]))]
        pub provider: String,
        /// STS endpoint, an HTTP(S) address.
        #[schemars(regex(pattern = r"^(http|https)://.*$"))]
        pub endpoint: String,
        /// Secret with STS credentials.
        pub secret_ref: Option<LocalObjectReference>,
        /// Secret with TLS data for the STS endpoint.
        pub cert_secret_ref: Option<LocalObjectReference>,
    }
}

api_struct! {
    /// Bucket: objects of an S3-compatible (or GCS, Azure) bucket packaged as an artifact.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "Bucket",
        namespaced,
        status = "BucketStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".spec.endpoint"}"#,
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)",
         "message": "STS configuration is only supported for the 'aws' and 'generic' Bucket providers"},
        {"rule": "self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'",
         "message": "'aws' is the only supported STS provider for the 'aws' Bucket provider"},
        {"rule": "self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'",
         "message": "'ldap' is the only supported STS provider for the 'generic' Bucket provider"},
        {"rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)",
         "message": "spec.sts.secretRef is not required for the 'aws' STS provider"},
        {"rule": "!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)",
         "message": "spec.sts.certSecretRef is not required for the 'aws' STS provider"},
        {"rule": "self.provider != 'generic' || !has(self.serviceAccountName)",
         "message": "ServiceAccountName is not supported for the 'generic' Bucket provider"},
        {"rule": "!has(self.secretRef) || !has(self.serviceAccountName)",
         "message": "cannot set both .spec.secretRef and .spec.serviceAccountName"}
    ]))]
    pub struct BucketSpec {
        /// `generic` (default), `aws`, `gcp` or `azure`.
        #[schemars(extend("enum" = ["generic", "aws", "gcp", "azure"], "default" = "generic"))]
        pub provider: Option<String>,
        /// Bucket name.
        pub bucket_name: String,
        /// Endpoint host (and port).
        pub endpoint: String,
        /// Security Token Service settings.
        pub sts: Option<BucketSTSSpec>,
        /// Talk plain HTTP to the endpoint.
        pub insecure: Option<bool>,
        /// Region of the bucket.
        pub region: Option<String>,
        /// Only objects under this prefix.
        pub prefix: Option<String>,
        /// Secret with `accesskey` and `secretkey`.
        pub secret_ref: Option<LocalObjectReference>,
        /// Secret with TLS client certificate and CA.
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Secret with proxy settings.
        pub proxy_secret_ref: Option<LocalObjectReference>,
        /// ServiceAccount used for workload identity.
        pub service_account_name: Option<String>,
        /// How often to check for changes.
        #[schemars(schema_with = "schema_helpers::duration")]
        pub interval: String,
        /// Timeout for bucket operations; 60s by default.
        #[schemars(schema_with = "schema_helpers::timeout", extend("default" = "60s"))]
        pub timeout: Option<String>,
        /// `.gitignore`-style exclusions.
        pub ignore: Option<String>,
        /// Stop reconciling.
        pub suspend: Option<bool>,
        /// v1beta2 only, deprecated: namespaces that may reference this object.
        pub access_from: Option<AccessFrom>,
    }
}

api_struct! {
    /// Observed state of a Bucket.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct BucketStatus {
        /// Last observed generation.
        pub observed_generation: Option<i64>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The download URL of the artifact.
        pub url: Option<String>,
        /// The last successfully reconciled artifact.
        pub artifact: Option<Artifact>,
        /// The `spec.ignore` the artifact was made with.
        pub observed_ignore: Option<String>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
    }
}

api_struct! {
    /// ExternalArtifact: an artifact produced by a third-party controller.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.toolkit.fluxcd.io",
        version = "v1",
        kind = "ExternalArtifact",
        namespaced,
        status = "ExternalArtifactStatus",
        category = "flux",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ExternalArtifactSpec {
        /// The object the artifact was generated from.
        pub source_ref: Option<NamespacedObjectKindReference>,
    }
}

api_struct! {
    /// Observed state of an ExternalArtifact.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ExternalArtifactStatus {
        /// The artifact.
        pub artifact: Option<Artifact>,
        /// Conditions of the object.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
    }
}
