//! Flux's reconcilers. Each controller reads its objects, calls pure functions that decide,
//! and writes once; the decisions live in plain modules tested without a server.
#![deny(missing_docs)]

pub mod conditions;
pub mod kustomization;
