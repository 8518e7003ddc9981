//! The local OCI registry of `ferroflux up`: an OCI distribution-spec v1.1 server storing
//! content in a directory, for `push artifact`, OCIRepository, ImageRepository and cosign
//! signatures with no other server.
//!
//! It serves blobs (monolithic and chunked uploads, cross-repository mounts, sha256 and
//! sha512), manifests and indexes (OCI and Docker v2 schema 2 media types), tag lists with
//! pagination, the referrers API and deletes, with the spec's error codes. Pull and push are
//! anonymous: the registry is meant for loopback. Tenant-written input is bounded: names and
//! digests are validated before they reach a path ([`names`]), manifests, blobs and the number
//! of open uploads are limited ([`Limits`]), and writes are atomic.

#![deny(missing_docs)]

mod api;
pub mod names;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

/// Why the registry cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage directory cannot be prepared.
    #[error("registry storage {path}: {source}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address cannot be bound.
    #[error("registry cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Bounds on what clients may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest blob accepted, in bytes (default 1 GiB).
    pub max_blob_size: u64,
    /// Largest manifest accepted, in bytes (default 4 MiB, as distribution).
    pub max_manifest_size: usize,
    /// Most upload sessions open at once (default 256).
    pub max_upload_sessions: usize,
    /// Idle time after which an upload session ends (default 1 h).
    pub upload_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob_size: 1 << 30,
            max_manifest_size: 4 << 20,
            max_upload_sessions: 256,
            upload_timeout: api::DEFAULT_UPLOAD_TIMEOUT,
        }
    }
}

/// Where the registry stores content and listens.
#[derive(Debug, Clone)]
pub struct Config {
    /// The storage directory (created when missing).
    pub root: PathBuf,
    /// The listen address (port 0: a free one).
    pub listen: SocketAddr,
    /// Bounds on client input.
    pub limits: Limits,
}

impl Config {
    /// Storage at `root`, listening on `listen`, default limits.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Config {
        Config {
            root: root.into(),
            listen,
            limits: Limits::default(),
        }
    }
}

/// The registry's routes over storage at `root`, default limits, for embedding in a server.
pub fn router(root: impl Into<PathBuf>) -> Result<Router, Error> {
    router_with(root.into(), Limits::default())
}

/// The registry's routes over storage at `root` with `limits`.
pub fn router_with(root: PathBuf, limits: Limits) -> Result<Router, Error> {
    let store = store::Store::open(&root).map_err(|source| Error::Storage {
        path: root.clone(),
        source,
    })?;
    let registry = Arc::new(api::Registry::new(store, limits));
    Ok(Router::new()
        .fallback(api::dispatch)
        .with_state(registry)
        // Blobs stream to disk under `Limits`; axum's own 2 MB bound would cut them.
        .layer(DefaultBodyLimit::disable()))
}

/// A registry serving in the background.
pub struct RunningRegistry {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRegistry {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `HOST:PORT`, as image references name the registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops serving and waits for the server to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Binds `config.listen` and serves the registry until [`RunningRegistry::shutdown`].
pub async fn serve(config: Config) -> Result<RunningRegistry, Error> {
    let router = router_with(config.root, config.limits)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "the registry stopped");
        }
    });
    Ok(RunningRegistry { addr, stop, task })
}
