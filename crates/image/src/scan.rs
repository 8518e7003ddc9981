//! What an ImageRepository scan decides around the registry call: the canonical name of
//! `spec.image` (go-containerregistry's `name.ParseReference` defaults), the tags
//! `spec.exclusionList` drops (Go `regexp`), the tags kept and their revision, and the
//! `lastScanResult.latestTags` Flux shows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many tags `lastScanResult.latestTags` shows.
pub const LATEST_TAGS: usize = 10;

/// The registry Docker Hub names resolve to, as go-containerregistry spells it.
pub const DOCKER_HUB: &str = "index.docker.io";

/// `spec.image` split into registry host and repository path, Docker Hub names normalised
/// (`nginx` -> `index.docker.io/library/nginx`), as go-containerregistry does for Flux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalImage {
    /// Registry host (with port), e.g. `ghcr.io`, `index.docker.io`.
    pub registry: String,
    /// Repository path, e.g. `library/nginx`.
    pub repository: String,
}

impl CanonicalImage {
    /// Parses `spec.image`.
    ///
    /// # Errors
    /// A message saying what is wrong: a URL scheme, a tag or digest, an empty or upper-case
    /// path.
    pub fn parse(image: &str) -> Result<Self, String> {
        let image = image.trim();
        if image.contains("://") {
            return Err(format!(
                "spec.image {image:?} must not start with a URL scheme; use HOST/REPOSITORY"
            ));
        }
        if image.contains('@') {
            return Err(format!(
                "spec.image {image:?} must not contain a digest; name the repository only"
            ));
        }
        let (host, path) = split_registry(image);
        if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            return Err(format!(
                "spec.image {image:?} must not contain a tag; name the repository only"
            ));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(format!(
                "spec.image {image:?} is not a valid repository name: path components are lower-case letters, digits and . _ -"
            ));
        }
        let registry = match host {
            None | Some("docker.io") | Some(DOCKER_HUB) => DOCKER_HUB.to_string(),
            Some(host) => host.to_string(),
        };
        // Docker Hub's official images live under `library/`.
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(CanonicalImage {
            registry,
            repository,
        })
    }

    /// `REGISTRY/REPOSITORY`, Flux's `status.canonicalImageName`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// The registry host of `image`, if it names one, and the repository path. As in
/// go-containerregistry, the first component is a host only when it looks like one (a dot, a
/// port or `localhost`); otherwise the name is Docker Hub's.
fn split_registry(image: &str) -> (Option<&str>, &str) {
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, image),
    }
}

fn valid_path_component(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// A pattern of `spec.exclusionList` that Go's `regexp` would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid spec.exclusionList pattern {pattern:?}: {source}")]
pub struct ExclusionError {
    /// The pattern as written.
    pub pattern: String,
    /// Go's reason.
    #[source]
    pub source: ferroflux_gocompat::regex::Error,
}

/// Compiled `spec.exclusionList`: a tag matching any pattern is dropped.
#[derive(Debug, Clone)]
pub struct Exclusions(Vec<ferroflux_gocompat::regex::Regex>);

impl Exclusions {
    /// Compiles the patterns with Go's `regexp` syntax and meaning, as Flux does.
    ///
    /// # Errors
    /// [`ExclusionError`] naming the first pattern that does not compile.
    pub fn new(patterns: &[String]) -> Result<Self, ExclusionError> {
        patterns
            .iter()
            .map(|pattern| {
                ferroflux_gocompat::regex::compile(pattern).map_err(|source| ExclusionError {
                    pattern: pattern.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Exclusions)
    }

    /// The tags no pattern matches, in their original order.
    pub fn apply(&self, tags: Vec<String>) -> Vec<String> {
        tags.into_iter()
            .filter(|t| !self.0.iter().any(|r| r.is_match(t)))
            .collect()
    }
}

/// The `LATEST_TAGS` tags Flux shows in `lastScanResult.latestTags`: reverse byte order.
pub fn latest_tags(tags: &[String]) -> Vec<String> {
    let mut sorted: Vec<String> = tags.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.truncate(LATEST_TAGS);
    sorted
}

/// The tags of one ImageRepository, as stored after a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTags {
    /// The canonical image name scanned.
    pub canonical_image_name: String,
    /// The tags left after exclusions, in the registry's order.
    pub tags: Vec<String>,
}

impl StoredTags {
    /// `sha256:<hex>` of the sorted tag list: changes exactly when the set of tags does.
    pub fn revision(&self) -> String {
        let mut sorted: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let digest = Sha256::digest(sorted.join("\n").as_bytes());
        format!("sha256:{}", data_encoding::HEXLOWER.encode(&digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_are_normalised() {
        for (image, want) in [
            ("nginx", "index.docker.io/library/nginx"),
            ("docker.io/nginx", "index.docker.io/library/nginx"),
            (
                "stefanprodan/podinfo",
                "index.docker.io/stefanprodan/podinfo",
            ),
            ("ghcr.io/org/app", "ghcr.io/org/app"),
            (
                "127.0.0.1:5000/team-a/podinfo",
                "127.0.0.1:5000/team-a/podinfo",
            ),
            ("localhost/app", "localhost/app"),
        ] {
            assert_eq!(
                CanonicalImage::parse(image).map(|c| c.name()),
                Ok(want.to_string()),
                "{image}"
            );
        }
        for bad in [
            "https://ghcr.io/org/app",
            "ghcr.io/org/app:1.0",
            "ghcr.io/org/app@sha256:00",
            "Org/App",
            "ghcr.io//app",
        ] {
            assert!(CanonicalImage::parse(bad).is_err(), "{bad} is refused");
        }
        let err = CanonicalImage::parse("nginx:1.25").expect_err("tag refused");
        assert!(err.contains("must not contain a tag"), "{err}");
    }

    #[test]
    fn exclusions_use_go_regexp() {
        let default = ["^.*\\.sig$".to_string()];
        let exclusions = Exclusions::new(&default).expect("Flux's default compiles");
        let tags = ["1.0.0", "sha256-abc.sig", "sig", "1.0.1"]
            .map(String::from)
            .to_vec();
        assert_eq!(exclusions.apply(tags), ["1.0.0", "sig", "1.0.1"]);
        // `\d` is ASCII in Go, and `a{,5}` a literal.
        let go = Exclusions::new(&["^\\d+$".to_string(), "a{,5}".to_string()]).expect("valid");
        let tags = ["123", "١٢٣", "a{,5}", "aaaa"].map(String::from).to_vec();
        assert_eq!(go.apply(tags), ["١٢٣", "aaaa"]);
        let err = Exclusions::new(&["a**".to_string()]).expect_err("Go refuses it");
        assert_eq!(
            err.to_string(),
            "invalid spec.exclusionList pattern \"a**\": error parsing regexp: invalid nested repetition operator: `**`"
        );
    }

    #[test]
    fn latest_tags_are_the_ten_greatest_in_reverse_order() {
        let tags: Vec<String> = (0..15).map(|i| format!("v{i:02}")).collect();
        let latest = latest_tags(&tags);
        assert_eq!(latest.len(), LATEST_TAGS);
        assert_eq!(latest.first().map(String::as_str), Some("v14"));
        assert_eq!(latest.last().map(String::as_str), Some("v05"));
    }

    #[test]
    fn revision_ignores_order_and_follows_the_set() {
        let tags = StoredTags {
            canonical_image_name: "ghcr.io/org/app".into(),
            tags: vec!["b".into(), "a".into()],
        };
        let reordered = StoredTags {
            tags: vec!["a".into(), "b".into()],
            ..tags.clone()
        };
        assert_eq!(tags.revision(), reordered.revision());
        // `printf 'a\nb' | sha256sum`: the revision the controller wrote before the move.
        assert_eq!(
            tags.revision(),
            "sha256:7e18f737311b2dc3b2f269dd78396b0351f14fb66efa879f768cb23181883c78"
        );
        let more = StoredTags {
            tags: vec!["a".into(), "b".into(), "c".into()],
            ..tags
        };
        assert_ne!(reordered.revision(), more.revision());
    }
}
