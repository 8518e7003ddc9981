//! The executor: walks parsed trees over a value, with Go's evaluation rules for fields,
//! variables, pipelines, functions and control structures.

use std::collections::HashMap;
use std::sync::Arc;

use crate::gofmt;
use crate::parse::{Arg, Command, Control, Node, Pipe, Tree};
use crate::value::Value;
use crate::{Error, MissingKey, Template};

/// What a walk over a list of nodes ended with.
enum Flow {
    Normal,
    Break,
    Continue,
}

/// A value during field-chain evaluation: Go distinguishes a missing value (an invalid
/// `reflect.Value`, which chains on silently) from a nil interface found in a map (which
/// fails when a field is taken of it).
#[derive(Clone)]
enum Slot {
    Missing,
    Present(Value),
    /// A value read out of a map: Go sees its static type `interface {}` in errors.
    Iface(Value),
}

impl Slot {
    fn into_value(self) -> Value {
        match self {
            Slot::Missing => Value::Nil,
            Slot::Present(v) | Slot::Iface(v) => v,
        }
    }
}

/// The live state of one execution: the template set, variables, and limits.
pub struct Exec<'a> {
    pub(crate) tmpl: &'a Template,
    tree: &'a Tree,
    /// Variables: name, value, and whether the value is a nil interface (a range element)
    /// rather than a missing value; Go fails on a field of the former only.
    vars: Vec<(Arc<str>, Value, bool)>,
    /// Whether dot is a nil interface (a nil element being ranged over).
    dot_iface_nil: bool,
    /// Index in `vars` where the current template's variables start (templates inherit none).
    frame: usize,
    pub(crate) depth: usize,
    /// Stack address where execution began; deeper than `Options::max_stack` below it is an
    /// error, so that recursion fails cleanly instead of overflowing the thread's stack.
    pub(crate) stack_base: usize,
    steps: u64,
    out_len: usize,
    /// How many `include`s of each name are active (Helm's recursion guard).
    pub(crate) include_counts: HashMap<String, usize>,
}

type R<T> = Result<T, Error>;

/// Most elements a function may return in one list.
const MAX_LIST: usize = 1 << 22;

/// A field chain through maps whose keys all exist, read under the maps' locks without
/// copying the values in between; `None` sends the caller down the general path (methods,
/// missing keys, nil values and errors), which evaluates the chain again from the start.
fn fast_chain(recv: &Value, idents: &[Arc<str>]) -> Option<Value> {
    let Value::Map(m) = recv else {
        return None;
    };
    let (first, rest) = idents.split_first()?;
    let guard = m.read();
    let child = guard.get(&**first)?;
    if rest.is_empty() {
        Some(child.clone())
    } else {
        fast_chain(child, rest)
    }
}

/// An address in the current stack frame, to measure how deep execution has gone.
#[inline(never)]
fn stack_addr() -> usize {
    let marker = 0u8;
    std::hint::black_box(std::ptr::addr_of!(marker)) as usize
}

impl<'a> Exec<'a> {
    pub(crate) fn new(tmpl: &'a Template, tree: &'a Tree, dot: &Value) -> Self {
        Exec {
            tmpl,
            tree,
            vars: vec![(tmpl.dollar.clone(), dot.clone(), false)],
            dot_iface_nil: false,
            frame: 0,
            depth: 0,
            stack_base: stack_addr(),
            steps: 0,
            out_len: 0,
            include_counts: HashMap::new(),
        }
    }

    /// The template set being executed.
    pub fn template(&self) -> &'a Template {
        self.tmpl
    }

    /// The name of the template currently executing.
    pub fn current_name(&self) -> &str {
        &self.tree.name
    }

    pub(crate) fn run(&mut self, dot: &Value, out: &mut String) -> R<()> {
        let tree = self.tree;
        self.walk(dot, &tree.root, out)?;
        Ok(())
    }

    /// Executes the named template of this set over `dot` into a new string (Helm's `include`).
    pub fn execute_nested(&mut self, name: &str, dot: &Value) -> Result<String, Error> {
        let tmpl = self.tmpl;
        let Some(tree) = tmpl.trees.get(name) else {
            return Err(Error::NoTemplate {
                name: name.to_string(),
            });
        };
        if self.depth >= self.tmpl.options.max_depth {
            return Err(self.err_at(
                0,
                "",
                format!(
                    "exceeded maximum template depth ({})",
                    self.tmpl.options.max_depth
                ),
            ));
        }
        let saved_tree = std::mem::replace(&mut self.tree, tree);
        let saved_frame = self.enter_frame(dot);
        self.depth += 1;
        let mut out = String::new();
        let res = self.walk(dot, &tree.root, &mut out);
        self.depth -= 1;
        self.leave_frame(saved_frame);
        self.tree = saved_tree;
        res.map(|_| out)
    }

    fn location(&self, pos: usize) -> String {
        let text = &self.tree.source[..pos.min(self.tree.source.len())];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            Some(i) => pos - i - 1,
            None => pos,
        };
        format!("{}:{}:{}", self.tree.parse_name, line, col)
    }

    fn err_at(&self, pos: usize, context: &str, msg: String) -> Error {
        let mut context = context.to_string();
        if context.chars().count() > 20 {
            context = format!("{}...", context.chars().take(20).collect::<String>());
        }
        Error::Exec {
            location: self.location(pos),
            template: self.tree.name.to_string(),
            context,
            message: msg,
        }
    }

    fn tick(&mut self, pos: usize) -> R<()> {
        self.steps += 1;
        if self.steps > self.tmpl.options.max_steps {
            return Err(self.err_at(
                pos,
                "",
                format!(
                    "exceeded the step limit ({}): the template loops too long",
                    self.tmpl.options.max_steps
                ),
            ));
        }
        Ok(())
    }

    fn count_output(&mut self, n: usize) -> R<()> {
        self.out_len += n;
        if self.out_len > self.tmpl.options.max_output {
            return Err(Error::OutputLimit {
                limit: self.tmpl.options.max_output,
            });
        }
        Ok(())
    }

    fn write(&mut self, out: &mut String, s: &str) -> R<()> {
        out.push_str(s);
        self.out_len += s.len();
        if self.out_len > self.tmpl.options.max_output {
            return Err(Error::OutputLimit {
                limit: self.tmpl.options.max_output,
            });
        }
        Ok(())
    }

    fn check_stack(&self, pos: usize) -> R<()> {
        let used = self.stack_base.abs_diff(stack_addr());
        if used > self.tmpl.options.max_stack {
            return Err(self.err_at(
                pos,
                "",
                format!(
                    "exceeded maximum template depth ({} bytes of stack): the template recurses too deeply",
                    self.tmpl.options.max_stack
                ),
            ));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node], out: &mut String) -> R<Flow> {
        self.check_stack(0)?;
        for node in nodes {
            match node {
                Node::Text(t) => self.write(out, t)?,
                Node::Action(pipe) => {
                    self.tick(pipe.pos)?;
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match &v {
                            Value::Nil => self.write(out, "<no value>")?,
                            Value::Str(s) => self.write(out, s)?,
                            other => {
                                let before = out.len();
                                gofmt::write_value(out, other);
                                self.count_output(out.len() - before)?;
                            }
                        }
                    }
                }
                Node::If(c) => {
                    let f = self.walk_if_with(dot, c, false, out)?;
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::With(c) => {
                    let f = self.walk_if_with(dot, c, true, out)?;
                    if !matches!(f, Flow::Normal) {
                        return Ok(f);
                    }
                }
                Node::Range(c) => self.walk_range(dot, c, out)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref(), out)?
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(
        &mut self,
        dot: &Value,
        c: &Control,
        is_with: bool,
        out: &mut String,
    ) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let res = if val.truth() {
            if is_with {
                self.walk(&val, &c.list, out)
            } else {
                self.walk(dot, &c.list, out)
            }
        } else if let Some(e) = &c.else_list {
            self.walk(dot, e, out)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        res
    }

    /// Starts a template's variable scope holding only `$`; returns the scope to restore.
    fn enter_frame(&mut self, dot: &Value) -> (usize, bool) {
        let saved = (self.frame, self.dot_iface_nil);
        self.frame = self.vars.len();
        self.dot_iface_nil = false;
        self.vars
            .push((self.tmpl.dollar.clone(), dot.clone(), false));
        saved
    }

    fn leave_frame(&mut self, saved: (usize, bool)) {
        self.vars.truncate(self.frame);
        (self.frame, self.dot_iface_nil) = saved;
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let len = self.vars.len();
        if len >= n {
            self.vars[len - n].2 = v.is_nil();
            self.vars[len - n].1 = v;
        }
    }

    fn set_var(&mut self, name: &str, v: Value, pos: usize) -> R<()> {
        self.set_var_iface(name, v, false, pos)
    }

    fn set_var_iface(&mut self, name: &str, v: Value, iface_nil: bool, pos: usize) -> R<()> {
        for slot in self.vars[self.frame..].iter_mut().rev() {
            if &*slot.0 == name {
                slot.1 = v;
                slot.2 = iface_nil;
                return Ok(());
            }
        }
        Err(self.err_at(pos, name, format!("undefined variable: {name}")))
    }

    fn one_iteration(
        &mut self,
        c: &Control,
        index: Value,
        elem: Value,
        mark: usize,
        out: &mut String,
    ) -> R<Flow> {
        self.tick(c.pipe.pos)?;
        let decl = &c.pipe.decl;
        if !decl.is_empty() {
            if c.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0].clone(), index.clone(), c.pipe.pos)?;
                } else {
                    self.set_var_iface(&decl[0].clone(), elem.clone(), elem.is_nil(), c.pipe.pos)?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if c.pipe.is_assign {
                self.set_var_iface(&decl[1].clone(), elem.clone(), elem.is_nil(), c.pipe.pos)?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let saved = std::mem::replace(&mut self.dot_iface_nil, elem.is_nil());
        let r = self.walk(&elem, &c.list, out);
        self.dot_iface_nil = saved;
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Value, c: &Control, out: &mut String) -> R<()> {
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        match &val {
            Value::List(l) => {
                for (i, e) in l.iter().enumerate() {
                    ran = true;
                    if let Flow::Break =
                        self.one_iteration(c, Value::Int(i as i64), e.clone(), mark, out)?
                    {
                        break;
                    }
                }
            }
            Value::Map(m) => {
                // Go ranges over a sorted snapshot; the body may change the map (`set`).
                let snapshot: Vec<(Arc<str>, Value)> = m
                    .read()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (k, e) in snapshot.iter() {
                    ran = true;
                    if let Flow::Break =
                        self.one_iteration(c, Value::Str(k.clone()), e.clone(), mark, out)?
                    {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if c.pipe.decl.len() > 1 {
                    return Err(self.err_at(
                        c.pipe.pos,
                        &c.pipe.to_string(),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                for i in 0..*n {
                    ran = true;
                    if let Flow::Break =
                        self.one_iteration(c, Value::Int(i), Value::Int(i), mark, out)?
                    {
                        break;
                    }
                }
            }
            Value::Nil => {}
            other => {
                return Err(self.err_at(
                    c.pipe.pos,
                    &c.pipe.to_string(),
                    format!("range can't iterate over {}", gofmt::to_string(other)),
                ));
            }
        }
        if !ran && let Some(e) = &c.else_list {
            self.walk(dot, e, out)?;
        }
        self.vars.truncate(outer);
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
        out: &mut String,
    ) -> R<()> {
        let tmpl = self.tmpl;
        let Some(tree) = tmpl.trees.get(name) else {
            let context = match pipe {
                Some(p) => format!("{{{{template {name:?} {p}}}}}"),
                None => format!("{{{{template {name:?}}}}}"),
            };
            return Err(self.err_at(pos, &context, format!("template {name:?} not defined")));
        };
        if self.depth >= self.tmpl.options.max_depth {
            return Err(self.err_at(
                pos,
                &format!("template {name:?}"),
                format!(
                    "exceeded maximum template depth ({})",
                    self.tmpl.options.max_depth
                ),
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let saved_tree = std::mem::replace(&mut self.tree, tree);
        let saved_frame = self.enter_frame(&new_dot);
        self.depth += 1;
        let res = self.walk(&new_dot, &tree.root, out);
        self.depth -= 1;
        self.leave_frame(saved_frame);
        self.tree = saved_tree;
        res.map(|_| ())
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> R<Value> {
        self.check_stack(pipe.pos)?;
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or_default();
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone(), pipe.pos)?;
            } else {
                self.vars.push((name.clone(), value.clone(), false));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Command, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return Err(self.err_at(
                cmd.args[0].pos(),
                &cmd.to_string(),
                format!("can't give argument to non-function {}", cmd.args[0]),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, final_: Option<Value>) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { pos, idents } => {
                if cmd.args.len() == 1
                    && final_.is_none()
                    && let Some(v) = fast_chain(dot, idents)
                {
                    return Ok(v);
                }
                let recv = self.dot_slot(dot);
                return self
                    .eval_field_chain(dot, recv, *pos, first, idents, &cmd.args, final_)
                    .map(Slot::into_value);
            }
            Arg::Chain { pos, node, fields } => {
                if let Arg::Nil(_) = node.as_ref() {
                    return Err(self.err_at(
                        *pos,
                        &first.to_string(),
                        format!("indirection through explicit nil in {first}"),
                    ));
                }
                let base = self.eval_arg(dot, node)?;
                let recv = if base.is_nil() {
                    Slot::Missing
                } else {
                    Slot::Present(base)
                };
                return self
                    .eval_field_chain(dot, recv, *pos, first, fields, &cmd.args, final_)
                    .map(Slot::into_value);
            }
            Arg::Identifier(pos, name) => {
                return self.eval_function(dot, *pos, name, &cmd.args, final_);
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Variable { pos, name, fields } => {
                if fields.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return self.var_value(name, *pos);
                }
                if cmd.args.len() == 1
                    && final_.is_none()
                    && let Some(v) = self.var_ref(name).and_then(|v| fast_chain(v, fields))
                {
                    return Ok(v);
                }
                let recv = self.var_slot(name, *pos)?;
                return self
                    .eval_field_chain(dot, recv, *pos, first, fields, &cmd.args, final_)
                    .map(Slot::into_value);
            }
            _ => {}
        }
        self.not_a_function(cmd, &final_)?;
        match first {
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(pos) => Err(self.err_at(*pos, "nil", "nil is not a command".into())),
            Arg::Number(pos, n) => self.ideal_constant(*pos, n),
            Arg::Str(_, s) => Ok(Value::Str(s.clone())),
            _ => Err(self.err_at(
                first.pos(),
                &first.to_string(),
                format!("can't evaluate command {first:?}"),
            )),
        }
    }

    fn ideal_constant(&self, pos: usize, n: &crate::parse::Number) -> R<Value> {
        match &n.ideal {
            Some(v) => Ok(v.clone()),
            None => Err(self.err_at(pos, &n.text, format!("{} overflows int", n.text))),
        }
    }

    fn var_ref(&self, name: &str) -> Option<&Value> {
        self.vars[self.frame..]
            .iter()
            .rev()
            .find(|(n, _, _)| &**n == name)
            .map(|(_, v, _)| v)
    }

    /// A variable as the receiver of a field chain.
    fn var_slot(&self, name: &str, pos: usize) -> R<Slot> {
        for (n, v, iface_nil) in self.vars[self.frame..].iter().rev() {
            if &**n == name {
                return Ok(match (v, iface_nil) {
                    (Value::Nil, true) => Slot::Iface(Value::Nil),
                    (Value::Nil, false) => Slot::Missing,
                    (v, _) => Slot::Present(v.clone()),
                });
            }
        }
        Err(self.err_at(pos, name, format!("undefined variable: {name}")))
    }

    fn dot_slot(&self, dot: &Value) -> Slot {
        match dot {
            Value::Nil if self.dot_iface_nil => Slot::Iface(Value::Nil),
            Value::Nil => Slot::Missing,
            v => Slot::Present(v.clone()),
        }
    }

    fn var_value(&self, name: &str, pos: usize) -> R<Value> {
        for (n, v, _) in self.vars[self.frame..].iter().rev() {
            if &**n == name {
                return Ok(v.clone());
            }
        }
        Err(self.err_at(pos, name, format!("undefined variable: {name}")))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Slot,
        pos: usize,
        node: &Arg,
        idents: &[Arc<str>],
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Slot> {
        let n = idents.len();
        for ident in &idents[..n - 1] {
            recv = self.eval_field(dot, ident, pos, node, &[], None, recv)?;
        }
        self.eval_field(dot, &idents[n - 1], pos, node, args, final_, recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field(
        &mut self,
        dot: &Value,
        name: &str,
        pos: usize,
        node: &Arg,
        args: &[Arg],
        final_: Option<Value>,
        recv: Slot,
    ) -> R<Slot> {
        let recv = match recv {
            Slot::Missing => {
                if self.tmpl.options.missing_key == MissingKey::Error {
                    return Err(self.err_at(
                        pos,
                        &node.to_string(),
                        format!("nil data; no entry for key {name:?}"),
                    ));
                }
                return Ok(Slot::Missing);
            }
            Slot::Present(v) => (v, false),
            Slot::Iface(v) => (v, true),
        };
        let (recv, iface) = recv;
        let type_name = |v: &Value| {
            if iface {
                "interface {}".to_string()
            } else {
                v.type_name()
            }
        };
        let has_args = args.len() > 1 || final_.is_some();
        match &recv {
            Value::Nil => Err(self.err_at(
                pos,
                &node.to_string(),
                format!("nil pointer evaluating interface {{}}.{name}"),
            )),
            Value::Object(o) => {
                if o.has_method(name) {
                    let mut argv = Vec::with_capacity(args.len());
                    for a in args.iter().skip(1) {
                        argv.push(self.eval_arg(dot, a)?);
                    }
                    if let Some(f) = final_ {
                        argv.push(f);
                    }
                    return match o.call(name, &argv) {
                        Some(Ok(v)) => Ok(Slot::Present(v)),
                        Some(Err(e)) => Err(self.err_at(
                            pos,
                            &node.to_string(),
                            format!("error calling {name}: {e}"),
                        )),
                        None => Err(self.err_at(
                            pos,
                            &node.to_string(),
                            format!("can't evaluate field {name} in type {}", o.type_name()),
                        )),
                    };
                }
                match o.field(name) {
                    Some(v) => {
                        if has_args {
                            return Err(self.err_at(
                                pos,
                                &node.to_string(),
                                format!("{name} has arguments but cannot be invoked as function"),
                            ));
                        }
                        Ok(Slot::Present(v))
                    }
                    None => Err(self.err_at(
                        pos,
                        &node.to_string(),
                        format!("can't evaluate field {name} in type {}", o.type_name()),
                    )),
                }
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.err_at(
                        pos,
                        &node.to_string(),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                match m.get(name) {
                    Some(v) => Ok(Slot::Iface(v)),
                    None => match self.tmpl.options.missing_key {
                        MissingKey::Default => Ok(Slot::Missing),
                        MissingKey::Zero => Ok(Slot::Iface(Value::Nil)),
                        MissingKey::Error => Err(self.err_at(
                            pos,
                            &node.to_string(),
                            format!("map has no entry for key {name:?}"),
                        )),
                    },
                }
            }
            other => Err(self.err_at(
                pos,
                &node.to_string(),
                format!("can't evaluate field {name} in type {}", type_name(other)),
            )),
        }
    }

    /// The field chain `idents` of an argument (`.a.b`, `$x.a.b`) from `recv`, the argument
    /// itself being the only one its last field is called with.
    fn eval_arg_chain(
        &mut self,
        dot: &Value,
        recv: Slot,
        pos: usize,
        arg: &Arg,
        idents: &[Arc<str>],
    ) -> R<Value> {
        self.eval_field_chain(dot, recv, pos, arg, idents, std::slice::from_ref(arg), None)
            .map(Slot::into_value)
    }

    /// Evaluates one argument of a command (Go's `evalArg` for an `interface{}` parameter).
    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> R<Value> {
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Field { pos, idents } => {
                if let Some(v) = fast_chain(dot, idents) {
                    return Ok(v);
                }
                let recv = self.dot_slot(dot);
                self.eval_arg_chain(dot, recv, *pos, arg, idents)
            }
            Arg::Variable { pos, name, fields } => {
                if fields.is_empty() {
                    return self.var_value(name, *pos);
                }
                if let Some(v) = self.var_ref(name).and_then(|v| fast_chain(v, fields)) {
                    return Ok(v);
                }
                let recv = self.var_slot(name, *pos)?;
                self.eval_arg_chain(dot, recv, *pos, arg, fields)
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Identifier(pos, name) => {
                self.eval_function(dot, *pos, name, std::slice::from_ref(arg), None)
            }
            Arg::Chain { .. } => {
                let cmd = Command {
                    pos: arg.pos(),
                    args: vec![arg.clone()],
                };
                self.eval_command(dot, &cmd, None)
            }
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Number(pos, n) => self.ideal_constant(*pos, n),
            Arg::Str(_, s) => Ok(Value::Str(s.clone())),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        args: &[Arg],
        final_: Option<Value>,
    ) -> R<Value> {
        self.tick(pos)?;
        // The node as written, for error messages only.
        let context = || {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&a.to_string());
            }
            s
        };
        if name == "and" || name == "or" {
            if args.len() < 2 && final_.is_none() {
                return Err(self.err_at(
                    pos,
                    &context(),
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let want = name == "or";
            let mut v = Value::Nil;
            for a in &args[1..] {
                v = self.eval_arg(dot, a)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = f;
            }
            return Ok(v);
        }
        let tmpl = self.tmpl;
        let Some(func) = tmpl.funcs.get(name) else {
            return Err(self.err_at(
                pos,
                &context(),
                format!("{name:?} is not a defined function"),
            ));
        };
        // Most calls take a few arguments: keep those on the stack.
        let n = args.len() - 1 + usize::from(final_.is_some());
        let mut small: [Value; 4] = Default::default();
        let mut large: Vec<Value> = Vec::new();
        if n <= small.len() {
            for (slot, a) in small.iter_mut().zip(&args[1..]) {
                *slot = self.eval_arg(dot, a)?;
            }
            if let Some(f) = final_ {
                small[n - 1] = f;
            }
        } else {
            large.reserve(n);
            for a in &args[1..] {
                large.push(self.eval_arg(dot, a)?);
            }
            if let Some(f) = final_ {
                large.push(f);
            }
        }
        let argv: &[Value] = if n <= small.len() {
            &small[..n]
        } else {
            &large
        };
        match func(self, argv) {
            // A huge value is a runaway (chained calls can grow one exponentially): stop here,
            // before the next call multiplies it again.
            Ok(Value::Str(s)) if s.len() > crate::sprig::MAX_STRING.min(self.tmpl.options.max_output) => {
                Err(self.err_at(pos, &context(), format!("error calling {name}: the result is {} bytes, more than the limit of {}", s.len(), crate::sprig::MAX_STRING.min(self.tmpl.options.max_output))))
            }
            Ok(Value::List(l)) if l.len() > MAX_LIST => Err(self.err_at(
                pos,
                &context(),
                format!("error calling {name}: the result has {} elements, more than the limit of {MAX_LIST}", l.len()),
            )),
            Ok(v) => Ok(v),
            Err(crate::FuncError::Call(msg)) => {
                Err(self.err_at(pos, &context(), format!("error calling {name}: {msg}")))
            }
            Err(crate::FuncError::Template(e)) => Err(*e),
        }
    }
}
