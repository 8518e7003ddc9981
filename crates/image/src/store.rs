//! The tag store: the scanned tags of every ImageRepository on disk, where ImagePolicies read
//! them, surviving controller restarts.

use std::io;
use std::path::{Path, PathBuf};

use crate::scan::StoredTags;

/// Scanned tags on disk: one JSON file per ImageRepository, `<dir>/<namespace>/<name>.json`,
/// written atomically (temporary file + rename) so a crash never leaves half a list.
#[derive(Debug, Clone)]
pub struct TagStore {
    dir: PathBuf,
}

impl TagStore {
    /// A store under `dir` (created when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(TagStore { dir })
    }

    fn path(&self, namespace: &str, name: &str) -> PathBuf {
        // Kubernetes names cannot hold `/`, so the layout cannot collide or escape.
        self.dir.join(namespace).join(format!("{name}.json"))
    }

    /// Replaces the tags of `namespace/name`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, namespace: &str, name: &str, tags: &StoredTags) -> io::Result<()> {
        let path = self.path(namespace, name);
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let mut file = tempfile::NamedTempFile::new_in(parent)?;
        serde_json::to_writer(&mut file, tags)?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The tags of `namespace/name`, `None` when never stored.
    ///
    /// # Errors
    /// I/O errors, or a corrupt file (reported as `InvalidData`).
    pub fn load(&self, namespace: &str, name: &str) -> io::Result<Option<StoredTags>> {
        match std::fs::read(self.path(namespace, name)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets `namespace/name`.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn remove(&self, namespace: &str, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(namespace, name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_round_trips_across_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TagStore::new(dir.path().join("tags")).expect("store");
        assert_eq!(store.load("ns", "app").expect("load"), None);
        let tags = StoredTags {
            canonical_image_name: "ghcr.io/org/app".into(),
            tags: vec!["b".into(), "a".into()],
        };
        store.save("ns", "app", &tags).expect("save");
        let reopened = TagStore::new(dir.path().join("tags")).expect("store");
        assert_eq!(reopened.load("ns", "app").expect("load"), Some(tags));
        reopened.remove("ns", "app").expect("remove");
        reopened
            .remove("ns", "app")
            .expect("removing twice is fine");
        assert_eq!(reopened.load("ns", "app").expect("load"), None);
    }

    #[test]
    fn a_corrupt_file_is_invalid_data() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TagStore::new(dir.path()).expect("store");
        std::fs::create_dir_all(dir.path().join("ns")).expect("mkdir");
        std::fs::write(dir.path().join("ns/app.json"), "{half").expect("write");
        let err = store.load("ns", "app").expect_err("corrupt");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
