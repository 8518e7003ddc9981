//! `ferroflux-conformance <corpus> <cases.json>`: runs one corpus of `../shared/conformance`
//! against our engines and prints one line per failing case, then `N passed, N failed`.
//!
//! A failing case's line is `FAIL "<name>": <why>` (`SKIP` for a case it cannot judge), the
//! name quoted as a JSON string: names contain `: `, and the harness test reads them back to
//! hold each corpus to its list of known failures.

use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

mod gotemplate;
mod imagepolicy;
mod kyverno;
mod semver;

/// A case may not take longer than this; a hang is a failure, not a stuck harness.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// What one case came to.
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A corpus runner: judges one case object of its `cases.json`.
type Runner = fn(&Value) -> Outcome;

fn runner_for(corpus: &str) -> Option<Runner> {
    match corpus {
        // Each engine registers its corpus here.
        "semver" => Some(semver::run),
        "imagepolicy" => Some(imagepolicy::run),
        "gotemplate" => Some(gotemplate::run_gotemplate),
        "sprig" => Some(gotemplate::run_sprig),
        "helm-funcs" => Some(gotemplate::run_helm),
        "kyverno" => Some(kyverno::run),
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [corpus, path] = args.as_slice() else {
        eprintln!("usage: ferroflux-conformance <corpus> <path-to-cases.json>");
        return ExitCode::from(2);
    };
    let Some(runner) = runner_for(corpus) else {
        eprintln!("unknown corpus {corpus:?}: no engine registers it");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("cannot read {path}: {err}");
            return ExitCode::from(2);
        }
    };
    let cases: Vec<Value> = match serde_json::from_str(&text) {
        Ok(cases) => cases,
        Err(err) => {
            eprintln!("{path} is not a JSON array of cases: {err}");
            return ExitCode::from(2);
        }
    };
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for case in cases {
        let name = Value::from(case["name"].as_str().unwrap_or("<unnamed>"));
        match run_with_time_limit(runner, case) {
            Outcome::Pass => passed += 1,
            Outcome::Fail(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
            Outcome::Skip(why) => {
                skipped += 1;
                println!("SKIP {name}: {why}");
            }
        }
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    ExitCode::SUCCESS
}

/// Runs a case on its own thread so that a panic or a hang in an engine fails that case only.
fn run_with_time_limit(runner: Runner, case: Value) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new().stack_size(64 << 20).spawn(move || {
        let _ = tx.send(runner(&case));
    });
    if let Err(err) = spawned {
        return Outcome::Fail(format!("cannot start the case's thread: {err}"));
    }
    match rx.recv_timeout(CASE_TIME_LIMIT) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Outcome::Fail(format!("no result within {CASE_TIME_LIMIT:?}"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::Fail("the engine panicked".into()),
    }
}
