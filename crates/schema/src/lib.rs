//! CRD structural schemas as kube-apiserver applies them to custom resources: pruning of
//! undeclared fields, defaulting, OpenAPI validation and CEL `x-kubernetes-validations`, with
//! kube's field paths and messages; and the metadata rules every object follows ([`names`]).
//!
//! One source of truth: the API server calls [`admit`] on every write of a custom resource,
//! and `ferroflux validate` calls the same function on the files of a repository.

mod cause;
mod cel;
pub mod names;
mod structural;

pub use cause::Cause;
pub use cel::{COST_BUDGET, MAX_RULE_LEN, compile_errors, comprehension_depth, weight, widest};
pub use structural::{apply_defaults, prune, validate};

use serde_json::Value;

/// What [`admit`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// Paths of the fields pruned because the schema does not declare them (e.g. `spec.junk`,
    /// `spec.items[0].x`), in document order: what kube's strict field validation reports as
    /// `unknown field "spec.junk"`.
    pub unknown_fields: Vec<String>,
    /// Every schema violation, in kube-apiserver's order and words.
    pub causes: Vec<Cause>,
}

/// Admits a custom resource `obj` under its version's `openAPIV3Schema` as kube-apiserver does
/// on a write: prunes unknown fields (reported, not refused: the caller decides by its field
/// validation mode), applies defaults, validates against the schema, then evaluates the CEL
/// rules unless the object already has a fault that makes them moot (as kube). `old` is the
/// stored object on an update: transition rules (`oldSelf`) compare against it.
pub fn admit(obj: &mut Value, schema: &Value, old: Option<&Value>) -> Admission {
    let unknown_fields = prune(obj, schema);
    apply_defaults(obj, schema);
    let mut causes = validate(obj, schema);
    const BLOCKING: &[&str] = &[
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    ];
    // kube has a CEL validator only for schemas with rules; without one nothing is skipped.
    let has_rules = has_cel_rules(schema);
    if has_rules && causes.iter().any(|c| BLOCKING.contains(&c.reason)) {
        causes.push(Cause::invalid(
            "<nil>",
            &Value::Null,
            "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ));
    } else {
        let mut eval = cel::Evaluator::new();
        eval.walk(obj, old, schema, "", true);
        causes.extend(eval.causes);
    }
    Admission {
        unknown_fields,
        causes,
    }
}

/// Whether any node of `schema` carries `x-kubernetes-validations`.
fn has_cel_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            m.contains_key("x-kubernetes-validations") || m.values().any(has_cel_rules)
        }
        Value::Array(items) => items.iter().any(has_cel_rules),
        _ => false,
    }
}

/// The CEL rule faults of a CustomResourceDefinition `crd`, with kube's paths: a schema that
/// every version shares is reported under `spec.validation.openAPIV3Schema` (kube folds it
/// there), else each under `spec.versions[i].schema.openAPIV3Schema`.
pub fn crd_rule_errors(crd: &Value) -> Vec<Cause> {
    let versions = crd["spec"]["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let schema = |v: &Value| v["schema"]["openAPIV3Schema"].clone();
    let shared = versions
        .first()
        .map(schema)
        .filter(|first| versions.iter().all(|v| &schema(v) == first));
    match shared {
        Some(s) => prefixed(compile_errors(&s), "spec.validation.openAPIV3Schema."),
        None => versions
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                prefixed(
                    compile_errors(&v["schema"]["openAPIV3Schema"]),
                    &format!("spec.versions[{i}].schema.openAPIV3Schema."),
                )
            })
            .collect(),
    }
}

fn prefixed(causes: Vec<Cause>, prefix: &str) -> Vec<Cause> {
    causes
        .into_iter()
        .map(|mut c| {
            c.field = format!("{prefix}{}", c.field);
            c
        })
        .collect()
}

/// `path.key`, or `key` at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
