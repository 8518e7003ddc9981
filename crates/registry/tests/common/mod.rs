//! A registry served on a free loopback port for the duration of a test.

#![allow(dead_code)]

use std::net::SocketAddr;

/// The registry, with the runtime serving it and its storage.
pub struct Served {
    pub runtime: tokio::runtime::Runtime,
    pub registry: Option<ferroflux_registry::RunningRegistry>,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.registry
            .as_ref()
            .map(|r| r.host())
            .expect("the registry runs")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.take() {
            self.runtime.block_on(registry.shutdown());
        }
    }
}

/// Starts the registry over a temp directory on `127.0.0.1:0`.
pub fn serve() -> Served {
    serve_with(ferroflux_registry::Limits::default())
}

/// Starts the registry with `limits` over a temp directory on `127.0.0.1:0`.
pub fn serve_with(limits: ferroflux_registry::Limits) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = ferroflux_registry::Config::new(dir.path().join("registry"), listen);
    config.limits = limits;
    let registry = runtime
        .block_on(ferroflux_registry::serve(config))
        .expect("the registry starts");
    Served {
        runtime,
        registry: Some(registry),
        dir,
    }
}
