//! Runners for the `gotemplate`, `sprig` and `helm-funcs` corpora (Go `text/template`, Sprig v3
//! and Helm's functions and engine).

use std::collections::BTreeMap;

use ferroflux_gotemplate as gt;
use gt::{FuncError, FuncMap, MissingKey, Template, Value, func};
use serde_json::Value as Json;

use crate::Outcome;

/// Judges a case: `expected` output or `error: true`.
fn judge(case: &Json, result: Result<String, String>) -> Outcome {
    let wants_error = case["error"].as_bool().unwrap_or(false);
    match (result, wants_error) {
        (Err(_), true) => Outcome::Pass,
        (Ok(out), true) => Outcome::Fail(format!("expected an error, got {out:?}")),
        (Err(e), false) => Outcome::Fail(format!(
            "expected {:?}, got error: {e}",
            case["expected"].as_str().unwrap_or("")
        )),
        (Ok(out), false) => match case["expected"].as_str() {
            Some(exp) if exp == out => Outcome::Pass,
            Some(exp) => Outcome::Fail(format!("expected {exp:?}, got {out:?}")),
            None => Outcome::Fail("case has neither `expected` nor `error`".into()),
        },
    }
}

fn want_n(a: &[Value], n: usize, name: &str) -> Result<(), FuncError> {
    if a.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", a.len()).into());
    }
    Ok(())
}

fn string_arg(v: &Value) -> Result<&str, FuncError> {
    v.as_str().ok_or_else(|| {
        FuncError::from(format!(
            "wrong type for value; expected string; got {}",
            v.type_name()
        ))
    })
}

/// The helper functions of Go's `exec_test.go`, with the behaviour fixed in the corpus README.
fn test_helpers() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "add".into(),
        func(|a| {
            let mut sum = 0i64;
            for v in a {
                match v {
                    Value::Int(i) => sum += i,
                    other => {
                        return Err(format!(
                            "wrong type for value; expected int; got {}",
                            other.type_name()
                        )
                        .into());
                    }
                }
            }
            Ok(Value::Int(sum))
        }),
    );
    m.insert(
        "echo".into(),
        func(|a| {
            want_n(a, 1, "echo")?;
            Ok(a[0].clone())
        }),
    );
    m.insert(
        "makemap".into(),
        func(|a| {
            let mut out = gt::Map::new();
            for pair in a.chunks(2) {
                let k = string_arg(&pair[0])?;
                let v = pair
                    .get(1)
                    .map(|v| string_arg(v).map(Value::str))
                    .transpose()?
                    .unwrap_or(Value::str(""));
                out.insert(k.into(), v);
            }
            Ok(Value::map(out))
        }),
    );
    m.insert(
        "mapOfThree".into(),
        func(|a| {
            want_n(a, 0, "mapOfThree")?;
            let mut out = gt::Map::new();
            out.insert("three".into(), Value::Int(3));
            Ok(Value::map(out))
        }),
    );
    m.insert(
        "oneArg".into(),
        func(|a| {
            want_n(a, 1, "oneArg")?;
            Ok(Value::from(format!("oneArg={}", string_arg(&a[0])?)))
        }),
    );
    m.insert(
        "twoArgs".into(),
        func(|a| {
            want_n(a, 2, "twoArgs")?;
            Ok(Value::from(format!(
                "twoArgs={}{}",
                string_arg(&a[0])?,
                string_arg(&a[1])?
            )))
        }),
    );
    m.insert(
        "dddArg".into(),
        func(|a| {
            let Some(Value::Int(first)) = a.first() else {
                return Err("wrong type for value; expected int".into());
            };
            let rest: Vec<String> = a[1..]
                .iter()
                .map(|v| string_arg(v).map(str::to_string))
                .collect::<Result<_, _>>()?;
            Ok(Value::from(format!("{first} [{}]\n", rest.join(" "))))
        }),
    );
    m.insert("returnInt".into(), func(|_| Ok(Value::Int(7))));
    m.insert(
        "typeOf".into(),
        func(|a| {
            want_n(a, 1, "typeOf")?;
            Ok(Value::from(a[0].type_name()))
        }),
    );
    m.insert(
        "valueString".into(),
        func(|a| {
            want_n(a, 1, "valueString")?;
            string_arg(&a[0])?;
            Ok(Value::str("value is ignored"))
        }),
    );
    m.insert(
        "zeroArgs".into(),
        func(|a| {
            want_n(a, 0, "zeroArgs")?;
            Ok(Value::str("zeroArgs"))
        }),
    );
    m.insert("die".into(), func(|_| Err("die".into())));
    m
}

fn data_of(case: &Json) -> Value {
    Value::from_json(&case["data"])
}

/// Engine data as Helm builds it: a top-level `Files` object of path -> content becomes the
/// `.Files` object with its methods (`Get`, `Glob`, ...), as it always is in Helm, and a list
/// of `Capabilities.APIVersions` becomes Helm's version set with `Has`.
fn helm_data(case: &Json) -> Value {
    let data = data_of(case);
    let Value::Map(top) = &data else {
        return data;
    };
    if let Some(files) = case["data"]["Files"].as_object() {
        let files: BTreeMap<String, String> = files
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        top.write()
            .insert("Files".into(), gt::Files::new(files).into_value());
    }
    // Likewise `.Capabilities.APIVersions` is a set with a `Has` method in Helm.
    if let Some(versions) = case["data"]["Capabilities"]["APIVersions"].as_array()
        && let Some(Value::Map(caps)) = top.get("Capabilities")
    {
        let versions: Vec<String> = versions
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        caps.write().insert(
            "APIVersions".into(),
            Value::Object(std::sync::Arc::new(gt::ApiVersions(versions))),
        );
    }
    data
}

/// The `gotemplate` corpus: Go's builtins plus the test helpers.
pub fn run_gotemplate(case: &Json) -> Outcome {
    let mut t = Template::with_funcs(test_helpers());
    run_single(case, &mut t)
}

/// The `sprig` corpus: the Sprig v3 text function map.
pub fn run_sprig(case: &Json) -> Outcome {
    let mut t = Template::with_funcs(gt::sprig_funcs(&gt::Sources::default()));
    run_single(case, &mut t)
}

fn run_single(case: &Json, t: &mut Template) -> Outcome {
    let Some(text) = case["template"].as_str() else {
        return Outcome::Skip("no `template`".into());
    };
    let opts = &case["options"];
    if let Some([l, r]) = opts["delims"].as_array().map(Vec::as_slice) {
        t.delims(l.as_str().unwrap_or(""), r.as_str().unwrap_or(""));
    }
    match opts["missingkey"].as_str() {
        Some("zero") => {
            t.missing_key(MissingKey::Zero);
        }
        Some("error") => {
            t.missing_key(MissingKey::Error);
        }
        _ => {}
    }
    let name = opts["execute"].as_str().unwrap_or("test");
    let result = t
        .parse("test", text)
        .and_then(|()| t.execute(name, &data_of(case)))
        .map_err(|e| e.to_string());
    judge(case, result)
}

/// The `helm-funcs` corpus: Helm's function map, and `engine:` cases through Helm's engine.
pub fn run_helm(case: &Json) -> Outcome {
    if let Some(templates) = case["templates"].as_object() {
        let Some(render) = case["render"].as_str() else {
            return Outcome::Skip("engine case without `render`".into());
        };
        let files: BTreeMap<String, String> = templates
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let strict = case["options"]["strict"].as_bool().unwrap_or(false);
        let engine = gt::HelmEngine::new(strict);
        let result = engine
            .render(&files, &helm_data(case))
            .map_err(|e| e.to_string())
            .and_then(|out| {
                out.get(render)
                    .cloned()
                    .ok_or_else(|| format!("{render} was not rendered"))
            });
        return judge(case, result);
    }
    let mut t = Template::with_funcs(gt::helm_funcs(&gt::Sources::default()));
    run_single(case, &mut t)
}
