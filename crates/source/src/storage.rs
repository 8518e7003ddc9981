//! Artifact storage on disk and its HTTP file server.
//!
//! Layout as Flux's source-controller: `<root>/<kind>/<namespace>/<name>/<file>.tar.gz`, where
//! `kind` is the lower-case object kind (`gitrepository`, `ocirepository`, ...) and `file`
//! is the hash part of the revision (`main@sha1:<hash>` -> `<hash>`), so the URL changes
//! whenever the revision does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::artifact::{Artifact, IgnoreRules, PackError, pack_dir};
use crate::digest::Sha256Writer;

/// Flux's default number of artifacts kept per object (`--artifact-retention-records`).
pub const DEFAULT_RETENTION: usize = 2;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Packing the source directory failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// A file operation failed.
    #[error("artifact storage {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A kind, namespace or name would escape the storage root.
    #[error(
        "invalid {what} {value:?} for an artifact path: use a Kubernetes name (lower-case letters, digits, '-', '.')"
    )]
    InvalidName {
        /// Which part.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// A stored file does not have the digest its record says.
    #[error(
        "artifact {path} has digest {actual}, expected {expected}; it was modified or truncated"
    )]
    DigestMismatch {
        /// The artifact path.
        path: String,
        /// The digest recorded.
        expected: String,
        /// The digest found.
        actual: String,
    },
}

/// Identifies the object that owns artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    /// The object kind, e.g. `GitRepository` (stored lower-cased).
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectKey {
    /// A key for `kind` `namespace`/`name`.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectKey {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn rel_dir(&self) -> Result<String, StorageError> {
        for (what, value) in [
            ("kind", &self.kind),
            ("namespace", &self.namespace),
            ("name", &self.name),
        ] {
            let ok = !value.is_empty()
                && value != "."
                && value != ".."
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !ok {
                return Err(StorageError::InvalidName {
                    what,
                    value: value.clone(),
                });
            }
        }
        Ok(format!(
            "{}/{}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace,
            self.name
        ))
    }
}

/// The file name for a revision: its hash part (after `@sha1:`/`@sha256:` or a bare
/// `sha256:`), or the sha256 of the whole revision when it has none.
pub fn artifact_file_name(revision: &str) -> String {
    let tail = revision.rsplit('@').next().unwrap_or(revision);
    let hash = tail.split_once(':').map(|(_, h)| h).unwrap_or(tail);
    if !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{hash}.tar.gz")
    } else {
        let digest = crate::sha256_digest(revision.as_bytes());
        format!("{}.tar.gz", &digest["sha256:".len()..])
    }
}

/// Artifacts on disk under `root`, advertised at `base_url`
/// (e.g. `http://source-controller.flux-system.svc.cluster.local.`).
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    base_url: String,
    retention: usize,
}

impl Storage {
    /// Storage under `root` (created when missing), keeping [`DEFAULT_RETENTION`] artifacts.
    ///
    /// # Errors
    /// [`StorageError::Io`] when `root` cannot be created.
    pub fn new(root: impl Into<PathBuf>, base_url: &str) -> Result<Storage, StorageError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(Storage {
            root,
            base_url: base_url.trim_end_matches('/').to_string(),
            retention: DEFAULT_RETENTION,
        })
    }

    /// Keeps the newest `keep` artifacts per object (at least 1) when collecting garbage.
    #[must_use]
    pub fn with_retention(mut self, keep: usize) -> Self {
        self.retention = keep.max(1);
        self
    }

    /// The storage root on disk.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The URL an artifact at `path` (relative to the root) is served at, from this storage's
    /// advertised address: sources recompute it on every reconcile, so a moved or restarted
    /// source controller never leaves a stale URL in a status.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url)
    }

    /// The URL of the artifact stored at `path` as this storage serves it now (see
    /// [`Storage::url_of`]), or `None` when its file is gone.
    pub fn stored_url(&self, path: &str) -> Option<String> {
        self.root.join(path).is_file().then(|| self.url_of(path))
    }

    /// Absolute path of a stored artifact.
    pub fn local_path(&self, artifact: &Artifact) -> PathBuf {
        self.root.join(&artifact.path)
    }

    /// Packs `dir` with `rules` and stores it for `key` at `revision`, then collects garbage.
    ///
    /// Guarantees: the file appears atomically (written to a temporary name, renamed), so
    /// the server never serves a partial artifact; the artifact just stored is never
    /// collected.
    ///
    /// # Errors
    /// [`StorageError`] for invalid names, packing or file errors.
    pub fn store_dir(
        &self,
        key: &ObjectKey,
        revision: &str,
        dir: &Path,
        rules: &IgnoreRules,
    ) -> Result<Artifact, StorageError> {
        self.store_with(key, revision, |file| {
            let packed = pack_dir(dir, rules, file)?;
            Ok((packed.digest, packed.size))
        })
    }

    /// Stores an already packed tarball (e.g. an OCI layer) for `key` at `revision`.
    ///
    /// # Errors
    /// As [`Storage::store_dir`].
    pub fn store_bytes(
        &self,
        key: &ObjectKey,
        revision: &str,
        bytes: &[u8],
    ) -> Result<Artifact, StorageError> {
        self.store_with(key, revision, |file| {
            let mut w = Sha256Writer::new(file);
            w.write_all(bytes).map_err(|source| PackError::Io {
                path: PathBuf::from("<artifact>"),
                source,
            })?;
            let (_, digest, size) = w.finish();
            Ok((digest, size))
        })
    }

    fn store_with(
        &self,
        key: &ObjectKey,
        revision: &str,
        write: impl FnOnce(&mut std::fs::File) -> Result<(String, u64), PackError>,
    ) -> Result<Artifact, StorageError> {
        let rel_dir = key.rel_dir()?;
        let dir = self.root.join(&rel_dir);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let file_name = artifact_file_name(revision);
        let mut tmp = tempfile::Builder::new()
            .prefix(".incoming-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io_err(&dir))?;
        let (digest, size) = {
            let r = write(tmp.as_file_mut())?;
            tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
            r
        };
        let dest = dir.join(&file_name);
        tmp.persist(&dest).map_err(|e| StorageError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        let path = format!("{rel_dir}/{file_name}");
        let artifact = Artifact {
            url: self.url_of(&path),
            path,
            revision: revision.to_string(),
            digest,
            size,
            last_update_time: jiff::Timestamp::now(),
            metadata: BTreeMap::new(),
        };
        self.garbage_collect(key, &artifact)?;
        Ok(artifact)
    }

    /// Deletes all but the newest `retention` artifacts of `key`, never `current`; returns
    /// the paths removed.
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory cannot be read or a file not removed.
    pub fn garbage_collect(
        &self,
        key: &ObjectKey,
        current: &Artifact,
    ) -> Result<Vec<PathBuf>, StorageError> {
        let dir = self.root.join(key.rel_dir()?);
        let current = self.local_path(current);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only artifacts count; in-flight `.incoming-*.tmp` files belong to a writer.
            if name.starts_with('.') || !name.ends_with(".tar.gz") {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io_err(&path))?;
            files.push((modified, path));
        }
        // Newest first; the current artifact always counts as the newest.
        files.sort_by_key(|f| std::cmp::Reverse((f.1 == current, f.0)));
        let mut removed = Vec::new();
        for (_, path) in files.into_iter().skip(self.retention) {
            if path == current {
                continue;
            }
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            removed.push(path);
        }
        Ok(removed)
    }

    /// Removes every artifact of `key` (the object was deleted).
    ///
    /// # Errors
    /// [`StorageError::Io`] when the directory exists but cannot be removed.
    pub fn remove_all(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let dir = self.root.join(key.rel_dir()?);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Recomputes the digest of a stored artifact and compares it with the record.
    ///
    /// # Errors
    /// [`StorageError::DigestMismatch`] or [`StorageError::Io`].
    pub fn verify(&self, artifact: &Artifact) -> Result<(), StorageError> {
        let path = self.local_path(artifact);
        let mut file = std::fs::File::open(&path).map_err(io_err(&path))?;
        let mut w = Sha256Writer::new(std::io::sink());
        std::io::copy(&mut file, &mut w).map_err(io_err(&path))?;
        let (_, actual, _) = w.finish();
        if actual != artifact.digest {
            return Err(StorageError::DigestMismatch {
                path: artifact.path.clone(),
                expected: artifact.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// An axum router serving the storage root read-only (`GET /<artifact.path>`); path
    /// traversal is refused by `tower_http::services::ServeDir`.
    pub fn router(&self) -> axum::Router {
        axum::Router::new().fallback_service(tower_http::services::ServeDir::new(&self.root))
    }

    /// Serves [`Storage::router`] on `listener` until the task is dropped.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }
}

/// Downloading an artifact as a consumer failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP request failed or answered an error status.
    #[error("GET {url}: {message}; the source may not be ready yet, retry later")]
    Http {
        /// The artifact URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The body is larger than allowed.
    #[error(
        "artifact {url} is larger than {max} bytes; raise --artifact-max-size if this is expected"
    )]
    TooLarge {
        /// The artifact URL.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The body does not have the digest of `status.artifact`.
    #[error(
        "artifact {url} has digest {actual}, expected {expected}; it changed or was corrupted in transit, retry"
    )]
    DigestMismatch {
        /// The artifact URL.
        url: String,
        /// From the source's status.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The tarball was refused or could not be unpacked.
    #[error(transparent)]
    Extract(#[from] crate::artifact::ExtractError),
}

/// Consumer side (Kustomization, HelmRelease): downloads the artifact at `url`, checks its
/// `sha256:<hex>` digest against `expected_digest` (from the source's `status.artifact`),
/// and safely extracts it into `dest`.
///
/// Guarantees: nothing is extracted unless the digest matches; the download stops once it
/// exceeds `options.max_size` bytes.
///
/// # Errors
/// [`FetchError`].
pub async fn fetch_artifact(
    client: &reqwest::Client,
    url: &str,
    expected_digest: &str,
    dest: &Path,
    options: &crate::artifact::ExtractOptions,
) -> Result<crate::artifact::ExtractSummary, FetchError> {
    let http = |message: String| FetchError::Http {
        url: url.to_string(),
        message,
    };
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| http(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(http(format!("HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| http(e.without_url().to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > options.max_size {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                max: options.max_size,
            });
        }
    }
    let actual = crate::sha256_digest(&body);
    if actual != expected_digest {
        return Err(FetchError::DigestMismatch {
            url: url.to_string(),
            expected: expected_digest.to_string(),
            actual,
        });
    }
    let dest = dest.to_path_buf();
    let options = options.clone();
    tokio::task::spawn_blocking(move || crate::artifact::extract_tar_gz(&body[..], &dest, &options))
        .await
        .map_err(|e| http(format!("extraction task failed: {e}")))?
        .map_err(FetchError::from)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_is_the_hash_part_of_the_revision() {
        assert_eq!(artifact_file_name("main@sha1:abc123"), "abc123.tar.gz");
        assert_eq!(artifact_file_name("v1.0.0@sha256:ff00"), "ff00.tar.gz");
        assert_eq!(artifact_file_name("sha256:ff00"), "ff00.tar.gz");
        let other = artifact_file_name("not a hash/../x");
        assert!(
            other.ends_with(".tar.gz") && !other.contains('/'),
            "{other}"
        );
    }

    #[test]
    fn names_that_would_escape_the_root_are_refused() {
        let key = ObjectKey::new("GitRepository", "..", "x");
        assert!(matches!(
            key.rel_dir(),
            Err(StorageError::InvalidName {
                what: "namespace",
                ..
            })
        ));
        let key = ObjectKey::new("GitRepository", "ns", "a/b");
        assert!(key.rel_dir().is_err());
    }

    #[test]
    fn keeps_the_newest_n_and_never_the_current() {
        let root = tempfile::tempdir().expect("tempdir");
        let storage = Storage::new(root.path(), "http://127.0.0.1:1")
            .expect("storage")
            .with_retention(2);
        let key = ObjectKey::new("GitRepository", "default", "app");
        let mut stored = Vec::new();
        for (i, rev) in ["main@sha1:aa", "main@sha1:bb", "main@sha1:cc"]
            .into_iter()
            .enumerate()
        {
            let a = storage
                .store_bytes(&key, rev, format!("payload {i}").as_bytes())
                .expect("store");
            // Distinct mtimes even on coarse file systems.
            let f = std::fs::File::options()
                .write(true)
                .open(storage.local_path(&a))
                .expect("open");
            f.set_modified(
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64),
            )
            .expect("mtime");
            stored.push(a);
        }
        storage.garbage_collect(&key, &stored[2]).expect("gc");
        assert!(!storage.local_path(&stored[0]).exists());
        assert!(storage.local_path(&stored[1]).exists());
        assert!(storage.local_path(&stored[2]).exists());
        assert_eq!(
            stored[2].path, "gitrepository/default/app/cc.tar.gz",
            "layout <kind>/<ns>/<name>/<hash>.tar.gz"
        );
        storage.verify(&stored[2]).expect("digest matches");
        std::fs::write(storage.local_path(&stored[2]), "tampered").expect("write");
        assert!(matches!(
            storage.verify(&stored[2]),
            Err(StorageError::DigestMismatch { .. })
        ));
    }
}
