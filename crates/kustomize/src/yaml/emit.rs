//! [`Value`] to YAML text exactly as kustomize prints it.
//!
//! kustomize serialises each resource to JSON and converts that with go-yaml v2
//! (`sigs.k8s.io/yaml.JSONToYAML`), so the printed form is go-yaml v2's; the writer is
//! [`ferroflux_gocompat::yaml::emit`] in its `Sigs` flavor.

use std::borrow::Cow;

use ferroflux_gocompat::yaml::emit::{self, Flavor, Node};

use super::value::Value;

/// Renders one document (with its trailing newline), as `yaml.Marshal` of go-yaml v2 does.
pub fn to_yaml(v: &Value) -> String {
    emit::to_string(&node(v), Flavor::Sigs)
}

/// Renders a stream of documents separated by `---`, as `kustomize build` prints a ResMap.
pub fn to_yaml_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(d));
    }
    out
}

/// The writer's view of a value, borrowing its strings.
fn node(v: &Value) -> Node<'_> {
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) => Node::Int(*i),
        Value::Float(f) => Node::Float(*f),
        Value::Str(s) => Node::Str(Cow::Borrowed(s)),
        Value::Seq(items) => Node::Seq(items.iter().map(node).collect()),
        Value::Map(m) => Node::Map(
            m.iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), node(v)))
                .collect(),
        ),
    }
}

/// A float as kustomize prints it: Go's JSON encoding, read back by go-yaml v2 (so whole
/// numbers print as integers) and printed with `%g`-shortest.
pub fn format_float(f: f64) -> String {
    emit::float_text(f, Flavor::Sigs)
}

/// Compact JSON of a value, keys in input order (used in error texts).
pub fn to_json(v: &Value) -> String {
    serde_json::to_string(&to_serde(v)).unwrap_or_default()
}

/// Converts to a `serde_json::Value` (mapping order becomes serde_json's sorted order).
pub fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Value::from(*f), // null when not finite
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_serde).collect()),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_serde(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse::parse_documents;

    fn roundtrip(src: &str) -> String {
        let docs = parse_documents(src).expect("valid");
        to_yaml(&docs[0])
    }

    #[test]
    fn sorts_keys_and_leaves_sequences_unindented() {
        let out = roundtrip("b: 1\na:\n  - x: 1\n    c: [1, 2]\n");
        assert_eq!(out, "a:\n- c:\n  - 1\n  - 2\n  x: 1\nb: 1\n");
    }

    #[test]
    fn quotes_strings_that_would_change_type() {
        let out = roundtrip("a: \"true\"\nb: \"1\"\nc: \"yes\"\nd: \"\"\ne: '*'\nf: \"1:20\"\n");
        assert_eq!(
            out,
            "a: \"true\"\nb: \"1\"\nc: \"yes\"\nd: \"\"\ne: '*'\nf: \"1:20\"\n"
        );
    }

    #[test]
    fn empty_collections_and_numbers() {
        let out = roundtrip("a: {}\nb: []\nc: 1.0\nd: 0.5\ne: 1e-7\nf: null\n");
        assert_eq!(out, "a: {}\nb: []\nc: 1\nd: 0.5\ne: 1e-07\nf: null\n");
    }
}
