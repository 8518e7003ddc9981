//! CEL `x-kubernetes-validations` rules, as kube-apiserver evaluates them: `self` is the value
//! at the schema node that carries the rules (objects see their declared properties, names
//! escaped as kube escapes them; a resource's `metadata` shows only `name` and
//! `generateName`), `oldSelf` the correlated stored value on an update (rules that use it are
//! skipped when there is none, unless `optionalOldSelf`), and failures are reported with kube's
//! paths, reasons and texts.
//!
//! Programs are compiled once per rule text and kept in a bounded process-wide cache, so a CRD's
//! rules are not parsed again per request. Evaluation is bounded like kube's cost budget: each
//! rule is charged by the size of the values it sees, raised to the nesting depth of its
//! comprehensions, against one budget per object.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr};
use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, IdedExpr, Program};
use serde_json::Value;

use crate::Cause;
use crate::structural::MAX_DEPTH;

/// kube-apiserver's `RuntimeCELCostBudget`: what the rules of one object may cost together.
pub const COST_BUDGET: u64 = 10_000_000;
/// The longest rule or messageExpression accepted (kube bounds rules by their estimated cost;
/// a text this long is beyond any sensible rule and costly to parse).
pub const MAX_RULE_LEN: usize = 16 * 1024;
/// How many distinct rule texts the process keeps compiled.
const CACHE_LIMIT: usize = 4096;
/// kube-apiserver's limit on an evaluated messageExpression.
const MAX_MESSAGE_LEN: usize = 5 * 1024;

/// One compiled rule text.
pub(crate) struct Compiled {
    program: Program,
    uses_old_self: bool,
    /// Deepest nesting of comprehensions (`all`, `exists`, `map`, `filter`, ...).
    depth: u32,
}

type CacheEntry = Arc<Result<Compiled, String>>;

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // kube's CEL environment has the strings and lists extensions of cel-go.
        env.add_extension(cel::extensions::strings)
            .expect("the strings extension declares its own overloads");
        env.add_extension(cel::extensions::lists)
            .expect("the lists extension declares its own overloads");
        Arc::new(env)
    })
    .clone()
}

/// The compiled form of `source`, from the cache or compiled now; `Err` holds kube's detail
/// (`compilation failed: ERROR: <input>:1:5: ...`).
pub(crate) fn compile(source: &str) -> CacheEntry {
    static CACHE: OnceLock<Mutex<HashMap<String, CacheEntry>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(source) {
        return hit.clone();
    }
    let compiled = Arc::new(compile_uncached(source));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CACHE_LIMIT {
        // Rule texts come from CRDs: a full cache means churn, and starting over is cheap.
        map.clear();
    }
    map.insert(source.to_string(), compiled.clone());
    compiled
}

fn compile_uncached(source: &str) -> Result<Compiled, String> {
    if source.len() > MAX_RULE_LEN {
        return Err(format!(
            "compilation failed: expression is longer than {MAX_RULE_LEN} bytes"
        ));
    }
    let program = env().compile(source).map_err(|errs| {
        // In cel-go's layout, which kube passes on.
        let text = errs
            .errors
            .iter()
            .map(|e| {
                let (line, col) = (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize);
                let offset: usize = source
                    .split_inclusive('\n')
                    .take(line - 1)
                    .map(str::len)
                    .sum::<usize>()
                    + source
                        .split_inclusive('\n')
                        .nth(line - 1)
                        .unwrap_or("")
                        .char_indices()
                        .nth(col - 1)
                        .map_or(0, |(i, _)| i);
                go_issue(source, offset, &e.msg)
            })
            .collect::<Vec<_>>()
            .join("\n");
        format!("compilation failed: {text}")
    })?;
    let uses_old_self = program.references().has_variable("oldSelf");
    let depth = comprehension_depth(program.expression());
    Ok(Compiled {
        program,
        uses_old_self,
        depth,
    })
}

/// The deepest nesting of comprehensions (`all`, `exists`, `map`, `filter`, ...) in `e`: the
/// power the widest list or map a rule sees is raised to when it is charged against the cost
/// budget. Shared with the controllers' HelmRelease expressions so both charge alike.
pub fn comprehension_depth(e: &IdedExpr) -> u32 {
    let max = |it: &mut dyn Iterator<Item = &IdedExpr>| it.map(comprehension_depth).max();
    match &e.expr {
        Expr::Call(c) => max(&mut c.target.iter().map(|t| &**t).chain(&c.args)).unwrap_or(0),
        Expr::Comprehension(c) => {
            let outer = max(&mut [&c.iter_range, &c.accu_init].into_iter()).unwrap_or(0);
            let inner = max(&mut [&c.loop_cond, &c.loop_step, &c.result].into_iter()).unwrap_or(0);
            outer.max(inner + 1)
        }
        Expr::List(l) => max(&mut l.elements.iter()).unwrap_or(0),
        Expr::Map(m) => entries(&m.entries)
            .map(comprehension_depth)
            .max()
            .unwrap_or(0),
        Expr::Select(s) => comprehension_depth(&s.operand),
        Expr::Struct(s) => entries(&s.entries)
            .map(comprehension_depth)
            .max()
            .unwrap_or(0),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => 0,
    }
}

/// The expressions of map or struct literal entries (keys and values).
fn entries(list: &[IdedEntryExpr]) -> impl Iterator<Item = &IdedExpr> {
    list.iter().flat_map(|en| match &en.expr {
        EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
        EntryExpr::StructField(sf) => vec![&sf.value],
    })
}

/// One `x-kubernetes-validations` entry.
struct RuleSpec<'s> {
    rule: &'s str,
    message: Option<&'s str>,
    message_expression: Option<&'s str>,
    reason: Option<&'s str>,
    field_path: Option<&'s str>,
    optional_old_self: bool,
}

impl<'s> RuleSpec<'s> {
    fn of(v: &'s Value) -> RuleSpec<'s> {
        let text = |k: &str| v[k].as_str().filter(|s| !s.trim().is_empty());
        RuleSpec {
            rule: v["rule"].as_str().unwrap_or(""),
            message: text("message"),
            message_expression: text("messageExpression"),
            reason: text("reason"),
            field_path: text("fieldPath"),
            optional_old_self: v["optionalOldSelf"].as_bool() == Some(true),
        }
    }
    /// kube's `ruleErrorString`: the message if set, else the rule.
    fn error_string(&self) -> &str {
        self.message.unwrap_or(self.rule).trim()
    }
}

/// Checks every rule of a schema as kube does when the CRD is written: each must compile, may
/// name only fields the schema declares, and its messageExpression must compile too. Paths
/// are relative to the schema (`properties[spec].x-kubernetes-validations[0].rule`); the
/// caller prefixes them (`spec.validation.openAPIV3Schema.`).
pub fn compile_errors(schema: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    compile_errors_at(schema, "", true, &mut out, 0);
    out
}

fn compile_errors_at(
    schema: &Value,
    path: &str,
    resource: bool,
    out: &mut Vec<Cause>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    for (i, r) in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{path}x-kubernetes-validations[{i}]");
        let spec = RuleSpec::of(r);
        if spec.rule.trim().is_empty() {
            out.push(Cause::required_because(
                format!("{at}.rule"),
                "rule is not specified",
            ));
            continue;
        }
        let compiled = compile(spec.rule);
        match &*compiled {
            Err(e) => out.push(rule_invalid(format!("{at}.rule"), r, e)),
            Ok(c) => {
                let mut issues = Vec::new();
                undefined_fields(c.program.expression(), schema, resource, &mut issues);
                if !issues.is_empty() {
                    let text = issues
                        .iter()
                        .map(|(id, field)| {
                            let offset = c
                                .program
                                .source_info()
                                .offset_for(*id)
                                .map_or(0, |(start, _)| start as usize);
                            go_issue(spec.rule, offset, &format!("undefined field '{field}'"))
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    out.push(rule_invalid(
                        format!("{at}.rule"),
                        r,
                        &format!("compilation failed: {text}"),
                    ));
                } else if spec.optional_old_self && !c.uses_old_self {
                    out.push(Cause::invalid(
                        format!("{at}.optionalOldSelf"),
                        &Value::Bool(true),
                        "may not be set if oldSelf is not used in rule",
                    ));
                }
            }
        }
        if let Some(m) = spec.message_expression
            && let Err(e) = &*compile(m)
        {
            out.push(rule_invalid(
                format!("{at}.messageExpression"),
                r,
                &format!("messageExpression {e}"),
            ));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, s) in props {
            if resource && k == "metadata" {
                continue;
            }
            compile_errors_at(
                s,
                &format!("{path}properties[{k}]."),
                embedded(s),
                out,
                depth + 1,
            );
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(s) = schema.get(key).filter(|s| s.is_object()) {
            compile_errors_at(s, &format!("{path}{key}."), embedded(s), out, depth + 1);
        }
    }
}

/// kube's cause for a refused rule: the value is the whole rule as Go prints its internal type.
fn rule_invalid(field: String, rule: &Value, detail: &str) -> Cause {
    let text = |k: &str| Value::from(rule[k].as_str().unwrap_or(""));
    let go = format!(
        "{{\"Rule\":{},\"Message\":{},\"MessageExpression\":{},\"Reason\":{},\"FieldPath\":{},\"OptionalOldSelf\":{}}}",
        text("rule"),
        text("message"),
        text("messageExpression"),
        rule.get("reason")
            .filter(|r| r.is_string())
            .unwrap_or(&Value::Null),
        text("fieldPath"),
        rule.get("optionalOldSelf")
            .filter(|r| r.is_boolean())
            .unwrap_or(&Value::Null),
    );
    // Go's encoder escapes these for HTML safety; kube's messages carry them so.
    let go = go
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {go}: {detail}"),
        field,
    }
}

/// One cel-go compile issue: `ERROR: <input>:L:C: msg`, the line and a caret under column C.
fn go_issue(source: &str, offset: usize, msg: &str) -> String {
    let before = &source[..offset.min(source.len())];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    let line = source[line_start..].lines().next().unwrap_or("");
    format!(
        "ERROR: <input>:{line_no}:{col}: {msg}\n | {line}\n | {}^",
        ".".repeat(col - 1)
    )
}

/// The fields a rule selects on `self`/`oldSelf` that the schema does not declare (cel-go's
/// type check refuses them at compile time): `(expression id, field)`.
fn undefined_fields(e: &IdedExpr, schema: &Value, resource: bool, out: &mut Vec<(u64, String)>) {
    let mut visit = |x: &IdedExpr| undefined_fields(x, schema, resource, out);
    match &e.expr {
        Expr::Select(sel) => {
            if let Some(parent) = self_schema(&sel.operand, schema, resource)
                && field_of(&parent, &sel.field).is_none()
                && declares_fields(&parent)
            {
                out.push((e.id, sel.field.clone()));
                return;
            }
            visit(&sel.operand);
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                visit(t);
            }
            c.args.iter().for_each(visit);
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(x);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(visit),
        Expr::Map(m) => entries(&m.entries).for_each(visit),
        Expr::Struct(st) => entries(&st.entries).for_each(visit),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// The schema CEL gives `e` when it is `self`/`oldSelf` or a chain of field selections on it.
fn self_schema(e: &IdedExpr, schema: &Value, resource: bool) -> Option<Value> {
    match &e.expr {
        Expr::Ident(name) if name == "self" || name == "oldSelf" => Some(if resource {
            with_object_meta(schema)
        } else {
            schema.clone()
        }),
        Expr::Select(sel) if !sel.test => {
            let parent = self_schema(&sel.operand, schema, resource)?;
            field_of(&parent, &sel.field)
        }
        _ => None,
    }
}

/// kube's view of a resource's schema in CEL: apiVersion, kind and a metadata of name and
/// generateName beside the declared properties.
fn with_object_meta(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(m) = s.as_object_mut() {
        let props = m
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(p) = props.as_object_mut() {
            let string = serde_json::json!({"type": "string"});
            p.insert("apiVersion".into(), string.clone());
            p.insert("kind".into(), string.clone());
            p.insert(
                "metadata".into(),
                serde_json::json!({"type": "object", "properties": {"name": string, "generateName": string}}),
            );
        }
    }
    s
}

/// Whether CEL types objects of `schema` by their declared properties (else they are maps or
/// dynamic, and any field may be asked for).
fn declares_fields(schema: &Value) -> bool {
    schema["properties"].is_object()
        && schema
            .get("additionalProperties")
            .is_none_or(|a| !a.is_object())
}

/// The schema of CEL field `field` (escaped as kube escapes) of an object of `schema`.
fn field_of(schema: &Value, field: &str) -> Option<Value> {
    if let Some(props) = schema["properties"].as_object() {
        return props
            .iter()
            .find(|(k, _)| escape(k).as_deref() == Some(field))
            .map(|(_, s)| {
                if embedded(s) {
                    with_object_meta(s)
                } else {
                    s.clone()
                }
            });
    }
    schema
        .get("additionalProperties")
        .filter(|a| a.is_object())
        .cloned()
}

/// Evaluation state of one object: the budget left and the causes found.
pub(crate) struct Evaluator {
    budget: u64,
    exhausted: bool,
    pub(crate) causes: Vec<Cause>,
}

impl Evaluator {
    pub(crate) fn new() -> Evaluator {
        Evaluator {
            budget: COST_BUDGET,
            exhausted: false,
            causes: Vec::new(),
        }
    }

    /// Evaluates the rules at every node of `v` (the value at `path` under `schema`); `root`
    /// marks a resource (the object itself or an embedded resource) whose metadata CEL sees
    /// narrowed.
    pub(crate) fn walk(
        &mut self,
        v: &Value,
        old: Option<&Value>,
        schema: &Value,
        path: &str,
        root: bool,
    ) {
        if self.exhausted || v.is_null() {
            return;
        }
        self.rules_at(v, old, schema, path, root);
        match v {
            Value::Object(m) => {
                let props = schema["properties"].as_object();
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                for (k, child) in m {
                    if root && k == "metadata" {
                        continue;
                    }
                    // kube names a property `a.b` and a map value `a[b]`.
                    let (s, at) = match (props.and_then(|p| p.get(k)), additional) {
                        (Some(s), _) => (s, crate::join(path, k)),
                        (None, Some(a)) => (a, format!("{path}[{k}]")),
                        (None, None) => continue,
                    };
                    let old_child = old.and_then(|o| o.get(k));
                    self.walk(child, old_child, s, &at, embedded(s));
                }
            }
            Value::Array(items) => {
                if let Some(s) = schema.get("items").filter(|s| s.is_object()) {
                    let keys = map_keys(schema);
                    let embedded = embedded(s);
                    for (i, item) in items.iter().enumerate() {
                        // Only list-type map items correlate with the stored list, by key.
                        let old_item = keys.as_ref().and_then(|keys| {
                            old.and_then(Value::as_array)?
                                .iter()
                                .find(|o| keys.iter().all(|k| o.get(k) == item.get(k)))
                        });
                        self.walk(item, old_item, s, &format!("{path}[{i}]"), embedded);
                    }
                }
            }
            _ => {}
        }
    }

    fn rules_at(&mut self, v: &Value, old: Option<&Value>, schema: &Value, path: &str, root: bool) {
        let Some(rules) = schema["x-kubernetes-validations"].as_array() else {
            return;
        };
        if rules.is_empty() {
            return;
        }
        let ty = schema["type"].as_str().unwrap_or("");
        let at = if path.is_empty() { "<nil>" } else { path };
        if self.budget == 0 {
            self.out_of_budget(at, ty);
            return;
        }
        let self_val = to_cel(v, schema, root, 0);
        let old_val = old.map(|o| to_cel(o, schema, root, 0));
        let size = weight(v) + old.map(weight).unwrap_or(0);
        let widest = widest(v).max(old.map(widest).unwrap_or(0)).max(1);
        for r in rules {
            let spec = RuleSpec::of(r);
            if spec.rule.trim().is_empty() {
                continue;
            }
            let compiled = compile(spec.rule);
            let compiled = match &*compiled {
                Ok(c) => c,
                Err(e) => {
                    self.causes.push(Cause::invalid(
                        at,
                        &Value::from(ty),
                        &format!("rule compile error: {e}"),
                    ));
                    continue;
                }
            };
            // Transition rules run only when there is a stored value to compare with.
            if compiled.uses_old_self && old_val.is_none() && !spec.optional_old_self {
                continue;
            }
            let cost = size.saturating_add(widest.saturating_pow(compiled.depth));
            if cost > self.budget {
                self.out_of_budget(at, ty);
                return;
            }
            self.budget -= cost;
            let mut ctx = Context::with_env(env());
            if bind(&mut ctx, "self", self_val.clone()).is_err()
                || (compiled.uses_old_self
                    && bind_old_self(&mut ctx, old_val.clone(), spec.optional_old_self).is_err())
            {
                self.causes
                    .push(Cause::internal(at, "the value could not be passed to CEL"));
                continue;
            }
            match compiled.program.execute(&ctx) {
                Ok(cel::Value::Bool(true)) => {}
                // kube's ratcheting: a rule that does not look at oldSelf may not refuse a
                // value the update left as it was stored (kube only warns then).
                Ok(cel::Value::Bool(false)) if !compiled.uses_old_self && old == Some(v) => {}
                Ok(cel::Value::Bool(false)) => {
                    let field = match spec.field_path {
                        Some(fp) => crate::join(path, fp.trim_start_matches('.')),
                        None => at.to_string(),
                    };
                    let detail = spec
                        .message_expression
                        .and_then(|m| self.message_from(m, &ctx, size))
                        .unwrap_or_else(|| match spec.message {
                            Some(m) => m.trim().to_string(),
                            None => format!("failed rule: {}", spec.error_string()),
                        });
                    let scalar = !matches!(ty, "object" | "array");
                    self.causes
                        .push(failure(field, v, scalar, &detail, spec.reason));
                }
                Ok(_) => self.causes.push(Cause::invalid(
                    at,
                    &Value::from(ty),
                    &format!(
                        "cel expression must evaluate to a bool evaluating rule: {}",
                        spec.error_string()
                    ),
                )),
                Err(e) => {
                    let (text, overload) = go_error_text(&e);
                    let detail = if overload {
                        format!(
                            "'{text}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                            spec.error_string()
                        )
                    } else {
                        format!("{text} evaluating rule: {}", spec.error_string())
                    };
                    self.causes
                        .push(Cause::invalid(at, &Value::from(ty), &detail));
                }
            }
        }
    }

    /// Evaluates a messageExpression; `None` (the static message is used) when it fails or
    /// gives no usable string, as kube does.
    fn message_from(&mut self, source: &str, ctx: &Context, size: u64) -> Option<String> {
        let compiled = compile(source);
        let c = compiled.as_ref().as_ref().ok()?;
        if size > self.budget {
            return None;
        }
        self.budget -= size;
        match c.program.execute(ctx) {
            Ok(cel::Value::String(s)) => {
                let s = s.trim();
                (!s.is_empty() && s.len() <= MAX_MESSAGE_LEN && !s.contains('\n'))
                    .then(|| s.to_string())
            }
            _ => None,
        }
    }

    fn out_of_budget(&mut self, at: &str, ty: &str) {
        self.exhausted = true;
        self.causes.push(Cause::invalid(
            at,
            &Value::from(ty),
            "validation failed due to running out of cost budget, no further validation rules will be run",
        ));
    }
}

/// kube's field error for a failed rule: its `reason` picks the error type; objects and
/// arrays are not quoted back.
fn failure(field: String, v: &Value, scalar: bool, detail: &str, reason: Option<&str>) -> Cause {
    match reason {
        Some("FieldValueForbidden") => Cause::forbidden(field, detail),
        Some("FieldValueRequired") => Cause::required_because(field, detail),
        Some("FieldValueDuplicate") if scalar => Cause::duplicate(field, v),
        Some("FieldValueDuplicate") => Cause {
            reason: "FieldValueDuplicate",
            message: "Duplicate value".into(),
            field,
        },
        _ if scalar => Cause::invalid(field, v, detail),
        _ => Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {detail}"),
            field,
        },
    }
}

fn bind(ctx: &mut Context, name: &str, v: cel::Value) -> Result<(), ExecutionError> {
    let val: Box<dyn cel::common::value::Val> = v.try_into()?;
    ctx.add_variable_as_val(name, val);
    Ok(())
}

fn bind_old_self(
    ctx: &mut Context,
    old: Option<cel::Value>,
    optional: bool,
) -> Result<(), ExecutionError> {
    match (old, optional) {
        (Some(o), false) => bind(ctx, "oldSelf", o),
        // With optionalOldSelf, oldSelf is an optional: `oldSelf.hasValue()`, `oldSelf.value()`.
        (o, true) => {
            let mut scratch = Context::with_env(env());
            let (src, arg) = match o {
                Some(o) => ("optional.of(v)", o),
                None => ("optional.none()", cel::Value::Null),
            };
            bind(&mut scratch, "v", arg)?;
            let program =
                Program::compile(src).map_err(|e| ExecutionError::InternalError(e.to_string()))?;
            let wrapped = program.execute(&scratch)?;
            bind(ctx, "oldSelf", wrapped)
        }
        (None, false) => Ok(()),
    }
}

/// cel-go's words for a runtime error (kube passes them on), and whether it is an overload
/// error (kube words those differently).
fn go_error_text(e: &ExecutionError) -> (String, bool) {
    #[allow(deprecated)]
    match e {
        ExecutionError::NoSuchKey(k) => (format!("no such key: {k}"), false),
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. } => ("no such overload".into(), true),
        ExecutionError::DivisionByZero(_) => ("division by zero".into(), false),
        ExecutionError::RemainderByZero(_) => ("modulus by zero".into(), false),
        ExecutionError::Overflow(..) => ("integer overflow".into(), false),
        ExecutionError::IndexOutOfBounds(i) => {
            (format!("index out of bounds: {}", scalar_text(i)), false)
        }
        ExecutionError::UndeclaredReference(r) => (format!("undeclared reference to '{r}'"), false),
        ExecutionError::FunctionError { function, message } => {
            (format!("{function}: {message}"), false)
        }
        other => (other.to_string(), false),
    }
}

fn scalar_text(v: &cel::Value) -> String {
    match v {
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::String(s) => s.to_string(),
        _ => "?".into(),
    }
}

/// kube's escaping of property names for CEL field access (`foo-bar` is `self.foo__dash__bar`,
/// a reserved word `x` is `__x__`); `None` for names CEL cannot address.
fn escape(name: &str) -> Option<String> {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// How many JSON nodes `v` has (the charge for handing it to CEL): one per value, strings one
/// more per 64 bytes.
pub fn weight(v: &Value) -> u64 {
    match v {
        Value::Object(m) => 1 + m.values().map(weight).sum::<u64>(),
        Value::Array(a) => 1 + a.iter().map(weight).sum::<u64>(),
        Value::String(s) => 1 + (s.len() as u64) / 64,
        _ => 1,
    }
}

/// The longest list or map under `v`: what one level of comprehension iterates over at most.
pub fn widest(v: &Value) -> u64 {
    match v {
        Value::Object(m) => (m.len() as u64).max(m.values().map(widest).max().unwrap_or(0)),
        Value::Array(a) => (a.len() as u64).max(a.iter().map(widest).max().unwrap_or(0)),
        _ => 0,
    }
}

/// The keys of a `x-kubernetes-list-type: map` list.
fn map_keys(schema: &Value) -> Option<Vec<&str>> {
    if schema["x-kubernetes-list-type"].as_str() != Some("map") {
        return None;
    }
    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// `v` as CEL sees it under `schema`.
fn to_cel(v: &Value, schema: &Value, resource: bool, depth: usize) -> cel::Value {
    if depth > MAX_DEPTH {
        return cel::Value::Null;
    }
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            if schema["type"].as_str() == Some("number") {
                cel::Value::Float(n.as_f64().unwrap_or(0.0))
            } else if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(a) => {
            let items = &schema["items"];
            cel::Value::List(Arc::new(
                a.iter()
                    .map(|x| to_cel(x, items, embedded(items), depth + 1))
                    .collect(),
            ))
        }
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let mut out: HashMap<Key, cel::Value> = HashMap::new();
            if resource {
                for k in ["apiVersion", "kind"] {
                    if let Some(Value::String(s)) = m.get(k) {
                        out.insert(key(k), cel::Value::String(Arc::new(s.clone())));
                    }
                }
                // kube narrows a resource's metadata to what is known before it is stored.
                let mut meta: HashMap<Key, cel::Value> = HashMap::new();
                for k in ["name", "generateName"] {
                    if let Some(Value::String(s)) = m.get("metadata").and_then(|md| md.get(k)) {
                        meta.insert(key(k), cel::Value::String(Arc::new(s.clone())));
                    }
                }
                if m.contains_key("metadata") {
                    out.insert(key("metadata"), cel::Value::Map(Map::from(meta)));
                }
            }
            if let Some(props) = props {
                for (k, s) in props {
                    if resource && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    if let (Some(x), Some(name)) = (m.get(k), escape(k)) {
                        out.insert(key(&name), to_cel(x, s, embedded(s), depth + 1));
                    }
                }
            } else if let Some(a) = additional {
                for (k, x) in m {
                    out.insert(key(k), to_cel(x, a, embedded(a), depth + 1));
                }
            }
            cel::Value::Map(Map::from(out))
        }
    }
}

fn embedded(schema: &Value) -> bool {
    schema["x-kubernetes-embedded-resource"].as_bool() == Some(true)
}

fn key(k: &str) -> Key {
    Key::String(Arc::new(k.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_escaped_as_kube_does() {
        assert_eq!(escape("foo-bar").as_deref(), Some("foo__dash__bar"));
        assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape("x__y").as_deref(), Some("x__underscores__y"));
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("1st"), None);
    }

    #[test]
    fn comprehension_depth_counts_nesting() {
        let d = |s: &str| compile(s).as_ref().as_ref().map(|c| c.depth).unwrap_or(99);
        assert_eq!(d("self.a == 1"), 0);
        assert_eq!(d("self.l.all(x, x > 0)"), 1);
        assert_eq!(d("self.l.all(x, self.l.exists(y, y == x))"), 2);
    }
}
