//! The `Setters` update strategy on a checked-out tree: every YAML file under `update.path`
//! whose markers name a known setter is rewritten in place (only the marked scalars change).

use std::path::{Component, Path, PathBuf};

use ferroflux_image::setters::{Change, SetterError, Setters, may_have_markers, rewrite};
use ferroflux_kustomize::fs::FileSystem as _;

use crate::rootfs::RootedFs;

/// Why the update could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// `update.path` leaves the repository or does not exist.
    #[error("spec.update.path {path:?}: {why}")]
    Path {
        /// The path as written.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file, relative to the repository.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file with markers is not valid YAML.
    #[error(transparent)]
    Setter(#[from] SetterError),
}

/// Rewrites the setters under `root/path`; returns the changes, files named relative to
/// `root/path` (as Flux names them), in file order. Symbolic links and `.git` are skipped, so
/// nothing outside the checkout is read or written.
///
/// # Errors
/// [`UpdateError`]; files already rewritten stay rewritten (the checkout is thrown away).
pub fn apply_setters(
    root: &Path,
    path: Option<&str>,
    setters: &Setters,
) -> Result<Vec<Change>, UpdateError> {
    let rel = path.unwrap_or(".").trim();
    let rel_path = Path::new(if rel.is_empty() { "." } else { rel });
    let escapes = rel_path.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    });
    if escapes {
        return Err(UpdateError::Path {
            path: rel.into(),
            why: "must be a relative path inside the repository (no `..`, not absolute)".into(),
        });
    }
    // The checkout is the tenant's content: walk, read and write it without following any
    // symlink, so a link anywhere on the path cannot lead a rewrite out of the repository.
    let fs = RootedFs::new(root).map_err(|source| UpdateError::Io {
        path: ".".into(),
        source,
    })?;
    let mut files = Vec::new();
    if fs.is_dir(rel_path) {
        collect_yaml(&fs, rel_path, &mut files).map_err(|source| UpdateError::Io {
            path: rel.into(),
            source,
        })?;
    } else if fs.is_file(rel_path) {
        files.push(rel_path.to_path_buf());
    } else {
        return Err(UpdateError::Path {
            path: rel.into(),
            why: "does not exist in the checked-out revision".into(),
        });
    }
    files.sort();
    let mut changes = Vec::new();
    for file in files {
        let name = file
            .strip_prefix(rel_path)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| file.file_name().map(Path::new))
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let io = |source| UpdateError::Io {
            path: name.clone(),
            source,
        };
        let Ok(text) = String::from_utf8(fs.read(&file).map_err(io)?) else {
            continue;
        };
        if !may_have_markers(&text) {
            continue;
        }
        let result = rewrite(&name, &text, setters)?;
        if !result.changes.is_empty() {
            fs.write(&file, result.text.as_bytes())
                .map_err(|source| UpdateError::Io {
                    path: name.clone(),
                    source,
                })?;
            changes.extend(result.changes);
        }
    }
    Ok(changes)
}

/// The `.yaml`/`.yml` files under `dir` (relative to the root), skipping `.git` and every
/// symlink.
fn collect_yaml(fs: &RootedFs, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for (name, kind) in fs.read_dir(dir)? {
        let path = dir.join(&name);
        if kind.is_dir() {
            if name != ".git" {
                collect_yaml(fs, &path, out)?;
            }
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_image::setters::LatestImage;

    fn setters() -> Setters {
        let latest = LatestImage {
            name: "reg/app".into(),
            tag: "2.0.0".into(),
            digest: None,
        };
        Setters::from_policies([("ns:app", &latest)])
    }

    #[test]
    fn rewrites_marked_files_under_the_path_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let marked = "image: reg/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n";
        for f in [
            "apps/a/deploy.yaml",
            "apps/b.yml",
            "other/c.yaml",
            "apps/notes.txt",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, marked).expect("write");
        }
        let changes = apply_setters(root, Some("./apps"), &setters()).expect("updates");
        let files: Vec<&str> = changes.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(files, ["a/deploy.yaml", "b.yml"]);
        let after = std::fs::read_to_string(root.join("apps/b.yml")).expect("read");
        assert_eq!(
            after,
            "image: reg/app:2.0.0 # {\"$imagepolicy\": \"ns:app\"}\n"
        );
        for untouched in ["other/c.yaml", "apps/notes.txt"] {
            let text = std::fs::read_to_string(root.join(untouched)).expect("read");
            assert_eq!(text, marked, "{untouched}");
        }
        let again = apply_setters(root, Some("apps"), &setters()).expect("idempotent");
        assert!(again.is_empty());
    }

    #[test]
    fn symlinks_never_lead_a_rewrite_out_of_the_checkout() {
        let marked = "image: reg/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n";
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(outside.path().join("b")).expect("mkdir");
        let victim = outside.path().join("b/deploy.yaml");
        std::fs::write(&victim, marked).expect("write");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        std::os::unix::fs::symlink(outside.path(), root.join("a")).expect("symlink");
        std::fs::create_dir(root.join("apps")).expect("mkdir");
        std::os::unix::fs::symlink(&victim, root.join("apps/link.yaml")).expect("symlink");
        // The path goes through a link that leaves the checkout: as if it did not exist.
        let err = apply_setters(root, Some("a/b"), &setters()).expect_err("through a link");
        assert!(err.to_string().contains("does not exist"), "{err}");
        // A link met while walking is skipped.
        let changes = apply_setters(root, Some("apps"), &setters()).expect("walks");
        assert!(changes.is_empty());
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), marked);
    }

    #[test]
    fn paths_outside_the_checkout_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for bad in ["../x", "/etc", "apps/../../x"] {
            let err = apply_setters(dir.path(), Some(bad), &setters()).expect_err(bad);
            assert!(err.to_string().contains("spec.update.path"), "{err}");
        }
        let err = apply_setters(dir.path(), Some("missing"), &setters()).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
