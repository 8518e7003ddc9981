//! Go's regexp helpers as Sprig uses them (`regexQuoteMeta`, `regexSplit`).

use crate::FuncError;

/// Go's `regexp.QuoteMeta`.
pub(super) fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `regexp.Compile`: Go's syntax and meaning, and Go's message when it refuses.
pub(super) fn regex(p: &str) -> Result<regex::Regex, FuncError> {
    ferroflux_gocompat::regex::compile(p).map_err(|e| FuncError::Call(e.to_string()))
}

/// Go's `Regexp.Split`.
pub(super) fn regex_split(re: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (i, m) in re.find_iter(s).enumerate() {
        if n > 0 && i as i64 >= n {
            break;
        }
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = m.start();
        if m.end() != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = m.end();
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}
