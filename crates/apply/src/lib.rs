//! The resource manager of the kustomize and helm controllers.
//!
//! Decisions are pure functions on plain JSON objects: which stage an object is applied in
//! ([`stage`]), how it is named in an inventory and what a new inventory leaves behind to prune
//! ([`inventory`]), and whether it is healthy ([`health`], kstatus' rules). The
//! [`manager`] carries them out against an API server, as the identity [`identity`] chose.
#![deny(missing_docs)]

pub mod drift;
pub mod health;
pub mod identity;
pub mod inventory;
pub mod manager;
pub mod object;
pub mod stage;
