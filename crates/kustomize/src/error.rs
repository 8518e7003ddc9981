//! The build error.

use std::path::PathBuf;

/// Why a build failed. Messages follow upstream kustomize's wording where tools or users
/// match on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A YAML file could not be parsed.
    #[error("{file}: invalid YAML at line {line}: {message}")]
    Yaml {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// Any other build failure, with upstream's message.
    #[error("{0}")]
    Msg(String),
}

impl Error {
    /// Wraps with a prefix, like Go's `errors.WrapPrefixf`.
    pub fn prefix(self, p: impl std::fmt::Display) -> Error {
        Error::Msg(format!("{p}: {self}"))
    }
}

/// Shorthand for a message error.
pub fn msg(s: impl Into<String>) -> Error {
    Error::Msg(s.into())
}

/// Build result.
pub type Result<T> = std::result::Result<T, Error>;
