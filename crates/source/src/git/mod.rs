//! Git sources with git2: clone/fetch a reference, list remote references.
//!
//! Expected flow (a GitRepository reconcile): build a [`GitRef`] from `spec.ref` and a
//! [`GitAuth`] from the Secret, call [`checkout`] into an empty temporary directory, then
//! pack it with [`crate::storage::Storage::store_dir`] under [`Commit::revision`]. To skip
//! work when nothing changed, [`resolve`] asks the remote (ls-remote) for the commit first.
//!
//! Guarantees: fetches are shallow (depth 1) except for commit references, which need
//! history; no error message contains a password, token or key (they are redacted, as are
//! credentials embedded in URLs).

mod auth;
pub mod push;
mod refs;

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{
    CertificateCheckStatus, CredentialType, FetchOptions, Oid, RemoteCallbacks, Repository,
};

pub use auth::{GitAuth, SshAuth, known_host_matches};
pub use refs::{
    Checkout, DEFAULT_BRANCH, GitRef, RemoteRef, peel_advertised, revision, select_semver_tag,
};

use crate::version::RangeError;

/// Options for [`checkout`].
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// Credentials.
    pub auth: GitAuth,
    /// Fetch only the tip (depth 1) where the reference allows it; on by default.
    pub shallow: bool,
    /// Abort the transfer after this long (Flux's `spec.timeout`, default 60 s). Checked
    /// on transfer progress: a server that accepts the connection and then sends nothing
    /// is only bounded by the caller's own timeout around the blocking call (libgit2's
    /// socket timeouts need `unsafe` global options, which the workspace forbids).
    pub timeout: Option<Duration>,
    /// Check out submodules too, recursively, with the same credentials (Flux's
    /// `spec.recurseSubmodules`). Relative submodule URLs resolve against `url`.
    pub recurse_submodules: bool,
    /// Send git traffic through this proxy (`http://host:port`); `None`: libgit2's
    /// defaults (no proxy).
    pub proxy: Option<String>,
}

impl Default for CloneOptions {
    fn default() -> Self {
        CloneOptions {
            auth: GitAuth::default(),
            shallow: true,
            timeout: Some(Duration::from_secs(60)),
            recurse_submodules: false,
            proxy: None,
        }
    }
}

/// The commit checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full SHA-1 in hex.
    pub hash: String,
    /// Flux's revision, e.g. `main@sha1:<hash>` or `v1.0.0@sha1:<hash>`.
    pub revision: String,
    /// The commit message's first line.
    pub summary: String,
}

/// A git operation failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The remote refused the credentials, or needs some and none were given.
    #[error("authentication to {url} failed: {message}; check the credentials in the secretRef")]
    Auth {
        /// The remote (credentials stripped).
        url: String,
        /// What the transport said (redacted).
        message: String,
    },
    /// The branch, tag, reference or commit does not exist on the remote.
    #[error("{what} not found in {url}; check spec.ref")]
    RefNotFound {
        /// e.g. `branch 'main'`.
        what: String,
        /// The remote.
        url: String,
    },
    /// No tag satisfies the semver range.
    #[error("no tag in {url} matches semver range {range:?}")]
    NoSemverMatch {
        /// The range.
        range: String,
        /// The remote.
        url: String,
    },
    /// The semver range does not parse.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The SSH host key is not in known_hosts.
    #[error(
        "SSH host key of {host} is not in known_hosts; add it (ssh-keyscan) to the secret's known_hosts"
    )]
    UnknownHostKey {
        /// The host.
        host: String,
    },
    /// The transfer took longer than the timeout.
    #[error("fetching {url} timed out after {timeout:?}; raise spec.timeout or check the network")]
    Timeout {
        /// The remote.
        url: String,
        /// The limit.
        timeout: Duration,
    },
    /// Any other git failure.
    #[error("git {action} {url}: {message}")]
    Git {
        /// What was being done.
        action: &'static str,
        /// The remote.
        url: String,
        /// What libgit2 said (redacted).
        message: String,
    },
}

/// Lists the remote's references (`git ls-remote`), annotated tags peeled to commits.
///
/// # Errors
/// [`GitError::Auth`] for refused credentials, [`GitError::Git`] otherwise.
pub fn list_refs(url: &str, options: &CloneOptions) -> Result<Vec<RemoteRef>, GitError> {
    let ctx = Ctx::for_options(url, options);
    let dir = tempdir_for_listing(&ctx)?;
    let repo = Repository::init_bare(dir.path()).map_err(|e| ctx.err("init", &e))?;
    list_with(&repo, &ctx)
}

/// The commit a reference points to on the remote now, without fetching objects; for
/// commit references the commit itself. Use it to skip a clone when the revision is
/// unchanged.
///
/// # Errors
/// As [`checkout`].
pub fn resolve(url: &str, git_ref: &GitRef, options: &CloneOptions) -> Result<String, GitError> {
    let ctx = Ctx::for_options(url, options);
    let refs = |_: &Ctx<'_>| list_refs(url, options);
    let find = |refs: &[RemoteRef], full: &str| {
        refs.iter()
            .find(|r| r.name == full)
            .map(|r| r.commit.clone())
    };
    let (label, commit) = match git_ref.checkout() {
        Checkout::Commit { commit, branch } => return Ok(revision(branch.as_deref(), &commit)),
        Checkout::Branch(b) => {
            let commit = find(&refs(&ctx)?, &format!("refs/heads/{b}"));
            (b, commit)
        }
        Checkout::Tag(t) => {
            let commit = find(&refs(&ctx)?, &format!("refs/tags/{t}"));
            (t, commit)
        }
        Checkout::Name(n) => {
            let commit = find(&refs(&ctx)?, &n);
            (n, commit)
        }
        Checkout::Semver(range) => {
            let all = refs(&ctx)?;
            let tag = select_semver_tag(&all, &range)?.ok_or_else(|| GitError::NoSemverMatch {
                range: range.clone(),
                url: ctx.display_url.clone(),
            })?;
            let commit = find(&all, &format!("refs/tags/{tag}"));
            (tag, commit)
        }
    };
    let commit = commit.ok_or_else(|| GitError::RefNotFound {
        what: format!("reference {label:?}"),
        url: ctx.display_url.clone(),
    })?;
    Ok(revision(Some(&label), &commit))
}

/// Fetches `git_ref` from `url` into `dest` (an empty or missing directory) and checks its
/// commit out (detached HEAD).
///
/// Expected flow: branch/tag/name are fetched with one refspec at depth 1; semver lists the
/// remote's tags, picks the highest match and fetches that tag; a commit is fetched with the
/// history of its branch (or all branches).
///
/// # Errors
/// [`GitError`]: authentication, missing reference, no semver match, timeout, transport.
pub fn checkout(
    url: &str,
    git_ref: &GitRef,
    dest: &Path,
    options: &CloneOptions,
) -> Result<Commit, GitError> {
    let ctx = Ctx::for_options(url, options);
    let repo = Repository::init(dest).map_err(|e| ctx.err("init", &e))?;
    // A named remote lets relative submodule URLs resolve against `url`.
    repo.remote("origin", url)
        .map_err(|e| ctx.err("configure remote", &e))?;
    let (label, oid) = match git_ref.checkout() {
        Checkout::Branch(b) => {
            let local = format!("refs/remotes/origin/{b}");
            fetch(
                &repo,
                &ctx,
                &format!("+refs/heads/{b}:{local}"),
                options.shallow,
            )?;
            let oid =
                peel_ref(&repo, &local).ok_or_else(|| ctx.not_found(format!("branch {b:?}")))?;
            (Some(b), oid)
        }
        Checkout::Tag(t) => {
            let oid = fetch_tag(&repo, &ctx, &t, options.shallow)?;
            (Some(t), oid)
        }
        Checkout::Semver(range) => {
            let refs = list_with(&repo, &ctx)?;
            let tag = select_semver_tag(&refs, &range)?.ok_or_else(|| GitError::NoSemverMatch {
                range: range.clone(),
                url: ctx.display_url.clone(),
            })?;
            let oid = fetch_tag(&repo, &ctx, &tag, options.shallow)?;
            (Some(tag), oid)
        }
        Checkout::Name(name) => {
            let local = "refs/ferroflux/target";
            fetch(&repo, &ctx, &format!("+{name}:{local}"), options.shallow)?;
            let oid = peel_ref(&repo, local)
                .ok_or_else(|| ctx.not_found(format!("reference {name:?}")))?;
            (Some(name), oid)
        }
        Checkout::Commit { commit, branch } => {
            let refspec = match &branch {
                Some(b) => format!("+refs/heads/{b}:refs/remotes/origin/{b}"),
                None => "+refs/heads/*:refs/remotes/origin/*".to_string(),
            };
            fetch(&repo, &ctx, &refspec, false)?;
            let oid = Oid::from_str(&commit)
                .ok()
                .filter(|oid| repo.find_commit(*oid).is_ok())
                .ok_or_else(|| {
                    ctx.not_found(match &branch {
                        Some(b) => format!("commit {commit:?} on branch {b:?}"),
                        None => format!("commit {commit:?}"),
                    })
                })?;
            (branch, oid)
        }
    };
    let commit = repo
        .find_commit(oid)
        .map_err(|e| ctx.err("read commit", &e))?;
    repo.checkout_tree(
        commit.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )
    .map_err(|e| ctx.err("checkout", &e))?;
    repo.set_head_detached(oid)
        .map_err(|e| ctx.err("checkout", &e))?;
    if options.recurse_submodules {
        update_submodules(&repo, &ctx, 0)?;
    }
    let hash = oid.to_string();
    Ok(Commit {
        revision: revision(label.as_deref(), &hash),
        summary: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_string(),
        hash,
    })
}

/// Nested submodules deeper than this are refused (a cycle or a hostile repository).
const MAX_SUBMODULE_DEPTH: usize = 8;

fn update_submodules(repo: &Repository, ctx: &Ctx<'_>, depth: usize) -> Result<(), GitError> {
    if depth > MAX_SUBMODULE_DEPTH {
        return Err(GitError::Git {
            action: "update submodules of",
            url: ctx.display_url.clone(),
            message: format!("submodules nest deeper than {MAX_SUBMODULE_DEPTH} levels"),
        });
    }
    let submodules = repo
        .submodules()
        .map_err(|e| ctx.err("list submodules of", &e))?;
    for mut sm in submodules {
        sm.init(false)
            .map_err(|e| ctx.err("init submodule of", &e))?;
        let mut opts = git2::SubmoduleUpdateOptions::new();
        opts.fetch(ctx.fetch_options(false));
        sm.update(true, Some(&mut opts))
            .map_err(|e| ctx.err("update submodule of", &e))?;
        let sub = sm.open().map_err(|e| ctx.err("open submodule of", &e))?;
        update_submodules(&sub, ctx, depth + 1)?;
    }
    Ok(())
}

fn fetch_tag(repo: &Repository, ctx: &Ctx, tag: &str, shallow: bool) -> Result<Oid, GitError> {
    let local = format!("refs/tags/{tag}");
    fetch(repo, ctx, &format!("+{local}:{local}"), shallow)?;
    peel_ref(repo, &local).ok_or_else(|| ctx.not_found(format!("tag {tag:?}")))
}

fn peel_ref(repo: &Repository, name: &str) -> Option<Oid> {
    let reference = repo.find_reference(name).ok()?;
    Some(reference.peel_to_commit().ok()?.id())
}

/// Per-operation state: the URL, secrets for redaction, and what the callbacks saw.
struct Ctx<'a> {
    url: &'a str,
    display_url: String,
    auth: &'a GitAuth,
    secrets: Vec<String>,
    deadline: Option<(Instant, Duration)>,
    cred_calls: Cell<u32>,
    host_key_rejected: Cell<bool>,
    missing_credentials: Cell<bool>,
    timed_out: Cell<bool>,
    proxy: Option<String>,
}

impl<'a> Ctx<'a> {
    fn new(url: &'a str, auth: &'a GitAuth, timeout: Option<Duration>) -> Self {
        let secrets = auth.secrets();
        Ctx {
            url,
            display_url: crate::redact::redact(url, &secrets),
            auth,
            secrets,
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            cred_calls: Cell::new(0),
            host_key_rejected: Cell::new(false),
            missing_credentials: Cell::new(false),
            timed_out: Cell::new(false),
            proxy: None,
        }
    }

    fn fetch_options(&self, shallow: bool) -> FetchOptions<'_> {
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(self.callbacks());
        opts.download_tags(git2::AutotagOption::None);
        if shallow {
            opts.depth(1);
        }
        if let Some(h) = self.bearer_header() {
            opts.custom_headers(&[h.as_str()]);
        }
        if let Some(proxy) = self.proxy_options() {
            opts.proxy_options(proxy);
        }
        opts
    }

    fn proxy_options(&self) -> Option<git2::ProxyOptions<'_>> {
        self.proxy.as_ref().map(|p| {
            let mut proxy = git2::ProxyOptions::new();
            proxy.url(p);
            proxy
        })
    }

    fn for_options(url: &'a str, options: &'a CloneOptions) -> Self {
        let mut ctx = Ctx::new(url, &options.auth, options.timeout);
        ctx.proxy = options.proxy.clone();
        ctx
    }

    fn not_found(&self, what: String) -> GitError {
        GitError::RefNotFound {
            what,
            url: self.display_url.clone(),
        }
    }

    fn err(&self, action: &'static str, e: &git2::Error) -> GitError {
        let message = crate::redact::redact(e.message(), &self.secrets);
        if self.timed_out.get()
            && let Some((_, timeout)) = self.deadline
        {
            return GitError::Timeout {
                url: self.display_url.clone(),
                timeout,
            };
        }
        if self.host_key_rejected.get() {
            return GitError::UnknownHostKey {
                host: host_and_port(self.url).0,
            };
        }
        if e.code() == git2::ErrorCode::Auth
            || self.cred_calls.get() > 1
            || self.missing_credentials.get()
        {
            return GitError::Auth {
                url: self.display_url.clone(),
                message,
            };
        }
        // libgit2 says "unexpected http status code: 401"; a bare "401" would
        // also match a port in the URL.
        if e.class() == git2::ErrorClass::Http
            && message.to_ascii_lowercase().contains("status code: 401")
        {
            return GitError::Auth {
                url: self.display_url.clone(),
                message,
            };
        }
        GitError::Git {
            action,
            url: self.display_url.clone(),
            message,
        }
    }

    fn callbacks(&self) -> RemoteCallbacks<'_> {
        // Each transfer asks for credentials afresh; only repeats within one count.
        self.cred_calls.set(0);
        let mut cb = RemoteCallbacks::new();
        cb.credentials(|_url, user_from_url, allowed| {
            let n = self.cred_calls.get() + 1;
            self.cred_calls.set(n);
            // libgit2 asks again after a refusal; a second ask means the first was wrong.
            if n > 1 {
                return Err(git2::Error::from_str("the remote rejected the credentials"));
            }
            if allowed.contains(CredentialType::SSH_KEY)
                && let Some(ssh) = &self.auth.ssh
            {
                let user = user_from_url.unwrap_or(&ssh.user);
                return git2::Cred::ssh_key_from_memory(
                    user,
                    None,
                    &ssh.private_key,
                    ssh.passphrase.as_deref(),
                );
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && let Some((user, pass)) = &self.auth.basic
            {
                return git2::Cred::userpass_plaintext(user, pass);
            }
            self.missing_credentials.set(true);
            Err(git2::Error::from_str(
                "the remote requires credentials and none were given",
            ))
        });
        cb.certificate_check(|cert, host| {
            let (Some(hostkey), Some(ssh)) = (cert.as_hostkey(), &self.auth.ssh) else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let (Some(key), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type()) else {
                self.host_key_rejected.set(true);
                return Err(git2::Error::from_str("the server sent no raw host key"));
            };
            let port = host_and_port(self.url).1;
            if known_host_matches(&ssh.known_hosts, host, port, kind.name(), key) {
                Ok(CertificateCheckStatus::CertificateOk)
            } else {
                self.host_key_rejected.set(true);
                Err(git2::Error::from_str("host key not in known_hosts"))
            }
        });
        cb.transfer_progress(|_| self.in_time());
        cb.sideband_progress(|_| self.in_time());
        cb
    }

    fn in_time(&self) -> bool {
        match self.deadline {
            Some((deadline, _)) if Instant::now() > deadline => {
                self.timed_out.set(true);
                false
            }
            _ => true,
        }
    }

    fn bearer_header(&self) -> Option<String> {
        self.auth
            .bearer_token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}"))
    }
}

fn fetch(repo: &Repository, ctx: &Ctx<'_>, refspec: &str, shallow: bool) -> Result<(), GitError> {
    let mut remote = repo
        .remote_anonymous(ctx.url)
        .map_err(|e| ctx.err("open remote", &e))?;
    let mut opts = ctx.fetch_options(shallow);
    remote
        .fetch(&[refspec], Some(&mut opts), None)
        .map_err(|e| ctx.err("fetch", &e))
}

fn list_with(repo: &Repository, ctx: &Ctx<'_>) -> Result<Vec<RemoteRef>, GitError> {
    if ctx.auth.bearer_token.is_some() {
        // libgit2 sends custom headers on fetch only, not on connect: list via a tag fetch.
        fetch(repo, ctx, "+refs/tags/*:refs/ferroflux/tags/*", true)?;
        let mut out = Vec::new();
        let refs = repo
            .references_glob("refs/ferroflux/tags/*")
            .map_err(|e| ctx.err("list tags", &e))?;
        for r in refs.flatten() {
            if let (Ok(name), Ok(commit)) = (r.name(), r.peel_to_commit()) {
                out.push(RemoteRef {
                    name: name.replacen("refs/ferroflux/tags/", "refs/tags/", 1),
                    commit: commit.id().to_string(),
                });
            }
        }
        return Ok(out);
    }
    let mut remote = repo
        .remote_anonymous(ctx.url)
        .map_err(|e| ctx.err("open remote", &e))?;
    let conn = remote
        .connect_auth(
            git2::Direction::Fetch,
            Some(ctx.callbacks()),
            ctx.proxy_options(),
        )
        .map_err(|e| ctx.err("connect to", &e))?;
    let heads: Vec<(String, String)> = conn
        .list()
        .map_err(|e| ctx.err("list references of", &e))?
        .iter()
        .map(|h| (h.name().to_string(), h.oid().to_string()))
        .collect();
    Ok(peel_advertised(&heads))
}

fn tempdir_for_listing(ctx: &Ctx<'_>) -> Result<tempfile::TempDir, GitError> {
    tempfile::Builder::new()
        .prefix("ferroflux-ls-remote-")
        .tempdir()
        .map_err(|e| GitError::Git {
            action: "create a temporary directory for",
            url: ctx.display_url.clone(),
            message: e.to_string(),
        })
}

/// Host and explicit port of `ssh://user@host:port/path`, `user@host:path` or any URL.
fn host_and_port(url: &str) -> (String, Option<u16>) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if url.contains("://") {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (authority.to_string(), None),
        }
    } else {
        // scp-like: host:path
        (
            authority.split(':').next().unwrap_or(authority).to_string(),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_ssh_urls() {
        assert_eq!(
            host_and_port("ssh://git@example.com:2222/org/repo.git"),
            ("example.com".to_string(), Some(2222))
        );
        assert_eq!(
            host_and_port("git@example.com:org/repo.git"),
            ("example.com".to_string(), None)
        );
    }
}
