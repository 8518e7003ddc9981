//! TOML as Helm's `toToml`/`fromToml` see it (BurntSushi/toml): the encoder's layout (plain keys
//! first, then tables; two-space indentation per table level) and a reader for TOML 1.0
//! documents into template values.

use crate::value::{Map, Value};

fn bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
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

struct Reader<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

fn err_at(r: &Reader<'_>, msg: &str) -> String {
    let line = 1 + r.src[..r.i.min(r.src.len())].matches('\n').count();
    format!("toml: line {line}: {msg}")
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn ws_nl_comments(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'#') => self.comment(),
                _ => return,
            }
        }
    }
    fn comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
    }
    fn eol(&mut self) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(b'#') {
            self.comment();
        }
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.i += 1;
                Ok(())
            }
            Some(b'\r') if self.s.get(self.i + 1) == Some(&b'\n') => {
                self.i += 2;
                Ok(())
            }
            _ => Err(err_at(self, "expected a newline after a value")),
        }
    }

    fn key(&mut self) -> Result<Vec<String>, String> {
        let mut parts = Vec::new();
        loop {
            self.ws();
            let part = match self.peek() {
                Some(b'"') => self.basic_string()?,
                Some(b'\'') => self.literal_string()?,
                _ => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    {
                        self.i += 1;
                    }
                    if start == self.i {
                        return Err(err_at(self, "expected a key"));
                    }
                    self.src[start..self.i].to_string()
                }
            };
            parts.push(part);
            self.ws();
            if self.peek() == Some(b'.') {
                self.i += 1;
                continue;
            }
            return Ok(parts);
        }
    }

    fn basic_string(&mut self) -> Result<String, String> {
        if self.s[self.i..].starts_with(b"\"\"\"") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.i += 1;
            } else if self.s[self.i..].starts_with(b"\r\n") {
                self.i += 2;
            }
            let mut out = String::new();
            loop {
                if self.s[self.i..].starts_with(b"\"\"\"") {
                    self.i += 3;
                    while self.peek() == Some(b'"') && out.len() < 2 {
                        out.push('"');
                        self.i += 1;
                    }
                    return Ok(out);
                }
                let Some(c) = self.src[self.i..].chars().next() else {
                    return Err(err_at(self, "unterminated multi-line string"));
                };
                if c == '\\' {
                    let rest = &self.src[self.i + 1..];
                    let trimmed = rest.trim_start_matches([' ', '\t']);
                    if trimmed.starts_with('\n') || trimmed.starts_with("\r\n") {
                        self.i =
                            self.src.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
                        continue;
                    }
                    self.i += 1;
                    out.push(self.escape()?);
                    continue;
                }
                out.push(c);
                self.i += c.len_utf8();
            }
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.i..].chars().next() else {
                return Err(err_at(self, "unterminated string"));
            };
            match c {
                '"' => {
                    self.i += 1;
                    return Ok(out);
                }
                '\n' => return Err(err_at(self, "strings cannot contain newlines")),
                '\\' => {
                    self.i += 1;
                    out.push(self.escape()?);
                }
                c => {
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let Some(e) = self.peek() else {
            return Err(err_at(self, "unterminated escape"));
        };
        self.i += 1;
        Ok(match e {
            b'b' => '\x08',
            b't' => '\t',
            b'n' => '\n',
            b'f' => '\x0c',
            b'r' => '\r',
            b'e' => '\x1b',
            b'"' => '"',
            b'\\' => '\\',
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let hex = self
                    .src
                    .get(self.i..self.i + n)
                    .ok_or_else(|| err_at(self, "short unicode escape"))?;
                self.i += n;
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| err_at(self, "invalid unicode escape"))?
            }
            _ => return Err(err_at(self, "invalid escape in string")),
        })
    }

    fn literal_string(&mut self) -> Result<String, String> {
        if self.s[self.i..].starts_with(b"'''") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.i += 1;
            }
            let rest = &self.src[self.i..];
            let end = rest
                .find("'''")
                .ok_or_else(|| err_at(self, "unterminated multi-line literal string"))?;
            let mut out = rest[..end].to_string();
            self.i += end + 3;
            while self.peek() == Some(b'\'') && out.len() < end + 2 {
                out.push('\'');
                self.i += 1;
            }
            return Ok(out);
        }
        self.i += 1;
        let rest = &self.src[self.i..];
        let end = rest
            .find(['\'', '\n'])
            .ok_or_else(|| err_at(self, "unterminated literal string"))?;
        if rest.as_bytes()[end] == b'\n' {
            return Err(err_at(self, "literal strings cannot contain newlines"));
        }
        let out = rest[..end].to_string();
        self.i += end + 1;
        Ok(out)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 64 {
            return Err(err_at(self, "values nest too deeply"));
        }
        self.ws();
        match self.peek() {
            Some(b'"') => Ok(Value::from(self.basic_string()?)),
            Some(b'\'') => Ok(Value::from(self.literal_string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws_nl_comments();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::list(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws_nl_comments();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(err_at(self, "expected a comma or ] in an array")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::map(m));
                }
                loop {
                    let key = self.key()?;
                    self.ws();
                    if self.peek() != Some(b'=') {
                        return Err(err_at(self, "expected = after a key"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    insert_path(&mut m, &key, v, self)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::map(m));
                        }
                        _ => return Err(err_at(self, "expected a comma or } in an inline table")),
                    }
                }
            }
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b']' | b'}' | b'\n' | b'\r' | b'#'))
                {
                    self.i += 1;
                }
                let raw = self.src[start..self.i].trim_end();
                self.i = start + raw.len();
                scalar(raw).ok_or_else(|| err_at(self, &format!("invalid value {raw:?}")))
            }
        }
    }
}

fn scalar(raw: &str) -> Option<Value> {
    match raw {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        "inf" | "+inf" => return Some(Value::Float(f64::INFINITY)),
        "-inf" => return Some(Value::Float(f64::NEG_INFINITY)),
        "nan" | "+nan" | "-nan" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    let clean = raw.replace('_', "");
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = clean.strip_prefix(prefix) {
            return i64::from_str_radix(d, radix).ok().map(Value::Int);
        }
    }
    if clean
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'+' || b == b'-')
        && !clean.is_empty()
        && let Ok(i) = clean.parse::<i64>()
    {
        return Some(Value::Int(i));
    }
    if clean
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return clean.parse::<f64>().ok().map(Value::Float);
    }
    // Dates and times stay text; templates print them as written.
    if raw.len() >= 8
        && raw.as_bytes()[0].is_ascii_digit()
        && (raw.contains('-') || raw.contains(':'))
    {
        return Some(Value::str(raw));
    }
    None
}

fn insert_path(m: &mut Map, path: &[String], v: Value, r: &Reader<'_>) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or_else(|| err_at(r, "empty key"))?;
    let mut cur = m.clone();
    fn set(cur: &mut Map, parents: &[String], last: &str, v: Value) -> Result<(), String> {
        if parents.is_empty() {
            if cur.contains_key(last) {
                return Err(format!("key {last:?} has already been defined"));
            }
            cur.insert(last.into(), v);
            return Ok(());
        }
        let child = cur
            .entry(parents[0].as_str().into())
            .or_insert_with(|| Value::map(Map::new()));
        match child {
            Value::Map(cm) => {
                let mut inner = cm.snapshot();
                set(&mut inner, &parents[1..], last, v)?;
                *child = Value::map(inner);
                Ok(())
            }
            _ => Err(format!("key {:?} is not a table", parents[0])),
        }
    }
    set(&mut cur, parents, last, v).map_err(|e| err_at(r, &e))?;
    *m = cur;
    Ok(())
}

/// BurntSushi/toml's `Unmarshal` into `map[string]interface{}`.
///
/// # Errors
/// A `toml: line N: ...` message for invalid documents.
pub(crate) fn from_toml(text: &str) -> Result<Value, String> {
    let mut r = Reader {
        s: text.as_bytes(),
        src: text,
        i: 0,
    };
    let mut root = Map::new();
    // The path of the current table; `None` index means a plain table, `Some` an array element.
    let mut current: Vec<String> = Vec::new();
    let mut current_is_array = false;
    loop {
        r.ws_nl_comments();
        let Some(c) = r.peek() else {
            break;
        };
        if c == b'[' {
            let array = r.s[r.i..].starts_with(b"[[");
            r.i += if array { 2 } else { 1 };
            let path = r.key()?;
            r.ws();
            let close: &[u8] = if array { b"]]" } else { b"]" };
            if !r.s[r.i..].starts_with(close) {
                return Err(err_at(&r, "expected ] to close a table header"));
            }
            r.i += close.len();
            r.eol()?;
            if array {
                let v = get_path(&root, &path);
                let mut list = match v {
                    Some(Value::List(l)) => l.to_vec(),
                    Some(_) => return Err(err_at(&r, "key is not an array of tables")),
                    None => Vec::new(),
                };
                list.push(Value::map(Map::new()));
                put_path(&mut root, &path, Value::list(list));
            } else if get_path(&root, &path).is_none() {
                put_path(&mut root, &path, Value::map(Map::new()));
            }
            current = path;
            current_is_array = array;
            continue;
        }
        let key = r.key()?;
        r.ws();
        match r.src[r.i..].chars().next() {
            Some('=') => r.i += 1,
            None => return Err(err_at(&r, "unexpected EOF; expected key separator '='")),
            Some(c) => {
                return Err(err_at(
                    &r,
                    &format!("expected '.' or '=', but got {c:?} instead"),
                ));
            }
        }
        r.ws();
        if r.peek().is_none() || r.peek() == Some(b'\n') {
            return Err(err_at(&r, "unexpected EOF; expected value"));
        }
        let v = r.value(0)?;
        r.eol()?;
        let mut table = match get_path(&root, &current) {
            Some(Value::Map(m)) => m.snapshot(),
            Some(Value::List(l)) if current_is_array => match l.last() {
                Some(Value::Map(m)) => m.snapshot(),
                _ => Map::new(),
            },
            _ => Map::new(),
        };
        insert_path(&mut table, &key, v, &r)?;
        if current.is_empty() {
            root = table;
        } else if current_is_array {
            if let Some(Value::List(l)) = get_path(&root, &current) {
                let mut l = l.to_vec();
                if let Some(last) = l.last_mut() {
                    *last = Value::map(table);
                }
                put_path(&mut root, &current, Value::list(l));
            }
        } else {
            put_path(&mut root, &current, Value::map(table));
        }
    }
    Ok(Value::map(root))
}

fn get_path(root: &Map, path: &[String]) -> Option<Value> {
    let mut cur = Value::map(root.clone());
    for k in path {
        cur = match &cur {
            Value::Map(m) => m.get(k)?,
            Value::List(l) => match l.last() {
                Some(Value::Map(m)) => m.get(k)?,
                _ => return None,
            },
            _ => return None,
        };
    }
    Some(cur)
}

fn put_path(root: &mut Map, path: &[String], v: Value) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::Map(m) = v {
            *root = m.snapshot();
        }
        return;
    };
    if rest.is_empty() {
        root.insert(first.as_str().into(), v);
        return;
    }
    let child = root
        .get(first.as_str())
        .cloned()
        .unwrap_or_else(|| Value::map(Map::new()));
    let new_child = match child {
        Value::Map(m) => {
            let mut inner = m.snapshot();
            put_path(&mut inner, rest, v);
            Value::map(inner)
        }
        Value::List(l) => {
            let mut l = l.to_vec();
            if let Some(Value::Map(m)) = l.last() {
                let mut inner = m.snapshot();
                put_path(&mut inner, rest, v);
                let n = l.len();
                l[n - 1] = Value::map(inner);
            }
            Value::list(l)
        }
        _ => {
            let mut inner = Map::new();
            put_path(&mut inner, rest, v);
            Value::map(inner)
        }
    };
    root.insert(first.as_str().into(), new_child);
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
}
