//! Finding and reading files relative to a kustomization root, with upstream's load
//! restrictions and cycle detection.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{Result, msg};
use crate::fs::{FileSystem, clean};
use crate::yaml::Map;

/// Whether files may come from outside a kustomization's own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadRestrictor {
    /// Only files in or below the kustomization directory (the default).
    #[default]
    RootOnly,
    /// Any file.
    None,
}

/// The names a kustomization file may have.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A loader rooted at one kustomization directory.
#[derive(Clone)]
pub struct Loader<'a> {
    /// The file system.
    pub fs: &'a dyn FileSystem,
    /// This kustomization's directory (absolute, clean).
    pub root: PathBuf,
    /// Restriction mode.
    pub restrictor: LoadRestrictor,
    /// Roots already being built above this one (for cycle detection).
    pub visited: Vec<PathBuf>,
    /// This root relative to the build root (for origin annotations).
    pub origin: String,
    /// Whether origins are recorded (the top kustomization has `buildMetadata`).
    pub track_origin: bool,
    /// The custom OpenAPI definitions in force (`openapi:`), shared by the whole build.
    pub schema: Rc<RefCell<Option<Map>>>,
}

/// Whether a path looks like a remote target (URL or `github.com/...`).
pub fn is_remote(p: &str) -> bool {
    p.contains("://")
        || p.starts_with("github.com/")
        || p.starts_with("gitlab.com/")
        || p.starts_with("bitbucket.org/")
        || p.starts_with("git@")
        || p.starts_with("git::")
}

impl<'a> Loader<'a> {
    /// A loader for `root`.
    pub fn new(fs: &'a dyn FileSystem, root: &Path, restrictor: LoadRestrictor) -> Result<Self> {
        let root = clean(root);
        if !fs.is_dir(&root) {
            return Err(msg(format!(
                "must build at directory: not a valid directory: '{}'",
                root.display()
            )));
        }
        Ok(Loader {
            fs,
            root,
            restrictor,
            visited: Vec::new(),
            origin: String::new(),
            track_origin: false,
            schema: Rc::default(),
        })
    }

    /// Absolute path of `rel` relative to the root.
    pub fn abs(&self, rel: &str) -> PathBuf {
        clean(&self.root.join(rel))
    }

    fn canon(&self, p: &Path) -> PathBuf {
        self.fs.canonicalize(p).unwrap_or_else(|_| clean(p))
    }

    /// Reads a file, enforcing the load restriction.
    pub fn load(&self, rel: &str) -> Result<Vec<u8>> {
        if is_remote(rel) {
            return Err(msg(format!(
                "remote resource '{rel}' refused: remote bases and URLs are not supported \
                 (download it into the repository instead)"
            )));
        }
        let path = self.abs(rel);
        if self.restrictor == LoadRestrictor::RootOnly {
            let root = self.canon(&self.root);
            let target = self.canon(&path);
            if !target.starts_with(&root) {
                return Err(msg(format!(
                    "security; file '{}' is not in or below '{}'",
                    target.display(),
                    root.display()
                )));
            }
        }
        if self.fs.is_dir(&path) {
            return Err(msg(format!("'{}' is a directory", path.display())));
        }
        self.fs.read(&path).map_err(|e| {
            msg(format!(
                "evalsymlink failure on '{}' : lstat {}: {e}",
                path.display(),
                path.display()
            ))
        })
    }

    /// A loader for a sub-directory (a base or component), refusing cycles.
    pub fn child(&self, rel: &str) -> Result<Loader<'a>> {
        if is_remote(rel) {
            return Err(msg(format!(
                "remote base '{rel}' refused: remote bases are not supported \
                 (vendor the base into the repository instead)"
            )));
        }
        let path = self.abs(rel);
        if !self.fs.is_dir(&path) {
            if self.fs.exists(&path) {
                return Err(msg(format!(
                    "must build at directory: '{}': file is not directory",
                    path.display()
                )));
            }
            return Err(msg(format!(
                "must build at directory: not a valid directory: evalsymlink failure on '{}' : lstat {}: no such file or directory",
                path.display(),
                path.display()
            )));
        }
        let canon = self.canon(&path);
        let here = self.canon(&self.root);
        if here.starts_with(&canon) {
            return Err(msg(format!(
                "cycle detected: candidate root '{}' contains visited root '{}'",
                canon.display(),
                here.display()
            )));
        }
        if self.visited.contains(&canon) {
            return Err(msg(format!(
                "cycle detected: new root '{}' is already visited",
                canon.display()
            )));
        }
        let mut visited = self.visited.clone();
        visited.push(here);
        Ok(Loader {
            fs: self.fs,
            root: path,
            restrictor: self.restrictor,
            visited,
            origin: crate::resource::rel_join(&self.origin, rel),
            track_origin: self.track_origin,
            schema: Rc::clone(&self.schema),
        })
    }

    /// Reads this root's kustomization file: (content, file name).
    pub fn kustomization_file(&self) -> Result<(String, String)> {
        let mut found = Vec::new();
        for name in KUSTOMIZATION_FILE_NAMES {
            let p = self.root.join(name);
            if self.fs.exists(&p) && !self.fs.is_dir(&p) {
                found.push((p, name));
            }
        }
        match found.len() {
            0 => Err(msg(format!(
                "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
                self.root.display()
            ))),
            1 => {
                let (p, name) = &found[0];
                let bytes = self
                    .fs
                    .read(p)
                    .map_err(|e| msg(format!("{}: {e}", p.display())))?;
                Ok((
                    String::from_utf8_lossy(&bytes).into_owned(),
                    name.to_string(),
                ))
            }
            _ => Err(msg(format!(
                "Found multiple kustomization files under: {}\n",
                self.root.display()
            ))),
        }
    }
}
