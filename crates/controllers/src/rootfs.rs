//! The file system of untrusted content: an extracted artifact or a Git checkout, and nothing
//! outside it.
//!
//! Every read of such content (the kustomize build, the overlay generator's walk and the
//! kustomization file it writes, HelmChart values files and `Chart.yaml`, the image update
//! automation's walk and rewrite of a checkout) goes through [`RootedFs`]. It never follows a
//! symlink: each component of a path is checked with `lstat` from the root down, and `..`
//! may not climb above the root. Flux drops symlinks when it packs and unpacks artifacts;
//! a link found here can only be hostile, so a path through one is refused, whether it
//! points inside the root or out of it.

use std::ffi::OsString;
use std::fs::{FileType, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use ferroflux_kustomize::fs::FileSystem;

/// The disk, confined to `root`, never following symlinks.
pub struct RootedFs {
    /// `root` as given (made absolute).
    given: PathBuf,
    /// `root` with symlinks resolved; the root itself is trusted (a temp dir we made).
    canonical: PathBuf,
}

/// A path checked by [`RootedFs::resolve`].
struct Resolved {
    /// Absolute, under the canonical root, free of `.`, `..` and symlinks.
    path: PathBuf,
    /// Relative to the root, for messages that must not carry temp paths.
    rel: PathBuf,
    /// `lstat` of the last component.
    meta: Metadata,
}

fn denied(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, message)
}

impl RootedFs {
    /// Confines reads to `root`, which must exist.
    ///
    /// # Errors
    /// When `root` cannot be resolved.
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(RootedFs {
            given: std::path::absolute(root)?,
            canonical: std::fs::canonicalize(root)?,
        })
    }

    /// Walks `path` component by component from the root, refusing symlinks and `..`
    /// above the root.
    fn resolve(&self, path: &Path) -> io::Result<Resolved> {
        let rel = if path.is_relative() {
            path
        } else if let Ok(rel) = path.strip_prefix(&self.canonical) {
            rel
        } else if let Ok(rel) = path.strip_prefix(&self.given) {
            rel
        } else {
            return Err(denied(format!(
                "path {} is outside the source artifact",
                path.display()
            )));
        };
        let mut clean = PathBuf::new();
        for component in rel.components() {
            match component {
                Component::Normal(part) => {
                    clean.push(part);
                    let meta = std::fs::symlink_metadata(self.canonical.join(&clean))?;
                    if meta.file_type().is_symlink() {
                        return Err(denied(format!(
                            "path {} goes through the symlink {}; symlinks in artifacts are not followed",
                            rel.display(),
                            clean.display()
                        )));
                    }
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    if !clean.pop() {
                        return Err(denied(format!(
                            "path {} is outside the source artifact",
                            rel.display()
                        )));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(denied(format!(
                        "path {} is outside the source artifact",
                        rel.display()
                    )));
                }
            }
        }
        let path = self.canonical.join(&clean);
        let meta = std::fs::symlink_metadata(&path)?;
        Ok(Resolved {
            path,
            rel: clean,
            meta,
        })
    }

    /// Whether `path` is a regular file inside the root.
    pub fn is_file(&self, path: &Path) -> bool {
        self.resolve(path).is_ok_and(|r| r.meta.is_file())
    }

    /// The entries of the directory `dir`, sorted by name, with their own (not followed)
    /// file types.
    ///
    /// # Errors
    /// When `dir` is not a directory inside the root or cannot be listed.
    pub fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, FileType)>> {
        let resolved = self.resolve(dir)?;
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&resolved.path)? {
            let entry = entry?;
            // `DirEntry::file_type` does not follow symlinks.
            entries.push((entry.file_name(), entry.file_type()?));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// Writes `contents` to the file `path`, replacing a regular file but never writing
    /// through a symlink.
    ///
    /// # Errors
    /// When the parent is not a directory inside the root, `path` is a symlink or a
    /// directory, or the write fails.
    pub fn write(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| denied(format!("cannot write {}", path.display())))?;
        let parent = self.resolve(path.parent().unwrap_or(Path::new("")))?;
        if !parent.meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", parent.rel.display()),
            ));
        }
        let target = parent.path.join(name);
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if !meta.is_file() => {
                return Err(denied(format!(
                    "refusing to write {}: it is not a regular file",
                    parent.rel.join(name).display()
                )));
            }
            Ok(_) | Err(_) => {}
        }
        // Replace by rename so that nothing is ever opened through a swapped-in link.
        let temp = parent
            .path
            .join(format!(".{}.ferroflux-tmp", name.to_string_lossy()));
        let _ = std::fs::remove_file(&temp);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut file| io::Write::write_all(&mut file, contents))?;
        std::fs::rename(&temp, &target)
    }
}

impl FileSystem for RootedFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let resolved = self.resolve(path)?;
        if !resolved.meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", resolved.rel.display()),
            ));
        }
        let mut file = std::fs::File::open(&resolved.path)?;
        // The open follows a link swapped in after the checks above; make sure it is
        // still the very file that was checked.
        let opened = file.metadata()?;
        if (opened.dev(), opened.ino()) != (resolved.meta.dev(), resolved.meta.ino()) {
            return Err(denied(format!(
                "{} changed while being read",
                resolved.rel.display()
            )));
        }
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(bytes)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.resolve(path).is_ok_and(|r| r.meta.is_dir())
    }

    fn exists(&self, path: &Path) -> bool {
        self.resolve(path).is_ok()
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        // No symlink is ever followed, so the checked path is the canonical one.
        self.resolve(path).map(|r| r.path)
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

    #[test]
    fn symlinks_are_never_followed_even_when_they_stay_inside() {
        let root = tempfile::tempdir().expect("temp dir");
        let r = root.path();
        std::fs::create_dir(r.join("a")).expect("mkdir");
        std::fs::write(r.join("a/app.yaml"), "kind: x").expect("write");
        std::os::unix::fs::symlink("..", r.join("a/up")).expect("symlink");
        std::os::unix::fs::symlink("app.yaml", r.join("a/alias.yaml")).expect("symlink");
        let fs = RootedFs::new(r).expect("root exists");
        for path in ["a/up/a/app.yaml", "a/alias.yaml"] {
            let err = fs.read(&r.join(path)).expect_err("through a symlink");
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{path}");
            assert!(
                err.to_string()
                    .contains("symlinks in artifacts are not followed"),
                "{err}"
            );
            assert!(
                !err.to_string().contains(&*r.to_string_lossy()),
                "no temp path in {err}"
            );
        }
        assert!(!fs.is_dir(&r.join("a/up")));
        assert!(fs.canonicalize(&r.join("a/up/a")).is_err());
        assert_eq!(
            fs.canonicalize(&r.join("a/./app.yaml")).expect("inside"),
            std::fs::canonicalize(r.join("a/app.yaml")).expect("exists")
        );
    }

    #[test]
    fn writes_never_go_through_a_symlink() {
        let outside = tempfile::tempdir().expect("temp dir");
        let root = tempfile::tempdir().expect("temp dir");
        let r = root.path();
        let victim = outside.path().join("victim");
        std::os::unix::fs::symlink(&victim, r.join("kustomization.yaml")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), r.join("dir")).expect("symlink");
        let fs = RootedFs::new(r).expect("root exists");
        assert!(fs.write(&r.join("kustomization.yaml"), b"x").is_err());
        assert!(fs.write(&r.join("dir/kustomization.yaml"), b"x").is_err());
        assert!(!victim.exists());
        assert!(!outside.path().join("kustomization.yaml").exists());
        fs.write(&r.join("new.yaml"), b"y").expect("plain write");
        assert_eq!(fs.read(&r.join("new.yaml")).expect("read back"), b"y");
    }
}
