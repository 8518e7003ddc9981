//! The GitRepository reconciler (part of `ferroflux controller source`): resolve the ref on
//! the remote, check out and package a new artifact only when the revision or the packaging
//! inputs changed, and serve it from the artifact storage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use ferroflux_api::meta::{Artifact, RECONCILE_REQUEST_ANNOTATION, Time, reason};
use ferroflux_api::source::{GitRepository, GitRepositoryStatus};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::git::{self, CloneOptions, GitAuth, GitError, GitRef};
use ferroflux_source::storage::{ObjectKey, Storage};

use crate::events::Recorder;
use crate::runtime::{
    FINALIZER, ReconcileError, now, optional_spec_duration, patch_status, record,
    set_source_conditions, spec_duration,
};

/// What the reconciler needs.
pub struct Context {
    /// The controller's client.
    pub client: Client,
    /// Where artifacts are kept and served from.
    pub storage: Arc<Storage>,
    recorder: Recorder,
    backoff: crate::runtime::Backoff,
}

impl Context {
    /// A context whose events are reported as `source-controller`.
    pub fn new(client: Client, storage: Arc<Storage>) -> Self {
        Context {
            recorder: crate::runtime::recorder(&client, "source-controller"),
            backoff: crate::runtime::Backoff::default(),
            client,
            storage,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<GitRepository> = Api::all(context.client.clone());
    crate::runtime::drive(
        crate::runtime::controller(api, watcher::Config::default()),
        reconcile,
        context,
        shutdown,
    )
    .await;
}

async fn reconcile(
    repo: Arc<GitRepository>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let namespace = repo.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FINALIZER, repo, |event| async {
        match event {
            Event::Apply(repo) => reconcile_apply(&api, &repo, &ctx).await,
            Event::Cleanup(repo) => {
                let key = ObjectKey::new("GitRepository", &namespace, &repo.name_any());
                if let Err(err) = ctx.storage.remove_all(&key) {
                    warn!(%err, "could not remove the artifacts of a deleted GitRepository");
                }
                Ok(Action::await_change())
            }
        }
    })
    .await
}

async fn reconcile_apply(
    api: &Api<GitRepository>,
    repo: &GitRepository,
    ctx: &Context,
) -> Result<Action, kube::Error> {
    if repo.spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let interval = spec_duration("spec.interval", &repo.spec.interval);
    let previous = repo
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone());
    let result = match &interval {
        Ok(_) => reconcile_artifact(repo, ctx).await,
        Err(err) => Err(err.clone()),
    };
    // An invalid interval stalls, so the fallback is never used for a requeue.
    let interval = interval.unwrap_or_default();
    let object = repo.object_ref(&());
    match &result {
        Ok(artifact) if previous.as_deref() != Some(artifact.revision.as_str()) => {
            let note = format!("stored artifact for revision '{}'", artifact.revision);
            record(&ctx.recorder, &object, false, "NewArtifact", &note).await;
        }
        Ok(_) => {}
        Err(err) => record(&ctx.recorder, &object, true, err.reason, &err.message).await,
    }
    let key = format!(
        "{}/{}",
        repo.namespace().unwrap_or_default(),
        repo.name_any()
    );
    let action = ctx.backoff.action(&key, result.as_ref().map(|_| interval));
    let status = summarize(repo, result);
    patch_status(
        api,
        &repo.name_any(),
        serde_json::to_value(status).expect("status serialises"),
    )
    .await?;
    Ok(action)
}

/// Credentials from the `secretRef` Secret: `username`/`password`, `bearerToken`, or
/// `identity`/`known_hosts` for SSH.
async fn auth(repo: &GitRepository, ctx: &Context) -> Result<GitAuth, ReconcileError> {
    let Some(secret_ref) = &repo.spec.secret_ref else {
        return Ok(GitAuth::default());
    };
    let namespace = repo.namespace().unwrap_or_default();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.client.clone(), &namespace);
    let secret = secrets
        .get_opt(&secret_ref.name)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ReconcileError::generic(
                reason::AUTHENTICATION_FAILED,
                format!("secret '{namespace}/{}' not found", secret_ref.name),
            )
        })?;
    let data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    let mut auth = GitAuth::default();
    if let (Some(user), Some(password)) = (data.get("username"), data.get("password")) {
        auth = GitAuth::basic(user, password);
    } else if let Some(token) = data.get("bearerToken") {
        auth = GitAuth::bearer(token);
    } else if let Some(identity) = data.get("identity") {
        auth.ssh = Some(git::SshAuth {
            user: "git".into(),
            private_key: identity.clone(),
            passphrase: data.get("password").cloned(),
            known_hosts: data.get("known_hosts").cloned().unwrap_or_default(),
        });
    }
    Ok(auth)
}

fn git_ref(repo: &GitRepository) -> GitRef {
    let spec_ref = repo.spec.reference.clone().unwrap_or_default();
    let mut r = GitRef {
        branch: spec_ref.branch,
        tag: spec_ref.tag,
        semver: spec_ref.semver,
        name: spec_ref.name,
        commit: spec_ref.commit,
    };
    if r == GitRef::default() {
        r.branch = Some(git::DEFAULT_BRANCH.to_string());
    }
    r
}

fn fetch_failed(err: GitError) -> ReconcileError {
    let why = match err {
        GitError::Auth { .. } => reason::AUTHENTICATION_FAILED,
        _ => reason::GIT_OPERATION_FAILED,
    };
    ReconcileError::generic(why, err.to_string())
}

/// Owns `FetchFailed` (git) and the artifact: a new one only when the revision or the ignore
/// rules changed, or the stored file is gone.
async fn reconcile_artifact(
    repo: &GitRepository,
    ctx: &Context,
) -> Result<Artifact, ReconcileError> {
    let options = CloneOptions {
        auth: auth(repo, ctx).await?,
        timeout: Some(optional_spec_duration(
            "spec.timeout",
            repo.spec.timeout.as_deref(),
            Duration::from_secs(60),
        )?),
        recurse_submodules: repo.spec.recurse_submodules == Some(true),
        ..CloneOptions::default()
    };
    let url = repo.spec.url.clone();
    let reference = git_ref(repo);
    let (u, r, o) = (url.clone(), reference.clone(), options.clone());
    let remote_revision = tokio::task::spawn_blocking(move || git::resolve(&u, &r, &o))
        .await
        .map_err(|e| ReconcileError::generic(reason::GIT_OPERATION_FAILED, e.to_string()))?
        .map_err(fetch_failed)?;
    let status = repo.status.clone().unwrap_or_default();
    if let Some(current) = &status.artifact
        && current.revision == remote_revision
        && status.observed_ignore == repo.spec.ignore
        && let Some(url) = ctx.storage.stored_url(&current.path)
    {
        return Ok(Artifact {
            url,
            ..current.clone()
        });
    }
    let workdir = tempfile::tempdir()
        .map_err(|e| ReconcileError::generic(reason::GIT_OPERATION_FAILED, e.to_string()))?;
    let dest = workdir.path().to_path_buf();
    let commit =
        tokio::task::spawn_blocking(move || git::checkout(&url, &reference, &dest, &options))
            .await
            .map_err(|e| ReconcileError::generic(reason::GIT_OPERATION_FAILED, e.to_string()))?
            .map_err(fetch_failed)?;
    let mut rules = IgnoreRules::flux_defaults();
    if let Some(ignore) = &repo.spec.ignore {
        rules = rules.with_spec_ignore(ignore);
    }
    let key = ObjectKey::new(
        "GitRepository",
        &repo.namespace().unwrap_or_default(),
        &repo.name_any(),
    );
    let stored = ctx
        .storage
        .store_dir(&key, &commit.revision, workdir.path(), &rules)
        .map_err(|e| ReconcileError::generic("StorageOperationFailed", e.to_string()))?;
    info!(revision = %commit.revision, repository = %key.name, "stored artifact");
    Ok(Artifact {
        path: stored.path,
        url: stored.url,
        revision: stored.revision,
        digest: Some(stored.digest),
        last_update_time: Time(stored.last_update_time),
        size: i64::try_from(stored.size).ok(),
        metadata: (!stored.metadata.is_empty()).then_some(stored.metadata),
    })
}

fn summarize(
    repo: &GitRepository,
    result: Result<Artifact, ReconcileError>,
) -> GitRepositoryStatus {
    let mut status = repo.status.clone().unwrap_or_default();
    let generation = repo.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    let at = now();
    match result {
        Ok(artifact) => {
            let message = format!("stored artifact for revision '{}'", artifact.revision);
            set_source_conditions(&mut conds, Ok(("Succeeded", &message)), generation, &at);
            status.artifact = Some(artifact);
            status.observed_ignore = repo.spec.ignore.clone();
        }
        Err(err) => set_source_conditions(&mut conds, Err(&err), generation, &at),
    }
    status.conditions = Some(conds);
    status.observed_generation = generation;
    if let Some(requested) = repo.annotations().get(RECONCILE_REQUEST_ANNOTATION) {
        status.last_handled_reconcile_at = Some(requested.clone());
    }
    status
}
