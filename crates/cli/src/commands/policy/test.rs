//! `ferroflux policy test DIR...`: Kyverno's `kyverno test` on ferroflux's engine. Finds every
//! `kyverno-test.yaml` under the directories, evaluates its resources against its policies
//! with `ferroflux_policy::PolicySet::evaluate`, prints Kyverno's result table per test and
//! `Test Summary: N tests passed and M tests failed`, and fails when a result differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use ferroflux_policy::PolicySet;
use serde_json::Value;

use super::load::{self, Test};
use super::report::{self, Counts, Evaluated, Refused};

/// Run tests from local directories, like `kyverno test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Directories searched (recursively) for test files.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Test file name.
    #[arg(short = 'f', long = "file-name", default_value = "kyverno-test.yaml")]
    file_name: String,
    /// Add the MESSAGE column (the engine's message for each rule).
    #[arg(long)]
    detailed_results: bool,
}

pub fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for dir in &args.dirs {
        files.extend(load::find_tests(dir, &args.file_name)?);
    }
    if files.is_empty() {
        outln!()?;
        outln!("No test yamls available")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut counts = Counts::default();
    for file in &files {
        let tests = load::tests(file).context("Test errors")?;
        for test in tests {
            if test.deprecated() {
                bail!(
                    "test file {} uses a deprecated schema — please migrate to the latest format",
                    file.display()
                );
            }
            run_test(file, test, args.detailed_results, &mut counts)?;
        }
    }
    outln!()?;
    outln!(
        "Test Summary: {} tests passed and {} tests failed",
        counts.pass + counts.skip,
        counts.fail
    )?;
    outln!()?;
    if counts.fail > 0 {
        bail!("{} tests failed", counts.fail);
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads, evaluates and prints one test, adding its rows to `counts`.
fn run_test(file: &Path, test: Test, detailed: bool, counts: &mut Counts) -> anyhow::Result<()> {
    if test.results.is_empty() {
        return Ok(());
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    outln!("Loading test  ( {} ) ...", display_path(file))?;
    outln!("  Loading values/variables ...")?;
    let (test, values) = load::values(test, dir)?;
    outln!("  Loading policies ...")?;
    let policies = load::policies(&test, dir)?;
    outln!("  Loading resources ...")?;
    let resources = load::resources(&test, dir)?;
    outln!(
        "  Applying {} to {} ...",
        plural(policies.len(), "policy", "policies"),
        plural(resources.len(), "resource", "resources")
    )?;
    let mut refused = Refused::default();
    let loaded: Vec<(String, PolicySet)> = policies
        .iter()
        .filter_map(|policy| {
            let (set, errors) = PolicySet::from_objects(std::slice::from_ref(policy));
            refused.record(errors);
            (!set.is_empty()).then(|| (name_of(policy), set))
        })
        .collect();
    for (policy, why) in refused
        .policies
        .iter()
        .chain(refused.rules.iter().map(|((policy, _), why)| (policy, why)))
    {
        outln!("  ERROR: {policy}: {why}")?;
    }
    let evaluated: Vec<Evaluated> = resources
        .into_iter()
        .map(|resource| {
            let responses: BTreeMap<String, _> = loaded
                .iter()
                .map(|(name, set)| (name.clone(), set.evaluate(&values.request(name, &resource))))
                .collect();
            Evaluated {
                resource,
                responses,
            }
        })
        .collect();
    outln!("  Checking results ...")?;
    let rows = report::judge(&test.results, &evaluated, &refused, counts);
    outln!()?;
    outln!("{}", report::table(&rows, detailed))?;
    outln!()?;
    Ok(())
}

fn name_of(policy: &Value) -> String {
    policy["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Go's `filepath.Clean` leaves no leading `./`; Kyverno prints paths that way.
fn display_path(path: &Path) -> String {
    let text = path.display().to_string();
    text.strip_prefix("./").unwrap_or(&text).to_string()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
