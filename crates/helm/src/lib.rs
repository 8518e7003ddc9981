//! Helm charts for ferroflux, named as Helm names them: [`chartutil`] reads and checks
//! `Chart.yaml` and merges values files, [`loader`] finds a chart in a source tree and checks
//! chart references, [`package`] decides what a HelmChart artifact holds and how it is named,
//! [`chart`] loads a chart (directory or archive) and [`render`] renders it as Helm does.
//!
//! The crate does no I/O of its own. Chart content is untrusted, so it is read through a
//! [`FileSystem`](ferroflux_kustomize::fs::FileSystem) the caller passes in (the controllers
//! pass one rooted at the chart that refuses symlinks), and what is to be written (a merged
//! `values.yaml`) is returned for the caller to write.
#![deny(missing_docs)]

pub mod chart;
pub mod chartutil;
pub mod loader;
pub mod manifest;
pub mod package;
pub mod release;
pub mod render;
pub mod schema;
pub mod strvals;
pub mod template;
pub mod values;

pub use chart::{Chart, File, LoadError, load_archive, load_dir};
pub use render::{
    Capabilities, Hook, Lookup, ReleaseOptions, RenderError, RenderOptions, Rendered, render,
    render_with,
};
