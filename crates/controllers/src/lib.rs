//! Flux's reconcilers. Each controller reads its objects, calls pure functions that decide,
//! and writes once; the decisions live in plain modules tested without a server.
#![deny(missing_docs)]

pub mod applier;
pub mod artifactgenerator;
pub mod bucket;
pub mod canary;
pub mod conditions;
pub mod events;
pub mod gitrepository;
pub mod helmchart;
pub mod helmrelease;
pub mod helmrepository;
pub mod imagepolicy;
pub mod imagerepository;
pub mod imageupdateautomation;
pub mod kustomization;
pub mod leader;
pub mod metrics;
pub mod notification;
pub mod ocirepository;
pub mod rootfs;
pub mod runtime;
pub mod simulator;
pub mod source;
