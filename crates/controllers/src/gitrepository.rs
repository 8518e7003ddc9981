//! The GitRepository reconciler (part of `ferroflux controller source`): resolve the ref on
//! the remote, check out and package a new artifact only when the revision or the packaging
//! inputs changed, and serve it from the artifact storage.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use tracing::info;

use ferroflux_api::meta::{Artifact, Time, reason};
use ferroflux_api::source::{GitRepository, GitRepositoryStatus};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::git::{self, CloneOptions, GitAuth, GitError, GitRef};

use crate::runtime::SUCCEEDED;
use crate::runtime::{
    Note, ReconcileError, Reconciler, optional_spec_duration, set_source_conditions,
};
use crate::source::STORAGE_FAILED;
use crate::source::new_artifact;

/// What the reconciler needs.
pub type Context = crate::source::Context<GitRepository>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = GitRepository;
    type Done = Artifact;
    type Failure = ReconcileError;
    type Status = GitRepositoryStatus;

    fn runtime(&self) -> &crate::runtime::Context {
        &self.runtime
    }

    async fn reconcile(&self, repo: &GitRepository) -> Result<Artifact, ReconcileError> {
        reconcile_artifact(repo, self).await
    }

    fn event(&self, repo: &GitRepository, artifact: &Artifact) -> Option<Note> {
        let previous = repo.status.as_ref().and_then(|s| s.artifact.as_ref());
        new_artifact(previous, artifact, || {
            format!("stored artifact for revision '{}'", artifact.revision)
        })
    }

    fn summarize(
        &self,
        repo: &GitRepository,
        outcome: Result<Artifact, ReconcileError>,
        at: Time,
    ) -> GitRepositoryStatus {
        summarize(repo, outcome, at)
    }

    async fn cleanup(&self, repo: &GitRepository) {
        self.remove_artifacts(repo);
    }
}

/// Credentials of `repo` from its `secretRef` Secret: `username`/`password`, `bearerToken`, or
/// `identity`/`known_hosts` for SSH (ImageUpdateAutomation pushes with them too).
pub(crate) async fn auth(
    client: &kube::Client,
    repo: &GitRepository,
) -> Result<GitAuth, ReconcileError> {
    let Some(secret_ref) = &repo.spec.secret_ref else {
        return Ok(GitAuth::default());
    };
    let namespace = repo.namespace().unwrap_or_default();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &namespace);
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
        auth: auth(ctx.client(), repo).await?,
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
    let key = ctx.key(repo);
    let stored = ctx
        .storage
        .store_dir(&key, &commit.revision, workdir.path(), &rules)
        .map_err(|e| ReconcileError::generic(STORAGE_FAILED, e.to_string()))?;
    info!(revision = %commit.revision, repository = %key.name, "stored artifact");
    Ok(crate::source::status_artifact(stored))
}

fn summarize(
    repo: &GitRepository,
    result: Result<Artifact, ReconcileError>,
    at: Time,
) -> GitRepositoryStatus {
    let mut status = repo.status.clone().unwrap_or_default();
    let generation = repo.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    match result {
        Ok(artifact) => {
            let message = format!("stored artifact for revision '{}'", artifact.revision);
            set_source_conditions(&mut conds, Ok((SUCCEEDED, &message)), generation, &at);
            status.artifact = Some(artifact);
            status.observed_ignore = repo.spec.ignore.clone();
        }
        Err(err) => set_source_conditions(&mut conds, Err(&err), generation, &at),
    }
    status.conditions = Some(conds);
    status
}
