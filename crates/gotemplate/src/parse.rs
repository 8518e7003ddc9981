//! The parser: items in, syntax trees out, with Go's rules (variable scoping checked at parse
//! time, `else if`/`else with` chains, `define`/`block` trees, `break`/`continue` only in range).

use std::fmt;
use std::sync::Arc;

use crate::lex::{self, Item, Kind};

/// Deepest nesting of parentheses and control structures the parser accepts; deeper input is an
/// error rather than a stack overflow.
const MAX_PARSE_DEPTH: usize = 100;

/// A parsed template: its name, its source (for line:col in errors) and its body.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The template's name.
    pub name: Arc<str>,
    /// The name of the parse (file) it came from, used in error locations.
    pub parse_name: Arc<str>,
    /// The full source text it was parsed from.
    pub source: Arc<str>,
    pub(crate) root: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(Arc<str>),
    Action(Pipe),
    If(Box<Control>),
    With(Box<Control>),
    Range(Box<Control>),
    Template {
        pos: usize,
        name: Arc<str>,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Control {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<Arc<str>>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<Arc<str>>,
    },
    Variable {
        pos: usize,
        name: Arc<str>,
        fields: Vec<Arc<str>>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    Str(usize, Arc<str>),
    Identifier(usize, Arc<str>),
    Pipe(Box<Pipe>),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<Arc<str>>,
    },
}

/// A numeric literal as Go's parser classifies it.
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub text: Arc<str>,
    /// The value as an untyped constant in a command (`None`: it overflows int).
    pub ideal: Option<crate::Value>,
    pub int: Option<i64>,
    pub float: Option<f64>,
    pub is_uint_only: bool,
    pub is_char: bool,
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. } | Arg::Variable { pos, .. } | Arg::Chain { pos, .. } => *pos,
            Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::Str(p, _)
            | Arg::Identifier(p, _) => *p,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { name, fields, .. } => {
                write!(f, "{name}")?;
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => write!(f, "."),
            Arg::Nil(_) => write!(f, "nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => write!(f, "{}", n.text),
            Arg::Str(_, s) => write!(f, "{s:?}"),
            Arg::Identifier(_, s) => write!(f, "{s}"),
            Arg::Pipe(p) => write!(f, "({p})"),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(_) => write!(f, "{node}")?,
                    other => write!(f, "({other})")?,
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(f, "{}", self.decl.join(", "))?;
            write!(f, " {} ", if self.is_assign { "=" } else { ":=" })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parse failure: where (byte offset into the source) and what.
#[derive(Debug, Clone)]
pub(crate) struct ParseFailure {
    pub pos: usize,
    pub msg: String,
}

type PResult<T> = Result<T, ParseFailure>;

/// Whether a tree holds nothing but whitespace (Go's `IsEmptyTree`): such a definition never
/// replaces an existing one.
pub(crate) fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| match n {
        Node::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}

/// Parses `src` as template `name`; returns every tree it defines (the main one under `name`).
pub(crate) fn parse(
    name: &str,
    src: &str,
    left: &str,
    right: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> PResult<Vec<Tree>> {
    let items = lex::lex(src, left, right).map_err(|e| ParseFailure {
        pos: e.pos,
        msg: e.msg,
    })?;
    let source: Arc<str> = src.into();
    let mut p = Parser {
        items,
        i: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        has_func,
        defined: Vec::new(),
        source: source.clone(),
        parse_name: name.into(),
    };
    let root = p.parse_top()?;
    let mut trees = std::mem::take(&mut p.defined);
    add_tree(
        &mut trees,
        Tree {
            name: name.into(),
            parse_name: name.into(),
            source,
            root,
        },
        0,
    )?;
    Ok(trees)
}

fn add_tree(trees: &mut Vec<Tree>, tree: Tree, pos: usize) -> PResult<()> {
    if let Some(existing) = trees.iter_mut().find(|t| t.name == tree.name) {
        if is_empty_tree(&existing.root) {
            *existing = tree;
            return Ok(());
        }
        if !is_empty_tree(&tree.root) {
            return Err(ParseFailure {
                pos,
                msg: format!("template: multiple definition of template {:?}", tree.name),
            });
        }
        return Ok(());
    }
    trees.push(tree);
    Ok(())
}

struct Parser<'a> {
    items: Vec<Item<'a>>,
    i: usize,
    vars: Vec<Arc<str>>,
    range_depth: usize,
    depth: usize,
    has_func: &'a dyn Fn(&str) -> bool,
    defined: Vec<Tree>,
    source: Arc<str>,
    parse_name: Arc<str>,
}

enum ListEnd {
    End,
    Else(usize),
}

fn describe(it: &Item<'_>) -> String {
    match it.kind {
        Kind::Eof => "EOF".into(),
        Kind::RightDelim | Kind::LeftDelim => format!("{:?}", it.val),
        Kind::Space => "space".into(),
        Kind::Text | Kind::String | Kind::RawString | Kind::CharConstant | Kind::Number => {
            format!("{:?}", it.val)
        }
        _ => format!("<{}>", it.val),
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Item<'a> {
        self.items[self.i.min(self.items.len() - 1)]
    }
    fn next(&mut self) -> Item<'a> {
        let it = self.items[self.i.min(self.items.len() - 1)];
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }
    fn backup(&mut self) {
        self.i -= 1;
    }
    fn next_non_space(&mut self) -> Item<'a> {
        loop {
            let it = self.next();
            if it.kind != Kind::Space {
                return it;
            }
        }
    }
    fn peek_non_space(&mut self) -> Item<'a> {
        let it = self.next_non_space();
        self.backup();
        it
    }
    fn fail<T>(&self, pos: usize, msg: impl Into<String>) -> PResult<T> {
        Err(ParseFailure {
            pos,
            msg: msg.into(),
        })
    }
    fn unexpected<T>(&self, it: &Item<'_>, context: &str) -> PResult<T> {
        self.fail(it.pos, format!("unexpected {} in {context}", describe(it)))
    }
    fn expect(&mut self, kind: Kind, context: &str) -> PResult<Item<'a>> {
        let it = self.next_non_space();
        if it.kind != kind {
            return self.unexpected(&it, context);
        }
        Ok(it)
    }
    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.fail(
                pos,
                format!("template nests deeper than {MAX_PARSE_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let save = self.i;
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.i = save;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End(pos) => return self.fail(pos, "unexpected {{end}}"),
                Parsed::Else(pos) => return self.fail(pos, "unexpected {{else}}"),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let it = self.next_non_space();
        let name = match it.kind {
            Kind::String | Kind::RawString => unquote(it.val).map_err(|m| ParseFailure {
                pos: it.pos,
                msg: m,
            })?,
            _ => return self.unexpected(&it, context),
        };
        self.expect(Kind::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let ListEnd::Else(pos) = end {
            return self.fail(pos, format!("unexpected {{{{else}}}} in {context}"));
        }
        let tree = Tree {
            name: name.into(),
            parse_name: self.parse_name.clone(),
            source: self.source.clone(),
            root: list,
        };
        add_tree(&mut self.defined, tree, it.pos)
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, ListEnd)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                Parsed::End(_) => return Ok((list, ListEnd::End)),
                Parsed::Else(pos) => return Ok((list, ListEnd::Else(pos))),
            }
        }
        let pos = self.peek().pos;
        self.fail(pos, "unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        match it.kind {
            Kind::Text => Ok(Parsed::Node(Node::Text(it.val.into()))),
            Kind::LeftDelim => self.action(),
            _ => self.unexpected(&it, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let it = self.next_non_space();
        match it.kind {
            Kind::Block => return self.block_control().map(Parsed::Node),
            Kind::Break => {
                if self.range_depth == 0 {
                    return self.fail(it.pos, "{{break}} outside {{range}}");
                }
                self.expect(Kind::RightDelim, "{{break}}")?;
                return Ok(Parsed::Node(Node::Break));
            }
            Kind::Continue => {
                if self.range_depth == 0 {
                    return self.fail(it.pos, "{{continue}} outside {{range}}");
                }
                self.expect(Kind::RightDelim, "{{continue}}")?;
                return Ok(Parsed::Node(Node::Continue));
            }
            Kind::Else => {
                let peek = self.peek_non_space();
                if peek.kind == Kind::If || peek.kind == Kind::With {
                    return Ok(Parsed::Else(it.pos));
                }
                self.expect(Kind::RightDelim, "else")?;
                return Ok(Parsed::Else(it.pos));
            }
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                return Ok(Parsed::End(it.pos));
            }
            Kind::If => {
                return self
                    .control("if")
                    .map(|c| Parsed::Node(Node::If(Box::new(c))));
            }
            Kind::Range => {
                return self
                    .control("range")
                    .map(|c| Parsed::Node(Node::Range(Box::new(c))));
            }
            Kind::With => {
                return self
                    .control("with")
                    .map(|c| Parsed::Node(Node::With(Box::new(c))));
            }
            Kind::Template => return self.template_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline("command", Kind::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn control(&mut self, context: &str) -> PResult<Control> {
        let start_pos = self.peek().pos;
        self.enter(start_pos)?;
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        if let ListEnd::Else(_) = end {
            let peek = self.peek_non_space();
            if context == "if" && peek.kind == Kind::If {
                self.next_non_space();
                let inner = self.control("if")?;
                else_list = Some(vec![Node::If(Box::new(inner))]);
            } else if context == "with" && peek.kind == Kind::With {
                self.next_non_space();
                let inner = self.control("with")?;
                else_list = Some(vec![Node::With(Box::new(inner))]);
            } else {
                let (l, end) = self.item_list()?;
                if let ListEnd::Else(pos) = end {
                    return self.fail(pos, "expected end; found {{else}}");
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(vars_len);
        self.depth -= 1;
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, it: &Item<'_>, context: &str) -> PResult<String> {
        match it.kind {
            Kind::String | Kind::RawString => unquote(it.val).map_err(|m| ParseFailure {
                pos: it.pos,
                msg: m,
            }),
            _ => self.unexpected(it, context),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, context)?;
        let pipe = if self.next_non_space().kind != Kind::RightDelim {
            self.backup();
            Some(self.pipeline(context, Kind::RightDelim)?)
        } else {
            None
        };
        Ok(Node::Template {
            pos: it.pos,
            name: name.into(),
            pipe,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let it = self.next_non_space();
        let name = self.template_name(&it, context)?;
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.enter(it.pos)?;
        let (list, end) = self.item_list()?;
        self.depth -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        if let ListEnd::Else(pos) = end {
            return self.fail(pos, format!("unexpected {{{{else}}}} in {context}"));
        }
        let tree = Tree {
            name: name.as_str().into(),
            parse_name: self.parse_name.clone(),
            source: self.source.clone(),
            root: list,
        };
        add_tree(&mut self.defined, tree, it.pos)?;
        Ok(Node::Template {
            pos: it.pos,
            name: name.into(),
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                break;
            }
            let save = self.i;
            self.next_non_space();
            let after = self.peek();
            let next = self.peek_non_space();
            if next.kind == Kind::Assign || next.kind == Kind::Declare {
                pipe.is_assign = next.kind == Kind::Assign;
                self.next_non_space();
                pipe.decl.push(v.val.into());
                self.vars.push(v.val.into());
                break;
            } else if next.kind == Kind::Char && next.val == "," {
                self.next_non_space();
                pipe.decl.push(v.val.into());
                self.vars.push(v.val.into());
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space().kind {
                        Kind::Variable | Kind::RightDelim | Kind::RightParen => continue,
                        _ => return self.fail(next.pos, "range can only initialize variables"),
                    }
                }
                return self.fail(next.pos, format!("too many declarations in {context}"));
            } else {
                let _ = after;
                self.i = save;
                break;
            }
        }
        loop {
            let it = self.next_non_space();
            if it.kind == end {
                if pipe.cmds.is_empty() {
                    return self.fail(it.pos, format!("missing value for {context}"));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args[0],
                        Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str(..)
                    ) {
                        return self.fail(
                            c.pos,
                            format!("non executable command in pipeline stage {}", i + 1),
                        );
                    }
                }
                return Ok(pipe);
            }
            match it.kind {
                Kind::Bool
                | Kind::CharConstant
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&it, context),
            }
        }
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let it = self.next();
            match it.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(&it, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.fail(pos, "empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields: Vec<Arc<str>> = Vec::new();
        while self.peek().kind == Kind::Field {
            let f = self.next();
            fields.push(f.val[1..].into());
        }
        Ok(Some(match node {
            // Go positions a chained field at its first trailing `.name`.
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable {
                name,
                fields: mut fs,
                ..
            } => {
                fs.extend(fields);
                Arg::Variable {
                    pos,
                    name,
                    fields: fs,
                }
            }
            Arg::Bool(..) | Arg::Str(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return self.fail(
                    pos,
                    format!("unexpected . after term {:?}", node.to_string()),
                );
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let it = self.next_non_space();
        let pos = it.pos;
        Ok(Some(match it.kind {
            Kind::Identifier => {
                if !(self.has_func)(it.val) {
                    return self.fail(pos, format!("function {:?} not defined", it.val));
                }
                Arg::Identifier(pos, it.val.into())
            }
            Kind::Dot => Arg::Dot(pos),
            Kind::Nil => Arg::Nil(pos),
            Kind::Variable => {
                if !self.vars.iter().any(|v| **v == *it.val) {
                    return self.fail(pos, format!("undefined variable {:?}", it.val));
                }
                Arg::Variable {
                    pos,
                    name: it.val.into(),
                    fields: Vec::new(),
                }
            }
            Kind::Field => Arg::Field {
                pos,
                idents: vec![it.val[1..].into()],
            },
            Kind::Bool => Arg::Bool(pos, it.val == "true"),
            Kind::CharConstant | Kind::Number => {
                let n = parse_number(it.val, it.kind == Kind::CharConstant)
                    .map_err(|m| ParseFailure { pos, msg: m })?;
                Arg::Number(pos, n)
            }
            Kind::LeftParen => {
                self.enter(pos)?;
                let p = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(p))
            }
            Kind::String | Kind::RawString => Arg::Str(
                pos,
                unquote(it.val)
                    .map_err(|m| ParseFailure { pos, msg: m })?
                    .into(),
            ),
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

enum Parsed {
    Node(Node),
    End(usize),
    Else(usize),
}

/// Go's `strconv.Unquote` for the three literal forms the lexer yields.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let bad = || format!("invalid syntax: {s}");
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Ok(inner.replace('\r', ""));
    }
    let quote = s.chars().next().ok_or_else(bad)?;
    if (quote != '"' && quote != '\'') || s.len() < 2 || !s.ends_with(quote) {
        return Err(bad());
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == quote {
                return Err(bad());
            }
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '\'' if quote == '\'' => out.push('\''),
            '"' if quote == '"' => out.push('"'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                if hex.len() != n {
                    return Err(bad());
                }
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                // A \x escape is a byte; strings here are UTF-8, so it becomes that code point.
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or_else(bad)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(bad());
                }
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    if quote == '\'' && out.chars().count() != 1 {
        return Err(bad());
    }
    Ok(out)
}

fn parse_go_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    // Underscores only between digits (or right after a base prefix).
    if digits.is_empty() && (radix != 8 || lower.starts_with("0o")) {
        return None;
    }
    let b = digits.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let prev_ok = if i == 0 { prefixed } else { b[i - 1] != b'_' };
            if !prev_ok || i + 1 == b.len() {
                return None;
            }
        }
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return if radix == 8 { Some(0) } else { None };
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    Some(if neg { -v } else { v })
}
/// Go's `idealConstant`: how a numeric literal evaluates as a command or an untyped argument.
fn ideal_constant(n: &Number) -> Option<crate::Value> {
    let lower = n.text.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let is_hex_int = body.starts_with("0x") && !body.contains('p');
    if !n.is_char && !is_hex_int && n.text.contains(['.', 'e', 'E', 'p', 'P']) && n.float.is_some()
    {
        return n.float.map(crate::Value::Float);
    }
    if let Some(i) = n.int {
        return Some(crate::Value::Int(i));
    }
    if n.is_uint_only {
        return None;
    }
    n.float.map(crate::Value::Float)
}

fn parse_number(text: &str, is_char: bool) -> Result<Number, String> {
    if is_char {
        let s = unquote(text)?;
        let c = s
            .chars()
            .next()
            .ok_or_else(|| format!("malformed character constant: {text}"))?;
        return Ok(Number {
            text: text.into(),
            ideal: Some(crate::Value::Int(c as i64)),
            int: Some(c as i64),
            float: Some(c as u32 as f64),
            is_uint_only: false,
            is_char: true,
        });
    }
    if text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text}"));
    }
    let mut n = Number {
        text: text.into(),
        ideal: None,
        int: None,
        float: None,
        is_uint_only: false,
        is_char: false,
    };
    if let Some(v) = parse_go_int(text) {
        if let Ok(i) = i64::try_from(v) {
            n.int = Some(i);
            n.float = Some(i as f64);
        } else if u64::try_from(v).is_ok() {
            n.is_uint_only = true;
            n.float = Some(v as f64);
        } else if !text.contains(['.', 'e', 'E', 'p', 'P'])
            || text.to_ascii_lowercase().starts_with("0x") && !text.contains(['p', 'P', '.'])
        {
            return Err(format!("integer overflow: {text}"));
        }
    } else if let Some(f) = ferroflux_gocompat::float::parse(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {text}"));
        }
        n.float = Some(f);
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            n.int = Some(f as i64);
        }
    }
    if n.int.is_none() && n.float.is_none() && !n.is_uint_only {
        return Err(format!("illegal number syntax: {text:?}"));
    }
    n.ideal = ideal_constant(&n);
    Ok(n)
}
