//! Runs the conformance binary on every public corpus in `../shared/conformance` and holds each
//! to its checked-in list of known failures, `known-failures/<corpus>.txt`: one new failure is
//! red, and so is a listed case that passes now (take it off the list). Skips, saying so, when
//! `../shared` is absent; under `CI=true` that fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflux_testpeers::{KnownFailures, Verdict};
use serde_json::Value;

/// The corpora with an engine behind them. Engines add their corpus when they land.
const CORPORA: &[&str] = &[
    "semver",
    "imagepolicy",
    "gotemplate",
    "sprig",
    "helm-funcs",
    "kyverno",
];

fn known_failures(corpus: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("known-failures")
        .join(format!("{corpus}.txt"))
}

/// Runs `corpus` from `cases`, prints each case that did not pass (marked `known` when `list`
/// names it), and judges the run against `list`.
fn run_corpus(corpus: &str, cases: &Path, list: &Path) -> Verdict {
    let known = KnownFailures::load(list).unwrap_or_else(|err| panic!("{err}"));
    let text = std::fs::read_to_string(cases)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", cases.display()));
    let all: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not a JSON array: {err}", cases.display()));
    // The binary names an unnamed case the same way.
    let names: Vec<&str> = all
        .iter()
        .map(|case| case["name"].as_str().unwrap_or("<unnamed>"))
        .collect();

    let output = Command::new(env!("CARGO_BIN_EXE_ferroflux-conformance"))
        .arg(corpus)
        .arg(cases)
        .output()
        .expect("the conformance binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{corpus}: the conformance binary failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let mut not_passing = BTreeSet::new();
    for line in stdout.lines() {
        let Some(rest) = line
            .strip_prefix("FAIL ")
            .or_else(|| line.strip_prefix("SKIP "))
        else {
            continue;
        };
        let name = serde_json::Deserializer::from_str(rest)
            .into_iter::<String>()
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("{corpus}: no quoted case name in {line:?}"));
        eprintln!("{corpus}: {line}{}", known.mark(&name));
        not_passing.insert(name);
    }
    let verdict = known.judge(names.iter().map(|&n| (n, !not_passing.contains(n))));
    let reported_passed = summary.split(' ').next().and_then(|n| n.parse().ok());
    assert_eq!(
        reported_passed,
        Some(verdict.passed),
        "{corpus}: the binary's summary {summary:?} disagrees with the cases it named"
    );
    verdict
}

#[test]
fn public_corpora_fail_only_their_known_failures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    if !root.is_dir() {
        ferroflux_testpeers::skip("../shared/conformance is absent, no corpus to run");
        return;
    }
    let mut disagreements = Vec::new();
    for corpus in CORPORA {
        let cases = root.join(corpus).join("cases.json");
        if !cases.is_file() {
            ferroflux_testpeers::skip(format!("{corpus}: {} is absent", cases.display()));
            continue;
        }
        let verdict = run_corpus(corpus, &cases, &known_failures(corpus));
        eprintln!("{corpus}: {verdict}");
        if !verdict.holds() {
            disagreements.push(format!("{corpus}: {verdict}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Runs a made-up semver corpus, one case that passes and two whose expectation is wrong
/// (their names hold `: `, as many corpus names do), against a list holding `list`.
fn run_made_up_corpus(list: &str) -> Verdict {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = serde_json::json!([
        {"name": "parses", "kind": "parse", "version": "1.2.3", "valid": true},
        {"name": "wrong: listed", "kind": "parse", "version": "1.2.3", "valid": false},
        {"name": "wrong: new", "kind": "compare", "a": "1.0.0", "b": "2.0.0", "expected": 1},
    ]);
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, cases.to_string()).expect("write the made-up corpus");
    let list_path = dir.path().join("semver.txt");
    std::fs::write(&list_path, list).expect("write the list");
    run_corpus("semver", &cases_path, &list_path)
}

#[test]
fn one_unlisted_failure_breaks_a_corpus_whose_listed_failures_hold() {
    let verdict = run_made_up_corpus("# made up to fail\nwrong: listed\n");
    assert!(!verdict.holds());
    assert_eq!((verdict.passed, verdict.failed, verdict.known), (1, 2, 1));
    assert_eq!(verdict.new_failures, ["wrong: new"]);
}

#[test]
fn a_listed_case_that_passes_breaks_the_corpus_until_taken_off_the_list() {
    let verdict = run_made_up_corpus("parses\nwrong: listed\nwrong: new\n");
    assert!(!verdict.holds());
    assert_eq!(verdict.now_passing, ["parses"]);
    assert!(verdict.new_failures.is_empty());
}
