//! Flux's post-build variable substitution (the `envsubst` dialect of `fluxcd/pkg`).
//!
//! Only the braced form is expanded: `${var}`, `${var:=default}`, `${var:-default}`,
//! `${var=default}`, `${var:+alt}`, `${var:?message}`, `${#var}`, `${var^}`, `${var^^}`,
//! `${var,}`, `${var,,}`, `${var:pos}`, `${var:pos:len}`, `${var#glob}`, `${var##glob}`,
//! `${var%glob}`, `${var%%glob}`, `${var/from/to}`, `${var//from/to}`, `${var/#from/to}`,
//! `${var/%from/to}`; arguments may nest `${...}`. `$var` stays as written, so shell scripts in
//! ConfigMaps survive, and `$$` is an escaped `$` (`$${var}` gives `${var}`).
//!
//! Expected flow: [`validate_var_name`] on every user-supplied variable, then [`eval`] on each
//! manifest. Guarantees: input that holds no `${` comes back unchanged; nothing panics on any
//! input. Errors: a `${` that is never closed, or (strict mode) a variable that is not set.
#![deny(missing_docs)]

use std::iter::Peekable;
use std::str::CharIndices;

/// Why a substitution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Strict mode: a variable is used without a default and is not set.
    #[error("variable not set (strict mode): {name}")]
    VarNotSet {
        /// Name of the variable.
        name: String,
    },
    /// `${var:?message}` with `var` empty or unset.
    #[error("{name}: {message}")]
    Required {
        /// Name of the variable.
        name: String,
        /// The user's message.
        message: String,
    },
    /// A `${` without its `}`, or an expression that is not `${name...}`.
    #[error("bad substitution at byte {offset}: {reason}")]
    Syntax {
        /// Byte offset of the `${`.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A variable name that Flux refuses.
    #[error("'{name}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'")]
    InvalidName {
        /// The name.
        name: String,
    },
}

/// Checks a variable name the way Flux does before substituting.
pub fn validate_var_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidName { name: name.into() })
    }
}

/// Expands `input`. `lookup` returns a variable's value, or `None` when it is not set; unset
/// variables expand to the empty string unless `strict`, where they are an error.
pub fn eval(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<String, Error> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let nodes = Parser::new(input).parse_text()?;
    let mut out = String::with_capacity(input.len());
    let context = Context { lookup, strict };
    for node in &nodes {
        context.render(node, &mut out)?;
    }
    Ok(out)
}

#[derive(Debug)]
enum Node {
    Text(String),
    Expr(Expr),
}

#[derive(Debug)]
struct Expr {
    name: String,
    op: Op,
    args: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain,
    Length,
    UpperFirst,
    UpperAll,
    LowerFirst,
    LowerAll,
    DefaultIfUnset,
    DefaultIfEmpty,
    AssignIfEmpty,
    Alternative,
    Required,
    Substring,
    TrimPrefixShort,
    TrimPrefixLong,
    TrimSuffixShort,
    TrimSuffixLong,
    ReplaceFirst,
    ReplaceAll,
    ReplacePrefix,
    ReplaceSuffix,
}

impl Op {
    /// Operators that give a value of their own when the variable is missing.
    fn provides_default(self) -> bool {
        matches!(
            self,
            Op::DefaultIfUnset
                | Op::DefaultIfEmpty
                | Op::AssignIfEmpty
                | Op::Alternative
                | Op::Required
        )
    }
}

struct Parser<'a> {
    chars: Peekable<CharIndices<'a>>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            chars: src.char_indices().peekable(),
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn peek_second(&self) -> Option<char> {
        let mut ahead = self.chars.clone();
        ahead.next();
        ahead.next().map(|(_, c)| c)
    }

    /// Top-level text: `$$` is an escaped `$`; `${` starts an expression; backslashes are text.
    fn parse_text(&mut self) -> Result<Vec<Node>, Error> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while let Some((offset, c)) = self.chars.next() {
            if c != '$' {
                text.push(c);
                continue;
            }
            match self.peek() {
                Some('$') => {
                    self.chars.next();
                    text.push('$');
                }
                Some('{') => {
                    self.chars.next();
                    if !text.is_empty() {
                        nodes.push(Node::Text(std::mem::take(&mut text)));
                    }
                    nodes.push(Node::Expr(self.parse_expr(offset)?));
                }
                _ => text.push('$'),
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(nodes)
    }

    /// After `${`: the name, the operator and its arguments, up to the matching `}`.
    fn parse_expr(&mut self, offset: usize) -> Result<Expr, Error> {
        let length = self.peek() == Some('#') && self.peek_second().is_some_and(is_name_char);
        if length {
            self.chars.next();
        }
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
            name.push(c);
            self.chars.next();
        }
        if name.is_empty() {
            return Err(Error::Syntax {
                offset,
                reason: "expected a variable name after ${",
            });
        }
        let unclosed = Error::Syntax {
            offset,
            reason: "missing closing }",
        };
        let Some(next) = self.chars.next().map(|(_, c)| c) else {
            return Err(unclosed);
        };
        if length {
            return if next == '}' {
                Ok(Expr {
                    name,
                    op: Op::Length,
                    args: Vec::new(),
                })
            } else {
                Err(Error::Syntax {
                    offset,
                    reason: "${#name} takes no operator",
                })
            };
        }
        let take_if = |parser: &mut Self, wanted: char| {
            let found = parser.peek() == Some(wanted);
            if found {
                parser.chars.next();
            }
            found
        };
        let (op, separator) = match next {
            '}' => {
                return Ok(Expr {
                    name,
                    op: Op::Plain,
                    args: Vec::new(),
                });
            }
            '^' if take_if(self, '^') => (Op::UpperAll, None),
            '^' => (Op::UpperFirst, None),
            ',' if take_if(self, ',') => (Op::LowerAll, None),
            ',' => (Op::LowerFirst, None),
            '=' => (Op::DefaultIfUnset, None),
            ':' if take_if(self, '=') => (Op::AssignIfEmpty, None),
            ':' if take_if(self, '-') => (Op::DefaultIfEmpty, None),
            ':' if take_if(self, '+') => (Op::Alternative, None),
            ':' if take_if(self, '?') => (Op::Required, None),
            ':' => (Op::Substring, Some(':')),
            '#' if take_if(self, '#') => (Op::TrimPrefixLong, None),
            '#' => (Op::TrimPrefixShort, None),
            '%' if take_if(self, '%') => (Op::TrimSuffixLong, None),
            '%' => (Op::TrimSuffixShort, None),
            '/' if take_if(self, '/') => (Op::ReplaceAll, Some('/')),
            '/' if take_if(self, '#') => (Op::ReplacePrefix, Some('/')),
            '/' if take_if(self, '%') => (Op::ReplaceSuffix, Some('/')),
            '/' => (Op::ReplaceFirst, Some('/')),
            _ => {
                return Err(Error::Syntax {
                    offset,
                    reason: "unknown operator after the variable name",
                });
            }
        };
        let args = self.parse_args(separator).ok_or(unclosed)?;
        if op == Op::Substring && args.len() > 2 {
            return Err(Error::Syntax {
                offset,
                reason: "${var:pos:len} takes at most two numbers",
            });
        }
        Ok(Expr { name, op, args })
    }

    /// Arguments up to the closing `}`, split at `separator`; `\x` is a literal `x` and `${`
    /// nests. Returns `None` when the input ends first.
    fn parse_args(&mut self, separator: Option<char>) -> Option<Vec<Vec<Node>>> {
        let mut args = Vec::new();
        let mut current = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, current: &mut Vec<Node>| {
            if !text.is_empty() {
                current.push(Node::Text(std::mem::take(text)));
            }
        };
        loop {
            let (offset, c) = self.chars.next()?;
            match c {
                '}' => {
                    flush(&mut text, &mut current);
                    args.push(current);
                    return Some(args);
                }
                '\\' => text.push(self.chars.next()?.1),
                '$' if self.peek() == Some('{') => {
                    self.chars.next();
                    flush(&mut text, &mut current);
                    current.push(Node::Expr(self.parse_expr(offset).ok()?));
                }
                c if Some(c) == separator && args.is_empty() => {
                    flush(&mut text, &mut current);
                    args.push(std::mem::take(&mut current));
                }
                c => text.push(c),
            }
        }
    }
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

struct Context<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    strict: bool,
}

impl Context<'_> {
    fn render(&self, node: &Node, out: &mut String) -> Result<(), Error> {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Expr(expr) => out.push_str(&self.expand(expr)?),
        }
        Ok(())
    }

    fn arg(&self, expr: &Expr, index: usize) -> Result<String, Error> {
        let mut out = String::new();
        for node in expr.args.get(index).map(Vec::as_slice).unwrap_or_default() {
            self.render(node, &mut out)?;
        }
        Ok(out)
    }

    fn expand(&self, expr: &Expr) -> Result<String, Error> {
        let value = (self.lookup)(&expr.name);
        if value.is_none() && self.strict && !expr.op.provides_default() {
            return Err(Error::VarNotSet {
                name: expr.name.clone(),
            });
        }
        let value = value.unwrap_or_default();
        let result = match expr.op {
            Op::Plain => value,
            Op::Length => value.chars().count().to_string(),
            Op::UpperFirst => map_first(&value, char::to_uppercase),
            Op::UpperAll => value.to_uppercase(),
            Op::LowerFirst => map_first(&value, char::to_lowercase),
            Op::LowerAll => value.to_lowercase(),
            Op::DefaultIfUnset | Op::DefaultIfEmpty | Op::AssignIfEmpty => {
                if value.is_empty() {
                    self.arg(expr, 0)?
                } else {
                    value
                }
            }
            Op::Alternative => {
                if value.is_empty() {
                    String::new()
                } else {
                    self.arg(expr, 0)?
                }
            }
            Op::Required => {
                if value.is_empty() {
                    return Err(Error::Required {
                        name: expr.name.clone(),
                        message: self.arg(expr, 0)?,
                    });
                }
                value
            }
            Op::Substring => {
                let chars: Vec<char> = value.chars().collect();
                let start = parse_index(&self.arg(expr, 0)?, chars.len());
                let end = if expr.args.len() > 1 {
                    let len = self.arg(expr, 1)?.trim().parse::<i64>().unwrap_or(0).max(0);
                    start
                        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                        .min(chars.len())
                } else {
                    chars.len()
                };
                chars[start..end.max(start)].iter().collect()
            }
            Op::TrimPrefixShort | Op::TrimPrefixLong => {
                let pattern: Vec<char> = self.arg(expr, 0)?.chars().collect();
                let chars: Vec<char> = value.chars().collect();
                let mut cuts = (0..=chars.len()).filter(|&i| glob(&pattern, &chars[..i]));
                let cut = if expr.op == Op::TrimPrefixShort {
                    cuts.next()
                } else {
                    cuts.next_back()
                };
                cut.map_or(value, |i| chars[i..].iter().collect())
            }
            Op::TrimSuffixShort | Op::TrimSuffixLong => {
                let pattern: Vec<char> = self.arg(expr, 0)?.chars().collect();
                let chars: Vec<char> = value.chars().collect();
                let mut cuts = (0..=chars.len())
                    .rev()
                    .filter(|&i| glob(&pattern, &chars[i..]));
                let cut = if expr.op == Op::TrimSuffixShort {
                    cuts.next()
                } else {
                    cuts.next_back()
                };
                cut.map_or(value, |i| chars[..i].iter().collect())
            }
            Op::ReplaceFirst | Op::ReplaceAll => {
                let from = self.arg(expr, 0)?;
                let to = self.arg(expr, 1)?;
                if from.is_empty() {
                    value
                } else if expr.op == Op::ReplaceAll {
                    value.replace(&from, &to)
                } else {
                    value.replacen(&from, &to, 1)
                }
            }
            Op::ReplacePrefix => {
                let from = self.arg(expr, 0)?;
                match value.strip_prefix(&from) {
                    Some(rest) => format!("{}{rest}", self.arg(expr, 1)?),
                    None => value,
                }
            }
            Op::ReplaceSuffix => {
                let from = self.arg(expr, 0)?;
                match value.strip_suffix(&from) {
                    Some(rest) => format!("{rest}{}", self.arg(expr, 1)?),
                    None => value,
                }
            }
        };
        Ok(result)
    }
}

fn map_first<I: Iterator<Item = char>>(value: &str, f: fn(char) -> I) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => f(first).chain(chars).collect(),
        None => String::new(),
    }
}

/// A substring position: negative counts from the end, out of range is clamped.
fn parse_index(text: &str, len: usize) -> usize {
    let n = text.trim().parse::<i64>().unwrap_or(0);
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let n = if n < 0 {
        (len_i + n).max(0)
    } else {
        n.min(len_i)
    };
    usize::try_from(n).unwrap_or(0)
}

/// Shell glob over characters: `*` any run (slashes too), `?` any one character.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
