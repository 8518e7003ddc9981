//! One rule against one request (`pkg/engine/handlers/validation/validate_resource.go`):
//! context entries, preconditions, then `deny`, `pattern`/`anyPattern` or `foreach`, with
//! Kyverno's statuses and messages.

use std::cell::Cell;

use serde_json::{Map, Value, json};

use crate::conditions;
use crate::context::{self, Context};
use crate::jmespath;
use crate::matching::{self, Facts};
use crate::policy::{Policy, context_variables};
use crate::validate::{self, PatternError};
use crate::variables::substitute_all;
use crate::{Operation, Request, RuleResponse, RuleStatus};

/// Longest `foreach` list evaluated.
pub const MAX_FOREACH_ELEMENTS: usize = 10_000;
/// Element evaluations (across nested `foreach`) per rule.
pub const MAX_FOREACH_WORK: usize = 100_000;

/// A status and its message, before policy-level decisions.
struct Outcome {
    status: RuleStatus,
    message: String,
}

impl Outcome {
    fn new(status: RuleStatus, message: impl Into<String>) -> Self {
        Outcome {
            status,
            message: message.into(),
        }
    }

    fn error(what: &str, err: impl std::fmt::Display) -> Self {
        Outcome::new(RuleStatus::Error, format!("{what}: {err}"))
    }
}

/// The operation the rule sees: the request's, unless a `request.operation` value overrides it.
fn operation_of(request: &Request) -> String {
    request
        .variables
        .get("request.operation")
        .and_then(Value::as_str)
        .map_or_else(|| request.operation.as_str().to_string(), str::to_string)
}

/// Evaluates one rule of `policy`; `None` when the rule does not select the resource.
pub(crate) fn evaluate_rule(
    policy: &Policy,
    rule: &Value,
    request: &Request,
) -> Option<RuleResponse> {
    let operation = operation_of(request);
    let outcome = evaluate_selected(policy, rule, request, &operation)?;
    let validate = rule.get("validate").cloned().unwrap_or(Value::Null);
    let enforce = validate
        .get("failureAction")
        .and_then(Value::as_str)
        .map_or(policy.enforce, |a| a.eq_ignore_ascii_case("enforce"));
    let mut outcome = outcome;
    if enforce
        && operation == "UPDATE"
        && validate.get("allowExistingViolations") != Some(&Value::Bool(false))
        && outcome.status == RuleStatus::Fail
        && existing_violation(policy, rule, request)
    {
        outcome = Outcome::new(
            RuleStatus::Skip,
            "skipping the rule evaluation as pre-existing violations are allowed",
        );
    }
    if outcome.status == RuleStatus::Fail && !policy.scored() {
        outcome.status = RuleStatus::Warn;
    }
    Some(RuleResponse {
        policy: policy.name.clone(),
        namespace: policy.namespace.clone().unwrap_or_default(),
        rule: rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        status: outcome.status,
        message: outcome.message,
        enforce,
    })
}

/// Whether the old object of an UPDATE already failed the rule (as if it were created now).
fn existing_violation(policy: &Policy, rule: &Value, request: &Request) -> bool {
    if request.old_object.is_null() {
        return false;
    }
    let mut old = request.clone();
    old.object = request.old_object.clone();
    old.old_object = Value::Null;
    old.operation = Operation::Create;
    old.variables.remove("request.operation");
    evaluate_selected(policy, rule, &old, "CREATE").is_some_and(|o| o.status == RuleStatus::Fail)
}

fn evaluate_selected(
    policy: &Policy,
    rule: &Value,
    request: &Request,
    operation: &str,
) -> Option<Outcome> {
    let resource = if operation == "DELETE" || request.object.is_null() {
        &request.old_object
    } else {
        &request.object
    };
    let facts = Facts::new(resource, operation, request);
    if let Some(namespace) = &policy.namespace
        && facts.namespace() != namespace
    {
        return None;
    }
    if !matching::selects(rule, &facts) {
        return None;
    }
    let mut ctx = build_context(request, operation);
    let validate = rule.get("validate")?;
    let budget = Cell::new(MAX_FOREACH_WORK);
    let validator = Validator {
        rule_name: rule.get("name").and_then(Value::as_str).unwrap_or_default(),
        message: validate
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        context_entries: rule.get("context"),
        preconditions: rule.get("preconditions"),
        body: validate,
        nesting: 0,
        element: None,
        request,
        budget: &budget,
    };
    validator.validate(&mut ctx)
}

/// The variables of a request: `request.*`, the service account, `images`, then the caller's
/// values.
fn build_context(request: &Request, operation: &str) -> Context {
    let mut user = Map::new();
    if !request.user_info.username.is_empty() {
        user.insert("username".into(), json!(request.user_info.username));
    }
    if !request.user_info.groups.is_empty() {
        user.insert("groups".into(), json!(request.user_info.groups));
    }
    let mut req = Map::new();
    req.insert("operation".into(), json!(operation));
    req.insert("object".into(), request.object.clone());
    req.insert("oldObject".into(), request.old_object.clone());
    req.insert("userInfo".into(), Value::Object(user));
    if !request.roles.is_empty() {
        req.insert("roles".into(), json!(request.roles));
    }
    if !request.cluster_roles.is_empty() {
        req.insert("clusterRoles".into(), json!(request.cluster_roles));
    }
    let (sa_namespace, sa_name) = service_account(&request.user_info.username);
    let mut root = Map::new();
    root.insert("request".into(), Value::Object(req));
    root.insert("serviceAccountName".into(), json!(sa_name));
    root.insert("serviceAccountNamespace".into(), json!(sa_namespace));
    // `images`: every container's image split into registry, path, tag and digest.
    let resource = if request.object.is_null() {
        &request.old_object
    } else {
        &request.object
    };
    if let Some(images) = crate::images::of(resource) {
        root.insert("images".into(), images);
    }
    let mut ctx = Context::new(root);
    for (path, value) in &request.variables {
        ctx.merge(context::nest_variable(path, value.clone()));
    }
    ctx
}

/// `AddServiceAccount`: namespace and name of `system:serviceaccount:<ns>:<name>`.
fn service_account(username: &str) -> (String, String) {
    let prefix = "system:serviceaccount:";
    let rest = if username.len() <= prefix.len() {
        ""
    } else {
        &username[prefix.len().min(username.len())..]
    };
    let groups: Vec<&str> = rest.split(':').collect();
    if groups.len() >= 2 {
        (groups[0].to_string(), groups[1].to_string())
    } else {
        (String::new(), String::new())
    }
}

/// A rule or a `foreach` entry being validated.
struct Validator<'a> {
    rule_name: &'a str,
    /// The rule's `validate.message` (foreach entries report the rule's message too).
    message: &'a str,
    context_entries: Option<&'a Value>,
    preconditions: Option<&'a Value>,
    /// The object holding `deny`/`pattern`/`anyPattern`/`foreach`.
    body: &'a Value,
    nesting: usize,
    /// The foreach element patterns apply to, when scoped.
    element: Option<Value>,
    request: &'a Request,
    budget: &'a Cell<usize>,
}

impl Validator<'_> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.body.get(name).filter(|v| !v.is_null())
    }

    fn validate(&self, ctx: &mut Context) -> Option<Outcome> {
        if let Err(err) = load_context(ctx, self.context_entries) {
            return Some(Outcome::error("failed to load context", err));
        }
        match conditions::evaluate(ctx, self.preconditions.filter(|p| !p.is_null())) {
            Err(err) => return Some(Outcome::error("failed to evaluate preconditions", err.0)),
            Ok((false, message)) => {
                let text = ["preconditions not met", message.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("; ");
                return Some(Outcome::new(RuleStatus::Skip, text));
            }
            Ok((true, _)) => {}
        }
        if let Some(deny) = self.field("deny") {
            return Some(self.deny(ctx, deny));
        }
        if self.field("pattern").is_some() || self.field("anyPattern").is_some() {
            return self.patterns(ctx);
        }
        if let Some(Value::Array(foreach)) = self.field("foreach") {
            return self.foreach(ctx, foreach);
        }
        None
    }

    fn deny(&self, ctx: &Context, deny: &Value) -> Outcome {
        match conditions::evaluate(ctx, deny.get("conditions").filter(|c| !c.is_null())) {
            Err(err) => Outcome::error("failed to check deny conditions", err.0),
            Ok((false, _)) => Outcome::new(
                RuleStatus::Pass,
                format!("validation rule '{}' passed.", self.rule_name),
            ),
            Ok((true, message)) => Outcome::new(RuleStatus::Fail, self.deny_message(ctx, &message)),
        }
    }

    fn deny_message(&self, ctx: &Context, conditions_message: &str) -> String {
        if self.message.is_empty() && conditions_message.is_empty() {
            return format!("validation error: rule {} failed", self.rule_name);
        }
        let joined = [self.message, conditions_message]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        match substitute_all(ctx, &Value::String(joined)) {
            Ok(Value::String(s)) => s,
            Ok(_) => {
                "the produced message didn't resolve to a string, check your policy definition."
                    .into()
            }
            Err(_) => conditions_message.to_string(),
        }
    }

    /// The rule's message with variables, ending in a dot; `Err` when substitution fails.
    fn rule_message(&self, ctx: &Context) -> Result<String, ()> {
        let mut message =
            match substitute_all(ctx, &Value::String(self.message.into())).map_err(|_| ())? {
                Value::String(s) => s,
                other => jmespath::go_json(&other),
            };
        if !message.ends_with('.') {
            message.push('.');
        }
        Ok(message)
    }

    fn error_message(&self, ctx: &Context, err: &PatternError) -> String {
        let name = self.rule_name;
        if self.message.is_empty() {
            if !err.path.is_empty() {
                return format!("validation error: rule {name} failed at path {}", err.path);
            }
            return format!(
                "validation error: rule {name} execution error: {}",
                err.message
            );
        }
        match self.rule_message(ctx) {
            Err(()) => format!(
                "validation error: variables substitution error in rule {name} execution error: {}",
                err.message
            ),
            Ok(msg) if !err.path.is_empty() => {
                format!(
                    "validation error: {msg} rule {name} failed at path {}",
                    err.path
                )
            }
            Ok(msg) => format!(
                "validation error: {msg} rule {name} execution error: {}",
                err.message
            ),
        }
    }

    fn patterns(&self, ctx: &Context) -> Option<Outcome> {
        let (resource, floats) = match &self.element {
            Some(element) => (element, true),
            None if ctx.operation() == "DELETE" => return None,
            None => (&self.request.object, false),
        };
        if let Some(pattern) = self.field("pattern") {
            let pattern = match substitute_all(ctx, pattern) {
                Ok(p) => p,
                Err(err) => return Some(Outcome::error("variable substitution failed", err)),
            };
            return Some(match validate::match_pattern(resource, &pattern, floats) {
                Ok(()) => Outcome::new(
                    RuleStatus::Pass,
                    format!("validation rule '{}' passed.", self.rule_name),
                ),
                Err(err) if err.skip => Outcome::new(RuleStatus::Skip, err.message),
                Err(err) if err.path.is_empty() => {
                    Outcome::new(RuleStatus::Error, self.error_message(ctx, &err))
                }
                Err(err) => Outcome::new(RuleStatus::Fail, self.error_message(ctx, &err)),
            });
        }
        let any = match self.field("anyPattern").map(|p| substitute_all(ctx, p)) {
            Some(Ok(any)) => any,
            Some(Err(err)) => return Some(Outcome::error("variable substitution failed", err)),
            None => return None,
        };
        let Value::Array(patterns) = any else {
            return Some(Outcome::new(
                RuleStatus::Error,
                "failed to deserialize anyPattern, expected type array",
            ));
        };
        Some(self.any_pattern(ctx, resource, &patterns, floats))
    }

    fn any_pattern(
        &self,
        ctx: &Context,
        resource: &Value,
        patterns: &[Value],
        floats: bool,
    ) -> Outcome {
        let name = self.rule_name;
        let (mut skipped, mut failed) = (Vec::new(), Vec::new());
        for (i, pattern) in patterns.iter().enumerate() {
            match validate::match_pattern(resource, pattern, floats) {
                Ok(()) => {
                    return Outcome::new(
                        RuleStatus::Pass,
                        format!("validation rule '{name}' anyPattern[{i}] passed."),
                    );
                }
                Err(err) if err.skip => {
                    skipped.push(format!("rule {name}[{i}] skipped: {}", err.message))
                }
                Err(err) if err.path.is_empty() => {
                    failed.push(format!("rule {name}[{i}] failed: {}", err.message))
                }
                Err(err) => failed.push(format!("rule {name}[{i}] failed at path {}", err.path)),
            }
        }
        if !skipped.is_empty() && failed.is_empty() {
            return Outcome::new(RuleStatus::Skip, skipped.join(" "));
        }
        if failed.is_empty() {
            return Outcome::new(RuleStatus::Pass, self.message);
        }
        let errors = failed.join(" ");
        let message = if self.message.is_empty() {
            format!("validation error: {errors}")
        } else {
            match self.rule_message(ctx) {
                Ok(msg) => format!("validation error: {msg} {errors}"),
                Err(()) => format!(
                    "validation error: variables substitution error in rule {name} execution error: {errors}"
                ),
            }
        };
        Outcome::new(RuleStatus::Fail, message)
    }

    fn foreach(&self, ctx: &Context, entries: &[Value]) -> Option<Outcome> {
        let mut applied = 0usize;
        let mut list_error = None;
        for entry in entries {
            let list = entry
                .get("list")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let elements = match ctx.query(list) {
                Ok(Value::Array(items)) => items,
                Ok(other) => vec![other],
                Err(err) if err.to_string().contains("Unknown key") => continue,
                Err(err) => {
                    list_error = Some(err);
                    continue;
                }
            };
            let (outcome, count) = self.elements(ctx, entry, &elements);
            if outcome.status != RuleStatus::Pass {
                return Some(outcome);
            }
            applied += count;
        }
        if applied == 0 {
            return list_error.map(|err| Outcome::error("failed to evaluate list", err));
        }
        Some(Outcome::new(RuleStatus::Pass, "rule passed"))
    }

    fn elements(&self, ctx: &Context, entry: &Value, elements: &[Value]) -> (Outcome, usize) {
        if elements.len() > MAX_FOREACH_ELEMENTS {
            return (
                Outcome::new(
                    RuleStatus::Error,
                    format!("foreach list longer than {MAX_FOREACH_ELEMENTS} elements"),
                ),
                0,
            );
        }
        let scope = entry.get("elementScope").and_then(Value::as_bool);
        let mut applied = 0usize;
        for (index, element) in elements.iter().enumerate() {
            if element.is_null() {
                continue;
            }
            let remaining = self.budget.get();
            if remaining == 0 {
                return (
                    Outcome::new(RuleStatus::Error, "foreach evaluation exceeded its budget"),
                    applied,
                );
            }
            self.budget.set(remaining - 1);
            let scoped = match (scope, element.is_object()) {
                (Some(true), false) => {
                    return (
                        Outcome::new(
                            RuleStatus::Error,
                            "failed to process foreach: cannot use elementScope=true foreach rules for elements that are not maps",
                        ),
                        applied,
                    );
                }
                (Some(scope), _) => scope,
                (None, is_map) => is_map,
            };
            let mut element_ctx = ctx.clone();
            element_ctx.add_element(element.clone(), index, self.nesting);
            let child = Validator {
                rule_name: self.rule_name,
                message: self.message,
                context_entries: entry.get("context"),
                preconditions: entry.get("preconditions"),
                body: entry,
                nesting: self.nesting + 1,
                element: if scoped {
                    Some(element.clone())
                } else {
                    self.element.clone()
                },
                request: self.request,
                budget: self.budget,
            };
            let Some(outcome) = child.validate(&mut element_ctx) else {
                continue;
            };
            match outcome.status {
                RuleStatus::Skip => continue,
                RuleStatus::Pass => applied += 1,
                RuleStatus::Error
                    if outcome.message.contains("failed to evaluate preconditions") =>
                {
                    continue;
                }
                status => {
                    return (
                        Outcome::new(status, format!("validation failure: {}", outcome.message)),
                        applied,
                    );
                }
            }
        }
        (Outcome::new(RuleStatus::Pass, ""), applied)
    }
}

/// Adds `context` entries of type `variable` (`loaders/variable.go`) as deferred loaders:
/// each is computed when a query first names it.
fn load_context(ctx: &mut Context, entries: Option<&Value>) -> Result<(), String> {
    for (name, variable) in context_variables(entries) {
        let Some(variable) = variable else {
            return Err(format!("context entry {name} is not a variable"));
        };
        ctx.add_deferred(name, variable, load_variable)?;
    }
    Ok(())
}

fn load_variable(ctx: &Context, name: &str, variable: &Value) -> Result<Value, String> {
    let present = |k: &str| variable.get(k).filter(|v| !v.is_null());
    let path = match present("jmesPath") {
        None => String::new(),
        Some(jp) => match substitute_all(ctx, jp) {
            Ok(Value::String(s)) => s,
            Ok(_) => return Err(format!("jmespath value must be a string {name} {jp}")),
            Err(err) => {
                return Err(format!(
                    "failed to substitute variables in context entry {name} {jp}: {err}"
                ));
            }
        },
    };
    let default = match present("default") {
        None => None,
        Some(d) => Some(substitute_all(ctx, d).map_err(|err| {
            format!("failed to substitute variables in context entry {name} {d}: {err}")
        })?),
    };
    let mut output = default.clone();
    if let Some(raw) = present("value") {
        let value = substitute_all(ctx, raw).map_err(|err| {
            format!("failed to substitute variables in context entry {name} {raw}: {err}")
        })?;
        if path.is_empty() {
            output = Some(value);
        } else {
            match jmespath::search(&path, &jmespath::to_var(&value))
                .and_then(|v| jmespath::to_json(&v))
            {
                Ok(v) => output = Some(v),
                Err(err) if default.is_none() => {
                    return Err(format!(
                        "failed to apply jmespath {path} to variable {value}: {err}"
                    ));
                }
                Err(_) => {}
            }
        }
    } else if !path.is_empty() {
        match ctx.query(&path) {
            Ok(v) if !v.is_null() => output = Some(v),
            Ok(_) => {}
            Err(err) if default.is_none() => {
                return Err(format!(
                    "failed to apply jmespath {path} to variable <nil>: {err}"
                ));
            }
            Err(_) => {}
        }
    }
    match output {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(format!(
            "failed to add context entry for variable {name} since it evaluated to nil"
        )),
    }
}
