//! `values.schema.json` validation as Helm's `ValidateAgainstSchema` does it: the chart's
//! schema against its coalesced values, then each subchart's against its section. Helm v4
//! validates with santhosh-tekuri/jsonschema; `boon` is the same author's Rust port.
//!
//! A schema is tenant input: it may not load anything (`$ref` to files or URLs fails), where
//! Helm would read local files and fetch over HTTP.

use serde_json::Value;

use crate::chart::Chart;
use crate::values::Table;

/// The location Helm compiles every schema under.
const SCHEMA_URL: &str = "file:///values.schema.json";

/// How deep subcharts are followed (as the loader allows).
const MAX_DEPTH: usize = crate::chart::MAX_SUBCHART_DEPTH + 1;

/// Validates `values` against the schemas of `chart` and its subcharts.
///
/// # Errors
/// Helm's text: per failing chart `NAME:` and the validator's messages.
pub fn validate(chart: &Chart, values: &Table) -> Result<(), String> {
    let mut out = String::new();
    validate_into(chart, values, &mut out, 0);
    if out.is_empty() { Ok(()) } else { Err(out) }
}

fn validate_into(chart: &Chart, values: &Table, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(schema) = &chart.schema
        && let Err(e) = validate_single(values, schema)
    {
        out.push_str(&format!("{}:\n{e}", chart.name()));
    }
    for sub in &chart.dependencies {
        match values.get(sub.name()) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => validate_into(sub, m, out, depth + 1),
            Some(other) => out.push_str(&format!(
                "{}:\ninvalid type for values: expected object (map), got {}\n",
                sub.name(),
                go_type(other)
            )),
        }
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        _ => "<nil>",
    }
}

/// Helm's `ValidateAgainstSingleSchema`.
fn validate_single(values: &Table, schema: &[u8]) -> Result<(), String> {
    let schema: Value = serde_json::from_slice(schema).map_err(|e| e.to_string())?;
    let mut compiler = boon::Compiler::new();
    compiler.use_loader(Box::new(boon::SchemeUrlLoader::new()));
    compiler
        .add_resource(SCHEMA_URL, schema)
        .map_err(|e| e.to_string())?;
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(SCHEMA_URL, &mut schemas)
        .map_err(|e| e.to_string())?;
    let instance = Value::Object(values.clone());
    schemas.validate(&instance, index).map_err(|e| {
        let mut text = String::new();
        leaves(&e, &mut text, 0);
        text
    })
}

/// santhosh-tekuri/jsonschema's basic output, as Helm prints it: one `- at 'LOCATION': WHY`
/// line per failing leaf.
fn leaves(e: &boon::ValidationError<'_, '_>, out: &mut String, depth: usize) {
    if e.causes.is_empty() || depth > 64 {
        let why = match &e.kind {
            boon::ErrorKind::Required { want } if want.len() == 1 => {
                format!("missing property '{}'", want[0])
            }
            boon::ErrorKind::Required { want } => {
                let names: Vec<String> = want.iter().map(|w| format!("'{w}'")).collect();
                format!("missing properties {}", names.join(", "))
            }
            boon::ErrorKind::Type { got, want } => {
                let want: Vec<String> = want.iter().map(|t| t.to_string()).collect();
                format!("got {got}, want {}", want.join(" or "))
            }
            boon::ErrorKind::Minimum { got, want } => bound("minimum", got, want),
            boon::ErrorKind::Maximum { got, want } => bound("maximum", got, want),
            boon::ErrorKind::ExclusiveMinimum { got, want } => bound("exclusiveMinimum", got, want),
            boon::ErrorKind::ExclusiveMaximum { got, want } => bound("exclusiveMaximum", got, want),
            boon::ErrorKind::MinLength { got, want } => {
                format!("minLength: got {got}, want {want}")
            }
            boon::ErrorKind::MaxLength { got, want } => {
                format!("maxLength: got {got}, want {want}")
            }
            boon::ErrorKind::MinItems { got, want } => format!("minItems: got {got}, want {want}"),
            boon::ErrorKind::MaxItems { got, want } => format!("maxItems: got {got}, want {want}"),
            other => other.to_string(),
        };
        out.push_str(&format!("- at '{}': {why}\n", e.instance_location));
        return;
    }
    for cause in &e.causes {
        leaves(cause, out, depth + 1);
    }
}

/// `KEYWORD: got X, want Y` with numbers as Go prints them (`-5`, not `-5.0`).
fn bound(keyword: &str, got: &serde_json::Number, want: &serde_json::Number) -> String {
    format!(
        "{keyword}: got {}, want {}",
        go_number(got),
        go_number(want)
    )
}

fn go_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}
