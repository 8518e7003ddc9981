//! The generated CRDs accept what upstream's CRDs accept: every field, type and enum value
//! (`compare.py` from `../shared/conformance/upstream-crds`), and for the Flux kinds the same
//! validation keywords (patterns, bounds, defaults, required, formats, CEL rules). Each check is
//! held to a checked-in list, so one new gap is red and a listed one that closes must leave it.
//! Skips, saying so, when `../shared` or python3 with PyYAML is absent; under `CI=true` that fails.

mod upstream;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflux_api::crds;
use ferroflux_testpeers::KnownFailures;
use upstream::tools;

/// Groups whose kinds must match upstream's validation keywords too (Flux's own groups).
const FLUX_GROUP_SUFFIX: &str = ".fluxcd.io";

fn list(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/known-failures")
        .join(name)
}

/// Every CRD we serve as one multi-document YAML file, as `install --export` writes them.
fn write_ours(dir: &Path) -> PathBuf {
    let mut yaml = String::new();
    for crd in crds::all() {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    let path = dir.join("ours.yaml");
    std::fs::write(&path, yaml).expect("the temp dir is writable");
    path
}

fn python(args: &[&Path]) -> String {
    let output = Command::new("python3")
        .args(args)
        .output()
        .expect("python3 ran a moment ago");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // compare.py exits 1 when a row fails; anything else, or a traceback, is a broken run.
    assert!(
        output.status.code().is_some_and(|c| c <= 1) && output.stderr.is_empty(),
        "{:?} failed ({}): {}",
        args,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_upstream_kind_version_passes_compare_py_except_the_listed_ones() {
    let dir = match tools() {
        Ok(dir) => dir,
        Err(reason) => return ferroflux_testpeers::skip(reason),
    };
    let known =
        KnownFailures::load(list("upstream-crds.txt")).unwrap_or_else(|err| panic!("{err}"));
    let temp = tempfile::tempdir().expect("a temp dir");
    let ours = write_ours(temp.path());
    let stdout = python(&[&dir.join("compare.py"), &ours]);
    print!("{stdout}");

    let mut rows = Vec::new();
    for line in stdout.lines() {
        let (passed, rest) = if let Some(rest) = line.strip_prefix("ok   ") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            (false, rest)
        } else {
            continue;
        };
        let (row, _) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("no `group/version Kind:` in {line:?}"));
        rows.push((row.to_string(), passed));
    }
    let verdict = known.judge(rows.iter().map(|(row, passed)| (row.as_str(), *passed)));
    let passed = rows.iter().filter(|(_, passed)| *passed).count();
    let summary = format!("{passed} passed, {} failed", rows.len() - passed);
    assert_eq!(
        stdout.lines().last(),
        Some(summary.as_str()),
        "compare.py's summary disagrees with its rows"
    );
    assert!(verdict.holds(), "{verdict}");
}

#[test]
fn flux_kinds_carry_upstream_validation_keywords_except_the_listed_differences() {
    let dir = match tools() {
        Ok(dir) => dir,
        Err(reason) => return ferroflux_testpeers::skip(reason),
    };
    let listed_path = list("upstream-crd-keywords.txt");
    let listed = std::fs::read_to_string(&listed_path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", listed_path.display()));
    let listed: BTreeSet<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let temp = tempfile::tempdir().expect("a temp dir");
    let ours = write_ours(temp.path());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/schema_keywords.py");
    let stdout = python(&[&script, &dir, &ours, Path::new(FLUX_GROUP_SUFFIX)]);
    let found: BTreeSet<&str> = stdout.lines().collect();
    let new: Vec<&&str> = found.difference(&listed).collect();
    let gone: Vec<&&str> = listed.difference(&found).collect();
    for line in &found {
        println!("{line}");
    }
    assert!(
        new.is_empty() && gone.is_empty(),
        "differences not in {list}: {new:#?}\nlisted differences that are gone (remove them): {gone:#?}",
        list = listed_path.display()
    );
}
