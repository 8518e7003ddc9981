//! The `imagepolicy` corpus: Flux ImagePolicy tag selection and `filterTags`.

use ferroflux_image::policy::{self, FilterTagsSpec, Policer, PolicySpec, TagFilter};
use serde_json::Value;

use crate::Outcome;

/// Judges one case of `imagepolicy/cases.json`.
pub fn run(case: &Value) -> Outcome {
    match judge(case) {
        Ok(outcome) => outcome,
        Err(why) => Outcome::Fail(why),
    }
}

fn tags(case: &Value) -> Result<Vec<String>, String> {
    match &case["tags"] {
        Value::Null => Ok(Vec::new()),
        value => serde_json::from_value(value.clone()).map_err(|e| format!("bad \"tags\": {e}")),
    }
}

fn judge(case: &Value) -> Result<Outcome, String> {
    let filter: Option<FilterTagsSpec> = match &case["filterTags"] {
        Value::Null => None,
        value => Some(
            serde_json::from_value(value.clone())
                .map_err(|e| format!("bad \"filterTags\": {e}"))?,
        ),
    };
    if let Some(expected) = case.get("expectedFiltered") {
        let expected: Vec<String> = serde_json::from_value(expected.clone())
            .map_err(|e| format!("bad \"expectedFiltered\": {e}"))?;
        let spec = filter.unwrap_or_default();
        let filter = match TagFilter::new(&spec) {
            Ok(filter) => filter,
            Err(err) => return Ok(Outcome::Fail(format!("unexpected error: {err}"))),
        };
        let tags = tags(case)?;
        let actual: Vec<String> = filter.apply(&tags).into_iter().map(|(v, _)| v).collect();
        return Ok(if actual == expected {
            Outcome::Pass
        } else {
            Outcome::Fail(format!("expected {expected:?}, got {actual:?}"))
        });
    }
    let spec: PolicySpec = serde_json::from_value(case["policy"].clone())
        .map_err(|e| format!("bad \"policy\": {e}"))?;
    let expected = &case["expected"];
    let built = Policer::from_spec(&spec).and_then(|policer| {
        let filter = filter.as_ref().map(TagFilter::new).transpose()?;
        Ok((policer, filter))
    });
    if expected["valid"].as_bool() == Some(true) {
        return Ok(match built {
            Ok(_) => Outcome::Pass,
            Err(err) => Outcome::Fail(format!("expected a valid policy, got error: {err}")),
        });
    }
    let wants_error = expected["error"].as_bool() == Some(true);
    let tags = tags(case)?;
    let result =
        built.and_then(|(policer, filter)| policy::select_with(&policer, filter.as_ref(), &tags));
    Ok(match (result, expected.as_str()) {
        (Err(_), _) if wants_error => Outcome::Pass,
        (Ok(tag), _) if wants_error => Outcome::Fail(format!("expected an error, got {tag:?}")),
        (Ok(tag), Some(want)) if tag == want => Outcome::Pass,
        (Ok(tag), Some(want)) => Outcome::Fail(format!("expected {want:?}, got {tag:?}")),
        (Err(err), Some(want)) => Outcome::Fail(format!("expected {want:?}, got error: {err}")),
        (_, None) => Outcome::Skip(format!("unknown expectation {expected}")),
    })
}
