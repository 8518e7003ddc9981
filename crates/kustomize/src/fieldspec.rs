//! Field specs: which fields of which kinds a transformer touches, and the built-in tables.

use std::sync::OnceLock;

use crate::resource::Gvk;
use crate::yaml::{Map, Value};

/// A field location in objects of selected kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSpec {
    /// Which objects (empty fields match anything).
    pub gvk: Gvk,
    /// Path segments; a `name[]` segment names a sequence.
    pub path: Vec<String>,
    /// Create the field when it is missing.
    pub create: bool,
}

impl FieldSpec {
    /// Builds from a `/`-separated path (`\/` escapes a slash inside a key).
    pub fn new(gvk: Gvk, path: &str, create: bool) -> Self {
        FieldSpec {
            gvk,
            path: split_path(path),
            create,
        }
    }

    /// The path joined back with `/`.
    pub fn path_string(&self) -> String {
        self.path
            .iter()
            .map(|s| s.replace('/', "\\/"))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Reads a field spec from kustomization/config YAML (`path`, `group`, `version`,
    /// `kind`, `create`).
    pub fn from_value(v: &Value) -> Option<Self> {
        let m = v.as_map()?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
        Some(FieldSpec::new(
            Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            &s("path"),
            matches!(m.get("create"), Some(Value::Bool(true))),
        ))
    }
}

/// Splits a field path on unescaped `/`.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Visits the values at `path` under `v`, walking into every element of sequences met
/// on the way. Missing fields are created (as null, mappings on the way) when `create`.
pub fn walk<E>(
    v: &mut Value,
    path: &[String],
    create: bool,
    f: &mut dyn FnMut(&mut Value) -> Result<(), E>,
) -> Result<(), E> {
    if path.is_empty() {
        return f(v);
    }
    match v {
        Value::Seq(items) => {
            for it in items {
                walk(it, path, create, f)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            let seg = path[0].strip_suffix("[]").unwrap_or(&path[0]);
            let is_seq = path[0].ends_with("[]");
            if !m.contains_key(seg) {
                if !create || (is_seq && path.len() > 1) {
                    return Ok(());
                }
                let init = if path.len() > 1 {
                    Value::Map(Map::new())
                } else {
                    Value::Null
                };
                m.insert(seg, init);
            }
            let child = m.get_mut(seg).expect("present or just inserted");
            if child.is_null() && path.len() > 1 {
                if !create {
                    return Ok(());
                }
                *child = Value::Map(Map::new());
            }
            walk(child, &path[1..], create, f)
        }
        _ => Ok(()),
    }
}

/// The built-in tables, by section name.
pub struct Builtins {
    rows: Vec<(String, FieldSpec)>,
    /// `(referral gvk, referrer field spec)` pairs.
    pub name_refs: Vec<(Gvk, FieldSpec)>,
}

impl Builtins {
    /// The field specs of one section (`commonLabels`, `namespace`, `images`, ...).
    pub fn section(&self, name: &str) -> Vec<FieldSpec> {
        self.rows
            .iter()
            .filter(|(s, _)| s == name)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

fn dash(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_string()
    }
}

/// The built-in field spec tables (parsed once).
pub fn builtins() -> &'static Builtins {
    static B: OnceLock<Builtins> = OnceLock::new();
    B.get_or_init(|| {
        let mut rows = Vec::new();
        let mut name_refs = Vec::new();
        for line in include_str!("fieldspecs.tbl").lines() {
            let cols: Vec<&str> = line.split(' ').collect();
            if cols.len() < 6 {
                continue;
            }
            let fs = FieldSpec::new(
                Gvk {
                    group: dash(cols[1]),
                    version: dash(cols[2]),
                    kind: dash(cols[3]),
                },
                cols[4],
                cols[5] == "c",
            );
            if let Some(rest) = cols[0].strip_prefix("nameReference:") {
                let parts: Vec<&str> = rest.split(':').collect();
                if parts.len() == 3 {
                    let target = Gvk {
                        group: dash(parts[0]),
                        version: dash(parts[1]),
                        kind: parts[2].to_string(),
                    };
                    name_refs.push((target, fs));
                }
            } else {
                rows.push((cols[0].to_string(), fs));
            }
        }
        Builtins { rows, name_refs }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn split_path_honours_escaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/a.io\\/b"),
            vec!["metadata", "annotations", "a.io/b"]
        );
    }

    #[test]
    fn walk_visits_every_sequence_element_and_creates_when_asked() {
        let mut v =
            parse_documents("spec:\n  c:\n  - image: a\n  - image: b\n").expect("ok")[0].clone();
        let mut seen = Vec::new();
        walk::<()>(&mut v, &split_path("spec/c/image"), false, &mut |x| {
            seen.push(x.clone());
            Ok(())
        })
        .expect("no error");
        assert_eq!(seen.len(), 2);
        walk::<()>(&mut v, &split_path("metadata/labels"), true, &mut |x| {
            *x = Value::Str("made".into());
            Ok(())
        })
        .expect("no error");
        assert_eq!(
            v.path(&["metadata", "labels"]),
            Some(&Value::Str("made".into()))
        );
    }

    #[test]
    fn builtin_tables_load() {
        let b = builtins();
        assert!(!b.section("commonLabels").is_empty());
        assert!(b.name_refs.iter().any(|(g, _)| g.kind == "ConfigMap"));
    }
}
