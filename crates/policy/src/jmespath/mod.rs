//! JMESPath as Kyverno evaluates it (`kyverno/go-jmespath` plus `pkg/engine/jmespath`).
//!
//! The `jmespath` crate parses; evaluation is ours because Kyverno's fork differs from the
//! specification where policies notice it: a field missing from an object is an error
//! (`Unknown key "labels" in path`) that `||`, comparisons, filters and function arguments
//! turn back into `null`, so `{{ request.object.metadata.labels.app }}` errors on an unlabelled
//! object while `{{ ... || '' }}` does not. Owning the evaluator also bounds it: expression
//! length and nesting, evaluation steps and the size of the result are all capped, and values
//! are shared (`Rc`), so `[@, @, @]` costs pointers, not copies.

mod functions;

pub(crate) use functions::go_json;

use std::fmt;
use std::rc::Rc;

use jmespath::ast::{Ast, Comparator};
use jmespath::{Rcvar, Variable};
use serde_json::Value;

/// Longest expression evaluated.
pub const MAX_EXPRESSION_LEN: usize = 8 * 1024;
/// Deepest bracket nesting in an expression (the parser recurses on it).
pub const MAX_NESTING: usize = 40;
/// Evaluation steps (AST nodes visited, elements projected) per expression.
pub const MAX_STEPS: u64 = 1_000_000;
/// JSON nodes a result may hold once written out.
pub const MAX_RESULT_NODES: usize = 1_000_000;

/// Why an expression gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpError {
    /// A field is missing from an object (go-jmespath's `NotFoundError`).
    NotFound(String),
    /// Anything else: syntax, types, function errors, budgets.
    Failed(String),
}

impl fmt::Display for JpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpError::NotFound(key) => write!(f, "Unknown key \"{key}\" in path"),
            JpError::Failed(message) => f.write_str(message),
        }
    }
}

/// Evaluates `expression` against `data`.
pub fn search(expression: &str, data: &Rcvar) -> Result<Rcvar, JpError> {
    let ast = compile(expression)?;
    Interp { steps: 0 }.eval(&ast, data, 0)
}

/// Parses an expression within the length and nesting budgets.
pub fn compile(expression: &str) -> Result<Ast, JpError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(JpError::Failed(format!(
            "JMESPath expression longer than {MAX_EXPRESSION_LEN} bytes"
        )));
    }
    if nesting(expression) > MAX_NESTING {
        return Err(JpError::Failed(format!(
            "JMESPath expression nested deeper than {MAX_NESTING} levels"
        )));
    }
    jmespath::parse(expression).map_err(|e| JpError::Failed(e.to_string()))
}

/// An upper bound of the parser's recursion: brackets, and chains of operators that the
/// Pratt parser also recurses on (`a.b.c...`, `!!!!a`).
fn nesting(expression: &str) -> usize {
    let (mut depth, mut max, mut operators) = (0usize, 0usize, 0usize);
    for c in expression.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '.' | '|' | '!' | '&' => operators += 1,
            _ => {}
        }
    }
    max + operators / 8
}

/// JSON to a JMESPath value (nesting beyond 512 levels reads as `null`).
pub fn to_var(value: &Value) -> Rcvar {
    to_var_at(value, 0)
}

fn to_var_at(value: &Value, depth: usize) -> Rcvar {
    Rc::new(match value {
        _ if depth > 512 => Variable::Null,
        Value::Null => Variable::Null,
        Value::Bool(b) => Variable::Bool(*b),
        Value::Number(n) => Variable::Number(n.clone()),
        Value::String(s) => Variable::String(s.clone()),
        Value::Array(items) => {
            Variable::Array(items.iter().map(|v| to_var_at(v, depth + 1)).collect())
        }
        Value::Object(map) => Variable::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_var_at(v, depth + 1)))
                .collect(),
        ),
    })
}

/// A JMESPath value back to JSON, refusing results beyond [`MAX_RESULT_NODES`].
pub fn to_json(var: &Variable) -> Result<Value, JpError> {
    let mut budget = MAX_RESULT_NODES;
    to_json_within(var, &mut budget, 0)
}

fn to_json_within(var: &Variable, budget: &mut usize, depth: usize) -> Result<Value, JpError> {
    if *budget == 0 || depth > 512 {
        return Err(JpError::Failed("JMESPath result too large".into()));
    }
    *budget -= 1;
    Ok(match var {
        Variable::Null | Variable::Expref(_) => Value::Null,
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Number(n) => Value::Number(n.clone()),
        Variable::String(s) => Value::String(s.clone()),
        Variable::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json_within(i, budget, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Variable::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_json_within(v, budget, depth + 1)?)))
                .collect::<Result<_, JpError>>()?,
        ),
    })
}

fn null() -> Rcvar {
    Rc::new(Variable::Null)
}

/// An argument of a function call: a value, or an `&expr` to apply later.
pub(crate) enum Arg<'a> {
    Value(Rcvar),
    Expref(&'a Ast),
}

/// The evaluator, counting its steps.
pub(crate) struct Interp {
    steps: u64,
}

impl Interp {
    fn tick(&mut self) -> Result<(), JpError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(JpError::Failed(format!(
                "JMESPath evaluation exceeded {MAX_STEPS} steps"
            )));
        }
        Ok(())
    }

    /// Evaluates, turning a missing field into `null` (what every consumer but a path does).
    fn eval_or_null(&mut self, ast: &Ast, data: &Rcvar, depth: usize) -> Result<Rcvar, JpError> {
        match self.eval(ast, data, depth) {
            Err(JpError::NotFound(_)) => Ok(null()),
            other => other,
        }
    }

    pub(crate) fn eval(&mut self, ast: &Ast, data: &Rcvar, depth: usize) -> Result<Rcvar, JpError> {
        self.tick()?;
        if depth > 4 * MAX_NESTING + 64 {
            return Err(JpError::Failed("JMESPath expression too deep".into()));
        }
        let depth = depth + 1;
        match ast {
            Ast::Identity { .. } => Ok(data.clone()),
            Ast::Literal { value, .. } => Ok(value.clone()),
            Ast::Field { name, .. } => match &**data {
                Variable::Object(map) => map
                    .get(name)
                    .cloned()
                    .ok_or_else(|| JpError::NotFound(name.clone())),
                _ => Ok(null()),
            },
            Ast::Subexpr { lhs, rhs, .. } => {
                let left = self.eval(lhs, data, depth)?;
                self.eval(rhs, &left, depth)
            }
            Ast::Index { idx, .. } => Ok(index(data, *idx)),
            Ast::Slice {
                start, stop, step, ..
            } => {
                if *step == 0 {
                    return Err(JpError::Failed("slice step cannot be 0".into()));
                }
                Ok(data
                    .slice(*start, *stop, *step)
                    .map_or_else(null, |items| Rc::new(Variable::Array(items))))
            }
            Ast::Comparison {
                comparator,
                lhs,
                rhs,
                ..
            } => {
                let left = self.eval_or_null(lhs, data, depth)?;
                let right = self.eval_or_null(rhs, data, depth)?;
                Ok(compare(comparator, &left, &right))
            }
            Ast::Condition {
                predicate, then, ..
            } => {
                let test = self.eval_or_null(predicate, data, depth)?;
                if test.is_truthy() {
                    self.eval(then, data, depth)
                } else {
                    Ok(null())
                }
            }
            Ast::Projection { lhs, rhs, .. } => self.projection(lhs, rhs, data, depth),
            Ast::ObjectValues { node, .. } => {
                let value = self.eval(node, data, depth)?;
                Ok(match &*value {
                    Variable::Object(map) => {
                        Rc::new(Variable::Array(map.values().cloned().collect()))
                    }
                    _ => null(),
                })
            }
            Ast::Flatten { node, .. } => {
                let value = self.eval(node, data, depth)?;
                self.flatten(&value)
            }
            Ast::MultiList { elements, .. } => {
                if data.is_null() {
                    return Ok(null());
                }
                let mut out = Vec::with_capacity(elements.len());
                for element in elements {
                    out.push(self.eval_or_null(element, data, depth)?);
                }
                Ok(Rc::new(Variable::Array(out)))
            }
            Ast::MultiHash { elements, .. } => {
                if data.is_null() {
                    return Ok(null());
                }
                let mut out = std::collections::BTreeMap::new();
                for pair in elements {
                    out.insert(
                        pair.key.clone(),
                        self.eval_or_null(&pair.value, data, depth)?,
                    );
                }
                Ok(Rc::new(Variable::Object(out)))
            }
            Ast::Not { node, .. } => {
                let value = self.eval_or_null(node, data, depth)?;
                Ok(Rc::new(Variable::Bool(!value.is_truthy())))
            }
            Ast::And { lhs, rhs, .. } => {
                let left = self.eval_or_null(lhs, data, depth)?;
                if !left.is_truthy() {
                    return Ok(left);
                }
                self.eval_or_null(rhs, data, depth)
            }
            Ast::Or { lhs, rhs, .. } => {
                let left = self.eval_or_null(lhs, data, depth)?;
                if left.is_truthy() {
                    return Ok(left);
                }
                self.eval_or_null(rhs, data, depth)
            }
            Ast::Function { name, args, .. } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(match arg {
                        Ast::Expref { ast, .. } => Arg::Expref(ast),
                        other => Arg::Value(self.eval_or_null(other, data, depth)?),
                    });
                }
                functions::call(self, name, values, depth)
            }
            Ast::Expref { .. } => Err(JpError::Failed(
                "an expression reference is only an argument of a function".into(),
            )),
        }
    }

    fn projection(
        &mut self,
        lhs: &Ast,
        rhs: &Ast,
        data: &Rcvar,
        depth: usize,
    ) -> Result<Rcvar, JpError> {
        let left = match self.eval(lhs, data, depth) {
            Ok(left) => left,
            // A filter over a missing list is empty, not an error (go-jmespath).
            Err(_) if matches!(rhs, Ast::Condition { .. }) => return Ok(null()),
            Err(err) => return Err(err),
        };
        let Variable::Array(items) = &*left else {
            return Ok(null());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            self.tick()?;
            let value = self.eval_or_null(rhs, item, depth)?;
            if !value.is_null() {
                out.push(value);
            }
        }
        Ok(Rc::new(Variable::Array(out)))
    }

    fn flatten(&mut self, value: &Rcvar) -> Result<Rcvar, JpError> {
        let Variable::Array(items) = &**value else {
            return Ok(null());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            self.tick()?;
            match &**item {
                Variable::Array(inner) => out.extend(inner.iter().cloned()),
                _ => out.push(item.clone()),
            }
        }
        Ok(Rc::new(Variable::Array(out)))
    }
}

fn index(data: &Rcvar, idx: i32) -> Rcvar {
    let Variable::Array(items) = &**data else {
        return null();
    };
    let position = if idx >= 0 {
        usize::try_from(idx).ok()
    } else {
        items.len().checked_sub(idx.unsigned_abs() as usize)
    };
    position
        .and_then(|p| items.get(p).cloned())
        .unwrap_or_else(null)
}

fn compare(comparator: &Comparator, left: &Rcvar, right: &Rcvar) -> Rcvar {
    let result = match comparator {
        Comparator::Equal => Some(left == right),
        Comparator::NotEqual => Some(left != right),
        ordering => match (left.as_number(), right.as_number()) {
            (Some(a), Some(b)) => Some(match ordering {
                Comparator::LessThan => a < b,
                Comparator::LessThanEqual => a <= b,
                Comparator::GreaterThan => a > b,
                _ => a >= b,
            }),
            _ => None,
        },
    };
    result.map_or_else(null, |b| Rc::new(Variable::Bool(b)))
}

/// Evaluates `expr` against an empty document, for the function tests.
#[cfg(test)]
pub(crate) fn run_on_empty(expr: &str) -> Value {
    let out =
        search(expr, &to_var(&serde_json::json!({}))).unwrap_or_else(|e| panic!("{expr}: {e}"));
    to_json(&out).expect("small")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, data: Value) -> Result<Value, JpError> {
        let out = search(expr, &to_var(&data))?;
        to_json(&out)
    }

    #[test]
    fn a_missing_field_is_an_error_that_or_recovers() {
        let pod = json!({"metadata": {"name": "a"}});
        assert_eq!(
            run("metadata.labels.app", pod.clone()),
            Err(JpError::NotFound("labels".into()))
        );
        assert_eq!(run("metadata.labels.app || ''", pod.clone()), Ok(json!("")));
        assert_eq!(run("metadata.labels == null", pod.clone()), Ok(json!(true)));
        assert_eq!(run("to_string(metadata.labels)", pod), Ok(json!("null")));
    }

    #[test]
    fn projections_filters_and_pipes() {
        let data = json!({"c": [{"n": "a", "p": 1}, {"n": "b", "p": 2}, {"x": 1}]});
        assert_eq!(run("c[].n", data.clone()), Ok(json!(["a", "b"])));
        assert_eq!(run("c[?p > `1`].n", data.clone()), Ok(json!(["b"])));
        assert_eq!(run("c[*].p | [0]", data.clone()), Ok(json!(1)));
        assert_eq!(run("length(c)", data.clone()), Ok(json!(3.0)));
        assert_eq!(run("missing[?a].b", data), Ok(Value::Null));
    }

    #[test]
    fn hostile_expressions_are_refused() {
        let deep = "[".repeat(5000) + &"]".repeat(5000);
        assert!(matches!(run(&deep, json!({})), Err(JpError::Failed(_))));
        let long = "a.".repeat(10_000) + "a";
        assert!(matches!(run(&long, json!({})), Err(JpError::Failed(_))));
        // Doubling the data 30 times would be 2^30 copies written out.
        let mut doubling = "@".to_string();
        for _ in 0..30 {
            doubling = format!("[{doubling},{doubling}]");
            if doubling.len() > MAX_EXPRESSION_LEN {
                break;
            }
        }
        let _ = run(&doubling, json!({"a": [1, 2, 3]}));
        let nested = "[[[[[[[[[[[[@,@],@],@],@],@],@],@],@],@],@],@],@]";
        assert!(run(nested, json!(1)).is_ok());
    }
}
