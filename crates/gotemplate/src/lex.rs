//! The lexer: template text in, a flat list of items out, following Go's `text/template/parse`
//! lexer (the same tokens, trim markers, comments and error messages).

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Field,
    Variable,
    Dot,
    Nil,
    Bool,
    Number,
    CharConstant,
    String,
    RawString,
    Pipe,
    LeftParen,
    RightParen,
    Assign,
    Declare,
    /// Printable ASCII punctuation such as `,`.
    Char,
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
    Eof,
}

/// One lexed item: its kind, byte offset in the source and text (borrowed from the source).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item<'a> {
    pub kind: Kind,
    pub pos: usize,
    pub val: &'a str,
}

/// A lexing error at a byte offset.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    pub pos: usize,
    pub msg: String,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn keyword(word: &str) -> Option<Kind> {
    Some(match word {
        "block" => Kind::Block,
        "break" => Kind::Break,
        "continue" => Kind::Continue,
        "define" => Kind::Define,
        "else" => Kind::Else,
        "end" => Kind::End,
        "if" => Kind::If,
        "range" => Kind::Range,
        "nil" => Kind::Nil,
        "template" => Kind::Template,
        "with" => Kind::With,
        "true" | "false" => Kind::Bool,
        _ => return None,
    })
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    left: &'a str,
    right: &'a str,
    pos: usize,
    items: Vec<Item<'a>>,
    paren_depth: usize,
}

/// Lexes a whole template. On error, the items so far are dropped and the error returned.
pub(crate) fn lex<'a>(
    src: &'a str,
    left: &'a str,
    right: &'a str,
) -> Result<Vec<Item<'a>>, LexError> {
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        left,
        right,
        pos: 0,
        items: Vec::new(),
        paren_depth: 0,
    };
    lx.run()?;
    Ok(lx.items)
}

impl<'a> Lexer<'a> {
    fn emit(&mut self, kind: Kind, start: usize, end: usize) {
        self.items.push(Item {
            kind,
            pos: start,
            val: &self.src[start..end],
        });
    }

    fn err<T>(&self, pos: usize, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            pos,
            msg: msg.into(),
        })
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            // Text up to the next left delimiter.
            let start = self.pos;
            let Some(off) = self.rest().find(self.left) else {
                if self.pos < self.src.len() {
                    self.emit(Kind::Text, start, self.src.len());
                }
                self.items.push(Item {
                    kind: Kind::Eof,
                    pos: self.src.len(),
                    val: "",
                });
                return Ok(());
            };
            let delim = self.pos + off;
            let after = delim + self.left.len();
            let trim_left = {
                let b = &self.bytes[after..];
                b.len() >= 2 && b[0] == b'-' && is_space(b[1])
            };
            let mut text_end = delim;
            if trim_left {
                while text_end > start && is_space(self.bytes[text_end - 1]) {
                    text_end -= 1;
                }
            }
            if text_end > start {
                self.emit(Kind::Text, start, text_end);
            }
            self.pos = after;
            if trim_left {
                self.pos += 2;
            }
            // A comment must follow the delimiter directly.
            if self.rest().starts_with("/*") {
                self.lex_comment(delim)?;
                continue;
            }
            self.emit(Kind::LeftDelim, delim, after);
            self.paren_depth = 0;
            self.lex_inside()?;
        }
    }

    fn lex_comment(&mut self, delim: usize) -> Result<(), LexError> {
        let Some(end) = self.rest()[2..].find("*/") else {
            return self.err(delim, "unclosed comment");
        };
        self.pos += 2 + end + 2;
        let (at, trim) = self.at_right_delim();
        if !at {
            return self.err(delim, "comment ends before closing delimiter");
        }
        self.pos += self.right.len() + if trim { 2 } else { 0 };
        if trim {
            self.skip_space_after_trim();
        }
        Ok(())
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let b = &self.bytes[self.pos..];
        if b.len() >= 2
            && is_space(b[0])
            && b[1] == b'-'
            && self.src[self.pos + 2..].starts_with(self.right)
        {
            return (true, true);
        }
        (self.rest().starts_with(self.right), false)
    }

    fn skip_space_after_trim(&mut self) {
        while self.pos < self.bytes.len() && is_space(self.bytes[self.pos]) {
            self.pos += 1;
        }
    }

    fn lex_inside(&mut self) -> Result<(), LexError> {
        loop {
            let (at, trim) = self.at_right_delim();
            if at {
                if self.paren_depth > 0 {
                    return self.err(self.pos, "unclosed left paren");
                }
                let start = if trim { self.pos + 2 } else { self.pos };
                self.pos = start + self.right.len();
                self.emit(Kind::RightDelim, start, self.pos);
                if trim {
                    self.skip_space_after_trim();
                }
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                return self.err(start, "unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // Stop before a right trim marker so that it is seen as one.
                    while self.pos < self.bytes.len() && is_space(self.bytes[self.pos]) {
                        let b = &self.bytes[self.pos..];
                        if b.len() >= 2
                            && b[1] == b'-'
                            && self.src[self.pos + 2..].starts_with(self.right)
                        {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos == start {
                        // Exactly at " -}}": handled at the top of the loop.
                        continue;
                    }
                    self.emit(Kind::Space, start, self.pos);
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Kind::Assign, start, self.pos);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.err(start, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Kind::Declare, start, self.pos);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Kind::Pipe, start, self.pos);
                }
                '"' => self.lex_escaped('"', Kind::String, "unterminated quoted string")?,
                '`' => self.lex_raw()?,
                '$' => self.lex_field_or_var(Kind::Variable)?,
                '\'' => {
                    self.lex_escaped('\'', Kind::CharConstant, "unterminated character constant")?
                }
                '.' => {
                    let next = self.bytes.get(self.pos + 1).copied();
                    if next.is_some_and(|b| b.is_ascii_digit()) {
                        self.lex_number()?;
                    } else {
                        self.lex_field_or_var(Kind::Field)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.lex_number()?,
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.emit(Kind::LeftParen, start, self.pos);
                }
                ')' => {
                    self.pos += 1;
                    if self.paren_depth == 0 {
                        return self.err(start, "unexpected right paren");
                    }
                    self.paren_depth -= 1;
                    self.emit(Kind::RightParen, start, self.pos);
                }
                c if is_alnum(c) => self.lex_identifier()?,
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.pos += 1;
                    self.emit(Kind::Char, start, self.pos);
                }
                c => return self.err(start, format!("unrecognized character in action: {c:?}")),
            }
        }
    }

    fn at_terminator(&self) -> bool {
        let Some(c) = self.peek_char() else {
            return true;
        };
        if matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '('
        ) {
            return true;
        }
        self.right.starts_with(c)
    }

    fn scan_alnum(&mut self) {
        while let Some(c) = self.peek_char() {
            if !is_alnum(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn lex_identifier(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.scan_alnum();
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or(' ');
            return self.err(self.pos, format!("bad character {c:?}"));
        }
        let word = &self.src[start..self.pos];
        let kind = keyword(word).unwrap_or(Kind::Identifier);
        // A keyword followed by a field (`nil.E`) is still the keyword; the parser rejects it.
        self.emit(kind, start, self.pos);
        Ok(())
    }

    fn lex_field_or_var(&mut self, kind: Kind) -> Result<(), LexError> {
        let start = self.pos;
        self.pos += 1;
        if self.at_terminator() {
            let k = if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            };
            self.emit(k, start, self.pos);
            return Ok(());
        }
        self.scan_alnum();
        if !self.at_terminator() {
            let c = self.peek_char().unwrap_or(' ');
            return self.err(self.pos, format!("bad character {c:?}"));
        }
        self.emit(kind, start, self.pos);
        Ok(())
    }

    /// A character constant or quoted string (Go's `lexChar`/`lexQuote`, the same scan): up to
    /// the unescaped `close`, no newline inside.
    fn lex_escaped(&mut self, close: char, kind: Kind, unterminated: &str) -> Result<(), LexError> {
        let start = self.pos;
        self.pos += 1;
        loop {
            let Some(c) = self.peek_char() else {
                return self.err(start, unterminated);
            };
            self.pos += c.len_utf8();
            match c {
                '\\' => {
                    if let Some(n) = self.peek_char()
                        && n != '\n'
                    {
                        self.pos += n.len_utf8();
                        continue;
                    }
                    return self.err(start, unterminated);
                }
                '\n' => return self.err(start, unterminated),
                c if c == close => break,
                _ => {}
            }
        }
        self.emit(kind, start, self.pos);
        Ok(())
    }

    fn lex_raw(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        let Some(end) = self.src[start + 1..].find('`') else {
            return self.err(start, "unterminated raw quoted string");
        };
        self.pos = start + 1 + end + 1;
        self.emit(Kind::RawString, start, self.pos);
        Ok(())
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek_char() {
            Some(c) if set.contains(c) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn lex_number(&mut self) -> Result<(), LexError> {
        let start = self.pos;
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek_char()
            && is_alnum(c)
        {
            self.pos += c.len_utf8();
            return self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..self.pos]),
            );
        }
        self.emit(Kind::Number, start, self.pos);
        Ok(())
    }
}
