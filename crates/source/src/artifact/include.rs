//! GitRepository `spec.include`: copy a path of another source's artifact into this one.

use std::path::{Path, PathBuf};

use super::extract::{check_no_symlink_on_path, safe_relative};

/// An include could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    /// `fromPath` or `toPath` is absolute or climbs out with `..`.
    #[error("include {field} {value:?} must be a relative path inside the artifact")]
    UnsafePath {
        /// `fromPath` or `toPath`.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// `fromPath` does not exist in the included artifact.
    #[error("include fromPath {0:?} does not exist in the included artifact")]
    MissingFromPath(String),
    /// `toPath` goes through a symlink of the checkout.
    #[error("include toPath {0:?} goes through a symlink; choose another toPath")]
    ThroughSymlink(String),
    /// Copying failed.
    #[error("include: copying {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Copies `from_path` (a directory or file; empty: everything) of the extracted artifact
/// at `src_root` to `to_path` under `dest_root`, replacing what was there, as Flux does for
/// `spec.include`. Symlinks and special files are not copied. Returns the files copied.
///
/// # Errors
/// [`IncludeError`] for unsafe or missing paths and I/O failures.
pub fn copy_include(
    src_root: &Path,
    from_path: &str,
    dest_root: &Path,
    to_path: &str,
) -> Result<usize, IncludeError> {
    let from = match safe_relative(from_path) {
        Ok(rel) => rel,
        Err(_) => {
            return Err(IncludeError::UnsafePath {
                field: "fromPath",
                value: from_path.into(),
            });
        }
    };
    let to = match safe_relative(to_path) {
        Ok(Some(rel)) => rel,
        _ => {
            return Err(IncludeError::UnsafePath {
                field: "toPath",
                value: to_path.into(),
            });
        }
    };
    let src = match &from {
        Some(rel) => src_root.join(rel),
        None => src_root.to_path_buf(),
    };
    let src_meta = std::fs::symlink_metadata(&src)
        .map_err(|_| IncludeError::MissingFromPath(from_path.into()))?;
    if check_no_symlink_on_path(dest_root, &to.join("x"), to_path).is_err() {
        return Err(IncludeError::ThroughSymlink(to_path.into()));
    }
    let dest = dest_root.join(&to);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IncludeError::Io { path, source }
    };
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dest).map_err(io(&dest))?,
        Ok(_) => std::fs::remove_file(&dest).map_err(io(&dest))?,
        Err(_) => {}
    }
    if src_meta.is_file() {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&src, &dest).map_err(io(&src))?;
        return Ok(1);
    }
    copy_tree(&src, &dest)
}

fn copy_tree(src: &Path, dest: &Path) -> Result<usize, IncludeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IncludeError::Io { path, source }
    };
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let mut n = 0;
    for entry in std::fs::read_dir(src).map_err(io(src))? {
        let entry = entry.map_err(io(src))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let target = dest.join(entry.file_name());
        if meta.is_dir() {
            n += copy_tree(&path, &target)?;
        } else if meta.is_file() {
            std::fs::copy(&path, &target).map_err(io(&path))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, body: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }

    #[test]
    fn copies_from_path_to_path_replacing_old_content() {
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        write(src.path(), "deploy/a.yaml", "a");
        write(src.path(), "deploy/sub/b.yaml", "b");
        write(src.path(), "other.yaml", "o");
        write(dest.path(), "vendor/x/stale.yaml", "old");
        let n = copy_include(src.path(), "deploy", dest.path(), "vendor/x").expect("copy");
        assert_eq!(n, 2);
        assert!(dest.path().join("vendor/x/a.yaml").exists());
        assert!(dest.path().join("vendor/x/sub/b.yaml").exists());
        assert!(!dest.path().join("vendor/x/stale.yaml").exists());
        assert!(!dest.path().join("vendor/x/other.yaml").exists());
        let n = copy_include(src.path(), "", dest.path(), "all").expect("copy everything");
        assert_eq!(n, 3);
    }

    #[test]
    fn unsafe_or_missing_paths_are_refused() {
        let src = tempfile::tempdir().expect("tempdir");
        let dest = tempfile::tempdir().expect("tempdir");
        write(src.path(), "a.yaml", "a");
        assert!(matches!(
            copy_include(src.path(), "../x", dest.path(), "v"),
            Err(IncludeError::UnsafePath {
                field: "fromPath",
                ..
            })
        ));
        assert!(matches!(
            copy_include(src.path(), "", dest.path(), "/etc"),
            Err(IncludeError::UnsafePath {
                field: "toPath",
                ..
            })
        ));
        assert!(matches!(
            copy_include(src.path(), "", dest.path(), ".."),
            Err(IncludeError::UnsafePath {
                field: "toPath",
                ..
            })
        ));
        assert!(matches!(
            copy_include(src.path(), "nope", dest.path(), "v"),
            Err(IncludeError::MissingFromPath(_))
        ));
        std::os::unix::fs::symlink("/tmp", dest.path().join("link")).expect("symlink");
        assert!(matches!(
            copy_include(src.path(), "", dest.path(), "link/x"),
            Err(IncludeError::ThroughSymlink(_))
        ));
    }
}
