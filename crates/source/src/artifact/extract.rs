//! Safe extraction of untrusted `.tar.gz` artifacts.
//!
//! Every extraction in the project (OCI layers, Git/Bucket/Helm artifacts fetched by the
//! kustomize controller, `ferroflux pull artifact`) goes through [`extract_tar_gz`], so the
//! limits below hold everywhere:
//! - one budget of decompressed tar bytes ([`ExtractOptions::max_size`]): every header
//!   block and every record's data (files, directories, links, GNU long names, PAX records)
//!   is counted from its header *before* any of its data is read;
//! - a cap on the number of records ([`ExtractOptions::max_entries`]);
//! - caps on the records the tar crate would otherwise read whole into memory: GNU long
//!   names/links ([`MAX_LONG_NAME`]) and PAX headers ([`MAX_PAX_HEADER`], Go's
//!   `archive/tar` limit). The archive is read in raw mode and these records are parsed
//!   here, so the tar crate never buffers one;
//! - symlinks are dropped, as Flux does (fluxcd/pkg `tar.Untar` with `WithSkipSymlinks`):
//!   an extracted artifact holds only directories, regular files and hard links to files
//!   extracted inside it.
//!
//! Fuzzing: `crates/source/fuzz` holds a cargo-fuzz target for this extractor, run with
//! `cd crates/source/fuzz && cargo +nightly fuzz run extract_tar_gz corpus/extract_tar_gz
//! -- -max_total_time=600`.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Flux's default limit on the unpacked size of an artifact (100 MiB, as fluxcd/pkg/tar).
pub const DEFAULT_MAX_UNTAR_SIZE: u64 = 100 << 20;

/// Default cap on the records of one artifact (files, directories, links and extension
/// headers together).
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;

/// Longest GNU long name or long link record accepted, in bytes; paths longer than Linux's
/// `PATH_MAX` (4096) cannot be created anyway.
pub const MAX_LONG_NAME: u64 = 8 << 10;

/// Largest PAX extended header accepted, in bytes (Go's `archive/tar` caps it at 1 MiB).
pub const MAX_PAX_HEADER: u64 = 1 << 20;

/// A tar header block; every record occupies whole blocks.
const BLOCK: u64 = 512;

/// Limits for [`extract_tar_gz`].
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// The budget of decompressed tar bytes (headers, file data, extension records).
    pub max_size: u64,
    /// The most records the archive may hold.
    pub max_entries: u64,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_size: DEFAULT_MAX_UNTAR_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
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
    /// Symlink entries dropped.
    pub skipped_symlinks: usize,
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
    /// A hard link does not name a regular file extracted inside the target directory.
    #[error(
        "refused tarball entry {entry:?}: hard link target {target:?} is not a regular file inside the extraction directory"
    )]
    LinkOutOfRoot {
        /// The link entry.
        entry: String,
        /// Its target.
        target: String,
    },
    /// An entry would be written through a symlink already present in the target directory.
    #[error("refused tarball entry {entry:?}: its path goes through the symlink {through:?}")]
    ThroughSymlink {
        /// The entry.
        entry: String,
        /// The symlink on its path.
        through: String,
    },
    /// A device, FIFO, sparse or other special entry.
    #[error(
        "refused tarball entry {entry:?}: entry type {kind} is not allowed in an artifact (only files, directories and links)"
    )]
    SpecialFile {
        /// The entry.
        entry: String,
        /// Its tar type.
        kind: String,
    },
    /// The decompressed archive exceeds the size budget.
    #[error(
        "artifact exceeds the size limit of {max} bytes (at entry {entry:?}); the unpacked content is too large"
    )]
    TooLarge {
        /// The limit.
        max: u64,
        /// The entry that crossed it.
        entry: String,
    },
    /// The archive holds more records than allowed.
    #[error("artifact exceeds the limit of {max} tar entries")]
    TooManyEntries {
        /// The limit.
        max: u64,
    },
    /// A GNU long name/link or PAX header is larger than allowed.
    #[error(
        "refused tarball: a {kind} of {size} bytes exceeds the limit of {max} bytes; the artifact may be malicious"
    )]
    HeaderTooLarge {
        /// Which extension record.
        kind: &'static str,
        /// The size its header claims.
        size: u64,
        /// The limit.
        max: u64,
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
/// `..`, hard links to anything but a regular file inside `dest`, entries that pass through
/// a symlink already in `dest`, device files, FIFOs and sparse files are refused; symlinks
/// are dropped (counted in [`ExtractSummary::skipped_symlinks`]); files get mode 0644 or
/// 0755 (no setuid, no owners); the decompressed bytes read, the record count and every
/// extension header are capped (see the module documentation) before their data is read,
/// so memory stays bounded whatever the archive claims.
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
            path: PathBuf::from("."),
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
        path: PathBuf::from("."),
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

/// Extension records seen since the last real entry; they describe the next one.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
}

fn corrupt(message: impl Into<String>) -> ExtractError {
    ExtractError::Corrupt(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        message.into(),
    ))
}

/// Reads the data of an extension record whose size was checked against its cap.
fn read_record<R: Read>(entry: &mut tar::Entry<'_, R>, size: u64) -> Result<Vec<u8>, ExtractError> {
    let capacity = usize::try_from(size).expect("extension records are capped far below usize");
    let mut data = Vec::with_capacity(capacity);
    entry
        .take(size)
        .read_to_end(&mut data)
        .map_err(ExtractError::Corrupt)?;
    if data.len() as u64 != size {
        return Err(corrupt("an extension header is truncated"));
    }
    Ok(data)
}

/// A name stored in a GNU long name/link record: a C string.
fn c_string(mut data: Vec<u8>) -> Vec<u8> {
    if let Some(end) = data.iter().position(|b| *b == 0) {
        data.truncate(end);
    }
    data
}

fn parse_pax(data: &[u8], pending: &mut Pending) -> Result<(), ExtractError> {
    for record in tar::PaxExtensions::new(data) {
        let record = record.map_err(|_| corrupt("a PAX extended header record is malformed"))?;
        match record.key_bytes() {
            b"path" => pending.pax_path = Some(record.value_bytes().to_vec()),
            b"linkpath" => pending.pax_link = Some(record.value_bytes().to_vec()),
            b"size" => {
                let size = record
                    .value()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| corrupt("a PAX size record is not a number"))?;
                pending.pax_size = Some(size);
            }
            key if key.starts_with(b"GNU.sparse.") => {
                return Err(ExtractError::SpecialFile {
                    entry: String::from_utf8_lossy(&pending.pax_path.clone().unwrap_or_default())
                        .into_owned(),
                    kind: "sparse file (PAX)".into(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn type_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "FIFO".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("'{}'", other.as_byte().escape_ascii()),
    }
}

/// Counts records and decompressed bytes against [`ExtractOptions`].
struct Budget<'a> {
    options: &'a ExtractOptions,
    records: u64,
    used: u64,
}

impl Budget<'_> {
    /// Charges one record (its header block and padded data) before any of its data is read,
    /// refusing it when the record count, an extension header's cap or the size budget is
    /// exceeded.
    fn charge<R: Read>(&mut self, entry: &tar::Entry<'_, R>) -> Result<(), ExtractError> {
        self.records += 1;
        if self.records > self.options.max_entries {
            return Err(ExtractError::TooManyEntries {
                max: self.options.max_entries,
            });
        }
        let size = entry.size();
        let header_cap = match entry.header().entry_type() {
            tar::EntryType::GNULongName => Some(("GNU long name", MAX_LONG_NAME)),
            tar::EntryType::GNULongLink => Some(("GNU long link", MAX_LONG_NAME)),
            tar::EntryType::XHeader => Some(("PAX extended header", MAX_PAX_HEADER)),
            tar::EntryType::XGlobalHeader => Some(("PAX global header", MAX_PAX_HEADER)),
            _ => None,
        };
        if let Some((kind, max)) = header_cap
            && size > max
        {
            return Err(ExtractError::HeaderTooLarge { kind, size, max });
        }
        // What the tar reader consumes for this record: its header block and its data
        // padded to whole blocks. Counted before a byte of the data is read.
        let padded = size.div_ceil(BLOCK).saturating_mul(BLOCK);
        self.used = self.used.saturating_add(BLOCK).saturating_add(padded);
        if self.used > self.options.max_size {
            return Err(ExtractError::TooLarge {
                max: self.options.max_size,
                entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            });
        }
        Ok(())
    }
}

impl Pending {
    /// Reads an extension record into `self`; `false` when `entry` is a real entry.
    fn absorb<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<bool, ExtractError> {
        let size = entry.size();
        match entry.header().entry_type() {
            tar::EntryType::GNULongName => {
                if self.long_name.is_some() {
                    return Err(corrupt("two GNU long names describe the same entry"));
                }
                self.long_name = Some(c_string(read_record(entry, size)?));
            }
            tar::EntryType::GNULongLink => {
                if self.long_link.is_some() {
                    return Err(corrupt("two GNU long links describe the same entry"));
                }
                self.long_link = Some(c_string(read_record(entry, size)?));
            }
            tar::EntryType::XHeader => {
                let data = read_record(entry, size)?;
                parse_pax(&data, self)?;
            }
            // Global records carry nothing an artifact needs; the reader skips the data.
            tar::EntryType::XGlobalHeader => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn is_empty(&self) -> bool {
        self.long_name.is_none()
            && self.long_link.is_none()
            && self.pax_path.is_none()
            && self.pax_link.is_none()
            && self.pax_size.is_none()
    }
}

fn unpack(
    reader: impl Read,
    dest: &Path,
    options: &ExtractOptions,
) -> Result<ExtractSummary, ExtractError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut summary = ExtractSummary {
        files: 0,
        bytes: 0,
        skipped_symlinks: 0,
    };
    // Raw mode: the tar crate would read GNU long names and PAX records whole into memory
    // whatever their size; here each one is checked against its cap first.
    let entries = archive.entries().map_err(ExtractError::Corrupt)?.raw(true);
    let mut pending = Pending::default();
    let mut budget = Budget {
        options,
        records: 0,
        used: 0,
    };
    for entry in entries {
        let mut entry = entry.map_err(ExtractError::Corrupt)?;
        budget.charge(&entry)?;
        if pending.absorb(&mut entry)? {
            continue;
        }
        unpack_entry(&mut entry, std::mem::take(&mut pending), dest, &mut summary)?;
    }
    if !pending.is_empty() {
        return Err(corrupt(
            "the archive ends with a header describing no entry",
        ));
    }
    Ok(summary)
}

/// Writes one real entry, named by the extension records that preceded it, under `dest`.
fn unpack_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    described: Pending,
    dest: &Path,
    summary: &mut ExtractSummary,
) -> Result<(), ExtractError> {
    let kind = entry.header().entry_type();
    let size = entry.size();
    if let Some(pax_size) = described.pax_size
        && pax_size != size
    {
        // Readers that honour the PAX size and readers that do not would see different
        // archives; refuse rather than pick one.
        return Err(corrupt(
            "a PAX size record disagrees with its entry's header",
        ));
    }
    let path_bytes = described
        .pax_path
        .or(described.long_name)
        .unwrap_or_else(|| entry.path_bytes().into_owned());
    let raw = String::from_utf8_lossy(&path_bytes).into_owned();
    let Some(rel) = safe_relative(&raw)? else {
        return Ok(()); // "." or "./": the root itself
    };
    if kind == tar::EntryType::Symlink {
        summary.skipped_symlinks += 1;
        return Ok(());
    }
    let target = dest.join(&rel);
    check_no_symlink_on_path(dest, &rel, &raw)?;
    let io = |source| ExtractError::Io {
        path: rel.clone(),
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
            make_parent(dest, &rel)?;
            if std::fs::symlink_metadata(&target).is_ok() {
                remove(&target).map_err(io)?;
            }
            let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(io)?;
            let copied =
                std::io::copy(&mut entry.take(size), &mut file).map_err(ExtractError::Corrupt)?;
            if copied != size {
                return Err(corrupt(format!("entry {raw:?} is truncated")));
            }
            set_mode(&target, &rel, if executable { 0o755 } else { 0o644 })?;
            summary.files += 1;
            summary.bytes = summary.bytes.saturating_add(size);
        }
        tar::EntryType::Link => {
            let link_bytes = described
                .pax_link
                .or(described.long_link)
                .or_else(|| entry.link_name_bytes().map(|b| b.into_owned()))
                .unwrap_or_default();
            hard_link(dest, &rel, &raw, &String::from_utf8_lossy(&link_bytes))?;
        }
        other => {
            return Err(ExtractError::SpecialFile {
                entry: raw,
                kind: type_name(other),
            });
        }
    }
    Ok(())
}

/// Creates the hard link `rel` (stored as `raw`) to `link`, which must name a regular file
/// already extracted inside `dest`.
fn hard_link(dest: &Path, rel: &Path, raw: &str, link: &str) -> Result<(), ExtractError> {
    let out_of_root = || ExtractError::LinkOutOfRoot {
        entry: raw.to_string(),
        target: link.to_string(),
    };
    // Hard link names are relative to the archive root, like entry paths.
    let Ok(Some(source_rel)) = safe_relative(link) else {
        return Err(out_of_root());
    };
    check_no_symlink_on_path(dest, &source_rel, raw)?;
    let source = dest.join(&source_rel);
    if !std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
        return Err(out_of_root());
    }
    make_parent(dest, rel)?;
    let target = dest.join(rel);
    let io = |source| ExtractError::Io {
        path: rel.to_path_buf(),
        source,
    };
    if std::fs::symlink_metadata(&target).is_ok() {
        remove(&target).map_err(io)?;
    }
    std::fs::hard_link(&source, &target).map_err(io)
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

/// Refuses entries whose parent directories include a symlink (one already in `dest`:
/// extraction itself never creates any), so that no write can be redirected outside it.
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

fn make_parent(dest: &Path, rel: &Path) -> Result<(), ExtractError> {
    if let Some(parent) = rel.parent() {
        std::fs::create_dir_all(dest.join(parent)).map_err(|source| ExtractError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn set_mode(path: &Path, rel: &Path, mode: u32) -> Result<(), ExtractError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ExtractError::Io {
            path: rel.to_path_buf(),
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
    fn gnu_long_names_stop_at_the_first_nul() {
        assert_eq!(c_string(b"a/b\0\0junk".to_vec()), b"a/b");
        assert_eq!(c_string(b"plain".to_vec()), b"plain");
    }
}
