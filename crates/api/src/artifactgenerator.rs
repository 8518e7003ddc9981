//! `source.extensions.fluxcd.io`: Flux's source-watcher. An ArtifactGenerator composes the
//! artifacts of several sources (or splits one) into ExternalArtifacts, following copy
//! operations `@alias/glob` -> `@artifact/path`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{CommonMetadata, Condition};
use crate::schema_helpers;

/// API group of the source-watcher kinds.
pub const GROUP: &str = "source.extensions.fluxcd.io";

/// The finalizer source-watcher puts on its generators.
pub const FINALIZER: &str = "source.extensions.fluxcd.io/finalizer";

/// Label on every generated ExternalArtifact: the UID of its generator.
pub const GENERATOR_LABEL: &str = "source.extensions.fluxcd.io/generator";

/// Annotation that pauses a generator when set to `disabled` (any case).
pub const RECONCILE_ANNOTATION: &str = "source.extensions.fluxcd.io/reconcile";

/// Metadata key of the revision the generated artifact came from (OCI's annotation).
pub const ORIGIN_REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// Copy strategy: later files replace earlier ones (the default).
pub const STRATEGY_OVERWRITE: &str = "Overwrite";
/// Copy strategy: YAML files are deep-merged as Helm merges values files.
pub const STRATEGY_MERGE: &str = "Merge";
/// Copy strategy: `.tar.gz`/`.tgz` files are unpacked into the destination.
pub const STRATEGY_EXTRACT: &str = "Extract";

/// Kubernetes object names (DNS-1123 subdomains); artifact names must be one unless
/// `pathPattern` renders them.
const CEL_ARTIFACT_NAMES: &str = "has(self.pathPattern) && size(self.pathPattern) > 0 || \
     self.artifacts.all(a, a.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))";

api_struct! {
    /// ArtifactGenerator: ExternalArtifacts built from the artifacts of Flux sources.
    #[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "source.extensions.fluxcd.io",
        version = "v1beta1",
        kind = "ArtifactGenerator",
        namespaced,
        status = "ArtifactGeneratorStatus",
        shortname = "ag",
        category = "all",
        category = "fluxcd",
        category = "fluxcd-sources",
        derive = "PartialEq",
        printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
        printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
        printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "message": "artifact names must be valid Kubernetes object names when pathPattern is not set",
        "rule": CEL_ARTIFACT_NAMES,
    }]))]
    pub struct ArtifactGeneratorSpec {
        /// Labels and annotations put on every generated ExternalArtifact.
        pub common_metadata: Option<CommonMetadata>,
        /// The Flux sources whose artifacts are read, each under an alias.
        #[schemars(length(min = 1, max = 1000))]
        pub sources: Vec<SourceReference>,
        /// `@<alias>/<pattern>`: one set of artifacts per directory matched, with `{name}` captures.
        #[schemars(
            length(max = 1024),
            regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)/(.*)$")
        )]
        pub path_pattern: Option<String>,
        /// The ExternalArtifacts to generate.
        #[schemars(length(min = 1, max = 1000))]
        pub artifacts: Vec<OutputArtifact>,
    }
}

api_struct! {
    /// A Flux source read by a generator.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct SourceReference {
        /// The name copy operations use for the source (`@alias/...`); unique per generator.
        #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$"))]
        pub alias: String,
        /// Kind of the source.
        #[schemars(extend("enum" = ["Bucket", "GitRepository", "OCIRepository", "HelmChart", "ExternalArtifact"]))]
        pub kind: String,
        /// Name of the source.
        #[schemars(length(max = 253), regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
        pub name: String,
        /// Namespace of the source; the generator's namespace by default.
        #[schemars(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )]
        pub namespace: Option<String>,
    }
}

api_struct! {
    /// One ExternalArtifact to generate.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OutputArtifact {
        /// Name of the ExternalArtifact.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// `@<alias>`: use that source's revision instead of `latest@<digest>` of the content.
        #[schemars(
            length(max = 64),
            regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)$")
        )]
        pub revision: Option<String>,
        /// `@<alias>`: the source whose origin revision goes into the artifact's metadata.
        #[schemars(
            length(max = 64),
            regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)$")
        )]
        pub origin_revision: Option<String>,
        /// Copy operations, run in order; later ones overwrite earlier files.
        #[schemars(length(min = 1))]
        pub copy: Vec<CopyOperation>,
    }
}

api_struct! {
    /// Copies files matched in a source into the generated artifact.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub struct CopyOperation {
        /// `@<alias>/<glob>`: what to copy.
        #[schemars(
            length(min = 1, max = 1024),
            regex(pattern = r"^@([a-z0-9]([a-z0-9_-]*[a-z0-9])?)/(.*)$")
        )]
        pub from: String,
        /// `@artifact/<path>`: where to; a trailing `/` copies into that directory.
        #[schemars(length(min = 1, max = 1024), regex(pattern = r"^@(artifact)/(.*)$"))]
        pub to: String,
        /// Globs of files and directories matched by `from` to leave out.
        #[schemars(length(max = 100))]
        pub exclude: Option<Vec<String>>,
        /// `Overwrite` (default), `Merge` (YAML) or `Extract` (tarballs).
        #[schemars(extend("enum" = ["Overwrite", "Merge", "Extract"]))]
        pub strategy: Option<String>,
    }
}

api_struct! {
    /// Observed state of an ArtifactGenerator.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ArtifactGeneratorStatus {
        /// Conditions of the generator.
        #[schemars(schema_with = "schema_helpers::conditions")]
        pub conditions: Option<Vec<Condition>>,
        /// The ExternalArtifacts generated.
        pub inventory: Option<Vec<ExternalArtifactReference>>,
        /// Value of the last handled `reconcile.fluxcd.io/requestedAt` annotation.
        pub last_handled_reconcile_at: Option<String>,
        /// `sha256:<hex>` over the sources' artifacts the inventory was built from.
        pub observed_sources_digest: Option<String>,
    }
}

/// A generated ExternalArtifact and the artifact it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalArtifactReference {
    /// Name of the ExternalArtifact.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Digest of its artifact.
    pub digest: String,
    /// File name of its artifact in storage.
    pub filename: String,
}
