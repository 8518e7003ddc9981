//! YAML as Helm writes and reads it.
//!
//! Helm's `toYaml` is `sigs.k8s.io/yaml.Marshal` (the value goes through JSON, then go-yaml
//! v2's emitter) and `toYamlPretty` is go-yaml v3 with two-space indentation; both are
//! [`ferroflux_gocompat::yaml::emit`]. Reading goes through serde-saphyr with Go's number rules.

use std::borrow::Cow;

use ferroflux_gocompat::yaml::emit::{self, Flavor, Node};

use crate::value::Value;

/// `sigs.k8s.io/yaml.Marshal`: the YAML document for `v`, ending with a newline.
pub fn to_yaml(v: &Value) -> String {
    emit::to_string(&node(v), Flavor::Sigs)
}

/// Helm's `toYamlPretty` (go-yaml v3, indent 2): sequences indented under their key, no folding.
pub fn to_yaml_pretty(v: &Value) -> String {
    emit::to_string(&node(v), Flavor::V3)
}

/// The writer's view of a template value; a host object is written as its plain value (as
/// JSON would marshal it), or `null` when it has none.
fn node(v: &Value) -> Node<'static> {
    match v {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) => Node::Int(*i),
        Value::Float(x) => Node::Float(*x),
        Value::Str(s) => Node::Str(Cow::Owned(s.to_string())),
        Value::List(l) => Node::Seq(l.iter().map(node).collect()),
        Value::Map(m) => Node::Map(
            m.read()
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), node(v)))
                .collect(),
        ),
        Value::Object(o) => match o.to_plain() {
            Value::Object(_) => Node::Null,
            plain => node(&plain),
        },
    }
}

/// `sigs.k8s.io/yaml.Unmarshal` into `interface{}`: YAML through JSON, so every number is a
/// `float64` and every key a string. An empty document is `Nil`.
///
/// # Errors
/// [`YamlError`] when the text is not YAML or breaks the YAML budget.
pub fn from_yaml(text: &str) -> Result<Value, YamlError> {
    if text.trim().is_empty() {
        return Ok(Value::Nil);
    }
    let v: serde_json::Value = ferroflux_gocompat::yaml::from_str(text).map_err(YamlError)?;
    Ok(crate::sprig::from_json_go(&v))
}

/// YAML that `sigs.k8s.io/yaml` could not read, worded as its message.
#[derive(Debug, thiserror::Error)]
#[error("error converting YAML to JSON: {}", go_yaml_message(.0))]
pub struct YamlError(#[source] pub ferroflux_gocompat::yaml::Error);

/// go-yaml's text of a reader error. Budget errors already carry go-yaml's `yaml: ` prefix.
fn go_yaml_message(e: &ferroflux_gocompat::yaml::Error) -> String {
    match e {
        ferroflux_gocompat::yaml::Error::Budget(b) => b.to_string(),
        ferroflux_gocompat::yaml::Error::Parse(p) => format!("yaml: {p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Map;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect::<Map>(),
        )
    }

    #[test]
    fn emits_like_sigs_yaml() {
        let v = obj(&[
            ("name", Value::str("web")),
            ("ports", Value::list(vec![Value::Int(80), Value::Int(443)])),
            (
                "labels",
                obj(&[("app", Value::str("true")), ("tier", Value::str("a: b"))]),
            ),
            ("ratio", Value::Float(1.5)),
            ("big", Value::Float(1234567.5)),
            ("script", Value::str("echo hi\necho there\n")),
            ("empty", obj(&[])),
            (
                "items",
                Value::list(vec![obj(&[("a", Value::Int(1)), ("b", Value::Nil)])]),
            ),
        ]);
        let want = "big: 1.2345675e+06\nempty: {}\nitems:\n- a: 1\n  b: null\nlabels:\n  app: \"true\"\n  tier: 'a: b'\nname: web\nports:\n- 80\n- 443\nratio: 1.5\nscript: |\n  echo hi\n  echo there\n";
        assert_eq!(to_yaml(&v), want);
    }

    #[test]
    fn folds_long_plain_strings() {
        let long = "word ".repeat(30);
        let v = obj(&[("k", Value::str(long.trim_end()))]);
        let out = to_yaml(&v);
        let first = out.lines().next().unwrap_or_default();
        assert!(first.len() > 80 && first.len() < 90, "{out}");
        assert!(
            out.lines().nth(1).unwrap_or_default().starts_with("  word"),
            "{out}"
        );
    }
}
