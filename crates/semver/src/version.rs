//! Versions: Masterminds/semver v3 `NewVersion` (coercing) and `StrictNewVersion` parsing,
//! precedence ordering and the `String()` form.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The input was the empty string.
    #[error("version string is empty; expected a version such as 1.2.3")]
    Empty,
    /// The input does not have the shape of a version at all.
    #[error(
        "invalid semantic version {input:?}: {reason}; expected MAJOR[.MINOR[.PATCH]][-PRERELEASE][+METADATA]"
    )]
    Invalid {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A semantic version as Masterminds/semver v3 models it.
///
/// Equality and ordering follow SemVer precedence: build metadata and the original spelling
/// are ignored, a pre-release sorts before its release, and pre-release identifiers compare
/// numerically when both are numbers, byte-wise otherwise (numbers sort first).
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

impl Version {
    /// Builds `major.minor.patch` with no pre-release or metadata.
    pub fn new(major: u64, minor: u64, patch: u64) -> Version {
        let mut v = Version {
            major,
            minor,
            patch,
            pre: String::new(),
            metadata: String::new(),
            original: String::new(),
        };
        v.original = v.to_string();
        v
    }

    /// Parses like Go's `semver.NewVersion`: coercing, so `v1`, `1.2`, `v1.2-beta.5` and leading
    /// zeros in the numeric parts (`01.1.1`) are accepted; missing parts become `0`.
    ///
    /// # Errors
    /// [`VersionError`] when the text is not `v?N(.N)?(.N)?(-PRE)?(+META)?`, a number overflows
    /// 64 bits, or a numeric pre-release identifier has a leading zero.
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        if input.is_empty() {
            return Err(VersionError::Empty);
        }
        let invalid = |reason| VersionError::Invalid {
            input: input.to_string(),
            reason,
        };
        let bytes = input.as_bytes();
        let mut pos = usize::from(bytes.first() == Some(&b'v'));
        let major_digits = take_while(bytes, pos, |b| b.is_ascii_digit());
        if major_digits == 0 {
            return Err(invalid("it does not start with a number"));
        }
        let major = &input[pos..pos + major_digits];
        pos += major_digits;
        let mut numbers = [major, "", ""];
        for slot in numbers.iter_mut().skip(1) {
            if bytes.get(pos) != Some(&b'.') {
                break;
            }
            let digits = take_while(bytes, pos + 1, |b| b.is_ascii_digit());
            if digits == 0 {
                return Err(invalid("a version part is not a number"));
            }
            *slot = &input[pos + 1..pos + 1 + digits];
            pos += 1 + digits;
        }
        let mut pre = "";
        if bytes.get(pos) == Some(&b'-') {
            let len = take_while(bytes, pos + 1, |b| is_ident_byte(b) || b == b'.');
            pre = &input[pos + 1..pos + 1 + len];
            pos += 1 + len;
            validate_prerelease(pre).map_err(invalid)?;
        }
        let mut metadata = "";
        if bytes.get(pos) == Some(&b'+') {
            let len = take_while(bytes, pos + 1, |b| is_ident_byte(b) || b == b'.');
            metadata = &input[pos + 1..pos + 1 + len];
            pos += 1 + len;
            validate_metadata(metadata).map_err(invalid)?;
        }
        if pos != bytes.len() {
            return Err(invalid("unexpected characters after the version"));
        }
        let number = |s: &str| {
            if s.is_empty() {
                Ok(0)
            } else {
                s.parse::<u64>()
                    .map_err(|_| invalid("a version part does not fit in 64 bits"))
            }
        };
        Ok(Version {
            major: number(numbers[0])?,
            minor: number(numbers[1])?,
            patch: number(numbers[2])?,
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: input.to_string(),
        })
    }

    /// Parses like Go's `semver.StrictNewVersion`: exactly `MAJOR.MINOR.PATCH` with optional
    /// `-PRERELEASE` and `+METADATA` per SemVer 2.0; no `v` prefix, no leading zeros.
    ///
    /// # Errors
    /// [`VersionError`] naming the first rule the text breaks.
    pub fn parse_strict(input: &str) -> Result<Version, VersionError> {
        Version::strict(input, input)
    }

    /// [`Version::parse_strict`] of `input`, remembering `original` as the text it came from.
    fn strict(input: &str, original: &str) -> Result<Version, VersionError> {
        if input.is_empty() {
            return Err(VersionError::Empty);
        }
        let invalid = |reason| VersionError::Invalid {
            input: input.to_string(),
            reason,
        };
        let mut parts = input.splitn(3, '.');
        let (Some(major), Some(minor), Some(mut rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("a strict version needs MAJOR.MINOR.PATCH"));
        };
        let mut metadata = "";
        if let Some((head, meta)) = rest.split_once('+') {
            validate_metadata(meta).map_err(invalid)?;
            metadata = meta;
            rest = head;
        }
        let mut pre = "";
        if let Some((head, p)) = rest.split_once('-') {
            validate_prerelease(p).map_err(invalid)?;
            pre = p;
            rest = head;
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip([major, minor, rest]) {
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("a version part is not a number"));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(invalid("a version part starts with 0"));
            }
            *slot = part
                .parse()
                .map_err(|_| invalid("a version part is empty or does not fit in 64 bits"))?;
        }
        Ok(Version {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: original.to_string(),
        })
    }

    /// Parses an image or Git tag the way Flux does (`fluxcd/pkg/version.ParseVersion`):
    /// [`Version::parse_strict`] once one leading `v` is dropped; [`Version::original`] keeps
    /// the tag as written.
    ///
    /// # Errors
    /// As [`Version::parse_strict`].
    pub fn parse_tag(tag: &str) -> Result<Version, VersionError> {
        Version::strict(tag.strip_prefix('v').unwrap_or(tag), tag)
    }

    /// The major number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor number.
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch number.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The pre-release, without its `-` (empty when there is none).
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The build metadata, without its `+` (empty when there is none).
    pub fn metadata(&self) -> &str {
        &self.metadata
    }

    /// The text this version was parsed from (Go's `Original()`), e.g. `v1.2` for `1.2.0`.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Go's `Compare`: SemVer precedence, as [`Ord`].
    pub fn compare(&self, other: &Version) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }
}

fn take_while(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| pred(b)).count())
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// SemVer pre-release identifiers: non-empty, `[0-9A-Za-z-]`, numeric ones without a leading 0.
fn validate_prerelease(pre: &str) -> Result<(), &'static str> {
    for ident in pre.split('.') {
        if ident.is_empty() {
            return Err("a pre-release identifier is empty");
        }
        if ident.bytes().all(|b| b.is_ascii_digit()) {
            if ident.len() > 1 && ident.starts_with('0') {
                return Err("a numeric pre-release identifier starts with 0");
            }
        } else if !ident.bytes().all(is_ident_byte) {
            return Err("a pre-release identifier has characters outside [0-9A-Za-z-]");
        }
    }
    Ok(())
}

/// SemVer build metadata identifiers: non-empty, `[0-9A-Za-z-]`.
fn validate_metadata(meta: &str) -> Result<(), &'static str> {
    for ident in meta.split('.') {
        if ident.is_empty() || !ident.bytes().all(is_ident_byte) {
            return Err("build metadata identifiers must be non-empty [0-9A-Za-z-]");
        }
    }
    Ok(())
}

/// Compares two non-empty pre-release strings the way Masterminds does: identifier by
/// identifier, a missing identifier sorting first.
pub(crate) fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let ord = compare_identifier(l.unwrap_or(""), r.unwrap_or(""));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if a.is_empty() {
        return Ordering::Less;
    }
    if b.is_empty() {
        return Ordering::Greater;
    }
    // Only unsigned numbers that fit 64 bits count as numeric, as with Go's ParseUint.
    let numeric = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (numeric(a), numeric(b)) {
        (Some(x), Some(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.as_bytes().cmp(b.as_bytes()),
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Precedence-equal versions have equal numbers and identical pre-release text.
        (self.major, self.minor, self.patch, &self.pre).hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

/// Go's `String()`: the coerced form without a `v`, e.g. `1.2.0-beta.5`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

/// Parses with [`Version::parse`] (coercing), like Go's `NewVersion`.
impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}
