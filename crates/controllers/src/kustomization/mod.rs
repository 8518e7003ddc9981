//! The kustomize controller's build decisions: the kustomization overlay Flux writes from a
//! Kustomization's spec, post-build variable substitution, drift ignore rules and the
//! reconciliation history.

pub mod generator;
pub mod history;
pub mod ignore;
pub mod postbuild;
pub mod reconciler;
