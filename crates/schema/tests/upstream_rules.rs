//! Every `x-kubernetes-validations` rule of the upstream CRDs (../shared/conformance/upstream-crds)
//! compiles with ferroflux-schema, and evaluates: for each rule the test builds values of its
//! schema node (varying the fields the rule names) until one satisfies it and one violates it,
//! both through [`admit`] as the API server runs it. Prints the compile and evaluation times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferroflux_schema::{admit, compile_errors};
use serde_json::{Map, Value, json};

/// How many variants of one object the generator tries at most.
const MAX_VARIANTS: usize = 256;

fn upstream_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/upstream-crds");
    dir.is_dir().then_some(dir)
}

/// (where, the rule's node schema, the rule).
type Found = (String, Value, Value);

fn collect(schema: &Value, at: &str, out: &mut Vec<Found>) {
    for r in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push((at.to_string(), schema.clone(), r.clone()));
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, s) in props {
            collect(s, &format!("{at}.{k}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(s) = schema.get(key).filter(|s| s.is_object()) {
            collect(s, &format!("{at}[{key}]"), out);
        }
    }
}

/// The quoted strings of a rule: values it compares against.
fn literals(rule: &str) -> Vec<String> {
    rule.split('\'')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.contains('\\'))
        .map(str::to_string)
        .collect()
}

fn candidates(schema: &Value, rule: &str, depth: usize) -> Vec<Value> {
    if depth > 4 {
        return vec![json!({})];
    }
    if let Some(e) = schema["enum"].as_array() {
        return e.clone();
    }
    match schema["type"].as_str().unwrap_or("") {
        "string" => {
            let mut v: Vec<Value> = literals(rule).into_iter().map(Value::from).collect();
            v.extend(["x".into(), "Not_Valid!".into()]);
            v
        }
        "integer" => vec![json!(1), json!(0)],
        "number" => vec![json!(1.5)],
        "boolean" => vec![json!(true), json!(false)],
        "array" => {
            let mut v = vec![json!([])];
            for c in candidates(&schema["items"], rule, depth + 1)
                .into_iter()
                .take(4)
            {
                v.push(json!([c]));
            }
            v
        }
        "object" => objects(schema, rule, depth),
        _ => vec![json!("x")],
    }
}

/// Objects of `schema`: required fields filled, each field the rule names absent or set to
/// each of its candidates.
fn objects(schema: &Value, rule: &str, depth: usize) -> Vec<Value> {
    let Some(props) = schema["properties"].as_object() else {
        return vec![json!({})];
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut variants = vec![Map::new()];
    for (k, s) in props {
        let named = rule.contains(k.as_str());
        let is_required = required.contains(&k.as_str());
        if !named && !is_required {
            continue;
        }
        let mut options: Vec<Option<Value>> = candidates(s, rule, depth + 1)
            .into_iter()
            .map(Some)
            .collect();
        if !named {
            options.truncate(1);
        }
        if !is_required {
            options.push(None);
        }
        let mut next = Vec::new();
        for v in &variants {
            for o in &options {
                let mut m = v.clone();
                if let Some(o) = o {
                    m.insert(k.clone(), o.clone());
                }
                next.push(m);
                if next.len() >= MAX_VARIANTS {
                    break;
                }
            }
        }
        variants = next;
    }
    variants.into_iter().map(Value::Object).collect()
}

#[test]
fn every_upstream_rule_compiles_and_evaluates_both_ways() {
    let Some(dir) = upstream_dir() else {
        ferroflux_testpeers::skip("../shared/conformance/upstream-crds is missing");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the upstream CRD folder is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let (mut rules, mut compile_time, mut evals, mut eval_time) =
        (0usize, Duration::ZERO, 0usize, Duration::ZERO);
    let mut one_sided = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable CRD file");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("upstream CRDs parse");
        for crd in docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
        {
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or("?");
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let schema = &version["schema"]["openAPIV3Schema"];
                let where_ = format!("{kind} {}", version["name"].as_str().unwrap_or("?"));
                let mut found = Vec::new();
                collect(schema, "", &mut found);
                let started = Instant::now();
                let errors = compile_errors(schema);
                compile_time += started.elapsed();
                assert!(errors.is_empty(), "{where_}: {errors:#?}");
                for (at, node, rule) in found {
                    rules += 1;
                    let text = rule["rule"].as_str().expect("rules are strings");
                    let message = rule["message"].as_str().unwrap_or("failed rule");
                    let root = json!({"type": "object", "properties": {"x": node}});
                    let (mut pass, mut fail) = (false, false);
                    for c in candidates(&node, text, 0) {
                        let mut obj = json!({"x": c});
                        let started = Instant::now();
                        let a = admit(&mut obj, &root, None);
                        eval_time += started.elapsed();
                        evals += 1;
                        // The node's other rules and the schema's own checks may fail too:
                        // a variant counts when its rules were evaluated at all.
                        if a.causes
                            .iter()
                            .any(|c| c.message.contains("were not checked"))
                        {
                            continue;
                        }
                        if a.causes.iter().any(|c| c.message.contains(message)) {
                            fail = true;
                        } else {
                            pass = true;
                        }
                        if pass && fail {
                            break;
                        }
                    }
                    if !(pass && fail) {
                        one_sided.push(format!(
                            "{where_}{at}: {text} (satisfied: {pass}, violated: {fail})"
                        ));
                    }
                }
            }
        }
    }
    println!(
        "{rules} rule uses; compile (cold, with the schema walk): {:?} per rule; {evals} admissions: {:?} each",
        compile_time / rules.max(1) as u32,
        eval_time / evals.max(1) as u32
    );
    assert!(rules >= 23, "only {rules} rules found");
    assert!(one_sided.is_empty(), "{one_sided:#?}");
}
