//! Go-compatible formats shared by every engine, so the same input means the same thing in every
//! kind and every reader refuses hostile input the same way. Pure: no I/O.
//!
//! - [`yaml`]: the one budget for reading untrusted YAML (bytes, depth, documents, nodes and
//!   go-yaml v3's "excessive aliasing" rule), for serde readers and event-loop readers alike;
//!   and go-yaml's writer ([`yaml::emit`]).
//! - [`duration`]: Go's `time.ParseDuration` with checked arithmetic and `Duration.String()`.
//! - [`float`]: Go's float text (`strconv.FormatFloat` shortest, `encoding/json`).
//! - [`json`]: Go's `encoding/json` string escaping.
//! - [`path`]: Go's `path.Clean`.
//! - [`regex`]: Go `regexp` patterns (RE2 syntax and meaning) compiled with the `regex` crate.
//! - [`time`]: Go's time layouts (`Time.Format`, `time.Parse`).
//!
//! ```
//! use ferroflux_gocompat::{duration, yaml};
//!
//! assert_eq!(duration::parse("1h30m").expect("valid"), 5_400_000_000_000);
//! assert_eq!(duration::format(90_000_000_000), "1m30s");
//! let doc: serde_json::Value = yaml::from_str("a: &x 1\nb: *x\n").expect("a few aliases are fine");
//! assert_eq!(doc["b"], 1);
//! ```
#![deny(missing_docs)]

pub mod duration;
pub mod float;
pub mod json;
pub mod path;
pub mod regex;
pub mod time;
pub mod yaml;
