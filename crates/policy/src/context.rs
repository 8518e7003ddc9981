//! The JSON context variables are read from (`pkg/engine/context`): `request.*`,
//! `serviceAccountName`, `serviceAccountNamespace`, rule `context` entries and foreach
//! `element`/`elementIndex`.
//!
//! Rule `context` entries load lazily, as Kyverno's deferred loaders do: an entry is computed
//! the first time a query names it, so a broken entry nothing reads is no error.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use ::jmespath::{Rcvar, Variable};
use ferroflux_gocompat::regex::Regex;
use serde_json::{Map, Value};

use crate::jmespath::{self, JpError};

/// Computes a deferred entry's value from the context (the `variable` loader).
pub type Loader = fn(&Context, &str, &Value) -> Result<Value, String>;

/// A `context` entry not loaded yet.
#[derive(Debug, Clone)]
struct Deferred {
    name: String,
    /// Kyverno's `(?:\A|\z|\s|[^.0-9A-Za-z])NAME\b`: `x` matches `x.y`, not `y.x`.
    matcher: Regex,
    definition: Value,
    loader: Loader,
    loaded: bool,
}

/// The variables of one evaluation. Top-level entries are shared JMESPath values, so a copy
/// for each foreach element costs a few pointers, not the request.
#[derive(Debug, Clone)]
pub struct Context {
    entries: RefCell<BTreeMap<String, Rcvar>>,
    deferred: RefCell<Vec<Deferred>>,
    /// While entry `i` loads, only entries before it may load (its own queries see those).
    loading_below: Cell<Option<usize>>,
}

impl Context {
    /// A context holding `root`'s entries.
    pub fn new(root: Map<String, Value>) -> Self {
        Context {
            entries: RefCell::new(
                root.iter()
                    .map(|(k, v)| (k.clone(), jmespath::to_var(v)))
                    .collect(),
            ),
            deferred: RefCell::new(Vec::new()),
            loading_below: Cell::new(None),
        }
    }

    /// `Query`: the value of a JMESPath expression over the context, loading first the
    /// deferred entries it names.
    pub fn query(&self, expression: &str) -> Result<Value, JpError> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(JpError::Failed("invalid query (nil)".into()));
        }
        self.load_matching(expression)?;
        let root = Rc::new(Variable::Object(self.entries.borrow().clone()));
        let out = jmespath::search(expression, &root)?;
        jmespath::to_json(&out)
    }

    /// `AddDeferredLoader`: `definition` is loaded by `loader` when a query first names `name`.
    ///
    /// # Errors
    /// The name does not make a valid matcher (Kyverno puts it in a regular expression as is).
    pub fn add_deferred(
        &mut self,
        name: &str,
        definition: &Value,
        loader: Loader,
    ) -> Result<(), String> {
        let matcher =
            ferroflux_gocompat::regex::compile(&format!(r"(?:\A|\z|\s|[^.0-9A-Za-z]){name}\b"))
                .map_err(|e| format!("invalid context entry name {name}: {e}"))?;
        self.deferred.get_mut().push(Deferred {
            name: name.to_string(),
            matcher,
            definition: definition.clone(),
            loader,
            loaded: false,
        });
        Ok(())
    }

    /// `LoadMatching`: loads, in order, each pending entry the query names.
    fn load_matching(&self, query: &str) -> Result<(), JpError> {
        let limit = self
            .loading_below
            .get()
            .unwrap_or_else(|| self.deferred.borrow().len());
        for i in 0..limit {
            let pending = {
                let deferred = self.deferred.borrow();
                deferred
                    .get(i)
                    .filter(|d| !d.loaded && d.matcher.is_match(query))
                    .map(|d| (d.name.clone(), d.definition.clone(), d.loader))
            };
            let Some((name, definition, loader)) = pending else {
                continue;
            };
            let outer = self.loading_below.replace(Some(i));
            let value = loader(self, &name, &definition);
            self.loading_below.set(outer);
            let value = value.map_err(JpError::Failed)?;
            if let Some(d) = self.deferred.borrow_mut().get_mut(i) {
                d.loaded = true;
            }
            self.entries
                .borrow_mut()
                .insert(name, jmespath::to_var(&value));
        }
        Ok(())
    }

    /// `request.operation`.
    pub fn operation(&self) -> String {
        self.entries
            .borrow()
            .get("request")
            .and_then(|r| r.as_object())
            .and_then(|r| r.get("operation"))
            .and_then(|o| o.as_string())
            .cloned()
            .unwrap_or_default()
    }

    /// `AddElement`: the current foreach element at `nesting`.
    pub fn add_element(&mut self, element: Value, index: usize, nesting: usize) {
        let element = jmespath::to_var(&element);
        let index = jmespath::to_var(&Value::from(index as u64));
        let entries = self.entries.get_mut();
        entries.insert("element".into(), element.clone());
        entries.insert(format!("element{nesting}"), element);
        entries.insert("elementIndex".into(), index.clone());
        entries.insert(format!("elementIndex{nesting}"), index);
    }

    /// Deep-merges `value` into the context (the CLI's `values`): objects merge, the rest
    /// replaces.
    pub fn merge(&mut self, value: Map<String, Value>) {
        let entries = self.entries.get_mut();
        for (key, incoming) in value {
            let merged = match (entries.get(&key).map(|v| jmespath::to_json(v)), incoming) {
                (Some(Ok(Value::Object(mut existing))), Value::Object(incoming)) => {
                    merge_into(&mut existing, incoming);
                    Value::Object(existing)
                }
                (_, incoming) => incoming,
            };
            entries.insert(key, jmespath::to_var(&merged));
        }
    }
}

fn merge_into(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_into(existing, incoming)
            }
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

/// A variable path as the CLI's `values` keys write it (`request.object.metadata.annotations."a/b"`)
/// turned into nested objects holding `value`.
pub fn nest_variable(path: &str, value: Value) -> Map<String, Value> {
    let mut parts = split_path(path);
    let mut out = value;
    let Some(first) = (!parts.is_empty()).then(|| parts.remove(0)) else {
        return Map::new();
    };
    for part in parts.into_iter().rev() {
        let mut map = Map::new();
        map.insert(part, out);
        out = Value::Object(map);
    }
    let mut root = Map::new();
    root.insert(first, out);
    root
}

/// Splits on dots outside double quotes, dropping the quotes.
fn split_path(path: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in path.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_nest_and_merge() {
        let mut ctx = Context::new(Map::new());
        ctx.merge(nest_variable(
            "request.object.metadata.annotations.\"a.b/c\"",
            json!("true"),
        ));
        ctx.merge(nest_variable("request.operation", json!("DELETE")));
        assert_eq!(
            ctx.query("request.object.metadata.annotations.\"a.b/c\""),
            Ok(json!("true"))
        );
        assert_eq!(ctx.operation(), "DELETE");
    }

    fn echo(ctx: &Context, _: &str, definition: &Value) -> Result<Value, String> {
        match definition.as_str() {
            Some(query) => ctx.query(query).map_err(|e| e.to_string()),
            None => Err("broken entry".into()),
        }
    }

    #[test]
    fn entries_load_when_named_and_broken_unused_ones_are_no_error() {
        let mut ctx = Context::new(Map::new());
        ctx.merge(nest_variable("request.operation", json!("CREATE")));
        ctx.add_deferred("broken", &json!(1), echo)
            .expect("valid name");
        ctx.add_deferred("op", &json!("request.operation"), echo)
            .expect("valid name");
        ctx.add_deferred("opAgain", &json!("op"), echo)
            .expect("valid name");
        assert_eq!(ctx.query("opAgain"), Ok(json!("CREATE")));
        assert_eq!(ctx.query("op"), Ok(json!("CREATE")));
        // `x.broken` is a field of `x`, not the entry.
        assert_eq!(ctx.query("request.broken || 'none'"), Ok(json!("none")));
        assert_eq!(
            ctx.query("broken"),
            Err(JpError::Failed("broken entry".into()))
        );
    }
}
