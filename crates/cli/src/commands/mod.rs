//! One module per command; each has an `Args` struct and a `run` function.

pub mod apiserver;
pub mod artifact;
pub mod build;
pub mod check;
pub mod cluster;
pub mod controller;
pub mod create;
pub mod events;
pub mod export;
pub mod get;
pub mod helm;
pub mod install;
pub mod kustomize;
pub mod policy;
pub mod policy_webhook;
pub mod reconcile;
pub mod stats;
pub mod suspend;
pub mod tree;
pub mod up;
pub mod validate;
pub mod version;
