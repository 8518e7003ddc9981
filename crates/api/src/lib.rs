//! Rust types for every object kind ferroflux serves: the Flux toolkit
//! (`source`, `kustomize`, `helm`, `image`, `notification` `*.toolkit.fluxcd.io`), Flagger's
//! `Canary` and Kyverno's `ClusterPolicy`/`Policy`; their CRDs; conversion between served
//! versions; and strict decoding of manifests against the CRD schemas.
//!
//! These structs are the only definition of a Flux object in the project. Each kind has one
//! spec/status type that holds the fields of every served version, so converting between
//! versions is relabelling `apiVersion` and loses nothing.
#![deny(missing_docs)]

#[macro_use]
mod macros;

pub mod artifactgenerator;
pub mod convert;
pub mod crds;
pub mod flagger;
pub mod helm;
pub mod image;
pub mod kustomize;
pub mod kyverno;
pub mod meta;
pub mod notification;
mod schema_helpers;
pub mod source;
pub mod strict;
pub mod wgpolicy;
