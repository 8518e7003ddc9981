//! Go's `encoding/json` text for strings, so that every JSON a Go program would hash or print
//! (kustomize's generator hashes, Sprig's and Helm's `toJson`) is byte-identical here.
//!
//! ```
//! use ferroflux_gocompat::json;
//!
//! let mut out = String::new();
//! json::write_string(&mut out, "a<b\u{8}", true);
//! assert_eq!(out, r#""a\u003cb\b""#);
//! ```

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal as Go 1.22+ `encoding/json` writes it: `\b`, `\f`,
/// `\n`, `\r`, `\t` short forms, other control characters and U+2028/U+2029 as `\u00xx`, and
/// `<`, `>`, `&` as `\u003c`... when `escape_html` (Go's default, off with
/// `SetEscapeHTML(false)`).
pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => unicode_escape(out, c),
            '\u{2028}' | '\u{2029}' => unicode_escape(out, c),
            c if (c as u32) < 0x20 => unicode_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a compact JSON array (`json.Marshal`'s form: no spaces) whose elements
/// `write_element` appends, for callers encoding their own value type.
pub fn write_array<T>(
    out: &mut String,
    elements: impl IntoIterator<Item = T>,
    mut write_element: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, element) in elements.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_element(out, element);
    }
    out.push(']');
}

/// Appends a compact JSON object of `members` in the order given (Go sorts map keys; a caller
/// with an unsorted map sorts first), keys escaped as [`write_string`] with `escape_html`,
/// values appended by `write_value`.
pub fn write_object<'k, T>(
    out: &mut String,
    members: impl IntoIterator<Item = (&'k str, T)>,
    escape_html: bool,
    mut write_value: impl FnMut(&mut String, T),
) {
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key, escape_html);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// `\u00xx` with Go's lowercase hex digits.
fn unicode_escape(out: &mut String, c: char) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\u{:04x}", c as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str, html: bool) -> String {
        let mut out = String::new();
        write_string(&mut out, s, html);
        out
    }

    #[test]
    fn escapes_as_go() {
        assert_eq!(
            quoted("\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}", true),
            r#""\"\\\n\r\t\b\f\u0001\u001f""#
        );
        assert_eq!(
            quoted("<&>\u{2028}\u{2029}é", true),
            r#""\u003c\u0026\u003e\u2028\u2029é""#
        );
        assert_eq!(quoted("<&>\u{2028}", false), r#""<&>\u2028""#);
    }

    #[test]
    fn writes_compact_arrays_and_objects() {
        let mut out = String::new();
        write_array(&mut out, [1, 2, 3], |out, n| out.push_str(&n.to_string()));
        out.push(' ');
        write_array(&mut out, Vec::<u8>::new(), |_, _| {});
        out.push(' ');
        write_object(&mut out, [("a<", "x"), ("b", "y")], true, |out, v| {
            write_string(out, v, true)
        });
        out.push(' ');
        write_object(&mut out, [("a<", 1)], false, |out, n| {
            out.push_str(&n.to_string())
        });
        assert_eq!(out, r#"[1,2,3] [] {"a\u003c":"x","b":"y"} {"a<":1}"#);
    }
}
