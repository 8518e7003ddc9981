//! The `semver` corpus: Masterminds/semver v3 parsing, ordering and constraint checks.

use std::cmp::Ordering;

use ferroflux_semver::{Constraints, Version};
use serde_json::Value;

use crate::Outcome;

/// Judges one case of `semver/cases.json`.
pub fn run(case: &Value) -> Outcome {
    match judge(case) {
        Ok(outcome) => outcome,
        Err(why) => Outcome::Fail(why),
    }
}

fn text<'a>(case: &'a Value, field: &str) -> Result<&'a str, String> {
    case[field]
        .as_str()
        .ok_or_else(|| format!("case has no string field {field:?}"))
}

fn flag(case: &Value, field: &str) -> Result<bool, String> {
    case[field]
        .as_bool()
        .ok_or_else(|| format!("case has no boolean field {field:?}"))
}

fn version(s: &str) -> Result<Version, String> {
    Version::parse(s).map_err(|e| format!("unexpected parse error: {e}"))
}

fn compare<T: PartialEq + std::fmt::Debug>(expected: T, actual: T) -> Outcome {
    if expected == actual {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("expected {expected:?}, got {actual:?}"))
    }
}

fn judge(case: &Value) -> Result<Outcome, String> {
    let kind = text(case, "kind")?;
    Ok(match kind {
        "check" => {
            let constraint = Constraints::parse(text(case, "constraint")?)
                .map_err(|e| format!("unexpected constraint error: {e}"))?
                .with_include_prerelease(case["includePrerelease"].as_bool().unwrap_or(false));
            let v = version(text(case, "version")?)?;
            compare(flag(case, "expected")?, constraint.check(&v))
        }
        "parse" => {
            let input = text(case, "version")?;
            let parsed = if case["strict"].as_bool().unwrap_or(false) {
                Version::parse_strict(input)
            } else {
                Version::parse(input)
            };
            compare(flag(case, "valid")?, parsed.is_ok())
        }
        "constraint-parse" => compare(
            flag(case, "valid")?,
            Constraints::parse(text(case, "constraint")?).is_ok(),
        ),
        "string" => compare(
            text(case, "string")?.to_string(),
            version(text(case, "version")?)?.to_string(),
        ),
        "compare" => {
            let ord = version(text(case, "a")?)?.compare(&version(text(case, "b")?)?);
            let actual = match ord {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            compare(
                case["expected"]
                    .as_i64()
                    .ok_or("case has no integer \"expected\"")?,
                actual,
            )
        }
        "order" => {
            let (a, b) = (version(text(case, "a")?)?, version(text(case, "b")?)?);
            let actual = match text(case, "op")? {
                "lt" => a < b,
                "le" => a <= b,
                "gt" => a > b,
                "ge" => a >= b,
                "eq" => a == b,
                other => return Ok(Outcome::Skip(format!("unknown order op {other:?}"))),
            };
            compare(flag(case, "expected")?, actual)
        }
        other => Outcome::Skip(format!("unknown case kind {other:?}")),
    })
}
