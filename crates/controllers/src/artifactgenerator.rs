//! The ArtifactGenerator reconciler (`ferroflux controller source-watcher`), as Flux's
//! source-watcher: read the artifacts of the referenced sources, run each output artifact's
//! copy operations, store the result in the artifact storage and publish it as an
//! ExternalArtifact (`source.toolkit.fluxcd.io/v1`) owned by the generator; ExternalArtifacts
//! no longer generated are deleted with their files.
//!
//! Expected flow: validate the spec (Stalled on a duplicate alias or name, an unknown revision
//! alias, a cross-namespace source when refused) -> observe the sources' artifacts -> skip when
//! nothing drifted (same generation, same sources digest, stored files intact,
//! ExternalArtifacts as in the inventory) -> download the sources -> expand `pathPattern` ->
//! build, store and publish each artifact -> collect orphans -> one status patch.

mod build;
mod pathpattern;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::Controller;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use ferroflux_api::artifactgenerator::{
    ArtifactGenerator, ArtifactGeneratorStatus, ExternalArtifactReference, FINALIZER,
    GENERATOR_LABEL, ORIGIN_REVISION_ANNOTATION, RECONCILE_ANNOTATION,
};
use ferroflux_api::meta::{Artifact, Time, condition_type, reason};
use ferroflux_api::source::ExternalArtifact;
use ferroflux_apply::manager::api_message;
use ferroflux_source::artifact::{ExtractOptions, IgnoreRules, pack_dir};
use ferroflux_source::storage::{ObjectKey, Storage};

use crate::conditions;
use crate::runtime::SUCCEEDED;
use crate::runtime::Scheduled;
use crate::runtime::{self, Note, ReconcileError, Reconciler, now};
use crate::source::{source_resource, watch_artifacts};

pub use build::BuildError;

/// The controller's name: its field manager, event source and `managed-by` label.
pub const CONTROLLER: &str = "source-watcher";
/// The kinds a generator may read, all `source.toolkit.fluxcd.io/v1`.
pub const SOURCE_KINDS: [&str; 5] = [
    "Bucket",
    "GitRepository",
    "OCIRepository",
    "HelmChart",
    "ExternalArtifact",
];
const EXTERNAL_ARTIFACT: &str = "ExternalArtifact";
const VALIDATION_FAILED: &str = "ValidationFailed";
const SOURCE_FETCH_FAILED: &str = "SourceFetchFailed";
/// Source-watcher reconciles every generator hourly besides the source watches.
const REQUEUE: Duration = Duration::from_secs(3600);

/// What the reconciler needs.
pub struct Context {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// Where generated artifacts are kept and served from.
    pub storage: Arc<Storage>,
    /// Refuse sources in other namespaces (`--no-cross-namespace-refs`).
    pub no_cross_namespace_refs: bool,
    /// How long to wait for a source that has no artifact yet.
    pub dependency_requeue: Duration,
    /// Limits of one downloaded source and of one generated artifact.
    pub artifact_limits: ExtractOptions,
    http: reqwest::Client,
}

impl Context {
    /// A context with source-watcher's defaults, reporting events as `source-watcher`.
    pub fn new(client: Client, storage: Arc<Storage>) -> Self {
        Context {
            runtime: runtime::Context::new(client, CONTROLLER),
            http: ferroflux_source::http::default_client(),
            no_cross_namespace_refs: false,
            dependency_requeue: Duration::from_secs(5),
            artifact_limits: ExtractOptions::default(),
            storage,
        }
    }

    fn client(&self) -> &Client {
        &self.runtime.client
    }
}

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Scheduled for ArtifactGenerator {
    /// A paused generator (`source.extensions.fluxcd.io/reconcile: disabled`).
    fn suspended(&self) -> bool {
        self.annotations()
            .get(RECONCILE_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
    }

    /// source-watcher has no interval: it requeues on a fixed period.
    fn interval(&self) -> Result<Duration, ReconcileError> {
        Ok(REQUEUE)
    }
}

impl Reconciler for Context {
    type Kind = ArtifactGenerator;
    type Done = Option<Generated>;
    type Failure = ReconcileError;
    type Status = ArtifactGeneratorStatus;
    const OBSERVES_GENERATION: bool = false;
    const FINALIZER: &'static str = FINALIZER;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    /// A new artifact of a referenced source reconciles the generators that read it.
    fn watches(&self, controller: Controller<ArtifactGenerator>) -> Controller<ArtifactGenerator> {
        let reads = |generator: &ArtifactGenerator, kind: &str, namespace: &str, name: &str| {
            let own = generator.namespace().unwrap_or_default();
            generator.spec.sources.iter().any(|s| {
                s.kind == kind
                    && s.name == name
                    && s.namespace.as_deref().unwrap_or(&own) == namespace
            })
        };
        watch_artifacts(controller, self.client(), &SOURCE_KINDS, reads)
    }

    async fn reconcile(
        &self,
        object: &ArtifactGenerator,
    ) -> Result<Option<Generated>, ReconcileError> {
        reconcile_generator(object, self).await
    }

    fn event(&self, _object: &ArtifactGenerator, done: &Option<Generated>) -> Option<Note> {
        let generated = done.as_ref().filter(|g| !g.changed.is_empty())?;
        Some(Note {
            warning: false,
            reason: condition_type::READY,
            message: format!(
                "external artifacts reconciled: {}",
                generated.changed.join("\n")
            ),
        })
    }

    fn summarize(
        &self,
        object: &ArtifactGenerator,
        outcome: Result<Option<Generated>, ReconcileError>,
        at: Time,
    ) -> ArtifactGeneratorStatus {
        summarize(object, outcome, at)
    }

    async fn cleanup(&self, object: &ArtifactGenerator) {
        let inventory = object
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .unwrap_or_default();
        delete_external_artifacts(self, &inventory).await;
    }
}

/// What one successful generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    inventory: Vec<ExternalArtifactReference>,
    sources_digest: String,
    /// `namespace/name (digest)` of every ExternalArtifact that is new or changed.
    changed: Vec<String>,
}

/// A source's artifact as observed: what decides whether a generator drifted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObservedSource {
    digest: String,
    revision: String,
    origin_revision: Option<String>,
    url: String,
}

/// Owns `Ready` and `Stalled`: `Ok(None)` when nothing drifted since the last generation.
async fn reconcile_generator(
    object: &ArtifactGenerator,
    ctx: &Context,
) -> Result<Option<Generated>, ReconcileError> {
    validate(object, ctx.no_cross_namespace_refs)?;
    let observed = observe_sources(object, ctx).await?;
    let sources_digest = sources_digest(&observed);
    if !drifted(object, &sources_digest, ctx).await {
        return Ok(None);
    }
    let workdir = tempfile::tempdir().map_err(|e| {
        ReconcileError::generic(
            reason::RECONCILIATION_FAILED,
            format!("failed to create tmp dir: {e}"),
        )
    })?;
    let sources = fetch_sources(&observed, workdir.path(), ctx).await?;
    let requests = pathpattern::requests(object, &sources).map_err(|e| {
        let message = format!("failed to expand path pattern: {e}");
        match e {
            pathpattern::PatternError::Terminal(_) => {
                ReconcileError::stalling(reason::BUILD_FAILED, message)
            }
            pathpattern::PatternError::Walk(_) => {
                ReconcileError::generic(reason::BUILD_FAILED, message)
            }
        }
    })?;
    let namespace = object.namespace().unwrap_or_default();
    let previous = object
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    let mut inventory = Vec::new();
    let mut changed = Vec::new();
    for request in &requests {
        let output = &request.artifact;
        let staging = workdir.path().join("artifacts").join(&output.name);
        let mut artifact = build_and_store(
            &output.copy,
            &sources,
            staging,
            ObjectKey::new(EXTERNAL_ARTIFACT, &namespace, &output.name),
            ctx,
        )
        .await
        .map_err(|e| {
            ReconcileError::generic(
                reason::BUILD_FAILED,
                format!("{} build failed: {e}", output.name),
            )
        })?;
        set_revisions(
            &mut artifact,
            output.revision.as_deref(),
            output.origin_revision.as_deref(),
            &observed,
        );
        let digest = artifact.digest.clone().unwrap_or_default();
        publish(object, &output.name, &artifact, &request.labels, ctx)
            .await
            .map_err(|e| {
                ReconcileError::generic(
                    reason::RECONCILIATION_FAILED,
                    format!("{} reconcile failed: {}", output.name, api_message(&e)),
                )
            })?;
        let reference = ExternalArtifactReference {
            name: output.name.clone(),
            namespace: namespace.clone(),
            digest: digest.clone(),
            filename: artifact
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        if !previous.iter().any(|p| {
            p.name == reference.name && p.namespace == reference.namespace && p.digest == digest
        }) {
            info!(artifact = %output.name, revision = %artifact.revision, "ExternalArtifact reconciled");
            changed.push(format!("{namespace}/{} ({digest})", output.name));
        }
        inventory.push(reference);
    }
    let orphans = orphans(&previous, &inventory);
    delete_external_artifacts(ctx, &orphans).await;
    Ok(Some(Generated {
        inventory,
        sources_digest,
        changed,
    }))
}

/// Source-watcher's spec checks that the schema cannot express; each failure stalls.
fn validate(
    object: &ArtifactGenerator,
    no_cross_namespace_refs: bool,
) -> Result<(), ReconcileError> {
    let own = object.namespace().unwrap_or_default();
    let invalid = |message: String| ReconcileError::stalling(VALIDATION_FAILED, message);
    let templated = object
        .spec
        .path_pattern
        .as_deref()
        .is_some_and(|p| !p.is_empty());
    let mut aliases = BTreeSet::new();
    for source in &object.spec.sources {
        if !aliases.insert(source.alias.as_str()) {
            return Err(invalid(format!(
                "duplicate source alias '{}' found",
                source.alias
            )));
        }
        if let Some(ns) = source.namespace.as_deref()
            && no_cross_namespace_refs
            && ns != own
        {
            return Err(ReconcileError::stalling(
                reason::ACCESS_DENIED,
                format!(
                    "cross-namespace reference to source {}/{ns}/{} is not allowed",
                    source.kind, source.name
                ),
            ));
        }
    }
    let mut names = BTreeSet::new();
    for artifact in &object.spec.artifacts {
        if !names.insert(artifact.name.as_str()) {
            return Err(invalid(format!(
                "duplicate artifact name '{}' found",
                artifact.name
            )));
        }
        // With a path pattern the name is a template, checked once rendered.
        if !templated && !is_dns_subdomain(&artifact.name) {
            return Err(invalid(format!(
                "artifact name \"{}\" is not a valid Kubernetes object name: a lowercase RFC 1123 \
                 subdomain must consist of lower case alphanumeric characters, '-' or '.', and \
                 must start and end with an alphanumeric character",
                artifact.name
            )));
        }
        if let Some(alias) = artifact
            .revision
            .as_deref()
            .map(|r| r.trim_start_matches('@'))
            && !aliases.contains(alias)
        {
            return Err(invalid(format!(
                "artifact {} revision source alias '{alias}' not found",
                artifact.name
            )));
        }
    }
    Ok(())
}

/// Kubernetes' `NameIsDNSSubdomain`.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Owns `SourceFetchFailed` (waiting): every source must exist and have an artifact.
async fn observe_sources(
    object: &ArtifactGenerator,
    ctx: &Context,
) -> Result<BTreeMap<String, ObservedSource>, ReconcileError> {
    let own = object.namespace().unwrap_or_default();
    let failed = |message: String| {
        ReconcileError::waiting(
            SOURCE_FETCH_FAILED,
            format!("get sources failed: {message}"),
            ctx.dependency_requeue,
        )
    };
    let mut observed = BTreeMap::new();
    for source in &object.spec.sources {
        let namespace = source.namespace.clone().unwrap_or_else(|| own.clone());
        if !SOURCE_KINDS.contains(&source.kind.as_str()) {
            return Err(ReconcileError::stalling(
                VALIDATION_FAILED,
                format!(
                    "source `{}` kind '{}' not supported",
                    source.name, source.kind
                ),
            ));
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            ctx.client().clone(),
            &namespace,
            &source_resource(&source.kind),
        );
        let found = api
            .get(&source.name)
            .await
            .map_err(|e| failed(api_message(&e)))?;
        let artifact: Option<Artifact> =
            serde_json::from_value(found.data["status"]["artifact"].clone()).unwrap_or(None);
        let Some(artifact) = artifact else {
            return Err(failed(format!(
                "source '{}/{namespace}/{}' is not ready",
                source.kind, source.name
            )));
        };
        observed.insert(
            source.alias.clone(),
            ObservedSource {
                origin_revision: artifact
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get(ORIGIN_REVISION_ANNOTATION).cloned()),
                digest: artifact.digest.unwrap_or_default(),
                revision: artifact.revision,
                url: artifact.url,
            },
        );
    }
    Ok(observed)
}

/// Source-watcher's `observedSourcesDigest`: sha256 over the sorted
/// `alias=[digest=..,revision=..,url=..]` of every source, joined by `|`.
fn sources_digest(observed: &BTreeMap<String, ObservedSource>) -> String {
    let mut parts: Vec<String> = observed
        .iter()
        .map(|(alias, s)| {
            format!(
                "{alias}=[digest={},revision={},url={}]",
                s.digest, s.revision, s.url
            )
        })
        .collect();
    parts.sort();
    ferroflux_source::sha256_digest(parts.join("|").as_bytes())
}

/// Whether the generator must be rebuilt: a failed or never-finished reconciliation, a new
/// generation, new source artifacts, a changed list of artifacts, a stored file missing or
/// corrupted, or ExternalArtifacts that differ from the inventory.
async fn drifted(object: &ArtifactGenerator, sources_digest: &str, ctx: &Context) -> bool {
    let status = object.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .as_deref()
        .and_then(|c| conditions::get(c, condition_type::READY));
    let inventory = status.inventory.unwrap_or_default();
    let settled = ready
        .is_some_and(|r| r.status == "True" && r.observed_generation == object.metadata.generation)
        && status.observed_sources_digest.as_deref() == Some(sources_digest)
        && (object
            .spec
            .path_pattern
            .as_deref()
            .is_some_and(|p| !p.is_empty())
            || inventory.len() == object.spec.artifacts.len());
    if !settled {
        return true;
    }
    for entry in &inventory {
        let stored = ferroflux_source::artifact::Artifact {
            path: format!(
                "{}/{}/{}/{}",
                EXTERNAL_ARTIFACT.to_ascii_lowercase(),
                entry.namespace,
                entry.name,
                entry.filename
            ),
            url: String::new(),
            revision: String::new(),
            digest: entry.digest.clone(),
            size: 0,
            last_update_time: jiff::Timestamp::UNIX_EPOCH,
            metadata: BTreeMap::new(),
        };
        if ctx.storage.verify(&stored).is_err() {
            return true;
        }
    }
    let api: Api<ExternalArtifact> = Api::namespaced(
        ctx.client().clone(),
        &object.namespace().unwrap_or_default(),
    );
    let uid = object.uid().unwrap_or_default();
    let Ok(list) = api
        .list(&ListParams::default().labels(&format!("{GENERATOR_LABEL}={uid}")))
        .await
    else {
        return true;
    };
    list.items.len() != inventory.len()
        || list.items.iter().any(|ea| {
            let digest = ea
                .status
                .as_ref()
                .and_then(|s| s.artifact.as_ref())
                .and_then(|a| a.digest.as_deref());
            !inventory
                .iter()
                .any(|i| i.name == ea.name_any() && Some(i.digest.as_str()) == digest)
        })
}

/// Downloads each source's artifact (digest checked, safely extracted within the limits)
/// into `<workdir>/sources/<alias>`.
async fn fetch_sources(
    observed: &BTreeMap<String, ObservedSource>,
    workdir: &std::path::Path,
    ctx: &Context,
) -> Result<BTreeMap<String, PathBuf>, ReconcileError> {
    let mut dirs = BTreeMap::new();
    for (alias, source) in observed {
        let dir = workdir.join("sources").join(alias);
        let failed = |message: String| {
            ReconcileError::waiting(
                SOURCE_FETCH_FAILED,
                format!("fetch sources failed: {message}"),
                ctx.dependency_requeue,
            )
        };
        std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
        ferroflux_source::storage::fetch_artifact(
            &ctx.http,
            &source.url,
            &source.digest,
            &dir,
            &ctx.artifact_limits,
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        dirs.insert(alias.clone(), dir);
    }
    Ok(dirs)
}

/// Building or storing one artifact failed.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("failed to apply copy operations: {0}")]
    Build(#[from] BuildError),
    #[error("failed to create artifact: {0}")]
    Storage(String),
}

/// Stages the copy operations and stores the result: revision `latest@<digest>` (the
/// tarball's sha256; the packing is deterministic, so the same content gives the same file).
async fn build_and_store(
    operations: &[ferroflux_api::artifactgenerator::CopyOperation],
    sources: &BTreeMap<String, PathBuf>,
    staging: PathBuf,
    key: ObjectKey,
    ctx: &Context,
) -> Result<Artifact, StoreError> {
    let operations = operations.to_vec();
    let sources = sources.clone();
    let storage = ctx.storage.clone();
    let limits = ctx.artifact_limits.clone();
    let task = tokio::task::spawn_blocking(move || -> Result<Artifact, StoreError> {
        std::fs::create_dir_all(&staging).map_err(|e| StoreError::Storage(e.to_string()))?;
        build::stage(&operations, &sources, &staging, &limits)?;
        let rules = IgnoreRules::none();
        let packed = pack_dir(&staging, &rules, std::io::sink())
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        let stored = storage
            .store_dir(&key, &format!("latest@{}", packed.digest), &staging, &rules)
            .map_err(|e| StoreError::Storage(e.to_string()))?;
        Ok(crate::source::status_artifact(stored))
    });
    task.await
        .map_err(|e| StoreError::Storage(format!("build task failed: {e}")))?
}

/// `revision: "@alias"` takes that source's revision; `originRevision: "@alias"` records that
/// source's origin revision (or its revision) in the artifact's metadata.
fn set_revisions(
    artifact: &mut Artifact,
    revision: Option<&str>,
    origin_revision: Option<&str>,
    observed: &BTreeMap<String, ObservedSource>,
) {
    let source = |alias: Option<&str>| alias.and_then(|a| observed.get(a.trim_start_matches('@')));
    if let Some(source) = source(revision) {
        artifact.revision = source.revision.clone();
    }
    if let Some(source) = source(origin_revision) {
        let origin = source
            .origin_revision
            .clone()
            .unwrap_or_else(|| source.revision.clone());
        artifact
            .metadata
            .get_or_insert_with(BTreeMap::new)
            .insert(ORIGIN_REVISION_ANNOTATION.to_string(), origin);
    }
}

/// Applies the ExternalArtifact `name` (common metadata, the path pattern's captures as
/// labels, the reserved `managed-by` and generator labels, owner, source reference) and writes
/// its status: the artifact and `Ready`.
async fn publish(
    object: &ArtifactGenerator,
    name: &str,
    artifact: &Artifact,
    captures: &BTreeMap<String, String>,
    ctx: &Context,
) -> Result<(), kube::Error> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<ExternalArtifact> = Api::namespaced(ctx.client().clone(), &namespace);
    let common = object.spec.common_metadata.clone().unwrap_or_default();
    let mut labels = common.labels.unwrap_or_default();
    labels.extend(captures.clone());
    labels.insert("app.kubernetes.io/managed-by".into(), CONTROLLER.into());
    labels.insert(GENERATOR_LABEL.into(), object.uid().unwrap_or_default());
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [{
            "apiVersion": ArtifactGenerator::api_version(&()),
            "kind": ArtifactGenerator::kind(&()),
            "name": object.name_any(),
            "uid": object.uid().unwrap_or_default(),
            "controller": true,
        }],
    });
    if let Some(annotations) = common.annotations.filter(|a| !a.is_empty()) {
        metadata["annotations"] = json!(annotations);
    }
    let desired = json!({
        "apiVersion": ExternalArtifact::api_version(&()),
        "kind": ExternalArtifact::kind(&()),
        "metadata": metadata,
        "spec": {"sourceRef": {
            "apiVersion": ArtifactGenerator::api_version(&()),
            "kind": ArtifactGenerator::kind(&()),
            "name": object.name_any(),
            "namespace": namespace,
        }},
    });
    let params = PatchParams::apply(CONTROLLER).force();
    let applied = api.patch(name, &params, &Patch::Apply(&desired)).await?;
    let mut conds = applied
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    conditions::mark(
        &mut conds,
        condition_type::READY,
        "True",
        SUCCEEDED,
        "Artifact is ready",
        applied.metadata.generation,
        &now(),
    );
    let status = json!({"status": {"artifact": artifact, "conditions": conds}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Inventory entries that the new inventory no longer holds.
fn orphans(
    previous: &[ExternalArtifactReference],
    current: &[ExternalArtifactReference],
) -> Vec<ExternalArtifactReference> {
    previous
        .iter()
        .filter(|p| {
            !current
                .iter()
                .any(|c| c.name == p.name && c.namespace == p.namespace)
        })
        .cloned()
        .collect()
}

/// Deletes the ExternalArtifacts of `references` and their stored files; failures are logged
/// (the next reconciliation's drift check finds what is left).
async fn delete_external_artifacts(ctx: &Context, references: &[ExternalArtifactReference]) {
    for reference in references {
        let key = ObjectKey::new(EXTERNAL_ARTIFACT, &reference.namespace, &reference.name);
        if let Err(err) = ctx.storage.remove_all(&key) {
            warn!(%err, name = %reference.name, "could not remove the files of an ExternalArtifact");
        }
        let api: Api<ExternalArtifact> =
            Api::namespaced(ctx.client().clone(), &reference.namespace);
        match api.delete(&reference.name, &DeleteParams::default()).await {
            Ok(_) => {
                info!(namespace = %reference.namespace, name = %reference.name, "ExternalArtifact deleted")
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => warn!(%err, name = %reference.name, "could not delete an ExternalArtifact"),
        }
    }
}

/// The status after one reconciliation: `Ok(None)` (nothing drifted) keeps it.
fn summarize(
    object: &ArtifactGenerator,
    result: Result<Option<Generated>, ReconcileError>,
    at: Time,
) -> ArtifactGeneratorStatus {
    let mut status = object.status.clone().unwrap_or_default();
    let generation = object.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    match result {
        Ok(Some(generated)) => {
            let message = format!(
                "reconciliation succeeded, generated {} artifact(s)",
                generated.inventory.len()
            );
            conditions::set_outcome(&mut conds, Ok((SUCCEEDED, &message)), generation, &at);
            status.inventory = Some(generated.inventory);
            status.observed_sources_digest = Some(generated.sources_digest);
        }
        // Nothing drifted: the conditions stand, but the reconciliation is over.
        Ok(None) => conditions::delete(&mut conds, condition_type::RECONCILING),
        Err(err) => conditions::set_outcome(&mut conds, Err(&err), generation, &at),
    }
    status.conditions = Some(conds);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::artifactgenerator::{
        ArtifactGeneratorSpec, OutputArtifact, SourceReference,
    };

    fn generator() -> ArtifactGenerator {
        let mut object = ArtifactGenerator::new(
            "app",
            ArtifactGeneratorSpec {
                sources: vec![SourceReference {
                    alias: "git".into(),
                    kind: "GitRepository".into(),
                    name: "repo".into(),
                    namespace: None,
                }],
                artifacts: vec![OutputArtifact {
                    name: "app".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        object.metadata.namespace = Some("apps".into());
        object.metadata.generation = Some(1);
        object
    }

    #[test]
    fn the_sources_digest_is_source_watchers() {
        let observed = BTreeMap::from([(
            "git".to_string(),
            ObservedSource {
                digest: "sha256:aa".into(),
                revision: "main@sha1:bb".into(),
                origin_revision: None,
                url: "http://s/a.tar.gz".into(),
            },
        )]);
        assert_eq!(
            sources_digest(&observed),
            ferroflux_source::sha256_digest(
                b"git=[digest=sha256:aa,revision=main@sha1:bb,url=http://s/a.tar.gz]"
            )
        );
    }

    #[test]
    fn invalid_specs_stall_with_source_watchers_messages() {
        let mut object = generator();
        object.spec.sources.push(object.spec.sources[0].clone());
        let err = validate(&object, false).expect_err("duplicate alias");
        assert_eq!(
            (err.reason, err.message.as_str()),
            (VALIDATION_FAILED, "duplicate source alias 'git' found")
        );
        let mut object = generator();
        object.spec.sources[0].namespace = Some("other".into());
        validate(&object, false).expect("cross-namespace allowed by default");
        let err = validate(&object, true).expect_err("refused");
        assert_eq!(err.reason, reason::ACCESS_DENIED);
        assert_eq!(
            err.message,
            "cross-namespace reference to source GitRepository/other/repo is not allowed"
        );
        let mut object = generator();
        object.spec.artifacts[0].revision = Some("@nope".into());
        let err = validate(&object, false).expect_err("unknown alias");
        assert_eq!(
            err.message,
            "artifact app revision source alias 'nope' not found"
        );
        let mut object = generator();
        object.spec.artifacts[0].name = "{app}".into();
        let err = validate(&object, false).expect_err("not a name");
        assert!(
            err.message
                .starts_with("artifact name \"{app}\" is not a valid")
        );
        object.spec.path_pattern = Some("@git/apps/{app}".into());
        validate(&object, false).expect("a template under a path pattern");
    }

    #[test]
    fn revisions_come_from_the_named_sources() {
        let observed = BTreeMap::from([(
            "oci".to_string(),
            ObservedSource {
                digest: "sha256:aa".into(),
                revision: "v1@sha256:cc".into(),
                origin_revision: Some("main@sha1:dd".into()),
                url: String::new(),
            },
        )]);
        let mut artifact = Artifact {
            path: "p".into(),
            url: "u".into(),
            revision: "latest@sha256:ee".into(),
            digest: Some("sha256:ee".into()),
            last_update_time: Time(jiff::Timestamp::UNIX_EPOCH),
            size: None,
            metadata: None,
        };
        set_revisions(&mut artifact, Some("@oci"), Some("@oci"), &observed);
        assert_eq!(artifact.revision, "v1@sha256:cc");
        assert_eq!(
            artifact
                .metadata
                .and_then(|m| m.get(ORIGIN_REVISION_ANNOTATION).cloned()),
            Some("main@sha1:dd".into())
        );
    }

    #[test]
    fn orphans_are_the_entries_no_longer_generated() {
        let entry = |name: &str| ExternalArtifactReference {
            name: name.into(),
            namespace: "apps".into(),
            digest: "sha256:aa".into(),
            filename: "aa.tar.gz".into(),
        };
        assert_eq!(
            orphans(&[entry("a"), entry("b")], &[entry("b")]),
            vec![entry("a")]
        );
    }

    #[test]
    fn a_failure_keeps_the_inventory_and_a_success_clears_stalled() {
        let mut object = generator();
        let generated = Generated {
            inventory: vec![ExternalArtifactReference {
                name: "app".into(),
                namespace: "apps".into(),
                digest: "sha256:aa".into(),
                filename: "aa.tar.gz".into(),
            }],
            sources_digest: "sha256:ss".into(),
            changed: vec![],
        };
        object.status = Some(summarize(&object, Ok(Some(generated)), now()));
        let failed = ReconcileError::stalling(VALIDATION_FAILED, "bad");
        let status = summarize(&object, Err(failed), now());
        let conds = status.conditions.clone().unwrap_or_default();
        assert!(conditions::is_true(&conds, condition_type::STALLED));
        assert_eq!(status.inventory.map(|i| i.len()), Some(1));
        assert_eq!(status.observed_sources_digest.as_deref(), Some("sha256:ss"));
    }
}
