//! Go compatibility for tag selection: `regexp.Expand` templates and `strconv.ParseFloat`, so that a policy behaves here exactly as in Flux.

use std::borrow::Cow;

use regex::Regex;

/// A Go `Regexp.Expand` template (`$name`, `${name}`, `$1`, `$$`), resolved once against
/// the pattern's groups so expanding it per tag is only copying.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// A group reference; `None` when no such group exists (it expands to nothing).
    Group(Option<usize>),
}

impl Template {
    /// Parses `template` as Go does: unknown groups expand to nothing, a malformed `$` is
    /// kept as text.
    pub(super) fn new(template: &str, regex: &Regex) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                text.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = go_extract_name(rest) else {
                text.push('$');
                continue;
            };
            rest = after;
            let index = go_group_number(name)
                .or_else(|| regex.capture_names().position(|n| n == Some(name)))
                .filter(|i| *i < regex.captures_len());
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Group(index));
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Template { pieces }
    }

    /// The expansion for one match of the pattern in `src`; borrowed when the template is a
    /// single group reference, the common `$name` case.
    pub(super) fn expand<'s>(&self, locs: &regex::CaptureLocations, src: &'s str) -> Cow<'s, str> {
        if let [Piece::Group(index)] = self.pieces.as_slice() {
            let span = index.and_then(|i| locs.get(i));
            return Cow::Borrowed(span.map_or("", |(start, end)| &src[start..end]));
        }
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Group(index) => {
                    if let Some((start, end)) = index.and_then(|i| locs.get(i)) {
                        out.push_str(&src[start..end]);
                    }
                }
            }
        }
        Cow::Owned(out)
    }
}

/// A leading `name` or `{name}` (letters, digits, `_`), and the text after it.
fn go_extract_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// Go treats a name as a group number when it is all ASCII digits, below 1e8 and without a
/// leading zero.
fn go_group_number(name: &str) -> Option<usize> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let n: usize = name.parse().ok()?;
    (n < 100_000_000).then_some(n)
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal or hexadecimal (`0x1p-2`) literals, `_` between
/// digits, `inf`/`infinity`/`nan`; out-of-range values are errors, not infinities.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let signed = |v: f64| if negative { -v } else { v };
    if lower == "inf" || lower == "infinity" {
        return Some(signed(f64::INFINITY));
    }
    if lower == "nan" {
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if !underscores_ok(&lower) {
        return None;
    }
    let clean: String = lower.chars().filter(|c| *c != '_').collect();
    let value = if let Some(hex) = clean.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        if !clean
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        clean.parse::<f64>().ok()?
    };
    value.is_finite().then(|| signed(value))
}

/// Go's rule: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    if !s.contains('_') {
        return true;
    }
    let bytes = s.as_bytes();
    let (start, hex) = if s.starts_with("0x") || s.starts_with("0b") || s.starts_with("0o") {
        (2, s.starts_with("0x"))
    } else {
        (0, false)
    };
    let is_digit = |b: u8| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit());
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if b != b'_' {
            continue;
        }
        let before_ok = if i == start {
            start == 2
        } else {
            is_digit(bytes[i - 1])
        };
        let after_ok = bytes.get(i + 1).is_some_and(|&n| is_digit(n));
        if !before_ok || !after_ok {
            return false;
        }
    }
    true
}

/// A hexadecimal float body after `0x`: hex digits with an optional point, then a required
/// binary exponent `p[+-]N`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once('p')?;
    let exponent: i32 = exponent.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exponent))
}
