//! Judging a test's expected results against the engine's responses, and Kyverno's result
//! table (`│`-bordered, `ID POLICY RULE RESOURCE RESULT REASON [MESSAGE]`).

use std::collections::BTreeMap;

use ferroflux_policy::{PolicyError, RuleResponse};
use serde_json::Value;

use super::load::TestResult;

/// One evaluated resource with every rule response of every policy.
pub struct Evaluated {
    /// The resource as loaded (namespace defaulted).
    pub resource: Value,
    /// Responses keyed by the policy's name (results may write `namespace/name`).
    pub responses: BTreeMap<String, Vec<RuleResponse>>,
}

/// What the engine could not load: policy key → problem, and (policy, rule) → problem.
#[derive(Default)]
pub struct Refused {
    /// Policies left out entirely.
    pub policies: BTreeMap<String, String>,
    /// Rules left out of a loaded policy.
    pub rules: BTreeMap<(String, String), String>,
}

impl Refused {
    /// Records the engine's load errors.
    pub fn record(&mut self, errors: Vec<PolicyError>) {
        for error in errors {
            match &error.rule {
                Some(rule) => self
                    .rules
                    .insert((error.policy.clone(), rule.clone()), error.to_string()),
                None => self
                    .policies
                    .insert(error.policy.clone(), error.to_string()),
            };
        }
    }
}

/// One row of the table.
pub struct Row {
    policy: String,
    rule: String,
    resource: String,
    /// The test passed.
    pub passed: bool,
    reason: String,
    message: String,
    /// A passing row that expected `skip`: Kyverno counts it as skipped.
    skipped: bool,
}

/// Passed (and skipped, which Kyverno counts as passed) and failed rows.
#[derive(Default)]
pub struct Counts {
    /// Rows that passed expecting anything but `skip`.
    pub pass: usize,
    /// Rows that passed expecting `skip`, or whose resource the rule did not select.
    pub skip: usize,
    /// Rows that failed.
    pub fail: usize,
}

/// Checks every expected result; the rows in order, counted into `counts`.
pub fn judge(
    results: &[TestResult],
    evaluated: &[Evaluated],
    refused: &Refused,
    counts: &mut Counts,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for result in results {
        for name in result.resource_names() {
            let found: Vec<&Evaluated> = evaluated
                .iter()
                .filter(|e| selects(result, &name, &e.resource))
                .collect();
            if found.is_empty() {
                let shown = match result.namespace.as_str() {
                    "" => format!("{}/{name}", result.kind),
                    namespace => format!("{namespace}/{}/{name}", result.kind),
                };
                rows.push(failure(result, &shown, "Not found", "Not found".into()));
            }
            for e in found {
                rows.extend(judge_resource(result, e, refused));
            }
        }
    }
    for row in &rows {
        if !row.passed {
            counts.fail += 1;
        } else if row.skipped {
            counts.skip += 1;
        } else {
            counts.pass += 1;
        }
    }
    rows
}

/// Whether `resource` is the one a result names: its name (or `namespace/name`), its kind
/// and, when the result gives one, its namespace.
fn selects(result: &TestResult, name: &str, resource: &Value) -> bool {
    let meta = |k: &str| resource["metadata"][k].as_str().unwrap_or_default();
    let named = match name.split_once('/') {
        Some((namespace, name)) => meta("namespace") == namespace && meta("name") == name,
        None => meta("name") == name,
    };
    named
        && resource["kind"].as_str() == Some(result.kind.as_str())
        && (result.namespace.is_empty() || meta("namespace") == result.namespace)
}

fn judge_resource(result: &TestResult, e: &Evaluated, refused: &Refused) -> Vec<Row> {
    let display = display_resource(&e.resource);
    let policy_name = result.policy.rsplit('/').next().unwrap_or_default();
    if let Some(why) = refused.policies.get(policy_name) {
        return vec![failure(result, &display, "Not supported", why.clone())];
    }
    if let Some(why) = refused
        .rules
        .get(&(policy_name.to_string(), result.rule.clone()))
    {
        return vec![failure(result, &display, "Not supported", why.clone())];
    }
    let Some(responses) = e.responses.get(policy_name) else {
        return vec![failure(result, &display, "Not found", "Not found".into())];
    };
    let names = [
        result.rule.clone(),
        format!("autogen-{}", result.rule),
        format!("autogen-cronjob-{}", result.rule),
    ];
    let rows: Vec<Row> = responses
        .iter()
        .filter(|r| names.contains(&r.rule))
        .map(|r| {
            let got = r.status.as_str();
            let ok = got == result.expected();
            Row {
                policy: result.policy.clone(),
                rule: r.rule.clone(),
                resource: display.clone(),
                passed: ok,
                reason: if ok {
                    "Ok".into()
                } else {
                    format!("Want {}, got {got}", result.expected())
                },
                message: r.message.clone(),
                skipped: ok && result.expected() == "skip",
            }
        })
        .collect();
    if rows.is_empty() {
        // The rule does not select the resource: Kyverno scores that as passed (excluded).
        return vec![Row {
            policy: result.policy.clone(),
            rule: result.rule.clone(),
            resource: display,
            passed: true,
            reason: "Excluded".into(),
            message: "Excluded".into(),
            skipped: true,
        }];
    }
    rows
}

fn failure(result: &TestResult, resource: &str, reason: &str, message: String) -> Row {
    Row {
        policy: result.policy.clone(),
        rule: result.rule.clone(),
        resource: resource.to_string(),
        passed: false,
        reason: reason.into(),
        message,
        skipped: false,
    }
}

/// `apiVersion/Kind/namespace/name` (no namespace part for cluster-scoped resources).
fn display_resource(resource: &Value) -> String {
    let field = |p: &str| {
        resource
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    [
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/namespace"),
        field("/metadata/name"),
    ]
    .into_iter()
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join("/")
}

/// Kyverno's table of `rows`, numbered from 1, with the MESSAGE column when `detailed`.
pub fn table(rows: &[Row], detailed: bool) -> String {
    let mut header = vec!["ID", "POLICY", "RULE", "RESOURCE", "RESULT", "REASON"];
    if detailed {
        header.push("MESSAGE");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut cells = vec![
                (i + 1).to_string(),
                row.policy.clone(),
                row.rule.clone(),
                row.resource.clone(),
                if row.passed { "Pass" } else { "Fail" }.to_string(),
                row.reason.clone(),
            ];
            if detailed {
                cells.push(row.message.replace('\n', " "));
            }
            cells
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let rule: String = widths.iter().fold("│".to_string(), |line, w| {
        format!("{line}{}│", "─".repeat(w + 2))
    });
    let line = |cells: &[&str]| -> String {
        cells
            .iter()
            .zip(&widths)
            .fold("│".to_string(), |line, (cell, w)| {
                let pad = w - cell.chars().count();
                format!("{line} {cell}{} │", " ".repeat(pad))
            })
    };
    let mut out = vec![rule.clone(), line(&header), rule.clone()];
    for row in &cells {
        out.push(line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out.push(rule);
    out.join("\n")
}
