//! Runs the upstream kustomize corpus (`../shared/conformance/kustomize/cases`) in-process,
//! judging each case the way `run.py` does, and holds it to two checked-in lists beside this
//! file: `known-failures/kustomize.txt` (cases that fail) and
//! `known-failures/kustomize-byte-exact.txt` (output cases whose output is not byte for byte
//! upstream's). A case missing from its list, or listed and now passing, fails the test.
//! Skips, saying so, when `../shared` is absent; under `CI=true` that fails.

use std::path::{Path, PathBuf};

use ferroflux_kustomize::fs::MemFs;
use ferroflux_kustomize::yaml::{Value, parse_documents};
use ferroflux_kustomize::{LoadRestrictor, Options, Reorder, build};
use ferroflux_testpeers::KnownFailures;

fn known_failures(suite: &str) -> KnownFailures {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/known-failures")
        .join(format!("{suite}.txt"));
    KnownFailures::load(path).unwrap_or_else(|err| panic!("{err}"))
}

fn load_tree(fs: &mut MemFs, dir: &Path, prefix: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = prefix.join(e.file_name());
        if p.is_dir() {
            fs.add_dir(&rel);
            load_tree(fs, &p, &rel);
        } else if let Ok(bytes) = std::fs::read(&p) {
            fs.add(&rel, bytes);
        }
    }
}

/// Data equality, mapping order ignored, integers equal to whole floats.
fn data_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| data_eq(v, w)))
        }
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| data_eq(v, w))
        }
        (Value::Int(i), Value::Float(f)) | (Value::Float(f), Value::Int(i)) => *i as f64 == *f,
        _ => a == b,
    }
}

fn docs(text: &str) -> Option<Vec<Value>> {
    parse_documents(text)
        .ok()
        .map(|d| d.into_iter().filter(|v| !v.is_null()).collect())
}

enum Outcome {
    Pass { exact: Option<bool> },
    Fail(String),
}

fn run_case(case: &Path) -> Outcome {
    let meta: serde_json::Value = match std::fs::read_to_string(case.join("meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(m) => m,
        None => return Outcome::Fail("unreadable meta.json".into()),
    };
    let mut fs = MemFs::new();
    load_tree(&mut fs, &case.join("input"), Path::new("/"));
    for d in meta["empty_dirs"].as_array().into_iter().flatten() {
        if let Some(d) = d.as_str() {
            fs.add_dir(d);
        }
    }
    let run = std::fs::read_to_string(case.join("run")).unwrap_or_default();
    let run = run.trim();
    let dir = if run.is_empty() || run == "." {
        PathBuf::from("/")
    } else {
        Path::new("/").join(run)
    };
    let opts = Options {
        reorder: match meta["options"]["reorder"].as_str() {
            Some("none") => Reorder::None,
            _ => Reorder::Legacy,
        },
        load_restrictor: match meta["options"]["load_restrictor"].as_str() {
            Some("LoadRestrictionsNone") => LoadRestrictor::None,
            _ => LoadRestrictor::RootOnly,
        },
    };
    let result = build(&fs, &dir, opts);
    if let Ok(expected) = std::fs::read_to_string(case.join("expected.yaml")) {
        return match result {
            Err(e) => Outcome::Fail(format!("error: {e}")),
            Ok(out) if out == expected => Outcome::Pass { exact: Some(true) },
            Ok(out) => match (docs(&out), docs(&expected)) {
                (Some(a), Some(b))
                    if a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| data_eq(x, y)) =>
                {
                    Outcome::Pass { exact: Some(false) }
                }
                _ => Outcome::Fail("output differs".into()),
            },
        };
    }
    let subs: Vec<String> = match meta["error_substrings"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        None => {
            let t = std::fs::read_to_string(case.join("expected_error")).unwrap_or_default();
            let t = t.strip_suffix('\n').unwrap_or(&t).to_string();
            if t.trim() == "error" {
                Vec::new()
            } else {
                vec![t]
            }
        }
    };
    match result {
        Ok(_) => Outcome::Fail("expected an error, build succeeded".into()),
        Err(e) => {
            let text = e.to_string();
            match subs.iter().find(|s| !text.contains(s.as_str())) {
                None => Outcome::Pass { exact: None },
                Some(s) => Outcome::Fail(format!("error lacks {s:?}: {text}")),
            }
        }
    }
}

#[test]
fn upstream_corpus_fails_only_its_known_failures() {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/kustomize/cases");
    let Ok(entries) = std::fs::read_dir(&cases) else {
        ferroflux_testpeers::skip(format!("{} is absent", cases.display()));
        return;
    };
    let known = known_failures("kustomize");
    let known_inexact = known_failures("kustomize-byte-exact");
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    // (case, passed) for every case, and (case, byte-exact) for every case with an output.
    let mut outcomes: Vec<(String, bool)> = Vec::new();
    let mut exactness: Vec<(String, bool)> = Vec::new();
    for case in names.iter().filter(|p| p.join("meta.json").is_file()) {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match run_case(case) {
            Outcome::Pass { exact } => {
                if let Some(exact) = exact {
                    if !exact {
                        let mark = known_inexact.mark(&name);
                        eprintln!("NOT BYTE-EXACT {name}: same data, other text{mark}");
                    }
                    exactness.push((name.clone(), exact));
                }
                outcomes.push((name, true));
            }
            Outcome::Fail(why) => {
                let mark = known.mark(&name);
                eprintln!(
                    "FAIL {name}: {}{mark}",
                    why.lines().next().unwrap_or_default()
                );
                if case.join("expected.yaml").is_file() {
                    exactness.push((name.clone(), false));
                }
                outcomes.push((name, false));
            }
        }
    }
    let verdict = known.judge(outcomes.iter().map(|(n, p)| (n.as_str(), *p)));
    let exact = known_inexact.judge(exactness.iter().map(|(n, e)| (n.as_str(), *e)));
    eprintln!("kustomize: {verdict}");
    eprintln!("kustomize byte-exact outputs: {exact}");
    assert!(
        verdict.holds() && exact.holds(),
        "kustomize: {verdict}\nkustomize byte-exact outputs: {exact}"
    );
}
