//! TOML as Helm's `toToml`/`fromToml` see it (BurntSushi/toml): the encoder's layout (plain keys
//! first, then tables; two-space indentation per table level), and documents read with the
//! `toml` crate into template values.

use crate::gofmt;
use crate::value::{Map, Value};

fn bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// BurntSushi/toml's basic string: Go's short escapes but `\a` and `\v`, other control
/// characters as `\uXXXX`.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match gofmt::short_escape(c) {
            Some(escaped) if !matches!(c, '\x07' | '\x0b') => out.push_str(escaped),
            _ if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key_part(k: &str) -> String {
    if bare(k) { k.to_string() } else { quoted(k) }
}

fn key_path(path: &[String]) -> String {
    path.iter()
        .map(|k| key_part(k))
        .collect::<Vec<_>>()
        .join(".")
}

fn plain(v: &Value) -> Value {
    match v {
        Value::Object(o) => o.to_plain(),
        other => other.clone(),
    }
}

fn is_table(v: &Value) -> bool {
    matches!(plain(v), Value::Map(_))
}

fn is_table_array(v: &Value) -> Result<bool, String> {
    match plain(v) {
        Value::List(l) if !l.is_empty() => {
            let mut all = true;
            for e in l.iter() {
                if e.is_nil() {
                    return Err("toml: cannot encode array with nil element".into());
                }
                if !is_table(e) {
                    all = false;
                }
            }
            Ok(all)
        }
        _ => Ok(false),
    }
}

struct Enc {
    out: String,
}

impl Enc {
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn element(&mut self, v: &Value) -> Result<(), String> {
        match plain(v) {
            Value::Str(s) => self.out.push_str(&quoted(&s)),
            Value::Bool(b) => self.out.push_str(if b { "true" } else { "false" }),
            Value::Int(i) => self.out.push_str(&i.to_string()),
            Value::Float(f) => {
                if f.is_nan() {
                    self.out
                        .push_str(if f.is_sign_negative() { "-nan" } else { "nan" });
                } else if f.is_infinite() {
                    self.out.push_str(if f < 0.0 { "-inf" } else { "inf" });
                } else {
                    let s = crate::gofmt::format_float(f, 'g', None);
                    self.out.push_str(&s);
                    if !s.contains(['e', '.']) {
                        self.out.push_str(".0");
                    }
                }
            }
            Value::List(l) => {
                self.out.push('[');
                for (i, e) in l.iter().enumerate() {
                    if e.is_nil() {
                        return Err("toml: cannot encode array with nil element".into());
                    }
                    self.element(e)?;
                    if i + 1 != l.len() {
                        self.out.push_str(", ");
                    }
                }
                self.out.push(']');
            }
            Value::Map(m) => self.map(&[], &m.snapshot(), true)?,
            Value::Nil => return Err("toml: cannot encode a nil value".into()),
            Value::Object(o) => self.out.push_str(&quoted(&o.display())),
        }
        Ok(())
    }

    fn key_value(&mut self, path: &[String], v: &Value, inline: bool) -> Result<(), String> {
        if !inline {
            self.out
                .push_str(&"  ".repeat(path.len().saturating_sub(1)));
        }
        self.out.push_str(&key_part(&path[path.len() - 1]));
        self.out.push_str(" = ");
        self.element(v)?;
        if !inline {
            self.newline();
        }
        Ok(())
    }

    fn encode(&mut self, path: &[String], v: &Value) -> Result<(), String> {
        let v = plain(v);
        match &v {
            Value::Nil => Ok(()),
            Value::Map(m) => {
                if path.len() == 1 {
                    self.newline();
                }
                if !path.is_empty() {
                    self.out.push_str(&"  ".repeat(path.len() - 1));
                    self.out.push_str(&format!("[{}]", key_path(path)));
                    self.newline();
                }
                self.map(path, &m.snapshot(), false)
            }
            Value::List(l) if is_table_array(&v)? => {
                for e in l.iter() {
                    self.newline();
                    self.out
                        .push_str(&"  ".repeat(path.len().saturating_sub(1)));
                    self.out.push_str(&format!("[[{}]]", key_path(path)));
                    self.newline();
                    if let Value::Map(m) = plain(e) {
                        self.map(path, &m.snapshot(), false)?;
                    }
                }
                Ok(())
            }
            _ => {
                if path.is_empty() {
                    return Err("toml: top-level values must be Go maps or structs".into());
                }
                self.key_value(path, &v, false)
            }
        }
    }

    fn map(&mut self, path: &[String], m: &Map, inline: bool) -> Result<(), String> {
        let mut direct = Vec::new();
        let mut sub = Vec::new();
        for (k, v) in m {
            if v.is_nil() {
                continue;
            }
            if is_table(v) || is_table_array(v)? {
                sub.push((k, v));
            } else {
                direct.push((k, v));
            }
        }
        if inline {
            self.out.push('{');
            let total = direct.len() + sub.len();
            for (i, (k, v)) in direct.iter().chain(sub.iter()).enumerate() {
                self.key_value(&[k.to_string()], v, true)?;
                if i + 1 != total {
                    self.out.push_str(", ");
                }
            }
            self.out.push('}');
            return Ok(());
        }
        for (k, v) in direct.into_iter().chain(sub) {
            let mut p = path.to_vec();
            p.push(k.to_string());
            self.encode(&p, v)?;
        }
        Ok(())
    }
}

/// BurntSushi/toml's `Encoder.Encode` of a template value.
///
/// # Errors
/// When the value is not a map, or holds a nil array element.
pub(crate) fn to_toml(v: &Value) -> Result<String, String> {
    let mut e = Enc { out: String::new() };
    e.encode(&[], v)?;
    Ok(e.out)
}

/// BurntSushi/toml's `Unmarshal` into `map[string]interface{}`: integers are `int64`, floats
/// `float64`; dates and times stay text as TOML writes them.
///
/// # Errors
/// A `toml: line N: ...` message for invalid documents.
pub(crate) fn from_toml(text: &str) -> Result<Value, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |span| {
            1 + text[..span.start.min(text.len())].matches('\n').count()
        });
        format!("toml: line {line}: {}", e.message().trim_end())
    })?;
    Ok(table_value(&table))
}

fn table_value(table: &toml::Table) -> Value {
    Value::map(
        table
            .iter()
            .map(|(k, v)| (k.as_str().into(), toml_value(v)))
            .collect::<Map>(),
    )
}

fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::str(s),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(items) => Value::list(items.iter().map(toml_value).collect()),
        toml::Value::Table(t) => table_value(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gofmt::to_string;

    #[test]
    fn encodes_like_burntsushi() {
        let inner = Value::map([("k".into(), Value::str("v"))].into_iter().collect());
        let v = Value::map(
            [("a".into(), Value::Int(1)), ("t".into(), inner)]
                .into_iter()
                .collect(),
        );
        assert_eq!(to_toml(&v).expect("encodes"), "a = 1\n\n[t]\n  k = \"v\"\n");
    }

    #[test]
    fn reads_tables_and_arrays() {
        let v = from_toml(
            "x = 1\n[t]\ny = \"s\"\n[t.u]\nz = [1, 2]\n[[arr]]\nq = true\n[[arr]]\nq = false\n",
        )
        .expect("parses");
        assert_eq!(
            to_string(&v),
            "map[arr:[map[q:true] map[q:false]] t:map[u:map[z:[1 2]] y:s] x:1]"
        );
    }

    #[test]
    fn reads_what_toml_allows_and_refuses_the_rest() {
        let v = from_toml("d = 1979-05-27T07:32:00Z\nh = 0xff\ns = \"\"\"\nmulti\nline\"\"\"\n")
            .expect("parses");
        assert_eq!(
            to_string(&v),
            "map[d:1979-05-27T07:32:00Z h:255 s:multi\nline]"
        );
        let err = from_toml("a = 1\na = 2\n").expect_err("duplicate key");
        assert!(err.starts_with("toml: line 2: "), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        // TOML's integer grammar: no doubled underscores, no leading zeros.
        for bad in ["a = 1__2\n", "a = 012\n"] {
            assert!(from_toml(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deeply_nested_arrays_are_an_error_not_a_crash() {
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = from_toml(&deep).expect_err("too deep");
        assert!(err.contains("max recursion depth"), "{err}");
    }
}
