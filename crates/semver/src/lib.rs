//! Masterminds/semver v3 compatible semantic versions and constraints, as Flux, Helm and Sprig
//! use them. Pure: no I/O.
//!
//! ```
//! use ferroflux_semver::{Constraints, Version};
//!
//! let range = Constraints::parse(">= 1.2, < 2 || ^3.1").expect("valid constraint");
//! assert!(range.check(&Version::parse("v1.4").expect("coerced to 1.4.0")));
//! assert!(!range.check(&Version::parse("1.5.0-rc.1").expect("valid")));
//! assert!(Version::parse_strict("1.2").is_err());
//! assert!(Version::parse("1.10.0").expect("valid") > Version::parse("1.9.0").expect("valid"));
//! ```
#![deny(missing_docs)]

mod constraints;
mod version;

pub use constraints::{ConstraintError, Constraints};
pub use version::{Version, VersionError};
