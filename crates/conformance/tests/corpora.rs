//! Runs the conformance harness on every public corpus in `../shared/conformance` and holds
//! each engine to its acceptance bar. Skips, saying so, when `../shared` is absent.

use std::path::PathBuf;
use std::process::Command;

/// (corpus, lowest accepted pass ratio). Engines add their corpus when they land.
const CORPORA: &[(&str, f64)] = &[
    ("semver", 1.0),
    ("imagepolicy", 1.0),
    ("gotemplate", 0.95),
    ("sprig", 0.90),
    ("helm-funcs", 0.90),
];

fn shared_conformance() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    dir.is_dir().then_some(dir)
}

#[test]
fn public_corpora_meet_their_bar() {
    let Some(root) = shared_conformance() else {
        ferroflux_testpeers::skip("../shared/conformance is absent, no corpus to run");
        return;
    };
    let mut shortfalls = Vec::new();
    for (corpus, bar) in CORPORA {
        let cases = root.join(corpus).join("cases.json");
        if !cases.is_file() {
            ferroflux_testpeers::skip(format!("{corpus}: {} is absent", cases.display()));
            continue;
        }
        let output = Command::new(env!("CARGO_BIN_EXE_ferroflux-conformance"))
            .arg(corpus)
            .arg(&cases)
            .output()
            .expect("the conformance binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or_default().to_string();
        let counts: Vec<usize> = last
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("digits"))
            .collect();
        let (passed, failed) = (counts[0], counts[1]);
        let skipped = counts.get(2).copied().unwrap_or(0);
        let ratio = passed as f64 / (passed + failed + skipped).max(1) as f64;
        eprintln!("{corpus}: {last}");
        if ratio < *bar {
            shortfalls.push(format!(
                "{corpus}: {last} is below {:.0}%\n{stdout}",
                bar * 100.0
            ));
        }
    }
    assert!(shortfalls.is_empty(), "{}", shortfalls.join("\n"));
}
