//! Safe extraction of untrusted `.tar.gz` artifacts.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Flux's default limit on the unpacked size of an artifact (100 MiB, as fluxcd/pkg/tar).
pub const DEFAULT_MAX_UNTAR_SIZE: u64 = 100 << 20;

/// Limits for [`extract_tar_gz`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Refuse when the unpacked files add up to more bytes than this; `None`: no limit.
    pub max_size: Option<u64>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_size: Some(DEFAULT_MAX_UNTAR_SIZE),
        }
    }
}

/// What [`extract_tar_gz`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractSummary {
    /// Regular files written.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// An artifact was refused or could not be unpacked. Nothing is left behind: what the call
/// created under the target directory is removed again.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry path is absolute or climbs out with `..`.
    #[error(
        "refused tarball entry {entry:?}: {why}; the artifact may be malicious, rebuild it from a trusted source"
    )]
    UnsafePath {
        /// The entry's path as stored.
        entry: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A symlink or hard link points outside the target directory.
    #[error(
        "refused tarball entry {entry:?}: link target {target:?} points outside the extraction directory"
    )]
    LinkOutOfRoot {
        /// The link entry.
        entry: String,
        /// Its target.
        target: String,
    },
    /// An entry would be written through a symlink placed by an earlier entry.
    #[error("refused tarball entry {entry:?}: its path goes through the symlink {through:?}")]
    ThroughSymlink {
        /// The entry.
        entry: String,
        /// The symlink on its path.
        through: String,
    },
    /// A device, FIFO or other special entry.
    #[error(
        "refused tarball entry {entry:?}: entry type {kind} is not allowed in an artifact (only files, directories and links)"
    )]
    SpecialFile {
        /// The entry.
        entry: String,
        /// Its tar type.
        kind: String,
    },
    /// The unpacked size exceeds the limit.
    #[error(
        "artifact exceeds the maximum unpacked size of {max} bytes (at entry {entry:?}); raise the limit (--artifact-max-size) if this is expected"
    )]
    TooLarge {
        /// The limit.
        max: u64,
        /// The entry that crossed it.
        entry: String,
    },
    /// The gzip or tar stream is damaged.
    #[error("artifact is not a valid tar.gz: {0}; download it again or check the source")]
    Corrupt(#[source] std::io::Error),
    /// Writing to the target directory failed.
    #[error("writing {path}: {source}")]
    Io {
        /// What was written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Unpacks the gzip-compressed tar read from `reader` into `dest`.
///
/// Guarantees: no file is created or modified outside `dest`: entries with absolute paths or
/// `..`, links whose target leaves `dest`, entries that pass through a symlink, device files,
/// FIFOs and sparse files are refused; files get mode 0644 or 0755 (no setuid, no owners);
/// the total size is capped by [`ExtractOptions::max_size`].
///
/// # Errors
/// [`ExtractError`] for the first offending entry; everything the call created under
/// `dest` (and `dest` itself if the call created it) is removed before returning.
pub fn extract_tar_gz(
    reader: impl Read,
    dest: &Path,
    options: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let dest_existed = dest.exists();
    let before: Vec<PathBuf> = if dest_existed {
        list(dest)?
    } else {
        std::fs::create_dir_all(dest).map_err(|source| ExtractError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        Vec::new()
    };
    let result = unpack(reader, dest, options);
    if result.is_err() {
        if dest_existed {
            for path in list(dest).unwrap_or_default() {
                if !before.contains(&path) {
                    let _ = remove(&path);
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(dest);
        }
    }
    result
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, ExtractError> {
    let io = |source| ExtractError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        out.push(e.map_err(io)?.path());
    }
    Ok(out)
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    }
}

fn unpack(
    reader: impl Read,
    dest: &Path,
    options: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut summary = ExtractSummary { files: 0, bytes: 0 };
    for entry in archive.entries().map_err(ExtractError::Corrupt)? {
        let mut entry = entry.map_err(ExtractError::Corrupt)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let Some(rel) = safe_relative(&raw)? else {
            continue; // "." or "./": the root itself
        };
        let target = dest.join(&rel);
        check_no_symlink_on_path(dest, &rel, &raw)?;
        let io = |source| ExtractError::Io {
            path: target.clone(),
            source,
        };
        match kind {
            tar::EntryType::Directory => {
                if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    remove(&target).map_err(io)?;
                }
                std::fs::create_dir_all(&target).map_err(io)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(ExtractError::Corrupt)?;
                let total = summary.bytes.saturating_add(size);
                if let Some(max) = options.max_size
                    && total > max
                {
                    return Err(ExtractError::TooLarge { max, entry: raw });
                }
                make_parent(&target)?;
                if std::fs::symlink_metadata(&target).is_ok() {
                    remove(&target).map_err(io)?;
                }
                let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(io)?;
                // Never trust the header's size alone: cap what is actually copied.
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut file)
                    .map_err(ExtractError::Corrupt)?;
                if copied != size {
                    return Err(ExtractError::Corrupt(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("entry {raw:?} is truncated"),
                    )));
                }
                set_mode(&target, if executable { 0o755 } else { 0o644 })?;
                summary.files += 1;
                summary.bytes = total;
            }
            tar::EntryType::Symlink => {
                let link = link_name(&entry, &raw)?;
                if !link_stays_inside(&rel, &link) {
                    return Err(ExtractError::LinkOutOfRoot {
                        entry: raw,
                        target: link,
                    });
                }
                make_parent(&target)?;
                if std::fs::symlink_metadata(&target).is_ok() {
                    remove(&target).map_err(io)?;
                }
                std::os::unix::fs::symlink(&link, &target).map_err(io)?;
            }
            tar::EntryType::Link => {
                let link = link_name(&entry, &raw)?;
                // Hard link names are relative to the archive root, like entry paths.
                let source_rel = match safe_relative(&link) {
                    Ok(Some(p)) => p,
                    _ => {
                        return Err(ExtractError::LinkOutOfRoot {
                            entry: raw,
                            target: link,
                        });
                    }
                };
                check_no_symlink_on_path(dest, &source_rel, &raw)?;
                let source = dest.join(&source_rel);
                if !std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                    return Err(ExtractError::LinkOutOfRoot {
                        entry: raw,
                        target: link,
                    });
                }
                make_parent(&target)?;
                if std::fs::symlink_metadata(&target).is_ok() {
                    remove(&target).map_err(io)?;
                }
                std::fs::hard_link(&source, &target).map_err(io)?;
            }
            other => {
                return Err(ExtractError::SpecialFile {
                    entry: raw,
                    kind: format!("{other:?}"),
                });
            }
        }
    }
    Ok(summary)
}

/// The entry path as a relative path with no `..`, or `None` for the root itself.
pub(crate) fn safe_relative(raw: &str) -> Result<Option<PathBuf>, ExtractError> {
    let unsafe_path = |why| ExtractError::UnsafePath {
        entry: raw.to_string(),
        why,
    };
    if raw.contains('\0') {
        return Err(unsafe_path("the path contains a NUL byte"));
    }
    let mut out = PathBuf::new();
    for comp in Path::new(raw).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_path("the path contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_path("the path is absolute"));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Lexically resolves a symlink's target from the link's directory; false if it leaves the
/// root or is absolute.
fn link_stays_inside(link_rel: &Path, target: &str) -> bool {
    let target = Path::new(target);
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link_rel
        .parent()
        .map(|p| {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for comp in target.components() {
        match comp {
            Component::Normal(n) => depth.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Refuses entries whose parent directories include a symlink made by an earlier entry,
/// so that no write can be redirected outside `dest`.
pub(crate) fn check_no_symlink_on_path(
    dest: &Path,
    rel: &Path,
    raw: &str,
) -> Result<(), ExtractError> {
    let mut cur = dest.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for comp in &parents[..parents.len().saturating_sub(1)] {
        cur.push(comp);
        if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ExtractError::ThroughSymlink {
                entry: raw.to_string(),
                through: cur.strip_prefix(dest).unwrap_or(&cur).display().to_string(),
            });
        }
    }
    Ok(())
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, raw: &str) -> Result<String, ExtractError> {
    match entry.link_name_bytes() {
        Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        None => Err(ExtractError::LinkOutOfRoot {
            entry: raw.to_string(),
            target: String::new(),
        }),
    }
}

fn make_parent(target: &Path) -> Result<(), ExtractError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ExtractError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ExtractError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ExtractError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_and_escapes_refused() {
        assert_eq!(
            safe_relative("./a/./b").expect("ok"),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(safe_relative("./").expect("ok"), None);
        assert!(safe_relative("../x").is_err());
        assert!(safe_relative("a/../../x").is_err());
        assert!(safe_relative("/etc/passwd").is_err());
    }

    #[test]
    fn symlink_targets_are_resolved_from_the_link_directory() {
        assert!(link_stays_inside(Path::new("a/b/link"), "../c"));
        assert!(link_stays_inside(Path::new("a/link"), "../c"));
        assert!(!link_stays_inside(Path::new("a/link"), "../../c"));
        assert!(!link_stays_inside(Path::new("link"), "/etc/passwd"));
        assert!(!link_stays_inside(Path::new("link"), ".."));
    }
}
