//! What can stop the embedded control plane from starting. The messages are the ones `up`
//! printed before the control plane became a library; the cause follows as the source.

use std::path::{Path, PathBuf};

/// Errors starting the embedded control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data dir cannot be created.
    #[error("cannot create the data dir {}", path.display())]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The API server did not start.
    #[error("the API server did not start")]
    ApiServer(#[source] ferroflux_apiserver::Error),
    /// A port kept from an earlier run is in use.
    #[error("{server} server port {port} is taken")]
    PortTaken {
        /// `artifact` or `git`.
        server: &'static str,
        /// The kept port.
        port: u16,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The local OCI registry did not start.
    #[error("the OCI registry did not start")]
    Registry(#[source] ferroflux_registry::Error),
    /// A file or folder of a repository's content cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A local Git repository cannot be created.
    #[error("cannot create {}", path.display())]
    CreateRepository {
        /// The bare repository's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: git2::Error,
    },
    /// Writing the first commit of a local repository failed.
    #[error(transparent)]
    Git(#[from] git2::Error),
    /// Other local I/O (the Git root, the ports file, sockets).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON encoding (the ports file, the CRDs).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The artifact storage cannot be opened.
    #[error(transparent)]
    Storage(#[from] ferroflux_source::storage::StorageError),
    /// The API server's kubeconfig is not usable.
    #[error(transparent)]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The client for the API server cannot be built.
    #[error(transparent)]
    Client(#[from] kube::Error),
    /// The bootstrap manifests are not YAML.
    #[error(transparent)]
    Yaml(#[from] ferroflux_gocompat::yaml::Error),
    /// The seed's artifacts cannot be pushed to the local registry.
    #[error("cannot publish the seed's artifacts")]
    Oci(#[from] ferroflux_source::oci::OciError),
    /// The seed's artifact cannot be signed.
    #[error("cannot sign the seed's artifact")]
    Cosign(#[from] ferroflux_source::oci::cosign::CosignError),
    /// The seed's signing key cannot be made.
    #[error("cannot generate the seed's signing key: {0}")]
    Key(String),
    /// The bootstrap objects cannot be applied (boxed: the apply error is large).
    #[error(transparent)]
    Apply(Box<ferroflux_apply::manager::ApplyError>),
}

impl From<ferroflux_apply::manager::ApplyError> for Error {
    fn from(error: ferroflux_apply::manager::ApplyError) -> Self {
        Error::Apply(Box::new(error))
    }
}

impl Error {
    /// Maps an I/O error reading `path` to [`Error::Read`].
    pub(crate) fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}
