//! Artifacts: deterministic `.tar.gz` packaging, Flux's ignore rules, and safe extraction.
//!
//! Expected flow: a fetcher checks a source out into a directory, [`pack_dir`] packs it with
//! the [`IgnoreRules`] of the object into a tarball whose `sha256:<hex>` digest depends only
//! on the paths, contents and executable bits of the files kept (never on mtimes, owners,
//! umask or directory listing order), and [`crate::storage::Storage`] stores it. Consumers
//! download it and call [`extract_tar_gz`], which refuses anything that could write outside
//! the target directory, drops symlinks as Flux does, and reads at most one budget of
//! decompressed bytes with every header capped (see [`ExtractOptions`]).

mod extract;
mod ignore;
mod include;
mod pack;

use std::collections::BTreeMap;

pub(crate) use extract::safe_relative;
pub use extract::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_UNTAR_SIZE, ExtractError, ExtractOptions, ExtractSummary,
    MAX_LONG_NAME, MAX_PAX_HEADER, extract_tar_gz,
};
pub use ignore::{
    EXCLUDE_EXT, EXCLUDE_VCS, IgnoreError, IgnoreRules, KeyFilter, SOURCE_IGNORE_FILE,
};
pub use include::{IncludeError, copy_include};
pub use pack::{PackError, Packed, pack_dir, pack_path};

/// A stored artifact, the data of a source's `status.artifact`.
///
/// A plain struct until `ferroflux-api` carries Flux's `Artifact` type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path relative to the storage root: `<kind>/<namespace>/<name>/<file>.tar.gz`.
    pub path: String,
    /// Where the artifact server serves it.
    pub url: String,
    /// The source revision, e.g. `main@sha1:<hash>` or `1.0.0@sha256:<hex>`.
    pub revision: String,
    /// `sha256:<hex>` of the tarball.
    pub digest: String,
    /// Size of the tarball in bytes.
    pub size: u64,
    /// When it was stored.
    pub last_update_time: jiff::Timestamp,
    /// Extra data, e.g. OCI annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}
