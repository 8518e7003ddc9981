//! The dynamic value model: what YAML/JSON gives (nil, bool, int, float, string, list, map) plus
//! host objects with methods (Helm's `.Files`, `.Capabilities`, Sprig's semver versions).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A map as templates see it: string keys, iterated and printed in sorted key order as Go does.
pub type Map = BTreeMap<Arc<str>, Value>;

/// A shared, mutable map: Sprig's `set`/`unset`/`merge` change a dict in place, and every
/// reference to it (a variable, a field of `.Values`) sees the change, as in Go.
#[derive(Default)]
pub struct MapCell(RwLock<Map>);

impl MapCell {
    /// Wraps a map.
    pub fn new(m: Map) -> Self {
        MapCell(RwLock::new(m))
    }
    /// Reads the map.
    pub fn read(&self) -> RwLockReadGuard<'_, Map> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Changes the map.
    pub fn write(&self) -> RwLockWriteGuard<'_, Map> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }
    /// A copy of the map (its values are shared).
    pub fn snapshot(&self) -> Map {
        self.read().clone()
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.read().len()
    }
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

/// A value flowing through a template.
///
/// Cloning is cheap: strings, lists and maps are reference-counted.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's untyped nil (a JSON `null`, a missing key).
    #[default]
    Nil,
    /// `bool`.
    Bool(bool),
    /// `int` (64-bit).
    Int(i64),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(Arc<str>),
    /// `[]interface {}`.
    List(Arc<Vec<Value>>),
    /// `map[string]interface {}`.
    Map(Arc<MapCell>),
    /// An object supplied by the host, with fields and methods.
    Object(Arc<dyn HostObject>),
}

/// An object supplied by the host program: templates read its fields (`.Name`) and call its
/// methods (`.Files.Get "x"`, `.Capabilities.APIVersions.Has "v1"`).
pub trait HostObject: Send + Sync {
    /// Go's type name, as `printf "%T"` shows it (e.g. `*semver.Version`).
    fn type_name(&self) -> String;
    /// A field or a method without arguments; `None` when there is no such member.
    fn field(&self, name: &str) -> Option<Value> {
        let _ = name;
        None
    }
    /// Calls method `name`; `None` when there is no such method, `Some(Err)` when it fails.
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let _ = (name, args);
        None
    }
    /// Whether `name` is a method (then arguments are allowed).
    fn has_method(&self, name: &str) -> bool {
        let _ = name;
        false
    }
    /// How `%v` prints it (Go calls `String()` when the type has one).
    fn display(&self) -> String;
    /// The value as a plain map or string, for `toJson`/`toYaml`; `Nil` when it has none.
    fn to_plain(&self) -> Value {
        Value::Str(self.display().into())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.read().iter()).finish(),
            Value::Object(o) => write!(f, "<{}>", o.type_name()),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => Arc::ptr_eq(a, b) || *a.read() == *b.read(),
            (Value::Object(a), Value::Object(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::List(Arc::new(l))
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(Arc::new(MapCell::new(m)))
    }
}

impl Value {
    /// Converts JSON as Helm values arrive: numbers written without `.`/`e` become `int`,
    /// others `float64`.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::Float(u as f64)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            serde_json::Value::String(s) => Value::Str(s.as_str().into()),
            serde_json::Value::Array(a) => {
                Value::List(Arc::new(a.iter().map(Value::from_json).collect()))
            }
            serde_json::Value::Object(o) => Value::map(
                o.iter()
                    .map(|(k, v)| (k.as_str().into(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON (host objects through [`HostObject::to_plain`]).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Value::from(*x), // null when not finite
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => serde_json::Value::Object(
                m.read()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Object(o) => match o.to_plain() {
                Value::Object(_) => serde_json::Value::Null,
                plain => plain.to_json(),
            },
        }
    }

    /// Go's truth: false, 0, nil, empty string/list/map are false; everything else true.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(x) => *x != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Go's `%T`.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(o) => o.type_name(),
        }
    }

    /// Go's `reflect.Kind` name, as Sprig's `kindOf` gives it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(_) => "ptr",
        }
    }

    /// The string inside, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this is nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Builds a string value.
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(s.as_ref().into())
    }

    /// Builds a list value.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// Builds a map value.
    pub fn map(m: Map) -> Value {
        Value::Map(Arc::new(MapCell::new(m)))
    }
}
