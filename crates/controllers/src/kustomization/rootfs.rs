//! The file system a Kustomization is built on: the extracted artifact and nothing outside it.
//! Like Flux's secure file system, any path (symlinks resolved) that leaves the artifact root
//! is refused, so a malicious source cannot read the controller's files.

use std::io;
use std::path::{Path, PathBuf};

use ferroflux_kustomize::fs::{DiskFs, FileSystem};

/// The disk, confined to `root`.
pub struct RootedFs {
    root: PathBuf,
}

impl RootedFs {
    /// Confines reads to `root`, which must exist.
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(RootedFs {
            root: std::fs::canonicalize(root)?,
        })
    }

    fn inside(&self, path: &Path) -> io::Result<PathBuf> {
        let real = std::fs::canonicalize(path)?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("path {} is outside the source artifact", path.display()),
            ))
        }
    }
}

impl FileSystem for RootedFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        DiskFs.read(&self.inside(path)?)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.inside(path).is_ok_and(|p| p.is_dir())
    }

    fn exists(&self, path: &Path) -> bool {
        self.inside(path).is_ok()
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.inside(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_links_out() {
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("secret"), "token").expect("write");
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::write(root.path().join("a.yaml"), "kind: x").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
            .expect("symlink");
        let fs = RootedFs::new(root.path()).expect("root exists");
        assert_eq!(
            fs.read(&root.path().join("a.yaml")).expect("inside"),
            b"kind: x"
        );
        let err = fs.read(&root.path().join("link")).expect_err("outside");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(!fs.exists(&root.path().join("link")));
        assert!(!fs.exists(&root.path().join("../")));
        assert!(fs.read(&outside.path().join("secret")).is_err());
    }
}
