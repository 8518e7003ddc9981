//! Helm's actions on Helm's own storage: install, upgrade, rollback, uninstall and unlock.
//! Each writes the release record as Helm does (a `pending-*` record first, then `deployed`
//! or `failed`, the previous one `superseded`) and applies the manifest as the HelmRelease's
//! identity, which also reads and writes the records: with server-side apply (conflicts
//! forced, as helm-controller does) or Helm's client-side apply, with [`Run`]'s options.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ferroflux_api::helm::HelmRelease;
use ferroflux_apply::inventory::inventory_of;
use ferroflux_apply::manager::{
    Action as ApplyAction, ApplyOptions, Change, DeleteOptions, ResourceManager, api_message,
};
use ferroflux_apply::object::ObjectRef;
use ferroflux_helm::release::{
    self as storage, APPLY_METHOD_CSA, APPLY_METHOD_SSA, ChartRecord, Hook, Info, Release, Status,
    Written,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use kube::{Client, ResourceExt};
use serde_json::{Map, Value, json};

use super::plan::Names;
use super::{NAME_LABEL, NAMESPACE_LABEL};
use crate::runtime::ReconcileError;

/// Flux's reasons of the release actions.
pub mod reason {
    /// An install succeeded.
    pub const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
    /// An install failed.
    pub const INSTALL_FAILED: &str = "InstallFailed";
    /// An upgrade succeeded.
    pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
    /// An upgrade failed.
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// A rollback succeeded.
    pub const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
    /// A rollback failed.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// An uninstall succeeded.
    pub const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
    /// An uninstall failed.
    pub const UNINSTALL_FAILED: &str = "UninstallFailed";
    /// The release state could not be read.
    pub const STATE_ERROR: &str = "StateError";
}

/// Objects of a manifest at most (a tenant's chart renders it).
const MAX_OBJECTS: usize = 10_000;

/// One HelmRelease's Helm: its storage (Secrets in the storage namespace) and its applier,
/// both as its identity.
pub struct Helm {
    client: Client,
    secrets: Api<Secret>,
    manager: ResourceManager,
    names: Names,
    max_history: usize,
    owner: BTreeMap<String, String>,
    scopes: std::sync::Mutex<HashMap<GroupVersionKind, bool>>,
}

/// How one release action runs.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// The chart's CRDs to apply first (empty: skipped).
    pub crds: &'a [String],
    /// Wait this long for the objects to be ready; `None`: no wait.
    pub wait: Option<Duration>,
    /// Run the chart's hooks of the action, each within this timeout; `None`: disabled.
    pub hooks: Option<Duration>,
    /// Create the release namespace first.
    pub create_namespace: bool,
    /// Helm's `WaitForJobs` (`disableWaitForJobs` turns it off): without it a Job counts as
    /// ready unless it failed, as kstatus without helm-controller's Job reader has it.
    pub wait_for_jobs: bool,
    /// Helm's `CleanupOnFail`: a failed upgrade or rollback deletes what it created.
    pub cleanup_on_fail: bool,
    /// Helm's `TakeOwnership` (Flux's default; `disableTakeOwnership` turns it off): objects
    /// that exist without the release's ownership metadata are adopted rather than refused.
    pub take_ownership: bool,
    /// Server-side apply (Helm v4's default); `false`: Helm's client-side apply.
    pub server_side_apply: bool,
    /// Helm's `ForceReplace`, client-side apply only: objects are replaced, not patched.
    pub force_replace: bool,
    /// Helm's install `Replace`: the name of an uninstalled or failed release is reused.
    pub replace: bool,
    /// Which readiness checks the wait runs: kstatus (`poller`) or Helm v3's (`legacy`).
    pub legacy_wait: bool,
    /// `spec.healthCheckExprs`: the custom resources they cover are judged by them.
    pub health_checks: Option<&'a super::cel::HealthChecks>,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            crds: &[],
            wait: None,
            hooks: None,
            create_namespace: false,
            wait_for_jobs: true,
            cleanup_on_fail: false,
            take_ownership: true,
            server_side_apply: true,
            force_replace: false,
            replace: false,
            legacy_wait: false,
            health_checks: None,
        }
    }
}

/// Helm's hook event of tests (`helm.sh/hook: test`).
pub const TEST_EVENT: &str = "test";

/// Helm's delete policies of hooks.
const BEFORE_HOOK_CREATION: &str = "before-hook-creation";
const HOOK_SUCCEEDED: &str = "hook-succeeded";
const HOOK_FAILED: &str = "hook-failed";

/// What an action applied, for the inventory and the event.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The objects of the release now deployed.
    pub objects: Vec<ObjectRef>,
}

impl Helm {
    /// The Helm of `hr` acting as `client`.
    pub fn new(hr: &HelmRelease, client: Client, field_manager: &str) -> Self {
        let names = Names::of(hr);
        let max_history = match hr.spec.max_history {
            None => 5,
            Some(n) => usize::try_from(n).unwrap_or(0),
        };
        Helm {
            secrets: Api::namespaced(client.clone(), &names.storage),
            manager: ResourceManager::new(client.clone(), field_manager),
            client,
            names,
            max_history,
            owner: [
                (NAME_LABEL.to_string(), hr.name_any()),
                (
                    NAMESPACE_LABEL.to_string(),
                    hr.namespace().unwrap_or_default(),
                ),
            ]
            .into(),
            scopes: std::sync::Mutex::default(),
        }
    }

    /// The same Helm on the release named `names` (a release target the HelmRelease had
    /// before its names changed).
    pub fn with_names(mut self, names: Names) -> Self {
        self.secrets = Api::namespaced(self.client.clone(), &names.storage);
        self.names = names;
        self
    }

    /// The client the release is made with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The names of the release.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Every stored revision of the release (Helm's `History`).
    pub async fn history(&self) -> Result<Vec<Release>, ReconcileError> {
        let state_error = |message: String| {
            ReconcileError::generic(
                reason::STATE_ERROR,
                format!("Could not determine release state: {message}"),
            )
        };
        let list = self
            .secrets
            .list(&ListParams::default().labels(&storage::history_selector(&self.names.release)))
            .await
            .map_err(|e| state_error(api_message(&e)))?;
        let mut releases = Vec::with_capacity(list.items.len());
        for secret in list.items {
            let name = secret.name_any();
            let value = serde_json::to_value(&secret).map_err(|e| state_error(e.to_string()))?;
            let release = storage::from_secret(&value, storage::DEFAULT_MAX_RELEASE_SIZE)
                .map_err(|e| state_error(format!("Secret {name}: {e}")))?;
            releases.push(release);
        }
        Ok(releases)
    }

    async fn store(&self, release: &Release, create: bool) -> Result<(), ReconcileError> {
        let now = Timestamp::now().as_second();
        let written = if create {
            Written::Created(now)
        } else {
            Written::Modified(now)
        };
        let failed = |message: String| {
            ReconcileError::generic(
                reason::STATE_ERROR,
                format!(
                    "failed to store release {}.v{}: {message}",
                    release.name, release.version
                ),
            )
        };
        let secret = storage::to_secret(release, &self.names.storage, written)
            .map_err(|e| failed(e.to_string()))?;
        let name = storage::secret_name(&release.name, release.version);
        if create {
            let secret: Secret =
                serde_json::from_value(secret).map_err(|e| failed(e.to_string()))?;
            self.secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(|e| failed(api_message(&e)))?;
        } else {
            let patch = json!({"metadata": {"labels": secret["metadata"]["labels"]},
                "data": secret["data"]});
            self.secrets
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| failed(api_message(&e)))?;
        }
        Ok(())
    }

    async fn delete_record(&self, version: u32) -> Result<(), ReconcileError> {
        let name = storage::secret_name(&self.names.release, version);
        match self.secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(ReconcileError::generic(
                reason::STATE_ERROR,
                format!(
                    "failed to delete release record {name}: {}",
                    api_message(&e)
                ),
            )),
        }
    }

    /// Marks a `pending-*` revision failed, as Flux's unlock does after a crash.
    pub async fn unlock(&self, mut release: Release) -> Result<(), ReconcileError> {
        let info = release
            .info
            .get_or_insert_with(|| Info::new(Status::Failed, "", Timestamp::now()));
        let was = info.status;
        info.status = Status::Failed;
        info.description = format!("Release unlocked from stale '{was}' state");
        self.store(&release, false).await
    }

    /// Stores `release` as a new revision in its pending state, applies its manifest (and
    /// `crds`), waits when asked, and stores it deployed (superseding the others) or failed.
    pub async fn release(
        &self,
        history: &[Release],
        mut release: Release,
        run: &Run<'_>,
    ) -> Result<Outcome, String> {
        let action = match release.info.as_ref().map(|i| i.status) {
            Some(Status::PendingInstall) => "install",
            Some(Status::PendingRollback) => "rollback",
            _ => "upgrade",
        };
        if action == "install" {
            available_name(history, run.replace)?;
        }
        if !run.take_ownership && action != "rollback" {
            self.check_ownership(&release, history, action).await?;
        }
        for version in storage::prune_history(history, self.max_history) {
            self.delete_record(version).await.map_err(|e| e.message)?;
        }
        release.apply_method = if run.server_side_apply {
            APPLY_METHOD_SSA
        } else {
            APPLY_METHOD_CSA
        }
        .into();
        self.store(&release, true).await.map_err(|e| e.message)?;
        if action == "install" && run.replace {
            self.supersede_replaced(history).await?;
        }
        let mut created = Vec::new();
        let applied = async {
            if let Some(timeout) = run.hooks {
                self.run_hooks(&mut release, &format!("pre-{action}"), timeout)
                    .await?;
            }
            let objects = self.apply(&release, run, history, &mut created).await?;
            if let Some(timeout) = run.hooks {
                self.run_hooks(&mut release, &format!("post-{action}"), timeout)
                    .await?;
            }
            Ok::<_, String>(objects)
        }
        .await;
        let info = release
            .info
            .get_or_insert_with(|| Info::new(Status::Unknown, "", Timestamp::now()));
        info.last_deployed = Some(Timestamp::now());
        match applied {
            Ok(objects) => {
                info.description = match info.status {
                    Status::PendingInstall => "Install complete".to_string(),
                    Status::PendingRollback => format!("Rollback to {}", info.rollback_revision),
                    _ => "Upgrade complete".to_string(),
                };
                info.status = Status::Deployed;
                for old in history {
                    if old
                        .info
                        .as_ref()
                        .is_some_and(|i| i.status == Status::Deployed)
                    {
                        let mut old = old.clone();
                        if let Some(info) = old.info.as_mut() {
                            info.status = Status::Superseded;
                            info.description = "superseded by new release".into();
                        }
                        self.store(&old, false).await.map_err(|e| e.message)?;
                    }
                }
                self.store(&release, false).await.map_err(|e| e.message)?;
                Ok(Outcome { objects })
            }
            Err(err) => {
                info.status = Status::Failed;
                info.description = format!("Release \"{}\" failed: {err}", release.name);
                if let Err(store) = self.store(&release, false).await {
                    return Err(format!("{err}; {}", store.message));
                }
                if run.cleanup_on_fail && action != "install" && !created.is_empty() {
                    // Helm's failRelease: what this action created goes, in background.
                    if let Err(cleanup) = self
                        .manager
                        .delete_all(&created, &DeleteOptions::default())
                        .await
                    {
                        return Err(format!(
                            "an error occurred while cleaning up resources. original {action} \
                             error: {err}: unable to cleanup resources: {cleanup}"
                        ));
                    }
                }
                Err(err)
            }
        }
    }

    /// Helm's install `Replace`: the last record of a reused name is superseded (a failed
    /// one keeps its status).
    async fn supersede_replaced(&self, history: &[Release]) -> Result<(), String> {
        let Some(last) = storage::latest(history) else {
            return Ok(());
        };
        if last
            .info
            .as_ref()
            .is_some_and(|i| i.status == Status::Failed)
        {
            return Ok(());
        }
        let mut last = last.clone();
        if let Some(info) = last.info.as_mut() {
            info.status = Status::Superseded;
            info.description = "superseded by new release".into();
        }
        self.store(&last, false).await.map_err(|e| e.message)
    }

    /// Helm without `TakeOwnership`: an install (every object) or an upgrade (the objects
    /// the current release does not have) refuses objects that exist without the release's
    /// ownership metadata.
    async fn check_ownership(
        &self,
        release: &Release,
        history: &[Release],
        action: &str,
    ) -> Result<(), String> {
        let wanted = self.objects_of(&release.manifest).await?;
        let current: Vec<ObjectRef> = match storage::deployed(history).or(storage::latest(history))
        {
            Some(current) if action != "install" => {
                refs_of(&self.objects_of(&current.manifest).await?)
            }
            _ => Vec::new(),
        };
        let verb = if action == "install" {
            "install"
        } else {
            "update"
        };
        for (reference, _) in refs_of(&wanted).into_iter().zip(&wanted) {
            if current.contains(&reference) {
                continue;
            }
            let existing = self
                .manager
                .get(&reference)
                .await
                .map_err(|e| format!("unable to continue with {verb}: {e}"))?;
            let Some(existing) = existing else { continue };
            let problems = ownership_problems(&existing, &self.names);
            if !problems.is_empty() {
                return Err(format!(
                    "unable to continue with {verb}: {} {:?} in namespace {:?} exists and cannot \
                     be imported into the current release: invalid ownership metadata; {}",
                    reference.kind,
                    reference.name,
                    reference.namespace,
                    problems.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// Applies the release (and `run.crds`, and its namespace when asked), deletes what the
    /// previous deployed revision had and this one has not, and waits when asked. Objects it
    /// creates are recorded in `created` for `cleanupOnFail`.
    async fn apply(
        &self,
        release: &Release,
        run: &Run<'_>,
        history: &[Release],
        created: &mut Vec<ObjectRef>,
    ) -> Result<Vec<ObjectRef>, String> {
        let mut objects = Vec::new();
        if run.create_namespace {
            objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.names.namespace}}));
        }
        for crd in run.crds {
            objects.extend(self.objects_of(crd).await?);
        }
        let owned = self.objects_of(&release.manifest).await?;
        let refs = refs_of(&owned);
        if run.cleanup_on_fail {
            for reference in &refs {
                if self
                    .manager
                    .get(reference)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    created.push(reference.clone());
                }
            }
        }
        if run.server_side_apply {
            objects.extend(owned.iter().cloned());
            self.manager
                .apply_all(&objects, &ApplyOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        } else {
            if !objects.is_empty() {
                self.manager
                    .apply_all(&objects, &ApplyOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let original = match storage::deployed(history).or(storage::latest(history)) {
                Some(previous) => self.objects_of(&previous.manifest).await?,
                None => Vec::new(),
            };
            self.apply_client_side(&owned, &original, run.force_replace)
                .await?;
            objects.extend(owned.iter().cloned());
        }
        // Helm deletes what the previous deployed release had and this one has not.
        if let Some(previous) = storage::deployed(history) {
            let before = self.objects_of(&previous.manifest).await?;
            let stale: Vec<ObjectRef> = before
                .iter()
                .enumerate()
                .filter_map(|(i, o)| ObjectRef::of(o, i).ok())
                .filter(|r| !refs.contains(r))
                .collect();
            self.manager
                .delete_all(&stale, &DeleteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(timeout) = run.wait {
            self.wait(&refs_of(&objects), timeout, run)
                .await
                .map_err(|e| {
                    format!(
                        "resources not ready after {}: {e}",
                        crate::runtime::go_duration(timeout)
                    )
                })?;
        }
        Ok(refs)
    }

    /// Waits for `applied` by kstatus (`poller`) or Helm v3's readiness checks (`legacy`);
    /// without `wait_for_jobs` a Job is only checked for having failed.
    async fn wait(
        &self,
        applied: &[ObjectRef],
        timeout: Duration,
        run: &Run<'_>,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let checks = run.health_checks.filter(|c| !c.is_empty());
        let custom: Vec<ObjectRef> = checks.map_or_else(Vec::new, |c| {
            applied.iter().filter(|r| c.covers(r)).cloned().collect()
        });
        let applied: Vec<ObjectRef> = applied
            .iter()
            .filter(|r| !custom.contains(r))
            .cloned()
            .collect();
        let is_job = |r: &&ObjectRef| r.group == "batch" && r.kind == "Job";
        let (jobs, rest): (Vec<ObjectRef>, Vec<ObjectRef>) = if run.wait_for_jobs {
            (Vec::new(), applied)
        } else {
            let jobs = applied.iter().filter(is_job).cloned().collect();
            let rest = applied.iter().filter(|r| !is_job(r)).cloned().collect();
            (jobs, rest)
        };
        if run.legacy_wait {
            super::wait::legacy(&self.manager, &rest, timeout, run.wait_for_jobs).await?;
        } else {
            self.manager
                .wait_healthy(&rest, timeout, true)
                .await
                .map_err(|e| e.to_string())?;
        }
        for job in jobs {
            let Some(live) = self.manager.get(&job).await.map_err(|e| e.to_string())? else {
                continue;
            };
            let health = ferroflux_apply::health::assess(&live);
            if health.status == ferroflux_apply::health::Status::Failed {
                return Err(format!("{job} status: 'Failed': {}", health.message));
            }
        }
        if let Some(checks) = checks {
            self.wait_custom(&custom, checks, deadline).await?;
        }
        Ok(())
    }

    /// Polls the objects `healthCheckExprs` cover until each is Current by its check; one
    /// that Failed ends the wait, as the kstatus wait fails fast.
    async fn wait_custom(
        &self,
        objects: &[ObjectRef],
        checks: &super::cel::HealthChecks,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        use ferroflux_apply::health::Status as Kstatus;
        let mut interval = Duration::from_millis(100);
        loop {
            let mut pending = Vec::new();
            for object in objects {
                let live = self.manager.get(object).await.map_err(|e| e.to_string())?;
                let verdict = live.as_ref().and_then(|live| checks.assess(live));
                match verdict {
                    Some(h) if h.status == Kstatus::Current => {}
                    Some(h) if h.status == Kstatus::Failed => {
                        return Err(format!("{object} status: 'Failed': {}", h.message));
                    }
                    Some(h) => {
                        pending.push(format!("{object} status: '{:?}': {}", h.status, h.message))
                    }
                    None => pending.push(format!("{object} status: 'NotFound'")),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(format!("timeout waiting for: [{}]", pending.join(", ")));
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(Duration::from_secs(2));
        }
    }

    /// Helm's client-side apply of `objects`: each created when absent, else replaced
    /// (`force_replace`) or patched with the three-way merge of its `original` (the previous
    /// release's object, else the live one), the rendered and the live object.
    async fn apply_client_side(
        &self,
        objects: &[Value],
        original: &[Value],
        force_replace: bool,
    ) -> Result<(), String> {
        let originals = refs_of(original);
        for (index, object) in objects.iter().enumerate() {
            let reference = ObjectRef::of(object, index).map_err(|e| e.to_string())?;
            let api = self.dynamic_api(&reference).await?;
            let failed = |verb: &str, e: kube::Error| {
                format!("{reference} {verb} failed: {}", api_message(&e))
            };
            let live = api
                .get_opt(&reference.name)
                .await
                .map_err(|e| failed("get", e))?;
            let params = PostParams {
                field_manager: Some(super::FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            let Some(live) = live else {
                let fresh: DynamicObject = serde_json::from_value(object.clone())
                    .map_err(|e| format!("{reference}: {e}"))?;
                api.create(&params, &fresh)
                    .await
                    .map_err(|e| failed("create", e))?;
                continue;
            };
            let live = serde_json::to_value(&live).map_err(|e| e.to_string())?;
            if force_replace {
                let replacement: DynamicObject =
                    serde_json::from_value(super::clientside::replacement(object, &live))
                        .map_err(|e| format!("{reference}: {e}"))?;
                api.replace(&reference.name, &params, &replacement)
                    .await
                    .map_err(|e| failed("replace", e))?;
                continue;
            }
            let before = originals
                .iter()
                .position(|r| *r == reference)
                .and_then(|i| original.get(i))
                .unwrap_or(&live);
            let patch = super::clientside::three_way_merge_patch(before, object, &live);
            if patch.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            let params = PatchParams {
                field_manager: Some(super::FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            api.patch(&reference.name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| failed("patch", e))?;
        }
        Ok(())
    }

    /// Discovers `gvk` (the kind of `reference`), failing with kubectl's message for an
    /// unknown kind.
    async fn discover(
        &self,
        reference: &ObjectRef,
        gvk: &GroupVersionKind,
    ) -> Result<
        (
            kube::discovery::ApiResource,
            kube::discovery::ApiCapabilities,
        ),
        String,
    > {
        kube::discovery::pinned_kind(&self.client, gvk)
            .await
            .map_err(|e| {
                format!(
                    "no matches for kind {:?} in version {:?}: {}",
                    reference.kind,
                    reference.api_version(),
                    api_message(&e)
                )
            })
    }

    /// The API of an object's kind, found by discovery.
    async fn dynamic_api(&self, reference: &ObjectRef) -> Result<Api<DynamicObject>, String> {
        let gvk = GroupVersionKind::gvk(&reference.group, &reference.version, &reference.kind);
        let (resource, capabilities) = self.discover(reference, &gvk).await?;
        Ok(match capabilities.scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &reference.namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Runs the hooks of `event` (e.g. `pre-install`) as Helm does: by weight then name,
    /// each deleted first unless its policies say otherwise (`before-hook-creation` is the
    /// default), applied, waited for when it is a Job or a Pod, then deleted on success or
    /// failure as its policies ask; each hook's last run is recorded in the release.
    pub async fn run_hooks(
        &self,
        release: &mut Release,
        event: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        self.run_hooks_where(release, event, timeout, &|_| true)
            .await
    }

    /// Helm's `helm test`: runs the release's `test` hooks that `selected` keeps (by hook
    /// name, as `spec.test.filters`), records each run in the release and stores it, whether
    /// the tests passed or not. Returns the release as stored and the outcome.
    pub async fn test(
        &self,
        mut release: Release,
        selected: &(dyn Fn(&str) -> bool + Sync),
        timeout: Duration,
    ) -> (Release, Result<(), String>) {
        let outcome = self
            .run_hooks_where(&mut release, TEST_EVENT, timeout, selected)
            .await;
        if let Err(err) = self.store(&release, false).await {
            return (release, outcome.and(Err(err.message)));
        }
        (release, outcome)
    }

    /// [`Helm::run_hooks`] for the hooks whose name `selected` keeps.
    async fn run_hooks_where(
        &self,
        release: &mut Release,
        event: &str,
        timeout: Duration,
        selected: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), String> {
        let mut order: Vec<usize> = (0..release.hooks.len())
            .filter(|i| release.hooks[*i].events.iter().any(|e| e == event))
            .filter(|i| selected(&release.hooks[*i].name))
            .collect();
        order.sort_by(|a, b| {
            let (a, b) = (&release.hooks[*a], &release.hooks[*b]);
            (a.weight, &a.name).cmp(&(b.weight, &b.name))
        });
        for index in order {
            let hook = release.hooks[index].clone();
            let objects = self.objects_of(&hook.manifest).await?;
            let refs: Vec<ObjectRef> = objects
                .iter()
                .enumerate()
                .filter_map(|(i, o)| ObjectRef::of(o, i).ok())
                .collect();
            let mut policies = hook.delete_policies.clone();
            if policies.is_empty() {
                policies.push(BEFORE_HOOK_CREATION.into());
            }
            let has = |policy: &str| policies.iter().any(|p| p == policy);
            let delete = |refs: Vec<ObjectRef>| async move {
                self.manager
                    .delete_all(&refs, &DeleteOptions::default())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            if has(BEFORE_HOOK_CREATION) {
                delete(refs.clone()).await?;
            }
            release.hooks[index].last_run.started_at = Some(Timestamp::now());
            let waited: Vec<ObjectRef> = refs
                .iter()
                .filter(|r| r.kind == "Job" || r.kind == "Pod")
                .cloned()
                .collect();
            let outcome = async {
                self.manager
                    .apply_all(&objects, &ApplyOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                self.manager
                    .wait_healthy(&waited, timeout, true)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            let run = &mut release.hooks[index].last_run;
            run.completed_at = Some(Timestamp::now());
            match outcome {
                Ok(()) => {
                    run.phase = "Succeeded".into();
                    if has(HOOK_SUCCEEDED) {
                        delete(refs).await?;
                    }
                }
                Err(err) => {
                    run.phase = "Failed".into();
                    if has(HOOK_FAILED) {
                        delete(refs).await?;
                    }
                    return Err(format!("{event} hook {} failed: {err}", hook.path));
                }
            }
        }
        Ok(())
    }

    /// Drift detection: what applying the deployed revision's manifest changes (every object
    /// that had drifted), leaving the `ignore` paths alone. With `correct` (`driftDetection.mode:
    /// enabled`) it is applied; without (`warn`) it is found with dry runs and nothing is
    /// written.
    pub async fn drift(
        &self,
        release: &Release,
        ignore: &[crate::kustomization::ignore::Rule],
        correct: bool,
    ) -> Result<Vec<Change>, String> {
        let objects = self.objects_of(&release.manifest).await?;
        let options = ApplyOptions {
            force: false,
            ignore: crate::kustomization::ignore::ignored_paths(ignore, &objects),
        };
        let changes = if correct {
            self.manager.apply_all(&objects, &options).await
        } else {
            self.manager.diff_all(&objects, &options).await
        }
        .map_err(|e| e.to_string())?;
        Ok(changes
            .into_iter()
            .filter(|c| !matches!(c.action, ApplyAction::Unchanged | ApplyAction::Skipped))
            .collect())
    }

    /// Uninstalls the newest revision: deletes its objects, then its records (or keeps them
    /// `uninstalled` with `keep_history`).
    pub async fn uninstall(
        &self,
        history: &[Release],
        keep_history: bool,
        hooks: Option<Duration>,
        propagation: PropagationPolicy,
    ) -> Result<(), String> {
        let Some(mut latest) = storage::latest(history).cloned() else {
            return Ok(());
        };
        if let Some(timeout) = hooks {
            self.run_hooks(&mut latest, "pre-delete", timeout).await?;
        }
        let mut objects: Vec<ObjectRef> = self
            .objects_of(&latest.manifest)
            .await?
            .iter()
            .enumerate()
            .filter_map(|(i, o)| ObjectRef::of(o, i).ok())
            .collect();
        objects.reverse();
        self.manager
            .delete_all_propagating(&objects, &DeleteOptions::default(), propagation)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(timeout) = hooks {
            self.run_hooks(&mut latest, "post-delete", timeout).await?;
        }
        if keep_history {
            if let Some(info) = latest.info.as_mut() {
                info.status = Status::Uninstalled;
                info.deleted = Some(Timestamp::now());
                info.description = "Uninstallation complete".into();
            }
            return self.store(&latest, false).await.map_err(|e| e.message);
        }
        for release in history {
            self.delete_record(release.version)
                .await
                .map_err(|e| e.message)?;
        }
        Ok(())
    }

    /// The objects of a manifest, each in the release namespace when its kind is namespaced
    /// and it names none, labelled as Flux and annotated as Helm mark what a release owns.
    async fn objects_of(&self, manifest: &str) -> Result<Vec<Value>, String> {
        let documents: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(manifest)
            .map_err(|e| format!("invalid manifest: {e}"))?;
        let mut objects = Vec::new();
        for mut object in documents.into_iter().filter(|d| d.is_object()) {
            if objects.len() >= MAX_OBJECTS {
                return Err(format!("the manifest has more than {MAX_OBJECTS} objects"));
            }
            if object["metadata"]["namespace"]
                .as_str()
                .is_none_or(str::is_empty)
                && self.namespaced(&object).await?
            {
                object["metadata"]["namespace"] = json!(self.names.namespace);
            }
            self.mark(&mut object);
            objects.push(object);
        }
        Ok(objects)
    }

    fn mark(&self, object: &mut Value) {
        let metadata = &mut object["metadata"];
        for (field, entries) in [
            (
                "labels",
                self.owner
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain([(
                        "app.kubernetes.io/managed-by".to_string(),
                        "Helm".to_string(),
                    )])
                    .collect::<Vec<_>>(),
            ),
            (
                "annotations",
                vec![
                    (
                        "meta.helm.sh/release-name".to_string(),
                        self.names.release.clone(),
                    ),
                    (
                        "meta.helm.sh/release-namespace".to_string(),
                        self.names.namespace.clone(),
                    ),
                ],
            ),
        ] {
            if !metadata[field].is_object() {
                metadata[field] = Value::Object(Map::new());
            }
            for (key, value) in entries {
                metadata[field][key] = Value::String(value);
            }
        }
    }

    async fn namespaced(&self, object: &Value) -> Result<bool, String> {
        let reference = ObjectRef::of(object, 0).map_err(|e| e.to_string())?;
        let gvk = GroupVersionKind::gvk(&reference.group, &reference.version, &reference.kind);
        if let Some(known) = lock(&self.scopes).get(&gvk) {
            return Ok(*known);
        }
        let (_, capabilities) = self.discover(&reference, &gvk).await?;
        let namespaced = capabilities.scope == Scope::Namespaced;
        lock(&self.scopes).insert(gvk, namespaced);
        Ok(namespaced)
    }
}

/// The references of `objects` (those that identify themselves).
fn refs_of(objects: &[Value]) -> Vec<ObjectRef> {
    objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| ObjectRef::of(o, i).ok())
        .collect()
}

/// Helm's `availableName`: an install may not reuse a name with history, unless `replace`
/// and its last record is uninstalled or failed.
fn available_name(history: &[Release], replace: bool) -> Result<(), String> {
    let Some(last) = storage::latest(history) else {
        return Ok(());
    };
    let status = last.info.as_ref().map_or(Status::Unknown, |i| i.status);
    if replace && matches!(status, Status::Uninstalled | Status::Failed) {
        return Ok(());
    }
    Err("cannot reuse a name that is still in use".into())
}

/// Helm's `checkOwnership`: what of the release's ownership metadata `existing` lacks, in
/// Helm's words (empty: the release owns it).
fn ownership_problems(existing: &Value, names: &Names) -> Vec<String> {
    let metadata = &existing["metadata"];
    let require = |field: &str, key: &str, wanted: &str| -> Option<String> {
        let what = if field == "labels" {
            "label"
        } else {
            "annotation"
        };
        match metadata[field][key].as_str() {
            None => Some(format!(
                "{what} validation error: missing key {key:?}: must be set to {wanted:?}"
            )),
            Some(actual) if actual != wanted => Some(format!(
                "{what} validation error: key {key:?} must equal {wanted:?}: current value is {actual:?}"
            )),
            Some(_) => None,
        }
    };
    [
        require("labels", "app.kubernetes.io/managed-by", "Helm"),
        require("annotations", "meta.helm.sh/release-name", &names.release),
        require(
            "annotations",
            "meta.helm.sh/release-namespace",
            &names.namespace,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A new revision of a chart with `values`, `rendered` by the chart engine, pending `status`.
#[allow(clippy::too_many_arguments)]
pub fn new_release(
    names: &Names,
    version: u32,
    chart: ChartRecord,
    values: &Value,
    rendered: &ferroflux_helm::Rendered,
    status: Status,
    first_deployed: Option<Timestamp>,
) -> Release {
    let now = Timestamp::now();
    let mut info = Info::new(status, "", now);
    info.first_deployed = first_deployed.or(Some(now));
    info.notes = rendered.notes.clone();
    Release {
        name: names.release.clone(),
        info: Some(info),
        chart: Some(chart),
        config: values.as_object().cloned(),
        manifest: rendered.manifest.clone(),
        hooks: rendered
            .hooks
            .iter()
            .map(|h| Hook {
                name: h.name.clone(),
                kind: h.kind.clone(),
                path: h.path.clone(),
                manifest: h.manifest.clone(),
                events: h.events.clone(),
                weight: i64::from(h.weight),
                delete_policies: h.delete_policies.clone(),
                ..Hook::default()
            })
            .collect(),
        version,
        namespace: names.namespace.clone(),
        labels: BTreeMap::new(),
        apply_method: APPLY_METHOD_SSA.into(),
    }
}

/// The inventory of the release's objects.
pub fn inventory(objects: &[ObjectRef]) -> ferroflux_api::meta::ResourceInventory {
    inventory_of(objects)
}
