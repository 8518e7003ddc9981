//! The file system the engine reads through: the real disk, or an in-memory tree for tests.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Read-only access to a file tree. Paths given to it are absolute and clean.
pub trait FileSystem {
    /// The bytes of a regular file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> bool;
    /// The canonical form of `path` (symlinks resolved), when it exists.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(clean(path))
    }
    /// The names of a directory's entries, sorted (Helm's chart loader walks directories).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file system cannot list directories",
        ))
    }
}

/// The real disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

impl FileSystem for DiskFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

/// An in-memory tree: files by absolute path; directories are implied by their files.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: std::collections::BTreeSet<PathBuf>,
}

impl MemFs {
    /// An empty tree with only `/`.
    pub fn new() -> Self {
        let mut fs = Self::default();
        fs.dirs.insert(PathBuf::from("/"));
        fs
    }

    /// Adds a file (and its parent directories).
    pub fn add(&mut self, path: impl AsRef<Path>, content: impl AsRef<[u8]>) -> &mut Self {
        let p = clean(&Path::new("/").join(path.as_ref()));
        let mut parent = p.parent();
        while let Some(d) = parent {
            self.dirs.insert(d.to_path_buf());
            parent = d.parent();
        }
        self.files.insert(p, content.as_ref().to_vec());
        self
    }

    /// Adds an empty directory.
    pub fn add_dir(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let p = clean(&Path::new("/").join(path.as_ref()));
        let mut cur = Some(p.as_path());
        while let Some(d) = cur {
            self.dirs.insert(d.to_path_buf());
            cur = d.parent();
        }
        self
    }
}

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(&clean(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.contains(&clean(path))
    }
    fn exists(&self, path: &Path) -> bool {
        let p = clean(path);
        self.files.contains_key(&p) || self.dirs.contains(&p)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let p = clean(path);
        if self.exists(&p) {
            Ok(p)
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
        }
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let dir = clean(path);
        if !self.dirs.contains(&dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        let child = |p: &PathBuf| {
            (p.parent() == Some(dir.as_path()) && p != &dir)
                .then(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .flatten()
        };
        let mut names: Vec<String> = self
            .files
            .keys()
            .chain(self.dirs.iter())
            .filter_map(child)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Lexically cleans a path: removes `.`, resolves `..` (never above `/`).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    out.push("/");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfs_implies_parent_directories() {
        let mut fs = MemFs::new();
        fs.add("a/b/c.yaml", "x: 1");
        assert!(fs.is_dir(Path::new("/a/b")));
        assert!(fs.exists(Path::new("/a/b/c.yaml")));
        assert!(!fs.is_dir(Path::new("/a/b/c.yaml")));
        assert_eq!(
            fs.read(Path::new("/a/./b/../b/c.yaml")).expect("file"),
            b"x: 1"
        );
    }

    #[test]
    fn clean_never_climbs_above_root() {
        assert_eq!(clean(Path::new("/a/../../b")), PathBuf::from("/b"));
    }
}
