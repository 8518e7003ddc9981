//! The CEL of a HelmRelease, as helm-controller evaluates it (fluxcd/pkg `runtime/cel`):
//! `spec.healthCheckExprs` judge the custom resources of the release while Helm waits (the
//! object's top-level fields are the variables: `status`, `metadata`, ...; `inProgress`,
//! then `failed`, then `current`, InProgress when none holds), and `spec.dependsOn[].readyExpr`
//! decides whether a dependency is ready (`self` the HelmRelease, `dep` the dependency).
//!
//! Everything here is tenant-written: expressions are bounded in length, and each evaluation
//! is charged like the schema crate charges CRD rules (the size of the values it sees, raised
//! to the nesting of its comprehensions) against kube's budget, refused beyond it.

use std::fmt;

use cel::{Context, Program};
use ferroflux_api::kustomize::CustomHealthCheck;
use ferroflux_apply::health::{Health, Status};
use ferroflux_apply::object::ObjectRef;
use ferroflux_schema::{comprehension_depth, weight, widest};
use serde_json::Value;

/// Health checks one HelmRelease may declare.
const MAX_HEALTH_CHECKS: usize = 256;

/// One parsed expression.
pub struct Expression {
    source: String,
    program: Program,
    depth: u32,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Expression {
    /// Parses `source` (Flux's message on failure: `failed to parse the CEL expression`).
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.len() > ferroflux_schema::MAX_RULE_LEN {
            return Err(format!(
                "the CEL expression is longer than {} bytes",
                ferroflux_schema::MAX_RULE_LEN
            ));
        }
        let program = Program::compile(source)
            .map_err(|e| format!("failed to parse the CEL expression '{source}': {e}"))?;
        let depth = comprehension_depth(program.expression());
        Ok(Expression {
            source: source.to_string(),
            program,
            depth,
        })
    }

    /// Evaluates to a bool with `variables` bound, within the cost budget.
    pub fn evaluate_bool(&self, variables: &[(&str, &Value)]) -> Result<bool, String> {
        let size: u64 = variables.iter().map(|(_, v)| weight(v)).sum();
        let widest = variables
            .iter()
            .map(|(_, v)| widest(v))
            .max()
            .unwrap_or(0)
            .max(1);
        let cost = size.saturating_add(widest.saturating_pow(self.depth));
        let failed = |e: String| {
            format!(
                "failed to evaluate the CEL expression '{}': {e}",
                self.source
            )
        };
        if cost > ferroflux_schema::COST_BUDGET {
            return Err(failed(
                "operation cancelled: actual cost limit exceeded".into(),
            ));
        }
        let mut context = Context::default();
        for (name, value) in variables {
            let value = cel::to_value(value).map_err(|e| failed(e.to_string()))?;
            let value: Box<dyn cel::common::value::Val> = value
                .try_into()
                .map_err(|e: cel::ExecutionError| failed(e.to_string()))?;
            context.add_variable_as_val(*name, value);
        }
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(_) => Err(format!(
                "failed to evaluate CEL expression as boolean: '{}'",
                self.source
            )),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// The expressions of one kind (or of a whole group when the kind is empty).
#[derive(Debug)]
struct Evaluator {
    group: String,
    kind: String,
    current: Expression,
    failed: Option<Expression>,
    in_progress: Option<Expression>,
}

/// `spec.healthCheckExprs`, parsed.
#[derive(Debug, Default)]
pub struct HealthChecks {
    evaluators: Vec<Evaluator>,
}

impl HealthChecks {
    /// Parses the checks; errors are Flux's (`duplicate custom health check for GroupKind`,
    /// `failed to create custom status evaluator for healthchecks[i]: ...`).
    pub fn parse(checks: &[CustomHealthCheck]) -> Result<Self, String> {
        if checks.len() > MAX_HEALTH_CHECKS {
            return Err(format!("more than {MAX_HEALTH_CHECKS} health checks"));
        }
        let mut evaluators: Vec<Evaluator> = Vec::with_capacity(checks.len());
        for (i, check) in checks.iter().enumerate() {
            let group = check
                .api_version
                .rsplit_once('/')
                .map_or("", |(g, _)| g)
                .to_string();
            if evaluators
                .iter()
                .any(|e| e.group == group && e.kind == check.kind)
            {
                let gk = if group.is_empty() {
                    check.kind.clone()
                } else {
                    format!("{}.{group}", check.kind)
                };
                return Err(format!(
                    "duplicate custom health check for GroupKind {gk} at healthchecks[{i}]"
                ));
            }
            let failed = |e: String| {
                format!("failed to create custom status evaluator for healthchecks[{i}]: {e}")
            };
            if check.current.is_empty() {
                return Err(failed("expression Current not specified".into()));
            }
            let optional = |source: &Option<String>, name: &str| {
                source
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(Expression::parse)
                    .transpose()
                    .map_err(|e| failed(format!("failed to parse the expression {name}: {e}")))
            };
            evaluators.push(Evaluator {
                group,
                kind: check.kind.clone(),
                current: Expression::parse(&check.current)
                    .map_err(|e| failed(format!("failed to parse the expression Current: {e}")))?,
                failed: optional(&check.failed, "Failed")?,
                in_progress: optional(&check.in_progress, "InProgress")?,
            });
        }
        Ok(HealthChecks { evaluators })
    }

    /// No check declared.
    pub fn is_empty(&self) -> bool {
        self.evaluators.is_empty()
    }

    fn evaluator(&self, group: &str, kind: &str) -> Option<&Evaluator> {
        let exact = self
            .evaluators
            .iter()
            .find(|e| e.group == group && e.kind == kind);
        exact.or_else(|| {
            self.evaluators
                .iter()
                .find(|e| e.group == group && e.kind.is_empty())
        })
    }

    /// A check covers the object's kind (or its group).
    pub fn covers(&self, object: &ObjectRef) -> bool {
        self.evaluator(&object.group, &object.kind).is_some()
    }

    /// The object's health by its check (`None`: no check covers it): InProgress while its
    /// `status.observedGeneration` lags, then the first of `inProgress`, `failed`,
    /// `current` that holds, else InProgress. A failing evaluation is Unknown.
    pub fn assess(&self, object: &Value) -> Option<Health> {
        let group = object["apiVersion"]
            .as_str()
            .and_then(|v| v.rsplit_once('/'))
            .map_or("", |(g, _)| g);
        let evaluator = self.evaluator(group, object["kind"].as_str().unwrap_or_default())?;
        let observed = object["status"]["observedGeneration"].as_i64();
        let generation = object["metadata"]["generation"].as_i64();
        if let (Some(observed), Some(generation)) = (observed, generation)
            && observed != generation
        {
            return Some(health(Status::InProgress, "Resource is being processed"));
        }
        let variables: Vec<(&str, &Value)> = object
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let order = [
            (evaluator.in_progress.as_ref(), Status::InProgress),
            (evaluator.failed.as_ref(), Status::Failed),
            (Some(&evaluator.current), Status::Current),
        ];
        for (expression, status) in order {
            let Some(expression) = expression else {
                continue;
            };
            match expression.evaluate_bool(&variables) {
                Ok(true) => return Some(health(status, &expression.source)),
                Ok(false) => {}
                Err(e) => return Some(health(Status::Unknown, &e)),
            }
        }
        Some(health(
            Status::InProgress,
            "no health check expression holds",
        ))
    }
}

fn health(status: Status, message: &str) -> Health {
    Health {
        status,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(current: &str, failed: Option<&str>) -> CustomHealthCheck {
        CustomHealthCheck {
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            in_progress: None,
            failed: failed.map(str::to_string),
            current: current.into(),
        }
    }

    #[test]
    fn failed_then_current_then_in_progress() {
        let checks = HealthChecks::parse(&[check(
            "status.phase == 'Ready'",
            Some("status.phase == 'Broken'"),
        )])
        .expect("parses");
        let widget = |phase: &str| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"generation": 1}, "status": {"phase": phase}})
        };
        let status = |o: Value| checks.assess(&o).map(|h| h.status);
        assert_eq!(status(widget("Ready")), Some(Status::Current));
        assert_eq!(status(widget("Broken")), Some(Status::Failed));
        assert_eq!(status(widget("Pending")), Some(Status::InProgress));
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(checks.assess(&other).is_none());
    }

    #[test]
    fn flux_refuses_duplicates_and_a_missing_current() {
        let err = HealthChecks::parse(&[check("true", None), check("true", None)])
            .expect_err("a duplicate");
        assert_eq!(
            err,
            "duplicate custom health check for GroupKind Widget.example.com at healthchecks[1]"
        );
        let err = HealthChecks::parse(&[check("", None)]).expect_err("no current");
        assert_eq!(
            err,
            "failed to create custom status evaluator for healthchecks[0]: expression Current not specified"
        );
    }

    #[test]
    fn costly_comprehensions_are_refused() {
        let list: Vec<Value> = (0..4000).map(Value::from).collect();
        let object = json!({"l": list});
        let nested =
            Expression::parse("l.all(a, l.all(b, l.all(c, a + b + c >= 0)))").expect("parses");
        let err = nested
            .evaluate_bool(&[("self", &object)])
            .expect_err("over budget");
        assert!(err.contains("cost limit exceeded"), "{err}");
        let ready = Expression::parse("self.l.size() == 4000").expect("parses");
        assert_eq!(ready.evaluate_bool(&[("self", &object)]), Ok(true));
    }
}
