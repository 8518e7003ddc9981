//! The HelmRelease reconciler (`ferroflux controller helm`, helm.toolkit.fluxcd.io/v2): get
//! the chart (a HelmChart made from `spec.chart`, verified with cosign when `verify` says so,
//! or the `spec.chartRef` source), compose the values, render, and install, upgrade or
//! remediate in Helm's own storage (Secrets `sh.helm.release.v1.<name>.v<N>` the real `helm`
//! reads), applying as the tenant, on the cluster of `spec.kubeConfig` when it names one;
//! uninstall on deletion. [`plan`] decides, [`action`] does.
//!
//! Chart hooks run as Helm runs them, `test` hooks after each install or upgrade with
//! `spec.test` (filters, `ignoreFailures`, remediation of a failed test); `lookup` reads the
//! cluster as the release's identity; [`postrender`] runs `spec.postRenderers` and
//! `spec.commonMetadata` on the manifest; drift detection `enabled` corrects on every
//! reconciliation, `warn` only reports; the install/upgrade `RetryOnFailure` strategy retries
//! after its interval instead of remediating. Helm's options are Flux 2.9's: server-side apply
//! (conflicts forced) or client-side apply ([`clientside`], `force` replacing), `cleanupOnFail`,
//! `disableWaitForJobs`, `disableSchemaValidation`, `disableTakeOwnership`, `install.replace`,
//! `upgrade.preserveValues`, `uninstall.deletionPropagation`, the `legacy` wait ([`wait`]),
//! `healthCheckExprs` and `dependsOn[].readyExpr` ([`cel`]), and a changed release target
//! (names, or the chart name under `chartNameChangeStrategy: Reinstall`) uninstalled first.
//! What is not implemented is refused with a Stalled `InvalidSpec` naming it (never silently
//! ignored): see [`plan::unsupported`].

pub mod action;
pub mod cel;
pub mod chart;
pub mod clientside;
pub mod kubeconfig;
pub mod plan;
pub mod postrender;
pub mod values;
pub mod wait;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::helm::{HelmRelease, HelmReleaseStatus, Snapshot, TestHookStatus};
use ferroflux_api::meta::{ResourceInventory, Time, condition_type, reason as meta_reason};
use ferroflux_apply::identity;
use ferroflux_helm::release::{ChartRecord, Release, Status};
use kube::api::Api;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use crate::conditions;
use crate::runtime::{
    self, Failure, Note, ReconcileError, Reconciler, Retry, optional_spec_duration,
};
use crate::source::watch_artifacts;
use action::{Helm, reason};
use plan::{Counters, Desired, Next};

/// The field manager (and event reporter) of the controller.
pub const FIELD_MANAGER: &str = "helm-controller";
/// Label naming the HelmRelease that made an object.
pub const NAME_LABEL: &str = "helm.toolkit.fluxcd.io/name";
/// Label naming the namespace of that HelmRelease.
pub const NAMESPACE_LABEL: &str = "helm.toolkit.fluxcd.io/namespace";
/// Flux's condition of the last release action.
pub const RELEASED: &str = "Released";
/// Flux's condition of the last remediation.
pub const REMEDIATED: &str = "Remediated";
/// Flux's Stalled reason once retries are exhausted.
pub const RETRIES_EXCEEDED: &str = "RetriesExceeded";
/// Flux's Stalled reason of a failed upgrade with nothing to roll back to.
pub const MISSING_ROLLBACK_TARGET: &str = "MissingRollbackTarget";
/// Annotation requesting one install or upgrade whatever the state (`flux reconcile --force`).
pub const FORCE_AT_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// Annotation requesting the failure counters be reset (`flux reconcile --reset`).
pub const RESET_AT_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";
/// Flux's reason of an expression that does not parse.
pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
/// helm-controller's prefix of a configuration error no retry mends.
const TERMINAL_ERROR_MESSAGE: &str = "Reconciliation failed terminally due to configuration error";
/// Helm actions' timeout when `spec.timeout` is unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Steps of one reconciliation at most (unlock, release, remediation, and reads between).
const MAX_STEPS: usize = 6;

/// The controller's flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--default-service-account`: the identity of HelmReleases that name none.
    pub default_service_account: Option<String>,
    /// `--no-cross-namespace-refs`: refuse sources in other namespaces.
    pub no_cross_namespace_refs: bool,
    /// `--requeue-dependency`: how often to check on dependencies that are not ready.
    pub requeue_dependency: Duration,
    /// Largest chart archive accepted, in bytes.
    pub artifact_max_size: u64,
    /// Only HelmReleases matching this label selector (`--watch-label-selector`).
    pub watch_label_selector: Option<String>,
    /// Reconciliations run at once (`--concurrent`).
    pub concurrent: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_service_account: None,
            no_cross_namespace_refs: false,
            requeue_dependency: Duration::from_secs(5),
            artifact_max_size: ferroflux_helm::chart::MAX_CHART_SIZE,
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

/// How far a reconciliation got, for the status whether it succeeded or not.
#[derive(Debug, Default)]
pub struct Progress {
    helm_chart: Option<String>,
    desired: Option<Desired>,
    counters: Counters,
    reset_counters: bool,
    /// `reconcile.fluxcd.io/forceAt` handled in this reconciliation.
    handled_force: Option<String>,
    /// `reconcile.fluxcd.io/resetAt` handled in this reconciliation.
    handled_reset: Option<String>,
    failures: i64,
    action: Option<&'static str>,
    action_duration: Option<Duration>,
    history: Option<Vec<Release>>,
    inventory: Option<ResourceInventory>,
    released: Option<(&'static str, String, bool)>,
    remediated: Option<(&'static str, String, bool)>,
    stalled: Option<(&'static str, String)>,
    drift: Option<Drift>,
    /// RetryOnFailure's interval after a failed release action.
    retrying: Option<Duration>,
    /// Flux's `TestSuccess` condition after the release's tests ran.
    test: Option<(&'static str, String, bool)>,
    /// The revision tested in this reconciliation and whether its tests passed.
    tested: Option<(u32, bool)>,
    /// The release target changed and the previous release was uninstalled: the history
    /// of the status starts over.
    target_changed: bool,
}

impl Progress {
    /// Flux's `ClearFailures`: RetryOnFailure's success clears every failure counter.
    fn clear_failures(&mut self) {
        self.counters.install_failures = 0;
        self.counters.upgrade_failures = 0;
        self.failures = 0;
    }
}

/// Flux's condition of the release's tests.
pub const TEST_SUCCESS: &str = "TestSuccess";

/// What drift detection found: Flux's `Drifted` condition and, after a correction, the
/// `DriftCorrected` event (in `warn` mode, the `DriftDetected` event and no correction).
#[derive(Debug, Clone)]
struct Drift {
    drifted: bool,
    message: String,
    corrected: Option<String>,
}

/// Drift detection is on: `enabled` (detect and correct) or `warn` (detect and report).
fn detects_drift(hr: &HelmRelease) -> bool {
    let mode = hr
        .spec
        .drift_detection
        .as_ref()
        .and_then(|d| d.mode.as_deref());
    matches!(mode, Some("enabled" | "warn"))
}

/// Flux's condition of drift detection.
pub const DRIFTED: &str = "Drifted";

/// With `driftDetection.mode: enabled`, corrects the cluster state of the deployed revision;
/// with `warn`, finds the drift with dry runs and only reports it.
async fn drift(
    hr: &HelmRelease,
    helm: &Helm,
    latest: &Release,
) -> Result<Option<Drift>, ReconcileError> {
    let detection = hr.spec.drift_detection.clone().unwrap_or_default();
    if !detects_drift(hr) {
        return Ok(None);
    }
    let warn = detection.mode.as_deref() == Some("warn");
    // Flux's ignore rules have the shape of the Kustomization's: one checker for both.
    let rules: Option<Vec<ferroflux_api::kustomize::IgnoreRule>> = detection
        .ignore
        .map(|rules| {
            serde_json::to_value(rules)
                .and_then(serde_json::from_value)
                .map_err(|e| ReconcileError::stalling(meta_reason::INVALID, e.to_string()))
        })
        .transpose()?;
    let rules = crate::kustomization::ignore::compile(rules.as_deref())?;
    let full = format!("{}/{}.v{}", latest.namespace, latest.name, latest.version);
    let changes = if warn {
        helm.drift(latest, &rules, false).await.map_err(|e| {
            ReconcileError::generic(
                reason::STATE_ERROR,
                format!(
                    "Could not determine release state: unable to determine cluster state: {e}"
                ),
            )
        })?
    } else {
        helm.drift(latest, &rules, true).await.map_err(|e| {
            ReconcileError::generic(
                "DriftCorrectionFailed",
                format!("Failed to correct cluster state of release {full}:\n{e}"),
            )
        })?
    };
    if changes.is_empty() {
        return Ok(Some(Drift {
            drifted: false,
            message: "No drift detected against the cluster state".into(),
            corrected: None,
        }));
    }
    let set: Vec<String> = changes.iter().map(ToString::to_string).collect();
    let set = set.join("\n");
    Ok(Some(Drift {
        drifted: true,
        message: format!(
            "Cluster state of release {full} has drifted from the desired state:\n{set}"
        ),
        corrected: (!warn)
            .then(|| format!("Cluster state of release {full} has been corrected:\n{set}")),
    }))
}

/// A successful reconciliation.
#[derive(Debug)]
pub struct Released {
    progress: Progress,
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

impl Reconciler for Context {
    type Kind = HelmRelease;
    type Done = Released;
    type Failure = Failed;
    type Status = HelmReleaseStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    fn watcher_config(&self) -> watcher::Config {
        self.selected()
    }

    fn watches(&self, controller: Controller<HelmRelease>) -> Controller<HelmRelease> {
        let reads = |hr: &HelmRelease, kind: &str, namespace: &str, name: &str| {
            if let Some((ns, n)) = chart::helm_chart_ref(hr) {
                return kind == "HelmChart" && ns == namespace && n == name;
            }
            hr.spec.chart_ref.as_ref().is_some_and(|r| {
                let own = hr.namespace().unwrap_or_default();
                r.kind == kind
                    && r.name == name
                    && r.namespace.as_deref().unwrap_or(&own) == namespace
            })
        };
        let kinds = ["HelmChart", "OCIRepository", "ExternalArtifact"];
        watch_artifacts(controller, self.client(), &kinds, reads).with_config(
            kube::runtime::controller::Config::default().concurrency(self.options.concurrent),
        )
    }

    async fn reconcile(&self, hr: &HelmRelease) -> Result<Released, Failed> {
        let mut progress = Progress {
            counters: Counters::of(hr),
            ..Progress::default()
        };
        match attempt(hr, self, &mut progress).await {
            Ok(()) => Ok(Released { progress }),
            Err(error) => Err(Failed { progress, error }),
        }
    }

    fn event(&self, _hr: &HelmRelease, released: &Released) -> Option<Note> {
        if released.progress.released.is_none()
            && let Some(corrected) = released
                .progress
                .drift
                .as_ref()
                .and_then(|d| d.corrected.clone())
        {
            return Some(Note {
                warning: false,
                reason: "DriftCorrected",
                message: corrected,
            });
        }
        if released.progress.released.is_none()
            && let Some(drift) = released.progress.drift.as_ref().filter(|d| d.drifted)
        {
            return Some(Note {
                warning: true,
                reason: "DriftDetected",
                message: drift.message.clone(),
            });
        }
        let (why, message, _) = released.progress.released.clone()?;
        Some(Note {
            warning: false,
            reason: why,
            message,
        })
    }

    fn summarize(
        &self,
        hr: &HelmRelease,
        outcome: Result<Released, Failed>,
        at: Time,
    ) -> HelmReleaseStatus {
        let (progress, error) = match outcome {
            Ok(done) => (done.progress, None),
            Err(failed) => (failed.progress, Some(failed.error)),
        };
        summarize(hr, progress, error.as_ref(), at)
    }

    async fn cleanup(&self, hr: &HelmRelease) {
        if hr.spec.suspend == Some(true) {
            return;
        }
        match applier(hr, self).await {
            Ok(client) => {
                let helm = Helm::new(hr, client, FIELD_MANAGER);
                let keep = hr.spec.uninstall.as_ref().and_then(|u| u.keep_history) == Some(true);
                let result = match helm.history().await {
                    Ok(history) => {
                        let propagation = deletion_propagation(hr);
                        helm.uninstall(&history, keep, uninstall_hooks(hr), propagation)
                            .await
                    }
                    Err(err) => Err(err.message),
                };
                if let Err(err) = result {
                    tracing::warn!(%err, "uninstall on deletion failed");
                }
            }
            Err(err) => tracing::warn!(%err, "no client to uninstall with"),
        }
        if let Some(reference) = hr.status.as_ref().and_then(|s| s.helm_chart.clone()) {
            chart::delete_helm_chart(self, &reference).await;
        }
    }
}

/// The client the release is made with: the HelmRelease's ServiceAccount (or the
/// `--default-service-account`) impersonated, else the controller's own; on the cluster of
/// `spec.kubeConfig` when it names one.
async fn applier(hr: &HelmRelease, ctx: &Context) -> Result<Client, ReconcileError> {
    let account = identity::applier(
        hr.spec.service_account_name.as_deref(),
        ctx.options.default_service_account.as_deref(),
    );
    let remote = kubeconfig::remote_config(hr, ctx.client()).await?;
    let failed =
        |e: kube::Error| ReconcileError::generic(meta_reason::RECONCILIATION_FAILED, e.to_string());
    match (account, remote) {
        (Some(account), remote) => identity::impersonating_client(
            remote.as_ref().unwrap_or(&ctx.config),
            &hr.namespace().unwrap_or_default(),
            account,
        )
        .map_err(|e| {
            ReconcileError::generic(
                meta_reason::RECONCILIATION_FAILED,
                format!("cannot impersonate {account}: {e}"),
            )
        }),
        (None, Some(remote)) => Client::try_from(remote).map_err(failed),
        (None, None) => Ok(ctx.client().clone()),
    }
}

/// Owns `DependencyNotReady`: every `dependsOn` HelmRelease must be Ready at its generation.
async fn dependencies(hr: &HelmRelease, ctx: &Context) -> Result<(), ReconcileError> {
    let own = hr.namespace().unwrap_or_default();
    for dep in hr.spec.depends_on.iter().flatten() {
        let ns = dep.namespace.clone().unwrap_or_else(|| own.clone());
        match dep.ready_expr.as_deref().filter(|e| !e.is_empty()) {
            // Flux: the expression replaces the built-in check (without the
            // AdditiveCELDependencyCheck feature gate).
            Some(expression) => ready_by_expression(hr, ctx, &ns, &dep.name, expression).await?,
            None => ctx.dependency_ready::<HelmRelease>(&ns, &dep.name).await?,
        }
    }
    Ok(())
}

/// helm-controller's `evalReadyExpr`: the dependency is ready when `expression` holds over
/// `self` (this HelmRelease) and `dep` (the dependency as the API server holds it).
async fn ready_by_expression(
    hr: &HelmRelease,
    ctx: &Context,
    namespace: &str,
    name: &str,
    expression: &str,
) -> Result<(), ReconcileError> {
    let not_ready = |message: String| {
        ReconcileError::waiting(
            meta_reason::DEPENDENCY_NOT_READY,
            message,
            ctx.options.requeue_dependency,
        )
    };
    let parsed = cel::Expression::parse(expression).map_err(|e| {
        ReconcileError::stalling(
            INVALID_CEL_EXPRESSION,
            format!("{TERMINAL_ERROR_MESSAGE}: failed to evaluate dependency {name}: {e}"),
        )
    })?;
    let api: Api<HelmRelease> = Api::namespaced(ctx.client().clone(), namespace);
    let dep = api
        .get_opt(name)
        .await
        .map_err(|e| not_ready(format!("unable to get '{namespace}/{name}' dependency: {e}")))?
        .ok_or_else(|| {
            not_ready(format!(
                "unable to get '{namespace}/{name}' dependency: helmreleases.helm.toolkit.fluxcd.io \"{name}\" not found"
            ))
        })?;
    let own = serde_json::to_value(hr).map_err(|e| not_ready(e.to_string()))?;
    let dep = serde_json::to_value(&dep).map_err(|e| not_ready(e.to_string()))?;
    match parsed.evaluate_bool(&[("self", &own), ("dep", &dep)]) {
        Ok(true) => Ok(()),
        Ok(false) => Err(not_ready(format!(
            "dependency '{namespace}/{name}' is not ready according to readyExpr eval"
        ))),
        Err(e) => Err(not_ready(e)),
    }
}

/// A request annotation to handle now: Flux's `ShouldHandleForceRequest` and
/// `ShouldHandleResetRequest` (the value equals `requestedAt` and was not handled yet).
fn handled(hr: &HelmRelease, annotation: &str, last: Option<&str>) -> Option<String> {
    let annotations = hr.metadata.annotations.as_ref()?;
    let value = annotations.get(annotation)?;
    let requested = annotations.get(ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION)?;
    (value == requested && Some(value.as_str()) != last).then(|| value.clone())
}

/// The chart and values, ready to render.
struct Prepared {
    chart: ferroflux_helm::Chart,
    values: serde_json::Value,
    timeout: Duration,
    health_checks: cel::HealthChecks,
}

async fn prepare(
    hr: &HelmRelease,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<Prepared, ReconcileError> {
    plan::unsupported(hr)?;
    if hr.spec.rollback.as_ref().and_then(|r| r.recreate) == Some(true) {
        // Helm v4 removed pod restarts on rollback; Flux 2.9 keeps the field and only warns.
        tracing::warn!(
            "warning: the .spec.rollback.recreate field is deprecated and has no effect. for \
             details, please see: \
             https://github.com/fluxcd/helm-controller/issues/1300#issuecomment-3740272924"
        );
    }
    postrender::check_bounds(hr)?;
    let health_checks =
        cel::HealthChecks::parse(hr.spec.health_check_exprs.as_deref().unwrap_or_default())
            .map_err(|e| {
                ReconcileError::stalling(
                    INVALID_CEL_EXPRESSION,
                    format!("{TERMINAL_ERROR_MESSAGE}: {e}"),
                )
            })?;
    for action in ["install", "upgrade"] {
        if let Some(interval) = plan::retry_interval(hr, action) {
            spec_retry_interval(action, &interval)?;
        }
    }
    let timeout =
        optional_spec_duration("spec.timeout", hr.spec.timeout.as_deref(), DEFAULT_TIMEOUT)?;
    dependencies(hr, ctx).await?;
    let (artifact, source) = chart::artifact(hr, ctx).await?;
    if hr.spec.chart.is_some() {
        progress.helm_chart = Some(source);
    }
    let bytes = chart::download(ctx, &artifact, ctx.options.artifact_max_size).await?;
    let chart = tokio::task::spawn_blocking(move || ferroflux_helm::load_archive(&bytes))
        .await
        .map_err(|e| ReconcileError::generic(meta_reason::ARTIFACT_FAILED, e.to_string()))?
        .map_err(|e| {
            ReconcileError::generic(
                meta_reason::ARTIFACT_FAILED,
                format!("Could not load chart: {e}"),
            )
        })?;
    let mut values = values::compose(hr, ctx).await?;
    if hr.spec.upgrade.as_ref().and_then(|u| u.preserve_values) == Some(true) {
        let helm = Helm::new(hr, applier(hr, ctx).await?, FIELD_MANAGER);
        values = preserved_values(values, &helm.history().await?);
    }
    let status = hr.status.clone().unwrap_or_default();
    // Flux compares the observed digests only for a new generation: the status records them
    // after every release action, so one reconciliation never upgrades twice for them.
    let renderers_changed = status.observed_generation != hr.metadata.generation
        && (postrender::post_renderers_digest(hr).unwrap_or_default()
            != status
                .observed_post_renderers_digest
                .clone()
                .unwrap_or_default()
            || postrender::common_metadata_digest(hr).unwrap_or_default()
                != status
                    .observed_common_metadata_digest
                    .clone()
                    .unwrap_or_default());
    let desired = Desired {
        chart_version: chart.metadata.version.clone(),
        chart_name: chart.metadata.name.clone(),
        config_digest: ferroflux_helm::release::values_digest(&values),
        renderers_changed,
    };
    progress.handled_force = handled(
        hr,
        FORCE_AT_ANNOTATION,
        status.last_handled_force_at.as_deref(),
    );
    progress.handled_reset = handled(
        hr,
        RESET_AT_ANNOTATION,
        status.last_handled_reset_at.as_deref(),
    );
    // Flux resets the failure counters when what is wanted changes, or on request.
    if progress.handled_reset.is_some()
        || status.last_attempted_revision.as_deref() != Some(desired.chart_version.as_str())
        || status.last_attempted_config_digest.as_deref() != Some(desired.config_digest.as_str())
        || status.last_attempted_generation != hr.metadata.generation
    {
        progress.reset_counters = true;
        progress.counters.install_failures = 0;
        progress.counters.upgrade_failures = 0;
    }
    progress.failures = if progress.reset_counters {
        0
    } else {
        status.failures.unwrap_or(0)
    };
    progress.desired = Some(desired);
    Ok(Prepared {
        chart,
        values,
        timeout,
        health_checks,
    })
}

/// `spec.<action>.strategy.retryInterval` as a duration (Stalled `InvalidSpec` when it is not
/// one).
fn spec_retry_interval(action: &str, interval: &str) -> Result<Duration, ReconcileError> {
    let field = format!("spec.{action}.strategy.retryInterval");
    runtime::spec_duration(&field, interval)
}

/// Runs Helm's actions until the release is in sync, a remediation ran, or it stalls.
async fn attempt(
    hr: &HelmRelease,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<(), ReconcileError> {
    let prepared = prepare(hr, ctx, progress).await?;
    let mut desired = progress.desired.clone().unwrap_or(Desired {
        chart_version: String::new(),
        chart_name: String::new(),
        config_digest: String::new(),
        renderers_changed: false,
    });
    let helm = Helm::new(hr, applier(hr, ctx).await?, FIELD_MANAGER);
    let mut last_action = hr
        .status
        .as_ref()
        .and_then(|s| s.last_attempted_release_action.clone());
    if reinstall_changed_target(hr, &helm, &desired, progress).await? {
        last_action = None;
    }
    let mut failure: Option<ReconcileError> = None;
    let mut forced = progress.handled_force.is_some();
    for _ in 0..MAX_STEPS {
        let history = helm.history().await?;
        progress.history = Some(history.clone());
        let mut next = plan::next(
            &history,
            &desired,
            &progress.counters,
            last_action.as_deref(),
        );
        if forced {
            next = plan::forced(&history, next);
        }
        if next == Next::InSync {
            let last = last_action.as_deref();
            match test_step(hr, &helm, &history, progress, last, &mut failure).await? {
                Some(after) => next = after,
                None => continue,
            }
        }
        match next {
            Next::InSync => {
                if failure.is_none() && progress.released.is_none() {
                    progress.released = recovered(hr, &history, &desired, helm.names());
                }
                if failure.is_none()
                    && let Some(latest) = ferroflux_helm::release::latest(&history)
                {
                    progress.drift = drift(hr, &helm, latest).await?;
                }
                return failure.map_or(Ok(()), Err);
            }
            Next::Unlock { version } => {
                if let Some(release) = history.iter().find(|r| r.version == version) {
                    helm.unlock(release.clone()).await?;
                }
            }
            Next::Install { version } | Next::Upgrade { version } => {
                if let Some(failure) = failure {
                    return Err(failure);
                }
                forced = false;
                let install = matches!(next, Next::Install { .. });
                let action = if install { "install" } else { "upgrade" };
                last_action = Some(action.to_string());
                progress.action = Some(action);
                let started = std::time::Instant::now();
                let result = release(hr, &helm, &history, &prepared, version, install).await;
                progress.action_duration = Some(started.elapsed());
                // A release action records the digests: they no longer ask for one.
                desired.renderers_changed = false;
                let retry = plan::retry_interval(hr, action);
                match result {
                    Ok(objects) => {
                        if retry.is_some() {
                            progress.clear_failures();
                        }
                        let (why, message) =
                            success_message(install, helm.names(), version, &desired);
                        progress.released = Some((why, message, true));
                        progress.inventory = Some(action::inventory(&objects));
                        progress.history = Some(helm.history().await?);
                        // With tests enabled, Flux tests the new release in the same run.
                        if !plan::tests_enabled(hr) {
                            return Ok(());
                        }
                    }
                    Err(err) if err.retry == Retry::Stalling => return Err(err),
                    Err(err) => {
                        progress.failures += 1;
                        if install {
                            progress.counters.install_failures += 1;
                        } else {
                            progress.counters.upgrade_failures += 1;
                        }
                        progress.released = Some((err.reason, err.message.clone(), false));
                        if let Some(interval) = retry {
                            // RetryOnFailure: no remediation; try again after the interval.
                            let after = spec_retry_interval(action, &interval)?;
                            progress.retrying = Some(after);
                            return Err(ReconcileError {
                                retry: Retry::Waiting(after),
                                ..err
                            });
                        }
                        failure = Some(err);
                    }
                }
            }
            Next::UninstallRemediation | Next::Rollback { .. } => {
                let checks = &prepared.health_checks;
                remediate(hr, &helm, &history, &next, &desired, checks, progress).await?;
                progress.history = Some(helm.history().await?);
                let exhausted = match last_action.as_deref() {
                    Some("install") => progress.counters.install_exhausted(),
                    _ => progress.counters.upgrade_exhausted(),
                };
                // Flux's Ready after a remediation is the remediation's outcome, not ready.
                let (why, message, _) = progress.remediated.clone().unwrap_or_default();
                let error = ReconcileError::generic(why, message);
                if exhausted {
                    stall_retries(progress, last_action.as_deref());
                    return Err(ReconcileError {
                        retry: Retry::Stalling,
                        ..error
                    });
                }
                return Err(error);
            }
            Next::RetriesExceeded { action, attempts } => {
                let message = format!("Failed to {action} after {attempts} attempt(s)");
                return Err(stall(hr, progress, RETRIES_EXCEEDED, message, failure));
            }
            Next::MissingRollbackTarget => {
                let message = "Failed to perform remediation: missing target release for rollback";
                let why = MISSING_ROLLBACK_TARGET;
                return Err(stall(hr, progress, why, message.into(), failure));
            }
        }
    }
    Err(failure.unwrap_or_else(|| {
        ReconcileError::generic(
            reason::STATE_ERROR,
            "the release did not settle within one reconciliation",
        )
    }))
}

/// Flux uninstalls the release of the previous target (`plan::target_changed`) before making
/// the new one: installing over it would find its objects in the way. True when it did: the
/// failures and history of the old target no longer count.
async fn reinstall_changed_target(
    hr: &HelmRelease,
    helm: &Helm,
    desired: &Desired,
    progress: &mut Progress,
) -> Result<bool, ReconcileError> {
    let Some(previous) = plan::target_changed(hr, &desired.chart_name) else {
        return Ok(false);
    };
    let old = Helm::new(hr, helm.client().clone(), FIELD_MANAGER).with_names(previous);
    let history = old.history().await?;
    if !history.is_empty() {
        let keep = hr.spec.uninstall.as_ref().and_then(|u| u.keep_history) == Some(true);
        old.uninstall(
            &history,
            keep,
            uninstall_hooks(hr),
            deletion_propagation(hr),
        )
        .await
        .map_err(|e| {
            ReconcileError::generic(
                reason::UNINSTALL_FAILED,
                format!("Helm uninstall failed for the previous release target: {e}"),
            )
        })?;
    }
    progress.clear_failures();
    progress.target_changed = true;
    progress.inventory = Some(ResourceInventory::default());
    Ok(true)
}

/// Stalled with `why`: Ready keeps the failure that led here (this run's, or the one the
/// status recorded), as Flux's does.
fn stall(
    hr: &HelmRelease,
    progress: &mut Progress,
    why: &'static str,
    message: String,
    failure: Option<ReconcileError>,
) -> ReconcileError {
    progress.stalled = Some((why, message.clone()));
    let error = failure
        .or_else(|| last_failure(hr))
        .unwrap_or_else(|| ReconcileError::stalling(why, message));
    ReconcileError {
        retry: Retry::Stalling,
        ..error
    }
}

/// With `spec.test.enable`, what follows a release in sync: its tests when they have not run
/// (`None`: they ran, decide again), the remediation of failed tests unless they are
/// ignored, else nothing.
async fn test_step(
    hr: &HelmRelease,
    helm: &Helm,
    history: &[Release],
    progress: &mut Progress,
    last_action: Option<&str>,
    failure: &mut Option<ReconcileError>,
) -> Result<Option<Next>, ReconcileError> {
    let Some(latest) = ferroflux_helm::release::latest(history).filter(|_| plan::tests_enabled(hr))
    else {
        return Ok(Some(Next::InSync));
    };
    match test_outcome(hr, latest, progress) {
        None => {
            run_tests(hr, helm, latest, progress, last_action, failure).await?;
            Ok(None)
        }
        Some(false) if !plan::ignores_test_failures(hr, last_action) => Ok(Some(plan::failed(
            history,
            latest,
            &progress.counters,
            last_action,
        ))),
        Some(_) => Ok(Some(Next::InSync)),
    }
}

/// The selected test hooks of `release` (Helm's `test` event, `spec.test.filters`).
fn test_hooks<'a>(
    hr: &'a HelmRelease,
    release: &'a Release,
) -> impl Iterator<Item = &'a ferroflux_helm::release::Hook> + 'a {
    release
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == action::TEST_EVENT))
        .filter(|h| plan::test_selected(hr, &h.name))
}

/// Whether the tests of `latest` passed (`Some(false)`: one failed), `None` when they have
/// not run: from this reconciliation, the hooks' runs Helm recorded, or (a chart without
/// test hooks) the status snapshot of the revision.
fn test_outcome(hr: &HelmRelease, latest: &Release, progress: &Progress) -> Option<bool> {
    if let Some((version, passed)) = progress.tested
        && version == latest.version
    {
        return Some(passed);
    }
    let phases: Vec<&str> = test_hooks(hr, latest)
        .map(|h| h.last_run.phase.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    if !phases.is_empty() {
        return Some(!phases.contains(&"Failed"));
    }
    let snapshots = hr.status.as_ref().and_then(|s| s.history.as_ref());
    let recorded = snapshots
        .and_then(|h| h.first())
        .is_some_and(|s| s.version == i64::from(latest.version) && s.test_hooks.is_some());
    recorded.then_some(true)
}

/// Runs Helm's tests of `latest` and records `TestSuccess` with Flux's messages; a failure
/// not ignored counts against the active remediation and fails the reconciliation.
async fn run_tests(
    hr: &HelmRelease,
    helm: &Helm,
    latest: &Release,
    progress: &mut Progress,
    last_action: Option<&str>,
    failure: &mut Option<ReconcileError>,
) -> Result<(), ReconcileError> {
    let spec = hr.spec.test.clone().unwrap_or_default();
    let default =
        optional_spec_duration("spec.timeout", hr.spec.timeout.as_deref(), DEFAULT_TIMEOUT)?;
    let timeout = optional_spec_duration("spec.test.timeout", spec.timeout.as_deref(), default)?;
    let selected = |name: &str| plan::test_selected(hr, name);
    let (tested, outcome) = helm.test(latest.clone(), &selected, timeout).await;
    progress.tested = Some((tested.version, outcome.is_ok()));
    progress.history = Some(helm.history().await?);
    let record = tested.chart.clone().unwrap_or_default();
    let full = format!("{}/{}.v{}", tested.namespace, tested.name, tested.version);
    let chart = format!("{}@{}", record.name(), record.version());
    match outcome {
        Ok(()) => {
            let hooks = match test_hooks(hr, &tested).count() {
                0 => "no test hooks".to_string(),
                1 => "1 test hook completed successfully".to_string(),
                n => format!("{n} test hooks completed successfully"),
            };
            let message =
                format!("Helm test succeeded for release {full} with chart {chart}: {hooks}");
            progress.test = Some(("TestSucceeded", message, true));
        }
        Err(err) => {
            let message = format!(
                "Helm test failed for release {full} with chart {chart}: {}",
                err.trim()
            );
            progress.failures += 1;
            progress.test = Some(("TestFailed", message.clone(), false));
            if !plan::ignores_test_failures(hr, last_action) {
                match last_action {
                    Some("install") => progress.counters.install_failures += 1,
                    Some(_) => progress.counters.upgrade_failures += 1,
                    None => {}
                }
                *failure = Some(ReconcileError::generic("TestFailed", message));
            }
        }
    }
    Ok(())
}

/// Flux's conditions of a release found in sync after a failure or a remediation: Released
/// True with the success of the action that made the deployed revision.
fn recovered(
    hr: &HelmRelease,
    history: &[Release],
    desired: &Desired,
    names: &plan::Names,
) -> Option<(&'static str, String, bool)> {
    let conds = hr.status.as_ref()?.conditions.clone().unwrap_or_default();
    let released = conditions::get(&conds, RELEASED);
    let failed = released.is_some_and(|c| c.status != "True");
    let remediated = conditions::is_true(&conds, REMEDIATED);
    if !failed && !remediated {
        return None;
    }
    let latest = ferroflux_helm::release::latest(history)?;
    let install = latest.version == 1 && !remediated;
    let (why, message) = success_message(install, names, latest.version, desired);
    Some((why, message, true))
}

/// The failure of the last release action, from the `Released` condition: a stalled
/// release keeps reporting it as Ready, as Flux's does, when a later reconciliation finds the
/// retries exhausted.
fn last_failure(hr: &HelmRelease) -> Option<ReconcileError> {
    let conds = hr.status.as_ref()?.conditions.clone().unwrap_or_default();
    let failed_test = conditions::get(&conds, TEST_SUCCESS)
        .filter(|c| c.status == "False" && c.reason == "TestFailed")
        .map(|c| ReconcileError::stalling("TestFailed", c.message.clone()));
    let Some(released) = conditions::get(&conds, RELEASED).filter(|c| c.status == "False") else {
        return failed_test;
    };
    let why = [
        reason::INSTALL_FAILED,
        reason::UPGRADE_FAILED,
        reason::ROLLBACK_FAILED,
        reason::UNINSTALL_FAILED,
    ]
    .into_iter()
    .find(|r| *r == released.reason)?;
    Some(ReconcileError::stalling(why, released.message.clone()))
}

fn stall_retries(progress: &mut Progress, last_action: Option<&str>) {
    let (action, attempts) = match last_action {
        Some("install") => ("install", progress.counters.install_failures),
        _ => ("upgrade", progress.counters.upgrade_failures),
    };
    progress.stalled = Some((
        RETRIES_EXCEEDED,
        format!("Failed to {action} after {attempts} attempt(s)"),
    ));
}

fn success_message(
    install: bool,
    names: &plan::Names,
    version: u32,
    desired: &Desired,
) -> (&'static str, String) {
    let full = format!("{}/{}.v{version}", names.namespace, names.release);
    let chart = format!("{}@{}", desired.chart_name, desired.chart_version);
    if install {
        (
            reason::INSTALL_SUCCEEDED,
            format!("Helm install succeeded for release {full} with chart {chart}"),
        )
    } else {
        (
            reason::UPGRADE_SUCCEEDED,
            format!("Helm upgrade succeeded for release {full} with chart {chart}"),
        )
    }
}

/// Renders and runs one install or upgrade. A failure is `InstallFailed`/`UpgradeFailed`
/// with Flux's message (counted against the retries); a chart the controller cannot release
/// (hooks) stalls.
async fn release(
    hr: &HelmRelease,
    helm: &Helm,
    history: &[Release],
    prepared: &Prepared,
    version: u32,
    install: bool,
) -> Result<Vec<ferroflux_apply::object::ObjectRef>, ReconcileError> {
    let names = helm.names().clone();
    let fail = |message: String| {
        let (why, verb) = if install {
            (reason::INSTALL_FAILED, "install")
        } else {
            (reason::UPGRADE_FAILED, "upgrade")
        };
        ReconcileError::generic(
            why,
            format!(
                "Helm {verb} failed for release {}/{} with chart {}@{}: {message}",
                names.namespace,
                names.release,
                prepared.chart.metadata.name,
                prepared.chart.metadata.version
            ),
        )
    };
    let options = ferroflux_helm::ReleaseOptions {
        name: names.release.clone(),
        namespace: names.namespace.clone(),
        revision: version,
        is_install: install,
        is_upgrade: !install,
    };
    let caps = capabilities(helm.client()).await;
    let skip_schema = if install {
        hr.spec
            .install
            .as_ref()
            .and_then(|i| i.disable_schema_validation)
    } else {
        hr.spec
            .upgrade
            .as_ref()
            .and_then(|u| u.disable_schema_validation)
    } == Some(true);
    let render_options = ferroflux_helm::RenderOptions {
        skip_schema_validation: skip_schema,
    };
    let mut rendered = render(helm.client(), prepared, options, caps, render_options)
        .await
        .map_err(fail)?;
    if postrender::any(hr) {
        // Flux's post-renderers change the manifest Helm stores and applies, not the hooks.
        let renderers = hr.spec.post_renderers.clone().unwrap_or_default();
        let common = hr.spec.common_metadata.clone();
        let manifest = std::mem::take(&mut rendered.manifest);
        rendered.manifest = tokio::task::spawn_blocking(move || {
            postrender::run(&manifest, &renderers, common.as_ref())
        })
        .await
        .map_err(|e| fail(format!("post-rendering stopped: {e}")))?
        .map_err(fail)?;
    }
    let (disable_hooks, crds_policy, disable_wait, timeout) = if install {
        let i = hr.spec.install.clone().unwrap_or_default();
        let crds = if i.skip_crds == Some(true) {
            Some("Skip".to_string())
        } else {
            i.crds
        };
        (
            i.disable_hooks,
            crds.unwrap_or_else(|| "Create".into()),
            i.disable_wait,
            i.timeout,
        )
    } else {
        let u = hr.spec.upgrade.clone().unwrap_or_default();
        (
            u.disable_hooks,
            u.crds.unwrap_or_else(|| "Skip".into()),
            u.disable_wait,
            u.timeout,
        )
    };
    let timeout = optional_spec_duration("timeout", timeout.as_deref(), prepared.timeout)?;
    let wait = (disable_wait != Some(true)).then_some(timeout);
    let crds: Vec<String> = if crds_policy == "Skip" {
        Vec::new()
    } else {
        rendered.crds.iter().map(|(_, text)| text.clone()).collect()
    };
    let first_deployed = ferroflux_helm::release::latest(history)
        .and_then(|r| r.info.as_ref())
        .and_then(|i| i.first_deployed)
        .filter(|_| !install);
    let status = if install {
        Status::PendingInstall
    } else {
        Status::PendingUpgrade
    };
    let record = action::new_release(
        &names,
        version,
        ChartRecord::of(&prepared.chart),
        &prepared.values,
        &rendered,
        status,
        first_deployed,
    );
    let create_namespace =
        install && hr.spec.install.as_ref().and_then(|i| i.create_namespace) == Some(true);
    let run = action::Run {
        crds: &crds,
        wait,
        hooks: (disable_hooks != Some(true)).then_some(timeout),
        create_namespace,
        health_checks: Some(&prepared.health_checks),
        ..release_run(hr, history, install)
    };
    helm.release(history, record, &run)
        .await
        .map(|outcome| outcome.objects)
        .map_err(fail)
}

/// The options of an install or upgrade from `spec.install`/`spec.upgrade`, as
/// helm-controller sets Helm's (server-side apply on by default, conflicts always forced;
/// an upgrade's `auto` applies as the last release was applied).
fn release_run<'a>(hr: &HelmRelease, history: &[Release], install: bool) -> action::Run<'a> {
    let legacy_wait = legacy_wait(hr);
    if install {
        let i = hr.spec.install.clone().unwrap_or_default();
        return action::Run {
            wait_for_jobs: i.disable_wait_for_jobs != Some(true),
            take_ownership: i.disable_take_ownership != Some(true),
            server_side_apply: i.server_side_apply != Some(false),
            replace: i.replace == Some(true),
            legacy_wait,
            ..action::Run::default()
        };
    }
    let u = hr.spec.upgrade.clone().unwrap_or_default();
    let server_side_apply = match u.server_side_apply.as_deref() {
        Some("enabled") => true,
        Some("disabled") => false,
        _ => ferroflux_helm::release::latest(history)
            .is_none_or(|r| r.apply_method == ferroflux_helm::release::APPLY_METHOD_SSA),
    };
    action::Run {
        wait_for_jobs: u.disable_wait_for_jobs != Some(true),
        cleanup_on_fail: u.cleanup_on_fail == Some(true),
        take_ownership: u.disable_take_ownership != Some(true),
        server_side_apply,
        force_replace: u.force == Some(true) && !server_side_apply,
        legacy_wait,
        ..action::Run::default()
    }
}

/// `spec.waitStrategy.name: legacy`: Helm v3's readiness checks instead of kstatus.
fn legacy_wait(hr: &HelmRelease) -> bool {
    hr.spec
        .wait_strategy
        .as_ref()
        .is_some_and(|w| w.name == "legacy")
}

/// `spec.uninstall.deletionPropagation` (`background` by default).
fn deletion_propagation(hr: &HelmRelease) -> kube::api::PropagationPolicy {
    use kube::api::PropagationPolicy;
    match hr
        .spec
        .uninstall
        .as_ref()
        .and_then(|u| u.deletion_propagation.as_deref())
    {
        Some("foreground") => PropagationPolicy::Foreground,
        Some("orphan") => PropagationPolicy::Orphan,
        _ => PropagationPolicy::Background,
    }
}

/// Helm's `ReuseValues` (`spec.upgrade.preserveValues`): the values of the last release
/// fill in what the composed values leave out, so the release keeps values it was given
/// before. Nothing to reuse without a release, or once it is uninstalled.
fn preserved_values(values: serde_json::Value, history: &[Release]) -> serde_json::Value {
    let Some(last) = ferroflux_helm::release::latest(history).filter(|r| {
        r.info
            .as_ref()
            .is_none_or(|i| !matches!(i.status, Status::Uninstalled | Status::Uninstalling))
    }) else {
        return values;
    };
    let mut merged = values.as_object().cloned().unwrap_or_default();
    let previous = last.config.clone().unwrap_or_default();
    ferroflux_helm::values::coalesce_tables(&mut merged, previous, false);
    serde_json::Value::Object(merged)
}

/// Lookups one render may make: a template cannot make the controller list the cluster
/// without bound.
const MAX_LOOKUPS: usize = 256;

/// Renders on a blocking thread (templates are CPU work and `lookup` waits on the API),
/// `lookup` reading the cluster as the release's identity, as Helm's install does.
async fn render(
    client: &Client,
    prepared: &Prepared,
    options: ferroflux_helm::ReleaseOptions,
    caps: ferroflux_helm::Capabilities,
    render_options: ferroflux_helm::RenderOptions,
) -> Result<ferroflux_helm::Rendered, String> {
    let runtime = tokio::runtime::Handle::current();
    let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = client.clone();
    let lookup: ferroflux_helm::Lookup = Arc::new(move |api_version, kind, namespace, name| {
        if lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_LOOKUPS {
            return Err(format!("more than {MAX_LOOKUPS} lookups in one render"));
        }
        runtime.block_on(lookup(&client, api_version, kind, namespace, name))
    });
    let (chart, values) = (prepared.chart.clone(), prepared.values.clone());
    tokio::task::spawn_blocking(move || {
        ferroflux_helm::render_with(
            &chart,
            &values,
            &options,
            &caps,
            Some(lookup),
            &render_options,
        )
    })
    .await
    .map_err(|e| format!("rendering stopped: {e}"))?
    .map_err(|e| e.to_string())
}

/// Helm's `lookup`: the object, or the list when `name` is empty (across namespaces when
/// `namespace` is empty too), `{}` when the kind or object does not exist.
async fn lookup(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<serde_json::Value, String> {
    use kube::api::{DynamicObject, ListParams};
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
    let Ok((resource, capabilities)) = kube::discovery::pinned_kind(client, &gvk).await else {
        return Ok(serde_json::json!({}));
    };
    let api: Api<DynamicObject> =
        if capabilities.scope == kube::discovery::Scope::Namespaced && !namespace.is_empty() {
            Api::namespaced_with(client.clone(), namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
    let message = |e: kube::Error| ferroflux_apply::manager::api_message(&e);
    if name.is_empty() {
        let list = api.list(&ListParams::default()).await.map_err(message)?;
        return serde_json::to_value(list).map_err(|e| e.to_string());
    }
    match api.get_opt(name).await.map_err(message)? {
        Some(object) => serde_json::to_value(object).map_err(|e| e.to_string()),
        None => Ok(serde_json::json!({})),
    }
}

/// `.Capabilities` from the API server, as Helm's install and upgrade read them: its version
/// and served group versions. What cannot be read is left to the chart engine's defaults.
async fn capabilities(client: &Client) -> ferroflux_helm::Capabilities {
    let kube_version = client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_default();
    let mut api_versions = vec!["v1".to_string()];
    if let Ok(groups) = client.list_api_groups().await {
        for group in groups.groups {
            api_versions.extend(group.versions.into_iter().map(|v| v.group_version));
        }
    }
    ferroflux_helm::Capabilities {
        kube_version,
        api_versions,
    }
}

/// The timeout of uninstall hooks, `None` when `spec.uninstall.disableHooks`.
fn uninstall_hooks(hr: &HelmRelease) -> Option<Duration> {
    let uninstall = hr.spec.uninstall.clone().unwrap_or_default();
    if uninstall.disable_hooks == Some(true) {
        return None;
    }
    let default =
        optional_spec_duration("spec.timeout", hr.spec.timeout.as_deref(), DEFAULT_TIMEOUT)
            .unwrap_or(DEFAULT_TIMEOUT);
    Some(
        optional_spec_duration(
            "spec.uninstall.timeout",
            uninstall.timeout.as_deref(),
            default,
        )
        .unwrap_or(default),
    )
}

/// Uninstalls a failed install, or rolls a failed upgrade back; records `Remediated`.
async fn remediate(
    hr: &HelmRelease,
    helm: &Helm,
    history: &[Release],
    next: &Next,
    desired: &Desired,
    health_checks: &cel::HealthChecks,
    progress: &mut Progress,
) -> Result<(), ReconcileError> {
    let names = helm.names().clone();
    let chart = format!("{}@{}", desired.chart_name, desired.chart_version);
    let latest = ferroflux_helm::release::latest(history).map_or(0, |r| r.version);
    let full = format!("{}/{}.v{latest}", names.namespace, names.release);
    match next {
        Next::Rollback { to, version } => {
            let Some(target) = history.iter().find(|r| r.version == *to).cloned() else {
                return Ok(());
            };
            let mut record = target;
            record.version = *version;
            let now = jiff::Timestamp::now();
            let info = record.info.get_or_insert_with(|| {
                ferroflux_helm::release::Info::new(Status::PendingRollback, "", now)
            });
            info.status = Status::PendingRollback;
            info.rollback_revision = *to;
            info.last_deployed = Some(now);
            info.deleted = None;
            let rollback = hr.spec.rollback.clone().unwrap_or_default();
            let default = optional_spec_duration(
                "spec.timeout",
                hr.spec.timeout.as_deref(),
                DEFAULT_TIMEOUT,
            )?;
            let timeout = optional_spec_duration(
                "spec.rollback.timeout",
                rollback.timeout.as_deref(),
                default,
            )?;
            let wait = (rollback.disable_wait != Some(true)).then_some(timeout);
            let prior = format!("{}/{}.v{to}", names.namespace, names.release);
            let server_side_apply = match rollback.server_side_apply.as_deref() {
                Some("enabled") => true,
                Some("disabled") => false,
                // Helm's `auto`: as the revision rolled back to was applied.
                _ => record.apply_method == ferroflux_helm::release::APPLY_METHOD_SSA,
            };
            let run = action::Run {
                wait,
                hooks: (rollback.disable_hooks != Some(true)).then_some(timeout),
                wait_for_jobs: rollback.disable_wait_for_jobs != Some(true),
                cleanup_on_fail: rollback.cleanup_on_fail == Some(true),
                server_side_apply,
                force_replace: rollback.force == Some(true) && !server_side_apply,
                legacy_wait: legacy_wait(hr),
                health_checks: Some(health_checks),
                ..action::Run::default()
            };
            match helm.release(history, record, &run).await {
                Ok(outcome) => {
                    progress.inventory = Some(action::inventory(&outcome.objects));
                    let message = format!(
                        "Helm rollback to previous release {prior} with chart {chart} succeeded"
                    );
                    progress.remediated = Some((reason::ROLLBACK_SUCCEEDED, message, true));
                }
                Err(err) => {
                    let message = format!(
                        "Helm rollback to previous release {prior} with chart {chart} failed: {err}"
                    );
                    progress.remediated = Some((reason::ROLLBACK_FAILED, message.clone(), false));
                    return Err(ReconcileError::generic(reason::ROLLBACK_FAILED, message));
                }
            }
        }
        _ => match helm
            .uninstall(
                history,
                false,
                uninstall_hooks(hr),
                deletion_propagation(hr),
            )
            .await
        {
            Ok(()) => {
                progress.inventory = Some(ResourceInventory::default());
                let message = format!(
                    "Helm uninstall remediation for release {full} with chart {chart} succeeded"
                );
                progress.remediated = Some((reason::UNINSTALL_SUCCEEDED, message, true));
            }
            Err(err) => {
                let message = format!(
                    "Helm uninstall remediation for release {full} with chart {chart} failed: {err}"
                );
                progress.remediated = Some((reason::UNINSTALL_FAILED, message.clone(), false));
                return Err(ReconcileError::generic(reason::UNINSTALL_FAILED, message));
            }
        },
    }
    Ok(())
}

/// A snapshot of a stored release, as helm-controller records it in `status.history`: with
/// its test hooks once tested (`tested`: the revision tested in this reconciliation).
fn snapshot(
    hr: &HelmRelease,
    release: &Release,
    previous: &[Snapshot],
    tested: Option<u32>,
) -> Snapshot {
    let info = release.info.clone();
    let time = |t: Option<jiff::Timestamp>| {
        t.map(|t| {
            jiff::Timestamp::from_second(t.as_second())
                .unwrap_or(t)
                .to_string()
        })
    };
    let chart = release.chart.clone().unwrap_or_default();
    let config = serde_json::Value::Object(release.config.clone().unwrap_or_default());
    let digest = ferroflux_helm::release::observation_digest(release);
    let before = previous
        .iter()
        .find(|s| s.version == i64::from(release.version));
    let action = before.and_then(|s| s.action.clone());
    let hooks: BTreeMap<String, TestHookStatus> = test_hooks(hr, release)
        .filter(|h| !h.last_run.phase.is_empty())
        .map(|h| {
            let run = &h.last_run;
            let status = TestHookStatus {
                last_started: time(run.started_at),
                last_completed: time(run.completed_at),
                phase: Some(run.phase.clone()),
            };
            (h.name.clone(), status)
        })
        .collect();
    let was_tested =
        tested == Some(release.version) || before.is_some_and(|s| s.test_hooks.is_some());
    let test_hooks = (!hooks.is_empty() || was_tested).then_some(hooks);
    Snapshot {
        api_version: Some("helm.toolkit.fluxcd.io/v2".into()),
        digest,
        name: release.name.clone(),
        namespace: release.namespace.clone(),
        version: i64::from(release.version),
        status: info
            .as_ref()
            .map_or(Status::Unknown, |i| i.status)
            .to_string(),
        chart_name: chart.name().to_string(),
        chart_version: chart.version().to_string(),
        app_version: chart.app_version().map(str::to_string),
        config_digest: ferroflux_helm::release::values_digest(&config),
        first_deployed: time(info.as_ref().and_then(|i| i.first_deployed)).unwrap_or_default(),
        last_deployed: time(info.as_ref().and_then(|i| i.last_deployed)).unwrap_or_default(),
        deleted: time(info.as_ref().and_then(|i| i.deleted)),
        oci_digest: None,
        action,
        test_hooks,
    }
}

/// The status history: a snapshot per stored revision, newest first (started over when the
/// release target changed), and the deployed revision.
fn record_history(hr: &HelmRelease, status: &mut HelmReleaseStatus, progress: &Progress) {
    if progress.target_changed {
        // A merge patch cannot remove the old target's snapshots: they are written empty.
        status.history = Some(Vec::new());
        status.last_release_revision = None;
    }
    if let Some(mut history) = progress.history.clone() {
        let previous = if progress.target_changed {
            Vec::new()
        } else {
            status.history.clone().unwrap_or_default()
        };
        history.sort_by_key(|r| std::cmp::Reverse(r.version));
        let tested = progress.tested.map(|(version, _)| version);
        let mut snapshots: Vec<Snapshot> = history
            .iter()
            .map(|r| snapshot(hr, r, &previous, tested))
            .collect();
        if let (Some(action), Some(first)) = (progress.action, snapshots.first_mut())
            && first.action.is_none()
        {
            first.action = Some(action.to_string());
        }
        status.last_release_revision = history
            .iter()
            .find(|r| {
                r.info
                    .as_ref()
                    .is_some_and(|i| i.status == Status::Deployed)
            })
            .map(|r| i64::from(r.version));
        status.history = Some(snapshots).filter(|s| !s.is_empty());
    }
}

/// The status after an attempt: Flux's conditions, history, counters and last attempt.
fn summarize(
    hr: &HelmRelease,
    progress: Progress,
    error: Option<&ReconcileError>,
    at: Time,
) -> HelmReleaseStatus {
    let mut status = hr.status.clone().unwrap_or_default();
    let generation = hr.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    let names = plan::Names::of(hr);
    status.storage_namespace = Some(names.storage.clone());
    record_history(hr, &mut status, &progress);
    if let Some(reference) = progress.helm_chart {
        status.helm_chart = Some(reference);
    } else if hr.spec.chart_ref.is_some() {
        status.helm_chart = None;
    }
    if let Some(desired) = &progress.desired {
        status.last_attempted_revision = Some(desired.chart_version.clone());
        status.last_attempted_config_digest = Some(desired.config_digest.clone());
        status.last_attempted_values_checksum = None;
        status.last_attempted_generation = generation;
        // The status is merged, so a counter once written is cleared by writing 0.
        let count = |old: Option<i64>, new: i64| (new > 0 || old.is_some()).then_some(new);
        status.install_failures =
            count(status.install_failures, progress.counters.install_failures);
        status.upgrade_failures =
            count(status.upgrade_failures, progress.counters.upgrade_failures);
        status.failures = count(status.failures, progress.failures);
    }
    if let Some(value) = progress.handled_force {
        status.last_handled_force_at = Some(value);
    }
    if let Some(value) = progress.handled_reset {
        status.last_handled_reset_at = Some(value);
    }
    // Flux's summarize records the digests after every release action and when in sync.
    if progress.action.is_some() || (error.is_none() && progress.desired.is_some()) {
        let observed = |new: Option<String>, old: &Option<String>| {
            // A merge patch cannot remove a field: an unset digest is written empty.
            new.or_else(|| old.as_ref().map(|_| String::new()))
        };
        status.observed_post_renderers_digest = observed(
            postrender::post_renderers_digest(hr),
            &status.observed_post_renderers_digest,
        );
        status.observed_common_metadata_digest = observed(
            postrender::common_metadata_digest(hr),
            &status.observed_common_metadata_digest,
        );
    }
    if let Some(action) = progress.action {
        status.last_attempted_release_action = Some(action.to_string());
        status.last_attempted_release_action_duration =
            progress.action_duration.map(runtime::go_duration);
    }
    if let Some(inventory) = progress.inventory {
        status.inventory = Some(inventory);
    }
    if let Some((why, message, ok)) = &progress.released {
        let state = if *ok { "True" } else { "False" };
        conditions::mark(&mut conds, RELEASED, state, why, message, generation, &at);
    }
    if let Some((why, message, ok)) = &progress.remediated {
        let state = if *ok { "True" } else { "False" };
        conditions::mark(&mut conds, REMEDIATED, state, why, message, generation, &at);
    } else if progress.released.as_ref().is_some_and(|r| r.2) {
        conditions::delete(&mut conds, REMEDIATED);
    }
    match &progress.test {
        Some((why, message, ok)) => {
            let state = if *ok { "True" } else { "False" };
            conditions::mark(
                &mut conds,
                TEST_SUCCESS,
                state,
                why,
                message,
                generation,
                &at,
            );
        }
        // Flux drops it when tests are disabled and on every new release.
        None if !plan::tests_enabled(hr) || progress.action.is_some() => {
            conditions::delete(&mut conds, TEST_SUCCESS);
        }
        None => {}
    }
    match &progress.drift {
        Some(drift) => {
            let (state, why) = if drift.drifted {
                ("True", "DriftDetected")
            } else {
                ("False", "NoDriftDetected")
            };
            conditions::mark(
                &mut conds,
                DRIFTED,
                state,
                why,
                &drift.message,
                generation,
                &at,
            );
        }
        None if !detects_drift(hr) => {
            conditions::delete(&mut conds, DRIFTED);
        }
        None => {}
    }
    match error {
        None => {
            // Flux's Ready summarizes TestSuccess before Released unless failures are ignored.
            let counts_tests = plan::tests_enabled(hr)
                && hr.spec.test.as_ref().and_then(|t| t.ignore_failures) != Some(true);
            let tests = conditions::get(&conds, TEST_SUCCESS).filter(|_| counts_tests);
            let (why, message) = tests
                .filter(|c| c.status == "True")
                .or_else(|| conditions::get(&conds, RELEASED).filter(|c| c.status == "True"))
                .map(|c| (c.reason.clone(), c.message.clone()))
                .unwrap_or_else(|| {
                    (
                        meta_reason::RECONCILIATION_SUCCEEDED.to_string(),
                        format!(
                            "Helm release {}/{} is in sync",
                            names.namespace, names.release
                        ),
                    )
                });
            conditions::set_outcome(
                &mut conds,
                Ok((why.as_str(), message.as_str())),
                generation,
                &at,
            );
        }
        Some(err) => {
            conditions::set_outcome(&mut conds, Err(err), generation, &at);
            if let Some(after) = progress.retrying {
                let message = format!("retrying after {}", runtime::go_duration(after));
                let reconciling = condition_type::RECONCILING;
                let why = "ProgressingWithRetry";
                conditions::mark(
                    &mut conds,
                    reconciling,
                    "True",
                    why,
                    &message,
                    generation,
                    &at,
                );
            }
            if let Some((why, message)) = &progress.stalled {
                let stalled = condition_type::STALLED;
                conditions::mark(&mut conds, stalled, "True", why, message, generation, &at);
            }
        }
    }
    status.conditions = Some(conds);
    status
}
