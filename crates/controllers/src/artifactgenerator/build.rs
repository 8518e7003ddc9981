//! Staging one generated artifact: the copy operations of an ArtifactGenerator run, in order,
//! from the extracted source artifacts into an empty directory, with source-watcher's `cp`-like
//! rules.
//!
//! - `@alias/path` without glob characters: a file is copied to `to` (into it when `to` ends
//!   with `/` or is an existing directory); a directory is copied as a subdirectory of `to`
//!   (`@alias/` copies the whole source into `to`).
//! - `@alias/glob`: every match is copied with its path from the source root under `to`,
//!   except for `dir/**`, whose matches lose the `dir/` prefix. As Go's `fs.Glob`, each `*`
//!   (and `**`) stays within one path segment; a matched directory is copied recursively.
//! - `exclude` globs (`**` crosses directories) are matched against the path from the source
//!   root, the path from the non-glob prefix of `from`, and, for patterns without `/`, the
//!   file name.
//! - `Merge` deep-merges YAML into an existing destination file (Helm's values merge);
//!   `Extract` unpacks `.tar.gz`/`.tgz` files into `to`.
//!
//! Hostile input: sources are read through [`RootedFs`] (no symlink is followed, `..` never
//! climbs out of a source), destinations are cleaned paths that may not climb out of the
//! staging directory, tarballs are unpacked by the one safe extractor, and the staged content
//! is held to one budget of bytes and files ([`ExtractOptions`], the limits of an extracted
//! source artifact).

use std::collections::BTreeMap;
use std::fs::FileType;
use std::path::{Component, Path, PathBuf};

use ferroflux_api::artifactgenerator::{CopyOperation, STRATEGY_EXTRACT, STRATEGY_MERGE};
use ferroflux_kustomize::fs::FileSystem;
use ferroflux_source::artifact::{ExtractOptions, extract_tar_gz};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

use crate::rootfs::RootedFs;

/// A copy operation could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// One operation failed; names it as the spec wrote it.
    #[error("failed to apply copy operation from '{from}' to '{to}': {source}")]
    Operation {
        /// `from` of the operation.
        from: String,
        /// `to` of the operation.
        to: String,
        /// What failed.
        #[source]
        source: Box<BuildError>,
    },
    /// `from` is not `@alias/pattern`.
    #[error("invalid copy source '{0}': source format must be '@alias/pattern'")]
    InvalidFrom(String),
    /// `to` is not `@artifact/path`.
    #[error("invalid copy destination '{0}': destination must start with '@artifact/'")]
    InvalidTo(String),
    /// `to` climbs out of the artifact.
    #[error("invalid copy destination '{0}': the path leaves the artifact root")]
    DestinationOutside(String),
    /// No source has the alias.
    #[error("source alias '{0}' not found")]
    UnknownAlias(String),
    /// An exclude pattern does not compile.
    #[error("invalid exclude pattern '{0}'")]
    InvalidExclude(String),
    /// The `from` glob does not compile.
    #[error("invalid glob pattern '{0}'")]
    InvalidGlob(String),
    /// A glob matched nothing.
    #[error("no files match pattern '{pattern}' in source '{alias}'")]
    NoMatch {
        /// The glob.
        pattern: String,
        /// The source alias.
        alias: String,
    },
    /// Every match was excluded.
    #[error("all files matching pattern '{pattern}' in source '{alias}' were excluded")]
    AllExcluded {
        /// The glob.
        pattern: String,
        /// The source alias.
        alias: String,
    },
    /// A plain source path does not exist.
    #[error("source '{0}' does not exist")]
    Missing(String),
    /// A source path is refused or unreadable (outside the source, through a symlink, ...).
    #[error("{0}")]
    Source(String),
    /// `Extract` on a directory.
    #[error("extract strategy is not supported for directories, got '{0}'")]
    ExtractDirectory(String),
    /// `Extract` on a file that is not a tarball.
    #[error("extract strategy requires tarball file (.tar.gz or .tgz), got '{0}'")]
    ExtractNotTarball(String),
    /// A tarball was refused or could not be unpacked.
    #[error("failed to extract tarball '{path}': {message}")]
    Extract {
        /// The tarball in the source.
        path: String,
        /// Why.
        message: String,
    },
    /// A YAML merge failed.
    #[error("failed to merge '{path}': {message}")]
    Merge {
        /// The source file.
        path: String,
        /// Why.
        message: String,
    },
    /// Writing into the staging directory failed.
    #[error("failed to write '{path}': {message}")]
    Write {
        /// The destination path in the artifact.
        path: String,
        /// Why.
        message: String,
    },
    /// The staged content is larger than the budget.
    #[error(
        "the generated artifact exceeds the size limit of {max} bytes; copy fewer files into it"
    )]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// The staged content holds too many files.
    #[error("the generated artifact exceeds the limit of {max} files; copy fewer files into it")]
    TooManyFiles {
        /// The limit.
        max: u64,
    },
}

/// What is left of the budget of one artifact.
struct Budget {
    limits: ExtractOptions,
    bytes: u64,
    files: u64,
}

impl Budget {
    fn take(&mut self, bytes: u64, files: u64) -> Result<(), BuildError> {
        self.bytes = self.bytes.saturating_add(bytes);
        self.files = self.files.saturating_add(files);
        if self.bytes > self.limits.max_size {
            return Err(BuildError::TooLarge {
                max: self.limits.max_size,
            });
        }
        if self.files > self.limits.max_entries {
            return Err(BuildError::TooManyFiles {
                max: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// The limits left for one extraction.
    fn remaining(&self) -> ExtractOptions {
        ExtractOptions {
            max_size: self.limits.max_size.saturating_sub(self.bytes),
            max_entries: self.limits.max_entries.saturating_sub(self.files),
        }
    }
}

/// Runs `operations` in order from `sources` (alias -> extracted artifact directory) into
/// the empty directory `staging`.
///
/// Guarantees: nothing is read outside a source directory or through a symlink, nothing is
/// written outside `staging`, and the files written (counting extracted tarballs) stay within
/// `limits`.
///
/// # Errors
/// [`BuildError::Operation`] naming the first operation that failed.
pub fn stage(
    operations: &[CopyOperation],
    sources: &BTreeMap<String, PathBuf>,
    staging: &Path,
    limits: &ExtractOptions,
) -> Result<(), BuildError> {
    let mut budget = Budget {
        limits: limits.clone(),
        bytes: 0,
        files: 0,
    };
    for op in operations {
        apply(op, sources, staging, &mut budget).map_err(|source| BuildError::Operation {
            from: op.from.clone(),
            to: op.to.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// `@alias/pattern` -> (alias, pattern).
fn parse_from(from: &str) -> Result<(&str, &str), BuildError> {
    from.strip_prefix('@')
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| BuildError::InvalidFrom(from.to_string()))
}

/// `@artifact/path` -> the cleaned relative path in the artifact. A leading `/` stays inside
/// (as Go's `filepath.Join` reads it); `..` may not climb above the artifact root.
fn parse_to(to: &str) -> Result<PathBuf, BuildError> {
    let rel = to
        .strip_prefix("@artifact/")
        .ok_or_else(|| BuildError::InvalidTo(to.to_string()))?;
    clean_inside(Path::new(rel)).ok_or_else(|| BuildError::DestinationOutside(to.to_string()))
}

/// `path` without `.`, `..` and root components, or `None` when `..` climbs above its start.
fn clean_inside(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                if !clean.pop() {
                    return None;
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(clean)
}

fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']'])
}

fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
}

/// The exclude rules of one operation.
struct Excludes {
    /// (matcher, whether the pattern has a `/`).
    patterns: Vec<(GlobMatcher, bool)>,
}

impl Excludes {
    fn new(patterns: &[String]) -> Result<Self, BuildError> {
        let patterns = patterns
            .iter()
            .map(|p| {
                glob(p)
                    .map(|m| (m, p.contains('/')))
                    .map_err(|_| BuildError::InvalidExclude(p.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Excludes { patterns })
    }

    fn matches(&self, path: &Path) -> bool {
        let name = path.file_name().map(Path::new);
        self.patterns.iter().any(|(m, has_slash)| {
            m.is_match(path) || (!has_slash && name.is_some_and(|n| m.is_match(n)))
        })
    }

    /// Whether `path` (from the source root) is excluded, also read from `base` (the non-glob
    /// prefix of `from`).
    fn excludes(&self, path: &Path, base: &Path) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        if self.matches(path) {
            return true;
        }
        match path.strip_prefix(base) {
            Ok(rel) if !base.as_os_str().is_empty() && !rel.as_os_str().is_empty() => {
                self.matches(rel)
            }
            _ => false,
        }
    }
}

/// The literal directories of `pattern` before its first glob segment.
fn selection_root(pattern: &Path) -> PathBuf {
    pattern
        .components()
        .take_while(|c| !has_glob(&c.as_os_str().to_string_lossy()))
        .collect()
}

fn is_tarball(path: &Path) -> bool {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    lower.ends_with(".tar.gz") || lower.ends_with(".tgz")
}

/// One copy operation.
fn apply(
    op: &CopyOperation,
    sources: &BTreeMap<String, PathBuf>,
    staging: &Path,
    budget: &mut Budget,
) -> Result<(), BuildError> {
    let (alias, pattern) = parse_from(&op.from)?;
    let dest = parse_to(&op.to)?;
    let root = sources
        .get(alias)
        .ok_or_else(|| BuildError::UnknownAlias(alias.to_string()))?;
    let excludes = Excludes::new(op.exclude.as_deref().unwrap_or_default())?;
    let source = RootedFs::new(root).map_err(|e| BuildError::Source(e.to_string()))?;
    let max_entries = budget.limits.max_entries;
    let mut copier = Copier {
        source: &source,
        root,
        staging,
        excludes: &excludes,
        merge: op.strategy.as_deref() == Some(STRATEGY_MERGE),
        budget,
    };
    let extract = op.strategy.as_deref() == Some(STRATEGY_EXTRACT);
    if !has_glob(pattern) {
        return copier.single(Path::new(pattern), &dest, op.to.ends_with('/'), extract);
    }
    let pattern_path = Path::new(pattern);
    let clean_pattern: PathBuf = pattern_path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let matches = if extract {
        // Extract reads `**` as any number of directories (doublestar).
        let matcher = glob(pattern).map_err(|_| BuildError::InvalidGlob(pattern.to_string()))?;
        let mut all = Vec::new();
        walk_all(&source, Path::new(""), &mut all, max_entries)?;
        all.into_iter()
            .filter(|(path, _)| matcher.is_match(path))
            .collect()
    } else {
        // As Go's `fs.Glob`: one pattern segment per path segment; `**` is `*`.
        let segments = clean_pattern
            .components()
            .map(|c| {
                let text = c.as_os_str().to_string_lossy().replace("**", "*");
                glob(&text.replace("[^", "[!"))
                    .map_err(|_| BuildError::InvalidGlob(pattern.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut found = Vec::new();
        glob_segments(&source, Path::new(""), &segments, &mut found)?;
        found
    };
    if matches.is_empty() {
        return Err(BuildError::NoMatch {
            pattern: pattern.to_string(),
            alias: alias.to_string(),
        });
    }
    let base = selection_root(&clean_pattern);
    let kept: Vec<(PathBuf, FileType)> = matches
        .into_iter()
        .filter(|(path, _)| !excludes.excludes(path, &base))
        .collect();
    if kept.is_empty() {
        return Err(BuildError::AllExcluded {
            pattern: pattern.to_string(),
            alias: alias.to_string(),
        });
    }
    let strip = pattern.strip_suffix("/**").map(Path::new);
    for (path, file_type) in kept {
        if extract {
            if file_type.is_file() && is_tarball(&path) {
                copier.extract(&path, &dest)?;
            }
            continue;
        }
        let target = match strip.and_then(|prefix| path.strip_prefix(prefix).ok()) {
            Some(rel) if !rel.as_os_str().is_empty() => dest.join(rel),
            _ => dest.join(&path),
        };
        copier.copy(&path, file_type, &target, &base)?;
    }
    Ok(())
}

/// Matches `segments` one directory level at a time from `dir`, in name order.
fn glob_segments(
    source: &RootedFs,
    dir: &Path,
    segments: &[GlobMatcher],
    found: &mut Vec<(PathBuf, FileType)>,
) -> Result<(), BuildError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let entries = match source.read_dir(dir) {
        Ok(entries) => entries,
        // A literal segment naming no directory matches nothing, as in Go.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BuildError::Source(e.to_string())),
    };
    for (name, file_type) in entries {
        if file_type.is_symlink() || !first.is_match(Path::new(&name)) {
            continue;
        }
        let path = dir.join(&name);
        if rest.is_empty() {
            found.push((path, file_type));
        } else if file_type.is_dir() {
            glob_segments(source, &path, rest, found)?;
        }
    }
    Ok(())
}

/// Every file and directory under `dir`, depth first in name order; at most `max` (a source
/// holds no more entries than its extraction allowed).
fn walk_all(
    source: &RootedFs,
    dir: &Path,
    out: &mut Vec<(PathBuf, FileType)>,
    max: u64,
) -> Result<(), BuildError> {
    let entries = source
        .read_dir(dir)
        .map_err(|e| BuildError::Source(e.to_string()))?;
    for (name, file_type) in entries {
        if file_type.is_symlink() {
            continue;
        }
        if out.len() as u64 >= max {
            return Err(BuildError::TooManyFiles { max });
        }
        let path = dir.join(&name);
        out.push((path.clone(), file_type));
        if file_type.is_dir() {
            walk_all(source, &path, out, max)?;
        }
    }
    Ok(())
}

/// Copies from one source into the staging directory.
struct Copier<'a> {
    source: &'a RootedFs,
    root: &'a Path,
    staging: &'a Path,
    excludes: &'a Excludes,
    merge: bool,
    budget: &'a mut Budget,
}

impl Copier<'_> {
    /// A plain (non-glob) `from`: `cp` semantics by what the path is.
    fn single(
        &mut self,
        path: &Path,
        dest: &Path,
        into_dir: bool,
        extract: bool,
    ) -> Result<(), BuildError> {
        let clean: PathBuf = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let display = if clean.as_os_str().is_empty() {
            ".".to_string()
        } else {
            clean.display().to_string()
        };
        if !self.source.exists(&clean) {
            // Tell a refused path (`..`, a symlink) from a missing one.
            return match self.source.canonicalize(&clean) {
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    Err(BuildError::Source(e.to_string()))
                }
                _ => Err(BuildError::Missing(display)),
            };
        }
        if self.source.is_dir(&clean) {
            if extract {
                return Err(BuildError::ExtractDirectory(display));
            }
            // `cp -r dir dest`: the directory lands as `dest/dir` (the root as `dest`).
            let target = match clean.file_name() {
                Some(name) => dest.join(name),
                None => dest.to_path_buf(),
            };
            return self.copy_dir(&clean, &target, &clean);
        }
        if self.excludes.excludes(&clean, Path::new("")) {
            return Ok(());
        }
        if extract {
            if !is_tarball(&clean) {
                return Err(BuildError::ExtractNotTarball(display));
            }
            return self.extract(&clean, dest);
        }
        let name = clean.file_name().map(PathBuf::from).unwrap_or_default();
        let target = if into_dir || self.staging.join(dest).is_dir() {
            dest.join(name)
        } else {
            dest.to_path_buf()
        };
        self.copy_file(&clean, &target)
    }

    /// A glob match: a directory recursively, a file as itself.
    fn copy(
        &mut self,
        path: &Path,
        file_type: FileType,
        target: &Path,
        base: &Path,
    ) -> Result<(), BuildError> {
        if file_type.is_dir() {
            self.copy_dir(path, target, base)
        } else if file_type.is_file() {
            self.copy_file(path, target)
        } else {
            Ok(())
        }
    }

    fn copy_dir(&mut self, dir: &Path, target: &Path, base: &Path) -> Result<(), BuildError> {
        self.mkdir(target)?;
        let entries = self
            .source
            .read_dir(dir)
            .map_err(|e| BuildError::Source(e.to_string()))?;
        for (name, file_type) in entries {
            let path = dir.join(&name);
            if file_type.is_symlink() || self.excludes.excludes(&path, base) {
                continue;
            }
            if file_type.is_dir() {
                self.copy_dir(&path, &target.join(&name), base)?;
            } else if file_type.is_file() {
                self.copy_file(&path, &target.join(&name))?;
            }
        }
        Ok(())
    }

    fn mkdir(&self, rel: &Path) -> Result<(), BuildError> {
        // The staging directory is ours and holds no symlinks (the extractor drops them), and
        // `rel` is a cleaned relative path: creating it stays inside.
        std::fs::create_dir_all(self.staging.join(rel)).map_err(|e| BuildError::Write {
            path: rel.display().to_string(),
            message: e.to_string(),
        })
    }

    fn copy_file(&mut self, path: &Path, target: &Path) -> Result<(), BuildError> {
        let contents = self
            .source
            .read(path)
            .map_err(|e| BuildError::Source(e.to_string()))?;
        let write_err = |e: std::io::Error| BuildError::Write {
            path: target.display().to_string(),
            message: e.to_string(),
        };
        let dest = self.staging.join(target);
        let contents = if self.merge && dest.is_file() {
            let base = std::fs::read(&dest).map_err(write_err)?;
            merge_yaml(&base, &contents).map_err(|message| BuildError::Merge {
                path: path.display().to_string(),
                message,
            })?
        } else {
            contents
        };
        self.budget.take(contents.len() as u64, 1)?;
        if let Some(parent) = target.parent() {
            self.mkdir(parent)?;
        }
        let staging = RootedFs::new(self.staging).map_err(write_err)?;
        staging.write(&dest, &contents).map_err(write_err)?;
        // Keep the execute bit, which the packed artifact records.
        let executable = self
            .source
            .canonicalize(&self.root.join(path))
            .and_then(std::fs::symlink_metadata)
            .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0);
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(write_err)?;
        }
        Ok(())
    }

    fn extract(&mut self, path: &Path, dest: &Path) -> Result<(), BuildError> {
        let fail = |message: String| BuildError::Extract {
            path: path.display().to_string(),
            message,
        };
        let bytes = self
            .source
            .read(path)
            .map_err(|e| BuildError::Source(e.to_string()))?;
        self.mkdir(dest)?;
        let summary = extract_tar_gz(
            &bytes[..],
            &self.staging.join(dest),
            &self.budget.remaining(),
        )
        .map_err(|e| fail(e.to_string()))?;
        self.budget.take(
            summary.bytes,
            u64::try_from(summary.files).unwrap_or(u64::MAX),
        )
    }
}

/// Source-watcher's `Merge`: every YAML document of each file is merged into one map (Helm's
/// values merge: maps merge key by key, anything else replaces), then `overlay` into `base`.
fn merge_yaml(base: &[u8], overlay: &[u8]) -> Result<Vec<u8>, String> {
    let mut merged = load_yaml(base)?;
    ferroflux_helm::chartutil::merge_maps(&mut merged, load_yaml(overlay)?);
    serde_saphyr::to_string(&merged)
        .map(String::into_bytes)
        .map_err(|e| e.to_string())
}

fn load_yaml(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let documents: Vec<Value> =
        ferroflux_gocompat::yaml::from_multiple(text).map_err(|e| e.to_string())?;
    let mut merged = Value::Object(Default::default());
    for document in documents {
        match document {
            Value::Object(_) => ferroflux_helm::chartutil::merge_maps(&mut merged, document),
            Value::Null => {}
            _ => return Err("a YAML document is not a map".into()),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(from: &str, to: &str) -> CopyOperation {
        CopyOperation {
            from: from.into(),
            to: to.into(),
            ..Default::default()
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        sources: BTreeMap<String, PathBuf>,
        staging: PathBuf,
    }

    fn fixture(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("src");
        for (path, text) in files {
            let path = src.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        std::fs::create_dir_all(&src).expect("mkdir");
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).expect("mkdir");
        Fixture {
            sources: BTreeMap::from([("src".to_string(), src)]),
            staging,
            _dir: dir,
        }
    }

    fn run(f: &Fixture, ops: &[CopyOperation]) -> Result<Vec<String>, BuildError> {
        stage(ops, &f.sources, &f.staging, &ExtractOptions::default())?;
        let staged = RootedFs::new(&f.staging).expect("staging");
        let mut entries = Vec::new();
        walk_all(&staged, Path::new(""), &mut entries, u64::MAX)?;
        let mut files: Vec<String> = entries
            .into_iter()
            .filter(|(_, file_type)| !file_type.is_dir())
            .map(|(path, _)| path.display().to_string())
            .collect();
        files.sort();
        Ok(files)
    }

    #[test]
    fn copies_follow_source_watchers_cp_rules() {
        let f = fixture(&[
            ("config.yaml", "a: 1"),
            ("deploy/app.yaml", "x"),
            ("deploy/sub/db.yaml", "y"),
            ("deploy/README.md", "r"),
            ("configs/one.yaml", "1"),
        ]);
        let files = run(
            &f,
            &[
                op("@src/config.yaml", "@artifact/apps/"),
                op("@src/config.yaml", "@artifact/env.yaml"),
                CopyOperation {
                    exclude: Some(vec!["*.md".into()]),
                    ..op("@src/deploy/**", "@artifact/flat/")
                },
                op("@src/configs/*.yaml", "@artifact/kept/"),
                op("@src/configs", "@artifact/tree"),
            ],
        )
        .expect("stages");
        assert_eq!(
            files,
            [
                "apps/config.yaml",
                "env.yaml",
                "flat/app.yaml",
                "flat/sub/db.yaml",
                "kept/configs/one.yaml",
                "tree/configs/one.yaml",
            ]
        );
    }

    #[test]
    fn excludes_match_from_the_source_root_the_selection_root_and_the_file_name() {
        let f = fixture(&[
            ("infra/descheduler/release.yaml", "top"),
            ("infra/controllers/descheduler/release.yaml", "nested"),
            ("infra/controllers/testdata/x.yaml", "t"),
        ]);
        let files = run(
            &f,
            &[CopyOperation {
                exclude: Some(vec!["descheduler/**".into(), "**/testdata/**".into()]),
                ..op("@src/infra/**", "@artifact/")
            }],
        )
        .expect("stages");
        assert_eq!(files, ["controllers/descheduler/release.yaml"]);
    }

    #[test]
    fn merge_deep_merges_yaml_and_replaces_lists() {
        let f = fixture(&[
            (
                "chart/values.yaml",
                "image: {tag: v1, repo: r}\nports: [1, 2]\n",
            ),
            ("prod.yaml", "image: {tag: v2}\nports: [3]\n"),
        ]);
        run(
            &f,
            &[
                op("@src/chart/", "@artifact/"),
                CopyOperation {
                    strategy: Some(STRATEGY_MERGE.into()),
                    ..op("@src/prod.yaml", "@artifact/chart/values.yaml")
                },
            ],
        )
        .expect("stages");
        let merged: Value = ferroflux_gocompat::yaml::from_str(
            &std::fs::read_to_string(f.staging.join("chart/values.yaml")).expect("read"),
        )
        .expect("yaml");
        assert_eq!(
            merged,
            serde_json::json!({"image": {"tag": "v2", "repo": "r"}, "ports": [3]})
        );
    }

    #[test]
    fn nothing_is_read_or_written_outside_the_roots() {
        let f = fixture(&[("a.yaml", "a")]);
        let outside = f.staging.parent().expect("parent").join("secret");
        std::fs::write(&outside, "token").expect("write");
        std::os::unix::fs::symlink(&outside, f.sources["src"].join("link.yaml")).expect("link");
        for (from, to, want) in [
            (
                "@src/../secret",
                "@artifact/",
                "path ../secret is outside the source artifact",
            ),
            (
                "@src/link.yaml",
                "@artifact/",
                "symlinks in artifacts are not followed",
            ),
            (
                "@src/a.yaml",
                "@artifact/../../escaped.yaml",
                "the path leaves the artifact root",
            ),
        ] {
            let err = run(&f, &[op(from, to)]).expect_err(from);
            let message = err.to_string();
            assert!(message.contains(want), "{from} -> {to}: {message}");
            assert!(
                !message.contains(&*f.staging.to_string_lossy()),
                "no temp path in {message}"
            );
        }
        // A glob only ever sees what is inside the source, and links are skipped.
        let files = run(&f, &[op("@src/*.yaml", "@artifact/")]).expect("stages");
        assert_eq!(files, ["a.yaml"]);
        let files = run(&f, &[op("@src/a.yaml", "@artifact//abs.yaml")]).expect("stages");
        assert!(files.contains(&"abs.yaml".to_string()), "{files:?}");
        assert!(
            !f.staging
                .parent()
                .expect("parent")
                .join("escaped.yaml")
                .exists()
        );
    }

    #[test]
    fn the_staged_content_is_held_to_the_budget() {
        let f = fixture(&[("a", "12345"), ("b", "12345")]);
        let limits = ExtractOptions {
            max_size: 8,
            max_entries: 10,
        };
        let err = stage(
            &[op("@src/*", "@artifact/")],
            &f.sources,
            &f.staging,
            &limits,
        )
        .expect_err("too large");
        assert!(
            err.to_string()
                .contains("exceeds the size limit of 8 bytes"),
            "{err}"
        );
    }

    #[test]
    fn unmatched_and_fully_excluded_globs_fail() {
        let f = fixture(&[("a.md", "a")]);
        let err = run(&f, &[op("@src/*.yaml", "@artifact/")]).expect_err("no match");
        assert_eq!(
            err.to_string(),
            "failed to apply copy operation from '@src/*.yaml' to '@artifact/': \
             no files match pattern '*.yaml' in source 'src'"
        );
        let err = run(
            &f,
            &[CopyOperation {
                exclude: Some(vec!["*.md".into()]),
                ..op("@src/*", "@artifact/")
            }],
        )
        .expect_err("all excluded");
        assert!(err.to_string().ends_with("were excluded"), "{err}");
    }
}
