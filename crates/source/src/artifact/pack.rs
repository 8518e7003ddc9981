//! Deterministic tar.gz packaging of a directory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;

use super::ignore::{IgnoreError, IgnoreRules, Matcher};
use crate::digest::Sha256Writer;

/// Packing a directory failed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The ignore rules could not be built or read.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// A file or directory could not be read, or the output could not be written.
    #[error("packing {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file name is not UTF-8, which tar paths in Flux artifacts must be.
    #[error("packing {0}: the file name is not valid UTF-8; rename it or ignore it")]
    NonUtf8Path(PathBuf),
}

/// What [`pack_dir`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// `sha256:<hex>` of the gzip stream written.
    pub digest: String,
    /// Bytes written.
    pub size: u64,
    /// Regular files included.
    pub files: usize,
}

struct Entry {
    rel: String,
    abs: PathBuf,
    executable: bool,
}

/// Packs the regular files under `dir` that `rules` keep into a gzip-compressed tar written
/// to `out`.
///
/// Guarantees: entries are sorted by path (byte order), carry mtime 0, uid/gid 0, no owner
/// names and mode 0644 (0755 when any execute bit is set); directories are implicit; symlinks
/// and special files are skipped (as Flux does). The same kept files therefore give the same
/// bytes and the same digest on any machine.
///
/// # Errors
/// [`PackError`] when a pattern is invalid, a file cannot be read or `out` fails.
pub fn pack_dir(dir: &Path, rules: &IgnoreRules, out: impl Write) -> Result<Packed, PackError> {
    let mut matcher = rules.matcher(dir)?;
    let mut entries = Vec::new();
    walk(dir, "", &mut matcher, &mut entries)?;
    // Each directory was listed in order, but "a/b" vs "a.b" needs a global sort by path.
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    write_entries(&entries, out)
}

/// Packs `path`: a directory as [`pack_dir`], a single file as a tarball holding only that
/// file under its own name (`flux push artifact --path=FILE`).
///
/// # Errors
/// As [`pack_dir`].
pub fn pack_path(path: &Path, rules: &IgnoreRules, out: impl Write) -> Result<Packed, PackError> {
    let meta = std::fs::metadata(path).map_err(|source| PackError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return pack_dir(path, rules, out);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| PackError::NonUtf8Path(path.to_path_buf()))?;
    use std::os::unix::fs::PermissionsExt;
    let entry = Entry {
        rel: name.to_string(),
        abs: path.to_path_buf(),
        executable: meta.permissions().mode() & 0o111 != 0,
    };
    write_entries(&[entry], out)
}

fn write_entries(entries: &[Entry], out: impl Write) -> Result<Packed, PackError> {
    // Errors name the file by its path in the artifact, never by the temp dir it was checked
    // out to: the message ends up in a condition a tenant reads.
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PackError::Io { path, source }
    };
    let hashing = Sha256Writer::new(BufWriter::new(out));
    let gz = flate2::GzBuilder::new()
        .operating_system(255)
        .write(hashing, Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let file = File::open(&entry.abs).map_err(io_err(Path::new(&entry.rel)))?;
        let len = file
            .metadata()
            .map_err(io_err(Path::new(&entry.rel)))?
            .len();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(len);
        header.set_mode(if entry.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        // Exactly the size in the header, even if the file grows while being read.
        tar.append_data(&mut header, &entry.rel, std::io::Read::take(file, len))
            .map_err(io_err(Path::new(&entry.rel)))?;
    }
    let gz = tar
        .into_inner()
        .map_err(io_err(Path::new("the artifact archive")))?;
    let hashing = gz
        .finish()
        .map_err(io_err(Path::new("the artifact archive")))?;
    let (mut buf, digest, size) = hashing.finish();
    buf.flush()
        .map_err(io_err(Path::new("the artifact archive")))?;
    Ok(Packed {
        digest,
        size,
        files: entries.len(),
    })
}

fn walk(
    dir: &Path,
    rel_dir: &str,
    matcher: &mut Matcher,
    entries: &mut Vec<Entry>,
) -> Result<(), PackError> {
    let pushed = matcher.enter(dir)?;
    let io_err = |source| PackError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut children = Vec::new();
    for child in std::fs::read_dir(dir).map_err(io_err)? {
        let child = child.map_err(io_err)?;
        children.push(child.path());
    }
    children.sort();
    for abs in children {
        let name = abs
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| PackError::NonUtf8Path(abs.clone()))?;
        let meta = std::fs::symlink_metadata(&abs).map_err(|source| PackError::Io {
            path: abs.clone(),
            source,
        })?;
        let rel = if rel_dir.is_empty() {
            name.to_string()
        } else {
            format!("{rel_dir}/{name}")
        };
        if meta.is_dir() {
            if !matcher.is_ignored(&abs, true) {
                walk(&abs, &rel, matcher, entries)?;
            }
        } else if meta.is_file() && !matcher.is_ignored(&abs, false) {
            use std::os::unix::fs::PermissionsExt;
            entries.push(Entry {
                rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                abs,
            });
        }
    }
    if pushed {
        matcher.leave();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, body) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
            std::fs::write(p, body).expect("write");
        }
        dir
    }

    fn names(dir: &Path, rules: &IgnoreRules) -> Vec<String> {
        let mut buf = Vec::new();
        pack_dir(dir, rules, &mut buf).expect("pack");
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&buf[..]));
        ar.entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn default_excludes_drop_vcs_ci_and_binaries_but_keep_manifests() {
        let dir = tree(&[
            ("deploy/app.yaml", "kind: ConfigMap"),
            (".git/config", "x"),
            (".github/workflows/ci.yaml", "x"),
            ("logo.png", "x"),
            ("sub/.sops.yaml", "x"),
            ("README.md", "x"),
        ]);
        assert_eq!(
            names(dir.path(), &IgnoreRules::flux_defaults()),
            ["README.md", "deploy/app.yaml"]
        );
    }

    #[test]
    fn sourceignore_is_scoped_to_its_directory_and_spec_ignore_wins() {
        let dir = tree(&[
            ("a/.sourceignore", "*.txt\n"),
            ("a/x.txt", "x"),
            ("b/y.txt", "y"),
            ("keep.yaml", "k"),
            ("drop.yaml", "d"),
        ]);
        let rules = IgnoreRules::flux_defaults().with_spec_ignore("drop.yaml\n!a/x.txt\n");
        assert_eq!(
            names(dir.path(), &rules),
            ["a/.sourceignore", "a/x.txt", "b/y.txt", "keep.yaml"]
        );
        let without = names(dir.path(), &IgnoreRules::flux_defaults());
        assert!(!without.contains(&"a/x.txt".to_string()), "{without:?}");
        assert!(without.contains(&"b/y.txt".to_string()), "{without:?}");
    }

    #[test]
    fn same_content_gives_same_digest_regardless_of_mtime_and_creation_order() {
        let one = tree(&[("b.yaml", "b"), ("a/c.yaml", "c"), ("a.yaml", "a")]);
        let two = tree(&[("a.yaml", "a"), ("a/c.yaml", "c"), ("b.yaml", "b")]);
        let f = File::options()
            .write(true)
            .open(two.path().join("a.yaml"))
            .expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(99))
            .expect("set mtime");
        let p1 = pack_dir(one.path(), &IgnoreRules::none(), std::io::sink()).expect("pack");
        let p2 = pack_dir(two.path(), &IgnoreRules::none(), std::io::sink()).expect("pack");
        assert_eq!(p1.digest, p2.digest);
        std::fs::write(two.path().join("b.yaml"), "B").expect("write");
        let p3 = pack_dir(two.path(), &IgnoreRules::none(), std::io::sink()).expect("pack");
        assert_ne!(p1.digest, p3.digest);
    }

    #[test]
    fn a_single_file_is_packed_under_its_own_name() {
        let dir = tree(&[("sub/app.yaml", "kind: X")]);
        let mut buf = Vec::new();
        let packed = pack_path(
            &dir.path().join("sub/app.yaml"),
            &IgnoreRules::none(),
            &mut buf,
        )
        .expect("pack");
        assert_eq!(packed.files, 1);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&buf[..]));
        let names: Vec<String> = ar
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["app.yaml"]);
    }

    #[test]
    fn entries_are_sorted_by_full_path() {
        let dir = tree(&[("a/b", "1"), ("a.b", "2"), ("a-b", "3")]);
        assert_eq!(
            names(dir.path(), &IgnoreRules::none()),
            ["a-b", "a.b", "a/b"]
        );
    }
}
