//! Flux's source ignore rules: default excludes, `.sourceignore` files and `spec.ignore`.

use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The per-directory ignore file Flux reads while packing.
pub const SOURCE_IGNORE_FILE: &str = ".sourceignore";

// fluxcd/pkg/sourceignore: VCS files, binary/archive extensions, CI folders, tool configs.
/// Version-control files: excluded from every artifact.
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];
/// Binary media and archives: excluded by default (`flux push artifact`'s default together
/// with [`EXCLUDE_VCS`]).
pub const EXCLUDE_EXT: &[&str] = &[
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
];
const EXCLUDE_CI_AND_TOOLS: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// An ignore pattern or file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern is not valid gitignore syntax.
    #[error(
        "ignore pattern {pattern:?} from {origin}: {source}; fix the pattern (gitignore syntax)"
    )]
    Pattern {
        /// The pattern.
        pattern: String,
        /// `spec.ignore` or the `.sourceignore` file.
        origin: String,
        /// What the parser said.
        #[source]
        source: ignore::Error,
    },
    /// A `.sourceignore` file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Which files of a directory go into an artifact.
///
/// Precedence as in Flux (last match wins): the default excludes, then `.sourceignore` files
/// from the root down (each scoped to its directory), then `spec.ignore`. A `!pattern` in a
/// later set re-includes what an earlier set excluded.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    use_defaults: bool,
    spec: Option<(String, Vec<String>)>,
    read_source_ignore: bool,
}

impl Default for IgnoreRules {
    fn default() -> Self {
        IgnoreRules::flux_defaults()
    }
}

impl IgnoreRules {
    /// Flux's behaviour for sources: default excludes and `.sourceignore` files.
    pub fn flux_defaults() -> Self {
        IgnoreRules {
            use_defaults: true,
            spec: None,
            read_source_ignore: true,
        }
    }

    /// Keep every regular file (no defaults, no `.sourceignore`): for packing a tree exactly.
    pub fn none() -> Self {
        IgnoreRules {
            use_defaults: false,
            spec: None,
            read_source_ignore: false,
        }
    }

    /// Adds the object's `spec.ignore` (gitignore lines, highest precedence).
    #[must_use]
    pub fn with_spec_ignore(mut self, spec_ignore: &str) -> Self {
        let lines = spec_ignore
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        self.spec = Some(("spec.ignore".into(), lines));
        self
    }

    /// Adds extra patterns (e.g. `--ignore-paths` of the CLI) with `spec.ignore` precedence.
    #[must_use]
    pub fn with_patterns<S: AsRef<str>>(mut self, patterns: &[S]) -> Self {
        let (_, lines) = self
            .spec
            .get_or_insert_with(|| ("ignore patterns".into(), Vec::new()));
        lines.extend(patterns.iter().map(|p| p.as_ref().to_string()));
        self
    }

    /// A filter for object keys (`a/b/c.yaml`) of sources that are not directories, such as
    /// buckets; `source_ignore` is the content of the root `.sourceignore` object, if any.
    ///
    /// # Errors
    /// [`IgnoreError::Pattern`] for an invalid pattern.
    pub fn key_filter(&self, source_ignore: Option<&str>) -> Result<KeyFilter, IgnoreError> {
        let root = PathBuf::from("/ferroflux-keys");
        let mut matcher = self.matcher(&root)?;
        if let (true, Some(text)) = (self.read_source_ignore, source_ignore) {
            let lines = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
            matcher.stack.push(build(&root, lines, SOURCE_IGNORE_FILE)?);
        }
        Ok(KeyFilter { matcher, root })
    }

    /// Binds the rules to the directory being packed.
    pub(crate) fn matcher(&self, root: &Path) -> Result<Matcher, IgnoreError> {
        let defaults = if self.use_defaults {
            Some(build(
                root,
                EXCLUDE_VCS
                    .iter()
                    .chain(EXCLUDE_EXT)
                    .chain(EXCLUDE_CI_AND_TOOLS),
                "Flux's default excludes",
            )?)
        } else {
            None
        };
        let spec = match &self.spec {
            Some((origin, lines)) => Some(build(root, lines.iter(), origin)?),
            None => None,
        };
        Ok(Matcher {
            defaults,
            spec,
            read_source_ignore: self.read_source_ignore,
            stack: Vec::new(),
        })
    }
}

fn build<S: AsRef<str>>(
    root: &Path,
    lines: impl Iterator<Item = S>,
    origin: &str,
) -> Result<Gitignore, IgnoreError> {
    let mut builder = GitignoreBuilder::new(root);
    for line in lines {
        let line = line.as_ref();
        builder
            .add_line(None, line)
            .map_err(|source| IgnoreError::Pattern {
                pattern: line.to_string(),
                origin: origin.to_string(),
                source,
            })?;
    }
    builder.build().map_err(|source| IgnoreError::Pattern {
        pattern: String::new(),
        origin: origin.to_string(),
        source,
    })
}

/// [`IgnoreRules`] applied to object keys rather than files on disk.
pub struct KeyFilter {
    matcher: Matcher,
    root: PathBuf,
}

impl KeyFilter {
    /// Whether the object `key` is excluded, by its own name or one of its directories.
    pub fn is_ignored(&self, key: &str) -> bool {
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        let mut path = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let is_dir = i + 1 < parts.len();
            if self.matcher.is_ignored(&path, is_dir) {
                return true;
            }
        }
        false
    }
}

/// The rules bound to one directory walk; `.sourceignore` files are pushed while descending.
pub(crate) struct Matcher {
    defaults: Option<Gitignore>,
    spec: Option<Gitignore>,
    read_source_ignore: bool,
    stack: Vec<Gitignore>,
}

impl Matcher {
    /// Reads `dir/.sourceignore` if present; returns whether one was pushed (pop it after
    /// leaving the directory).
    pub(crate) fn enter(&mut self, dir: &Path) -> Result<bool, IgnoreError> {
        if !self.read_source_ignore {
            return Ok(false);
        }
        let file = dir.join(SOURCE_IGNORE_FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(IgnoreError::Read { path: file, source }),
        };
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let gi = build(dir, lines, &file.display().to_string())?;
        self.stack.push(gi);
        Ok(true)
    }

    pub(crate) fn leave(&mut self) {
        self.stack.pop();
    }

    /// Whether `path` (absolute, under the root) is excluded.
    pub(crate) fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        let ordered = self
            .spec
            .iter()
            .chain(self.stack.iter().rev())
            .chain(self.defaults.iter());
        for gi in ordered {
            match gi.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }
}
