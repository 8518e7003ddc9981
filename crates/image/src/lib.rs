//! Image automation decisions for ferroflux: ImagePolicy tag selection ([`policy`]) and
//! format-preserving rewrites of `# {"$imagepolicy": ...}` setter markers in YAML
//! ([`setters`]). This crate does no I/O yet: registry scanning will live beside these pure
//! modules.
#![deny(missing_docs)]

pub mod policy;
pub mod setters;
