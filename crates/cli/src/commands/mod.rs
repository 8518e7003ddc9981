//! One module per command; each has an `Args` struct and a `run` function.

pub mod apiserver;
pub mod artifact;
pub mod controller;
pub mod get;
pub mod install;
pub mod kustomize;
pub mod reconcile;
pub mod up;
pub mod validate;
pub mod version;
