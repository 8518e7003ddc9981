//! Image automation for ferroflux: what an ImageRepository scan keeps ([`scan`]: canonical
//! image names, `exclusionList`, the tags and their revision) and where it keeps them
//! ([`store`], on disk), ImagePolicy tag selection ([`policy`]) and format-preserving rewrites
//! of `# {"$imagepolicy": ...}` setter markers in YAML ([`setters`]).
//!
//! The registry call itself stays with the controller: listing tags needs credentials from
//! the cluster and the OCI client of `ferroflux-source`, which sits above this crate.
#![deny(missing_docs)]

pub mod policy;
pub mod scan;
pub mod setters;
pub mod store;
