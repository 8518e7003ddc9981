//! The registry's directory. Every path is built from a validated repository name, tag or
//! digest hex ([`crate::names`]); every write lands in a temp file first and is renamed into
//! place, so a crash never leaves a partial blob under its digest.
//!
//! ```text
//! blobs/<alg>/<hex>                               content, shared by all repositories
//! uploads/<uuid>                                  upload sessions' data
//! tmp/                                            atomic writes in progress
//! repositories/<name>/_layers/<alg>/<hex>         the repository holds this blob (empty)
//! repositories/<name>/_manifests/<alg>/<hex>      ... this manifest (its media type)
//! repositories/<name>/_tags/<tag>                 the tag's manifest digest
//! repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>
//!                                                 a referrer's descriptor (JSON)
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::names::{Digest, Hasher, Reference};

/// The registry's files under one root.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

/// A manifest read back: its digest, media type and bytes.
pub struct Manifest {
    /// Its digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// Its bytes, as pushed.
    pub bytes: Vec<u8>,
}

fn not_found_is_none<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn removed(result: std::io::Result<()>) -> std::io::Result<bool> {
    not_found_is_none(result).map(|r| r.is_some())
}

impl Store {
    /// Opens (creates) the store at `root`; removes what unfinished writes and uploads of a
    /// previous run left (their sessions lived in memory).
    pub fn open(root: &Path) -> std::io::Result<Store> {
        for dir in ["tmp", "uploads"] {
            let path = root.join(dir);
            if path.exists() {
                std::fs::remove_dir_all(&path)?;
            }
            std::fs::create_dir_all(&path)?;
        }
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("repositories"))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    fn repo(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn layer_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo(name)
            .join("_layers")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn manifest_link(&self, name: &str, digest: &Digest) -> PathBuf {
        self.repo(name)
            .join("_manifests")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    fn tag_path(&self, name: &str, tag: &str) -> PathBuf {
        self.repo(name).join("_tags").join(tag)
    }

    fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo(name)
            .join("_referrers")
            .join(subject.algorithm().name())
            .join(subject.hex())
    }

    /// The path of a new upload session's data.
    pub fn upload_path(&self, id: &uuid::Uuid) -> PathBuf {
        self.root.join("uploads").join(id.to_string())
    }

    /// Writes `bytes` to `path` through a temp file and a rename.
    async fn write_atomic(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        // On disk before it has its name: a power loss must not leave a short file there.
        file.sync_all().await?;
        drop(file);
        self.rename_into(&tmp, path).await
    }

    async fn rename_into(&self, tmp: &Path, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let result = tokio::fs::rename(tmp, path).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(tmp).await;
        }
        result
    }

    /// Whether the repository exists (holds a blob or a manifest).
    pub async fn repository_exists(&self, name: &str) -> bool {
        let repo = self.repo(name);
        tokio::fs::try_exists(repo.join("_layers"))
            .await
            .unwrap_or(false)
            || tokio::fs::try_exists(repo.join("_manifests"))
                .await
                .unwrap_or(false)
    }

    /// The size of the blob when `name` holds it.
    pub async fn blob_size(&self, name: &str, digest: &Digest) -> std::io::Result<Option<u64>> {
        if !tokio::fs::try_exists(self.layer_link(name, digest)).await? {
            return Ok(None);
        }
        let meta = not_found_is_none(tokio::fs::metadata(self.blob_path(digest)).await)?;
        Ok(meta.map(|m| m.len()))
    }

    /// Opens the blob's content (after [`Store::blob_size`] found it).
    pub async fn open_blob(&self, digest: &Digest) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.blob_path(digest)).await
    }

    /// Whether the store holds the blob in any repository.
    pub async fn blob_stored(&self, digest: &Digest) -> bool {
        tokio::fs::try_exists(self.blob_path(digest))
            .await
            .unwrap_or(false)
    }

    /// Records that `name` holds the (stored) blob.
    pub async fn link_blob(&self, name: &str, digest: &Digest) -> std::io::Result<()> {
        self.write_atomic(&self.layer_link(name, digest), b"").await
    }

    /// Removes the blob from `name`; false when it did not hold it. The content stays for the
    /// other repositories that hold it.
    pub async fn unlink_blob(&self, name: &str, digest: &Digest) -> std::io::Result<bool> {
        removed(tokio::fs::remove_file(self.layer_link(name, digest)).await)
    }

    /// Hashes the finished upload at `data` and, when it has `expected` digest, moves it under
    /// that digest and links it to `name`. `Ok(false)` on a mismatch (the data is removed).
    pub async fn commit_upload(
        &self,
        data: &Path,
        expected: &Digest,
        name: &str,
    ) -> std::io::Result<bool> {
        let mut hasher = Hasher::new(expected.algorithm());
        let mut file = tokio::fs::File::open(data).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = file.read(&mut buf).await?;
            if read == 0 {
                break;
            }
            hasher.update(&buf[..read]);
        }
        file.sync_all().await?;
        drop(file);
        if hasher.finish() != *expected {
            let _ = tokio::fs::remove_file(data).await;
            return Ok(false);
        }
        let target = self.blob_path(expected);
        if tokio::fs::try_exists(&target).await? {
            tokio::fs::remove_file(data).await?;
        } else {
            self.rename_into(data, &target).await?;
        }
        self.link_blob(name, expected).await?;
        Ok(true)
    }

    /// Stores a manifest in `name` under `digest` (the caller verified it), tags it with each
    /// of `tags`, and records it as a referrer of `subject` (with `descriptor`).
    pub async fn put_manifest(
        &self,
        name: &str,
        manifest: &Manifest,
        tags: &[String],
        subject: Option<(&Digest, &Value)>,
    ) -> std::io::Result<()> {
        let digest = &manifest.digest;
        let blob = self.blob_path(digest);
        if !tokio::fs::try_exists(&blob).await? {
            self.write_atomic(&blob, &manifest.bytes).await?;
        }
        if let Some((subject, descriptor)) = subject {
            let entry = self.referrers_dir(name, subject).join(format!(
                "{}-{}",
                digest.algorithm().name(),
                digest.hex()
            ));
            self.write_atomic(&entry, descriptor.to_string().as_bytes())
                .await?;
        }
        self.write_atomic(
            &self.manifest_link(name, digest),
            manifest.media_type.as_bytes(),
        )
        .await?;
        for tag in tags {
            self.write_atomic(&self.tag_path(name, tag), digest.to_string().as_bytes())
                .await?;
        }
        Ok(())
    }

    /// The digest a tag points at.
    async fn resolve_tag(&self, name: &str, tag: &str) -> std::io::Result<Option<Digest>> {
        let text = not_found_is_none(tokio::fs::read_to_string(self.tag_path(name, tag)).await)?;
        Ok(text.and_then(|t| Digest::parse(t.trim())))
    }

    /// The manifest `reference` names in `name`.
    pub async fn manifest(
        &self,
        name: &str,
        reference: &Reference,
    ) -> std::io::Result<Option<Manifest>> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(tag) => match self.resolve_tag(name, tag).await? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        let link = self.manifest_link(name, &digest);
        let Some(media_type) = not_found_is_none(tokio::fs::read_to_string(link).await)? else {
            return Ok(None);
        };
        let Some(bytes) = not_found_is_none(tokio::fs::read(self.blob_path(&digest)).await)? else {
            return Ok(None);
        };
        Ok(Some(Manifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// Deletes a manifest from `name`, with the tags pointing at it and its referrer entry;
    /// false when `name` does not hold it.
    pub async fn delete_manifest(&self, name: &str, digest: &Digest) -> std::io::Result<bool> {
        let Some(manifest) = self
            .manifest(name, &Reference::Digest(digest.clone()))
            .await?
        else {
            return Ok(false);
        };
        if let Some(subject) = subject_of(&manifest.bytes) {
            let entry = self.referrers_dir(name, &subject).join(format!(
                "{}-{}",
                digest.algorithm().name(),
                digest.hex()
            ));
            removed(tokio::fs::remove_file(entry).await)?;
        }
        for tag in self.tags(name).await?.unwrap_or_default() {
            if self.resolve_tag(name, &tag).await?.as_ref() == Some(digest) {
                removed(tokio::fs::remove_file(self.tag_path(name, &tag)).await)?;
            }
        }
        removed(tokio::fs::remove_file(self.manifest_link(name, digest)).await)
    }

    /// Deletes a tag (not its manifest); false when there is no such tag.
    pub async fn delete_tag(&self, name: &str, tag: &str) -> std::io::Result<bool> {
        removed(tokio::fs::remove_file(self.tag_path(name, tag)).await)
    }

    /// The repository's tags, sorted; `None` when the repository does not exist.
    pub async fn tags(&self, name: &str) -> std::io::Result<Option<Vec<String>>> {
        if !self.repository_exists(name).await {
            return Ok(None);
        }
        let mut tags = Vec::new();
        if let Some(mut dir) =
            not_found_is_none(tokio::fs::read_dir(self.repo(name).join("_tags")).await)?
        {
            while let Some(entry) = dir.next_entry().await? {
                if let Ok(tag) = entry.file_name().into_string() {
                    tags.push(tag);
                }
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// The descriptors of the manifests in `name` whose subject is `subject`, at most `limit`.
    pub async fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        limit: usize,
    ) -> std::io::Result<Vec<Value>> {
        let mut out = Vec::new();
        let Some(mut dir) =
            not_found_is_none(tokio::fs::read_dir(self.referrers_dir(name, subject)).await)?
        else {
            return Ok(out);
        };
        while let Some(entry) = dir.next_entry().await? {
            if out.len() >= limit {
                break;
            }
            let bytes = tokio::fs::read(entry.path()).await?;
            if let Ok(descriptor) = serde_json::from_slice::<Value>(&bytes) {
                out.push(descriptor);
            }
        }
        out.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        Ok(out)
    }
}

/// The `subject` digest of a manifest's JSON, when it has a valid one.
pub fn subject_of(bytes: &[u8]) -> Option<Digest> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    Digest::parse(value.get("subject")?.get("digest")?.as_str()?)
}
