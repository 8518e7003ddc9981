//! `ferroflux policy test DIR` runs Kyverno CLI tests (`kyverno-test.yaml`) on the policy
//! engine: the fixtures under `tests/fixtures/policy-test` hold a Flux source-URL allowlist
//! ClusterPolicy with passing and failing resources (`pass`) and a test whose expectations
//! are wrong (`fail`), which must exit 1 naming the rows.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy-test")
}

fn policy_test(dir: &Path, extra: &[&str]) -> Output {
    Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["policy", "test"])
        .arg(dir)
        .args(extra)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The table row numbered `id`, split into its cells.
fn row(stdout: &str, id: usize) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            line.split('│')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.get(1).map(String::as_str) == Some(id.to_string().as_str()))
        .unwrap_or_else(|| panic!("no row {id} in:\n{stdout}"))
}

#[test]
fn the_allowlist_fixtures_pass_with_kyvernos_table_and_summary() {
    let output = policy_test(&fixtures().join("pass"), &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("  Applying 1 policy to 5 resources ...\n  Checking results ...\n"),
        "{out}"
    );
    let header: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("│ ID"))
        .expect("a header")
        .split('│')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["ID", "POLICY", "RULE", "RESOURCE", "RESULT", "REASON"]
    );
    // The fork in team-a fails the rule as the test expects: the test passes.
    assert_eq!(
        row(&out, 2)[2..7],
        [
            "flux-source-allowlist",
            "git-url-allowlist",
            "source.toolkit.fluxcd.io/v1/GitRepository/team-a/random-fork",
            "Pass",
            "Ok"
        ]
    );
    // The same fork in the sandbox namespace (labelled in values.yaml) is excluded.
    assert_eq!(row(&out, 3)[5..7], ["Pass", "Excluded"]);
    // A resource without a namespace is in `default`, as the Kyverno CLI puts it.
    assert!(row(&out, 5)[4].ends_with("OCIRepository/default/elsewhere"));
    assert!(
        out.ends_with("\nTest Summary: 5 tests passed and 0 tests failed\n\n"),
        "{out}"
    );
}

#[test]
fn a_wrong_expectation_fails_with_exit_1_and_names_the_row() {
    let output = policy_test(&fixtures().join("fail"), &["--detailed-results"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let wrong = row(&out, 1);
    assert_eq!(
        wrong[4],
        "source.toolkit.fluxcd.io/v1/GitRepository/team-a/random-fork"
    );
    assert_eq!(wrong[5..7], ["Fail", "Want pass, got fail"]);
    assert!(
        wrong[7].contains("GitRepository url must be under https://git.acme.example/"),
        "the engine's message: {wrong:?}"
    );
    assert_eq!(
        row(&out, 3)[4..7],
        ["OCIRepository/missing", "Fail", "Not found"]
    );
    assert!(
        out.contains("Test Summary: 1 tests passed and 2 tests failed"),
        "{out}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 tests failed"), "{stderr}");
}

#[test]
fn every_test_under_a_directory_runs_in_name_order() {
    let output = policy_test(&fixtures(), &[]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let loaded: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("Loading test"))
        .collect();
    assert_eq!(loaded.len(), 2, "{out}");
    assert!(
        loaded[0].contains("fail/kyverno-test.yaml")
            && loaded[1].contains("pass/kyverno-test.yaml")
    );
    assert!(
        out.contains("Test Summary: 6 tests passed and 2 tests failed"),
        "{out}"
    );
}

/// Writes a test directory with `policy.yaml`, `resources.yaml` and `kyverno-test.yaml`.
fn scratch(policy: &str, test: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let resources =
        std::fs::read_to_string(fixtures().join("pass/resources.yaml")).expect("fixture");
    std::fs::write(dir.path().join("policy.yaml"), policy).expect("write");
    std::fs::write(dir.path().join("resources.yaml"), resources).expect("write");
    std::fs::write(dir.path().join("kyverno-test.yaml"), test).expect("write");
    dir
}

const TEST_HEAD: &str = "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\n\
policies: [policy.yaml]\nresources: [resources.yaml]\n";

#[test]
fn a_rule_the_engine_cannot_evaluate_fails_its_rows_instead_of_passing_them() {
    let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: label}\n\
spec:\n  rules:\n    - name: add-label\n      match: {any: [{resources: {kinds: [GitRepository]}}]}\n\
      mutate: {patchStrategicMerge: {metadata: {labels: {team: a}}}}\n";
    let test = format!(
        "{TEST_HEAD}results:\n  - {{policy: label, rule: add-label, kind: GitRepository, resources: [platform], result: pass}}\n"
    );
    let dir = scratch(policy, &test);
    let output = policy_test(dir.path(), &["--detailed-results"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("  ERROR: label: policy label rule add-label: "),
        "{out}"
    );
    assert_eq!(row(&out, 1)[5..7], ["Fail", "Not supported"]);
}

#[test]
fn test_fields_it_cannot_honour_and_the_deprecated_schema_are_refused() {
    let policy = std::fs::read_to_string(fixtures().join("pass/policy.yaml")).expect("fixture");
    let exceptions = format!("{TEST_HEAD}exceptions: [polex.yaml]\nresults: []\n");
    let output = policy_test(scratch(&policy, &exceptions).path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("unknown field `exceptions`"), "{stderr}");

    let old = "name: old\npolicies: [policy.yaml]\nresources: [resources.yaml]\nresults: []\n";
    let output = policy_test(scratch(&policy, old).path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("uses a deprecated schema"), "{stderr}");
}
