//! Semver selection shared by git tags and OCI tags: Masterminds constraints, highest wins.

use ferroflux_semver::{Constraints, Version};

/// Why a semver range could not be applied.
#[derive(Debug, thiserror::Error)]
#[error(
    "semver range {range:?} does not parse: {source}; use Masterminds syntax such as \">=1.0.0 <2.0.0\""
)]
pub struct RangeError {
    range: String,
    #[source]
    source: ferroflux_semver::ConstraintError,
}

/// Parses a Flux semver range.
pub(crate) fn parse_range(range: &str) -> Result<Constraints, RangeError> {
    Constraints::parse(range).map_err(|source| RangeError {
        range: range.to_string(),
        source,
    })
}

/// The tag whose version is the highest satisfying `range`; tags that are no version are
/// skipped, as Flux does. Ties (`v1.0.0` and `1.0.0`) keep the first in input order.
pub(crate) fn pick_highest<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    range: &Constraints,
) -> Option<(&'a str, Version)> {
    let mut best: Option<(&'a str, Version)> = None;
    for tag in tags {
        // As fluxcd/pkg/version: strict SemVer after one optional leading `v`.
        let Ok(version) = Version::parse_tag(tag) else {
            continue;
        };
        if !range.check(&version) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| version > *b) {
            best = Some((tag, version));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_stable_in_range_and_skips_prereleases_and_non_versions() {
        let range = parse_range(">=1.0.0").expect("valid range");
        let tags = [
            "0.9.0",
            "1.0.0",
            "latest",
            "1.2.0",
            "2.0.0-rc.1",
            "main-abc",
        ];
        let (tag, _) = pick_highest(tags, &range).expect("a match");
        assert_eq!(tag, "1.2.0");
    }

    #[test]
    fn tags_must_be_strict_semver_after_one_v() {
        let range = parse_range(">=1.0.0").expect("valid range");
        let (tag, _) =
            pick_highest(["v1.1.0", "3.0", "v4", "5.0.0.1", "1.0.0"], &range).expect("a match");
        assert_eq!(tag, "v1.1.0", "3.0, v4 and 5.0.0.1 are not strict versions");
    }

    #[test]
    fn nothing_matches_gives_none() {
        let range = parse_range(">=3.0.0").expect("valid range");
        assert!(pick_highest(["1.0.0", "2.0.0"], &range).is_none());
    }

    #[test]
    fn bad_range_names_the_range() {
        let err = parse_range(">=>1").expect_err("invalid range");
        assert!(err.to_string().contains(">=>1"), "{err}");
    }
}
