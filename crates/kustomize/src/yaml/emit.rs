//! [`Value`] to YAML text exactly as kustomize prints it.
//!
//! kustomize serialises each resource to JSON and converts that with go-yaml v2
//! (`sigs.k8s.io/yaml.JSONToYAML`), so the printed form is go-yaml v2's: keys sorted with its
//! "natural" order, unindented block sequences, strings quoted when v2 would read them back
//! as another type, literal blocks for multi-line strings, lines folded at 80 columns.

use std::cmp::Ordering;

use super::parse::{is_yaml_float, parse_go_int};
use super::value::Value;

const BEST_WIDTH: usize = 80;
const BEST_INDENT: i64 = 2;

/// Renders one document (with its trailing newline), as `yaml.Marshal` of go-yaml v2 does.
pub fn to_yaml(v: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
        open_ended: false,
    };
    e.node(v, Ctx::Root);
    e.write_indent();
    if e.open_ended {
        e.out.push_str("...\n");
    }
    e.out
}

/// Renders a stream of documents separated by `---`, as `kustomize build` prints a ResMap.
pub fn to_yaml_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(d));
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    SeqItem,
    MapValue,
}

struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: i64,
    indents: Vec<i64>,
    open_ended: bool,
}

/// How a string scalar will be written.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Default)]
struct Analysis {
    multiline: bool,
    flow_plain: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        self.write_str(ind);
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
        self.open_ended = false;
    }

    fn node(&mut self, v: &Value, ctx: Ctx) {
        match v {
            Value::Map(m) if !m.is_empty() => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by(|a, b| v2_key_cmp(a.0, b.0));
                self.increase_indent(false, false);
                for (k, val) in entries {
                    self.write_indent();
                    // go-yaml writes keys over 128 bytes or spanning lines as `? key`.
                    if k.len() <= 128 && !k.chars().any(is_break) {
                        self.scalar_str(k, true);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.scalar_str(k, false);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(val, Ctx::MapValue);
                }
                self.pop_indent();
            }
            Value::Map(_) => {
                self.write_indicator("{", true, true, false);
                self.write_indicator("}", false, false, false);
            }
            Value::Seq(items) if !items.is_empty() => {
                let indentless = ctx == Ctx::MapValue && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Ctx::SeqItem);
                }
                self.pop_indent();
            }
            Value::Seq(_) => {
                self.write_indicator("[", true, true, false);
                self.write_indicator("]", false, false, false);
            }
            Value::Str(s) => self.scalar_str(s, false),
            other => {
                let text = match other {
                    Value::Null => "null".to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => format_float(*f),
                    _ => unreachable!("collections handled above"),
                };
                self.increase_indent(true, false);
                self.write_plain(&text, true);
                self.pop_indent();
            }
        }
        if ctx == Ctx::Root && !matches!(v, Value::Map(_) | Value::Seq(_)) {
            self.open_ended = self.open_ended || matches!(v, Value::Str(_));
        }
    }

    fn scalar_str(&mut self, s: &str, simple_key: bool) {
        let a = analyze(s);
        let mut style = if !v2_resolves_to_str(s) {
            Style::Double
        } else if s.contains('\n') {
            Style::Literal
        } else {
            Style::Plain
        };
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || simple_key) {
            style = Style::Double;
        }
        let _ = a.flow_plain;
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(s, allow_breaks),
            Style::Single => self.write_single(s, allow_breaks),
            Style::Double => self.write_double(s, allow_breaks),
            Style::Literal => self.write_literal(s),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, s: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
            i += 1;
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_single(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
    }

    fn write_double(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{B}' => self.put('v'),
                    '\u{C}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1B}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let text = if v <= 0xFF {
                            format!("x{v:02X}")
                        } else if v <= 0xFFFF {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        self.write_str(&text);
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
            i += 1;
        }
        self.write_indicator("\"", false, false, false);
    }

    fn write_literal(&mut self, s: &str) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        if let Some(&first) = chars.first()
            && (first == ' ' || is_break(first))
        {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        self.open_ended = false;
        let chomp = match chars.len() {
            0 => Some("-"),
            n if !is_break(chars[n - 1]) => Some("-"),
            1 => {
                self.open_ended = true;
                Some("+")
            }
            n if is_break(chars[n - 2]) => {
                self.open_ended = true;
                Some("+")
            }
            _ => None,
        };
        if let Some(ch) = chomp {
            let keep_open = self.open_ended;
            self.write_indicator(ch, false, false, false);
            self.open_ended = keep_open;
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// go-yaml's `is_printable`: it looks at UTF-8 bytes and so treats U+0085 and every
/// character outside the Basic Multilingual Plane (emoji, ...) as unprintable.
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_ind = false;
    let mut flow_ind = false;
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let blankz = |c: Option<&char>| match c {
        None => true,
        Some(c) => *c == ' ' || *c == '\t' || is_break(*c),
    };
    let mut preceded_ws = true;
    let mut followed_ws = blankz(chars.get(1));
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut prev_space, mut prev_break) =
        (false, false, false, false);
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_ind = true;
                block_ind = true;
            }
            if c == '?' || c == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if c == '-' && followed_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_ind = true;
            }
            if c == ':' {
                flow_ind = true;
                if followed_ws {
                    block_ind = true;
                }
            }
            if c == '#' && preceded_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = blankz(Some(&c));
        followed_ws = blankz(chars.get(i + 2));
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

/// go-yaml v2's `resolve("", s)` says `!!str`, and `s` is no base-60 float: the string can be
/// written unquoted without changing type.
fn v2_resolves_to_str(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false;
    };
    const SPECIAL: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE", "n", "N", "no",
        "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    // go-yaml only looks strings up when their first byte hints at another type ("<<"
    // has no hint, so it stays a plain string).
    let hinted = first.is_ascii_digit() || b"+-.yYnNtTfFoO~".contains(&first);
    if !hinted {
        return true;
    }
    if SPECIAL.contains(&s) {
        return false;
    }
    if first == b'.' {
        return !is_go_float(s);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return true;
    }
    if looks_like_timestamp(s) || is_base60_float(s) {
        return false;
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    if parse_go_int(&plain).is_some() || parse_go_uint(&plain) {
        return false;
    }
    if is_yaml_float(&plain) {
        return false;
    }
    for prefix in ["0b", "-0b"] {
        if let Some(rest) = plain.strip_prefix(prefix)
            && !rest.is_empty()
            && rest.chars().all(|c| c == '0' || c == '1')
        {
            return false;
        }
    }
    true
}

fn parse_go_uint(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    !body.is_empty() && body.chars().all(|c| c.is_ascii_digit()) && body.parse::<u64>().is_ok()
}

fn is_go_float(s: &str) -> bool {
    is_yaml_float(s) && s.parse::<f64>().is_ok()
}

fn is_base60_float(s: &str) -> bool {
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let digits = &b[start..i];
        let ok = match digits.len() {
            1 => true,
            2 => digits[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Whether go-yaml reads `s` as a timestamp (`2006-1-2`, optionally with a time).
pub fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let mut i = 5;
    let num = |i: &mut usize, max: usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        *i - start
    };
    if num(&mut i, 2) == 0 || i >= b.len() || b[i] != b'-' {
        return false;
    }
    i += 1;
    if num(&mut i, 2) == 0 {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let sep = b[i];
    if !(sep == b'T' || sep == b't' || sep == b' ') {
        return false;
    }
    i += 1;
    for k in 0..3 {
        if num(&mut i, 2) == 0 {
            return false;
        }
        if k < 2 {
            if i >= b.len() || b[i] != b':' {
                return false;
            }
            i += 1;
        }
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if num(&mut i, 9) == 0 {
            return false;
        }
    }
    if sep == b' ' {
        return i == b.len();
    }
    if i < b.len() && b[i] == b'Z' {
        return i + 1 == b.len();
    }
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        let rest = &s[i + 1..];
        return rest.len() == 5
            && rest.as_bytes()[2] == b':'
            && rest
                .bytes()
                .enumerate()
                .all(|(k, c)| k == 2 || c.is_ascii_digit());
    }
    false
}

/// go-yaml v2's key order (`keyList.Less`): letters compare by code point, a non-letter
/// sorts before a letter, and runs of digits compare as numbers.
pub fn v2_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let less = |x: &[char], y: &[char]| -> bool {
        for i in 0..x.len().min(y.len()) {
            if x[i] == y[i] {
                continue;
            }
            let al = x[i].is_alphabetic();
            let bl = y[i].is_alphabetic();
            if al && bl {
                return x[i] < y[i];
            }
            if al || bl {
                return bl;
            }
            let (mut an, mut bn) = (0i64, 0i64);
            if x[i] == '0' || y[i] == '0' {
                let mut j = i;
                while j > 0 && x[j - 1].is_ascii_digit() {
                    j -= 1;
                    if x[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < x.len() && x[ai].is_ascii_digit() {
                an = an
                    .saturating_mul(10)
                    .saturating_add(i64::from(x[ai] as u8 - b'0'));
                ai += 1;
            }
            let mut bi = i;
            while bi < y.len() && y[bi].is_ascii_digit() {
                bn = bn
                    .saturating_mul(10)
                    .saturating_add(i64::from(y[bi] as u8 - b'0'));
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return x[i] < y[i];
        }
        x.len() < y.len()
    };
    if less(&ar, &br) {
        Ordering::Less
    } else if less(&br, &ar) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// A float as kustomize prints it: Go's JSON encoding, read back by go-yaml v2 (so whole
/// numbers print as integers) and printed with `%g`-shortest.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let json = go_json_float(f);
    if parse_go_int(&json).is_some() || parse_go_uint(&json) {
        return json;
    }
    go_format_g(f)
}

fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = go_format_e(f);
        // Go trims `e-09` to `e-9` in JSON.
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    // Shortest decimal without exponent.
    let s = format!("{f}");
    s.trim_end_matches(".0").to_string()
}

fn decimal_digits(f: f64) -> (String, i32) {
    // Shortest round-trip digits and decimal exponent such that f = 0.d1d2.. * 10^exp.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

fn go_format_e(f: f64) -> String {
    let (digits, dp) = decimal_digits(f);
    let sign = if f < 0.0 { "-" } else { "" };
    let exp = dp - 1;
    let mant = if digits.len() > 1 {
        format!("{}.{}", &digits[..1], &digits[1..])
    } else {
        digits.clone()
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{mant}e{esign}{:02}", exp.abs())
}

fn go_format_g(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let (digits, dp) = decimal_digits(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        return go_format_e(f);
    }
    let sign = if f < 0.0 { "-" } else { "" };
    if dp <= 0 {
        format!("{sign}0.{}{}", "0".repeat((-dp) as usize), digits)
    } else if dp as usize >= digits.len() {
        format!("{sign}{}{}", digits, "0".repeat(dp as usize - digits.len()))
    } else {
        format!(
            "{sign}{}.{}",
            &digits[..dp as usize],
            &digits[dp as usize..]
        )
    }
}

/// Compact JSON of a value, keys in input order (used in error texts).
pub fn to_json(v: &Value) -> String {
    serde_json::to_string(&to_serde(v)).unwrap_or_default()
}

/// Converts to a `serde_json::Value` (mapping order becomes serde_json's sorted order).
pub fn to_serde(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Seq(items) => serde_json::Value::Array(items.iter().map(to_serde).collect()),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_serde(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse::parse_documents;

    fn roundtrip(src: &str) -> String {
        let docs = parse_documents(src).expect("valid");
        to_yaml(&docs[0])
    }

    #[test]
    fn sorts_keys_and_leaves_sequences_unindented() {
        let out = roundtrip("b: 1\na:\n  - x: 1\n    c: [1, 2]\n");
        assert_eq!(out, "a:\n- c:\n  - 1\n  - 2\n  x: 1\nb: 1\n");
    }

    #[test]
    fn quotes_strings_that_would_change_type() {
        let out = roundtrip("a: \"true\"\nb: \"1\"\nc: \"yes\"\nd: \"\"\ne: '*'\nf: \"1:20\"\n");
        assert_eq!(
            out,
            "a: \"true\"\nb: \"1\"\nc: \"yes\"\nd: \"\"\ne: '*'\nf: \"1:20\"\n"
        );
    }

    #[test]
    fn multi_line_strings_become_literal_blocks() {
        let out = roundtrip("a: \"x\\ny\\n\"\nb: \" lead\\n\"\nc: \"x\\ny\"\n");
        assert_eq!(out, "a: |\n  x\n  y\nb: |2\n   lead\nc: |-\n  x\n  y\n");
    }

    #[test]
    fn long_plain_strings_fold_at_eighty_columns() {
        let long = "word ".repeat(30);
        let src = format!("k: \"{}\"\n", long.trim_end());
        let out = roundtrip(&src);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.len() <= 90), "{out}");
    }

    #[test]
    fn empty_collections_and_numbers() {
        let out = roundtrip("a: {}\nb: []\nc: 1.0\nd: 0.5\ne: 1e-7\nf: null\n");
        assert_eq!(out, "a: {}\nb: []\nc: 1\nd: 0.5\ne: 1e-07\nf: null\n");
    }

    #[test]
    fn key_order_is_natural_for_digits() {
        let mut keys = vec!["a10", "a9", "_x", "B", "a"];
        keys.sort_by(|a, b| v2_key_cmp(a, b));
        assert_eq!(keys, vec!["_x", "B", "a", "a9", "a10"]);
    }
}
