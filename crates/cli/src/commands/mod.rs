//! One module per command; each has an `Args` struct and a `run` function.

pub mod apiserver;
pub mod artifact;
pub mod controller;
pub mod create;
pub mod get;
pub mod helm;
pub mod install;
pub mod kustomize;
pub mod policy;
pub mod policy_webhook;
pub mod reconcile;
pub mod up;
pub mod validate;
pub mod version;
