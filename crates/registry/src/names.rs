//! What a client may name: repositories, tags and digests, checked before any of them becomes
//! part of a file path.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// The longest repository name accepted (distribution's bound on `<name>` as a whole).
pub const MAX_NAME_LEN: usize = 255;

/// The distribution spec's `<name>` grammar: path components of lowercase alphanumerics
/// joined by `.`, `_`, `__` or runs of `-`. No component can be empty, `.`, `..` or start with
/// `_`, so a valid name is a safe relative path that never meets the store's `_`-prefixed
/// folders.
static NAME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
    )
    .ok()
});

/// The spec's `<reference>` grammar for tags: at most 128 characters, never starting with `.`
/// or `-`, so a tag is a safe file name.
static TAG: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").ok());

/// True when `name` is a valid repository name within [`MAX_NAME_LEN`].
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN && NAME.as_ref().is_some_and(|re| re.is_match(name))
}

/// True when `tag` is a valid tag.
pub fn valid_tag(tag: &str) -> bool {
    TAG.as_ref().is_some_and(|re| re.is_match(tag))
}

/// The digest algorithms the registry stores content under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, the default.
    Sha256,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// Its name in a digest (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest, `<algorithm>:<lowercase hex>`, parsed strictly: only the file-name safe
/// hex of the right length for its algorithm is ever accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Digest> {
        let (algorithm, hex) = text.split_once(':')?;
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return None,
        };
        let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        (hex.len() == algorithm.hex_len() && hex.chars().all(lower_hex)).then(|| Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Its hex part: validated lowercase hex, safe as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// An incremental digest of one algorithm.
pub enum Hasher {
    /// sha256 state.
    Sha256(sha2::Sha256),
    /// sha512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh state for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Hasher {
        use sha2::Digest as _;
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (
                Algorithm::Sha256,
                data_encoding::HEXLOWER.encode(&h.finalize()),
            ),
            Hasher::Sha512(h) => (
                Algorithm::Sha512,
                data_encoding::HEXLOWER.encode(&h.finalize()),
            ),
        };
        Digest { algorithm, hex }
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a tag or a digest (anything with `:` must be a digest); `None` when invalid.
    pub fn parse(text: &str) -> Option<Reference> {
        if text.contains(':') {
            Digest::parse(text).map(Reference::Digest)
        } else {
            valid_tag(text).then(|| Reference::Tag(text.to_string()))
        }
    }
}

/// A `Content-Range` of a chunk, `<start>-<end>` inclusive (also `bytes <start>-<end>/<len>`
/// as HTTP spells it); `None` when malformed or `end < start`.
pub fn parse_content_range(text: &str) -> Option<(u64, u64)> {
    let text = text.trim();
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    let text = text.split_once('/').map_or(text, |(range, _)| range);
    let (start, end) = text.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(start) || !digits(end) {
        return None;
    }
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (end >= start).then_some((start, end))
}

/// One page of a sorted tag list: the tags after `last`, at most `n`; and whether more follow.
pub fn paginate<'a>(
    sorted: &'a [String],
    n: Option<usize>,
    last: Option<&str>,
) -> (&'a [String], bool) {
    let start = last.map_or(0, |last| sorted.partition_point(|t| t.as_str() <= last));
    let rest = &sorted[start..];
    match n {
        Some(n) if n < rest.len() => (&rest[..n], true),
        _ => (rest, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar_and_cannot_escape_the_store() {
        for ok in [
            "a",
            "library/alpine",
            "a.b_c__d---e/f0",
            "team-a/podinfo/charts",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "../etc",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "a/_tags",
            "a/.hidden",
            "a___b",
            "-a",
            "a/b:c",
            "a\\b",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name(&"a".repeat(MAX_NAME_LEN)));
        assert!(!valid_name(&"a".repeat(MAX_NAME_LEN + 1)));
    }

    #[test]
    fn tags_are_bounded_and_never_dot_names() {
        assert!(valid_tag("v1.2.3-rc_1"));
        assert!(valid_tag("_x"));
        assert!(valid_tag(&"t".repeat(128)));
        for bad in ["", ".", "..", "-x", ".x", "a/b", "a:b", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn digests_are_parsed_strictly() {
        let hex = "a".repeat(64);
        let digest = Digest::parse(&format!("sha256:{hex}")).expect("valid");
        assert_eq!(digest.hex(), hex);
        assert_eq!(digest.to_string(), format!("sha256:{hex}"));
        assert!(Digest::parse(&format!("sha512:{}", "0".repeat(128))).is_some());
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(65)),
            format!("sha512:{}", "a".repeat(64)),
            format!("md5:{}", "a".repeat(32)),
            format!("sha256:../{}", "a".repeat(61)),
            "sha256".to_string(),
        ] {
            assert!(Digest::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn computed_digests_match_known_values() {
        assert_eq!(
            Digest::of(Algorithm::Sha256, b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(
            Digest::of(Algorithm::Sha512, b"")
                .hex()
                .starts_with("cf83e1357eefb8bd")
        );
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(
            Reference::parse("latest"),
            Some(Reference::Tag("latest".into()))
        );
        assert!(matches!(
            Reference::parse(&format!("sha256:{}", "b".repeat(64))),
            Some(Reference::Digest(_))
        ));
        assert_eq!(Reference::parse("sha256:zz"), None);
        assert_eq!(Reference::parse("..."), None);
    }

    #[test]
    fn content_ranges_are_inclusive_pairs() {
        assert_eq!(parse_content_range("0-1023"), Some((0, 1023)));
        assert_eq!(parse_content_range("bytes 10-19/*"), Some((10, 19)));
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("-4"), None);
        assert_eq!(parse_content_range("a-4"), None);
        assert_eq!(parse_content_range("99999999999999999999-1"), None);
    }

    #[test]
    fn pages_continue_after_last() {
        let tags: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(paginate(&tags, Some(2), None), (&tags[..2], true));
        assert_eq!(paginate(&tags, Some(2), Some("b")), (&tags[2..], false));
        assert_eq!(paginate(&tags, None, Some("a")), (&tags[1..], false));
        assert_eq!(paginate(&tags, Some(0), None), (&tags[..0], true));
        assert_eq!(paginate(&tags, Some(10), Some("bb")), (&tags[2..], false));
        assert_eq!(paginate(&tags, Some(4), None), (&tags[..], false));
    }
}
