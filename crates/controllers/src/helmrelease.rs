//! The HelmRelease reconciler (`ferroflux controller helm`, helm.toolkit.fluxcd.io/v2): get
//! the chart (a HelmChart made from `spec.chart`, or the `spec.chartRef` source), compose the
//! values, render, and install, upgrade or remediate in Helm's own storage (Secrets
//! `sh.helm.release.v1.<name>.v<N>` the real `helm` reads), applying with server-side apply as
//! the tenant; uninstall on deletion. [`plan`] decides, [`action`] does.
//!
//! Chart hooks run as Helm runs them (not `test` hooks: `spec.test` is not implemented);
//! `lookup` reads the cluster as the release's identity; drift detection `enabled` corrects
//! on every reconciliation. Not implemented yet, and refused with a Stalled `InvalidSpec`
//! naming the fields (never silently ignored): see [`plan::unsupported`].

pub mod action;
pub mod chart;
pub mod plan;
pub mod values;

use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::helm::{HelmRelease, HelmReleaseStatus, Snapshot};
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
}

/// What drift detection found: Flux's `Drifted` condition and, after a correction, the
/// `DriftCorrected` event.
#[derive(Debug, Clone)]
struct Drift {
    drifted: bool,
    message: String,
    corrected: Option<String>,
}

/// Flux's condition of drift detection.
pub const DRIFTED: &str = "Drifted";

/// With `driftDetection.mode: enabled`, corrects the cluster state of the deployed revision.
async fn drift(
    hr: &HelmRelease,
    helm: &Helm,
    latest: &Release,
) -> Result<Option<Drift>, ReconcileError> {
    let detection = hr.spec.drift_detection.clone().unwrap_or_default();
    if detection.mode.as_deref() != Some("enabled") {
        return Ok(None);
    }
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
    let changes = helm.correct_drift(latest, &rules).await.map_err(|e| {
        ReconcileError::generic(
            "DriftCorrectionFailed",
            format!("Failed to correct cluster state of release {full}:\n{e}"),
        )
    })?;
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
        corrected: Some(format!(
            "Cluster state of release {full} has been corrected:\n{set}"
        )),
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
                reason: "DriftCorrected",
                message: corrected,
            });
        }
        let (why, message, _) = released.progress.released.clone()?;
        Some(Note {
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
        match applier(hr, self) {
            Ok(client) => {
                let helm = Helm::new(hr, client, FIELD_MANAGER);
                let keep = hr.spec.uninstall.as_ref().and_then(|u| u.keep_history) == Some(true);
                let result = match helm.history().await {
                    Ok(history) => helm.uninstall(&history, keep, uninstall_hooks(hr)).await,
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
/// `--default-service-account`) impersonated, else the controller's own.
fn applier(hr: &HelmRelease, ctx: &Context) -> Result<Client, ReconcileError> {
    let account = identity::applier(
        hr.spec.service_account_name.as_deref(),
        ctx.options.default_service_account.as_deref(),
    );
    match account {
        Some(account) => identity::impersonating_client(
            &ctx.config,
            &hr.namespace().unwrap_or_default(),
            account,
        )
        .map_err(|e| {
            ReconcileError::generic(
                meta_reason::RECONCILIATION_FAILED,
                format!("cannot impersonate {account}: {e}"),
            )
        }),
        None => Ok(ctx.client().clone()),
    }
}

/// Owns `DependencyNotReady`: every `dependsOn` HelmRelease must be Ready at its generation.
async fn dependencies(hr: &HelmRelease, ctx: &Context) -> Result<(), ReconcileError> {
    let own = hr.namespace().unwrap_or_default();
    for dep in hr.spec.depends_on.iter().flatten() {
        if dep.ready_expr.is_some() {
            return Err(ReconcileError::stalling(
                meta_reason::INVALID,
                "not supported by this helm-controller yet: spec.dependsOn[].readyExpr",
            ));
        }
        let ns = dep.namespace.clone().unwrap_or_else(|| own.clone());
        ctx.dependency_ready::<HelmRelease>(&ns, &dep.name).await?;
    }
    Ok(())
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
}

async fn prepare(
    hr: &HelmRelease,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<Prepared, ReconcileError> {
    plan::unsupported(hr)?;
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
    let values = values::compose(hr, ctx).await?;
    let desired = Desired {
        chart_version: chart.metadata.version.clone(),
        chart_name: chart.metadata.name.clone(),
        config_digest: ferroflux_helm::release::values_digest(&values),
    };
    let status = hr.status.clone().unwrap_or_default();
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
    })
}

/// Runs Helm's actions until the release is in sync, a remediation ran, or it stalls.
async fn attempt(
    hr: &HelmRelease,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<(), ReconcileError> {
    let prepared = prepare(hr, ctx, progress).await?;
    let desired = progress.desired.clone().unwrap_or(Desired {
        chart_version: String::new(),
        chart_name: String::new(),
        config_digest: String::new(),
    });
    let helm = Helm::new(hr, applier(hr, ctx)?, FIELD_MANAGER);
    let mut last_action = hr
        .status
        .as_ref()
        .and_then(|s| s.last_attempted_release_action.clone());
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
                match result {
                    Ok(objects) => {
                        let (why, message) =
                            success_message(install, helm.names(), version, &desired);
                        progress.released = Some((why, message, true));
                        progress.inventory = Some(action::inventory(&objects));
                        progress.history = Some(helm.history().await?);
                        return Ok(());
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
                        failure = Some(err);
                    }
                }
            }
            Next::UninstallRemediation | Next::Rollback { .. } => {
                remediate(hr, &helm, &history, &next, &desired, progress).await?;
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
                progress.stalled = Some((RETRIES_EXCEEDED, message.clone()));
                let error = failure
                    .or_else(|| last_failure(hr))
                    .unwrap_or_else(|| ReconcileError::stalling(RETRIES_EXCEEDED, message));
                return Err(ReconcileError {
                    retry: Retry::Stalling,
                    ..error
                });
            }
            Next::MissingRollbackTarget => {
                let message = "Failed to perform remediation: missing target release for rollback";
                progress.stalled = Some((MISSING_ROLLBACK_TARGET, message.into()));
                let error = failure
                    .or_else(|| last_failure(hr))
                    .unwrap_or_else(|| ReconcileError::stalling(MISSING_ROLLBACK_TARGET, message));
                return Err(ReconcileError {
                    retry: Retry::Stalling,
                    ..error
                });
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
    let released = conditions::get(&conds, RELEASED).filter(|c| c.status == "False")?;
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
    let rendered = render(helm.client(), prepared, options, caps)
        .await
        .map_err(fail)?;
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
    };
    helm.release(history, record, &run)
        .await
        .map(|outcome| outcome.objects)
        .map_err(fail)
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
        ferroflux_helm::render(&chart, &values, &options, &caps, Some(lookup))
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
            let run = action::Run {
                wait,
                hooks: (rollback.disable_hooks != Some(true)).then_some(timeout),
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
        _ => match helm.uninstall(history, false, uninstall_hooks(hr)).await {
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

/// A snapshot of a stored release, as helm-controller records it in `status.history`.
fn snapshot(release: &Release, previous: &[Snapshot]) -> Snapshot {
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
    let action = previous
        .iter()
        .find(|s| s.version == i64::from(release.version))
        .and_then(|s| s.action.clone());
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
        test_hooks: None,
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
    if let Some(action) = progress.action {
        status.last_attempted_release_action = Some(action.to_string());
        status.last_attempted_release_action_duration =
            progress.action_duration.map(runtime::go_duration);
    }
    if let Some(inventory) = progress.inventory {
        status.inventory = Some(inventory);
    }
    if let Some(mut history) = progress.history {
        let previous = status.history.clone().unwrap_or_default();
        history.sort_by_key(|r| std::cmp::Reverse(r.version));
        let mut snapshots: Vec<Snapshot> = history.iter().map(|r| snapshot(r, &previous)).collect();
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
        None if hr
            .spec
            .drift_detection
            .as_ref()
            .and_then(|d| d.mode.as_deref())
            != Some("enabled") =>
        {
            conditions::delete(&mut conds, DRIFTED);
        }
        None => {}
    }
    match error {
        None => {
            let (why, message) = conditions::get(&conds, RELEASED)
                .filter(|c| c.status == "True")
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
            if let Some((why, message)) = &progress.stalled {
                let stalled = condition_type::STALLED;
                conditions::mark(&mut conds, stalled, "True", why, message, generation, &at);
            }
        }
    }
    status.conditions = Some(conds);
    status
}
