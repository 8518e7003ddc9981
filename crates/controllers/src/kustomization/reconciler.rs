//! The Kustomization reconciler (`ferroflux controller kustomize`): fetch the source artifact,
//! build it, substitute variables, apply as the tenant, prune, wait for health, and write the
//! status once. Each `reconcile_*` step owns one failure reason and stops the chain.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use ferroflux_api::kustomize::{Kustomization, KustomizationStatus};
use ferroflux_api::meta::{Artifact, ResourceInventory, Time, condition_type, reason};
use ferroflux_apply::identity;
use ferroflux_apply::inventory::{inventory_of, stale_objects};
use ferroflux_apply::manager::{
    Action as ApplyAction, ApplyOptions, Change, DeleteOptions, ResourceManager, api_message,
};
use ferroflux_apply::object::ObjectRef;

use crate::conditions;
use crate::kustomization::{generator, history, ignore, postbuild};
use crate::rootfs::RootedFs;
use crate::runtime::{
    self, Failure, Note, ReconcileError, Reconciler, now, optional_spec_duration, spec_duration,
};
use crate::source::watch_artifacts;

/// The field manager of everything the controller applies.
pub const FIELD_MANAGER: &str = "kustomize-controller";
/// Label naming the Kustomization that applied an object.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label naming the namespace of the Kustomization that applied an object.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";

/// The controller's flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--default-service-account`: the identity of Kustomizations that name none.
    pub default_service_account: Option<String>,
    /// `--no-cross-namespace-refs`: refuse sources in other namespaces.
    pub no_cross_namespace_refs: bool,
    /// `--requeue-dependency`: how often to check on dependencies that are not ready.
    pub requeue_dependency: Duration,
    /// Unset variables are errors (`StrictPostBuildSubstitutions`).
    pub strict_substitution: bool,
    /// Largest artifact accepted, in bytes.
    pub artifact_max_size: u64,
    /// Only Kustomizations matching this label selector (`--watch-label-selector`).
    pub watch_label_selector: Option<String>,
    /// Reconciliations run at once (`--concurrent`).
    pub concurrent: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_service_account: None,
            no_cross_namespace_refs: false,
            requeue_dependency: Duration::from_secs(30),
            strict_substitution: false,
            artifact_max_size: ferroflux_source::artifact::DEFAULT_MAX_UNTAR_SIZE,
            watch_label_selector: None,
            concurrent: 4,
        }
    }
}

impl crate::applier::Flags for Options {
    const CONTROLLER: &'static str = FIELD_MANAGER;
    fn watch_label_selector(&self) -> Option<&str> {
        self.watch_label_selector.as_deref()
    }
    fn requeue_dependency(&self) -> Duration {
        self.requeue_dependency
    }
}

/// What the reconciler needs: the controller's config (impersonating clients are made from
/// it), an HTTP client for artifacts and the flags.
pub type Context = crate::applier::Context<Options>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = Kustomization;
    type Done = Applied;
    type Failure = Failed;
    type Status = KustomizationStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    fn watcher_config(&self) -> watcher::Config {
        self.selected()
    }

    fn watches(&self, controller: Controller<Kustomization>) -> Controller<Kustomization> {
        let reads = |ks: &Kustomization, kind: &str, namespace: &str, name: &str| {
            let r = &ks.spec.source_ref;
            let own = ks.namespace().unwrap_or_default();
            r.kind == kind && r.name == name && r.namespace.as_deref().unwrap_or(&own) == namespace
        };
        let kinds = [
            "GitRepository",
            "OCIRepository",
            "Bucket",
            "ExternalArtifact",
        ];
        watch_artifacts(controller, self.client(), &kinds, reads).with_config(
            kube::runtime::controller::Config::default().concurrency(self.options.concurrent),
        )
    }

    /// `spec.retryInterval`, the interval when unset (an invalid one stalls in `reconcile`).
    fn retry_interval(&self, ks: &Kustomization) -> Option<Duration> {
        Checked::of(ks).ok().map(|checked| checked.retry)
    }

    async fn reconcile(&self, ks: &Kustomization) -> Result<Applied, Failed> {
        let started = std::time::Instant::now();
        let mut progress = Progress::default();
        let result = match Checked::of(ks) {
            Ok(checked) => attempt(ks, self, &checked, &mut progress).await,
            Err(err) => Err(err),
        };
        progress.elapsed = started.elapsed();
        match result {
            Ok(changes) => Ok(Applied { progress, changes }),
            Err(error) => Err(Failed { progress, error }),
        }
    }

    /// The change set when something changed, reported under `Progressing`, the Ready reason
    /// Flux's controller holds while it applies (`flux events` shows it so).
    fn event(&self, _ks: &Kustomization, applied: &Applied) -> Option<Note> {
        let changed: Vec<String> = applied
            .changes
            .iter()
            .filter(|c| c.action != ApplyAction::Unchanged)
            .map(ToString::to_string)
            .collect();
        (!changed.is_empty()).then(|| Note {
            warning: false,
            reason: reason::PROGRESSING,
            message: changed.join("\n"),
        })
    }

    /// Flux's "Reconciliation finished in 1.2s, next run in 10m0s", after every success.
    fn finished(&self, ks: &Kustomization, _applied: &Applied, elapsed: Duration) -> Option<Note> {
        let interval = spec_duration("spec.interval", &ks.spec.interval).ok()?;
        Some(Note {
            warning: false,
            reason: reason::RECONCILIATION_SUCCEEDED,
            message: format!(
                "Reconciliation finished in {}, next run in {}",
                runtime::go_duration(elapsed),
                runtime::go_duration(interval)
            ),
        })
    }

    fn summarize(
        &self,
        ks: &Kustomization,
        outcome: Result<Applied, Failed>,
        at: Time,
    ) -> KustomizationStatus {
        let (progress, result) = match outcome {
            Ok(applied) => (applied.progress, Ok(applied.changes)),
            Err(failed) => (failed.progress, Err(failed.error)),
        };
        summarize(ks, progress, result, at)
    }

    async fn cleanup(&self, ks: &Kustomization) {
        finalize(ks, self).await;
    }
}

/// How far a reconciliation got, for the status write whether it succeeded or not.
#[derive(Debug, Default)]
pub struct Progress {
    revision: Option<String>,
    /// Flux's origin revision: the artifact's `org.opencontainers.image.revision`.
    origin_revision: Option<String>,
    /// Digest of the built set, once the build succeeded (the history records only those).
    digest: Option<String>,
    inventory: Option<ResourceInventory>,
    healthy: Option<bool>,
    elapsed: Duration,
}

/// A successful reconciliation: how far it got (all the way) and what the apply changed.
#[derive(Debug)]
pub struct Applied {
    progress: Progress,
    changes: Vec<Change>,
}

/// A failed reconciliation: how far it got and why it stopped.
#[derive(Debug)]
pub struct Failed {
    progress: Progress,
    error: ReconcileError,
}

impl From<ReconcileError> for Failed {
    fn from(error: ReconcileError) -> Self {
        Failed {
            progress: Progress::default(),
            error,
        }
    }
}

impl Failure for Failed {
    fn error(&self) -> &ReconcileError {
        &self.error
    }
}

/// What of the spec is checked before anything else: durations that do not parse and ignore
/// rules that do not compile stall.
struct Checked {
    retry: Duration,
    timeout: Duration,
    ignore: Vec<ignore::Rule>,
}

impl Checked {
    fn of(ks: &Kustomization) -> Result<Self, ReconcileError> {
        let interval = spec_duration("spec.interval", &ks.spec.interval)?;
        Ok(Checked {
            retry: optional_spec_duration(
                "spec.retryInterval",
                ks.spec.retry_interval.as_deref(),
                interval,
            )?,
            timeout: optional_spec_duration("spec.timeout", ks.spec.timeout.as_deref(), interval)?,
            ignore: ignore::compile(ks.spec.ignore.as_deref())?,
        })
    }
}

/// The annotation of an OCI artifact naming the revision it was built from.
const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";

/// Flux's words for the status written before a long health wait.
const HEALTH_CHECK_IN_PROGRESS: &str = "Health check in progress";

/// Runs the chain, recording in `progress` how far it got; every step's failure carries the
/// reason it is reported under.
async fn attempt(
    ks: &Kustomization,
    ctx: &Context,
    checked: &Checked,
    progress: &mut Progress,
) -> Result<Vec<Change>, ReconcileError> {
    let artifact = reconcile_source(ks, ctx).await?;
    progress.revision = Some(artifact.revision.clone());
    progress.origin_revision = artifact
        .metadata
        .as_ref()
        .and_then(|m| m.get(ORIGIN_REVISION_KEY))
        .cloned();
    reconcile_dependencies(ks, ctx).await?;
    let objects = reconcile_build(ks, ctx, &artifact).await?;
    progress.digest = Some(ferroflux_source::sha256_digest(
        &serde_json::to_vec(&objects).expect("built objects are JSON values"),
    ));
    let manager = applier(ks, ctx)?;
    let options = ApplyOptions {
        force: ks.spec.force == Some(true),
        ignore: ignore::ignored_paths(&checked.ignore, &objects),
    };
    let mut changes = manager
        .apply_all(&objects, &options)
        .await
        .map_err(|err| ReconcileError::generic(reason::RECONCILIATION_FAILED, err.to_string()))?;
    let refs: Vec<ObjectRef> = changes.iter().map(|c| c.object.clone()).collect();
    let inventory = inventory_of(&refs);
    progress.inventory = Some(inventory.clone());
    if ks.spec.prune {
        changes.extend(prune(ks, &manager, &inventory).await?);
    }
    let checks = health_checks(ks, &refs);
    if !checks.is_empty() {
        let timeout = checked.timeout;
        report_health_check(ks, ctx, progress, &changes).await;
        if let Err(err) = manager.wait_healthy(&checks, timeout, true).await {
            progress.healthy = Some(false);
            return Err(ReconcileError::generic(
                reason::HEALTH_CHECK_FAILED,
                format!(
                    "health check failed after {}: {err}",
                    crate::runtime::go_duration(timeout)
                ),
            ));
        }
        progress.healthy = Some(true);
    }
    info!(kustomization = %format!("{}/{}", ks.namespace().unwrap_or_default(), ks.name_any()),
        changes = %changes.iter().filter(|c| c.action != ApplyAction::Unchanged)
            .map(ToString::to_string).collect::<Vec<_>>().join(", "),
        "server-side apply completed");
    Ok(changes)
}

/// Deletes what the previous inventory has and `inventory` has not (and this Kustomization
/// still owns).
async fn prune(
    ks: &Kustomization,
    manager: &ResourceManager,
    inventory: &ResourceInventory,
) -> Result<Vec<Change>, ReconcileError> {
    let old = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    let stale = stale_objects(&old, inventory)
        .map_err(|e| ReconcileError::generic(reason::RECONCILIATION_FAILED, e.to_string()))?;
    manager
        .delete_all(&stale, &owned_by(ks))
        .await
        .map_err(|e| {
            ReconcileError::generic(reason::RECONCILIATION_FAILED, format!("prune failed: {e}"))
        })
}

/// Before a health wait that may last up to the timeout, writes `Reconciling` and
/// `Ready=Unknown` as Flux does, so a reader sees the wait rather than the previous outcome.
/// Only when something may have changed (a new revision, a change applied, an unhealthy
/// previous check): a reconciliation that changes nothing writes nothing. A failed write is
/// logged; the reconciliation goes on.
async fn report_health_check(
    ks: &Kustomization,
    ctx: &Context,
    progress: &Progress,
    changes: &[Change],
) {
    let status = ks.status.clone().unwrap_or_default();
    let mut conds = status.conditions.unwrap_or_default();
    let settled = status.last_applied_revision == progress.revision
        && changes.iter().all(|c| c.action == ApplyAction::Unchanged)
        && conditions::is_true(&conds, condition_type::HEALTHY);
    if settled {
        return;
    }
    let at = now();
    for (type_, state) in [
        (condition_type::RECONCILING, "True"),
        (condition_type::READY, "Unknown"),
    ] {
        let generation = ks.metadata.generation;
        let (why, message) = (reason::PROGRESSING, HEALTH_CHECK_IN_PROGRESS);
        conditions::mark(&mut conds, type_, state, why, message, generation, &at);
    }
    if let Err(err) = ctx.runtime.report_progress(ks, &conds).await {
        warn!(%err, "could not report the health check in progress");
    }
}

/// The objects whose health gates readiness: every applied object with `wait`, else the
/// listed `healthChecks`.
fn health_checks(ks: &Kustomization, applied: &[ObjectRef]) -> Vec<ObjectRef> {
    if ks.spec.wait == Some(true) {
        return applied.to_vec();
    }
    let default_ns = ks.namespace().unwrap_or_default();
    ks.spec
        .health_checks
        .iter()
        .flatten()
        .map(|check| {
            let api_version = check.api_version.clone().unwrap_or_else(|| "v1".into());
            let (group, version) = api_version
                .rsplit_once('/')
                .map_or((String::new(), api_version.clone()), |(g, v)| {
                    (g.into(), v.into())
                });
            ObjectRef {
                group,
                version,
                kind: check.kind.clone(),
                namespace: check
                    .namespace
                    .clone()
                    .unwrap_or_else(|| default_ns.clone()),
                name: check.name.clone(),
            }
        })
        .collect()
}

/// The source's artifact. Owns `AccessDenied` (Stalled) and `ArtifactFailed` (retried).
async fn reconcile_source(ks: &Kustomization, ctx: &Context) -> Result<Artifact, ReconcileError> {
    let own_ns = ks.namespace().unwrap_or_default();
    let source = &ks.spec.source_ref;
    let source_ns = source.namespace.clone().unwrap_or_else(|| own_ns.clone());
    let source_id = format!("{}/{}/{}", source.kind, source_ns, source.name);
    if ctx.options.no_cross_namespace_refs && source_ns != own_ns {
        return Err(ReconcileError::stalling(
            reason::ACCESS_DENIED,
            format!("can't access '{source_id}', cross-namespace references have been blocked"),
        ));
    }
    let version = source
        .api_version
        .as_deref()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("v1", |(_, v)| v);
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        ferroflux_api::source::GROUP,
        version,
        &source.kind,
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client().clone(), &source_ns, &resource);
    let wait = Duration::from_secs(10);
    let object = api.get_opt(&source.name).await.map_err(|e| {
        ReconcileError::waiting(
            reason::ARTIFACT_FAILED,
            format!("failed to get source '{source_id}': {}", api_message(&e)),
            wait,
        )
    })?;
    let Some(object) = object else {
        return Err(ReconcileError::waiting(
            reason::ARTIFACT_FAILED,
            format!("Source '{source_id}' not found"),
            wait,
        ));
    };
    let artifact = object.data["status"]["artifact"].clone();
    if artifact.is_null() {
        return Err(ReconcileError::waiting(
            reason::ARTIFACT_FAILED,
            format!("Source '{source_id}' is not ready, artifact not found"),
            wait,
        ));
    }
    serde_json::from_value(artifact).map_err(|e| {
        ReconcileError::waiting(
            reason::ARTIFACT_FAILED,
            format!("Source '{source_id}' has an invalid artifact: {e}"),
            wait,
        )
    })
}

/// Owns `DependencyNotReady`: every `dependsOn` Kustomization must be Ready at its generation.
async fn reconcile_dependencies(ks: &Kustomization, ctx: &Context) -> Result<(), ReconcileError> {
    let own_ns = ks.namespace().unwrap_or_default();
    for dep in ks.spec.depends_on.iter().flatten() {
        let ns = dep.namespace.clone().unwrap_or_else(|| own_ns.clone());
        ctx.dependency_ready::<Kustomization>(&ns, &dep.name)
            .await?;
    }
    Ok(())
}

/// Owns `ArtifactFailed` (download) and `BuildFailed` (kustomize, substitution).
async fn reconcile_build(
    ks: &Kustomization,
    ctx: &Context,
    artifact: &Artifact,
) -> Result<Vec<Value>, ReconcileError> {
    let workdir = tempfile::tempdir().map_err(|e| {
        ReconcileError::generic(
            reason::ARTIFACT_FAILED,
            format!("cannot make a work directory: {e}"),
        )
    })?;
    build(ks, ctx, artifact, workdir.path())
        .await
        .map_err(|mut err| {
            err.message = without_root(workdir.path(), &err.message);
            err
        })
}

/// `message` with the paths under `root` written relative to it: the work directory's name
/// is random, and a message must be the same for the same failure.
fn without_root(root: &Path, message: &str) -> String {
    let mut message = message.to_string();
    let canonical = root.canonicalize().ok();
    for root in std::iter::once(root).chain(canonical.as_deref()) {
        let root = root.display().to_string();
        message = message.replace(&format!("{root}/"), "").replace(&root, ".");
    }
    message
}

/// Downloads the artifact into `workdir` and builds it.
async fn build(
    ks: &Kustomization,
    ctx: &Context,
    artifact: &Artifact,
    workdir: &Path,
) -> Result<Vec<Value>, ReconcileError> {
    let options = ferroflux_source::artifact::ExtractOptions {
        max_size: ctx.options.artifact_max_size,
        ..Default::default()
    };
    let digest = artifact.digest.clone().unwrap_or_default();
    ferroflux_source::storage::fetch_artifact(&ctx.http, &artifact.url, &digest, workdir, &options)
        .await
        .map_err(|e| {
            ReconcileError::generic(
                reason::ARTIFACT_FAILED,
                format!("failed to download artifact: {e}"),
            )
        })?;
    let build_failed = |message: String| ReconcileError::generic(reason::BUILD_FAILED, message);
    let path = ks.spec.path.clone().unwrap_or_default();
    let dir = confined_path(workdir, &path)
        .ok_or_else(|| build_failed(format!("path '{path}' leaves the source artifact")))?;
    let fs = RootedFs::new(workdir).map_err(|e| build_failed(e.to_string()))?;
    if !ferroflux_kustomize::fs::FileSystem::is_dir(&fs, &dir) {
        return Err(build_failed(format!(
            "kustomization path not found: {path}"
        )));
    }
    write_overlay(&fs, ks, &dir).map_err(build_failed)?;
    let build_options = ferroflux_kustomize::Options {
        reorder: ferroflux_kustomize::Reorder::Legacy,
        load_restrictor: ferroflux_kustomize::LoadRestrictor::None,
    };
    let resources = ferroflux_kustomize::build_resources(&fs, &dir, build_options)
        .map_err(|e| build_failed(format!("kustomize build failed: {e}")))?;
    let vars = substitution_variables(ks, ctx).await?;
    let name = ks.name_any();
    let namespace = ks.namespace().unwrap_or_default();
    let mut objects = Vec::with_capacity(resources.len());
    for resource in resources {
        let mut object = ferroflux_kustomize::yaml::emit::to_serde(
            &ferroflux_kustomize::yaml::Value::Map(resource.obj),
        );
        if let Some(vars) = &vars {
            object = postbuild::substitute(&object, vars, ctx.options.strict_substitution)
                .map_err(|e| build_failed(e.to_string()))?;
        }
        label(&mut object, ks, &name, &namespace);
        objects.push(object);
    }
    Ok(objects)
}

/// Joins `path` to `root` without leaving it (no `..` above the root, no absolute escape).
fn confined_path(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() || !out.starts_with(root) {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out.starts_with(root).then_some(out)
}

fn write_overlay(fs: &RootedFs, ks: &Kustomization, dir: &Path) -> Result<(), String> {
    let existing = generator::find_kustomization(fs, dir);
    let (base, discovered, target) = match &existing {
        Some(file) => {
            let text = ferroflux_kustomize::fs::FileSystem::read(fs, file)
                .and_then(|bytes| String::from_utf8(bytes).map_err(std::io::Error::other))
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let value: Value = ferroflux_gocompat::yaml::from_str(&text)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            (Some(value), Vec::new(), file.clone())
        }
        None => {
            let found = generator::discover_resources(fs, dir).map_err(|e| e.to_string())?;
            (
                None,
                found,
                dir.join(generator::KUSTOMIZATION_FILE_NAMES[0]),
            )
        }
    };
    let overlay = generator::overlay(base, &discovered, &ks.spec)
        .map_err(|e| format!("{}: {e}", target.display()))?;
    let text = serde_saphyr::to_string(&overlay).map_err(|e| e.to_string())?;
    fs.write(&target, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// `spec.postBuild.substituteStrategy` that substitutes even without variables.
const SUBSTITUTE_ALWAYS: &str = "Always";

/// Variables of `postBuild`, or `None` when nothing is to be substituted.
async fn substitution_variables(
    ks: &Kustomization,
    ctx: &Context,
) -> Result<Option<BTreeMap<String, String>>, ReconcileError> {
    let Some(post_build) = &ks.spec.post_build else {
        return Ok(None);
    };
    let namespace = ks.namespace().unwrap_or_default();
    let mut sources = Vec::new();
    for from in post_build.substitute_from.iter().flatten() {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", &from.kind));
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client().clone(), &namespace, &resource);
        let found = api.get_opt(&from.name).await.map_err(|e| {
            ReconcileError::generic(
                reason::BUILD_FAILED,
                format!(
                    "substitute from '{}/{}': {}",
                    from.kind,
                    from.name,
                    api_message(&e)
                ),
            )
        })?;
        let Some(object) = found else {
            if from.optional == Some(true) {
                continue;
            }
            return Err(ReconcileError::generic(
                reason::BUILD_FAILED,
                format!("substitute from '{}/{}': not found", from.kind, from.name),
            ));
        };
        let mut vars = BTreeMap::new();
        for (key, value) in object.data["data"].as_object().into_iter().flatten() {
            let Some(text) = value.as_str() else { continue };
            let text = if from.kind == "Secret" {
                decode_base64(text).ok_or_else(|| {
                    ReconcileError::generic(
                        reason::BUILD_FAILED,
                        format!("Secret/{}: key {key} is not base64", from.name),
                    )
                })?
            } else {
                text.to_string()
            };
            vars.insert(key.clone(), text);
        }
        sources.push(vars);
    }
    let vars = postbuild::collect_variables(sources, post_build.substitute.as_ref())
        .map_err(|e| ReconcileError::stalling(reason::BUILD_FAILED, e.to_string()))?;
    // Flux's `substituteStrategy`: by default (`WithVariables`) nothing is substituted without
    // variables, so `${VAR:=default}` stays as written; `Always` substitutes anyway.
    let always = post_build.substitute_strategy.as_deref() == Some(SUBSTITUTE_ALWAYS);
    Ok((always || !vars.is_empty()).then_some(vars))
}

fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Flux's ownership labels and the Kustomization's `commonMetadata`.
fn label(object: &mut Value, ks: &Kustomization, name: &str, namespace: &str) {
    let metadata = &mut object["metadata"];
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    if let Some(common) = &ks.spec.common_metadata {
        labels.extend(common.labels.clone().unwrap_or_default());
        annotations.extend(common.annotations.clone().unwrap_or_default());
    }
    labels.insert(NAME_LABEL.into(), name.into());
    labels.insert(NAMESPACE_LABEL.into(), namespace.into());
    for (field, values) in [("labels", labels), ("annotations", annotations)] {
        if values.is_empty() {
            continue;
        }
        let map = &mut metadata[field];
        if !map.is_object() {
            *map = json!({});
        }
        for (key, value) in values {
            map[key] = Value::String(value);
        }
    }
}

/// Flux deletes (prune, and garbage collection on deletion) only objects whose ownership
/// labels still name this Kustomization: one another Kustomization took over is kept.
fn owned_by(ks: &Kustomization) -> DeleteOptions {
    DeleteOptions {
        owner: [
            (NAME_LABEL.to_string(), ks.name_any()),
            (
                NAMESPACE_LABEL.to_string(),
                ks.namespace().unwrap_or_default(),
            ),
        ]
        .into(),
    }
}

/// The manager that applies as the Kustomization's identity. Owns nothing: a bad client
/// configuration is a generic failure.
fn applier(ks: &Kustomization, ctx: &Context) -> Result<ResourceManager, ReconcileError> {
    let account = identity::applier(
        ks.spec.service_account_name.as_deref(),
        ctx.options.default_service_account.as_deref(),
    );
    let client = match account {
        Some(account) => identity::impersonating_client(
            &ctx.config,
            &ks.namespace().unwrap_or_default(),
            account,
        )
        .map_err(|e| {
            ReconcileError::generic(
                reason::RECONCILIATION_FAILED,
                format!("cannot impersonate {account}: {e}"),
            )
        })?,
        None => ctx.client().clone(),
    };
    Ok(ResourceManager::new(client, FIELD_MANAGER))
}

/// The status after an attempt: conditions by Flux's rules, revisions, inventory, history.
fn summarize(
    ks: &Kustomization,
    outcome: Progress,
    result: Result<Vec<Change>, ReconcileError>,
    at: Time,
) -> KustomizationStatus {
    let mut status = ks.status.clone().unwrap_or_default();
    let generation = ks.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    if let Some(revision) = &outcome.revision {
        status.last_attempted_revision = Some(revision.clone());
    }
    if let Some(inventory) = outcome.inventory {
        status.inventory = Some(inventory);
    }
    if let Some(digest) = &outcome.digest {
        let mut metadata = BTreeMap::new();
        metadata.extend(
            outcome
                .revision
                .clone()
                .map(|r| ("revision".to_string(), r)),
        );
        metadata.extend(
            outcome
                .origin_revision
                .clone()
                .map(|r| ("originRevision".to_string(), r)),
        );
        let recorded = match &result {
            Ok(_) => reason::RECONCILIATION_SUCCEEDED,
            Err(err) => err.reason,
        };
        let changed_nothing = result
            .as_ref()
            .is_ok_and(|changes| changes.iter().all(|c| c.action == ApplyAction::Unchanged));
        let history = status.history.get_or_insert_default();
        // A success that changed nothing and repeats the newest snapshot leaves the history as it
        // is: otherwise every interval (and every restart) would rewrite the object for a
        // timestamp, where ours writes only what changed.
        if !(changed_nothing && history::repeats_newest(history, digest, recorded)) {
            history::upsert(
                history,
                digest,
                at.clone(),
                outcome.elapsed,
                recorded,
                metadata,
            );
        }
    }
    match &result {
        Ok(_) => {
            let revision = outcome.revision.clone().unwrap_or_default();
            let message = format!("Applied revision: {revision}");
            let succeeded = Ok((reason::RECONCILIATION_SUCCEEDED, message.as_str()));
            conditions::set_outcome(&mut conds, succeeded, generation, &at);
            status.last_applied_revision = outcome.revision;
            status.last_applied_origin_revision = outcome.origin_revision;
        }
        Err(err) => conditions::set_outcome(&mut conds, Err(err), generation, &at),
    }
    let health = match outcome.healthy {
        Some(true) => Some((
            "True",
            reason::RECONCILIATION_SUCCEEDED,
            "Health check passed",
        )),
        Some(false) => {
            let message = result.as_ref().err().map_or("", |e| e.message.as_str());
            Some(("False", reason::HEALTH_CHECK_FAILED, message))
        }
        None => None,
    };
    if let Some((state, why, message)) = health {
        let healthy = condition_type::HEALTHY;
        conditions::mark(&mut conds, healthy, state, why, message, generation, &at);
    }
    status.conditions = Some(conds);
    status
}

/// On deletion with `prune: true`, deletes everything in the inventory (as the applier).
async fn finalize(ks: &Kustomization, ctx: &Context) {
    let orphan = ks.spec.deletion_policy.as_deref() == Some("Orphan");
    if ks.spec.prune && !orphan && ks.spec.suspend != Some(true) {
        let inventory = ks
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .unwrap_or_default();
        match (
            stale_objects(&inventory, &ResourceInventory::default()),
            applier(ks, ctx),
        ) {
            (Ok(objects), Ok(manager)) => {
                if let Err(err) = manager.delete_all(&objects, &owned_by(ks)).await {
                    warn!(%err, "garbage collection on deletion failed");
                }
            }
            (Err(err), _) => warn!(%err, "inventory unreadable on deletion"),
            (_, Err(err)) => warn!(%err, "no client to garbage collect with"),
        }
    }
}

/// Lists every Kustomization (for tests and status tables).
pub async fn list_all(client: &Client) -> Result<Vec<Kustomization>, kube::Error> {
    Ok(Api::<Kustomization>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_artifact() {
        let root = Path::new("/tmp/artifact");
        assert_eq!(
            confined_path(root, "./clusters/prod"),
            Some(root.join("clusters/prod"))
        );
        assert_eq!(confined_path(root, ""), Some(root.to_path_buf()));
        assert_eq!(confined_path(root, "/apps"), Some(root.join("apps")));
        assert_eq!(confined_path(root, "apps/../base"), Some(root.join("base")));
        assert_eq!(confined_path(root, "../etc"), None);
        assert_eq!(confined_path(root, "apps/../../etc"), None);
    }
}
