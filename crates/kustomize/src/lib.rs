//! `kustomize build` in Rust: a file tree in, a YAML stream out, byte-compatible with
//! upstream kustomize v5.
//!
//! The engine is pure: it reads files only through [`fs::FileSystem`] ([`fs::DiskFs`] for
//! the real disk, [`fs::MemFs`] for tests) and never touches the network (remote bases and
//! Helm charts are refused with an error that says so).
//!
//! ```
//! use std::path::Path;
//! use ferroflux_kustomize::{build, fs::MemFs, Options};
//!
//! let mut fs = MemFs::new();
//! fs.add("app/kustomization.yaml", "namePrefix: dev-\nresources:\n- cm.yaml\n")
//!     .add("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n");
//! let out = build(&fs, Path::new("/app"), Options::default()).expect("builds");
//! assert_eq!(out, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dev-c\n");
//! ```
//!
//! Layout: [`yaml`] (document model, go-yaml compatible reader and printer), [`loader`]
//! (paths, load restrictions, cycles), `build` (the pipeline in upstream's order),
//! [`transform`], [`patch`], [`generator`], [`nameref`] and [`vars`] (the transformers),
//! [`fieldspec`] (which fields of which kinds they touch).
#![deny(missing_docs)]

mod build;
pub mod error;
pub mod fieldspec;
pub mod fs;
pub mod generator;
pub mod loader;
pub mod nameref;
pub mod patch;
pub mod resource;
pub mod transform;
pub mod vars;
pub mod yaml;

pub use build::{
    KNOWN_FIELDS as KUSTOMIZATION_FIELDS, Options, Reorder, build, build_resources,
    resources_from_text,
};
pub use error::Error;
pub use loader::LoadRestrictor;
