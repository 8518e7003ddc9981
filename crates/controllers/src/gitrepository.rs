//! The GitRepository reconciler (part of `ferroflux controller source`): resolve the ref on
//! the remote, check out and package a new artifact only when the revision or the packaging
//! inputs changed, and serve it from the artifact storage.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use tracing::info;

use ferroflux_api::meta::{Artifact, reason};
use ferroflux_api::source::{GitRepository, GitRepositoryRef, GitRepositoryStatus};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::git::{self, CloneOptions, GitAuth, GitError, GitRef};

use crate::ocirepository::referenced_secret;
use crate::runtime::{ReconcileError, optional_spec_duration};
use crate::source::{ArtifactSource, STORAGE_FAILED};

/// What the reconciler needs.
pub type Context = crate::source::Context<GitRepository>;

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl ArtifactSource for GitRepository {
    fn stored_event(artifact: &Artifact) -> String {
        format!("stored artifact for revision '{}'", artifact.revision)
    }

    fn stored_condition(artifact: &Artifact) -> String {
        format!("stored artifact for revision '{}'", artifact.revision)
    }

    async fn fetch(&self, ctx: &Context) -> Result<Artifact, ReconcileError> {
        reconcile_artifact(self, ctx).await
    }

    fn record(&self, status: &mut GitRepositoryStatus, artifact: Artifact) {
        status.artifact = Some(artifact);
        status.observed_ignore = self.spec.ignore.clone();
    }
}

/// Credentials of `repo` from its `secretRef` Secret: `username`/`password`, `bearerToken`, or
/// `identity`/`known_hosts` for SSH (ImageUpdateAutomation pushes with them too).
pub(crate) async fn auth(
    client: &kube::Client,
    repo: &GitRepository,
) -> Result<GitAuth, ReconcileError> {
    let namespace = repo.namespace().unwrap_or_default();
    let secret_ref = repo.spec.secret_ref.as_ref();
    let Some((_, data)) = referenced_secret(client, &namespace, secret_ref).await? else {
        return Ok(GitAuth::default());
    };
    let data: BTreeMap<String, String> = data
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
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

/// The Git reference to check out: Flux's `spec.ref`, the default branch when it names none.
pub(crate) fn git_ref(reference: Option<&GitRepositoryRef>) -> GitRef {
    let reference = reference.cloned().unwrap_or_default();
    let r = GitRef {
        branch: reference.branch,
        tag: reference.tag,
        semver: reference.semver,
        name: reference.name,
        commit: reference.commit,
    };
    if r == GitRef::default() {
        return GitRef {
            branch: Some(git::DEFAULT_BRANCH.to_string()),
            ..r
        };
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
    let reference = git_ref(repo.spec.reference.as_ref());
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
