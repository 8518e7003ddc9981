//! Flux's notification decisions, without I/O: the event payload every controller posts
//! ([`event`]), which Alerts forward an event and with what metadata ([`alert`]), the key of
//! Flux's rate limit of identical events ([`event::rate_limit_key`]), the request each
//! Provider type sends ([`provider`]: HTTP requests, NATS publishes, pull request comment
//! plans), and the Receiver's webhook path, signature checks and OIDC token checks
//! ([`receiver`], [`receiver::oidc`]). The notification controller (`ferroflux_controllers::notification`) reads
//! the objects, calls these and does the sending.
#![deny(missing_docs)]

pub mod alert;
pub mod event;
pub mod provider;
pub mod receiver;

pub use event::Event;
