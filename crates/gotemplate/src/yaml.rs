//! YAML as Helm writes and reads it.
//!
//! Helm's `toYaml` is `sigs.k8s.io/yaml.Marshal`: the value goes through JSON, then through
//! go-yaml v2's emitter. That fixes the output byte for byte: keys in go-yaml's "natural" order
//! (`a2` before `a10`), sequences not indented under their key, strings quoted only when they
//! would read back as something else (`"true"`, `"1.0"`, `"2024-01-01"`), strings with newlines
//! as literal blocks, and long plain strings folded after column 80. This module reproduces
//! that emitter for template values; reading goes through serde-saphyr with Go's number rules.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::gofmt;
use crate::value::Value;

/// Column after which go-yaml folds a plain or single-quoted string at a space.
const BEST_WIDTH: usize = 80;

/// go-yaml v2's map key order.
pub fn key_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

fn is_int_literal(s: &str) -> bool {
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    let t = t.replace('_', "");
    if let Some(h) = t.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(b) = t.strip_prefix("0b") {
        return !b.is_empty() && b.chars().all(|c| c == '0' || c == '1');
    }
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit())
}

fn is_float_literal(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | "-.inf" | "+.inf" | ".nan") {
        return true;
    }
    let t = s.strip_prefix(['+', '-']).unwrap_or(s).replace('_', "");
    // go-yaml v2's float pattern: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t.as_str(), None),
    };
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !e.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(frac) = mant.strip_prefix('.') {
        !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit())
    } else {
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        !int.is_empty()
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit())
    }
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    // YYYY-M-D, optionally followed by a time part.
    let date_end = s.find(['T', 't', ' ', '\t']).unwrap_or(s.len());
    let date = &s[..date_end];
    let parts: Vec<&str> = date.split('-').collect();
    if parts.len() != 3
        || parts[0].len() != 4
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if parts[1].len() > 2 || parts[2].len() > 2 {
        return false;
    }
    if date_end == s.len() {
        return true;
    }
    let rest = s[date_end + 1..].trim_start();
    let _ = b;
    rest.len() >= 5 && rest.as_bytes()[0].is_ascii_digit() && rest.contains(':')
}

fn is_base60_float(s: &str) -> bool {
    // go-yaml v2: ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let t = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, _frac) = match t.split_once('.') {
        Some((m, f)) => {
            if !f.chars().all(|c| c.is_ascii_digit() || c == '_') {
                return false;
            }
            (m, f)
        }
        None => (t, ""),
    };
    let mut parts = main.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.is_empty()
        || !first.as_bytes()[0].is_ascii_digit()
        || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
        if p.len() == 2 && p.as_bytes()[0] > b'5' {
            return false;
        }
    }
    n > 0
}

/// Whether go-yaml v2 would read this plain scalar as something other than a string.
fn resolves_non_string(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if matches!(
        s,
        "~" | "null"
            | "Null"
            | "NULL"
            | "y"
            | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | "<<"
    ) {
        return true;
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.') {
        return is_int_literal(s) || is_float_literal(s) || is_timestamp(s) || is_base60_float(s);
    }
    false
}

struct Analysis {
    multiline: bool,
    block_plain: bool,
    single_quoted: bool,
    block: bool,
}

fn is_blank(c: Option<char>) -> bool {
    matches!(c, None | Some(' ' | '\t' | '\n' | '\r'))
}

fn is_printable(c: char) -> bool {
    // go-yaml's table: no tab or CR, no C1 controls, nothing beyond the BMP.
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

/// libyaml's `yaml_emitter_analyze_scalar`.
fn analyze(s: &str) -> Analysis {
    let mut a = Analysis {
        multiline: false,
        block_plain: true,
        single_quoted: true,
        block: true,
    };
    if s.is_empty() {
        a.block_plain = false;
        a.block = false;
        return a;
    }
    if s.starts_with("---") || s.starts_with("...") {
        a.block_plain = false;
    }
    let chars: Vec<char> = s.chars().collect();
    let (mut block_ind, mut special, mut line_breaks) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_ws = is_blank(next);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_by_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_ind = true,
                '#' if preceded_by_ws => block_ind = true,
                _ => {}
            }
        }
        if !is_printable(c) || (!c.is_ascii() && c == '\u{FEFF}') {
            special = true;
        }
        if c == '\n' || c == '\r' || c == '\u{85}' || c == '\u{2028}' || c == '\u{2029}' {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == chars.len() {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if c == '\n' || c == '\r' {
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == chars.len() {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank(Some(c));
    }
    a.multiline = line_breaks;
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single_quoted = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single_quoted = false;
        a.block = false;
    }
    if line_breaks {
        a.block_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

fn column(out: &str) -> usize {
    match out.rfind('\n') {
        Some(i) => out[i + 1..].chars().count(),
        None => out.chars().count(),
    }
}

fn newline_indent(out: &mut String, indent: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_plain(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    let chars: Vec<char> = s.chars().collect();
    let mut col = column(out);
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if allow_breaks && !spaces && col > BEST_WIDTH && chars.get(i + 1) != Some(&' ') {
                newline_indent(out, indent);
                col = indent;
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
}

fn write_single(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    out.push('\'');
    let chars: Vec<char> = s.chars().collect();
    let mut col = column(out);
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            if allow_breaks
                && !spaces
                && col > BEST_WIDTH
                && i != 0
                && i + 1 != chars.len()
                && chars.get(i + 1) != Some(&' ')
            {
                newline_indent(out, indent);
                col = indent;
            } else {
                out.push(c);
                col += 1;
            }
            spaces = true;
        } else {
            if c == '\'' {
                out.push('\'');
                col += 1;
            }
            out.push(c);
            col += 1;
            spaces = false;
        }
    }
    out.push('\'');
}

fn write_double(out: &mut String, s: &str, indent: usize, allow_breaks: bool) {
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        // libyaml folds long double-quoted scalars at a space, escaping a following space.
        if c == ' ' {
            if allow_breaks && !spaces && column(out) > BEST_WIDTH && i != 0 && i + 1 != chars.len()
            {
                newline_indent(out, indent);
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                }
            } else {
                out.push(' ');
            }
            spaces = true;
            continue;
        }
        spaces = false;
        match c {
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) || c == '\u{FEFF}' => {
                let u = c as u32;
                if u <= 0xFF {
                    out.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xFFFF {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    out.push('|');
    let first = s.chars().next();
    if matches!(first, Some(' ' | '\n')) {
        out.push('2');
    }
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
        "+"
    } else {
        ""
    };
    out.push_str(chomp);
    let body = s.strip_suffix('\n').unwrap_or(s);
    // A kept final line break ("+") is written as a trailing empty line.
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    if chomp == "+" && s.len() > 1 {
        // the last "\n" of the content is the line end written by the caller
    }
}

/// Writes a string scalar the way go-yaml v2 chooses its style. `indent` is the indentation
/// of continuation lines; `simple_key` is true for mapping keys (which never fold or use blocks).
fn write_string(out: &mut String, s: &str, indent: usize, simple_key: bool, st: Style) {
    let a = analyze(s);
    let want_literal = s.contains('\n');
    let can_plain = !resolves_non_string(s);
    if want_literal {
        if a.block && !simple_key {
            write_literal(out, s, indent);
        } else {
            write_double(out, s, indent, !simple_key && st.fold);
        }
        return;
    }
    if can_plain {
        if a.block_plain && !(simple_key && a.multiline) {
            write_plain(out, s, indent, !simple_key && st.fold);
            return;
        }
        if a.single_quoted && !(simple_key && a.multiline) {
            write_single(out, s, indent, !simple_key && st.fold);
            return;
        }
    }
    write_double(out, s, indent, !simple_key && st.fold);
}

/// JSON's view of a float (Go's encoding/json) read back by go-yaml: integral text becomes an
/// int, anything else a float printed with `%g`-shortest.
fn float_scalar(x: f64) -> String {
    if x.is_nan() {
        return ".nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let json = crate::sprig::json_float(x);
    if !json.contains(['.', 'e', 'E']) {
        return json;
    }
    gofmt::format_float(x, 'g', None)
}

fn scalar_text(v: &Value, st: Style) -> Option<String> {
    match v {
        Value::Nil => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        // go-yaml v3 (toYamlPretty) formats the float itself instead of going through JSON.
        Value::Float(x) if !st.through_json && x.is_finite() => {
            Some(gofmt::format_float(*x, 'g', None))
        }
        Value::Float(x) => Some(float_scalar(*x)),
        _ => None,
    }
}

fn plain_of(v: &Value) -> Value {
    match v {
        Value::Object(o) => match o.to_plain() {
            Value::Object(_) => Value::Nil,
            p => p,
        },
        other => other.clone(),
    }
}

/// Writes `v` as the value after `key:` or `- ` (the caller has written the indicator).
fn write_inline_value(out: &mut String, v: &Value, indent: usize, in_seq: bool, st: Style) {
    let v = plain_of(v);
    match &v {
        Value::Str(s) => {
            out.push(' ');
            write_string(out, s, indent + 2, false, st);
            out.push('\n');
        }
        Value::Map(m) if m.is_empty() => out.push_str(" {}\n"),
        Value::List(l) if l.is_empty() => out.push_str(" []\n"),
        Value::Map(m) => {
            let snapshot = m.snapshot();
            if in_seq {
                out.push(' ');
                write_map(out, &snapshot, indent + 2, true, st);
            } else {
                out.push('\n');
                write_map(out, &snapshot, indent + 2, false, st);
            }
        }
        Value::List(l) => {
            if in_seq {
                out.push(' ');
                write_seq(out, l, indent + 2, true, st);
            } else {
                out.push('\n');
                write_seq(
                    out,
                    l,
                    if st.indent_seq { indent + 2 } else { indent },
                    false,
                    st,
                );
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar_text(other, st).unwrap_or_default());
            out.push('\n');
        }
    }
}

fn write_map(
    out: &mut String,
    m: &crate::value::Map,
    indent: usize,
    first_inline: bool,
    st: Style,
) {
    let mut keys: Vec<&Arc<str>> = m.keys().collect();
    keys.sort_by(|a, b| key_order(a, b));
    for (i, k) in keys.into_iter().enumerate() {
        if !(i == 0 && first_inline) {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        write_string(out, k, indent + 2, true, st);
        out.push(':');
        write_inline_value(out, &m[k], indent, false, st);
    }
}

fn write_seq(out: &mut String, l: &[Value], indent: usize, first_inline: bool, st: Style) {
    for (i, v) in l.iter().enumerate() {
        if !(i == 0 && first_inline) {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push('-');
        write_inline_value(out, v, indent, true, st);
    }
}

/// Emitter settings: go-yaml v2 through sigs.k8s.io/yaml (`toYaml`) or go-yaml v3 with
/// two-space indentation (`toYamlPretty`).
#[derive(Clone, Copy)]
struct Style {
    indent_seq: bool,
    fold: bool,
    through_json: bool,
}

/// `sigs.k8s.io/yaml.Marshal`: the YAML document for `v`, ending with a newline.
pub fn to_yaml(v: &Value) -> String {
    emit(
        v,
        Style {
            indent_seq: false,
            fold: true,
            through_json: true,
        },
    )
}

/// Helm's `toYamlPretty` (go-yaml v3, indent 2): sequences indented under their key, no folding.
pub fn to_yaml_pretty(v: &Value) -> String {
    emit(
        v,
        Style {
            indent_seq: true,
            fold: false,
            through_json: false,
        },
    )
}

fn emit(v: &Value, st: Style) -> String {
    let v = plain_of(v);
    let mut out = String::new();
    match &v {
        Value::Map(m) if m.is_empty() => out.push_str("{}\n"),
        Value::List(l) if l.is_empty() => out.push_str("[]\n"),
        Value::Map(m) => write_map(&mut out, &m.snapshot(), 0, false, st),
        Value::List(l) => write_seq(&mut out, l, 0, false, st),
        Value::Str(s) => {
            write_string(&mut out, s, 2, false, st);
            out.push('\n');
        }
        other => {
            out.push_str(&scalar_text(other, st).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// `sigs.k8s.io/yaml.Unmarshal` into `interface{}`: YAML through JSON, so every number is a
/// `float64` and every key a string. An empty document is `Nil`.
///
/// # Errors
/// The parser's message when the text is not YAML.
pub fn from_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Nil);
    }
    let v: serde_json::Value =
        ferroflux_gocompat::yaml::from_str(text).map_err(yaml_to_json_error)?;
    Ok(crate::sprig::from_json_go(&v))
}

/// sigs.k8s.io/yaml's message for YAML it could not read. Budget errors already carry go-yaml's
/// `yaml: ` prefix.
pub(crate) fn yaml_to_json_error(e: ferroflux_gocompat::yaml::Error) -> String {
    match e {
        ferroflux_gocompat::yaml::Error::Budget(b) => format!("error converting YAML to JSON: {b}"),
        ferroflux_gocompat::yaml::Error::Parse(p) => {
            format!("error converting YAML to JSON: yaml: {p}")
        }
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
    fn keys_sort_naturally() {
        assert_eq!(key_order("a2", "a10"), Ordering::Less);
        assert_eq!(key_order("B", "a"), Ordering::Less);
        assert_eq!(key_order("a_b", "ab"), Ordering::Less);
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
