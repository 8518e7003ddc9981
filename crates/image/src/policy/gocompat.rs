//! Go compatibility for tag selection: `regexp.Expand` templates, so that a policy behaves here
//! exactly as in Flux.

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
