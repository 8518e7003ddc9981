//! Flux sources for ferroflux: fetch, verify, package, store and serve artifacts.
//!
//! - [`artifact`]: deterministic `.tar.gz` packaging of a directory with Flux's ignore rules,
//!   the `sha256:<hex>` digest, and safe extraction of untrusted tarballs.
//! - [`storage`]: artifacts stored as `<root>/<kind>/<namespace>/<name>/<hash>.tar.gz`, the
//!   last N kept, older ones garbage-collected, and an HTTP file server for the root.
//! - [`bucket`]: S3-compatible buckets (Flux `provider: generic`) via object_store.
//! - [`git`]: clone/fetch with git2 (basic auth, bearer token, SSH keys + known_hosts), refs
//!   with Flux's precedence, revisions such as `main@sha1:<hash>`.
//! - [`http`]: the one HTTP client builder (connect and overall timeouts, CA bundles).
//! - [`helm_index`]: Helm HTTP repositories: `index.yaml`, semver chart selection, download.
//! - [`redact`]: the one scrubber of secrets and URL userinfo from messages.
//! - [`oci`]: Flux OCI artifacts (push, pull, tag, list, diff, resolve), Helm charts in
//!   OCI registries, and cosign keyed signatures (sign and verify).
//!
//! The [`Artifact`] record is a plain struct for now; once `ferroflux-api` carries Flux's
//! `Artifact` status type, the reconcilers convert between the two.
//!
//! Async functions (OCI, Helm, buckets, the artifact server) run on tokio; git and packaging
//! are blocking and belong in `tokio::task::spawn_blocking` inside a reconciler. Every
//! binary and test must install the rustls ring provider before the first HTTPS client.
//!
//! The integration tests (`tests/`) run against real peers started by
//! `ferroflux-testpeers` (docker-registry, lighttpd + git http-backend, git daemon, sshd,
//! moto) and skip with a message when a peer's program is missing.

#![deny(missing_docs)]

pub mod artifact;
pub mod bucket;
mod digest;
pub mod git;
pub mod helm_index;
pub mod http;
pub mod oci;
pub mod redact;
pub mod storage;
mod version;

pub use artifact::Artifact;
pub use digest::{Sha256Writer, sha256_digest};
pub use version::RangeError;
