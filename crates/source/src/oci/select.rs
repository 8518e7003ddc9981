//! Pure OCI tag selection: Flux's `ref.semver` with `ref.semverFilter`.

use crate::version::{parse_range, pick_highest};

use super::OciError;

/// An OCIRepository's `spec.ref`. Precedence as Flux: digest > semver > tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciRef {
    /// `tag` (default `latest`).
    pub tag: Option<String>,
    /// `semver`: a Masterminds range over the tags.
    pub semver: Option<String>,
    /// `semverFilter`: only tags matching this regex are considered for `semver`.
    pub semver_filter: Option<String>,
    /// `digest`: `sha256:<hex>`.
    pub digest: Option<String>,
}

/// The tag with the highest version in `range` among `tags`, considering only tags that
/// match `filter` (a regex) when given; `Ok(None)` when none matches.
///
/// # Errors
/// [`OciError::Range`] or [`OciError::Filter`] for an invalid range or regex.
pub fn select_tag(
    tags: &[String],
    range: &str,
    filter: Option<&str>,
) -> Result<Option<String>, OciError> {
    let constraints = parse_range(range)?;
    let filter = compile_filter(filter)?;
    let candidates = tags
        .iter()
        .map(String::as_str)
        .filter(|t| filter.as_ref().is_none_or(|re| re.is_match(t)));
    Ok(pick_highest(candidates, &constraints).map(|(t, _)| t.to_string()))
}

/// Every tag whose version is within `range` (and matches `filter`), highest version first:
/// `flux list artifacts --filter-semver`.
///
/// # Errors
/// [`OciError::Range`] or [`OciError::Filter`] for an invalid range or regex.
pub fn matching_tags(
    tags: &[String],
    range: &str,
    filter: Option<&str>,
) -> Result<Vec<String>, OciError> {
    let constraints = parse_range(range)?;
    let filter = compile_filter(filter)?;
    let mut out: Vec<(ferroflux_semver::Version, &String)> = tags
        .iter()
        .filter(|t| filter.as_ref().is_none_or(|re| re.is_match(t)))
        .filter_map(|t| ferroflux_semver::Version::parse(t).ok().map(|v| (v, t)))
        .filter(|(v, _)| constraints.check(v))
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(out.into_iter().map(|(_, t)| t.clone()).collect())
}

fn compile_filter(filter: Option<&str>) -> Result<Option<regex::Regex>, OciError> {
    match filter.filter(|f| !f.is_empty()) {
        Some(f) => regex::Regex::new(f)
            .map(Some)
            .map_err(|source| OciError::Filter {
                filter: f.to_string(),
                source,
            }),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn semver_range_picks_highest_stable() {
        let t = tags(&["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1", "latest"]);
        assert_eq!(
            select_tag(&t, ">=1.0.0", None).expect("valid"),
            Some("1.2.0".into())
        );
        assert_eq!(
            select_tag(&t, ">=2.0.0-0", None).expect("valid"),
            Some("2.0.0-rc.1".into())
        );
    }

    #[test]
    fn matching_tags_lists_all_in_range_highest_first() {
        let t = tags(&["0.9.0", "1.0.0", "latest", "1.2.0", "2.0.0-rc.1", "1.1.0"]);
        assert_eq!(
            matching_tags(&t, ">=1.0.0", None).expect("valid"),
            ["1.2.0", "1.1.0", "1.0.0"]
        );
    }

    #[test]
    fn filter_limits_candidates() {
        let t = tags(&["1.0.0-dev", "1.1.0-dev", "1.5.0"]);
        assert_eq!(
            select_tag(&t, ">=1.0.0-0", Some(".*-dev$")).expect("valid"),
            Some("1.1.0-dev".into())
        );
        assert!(matches!(
            select_tag(&t, ">=1", Some("(")),
            Err(OciError::Filter { .. })
        ));
    }
}
