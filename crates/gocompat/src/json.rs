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
}
