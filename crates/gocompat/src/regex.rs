//! Go `regexp` (RE2, Perl flags) patterns compiled with the `regex` crate.
//!
//! Both are RE2 dialects, but they disagree on details a user's pattern may hit: Go takes
//! `a{,5}` and an unfinished `{` as literals, knows `\Q...\E`, octal escapes and `\C`, keeps
//! `\d`, `\s`, `\w` and `\b` ASCII-only, and rejects stacked repetitions (`a**`); the `regex`
//! crate nests classes (`[a[]`), has class set operations (`&&`, `--`, `~~`) and extra escapes
//! (`\<`, `\u`). Translating, instead of passing the text through, makes a pattern mean here
//! what it means in the Go program we stand in for (Flux, kustomize, Helm), and be refused where
//! Go refuses it, with Go's message (`error parsing regexp: missing closing ]: `[a``).
//!
//! ```
//! use ferroflux_gocompat::regex;
//!
//! assert!(regex::compile(r"^v\d+$").expect("valid").is_match("v12"));
//! assert!(!regex::compile(r"^\w$").expect("valid").is_match("é"), "\\w is ASCII in Go");
//! assert!(regex::compile("a{,5}").expect("a literal in Go").is_match("a{,5}"));
//! assert_eq!(
//!     regex::compile("a**").expect_err("Go refuses it").to_string(),
//!     "error parsing regexp: invalid nested repetition operator: `**`"
//! );
//! ```

use std::fmt;

pub use ::regex::Regex;

/// Go's limit on a counted repetition.
const MAX_REPEAT: u32 = 1000;

/// Go's `syntax.ErrorCode`: what is wrong with a pattern, worded as Go words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `\e`, `\1`, `\x4`.
    InvalidEscape,
    /// `z-a`, `[:foo:]`, an unknown `\p{...}`.
    InvalidCharRange,
    /// A `[` without its `]`.
    MissingBracket,
    /// A `(` without its `)`.
    MissingParen,
    /// A `)` without its `(`.
    UnexpectedParen,
    /// `a**`, `a{2}{3}`.
    InvalidRepeatOp,
    /// `*` with nothing before it.
    MissingRepeatArgument,
    /// `{1001}`, `{2,1}`.
    InvalidRepeatSize,
    /// `(?x)`, `(?P=name)`.
    InvalidPerlOp,
    /// `(?P<a-b>x)`.
    InvalidNamedCapture,
    /// A `\` at the end.
    TrailingBackslash,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::InvalidEscape => "invalid escape sequence",
            ErrorCode::InvalidCharRange => "invalid character class range",
            ErrorCode::MissingBracket => "missing closing ]",
            ErrorCode::MissingParen => "missing closing )",
            ErrorCode::UnexpectedParen => "unexpected )",
            ErrorCode::InvalidRepeatOp => "invalid nested repetition operator",
            ErrorCode::MissingRepeatArgument => "missing argument to repetition operator",
            ErrorCode::InvalidRepeatSize => "invalid repeat count",
            ErrorCode::InvalidPerlOp => "invalid or unsupported Perl syntax",
            ErrorCode::InvalidNamedCapture => "invalid named capture",
            ErrorCode::TrailingBackslash => "trailing backslash at end of expression",
        })
    }
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Go's `regexp.Compile` refuses the pattern; the text is Go's.
    #[error("error parsing regexp: {code}: `{expr}`")]
    Syntax {
        /// What is wrong.
        code: ErrorCode,
        /// The part of the pattern it is about.
        expr: String,
    },
    /// Go takes the pattern but the `regex` crate cannot build it (a size or nesting limit,
    /// a Unicode class it does not know).
    #[error("regexp {pattern:?} is not supported: {reason}")]
    Unsupported {
        /// The pattern as written.
        pattern: String,
        /// The `regex` crate's reason.
        reason: String,
    },
}

/// Compiles a Go pattern: Go's syntax and meaning, refused where Go refuses it.
///
/// # Errors
/// [`Error::Syntax`] with Go's message when Go rejects the pattern, [`Error::Unsupported`]
/// when only the `regex` crate does.
pub fn compile(pattern: &str) -> Result<Regex, Error> {
    let translated = translate(pattern)?;
    Regex::new(&translated).map_err(|e| Error::Unsupported {
        pattern: pattern.to_string(),
        reason: engine_reason(&e),
    })
}

/// The last line of a `regex` crate error (`error: ...` under a caret diagram), without the
/// diagram, so the message stays one readable line.
fn engine_reason(e: &::regex::Error) -> String {
    match e {
        ::regex::Error::CompiledTooBig(limit) => {
            format!("the compiled program exceeds {limit} bytes")
        }
        other => {
            let text = other.to_string();
            let last = text.lines().last().unwrap_or_default();
            last.strip_prefix("error: ").unwrap_or(last).to_string()
        }
    }
}

/// Translates a Go pattern to the `regex` crate's syntax.
///
/// # Errors
/// [`Error::Syntax`] with Go's message when Go rejects the pattern.
pub fn translate(pattern: &str) -> Result<String, Error> {
    Translator {
        chars: pattern.chars().collect(),
        out: String::with_capacity(pattern.len() + 8),
    }
    .run()
}

fn syntax(code: ErrorCode, expr: impl Into<String>) -> Error {
    Error::Syntax {
        code,
        expr: expr.into(),
    }
}

/// What the previous token was, for the repetition rules.
#[derive(Clone, Copy, PartialEq)]
enum Prev {
    /// Nothing to repeat: the start, `(`, `|` or a flag group.
    Nothing,
    /// Something repeatable.
    Atom,
    /// A repetition starting at this index, and whether it already took its lazy `?`.
    Repeat(usize, bool),
}

struct Translator {
    chars: Vec<char>,
    out: String,
}

impl Translator {
    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to.min(self.chars.len())].iter().collect()
    }

    fn run(mut self) -> Result<String, Error> {
        let mut i = 0;
        let mut prev = Prev::Nothing;
        let mut depth = 0usize;
        while i < self.chars.len() {
            let c = self.chars[i];
            match c {
                '*' | '+' | '?' => {
                    prev = self.repeat_op(prev, i, i + 1)?;
                    self.out.push(c);
                    i += 1;
                }
                '{' => match self.counted_repeat(i)? {
                    Some((text, next)) => {
                        prev = self.repeat_op(prev, i, next)?;
                        self.out.push_str(&text);
                        i = next;
                    }
                    None => {
                        self.out.push_str("\\{");
                        prev = Prev::Atom;
                        i += 1;
                    }
                },
                '}' | ']' => {
                    self.out.push('\\');
                    self.out.push(c);
                    prev = Prev::Atom;
                    i += 1;
                }
                '[' => {
                    i = self.class(i)?;
                    prev = Prev::Atom;
                }
                '(' => {
                    let (next, opens) = self.group_open(i)?;
                    depth += usize::from(opens);
                    prev = Prev::Nothing;
                    i = next;
                }
                ')' => {
                    depth = depth.checked_sub(1).ok_or_else(|| {
                        syntax(ErrorCode::UnexpectedParen, self.text(0, usize::MAX))
                    })?;
                    self.out.push(')');
                    prev = Prev::Atom;
                    i += 1;
                }
                '|' => {
                    self.out.push('|');
                    prev = Prev::Nothing;
                    i += 1;
                }
                '\\' => {
                    i = self.escape_outside_class(i)?;
                    prev = Prev::Atom;
                }
                _ => {
                    self.out.push(c);
                    prev = Prev::Atom;
                    i += 1;
                }
            }
        }
        if depth > 0 {
            return Err(syntax(ErrorCode::MissingParen, self.text(0, usize::MAX)));
        }
        Ok(self.out)
    }

    /// Checks a repetition operator spanning `start..end` after `prev`; Go allows one lazy `?`
    /// after a repetition and nothing else.
    fn repeat_op(&mut self, prev: Prev, start: usize, end: usize) -> Result<Prev, Error> {
        match prev {
            Prev::Nothing => Err(syntax(
                ErrorCode::MissingRepeatArgument,
                self.text(start, end),
            )),
            Prev::Atom => Ok(Prev::Repeat(start, false)),
            Prev::Repeat(first, false) if self.chars[start] == '?' => Ok(Prev::Repeat(first, true)),
            Prev::Repeat(first, _) => {
                Err(syntax(ErrorCode::InvalidRepeatOp, self.text(first, end)))
            }
        }
    }

    /// `{n}`, `{n,}` or `{n,m}` at `i`: the text to emit and the index after it, `None` when Go
    /// reads the brace as a literal.
    fn counted_repeat(&self, i: usize) -> Result<Option<(String, usize)>, Error> {
        let chars = &self.chars;
        let mut j = i + 1;
        let digits = |j: &mut usize| {
            let start = *j;
            while chars.get(*j).is_some_and(char::is_ascii_digit) {
                *j += 1;
            }
            chars[start..*j].iter().collect::<String>()
        };
        let min = digits(&mut j);
        if min.is_empty() {
            return Ok(None);
        }
        let mut max = Some(min.clone());
        if chars.get(j) == Some(&',') {
            j += 1;
            let m = digits(&mut j);
            max = (!m.is_empty()).then_some(m);
        }
        if chars.get(j) != Some(&'}') {
            return Ok(None);
        }
        let parse = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= MAX_REPEAT);
        let bad = || syntax(ErrorCode::InvalidRepeatSize, self.text(i, j + 1));
        let lo = parse(&min).ok_or_else(bad)?;
        let text = match &max {
            None => format!("{{{lo},}}"),
            Some(m) => {
                let hi = parse(m).ok_or_else(bad)?;
                if hi < lo {
                    return Err(bad());
                }
                format!("{{{lo},{hi}}}")
            }
        };
        Ok(Some((text, j + 1)))
    }

    /// `(`, `(?:`, `(?P<name>`, `(?<name>`, `(?flags)` and `(?flags:`; copied once Go would
    /// accept them. Returns the index after the opening and whether it opened a group.
    fn group_open(&mut self, i: usize) -> Result<(usize, bool), Error> {
        let chars = &self.chars;
        if chars.get(i + 1) != Some(&'?') {
            self.out.push('(');
            return Ok((i + 1, true));
        }
        let rest: String = chars[i + 2..].iter().collect();
        let named = rest
            .strip_prefix("P<")
            .map(|r| (r, 4))
            .or_else(|| rest.strip_prefix('<').map(|r| (r, 3)));
        if let Some((after, prefix)) = named {
            let name: String = after.chars().take_while(|c| *c != '>').collect();
            let end = i + prefix + name.chars().count() + 1;
            if name.len() == after.len()
                || name.is_empty()
                || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
            {
                return Err(syntax(ErrorCode::InvalidNamedCapture, self.text(i, end)));
            }
            self.out.push_str("(?P<");
            self.out.push_str(&name);
            self.out.push('>');
            return Ok((end, true));
        }
        // Flags: Go knows i, m, s and U, with at most one `-` that must be followed by a flag.
        // Go accepts repeated and contradicting flags, the `regex` crate does not: write them
        // back in a canonical order, the last word winning as in Go.
        let mut on: Vec<char> = Vec::new();
        let mut off: Vec<char> = Vec::new();
        let mut negated = false;
        let mut saw_flag = false;
        let mut j = i + 2;
        loop {
            match chars.get(j) {
                Some(&f @ ('i' | 'm' | 's' | 'U')) => {
                    saw_flag = true;
                    let (add, remove) = if negated {
                        (&mut off, &mut on)
                    } else {
                        (&mut on, &mut off)
                    };
                    remove.retain(|x| *x != f);
                    if !add.contains(&f) {
                        add.push(f);
                    }
                }
                Some('-') if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                Some(&end @ (':' | ')')) if !negated || saw_flag => {
                    let mut flags: String = on.iter().collect();
                    if !off.is_empty() {
                        flags.push('-');
                        flags.extend(off.iter());
                    }
                    if end == ':' {
                        self.out.push_str(&format!("(?{flags}:"));
                    } else if !flags.is_empty() {
                        self.out.push_str(&format!("(?{flags})"));
                    }
                    return Ok((j + 1, end == ':'));
                }
                _ => return Err(syntax(ErrorCode::InvalidPerlOp, self.text(i, j + 1))),
            }
            j += 1;
        }
    }

    /// An escape outside a class.
    fn escape_outside_class(&mut self, i: usize) -> Result<usize, Error> {
        let Some(&c) = self.chars.get(i + 1) else {
            return Err(syntax(ErrorCode::TrailingBackslash, ""));
        };
        match c {
            'A' | 'z' => self.out.push_str(&format!("\\{c}")),
            'b' | 'B' => self.out.push_str(&format!("(?-u:\\{c})")),
            'C' => self.out.push_str("(?s:.)"),
            'Q' => {
                let chars = &self.chars;
                let start = i + 2;
                let mut end = start;
                while end < chars.len() && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E'))
                {
                    end += 1;
                }
                let literal = self.text(start, end);
                self.out.push_str(&::regex::escape(&literal));
                return Ok(if end < self.chars.len() { end + 2 } else { end });
            }
            'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                let (set, negated) = perl_class(c);
                self.out.push_str(if negated { "[^" } else { "[" });
                self.out.push_str(set);
                self.out.push(']');
            }
            'p' | 'P' => return self.unicode_class(i),
            _ => {
                let (ch, next) = self.escaped_char(i)?;
                let mut buf = [0u8; 4];
                self.out
                    .push_str(&::regex::escape(ch.encode_utf8(&mut buf)));
                return Ok(next);
            }
        }
        Ok(i + 2)
    }

    /// `\pL`, `\p{Greek}`, `\PL`, `\P{^Greek}`: copied as written.
    fn unicode_class(&mut self, i: usize) -> Result<usize, Error> {
        let end = match self.chars.get(i + 2) {
            Some('{') => {
                let close = self.chars[i + 2..]
                    .iter()
                    .position(|c| *c == '}')
                    .ok_or_else(|| syntax(ErrorCode::InvalidCharRange, self.text(i, usize::MAX)))?;
                i + 2 + close + 1
            }
            Some(_) => i + 3,
            None => return Err(syntax(ErrorCode::InvalidCharRange, self.text(i, i + 2))),
        };
        let class = self.text(i, end);
        self.out.push_str(&class);
        Ok(end)
    }

    /// A single escaped character (`\n`, `\x41`, `\x{263a}`, `\101`, `\.`), as Go's
    /// `parseEscape` reads it: the character and the index after the escape.
    fn escaped_char(&self, i: usize) -> Result<(char, usize), Error> {
        let chars = &self.chars;
        let invalid = |to: usize| syntax(ErrorCode::InvalidEscape, self.text(i, to));
        let &c = chars.get(i + 1).ok_or_else(|| invalid(i + 2))?;
        let simple = match c {
            'a' => Some('\u{7}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok((ch, i + 2));
        }
        match c {
            // A lone `\1`-`\7` is a backreference, which RE2 does not support.
            '1'..='7' if !chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d)) => {
                Err(invalid(i + 2))
            }
            '0'..='7' => {
                let mut j = i + 1;
                let mut value = 0u32;
                while j < chars.len() && j < i + 4 && ('0'..='7').contains(&chars[j]) {
                    value = value * 8 + (chars[j] as u32 - '0' as u32);
                    j += 1;
                }
                Ok((char::from_u32(value).ok_or_else(|| invalid(j))?, j))
            }
            'x' => {
                let hex_value = |digits: &[char]| {
                    if digits.is_empty() || !digits.iter().all(char::is_ascii_hexdigit) {
                        return None;
                    }
                    let text: String = digits.iter().collect();
                    u32::from_str_radix(&text, 16).ok().and_then(char::from_u32)
                };
                if chars.get(i + 2) == Some(&'{') {
                    let close = chars[i + 3..]
                        .iter()
                        .position(|c| *c == '}')
                        .ok_or_else(|| invalid(usize::MAX))?;
                    let end = i + 3 + close + 1;
                    let ch = hex_value(&chars[i + 3..end - 1]).ok_or_else(|| invalid(end))?;
                    return Ok((ch, end));
                }
                let ch = chars
                    .get(i + 2..i + 4)
                    .and_then(hex_value)
                    .ok_or_else(|| invalid(i + 4))?;
                Ok((ch, i + 4))
            }
            _ => Err(invalid(i + 2)),
        }
    }

    /// A bracketed class starting at `i`, read with Go's rules and written item by item.
    fn class(&mut self, i: usize) -> Result<usize, Error> {
        let missing = |t: &Self| syntax(ErrorCode::MissingBracket, t.text(i, usize::MAX));
        let mut j = i + 1;
        self.out.push('[');
        if self.chars.get(j) == Some(&'^') {
            self.out.push('^');
            j += 1;
        }
        let mut first = true;
        loop {
            let &c = self.chars.get(j).ok_or_else(|| missing(self))?;
            if c == ']' && !first {
                self.out.push(']');
                return Ok(j + 1);
            }
            first = false;
            // `[:name:]` and `[:^name:]`; without a closing `:]` the `[` is a literal.
            if c == '[' && self.chars.get(j + 1) == Some(&':') {
                let rest = self.text(j + 2, usize::MAX);
                if let Some(end) = rest.find(":]") {
                    let name = &rest[..end];
                    let bare = name.strip_prefix('^').unwrap_or(name);
                    if !POSIX_CLASSES.contains(&bare) {
                        return Err(syntax(ErrorCode::InvalidCharRange, format!("[:{name}:]")));
                    }
                    self.out.push_str(&format!("[:{name}:]"));
                    j += 2 + name.chars().count() + 2;
                    continue;
                }
            }
            if c == '\\' {
                match self.chars.get(j + 1) {
                    Some(&p @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                        let (set, negated) = perl_class(p);
                        if negated {
                            self.out.push_str(&format!("[^{set}]"));
                        } else {
                            self.out.push_str(set);
                        }
                        j += 2;
                        continue;
                    }
                    Some('p' | 'P') => {
                        j = self.unicode_class(j)?;
                        continue;
                    }
                    _ => {}
                }
            }
            let (lo, next) = self.class_char(j).ok_or_else(|| missing(self))??;
            let start = j;
            j = next;
            if self.chars.get(j) == Some(&'-') && self.chars.get(j + 1).is_some_and(|c| *c != ']') {
                let (hi, next) = self.class_char(j + 1).ok_or_else(|| missing(self))??;
                if hi < lo {
                    return Err(syntax(ErrorCode::InvalidCharRange, self.text(start, next)));
                }
                push_class_char(&mut self.out, lo);
                self.out.push('-');
                push_class_char(&mut self.out, hi);
                j = next;
            } else {
                push_class_char(&mut self.out, lo);
            }
        }
    }

    /// One character inside a class, plain or escaped; `None` at the end of the pattern.
    fn class_char(&self, j: usize) -> Option<Result<(char, usize), Error>> {
        let &c = self.chars.get(j)?;
        Some(if c == '\\' {
            self.escaped_char(j)
        } else {
            Ok((c, j + 1))
        })
    }
}

/// The ASCII set of a Perl class (`\d`, `\s`, `\w` and negations) as class contents.
fn perl_class(c: char) -> (&'static str, bool) {
    let set = match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => "\\t\\n\\x0C\\r ",
        _ => "0-9A-Za-z_",
    };
    (set, c.is_ascii_uppercase())
}

/// Pushes a character for use inside a class, escaped so the `regex` crate cannot read it as
/// a nested class, a set operation or a range.
fn push_class_char(out: &mut String, c: char) {
    if matches!(c, '[' | ']' | '\\' | '-' | '^' | '&' | '~') {
        out.push('\\');
        out.push(c);
    } else if c.is_control() {
        out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

const POSIX_CLASSES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

#[cfg(test)]
mod tests {
    use super::{Error, ErrorCode, compile, translate};

    fn matches(go: &str, input: &str) -> bool {
        compile(go)
            .unwrap_or_else(|e| panic!("{go:?} should compile: {e}"))
            .is_match(input)
    }
    #[test]
    fn go_literal_braces_and_brackets() {
        assert!(matches("a{,5}", "a{,5}"));
        assert!(matches("x{1,2", "x{1,2"));
        assert!(matches("a{}", "a{}"));
        assert!(matches("^a}$", "a}"));
        assert!(matches("^a]$", "a]"));
        assert!(matches("^a{2,3}$", "aaa"));
        assert!(!matches("^a{2,3}$", "aaaa"));
        assert!(matches("^a{2,}?$", "aaaaa"));
    }

    #[test]
    fn go_classes_are_flat_and_literal() {
        assert!(matches("^[a[]+$", "a[a["));
        assert!(matches("^[]a]+$", "]a"));
        assert!(matches("^[^]a]$", "b"));
        assert!(!matches("^[^]a]$", "]"));
        assert!(matches("^[a&&b]+$", "a&&b"));
        assert!(matches("^[a~~b]+$", "~"));
        assert!(matches("^[a-]+$", "a-"));
        assert!(matches("^[--/]$", "."), "a range from - to /");
        assert!(matches("^[[:alpha:]_]+$", "abc_"));
        assert!(matches("^[[:^digit:]]$", "x"));
        assert!(matches(r"^[\d.]+$", "1.2.3"));
        assert!(matches(r"^[\D]$", "x"));
        assert!(matches(r"^[\]\\]+$", "]\\"));
    }

    #[test]
    fn go_escapes() {
        assert!(matches(r"^\Qa.b*\E+$", "a.b**"));
        assert!(!matches(r"^\Qa.b\E$", "axb"));
        assert!(
            matches(r"^\Qa.b$", "a.b$"),
            "\\Q runs to the end without \\E"
        );
        assert!(matches(r"^\101\x42\x{43}$", "ABC"));
        assert!(matches(r"^\0$", "\0"));
        assert!(matches(r"^\d+$", "123"));
        assert!(!matches(r"^\d$", "٣"), "Go's \\d is ASCII only");
        assert!(!matches(r"^\w$", "é"), "Go's \\w is ASCII only");
        assert!(matches(r"\bv\d", "a v1"));
        assert!(matches(r"^\pL+$", "日本"));
        assert!(matches(r"^\p{Greek}$", "λ"));
        assert!(matches(r"^\C$", "x"));
        assert!(matches(r"^a\.b\-c$", "a.b-c"));
        // Any escaped ASCII punctuation is a literal in Go, also where the regex crate has
        // word-boundary meanings.
        assert!(matches(r"^\<a\>$", "<a>"));
    }

    #[test]
    fn go_groups_and_flags() {
        assert!(matches("(?ii)^a$", "A"), "Go accepts repeated flags");
        assert!(!matches("(?i-i)^a$", "A"), "the later flag wins");
        assert!(matches("^(?)a$", "a"), "an empty flag group is nothing");
        assert!(matches("^(?P<v>[0-9]+)-(?<ts>[0-9]+)$", "1-2"));
        assert!(matches("(?i)^main$", "MAIN"));
        assert!(matches("^(?i:a)b$", "Ab"));
        assert!(matches("(?s)^a.b$", "a\nb"));
        assert!(matches("(?U)^a+", "aaa"));
        assert!(matches("^a*?$", "aaa"));
    }

    #[test]
    fn what_go_rejects() {
        for bad in [
            "a**",
            "a++",
            "a*+",
            "a?*",
            "a{2}{3}",
            "a*{2}",
            "a*??",
            r"\1",
            r"\e",
            r"\u0041",
            r"\x{+41}",
            r"\x4",
            "(?-)a",
            r"\Z",
            "(?x)a",
            "(?P=n)",
            "(?i-)a",
            "a{1001}",
            "a{2,1}",
            "[z-a]",
            "[[:foo:]]",
            "[a",
            r"\",
            "(?<>a)",
            "(?P<a-b>x)",
        ] {
            assert!(translate(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn refusals_read_as_go_words_them() {
        let message = |p: &str| translate(p).expect_err(p).to_string();
        assert_eq!(
            message("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            message("x{2}{3}"),
            "error parsing regexp: invalid nested repetition operator: `{2}{3}`"
        );
        assert_eq!(
            message("a{2,1}"),
            "error parsing regexp: invalid repeat count: `{2,1}`"
        );
        assert_eq!(
            message("x[a-"),
            "error parsing regexp: missing closing ]: `[a-`"
        );
        assert_eq!(
            message("[z-a]"),
            "error parsing regexp: invalid character class range: `z-a`"
        );
        assert_eq!(
            message(r"\e"),
            "error parsing regexp: invalid escape sequence: `\\e`"
        );
        assert_eq!(
            message("(?x)a"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"
        );
        assert_eq!(
            message("(?P<a-b>x)"),
            "error parsing regexp: invalid named capture: `(?P<a-b>`"
        );
        assert_eq!(
            message("a\\"),
            "error parsing regexp: trailing backslash at end of expression: ``"
        );
    }

    #[test]
    fn parentheses_and_repetition_arguments_are_checked_as_go_does() {
        let code = |p: &str| match translate(p) {
            Err(Error::Syntax { code, .. }) => Some(code),
            _ => None,
        };
        assert_eq!(code("(a"), Some(ErrorCode::MissingParen));
        assert_eq!(code("a)"), Some(ErrorCode::UnexpectedParen));
        assert_eq!(code("*a"), Some(ErrorCode::MissingRepeatArgument));
        assert_eq!(code("a|*"), Some(ErrorCode::MissingRepeatArgument));
        assert_eq!(code("(?i)+"), Some(ErrorCode::MissingRepeatArgument));
        assert_eq!(code("(*)"), Some(ErrorCode::MissingRepeatArgument));
        assert_eq!(code("(?i:a)(b)"), None);
        assert!(matches("^(a(b)c)$", "abc"));
    }

    #[test]
    fn what_only_the_regex_crate_refuses_says_so() {
        let err = compile(r"\p{NoSuchScript}").expect_err("unknown class");
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}
