//! Pure decisions about git references: Flux's precedence, tag selection, revision strings.

use crate::version::{RangeError, parse_range, pick_highest};

/// Flux's default branch when `spec.ref` is empty.
pub const DEFAULT_BRANCH: &str = "master";

/// The `spec.ref` of a GitRepository: any combination may be set; [`GitRef::checkout`] applies
/// Flux's precedence commit > name > semver > tag > branch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitRef {
    /// `branch`.
    pub branch: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
    /// `semver`: a Masterminds range over the repository's tags.
    pub semver: Option<String>,
    /// `name`: a full reference name such as `refs/heads/main` or `refs/pull/1/head`.
    pub name: Option<String>,
    /// `commit`: a full SHA-1; with `branch`, the branch is fetched to find it.
    pub commit: Option<String>,
}

impl GitRef {
    /// A branch reference.
    pub fn branch(name: &str) -> Self {
        GitRef {
            branch: Some(name.into()),
            ..GitRef::default()
        }
    }

    /// A tag reference.
    pub fn tag(name: &str) -> Self {
        GitRef {
            tag: Some(name.into()),
            ..GitRef::default()
        }
    }

    /// A semver range over tags.
    pub fn semver(range: &str) -> Self {
        GitRef {
            semver: Some(range.into()),
            ..GitRef::default()
        }
    }

    /// A commit, optionally looked up on a branch.
    pub fn commit(sha: &str, branch: Option<&str>) -> Self {
        GitRef {
            commit: Some(sha.into()),
            branch: branch.map(str::to_string),
            ..GitRef::default()
        }
    }

    /// Which single strategy Flux uses for this reference.
    pub fn checkout(&self) -> Checkout {
        let set = |o: &Option<String>| o.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(commit) = set(&self.commit) {
            return Checkout::Commit {
                commit,
                branch: set(&self.branch),
            };
        }
        if let Some(name) = set(&self.name) {
            return Checkout::Name(name);
        }
        if let Some(range) = set(&self.semver) {
            return Checkout::Semver(range);
        }
        if let Some(tag) = set(&self.tag) {
            return Checkout::Tag(tag);
        }
        Checkout::Branch(set(&self.branch).unwrap_or_else(|| DEFAULT_BRANCH.to_string()))
    }
}

/// One checkout strategy, the outcome of Flux's precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// A commit, fetched from `branch` when given, else from all branches.
    Commit {
        /// The SHA-1.
        commit: String,
        /// The branch it is on.
        branch: Option<String>,
    },
    /// A full reference name.
    Name(String),
    /// The highest tag satisfying a range.
    Semver(String),
    /// A tag.
    Tag(String),
    /// A branch head.
    Branch(String),
}

/// A reference advertised by the remote: full name and the commit it points to (annotated
/// tags already peeled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// e.g. `refs/tags/v1.0.0`.
    pub name: String,
    /// The commit's SHA-1 in hex.
    pub commit: String,
}

/// Peels an advertisement list (`refs/tags/v1` + `refs/tags/v1^{}`) into one entry per ref
/// pointing at a commit.
pub fn peel_advertised(heads: &[(String, String)]) -> Vec<RemoteRef> {
    let mut out: Vec<RemoteRef> = Vec::new();
    for (name, oid) in heads {
        if let Some(base) = name.strip_suffix("^{}") {
            if let Some(r) = out.iter_mut().find(|r| r.name == base) {
                r.commit = oid.clone();
            }
            continue;
        }
        out.push(RemoteRef {
            name: name.clone(),
            commit: oid.clone(),
        });
    }
    out
}

/// The tag (short name) that a semver range selects among `refs`.
///
/// # Errors
/// [`RangeError`] when the range does not parse. `Ok(None)` when no tag matches.
pub fn select_semver_tag(refs: &[RemoteRef], range: &str) -> Result<Option<String>, RangeError> {
    let constraints = parse_range(range)?;
    let tags = refs
        .iter()
        .filter_map(|r| r.name.strip_prefix("refs/tags/"));
    Ok(pick_highest(tags, &constraints).map(|(t, _)| t.to_string()))
}

/// Flux's revision string for a checkout: `<branch>@sha1:<hash>`, `<tag>@sha1:<hash>`,
/// `<refname>@sha1:<hash>`, or `sha1:<hash>` for a bare commit.
pub fn revision(label: Option<&str>, commit: &str) -> String {
    match label {
        Some(l) if !l.is_empty() => format!("{l}@sha1:{commit}"),
        _ => format!("sha1:{commit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_commit_name_semver_tag_branch() {
        let all = GitRef {
            branch: Some("main".into()),
            tag: Some("v1".into()),
            semver: Some(">=1".into()),
            name: Some("refs/heads/x".into()),
            commit: Some("abc".into()),
        };
        assert_eq!(
            all.checkout(),
            Checkout::Commit {
                commit: "abc".into(),
                branch: Some("main".into())
            }
        );
        let no_commit = GitRef {
            commit: None,
            ..all.clone()
        };
        assert_eq!(no_commit.checkout(), Checkout::Name("refs/heads/x".into()));
        let no_name = GitRef {
            name: None,
            ..no_commit
        };
        assert_eq!(no_name.checkout(), Checkout::Semver(">=1".into()));
        let no_semver = GitRef {
            semver: None,
            ..no_name
        };
        assert_eq!(no_semver.checkout(), Checkout::Tag("v1".into()));
        let no_tag = GitRef {
            tag: None,
            ..no_semver
        };
        assert_eq!(no_tag.checkout(), Checkout::Branch("main".into()));
        assert_eq!(
            GitRef::default().checkout(),
            Checkout::Branch(DEFAULT_BRANCH.into())
        );
    }

    #[test]
    fn annotated_tags_are_peeled_to_their_commit() {
        let heads = vec![
            ("refs/heads/main".to_string(), "c1".to_string()),
            ("refs/tags/v1.0.0".to_string(), "tagobj".to_string()),
            ("refs/tags/v1.0.0^{}".to_string(), "c2".to_string()),
        ];
        let refs = peel_advertised(&heads);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].commit, "c2");
    }

    #[test]
    fn semver_picks_highest_matching_tag_with_v_prefix() {
        let refs: Vec<RemoteRef> = ["v0.9.0", "v1.0.0", "v1.2.0", "v2.0.0-rc.1", "latest"]
            .iter()
            .map(|t| RemoteRef {
                name: format!("refs/tags/{t}"),
                commit: "x".into(),
            })
            .collect();
        assert_eq!(
            select_semver_tag(&refs, ">=1.0.0").expect("valid"),
            Some("v1.2.0".into())
        );
        assert_eq!(select_semver_tag(&refs, ">=3").expect("valid"), None);
    }

    #[test]
    fn revision_strings_follow_flux() {
        assert_eq!(revision(Some("main"), "abc"), "main@sha1:abc");
        assert_eq!(revision(None, "abc"), "sha1:abc");
    }
}
