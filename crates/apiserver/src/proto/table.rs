//! The descriptor table (`k8s.table`, generated from Kubernetes' sources by
//! `tests/protobuf/table_gen.rs`), parsed once on first use.

use std::collections::HashMap;
use std::sync::LazyLock;

/// A scalar or message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `string`.
    Str,
    /// `bytes` (base64 in JSON).
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `double`.
    Double,
    /// `float`.
    Float,
    /// A message, by index in [`Table::messages`].
    Msg(usize),
}

/// How a field holds its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value.
    One,
    /// A repeated field (a JSON array).
    Rep,
    /// `map<string, value>` (a JSON object).
    Map,
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field number.
    pub tag: u32,
    /// JSON name; empty for a field inlined into its parent's JSON object.
    pub json: String,
    /// One, repeated or map.
    pub shape: Shape,
    /// The type (a map's value type).
    pub ty: Ty,
    /// A zero scalar is still written to JSON (a Go pointer, or no `omitempty`).
    pub keep_zero: bool,
}

/// Messages whose JSON form differs from their struct form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A message whose fields map one-to-one to JSON object members.
    None,
    /// `metav1.Time`: RFC 3339, seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339, microseconds.
    MicroTime,
    /// `resource.Quantity`: a string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `metav1.FieldsV1`, apiextensions `JSON`: JSON held in bytes.
    RawJson,
    /// apiextensions `JSONSchemaPropsOrArray`.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`.
    SchemaOrStringArray,
    /// A Go slice type wrapped for protobuf (`ExtraValue`): JSON is the array of its `items`.
    Array,
}

/// One message.
#[derive(Debug)]
pub struct Message {
    /// Fully qualified name.
    pub name: String,
    /// Its JSON form.
    pub special: Special,
    /// Fields, by tag.
    pub fields: Vec<Field>,
}

impl Message {
    /// The field with number `tag`.
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}

/// Every message, and the top-level kinds.
#[derive(Debug)]
pub struct Table {
    /// All messages.
    pub messages: Vec<Message>,
    by_name: HashMap<String, usize>,
    kinds: HashMap<(String, String), usize>,
    any_version: HashMap<String, usize>,
}

const SCHEMA_PROPS: &str =
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";

impl Table {
    /// The message of `apiVersion`/`kind`.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .or_else(|| self.any_version.get(kind))
            .copied()
    }

    /// The message named `name`.
    pub fn message(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// `JSONSchemaProps`, which the schema unions hold.
    pub fn schema_props(&self) -> Option<usize> {
        self.message(SCHEMA_PROPS)
    }
}

/// Why the table text does not parse (a generator bug: the unit test parses the shipped table).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TableError {
    /// A `message` line with a special form this reader does not know.
    #[error("message {0}: unknown special form")]
    UnknownSpecial(String),
    /// A reference to a message the table does not define.
    #[error("unknown message {0}")]
    UnknownMessage(String),
    /// A `kind` line without api version, kind and message.
    #[error("bad kind line {0:?}")]
    KindLine(String),
    /// A field line before any `message` line.
    #[error("field outside a message: {0:?}")]
    FieldOutsideMessage(String),
    /// A field line of the wrong shape.
    #[error("bad field line {0:?}")]
    FieldLine(String),
    /// A field line whose tag is not a number.
    #[error("bad tag in {0:?}")]
    Tag(String),
    /// A line of no known form.
    #[error("bad line {0:?}")]
    Line(String),
}

fn special(name: &str, flag: Option<&str>) -> Result<Special, TableError> {
    Ok(match (flag, name.rsplit('.').next().unwrap_or("")) {
        (None, _) => Special::None,
        (Some("array"), _) => Special::Array,
        (Some("special"), "Time") => Special::Time,
        (Some("special"), "MicroTime") => Special::MicroTime,
        (Some("special"), "Quantity") => Special::Quantity,
        (Some("special"), "IntOrString") => Special::IntOrString,
        (Some("special"), "RawExtension" | "FieldsV1" | "JSON") => Special::RawJson,
        (Some("special"), "JSONSchemaPropsOrArray") => Special::SchemaOrArray,
        (Some("special"), "JSONSchemaPropsOrBool") => Special::SchemaOrBool,
        (Some("special"), "JSONSchemaPropsOrStringArray") => Special::SchemaOrStringArray,
        _ => return Err(TableError::UnknownSpecial(name.to_string())),
    })
}

/// Parses the table text.
pub fn parse(text: &str) -> Result<Table, TableError> {
    // Two passes: names first, so fields can refer to messages defined later.
    let mut by_name = HashMap::new();
    let mut messages = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("message ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap_or("").to_string();
            let sp = special(&name, parts.next())?;
            by_name.insert(name.clone(), messages.len());
            messages.push(Message {
                name,
                special: sp,
                fields: Vec::new(),
            });
        }
    }
    let ty = |t: &str| -> Result<Ty, TableError> {
        Ok(match t {
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "bool" => Ty::Bool,
            "int32" => Ty::Int32,
            "int64" => Ty::Int64,
            "double" => Ty::Double,
            "float" => Ty::Float,
            m => Ty::Msg(
                *by_name
                    .get(m)
                    .ok_or_else(|| TableError::UnknownMessage(m.to_string()))?,
            ),
        })
    };
    let mut kinds = HashMap::new();
    let mut any_version = HashMap::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("kind ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            let [api_version, kind, name] = parts[..] else {
                return Err(TableError::KindLine(line.to_string()));
            };
            let m = *by_name
                .get(name)
                .ok_or_else(|| TableError::UnknownMessage(name.to_string()))?;
            if api_version == "*" {
                any_version.insert(kind.to_string(), m);
            } else {
                kinds.insert((api_version.to_string(), kind.to_string()), m);
            }
        } else if let Some(rest) = line.strip_prefix("message ") {
            current = by_name.get(rest.split(' ').next().unwrap_or("")).copied();
        } else if let Some(rest) = line.strip_prefix(' ') {
            let m = current.ok_or_else(|| TableError::FieldOutsideMessage(line.to_string()))?;
            let parts: Vec<&str> = rest.split(' ').collect();
            let (tag, json, shape, types) = match parts[..] {
                [tag, json, shape, ref types @ ..] if !types.is_empty() => {
                    (tag, json, shape, types)
                }
                _ => return Err(TableError::FieldLine(line.to_string())),
            };
            let tag: u32 = tag.parse().map_err(|_| TableError::Tag(line.to_string()))?;
            let (shape, value_ty, keep) = match (shape, types) {
                ("map", [k, v, rest @ ..]) if *k == "string" => (Shape::Map, *v, rest),
                ("one", [t, rest @ ..]) => (Shape::One, *t, rest),
                ("rep", [t, rest @ ..]) => (Shape::Rep, *t, rest),
                _ => return Err(TableError::FieldLine(line.to_string())),
            };
            messages[m].fields.push(Field {
                tag,
                json: if json == "-" {
                    String::new()
                } else {
                    json.to_string()
                },
                shape,
                ty: ty(value_ty)?,
                keep_zero: keep == ["keep"],
            });
        } else {
            return Err(TableError::Line(line.to_string()));
        }
    }
    for m in &mut messages {
        m.fields.sort_by_key(|f| f.tag);
    }
    Ok(Table {
        messages,
        by_name,
        kinds,
        any_version,
    })
}

/// The table of the built-in kinds.
pub static TABLE: LazyLock<Table> = LazyLock::new(|| {
    parse(include_str!("k8s.table")).expect("the generated table parses (a unit test checks it)")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_table_parses() {
        let t = parse(include_str!("k8s.table")).expect("parses");
        let role = t
            .kind("rbac.authorization.k8s.io/v1", "Role")
            .expect("Role");
        assert_eq!(t.messages[role].fields.len(), 2);
        assert!(t.kind("apps/v1", "Status").is_some());
        assert_eq!(
            t.messages[t
                .message("k8s.io.apimachinery.pkg.apis.meta.v1.Time")
                .expect("Time")]
            .special,
            Special::Time
        );
        assert!(t.schema_props().is_some());
    }
}
