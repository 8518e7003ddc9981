//! The kustomize controller's build decisions: the kustomization overlay Flux writes from a
//! Kustomization's spec, and post-build variable substitution.

pub mod generator;
pub mod postbuild;
pub mod reconciler;
