//! Commit and push: the write side of Git, for image update automation.
//!
//! Expected flow: [`update_branch`] checks out the base reference into a fresh directory,
//! switches to the push branch when it already exists on the remote (so successive updates
//! stack on it), lets the caller edit the working tree, commits everything that changed and
//! pushes the commit to the branch. When the remote refuses the push because the branch moved
//! meanwhile, the whole sequence runs again on a fresh checkout, up to
//! [`UpdateRequest::attempts`] times.
//!
//! Guarantees: nothing is committed or pushed when the edit leaves the tree as it was; a push
//! is never forced; error messages never contain credentials.

use std::path::Path;

use git2::{IndexAddOption, Oid, Repository, Signature};

use super::{CloneOptions, Ctx, GitError, GitRef, checkout, fetch, list_refs, peel_ref};

/// The committer and author of automated commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Display name (may be empty).
    pub name: String,
    /// E-mail address.
    pub email: String,
}

/// What [`update_branch`] should do.
#[derive(Debug, Clone)]
pub struct UpdateRequest<'a> {
    /// The remote.
    pub url: &'a str,
    /// The reference to base a new push branch on.
    pub checkout: &'a GitRef,
    /// The branch to push to (created from `checkout` when it does not exist).
    pub push_branch: &'a str,
    /// An extra refspec to push after the branch (Flux's `git.push.refspec`), e.g.
    /// `refs/heads/auto:refs/heads/review`; its source must name a local reference, and
    /// `refs/heads/<push_branch>` is one.
    pub refspec: Option<&'a str>,
    /// Server-side push options (`git push -o`), as `key=value` or `key`.
    pub push_options: &'a [String],
    /// Credentials, timeout, proxy, shallow fetch (depth 1 by default).
    pub options: &'a CloneOptions,
    /// How many times to try (a rejected push starts over on a fresh checkout); at least 1.
    pub attempts: usize,
}

/// The edit the caller made in the working tree, to be committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// The commit message.
    pub message: String,
    /// Author and committer.
    pub author: Author,
    /// The files the edit wrote, relative to the root, when the caller knows them: only
    /// these are staged, which spares hashing every file of a large checkout. Empty: stage
    /// every change in the tree.
    pub paths: Vec<std::path::PathBuf>,
}

/// What [`update_branch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome<T> {
    /// The edit changed nothing: no commit, no push.
    Unchanged {
        /// The commit the edit was made on (hash).
        base: String,
        /// What the edit returned.
        edit: T,
    },
    /// A commit was pushed.
    Pushed {
        /// The new commit's hash.
        commit: String,
        /// The commit the edit was made on (hash).
        base: String,
        /// What the edit returned.
        edit: T,
    },
}

/// Why an update failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError<E: std::error::Error + 'static> {
    /// Checkout, fetch, commit or transport failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The caller's edit failed.
    #[error(transparent)]
    Edit(E),
    /// The remote kept refusing the push (the branch moved, or a hook refused it).
    #[error(
        "push of {reference} to {url} was rejected {attempts} time(s): {message}; check branch protection and hooks on the remote"
    )]
    Rejected {
        /// The reference pushed.
        reference: String,
        /// The remote (credentials stripped).
        url: String,
        /// How many attempts were made.
        attempts: usize,
        /// What the remote said.
        message: String,
    },
}

/// The working tree handed to the edit.
#[derive(Debug)]
pub struct Worktree<'a> {
    /// Root of the checkout.
    pub dir: &'a Path,
    /// Hash of the commit checked out (the push branch's tip when it exists).
    pub base: &'a str,
}

/// Checks out, edits, commits and pushes; see the module docs for the flow.
///
/// `edit` returns `(value, Some(commit))` to commit whatever changed in the tree, or
/// `(value, None)` for no commit; `value` is handed back in the outcome (of the last attempt).
///
/// # Errors
/// [`PushError::Git`] for checkout/commit/transport failures, [`PushError::Edit`] when the
/// edit fails, [`PushError::Rejected`] when every attempt's push was refused.
pub fn update_branch<T, E: std::error::Error + 'static>(
    request: &UpdateRequest<'_>,
    mut edit: impl FnMut(&Worktree<'_>) -> Result<(T, Option<CommitRequest>), E>,
) -> Result<UpdateOutcome<T>, PushError<E>> {
    // Shallow fetches work here: the pushed pack holds only objects the remote lacks, and
    // the remote's tips are the base of the new commit.
    let options = request.options.clone();
    let attempts = request.attempts.max(1);
    let mut last_rejection = String::new();
    for _ in 0..attempts {
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-update-")
            .tempdir()
            .map_err(|e| GitError::Git {
                action: "create a working directory for",
                url: Ctx::for_options(request.url, &options).display_url,
                message: e.to_string(),
            })?;
        // Knowing up front whether the push branch exists saves a second checkout of the
        // tree; with a bearer token the listing shows tags only, so switch after the fact.
        let push_ref = format!("refs/heads/{}", request.push_branch);
        let push_branch_exists = match options.auth.bearer_token {
            None => Some(
                list_refs(request.url, &options)?
                    .iter()
                    .any(|r| r.name == push_ref),
            ),
            Some(_) => None,
        };
        let start = match push_branch_exists {
            Some(true) => GitRef::branch(request.push_branch),
            _ => request.checkout.clone(),
        };
        let checked_out = checkout(request.url, &start, dir.path(), &options)?;
        let ctx = Ctx::for_options(request.url, &options);
        let repo = Repository::open(dir.path()).map_err(|e| ctx.err("open checkout of", &e))?;
        let base = match push_branch_exists {
            Some(_) => {
                Oid::from_str(&checked_out.hash).map_err(|e| ctx.err("read commit of", &e))?
            }
            None => switch_to_push_branch(&repo, &ctx, request)?,
        };
        let base_hex = base.to_string();
        let (value, commit) = edit(&Worktree {
            dir: dir.path(),
            base: &base_hex,
        })
        .map_err(PushError::Edit)?;
        let Some(commit) = commit else {
            return Ok(UpdateOutcome::Unchanged {
                base: base_hex,
                edit: value,
            });
        };
        let Some(new) = commit_all(&repo, &ctx, base, &commit)? else {
            return Ok(UpdateOutcome::Unchanged {
                base: base_hex,
                edit: value,
            });
        };
        let branch_ref = format!("refs/heads/{}", request.push_branch);
        repo.reference(&branch_ref, new, true, "image update")
            .map_err(|e| ctx.err("create branch in", &e))?;
        let mut refspecs = vec![format!("{branch_ref}:{branch_ref}")];
        if let Some(extra) = request.refspec.filter(|r| !r.is_empty()) {
            refspecs.push(extra.to_string());
        }
        match push(&repo, &ctx, &refspecs, request.push_options)? {
            None => {
                return Ok(UpdateOutcome::Pushed {
                    commit: new.to_string(),
                    base: base_hex,
                    edit: value,
                });
            }
            Some(rejection) => last_rejection = rejection,
        }
    }
    Err(PushError::Rejected {
        reference: format!("refs/heads/{}", request.push_branch),
        url: Ctx::for_options(request.url, &options).display_url,
        attempts,
        message: last_rejection,
    })
}

/// Moves HEAD and the tree to the push branch when the remote has it; returns the base commit.
fn switch_to_push_branch(
    repo: &Repository,
    ctx: &Ctx<'_>,
    request: &UpdateRequest<'_>,
) -> Result<Oid, GitError> {
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.target())
        .ok_or_else(|| ctx.not_found("HEAD after checkout".to_string()))?;
    let local = format!("refs/remotes/origin/{}", request.push_branch);
    let refspec = format!("+refs/heads/{}:{local}", request.push_branch);
    match fetch(repo, ctx, &refspec, false) {
        Ok(()) => {}
        // A missing branch is the normal first run: it is created from the checkout.
        Err(GitError::Git { .. }) => return Ok(head),
        Err(other) => return Err(other),
    }
    let Some(tip) = peel_ref(repo, &local) else {
        return Ok(head);
    };
    let commit = repo
        .find_commit(tip)
        .map_err(|e| ctx.err("read commit of", &e))?;
    repo.checkout_tree(
        commit.as_object(),
        Some(
            git2::build::CheckoutBuilder::new()
                .force()
                .remove_untracked(true),
        ),
    )
    .map_err(|e| ctx.err("checkout", &e))?;
    repo.set_head_detached(tip)
        .map_err(|e| ctx.err("checkout", &e))?;
    Ok(tip)
}

/// Stages every change (new, modified and deleted files) and commits on top of `parent`;
/// `None` when the tree equals the parent's.
fn commit_all(
    repo: &Repository,
    ctx: &Ctx<'_>,
    parent: Oid,
    request: &CommitRequest,
) -> Result<Option<Oid>, GitError> {
    let mut index = repo.index().map_err(|e| ctx.err("stage changes in", &e))?;
    if request.paths.is_empty() {
        index
            .add_all(["*"].iter(), IndexAddOption::DEFAULT, None)
            .map_err(|e| ctx.err("stage changes in", &e))?;
        index
            .update_all(["*"].iter(), None)
            .map_err(|e| ctx.err("stage changes in", &e))?;
    } else {
        for path in &request.paths {
            let clean: std::path::PathBuf = path
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            index
                .add_path(&clean)
                .map_err(|e| ctx.err("stage changes in", &e))?;
        }
    }
    index.write().map_err(|e| ctx.err("stage changes in", &e))?;
    let tree_id = index
        .write_tree()
        .map_err(|e| ctx.err("write tree in", &e))?;
    let parent = repo
        .find_commit(parent)
        .map_err(|e| ctx.err("read commit of", &e))?;
    if parent.tree_id() == tree_id {
        return Ok(None);
    }
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| ctx.err("write tree in", &e))?;
    let signature = Signature::now(&request.author.name, &request.author.email)
        .map_err(|e| ctx.err("sign commit for", &e))?;
    let oid = repo
        .commit(
            None,
            &signature,
            &signature,
            &request.message,
            &tree,
            &[&parent],
        )
        .map_err(|e| ctx.err("commit in", &e))?;
    repo.set_head_detached(oid)
        .map_err(|e| ctx.err("commit in", &e))?;
    Ok(Some(oid))
}

/// Pushes `refspecs`; `Ok(Some(why))` when the remote (or libgit2, for a non-fast-forward)
/// refused an update, so the caller can start over.
fn push(
    repo: &Repository,
    ctx: &Ctx<'_>,
    refspecs: &[String],
    push_options: &[String],
) -> Result<Option<String>, GitError> {
    let mut remote = repo
        .remote_anonymous(ctx.url)
        .map_err(|e| ctx.err("open remote", &e))?;
    let rejection = std::cell::RefCell::new(None::<String>);
    let mut callbacks = ctx.callbacks();
    callbacks.push_update_reference(|reference, status| {
        if let Some(status) = status {
            *rejection.borrow_mut() = Some(format!("{reference}: {status}"));
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(callbacks);
    let header = ctx.bearer_header();
    if let Some(h) = &header {
        opts.custom_headers(&[h.as_str()]);
    }
    if let Some(proxy) = ctx.proxy_options() {
        opts.proxy_options(proxy);
    }
    let push_options: Vec<&str> = push_options.iter().map(String::as_str).collect();
    if !push_options.is_empty() {
        opts.remote_push_options(&push_options);
    }
    let result = remote.push(refspecs, Some(&mut opts));
    drop(opts);
    match result {
        Ok(()) => Ok(rejection.into_inner()),
        Err(e) if e.code() == git2::ErrorCode::NotFastForward => Ok(Some(e.message().into())),
        Err(e) => Err(ctx.err("push to", &e)),
    }
}
