//! `flux diff artifact`: compare a local tree with an artifact's content.

use std::collections::BTreeMap;
use std::path::Path;

use super::{OciClient, OciError};
use crate::artifact::{ExtractOptions, IgnoreRules, pack_path};
use crate::sha256_digest;

/// How a local tree differs from an artifact (`flux diff artifact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffEntry {
    /// Only in the local tree.
    Added(String),
    /// Only in the artifact.
    Removed(String),
    /// In both, with different content or mode.
    Changed(String),
}

impl OciClient {
    /// Compares the files `path` would be packed into (with `rules`) with the content of the
    /// artifact at `url`; empty when they are the same. Both sides go through the same
    /// extraction, so only paths, contents and executable bits count.
    ///
    /// # Errors
    /// [`OciError`] for pull, pack or extraction failures.
    pub async fn diff(
        &self,
        url: &str,
        path: &Path,
        rules: &IgnoreRules,
    ) -> Result<Vec<DiffEntry>, OciError> {
        let pulled = self.pull(url, None).await?;
        let mut local = Vec::new();
        pack_path(path, rules, &mut local)?;
        let io = |e: std::io::Error| OciError::BadArtifact {
            reference: url.to_string(),
            why: format!("temporary directory for the diff: {e}"),
        };
        let scratch = tempfile::tempdir().map_err(io)?;
        let (remote_dir, local_dir) = (scratch.path().join("remote"), scratch.path().join("local"));
        let options = ExtractOptions::default();
        crate::artifact::extract_tar_gz(&pulled.layer[..], &remote_dir, &options)?;
        crate::artifact::extract_tar_gz(&local[..], &local_dir, &options)?;
        let remote = tree_digests(&remote_dir).map_err(io)?;
        let local = tree_digests(&local_dir).map_err(io)?;
        let mut out = Vec::new();
        for (rel, digest) in &local {
            match remote.get(rel) {
                None => out.push(DiffEntry::Added(rel.clone())),
                Some(d) if d != digest => out.push(DiffEntry::Changed(rel.clone())),
                Some(_) => {}
            }
        }
        out.extend(
            remote
                .keys()
                .filter(|rel| !local.contains_key(*rel))
                .map(|rel| DiffEntry::Removed(rel.clone())),
        );
        Ok(out)
    }
}

/// Relative path -> (sha256 of contents, executable) of every regular file under `root`.
fn tree_digests(root: &Path) -> std::io::Result<BTreeMap<String, (String, bool)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let digest = sha256_digest(&std::fs::read(entry.path())?);
                out.insert(rel, (digest, meta.permissions().mode() & 0o111 != 0));
            }
        }
    }
    Ok(out)
}
