//! Go `regexp` (RE2, Perl flags) syntax translated to the `regex` crate's syntax.
//!
//! Both are RE2 dialects, but they disagree on details a user's `filterTags.pattern` may hit:
//! Go takes `a{,5}` and an unfinished `{` as literals, knows `\Q...\E`, octal escapes and
//! `\C`, keeps `\d`, `\s`, `\w` and `\b` ASCII-only, and rejects stacked repetitions (`a**`);
//! the `regex` crate nests classes (`[a[]`), has class set operations (`&&`, `--`, `~~`) and
//! extra escapes (`\<`, `\u`). Translating, instead of passing the text through, makes a
//! pattern mean here what it means in Flux, and be refused where Flux refuses it.

/// Go's limit on a counted repetition.
const MAX_REPEAT: u32 = 1000;

/// Translates a Go pattern; the error says what Go would reject.
pub(super) fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // The previous token was a repetition (and whether it already took its lazy `?`).
    let mut after_repeat = false;
    let mut lazy_taken = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' | '+' | '?' => {
                if after_repeat {
                    if c == '?' && !lazy_taken {
                        lazy_taken = true;
                        out.push('?');
                        i += 1;
                        continue;
                    }
                    return Err(format!(
                        "invalid nested repetition operator at {:?}",
                        &pattern_from(&chars, i)
                    ));
                }
                out.push(c);
                after_repeat = true;
                lazy_taken = false;
                i += 1;
            }
            '{' => match counted_repeat(&chars, i)? {
                Some((text, next)) => {
                    if after_repeat {
                        return Err(format!(
                            "invalid nested repetition operator at {:?}",
                            &pattern_from(&chars, i)
                        ));
                    }
                    out.push_str(&text);
                    after_repeat = true;
                    lazy_taken = false;
                    i = next;
                }
                None => {
                    out.push_str("\\{");
                    after_repeat = false;
                    i += 1;
                }
            },
            '}' | ']' => {
                out.push('\\');
                out.push(c);
                after_repeat = false;
                i += 1;
            }
            '[' => {
                i = class(&chars, i, &mut out)?;
                after_repeat = false;
            }
            '(' => {
                i = group_open(&chars, i, &mut out)?;
                after_repeat = false;
            }
            '\\' => {
                i = escape_outside_class(&chars, i, &mut out)?;
                after_repeat = false;
            }
            _ => {
                out.push(c);
                after_repeat = false;
                i += 1;
            }
        }
    }
    Ok(out)
}

fn pattern_from(chars: &[char], i: usize) -> String {
    chars[i..].iter().take(8).collect()
}

/// `{n}`, `{n,}` or `{n,m}` at `i`: the text to emit and the index after it, `None` when Go
/// reads the brace as a literal.
fn counted_repeat(chars: &[char], i: usize) -> Result<Option<(String, usize)>, String> {
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
    let bad = || {
        format!(
            "invalid repeat count {:?}",
            chars[i..=j].iter().collect::<String>()
        )
    };
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
/// accept them.
fn group_open(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    if chars.get(i + 1) != Some(&'?') {
        out.push('(');
        return Ok(i + 1);
    }
    let rest: String = chars[i + 2..].iter().collect();
    let named = rest
        .strip_prefix("P<")
        .map(|r| (r, 4))
        .or_else(|| rest.strip_prefix('<').map(|r| (r, 3)));
    if let Some((after, prefix)) = named {
        let name: String = after.chars().take_while(|c| *c != '>').collect();
        if name.len() == after.len() {
            return Err("missing closing > in named group".to_string());
        }
        if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
            return Err(format!("invalid named capture {name:?}"));
        }
        out.push_str("(?P<");
        out.push_str(&name);
        out.push('>');
        return Ok(i + prefix + name.chars().count() + 1);
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
            Some(&end @ (':' | ')')) => {
                if negated && !saw_flag {
                    return Err("missing flag after - in group flags".to_string());
                }
                let mut flags: String = on.iter().collect();
                if !off.is_empty() {
                    flags.push('-');
                    flags.extend(off.iter());
                }
                if end == ':' {
                    out.push_str(&format!("(?{flags}:"));
                } else if !flags.is_empty() {
                    out.push_str(&format!("(?{flags})"));
                }
                return Ok(j + 1);
            }
            _ => return Err("invalid or unsupported Perl syntax after (?".to_string()),
        }
        j += 1;
    }
}

/// An escape outside a class.
fn escape_outside_class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let Some(&c) = chars.get(i + 1) else {
        return Err("trailing backslash at end of expression".to_string());
    };
    match c {
        'A' | 'z' => out.push_str(&format!("\\{c}")),
        'b' | 'B' => out.push_str(&format!("(?-u:\\{c})")),
        'C' => out.push_str("(?s:.)"),
        'Q' => {
            let start = i + 2;
            let mut end = start;
            while end < chars.len() && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E')) {
                end += 1;
            }
            let literal: String = chars[start..end].iter().collect();
            out.push_str(&regex::escape(&literal));
            return Ok(if end < chars.len() { end + 2 } else { end });
        }
        'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
            let (set, negated) = perl_class(c);
            out.push_str(if negated { "[^" } else { "[" });
            out.push_str(set);
            out.push(']');
        }
        'p' | 'P' => return unicode_class(chars, i, out),
        _ => {
            let (ch, next) = escaped_char(chars, i)?;
            push_literal(out, ch);
            return Ok(next);
        }
    }
    Ok(i + 2)
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

/// `\pL`, `\p{Greek}`, `\PL`, `\P{^Greek}`: copied as written.
fn unicode_class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let end = match chars.get(i + 2) {
        Some('{') => {
            let close = chars[i + 2..]
                .iter()
                .position(|c| *c == '}')
                .ok_or("missing closing } in \\p{...}")?;
            i + 2 + close + 1
        }
        Some(_) => i + 3,
        None => return Err("missing name after \\p".to_string()),
    };
    out.extend(&chars[i..end]);
    Ok(end)
}

/// A single escaped character (`\n`, `\x41`, `\x{263a}`, `\101`, `\.`), as Go's
/// `parseEscape` reads it: the character and the index after the escape.
fn escaped_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    let invalid = || {
        let text: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        format!("invalid escape sequence {text:?}")
    };
    let &c = chars.get(i + 1).ok_or_else(invalid)?;
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
        '1'..='7' if !chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d)) => Err(invalid()),
        '0'..='7' => {
            let mut j = i + 1;
            let mut value = 0u32;
            while j < chars.len() && j < i + 4 && ('0'..='7').contains(&chars[j]) {
                value = value * 8 + (chars[j] as u32 - '0' as u32);
                j += 1;
            }
            Ok((char::from_u32(value).ok_or_else(invalid)?, j))
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
                    .ok_or_else(invalid)?;
                let ch = hex_value(&chars[i + 3..i + 3 + close]).ok_or_else(invalid)?;
                return Ok((ch, i + 3 + close + 1));
            }
            let ch = chars
                .get(i + 2..i + 4)
                .and_then(hex_value)
                .ok_or_else(invalid)?;
            Ok((ch, i + 4))
        }
        _ => Err(invalid()),
    }
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
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

/// A bracketed class starting at `i`, read with Go's rules and written item by item.
fn class(chars: &[char], i: usize, out: &mut String) -> Result<usize, String> {
    let missing = || "missing closing ] in character class".to_string();
    let mut j = i + 1;
    out.push('[');
    if chars.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let &c = chars.get(j).ok_or_else(missing)?;
        if c == ']' && !first {
            out.push(']');
            return Ok(j + 1);
        }
        first = false;
        // `[:name:]` and `[:^name:]`; without a closing `:]` the `[` is a literal.
        if c == '[' && chars.get(j + 1) == Some(&':') {
            let rest: String = chars[j + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                if !POSIX_CLASSES.contains(&bare) {
                    return Err(format!("invalid character class range [:{name}:]"));
                }
                out.push_str(&format!("[:{name}:]"));
                j += 2 + name.chars().count() + 2;
                continue;
            }
        }
        if c == '\\' {
            match chars.get(j + 1) {
                Some(&p @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    let (set, negated) = perl_class(p);
                    if negated {
                        out.push_str(&format!("[^{set}]"));
                    } else {
                        out.push_str(set);
                    }
                    j += 2;
                    continue;
                }
                Some('p' | 'P') => {
                    j = unicode_class(chars, j, out)?;
                    continue;
                }
                _ => {}
            }
        }
        let (lo, next) = class_char(chars, j)?;
        j = next;
        if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|c| *c != ']') {
            let (hi, next) = class_char(chars, j + 1)?;
            if hi < lo {
                return Err(format!("invalid character class range {lo}-{hi}"));
            }
            push_class_char(out, lo);
            out.push('-');
            push_class_char(out, hi);
            j = next;
        } else {
            push_class_char(out, lo);
        }
    }
}

/// One character inside a class, plain or escaped.
fn class_char(chars: &[char], j: usize) -> Result<(char, usize), String> {
    let &c = chars
        .get(j)
        .ok_or_else(|| "missing closing ] in character class".to_string())?;
    if c == '\\' {
        escaped_char(chars, j)
    } else {
        Ok((c, j + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn matches(go: &str, input: &str) -> bool {
        let rust = translate(go).unwrap_or_else(|e| panic!("{go:?} should translate: {e}"));
        regex::Regex::new(&rust)
            .unwrap_or_else(|e| panic!("{go:?} became {rust:?}, which does not compile: {e}"))
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
}
