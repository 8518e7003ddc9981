//! The YAML layer: an order-preserving document model, a reader with go-yaml v3's scalar
//! rules and a writer byte-compatible with kustomize's output.

pub mod emit;
pub mod parse;
pub mod value;

pub use emit::{to_yaml, to_yaml_stream};
pub use parse::{YamlError, parse_documents};
pub use value::{Map, Value};
