//! YAML text as go-yaml writes it, byte for byte: kustomize's output and Helm's `toYaml`
//! (`sigs.k8s.io/yaml`: the value goes through JSON, then go-yaml v2's emitter) and Helm's
//! `toYamlPretty` (go-yaml v3, two-space indentation).
//!
//! A port of libyaml's emitter as go-yaml carries it: keys in go-yaml's "natural" order (`a2`
//! before `a10`), strings quoted only when they would read back as another type (`"true"`,
//! `"1.0"`, `"2024-01-01"`), multi-line strings as literal blocks, long plain strings folded
//! after column 80 (v2 only), sequences not indented under their key (v2 only).
//!
//! ```
//! use ferroflux_gocompat::yaml::emit::{Flavor, Node, to_string};
//!
//! let doc = Node::Map(vec![
//!     ("b".into(), Node::Seq(vec![Node::Int(1), Node::Float(1.5)])),
//!     ("a".into(), Node::Str("true".into())),
//! ]);
//! assert_eq!(to_string(&doc, Flavor::Sigs), "a: \"true\"\nb:\n- 1\n- 1.5\n");
//! assert_eq!(to_string(&doc, Flavor::V3), "a: \"true\"\nb:\n  - 1\n  - 1.5\n");
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;

use super::resolve::{parse_int, plain_is_str};
use crate::float;

const BEST_INDENT: i64 = 2;

/// A value to write: what JSON and YAML share. Mapping keys are sorted when written, so their
/// order here does not matter.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float64.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A mapping.
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
    /// A sequence.
    Seq(Vec<Node<'a>>),
}

/// Which Go writer to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `sigs.k8s.io/yaml.Marshal` (kustomize, Helm's `toYaml`): floats as JSON prints them,
    /// read back by go-yaml v2 (so `1.0` prints as `1`), sequences unindented under their
    /// key, plain and quoted strings folded after column 80.
    Sigs,
    /// go-yaml v3 with `SetIndent(2)` (Helm's `toYamlPretty`): floats as `%g`, sequences
    /// indented under their key, no folding.
    V3,
}

/// Renders one document, ending with a newline.
pub fn to_string(node: &Node<'_>, flavor: Flavor) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
        open_ended: false,
        flavor,
        best_width: match flavor {
            Flavor::Sigs => 80,
            Flavor::V3 => usize::MAX,
        },
    };
    e.node(node, Ctx::Root);
    e.write_indent();
    // A literal block kept open (`|+`) at the very end needs the document end marker.
    if e.open_ended {
        e.out.push_str("...\n");
    }
    e.out
}

/// A float scalar as `flavor` writes it.
pub fn float_text(f: f64, flavor: Flavor) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    if flavor == Flavor::Sigs {
        // JSON's text read back by go-yaml: integral text stays an integer.
        let json = float::json(f);
        if parse_int(&json).is_some() || json.bytes().all(|b| b.is_ascii_digit()) {
            return json;
        }
    }
    float::format_g(f)
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
    flavor: Flavor,
    best_width: usize,
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

    fn node(&mut self, v: &Node<'_>, ctx: Ctx) {
        match v {
            Node::Map(m) if !m.is_empty() => {
                let mut entries: Vec<&(Cow<'_, str>, Node<'_>)> = m.iter().collect();
                entries.sort_by(|a, b| key_order(&a.0, &b.0));
                self.increase_indent(false, false);
                for (k, val) in entries {
                    let k: &str = k;
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
            Node::Map(_) => {
                self.write_indicator("{", true, true, false);
                self.write_indicator("}", false, false, false);
            }
            Node::Seq(items) if !items.is_empty() => {
                // go-yaml v3 indents every block sequence; v2 not one that is a mapping value.
                let indentless =
                    self.flavor == Flavor::Sigs && ctx == Ctx::MapValue && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Ctx::SeqItem);
                }
                self.pop_indent();
            }
            Node::Seq(_) => {
                self.write_indicator("[", true, true, false);
                self.write_indicator("]", false, false, false);
            }
            Node::Str(s) => self.scalar_str(s, false),
            Node::Null => self.scalar_text("null"),
            Node::Bool(b) => self.scalar_text(if *b { "true" } else { "false" }),
            Node::Int(i) => self.scalar_text(&i.to_string()),
            Node::Float(f) => self.scalar_text(&float_text(*f, self.flavor)),
        }
    }

    /// A non-string scalar: always plain.
    fn scalar_text(&mut self, text: &str) {
        self.increase_indent(true, false);
        self.write_plain(text, true);
        self.pop_indent();
    }

    fn scalar_str(&mut self, s: &str, simple_key: bool) {
        let a = analyze(s);
        let mut style = if !plain_is_str(s) {
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
        self.write_folding(s, allow_breaks, false);
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
        self.write_folding(s, allow_breaks, true);
        self.write_indicator("'", false, false, false);
    }

    /// The text of a plain or single-quoted scalar (go-yaml's `yaml_emitter_write_plain_scalar`
    /// and `yaml_emitter_write_single_quoted`, which differ only where `quoted` says): a space
    /// past the best width folds the line unless the next is a space too (a quoted scalar never
    /// folds at its first or last character), line breaks are written doubled as YAML folds
    /// them, and a quoted scalar doubles its `'`.
    fn write_folding(&mut self, s: &str, allow_breaks: bool, quoted: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > self.best_width
                    && (!quoted || (i != 0 && i != chars.len() - 1))
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
                if quoted && c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
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
                    && self.column > self.best_width
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

/// go-yaml v2's key order (`keyList.Less`): letters compare by code point, a non-letter
/// sorts before a letter, and runs of digits compare as numbers.
pub fn key_order(a: &str, b: &str) -> Ordering {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: Vec<(&'static str, Node<'static>)>) -> Node<'static> {
        Node::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn s(text: &str) -> Node<'static> {
        Node::Str(text.to_string().into())
    }

    #[test]
    fn sorts_keys_and_leaves_sequences_unindented_in_v2_only() {
        let doc = map(vec![
            ("b", Node::Int(1)),
            (
                "a",
                Node::Seq(vec![map(vec![
                    ("x", Node::Int(1)),
                    ("c", Node::Seq(vec![Node::Int(1), Node::Int(2)])),
                ])]),
            ),
        ]);
        assert_eq!(
            to_string(&doc, Flavor::Sigs),
            "a:\n- c:\n  - 1\n  - 2\n  x: 1\nb: 1\n"
        );
        assert_eq!(
            to_string(&doc, Flavor::V3),
            "a:\n  - c:\n      - 1\n      - 2\n    x: 1\nb: 1\n"
        );
    }

    #[test]
    fn quotes_strings_that_would_change_type() {
        let doc = map(vec![
            ("a", s("true")),
            ("b", s("1")),
            ("c", s("yes")),
            ("d", s("")),
            ("e", s("*")),
            ("f", s("1:20")),
            ("g", s("2024-01-01")),
        ]);
        assert_eq!(
            to_string(&doc, Flavor::Sigs),
            "a: \"true\"\nb: \"1\"\nc: \"yes\"\nd: \"\"\ne: '*'\nf: \"1:20\"\ng: \"2024-01-01\"\n"
        );
    }

    #[test]
    fn multi_line_strings_become_literal_blocks() {
        let doc = map(vec![
            ("a", s("x\ny\n")),
            ("b", s(" lead\n")),
            ("c", s("x\ny")),
        ]);
        assert_eq!(
            to_string(&doc, Flavor::Sigs),
            "a: |\n  x\n  y\nb: |2\n   lead\nc: |-\n  x\n  y\n"
        );
    }

    #[test]
    fn a_kept_final_literal_block_ends_the_document_and_a_root_string_does_not() {
        let doc = map(vec![("a", s("x\n\n"))]);
        assert_eq!(to_string(&doc, Flavor::Sigs), "a: |+\n  x\n\n...\n");
        assert_eq!(to_string(&s("foo"), Flavor::Sigs), "foo\n");
    }

    #[test]
    fn long_strings_fold_at_eighty_columns_in_v2_only() {
        let long = "word ".repeat(30);
        let doc = map(vec![("k", s(long.trim_end()))]);
        let sigs = to_string(&doc, Flavor::Sigs);
        assert!(sigs.lines().count() > 1, "{sigs}");
        assert!(sigs.lines().all(|l| l.len() <= 90), "{sigs}");
        assert_eq!(to_string(&doc, Flavor::V3).lines().count(), 1);
    }

    #[test]
    fn empty_collections_and_numbers() {
        let doc = map(vec![
            ("a", Node::Map(Vec::new())),
            ("b", Node::Seq(Vec::new())),
            ("c", Node::Float(1.0)),
            ("d", Node::Float(0.5)),
            ("e", Node::Float(1e-7)),
            ("f", Node::Null),
            ("g", Node::Float(1234567.5)),
        ]);
        assert_eq!(
            to_string(&doc, Flavor::Sigs),
            "a: {}\nb: []\nc: 1\nd: 0.5\ne: 1e-07\nf: null\ng: 1.2345675e+06\n"
        );
        assert_eq!(float_text(1.0, Flavor::V3), "1");
        assert_eq!(float_text(f64::NEG_INFINITY, Flavor::V3), "-.inf");
    }

    #[test]
    fn key_order_is_natural_for_digits() {
        let mut keys = vec!["a10", "a9", "_x", "B", "a", "a_b", "ab"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, vec!["_x", "B", "a", "a_b", "a9", "a10", "ab"]);
    }
}
