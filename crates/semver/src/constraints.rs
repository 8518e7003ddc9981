//! Constraints: Masterminds/semver v3 `NewConstraint` and `Check`.
//!
//! Grammar: `||` separates alternatives; inside one, constraints are separated by spaces or a
//! comma. A constraint is an operator (`=`, `!=`, `>`, `<`, `>=`, `=>`, `<=`, `=<`, `~`, `~>`,
//! `^`, or none) and a version whose numbers may be wildcards (`x`, `X`, `*`) or left out.
//! `A - B` is a hyphen range (`>= A, <= B`).
//!
//! Pre-releases: a pre-release version satisfies an alternative only when one of that
//! alternative's constraints names a pre-release, or when
//! [`Constraints::include_prerelease`] is set.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::version::{Version, compare_prerelease};

/// Why a constraint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// A `||` alternative does not follow the constraint grammar.
    #[error(
        "improper constraint {segment:?}: expected operator and version pairs such as \">= 1.2, < 2\" separated by spaces or commas"
    )]
    Improper {
        /// The alternative (text between `||`) that failed.
        segment: String,
    },
    /// A constraint has the right shape but its version does not parse (e.g. `1x`).
    #[error("improper constraint {constraint:?}: its version {version:?} is not a valid version")]
    BadVersion {
        /// The single constraint that failed.
        constraint: String,
        /// The version text derived from it.
        version: String,
    },
}

/// Go's `\s` is ASCII-only; Rust's is Unicode, so spell it out.
const WS: &str = r"[\t\n\f\r ]";
/// Operators, in the order the upstream alternation tries them (leftmost-first semantics).
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

/// A constraint version: numbers may be wildcards; `|` is accepted by the character class
/// upstream too, and then fails as a version.
fn version_pattern(prefix: &str) -> String {
    let num = r"[0-9|xX*]+";
    let ident = r"[0-9A-Za-z-]+";
    format!(
        r"v?(?P<{prefix}major>{num})(?P<{prefix}minor>\.{num})?(?P<{prefix}patch>\.{num})?(?P<{prefix}pre>-{ident}(?:\.{ident})*)?(?:\+{ident}(?:\.{ident})*)?"
    )
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the constraint grammar patterns are valid regular expressions")
}

static RANGE: LazyLock<Regex> = LazyLock::new(|| {
    let cv = |name: &str| {
        let inner = version_pattern(name);
        format!("(?P<{name}>{inner})")
    };
    compile(&format!("{WS}*{}{WS}+-{WS}+{}{WS}*", cv("a"), cv("b")))
});

static SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
    let plain = |p: &str| version_pattern(p);
    compile(&format!(
        r"^(?:{WS}*(?:{OPS}){WS}*(?:{}){WS}*)(?:(?:{WS}+|,{WS}*)(?:{OPS}){WS}*(?:{}){WS}*)*$",
        plain("s1"),
        plain("s2")
    ))
});

static FIND: LazyLock<Regex> =
    LazyLock::new(|| compile(&format!(r"(?:{OPS}){WS}*(?:{})", version_pattern("f"))));

static SINGLE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"^{WS}*(?P<op>{OPS}){WS}*(?P<cv>{}){WS}*$",
        version_pattern("")
    ))
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

impl Op {
    fn from_token(token: &str) -> Option<Op> {
        Some(match token {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return None,
        })
    }
}

/// One operator and version, with which of its numbers were wildcards or missing.
#[derive(Debug, Clone)]
struct Constraint {
    op: Op,
    op_token: String,
    orig: String,
    con: Version,
    /// Some number was a wildcard or missing.
    dirty: bool,
    /// The minor number (and so the patch) was a wildcard or missing.
    minor_dirty: bool,
    /// Only the patch number was a wildcard or missing.
    patch_dirty: bool,
}

/// A parsed constraint set: alternatives (`||`) of conjunctions.
#[derive(Debug, Clone)]
pub struct Constraints {
    alternatives: Vec<Vec<Constraint>>,
    /// Per alternative: does one of its constraints name a pre-release?
    names_prerelease: Vec<bool>,
    include_prerelease: bool,
}

fn is_wildcard(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Constraint {
    fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        let improper = || ConstraintError::Improper {
            segment: text.to_string(),
        };
        let caps = SINGLE.captures(text).ok_or_else(improper)?;
        let group = |name: &str| caps.name(name).map_or("", |m| m.as_str());
        let (op_token, orig) = (group("op"), group("cv"));
        let op = Op::from_token(op_token).ok_or_else(improper)?;
        let (major, minor, patch, pre) =
            (group("major"), group("minor"), group("patch"), group("pre"));
        let minor_n = minor.strip_prefix('.').unwrap_or(minor);
        let patch_n = patch.strip_prefix('.').unwrap_or(patch);
        // Wildcards become zeros; the metadata of a wildcard version is dropped, as upstream.
        let (version_text, dirty, minor_dirty, patch_dirty) = if is_wildcard(major) {
            (format!("0.0.0{pre}"), true, false, false)
        } else if minor.is_empty() || is_wildcard(minor_n) {
            (format!("{major}.0.0{pre}"), true, true, false)
        } else if patch.is_empty() || is_wildcard(patch_n) {
            (format!("{major}.{minor_n}.0{pre}"), true, false, true)
        } else {
            (orig.to_string(), false, false, false)
        };
        let con = Version::parse(&version_text).map_err(|_| ConstraintError::BadVersion {
            constraint: text.trim().to_string(),
            version: version_text.clone(),
        })?;
        Ok(Constraint {
            op,
            op_token: op_token.to_string(),
            orig: orig.to_string(),
            con,
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.prerelease().is_empty() && !include_pre {
            return false;
        }
        match self.op {
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v == &self.con
                }
            }
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => v < &self.con,
            Op::GreaterEqual => v >= &self.con,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if self.dirty {
            if c.major() != v.major() {
                return true;
            }
            if self.minor_dirty {
                return false;
            }
            if c.minor() != v.minor() {
                return true;
            }
            if self.patch_dirty {
                // Same major.minor: only a different pre-release makes it unequal.
                return match (v.prerelease().is_empty(), c.prerelease().is_empty()) {
                    (true, true) => false,
                    (false, true) | (true, false) => true,
                    (false, false) => compare_prerelease(v.prerelease(), c.prerelease()).is_ne(),
                };
            }
        }
        v != c
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.con;
        if !self.dirty {
            return v > c;
        }
        if v.major() != c.major() {
            return v.major() > c.major();
        }
        if self.minor_dirty {
            // `>11` needs 12 or higher.
            return false;
        }
        if self.patch_dirty {
            // `>11.1` needs 11.2 or higher.
            return v.minor() > c.minor();
        }
        v > c
    }

    fn less_equal(&self, v: &Version) -> bool {
        let c = &self.con;
        if !self.dirty {
            return v <= c;
        }
        if v.major() > c.major() {
            return false;
        }
        !(v.major() == c.major() && v.minor() > c.minor() && !self.minor_dirty)
    }

    /// `~1.2.3` is `>=1.2.3 <1.3.0`; `~1` and `~1.x` are `>=1.0.0 <2.0.0`; `~0.0.0` and `~*`
    /// accept everything.
    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v < c {
            return false;
        }
        if c.major() == 0
            && c.minor() == 0
            && c.patch() == 0
            && !self.minor_dirty
            && !self.patch_dirty
        {
            return true;
        }
        if v.major() != c.major() {
            return false;
        }
        v.minor() == c.minor() || self.minor_dirty
    }

    /// `^1.2.3` is `>=1.2.3 <2.0.0`; `^0.2.3` is `>=0.2.3 <0.3.0`; `^0.0.3` is `=0.0.3`.
    fn caret(&self, v: &Version) -> bool {
        let c = &self.con;
        if v < c {
            return false;
        }
        if c.major() > 0 || self.minor_dirty {
            return v.major() == c.major();
        }
        if v.major() > 0 {
            return false;
        }
        if c.minor() > 0 || self.patch_dirty {
            return v.minor() == c.minor();
        }
        if v.minor() > 0 {
            return false;
        }
        v.patch() == c.patch()
    }
}

impl Constraints {
    /// Parses like Go's `semver.NewConstraint`.
    ///
    /// # Errors
    /// [`ConstraintError`] naming the alternative or constraint that does not parse.
    pub fn parse(input: &str) -> Result<Constraints, ConstraintError> {
        let rewritten = rewrite_hyphen_ranges(input);
        let mut alternatives = Vec::new();
        let mut names_prerelease = Vec::new();
        for segment in rewritten.split("||") {
            if !SEGMENT.is_match(segment) {
                return Err(ConstraintError::Improper {
                    segment: segment.to_string(),
                });
            }
            let mut group = Vec::new();
            for found in FIND.find_iter(segment) {
                group.push(Constraint::parse(found.as_str())?);
            }
            names_prerelease.push(group.iter().any(|c| !c.con.prerelease().is_empty()));
            alternatives.push(group);
        }
        Ok(Constraints {
            alternatives,
            names_prerelease,
            include_prerelease: false,
        })
    }

    /// Sets Go's `IncludePrerelease` switch: pre-release versions may satisfy every
    /// alternative, not only those that name a pre-release.
    #[must_use]
    pub fn with_include_prerelease(mut self, include: bool) -> Constraints {
        self.include_prerelease = include;
        self
    }

    /// Whether pre-releases are included for every alternative.
    pub fn include_prerelease(&self) -> bool {
        self.include_prerelease
    }

    /// Go's `Check`: does `version` satisfy one of the alternatives?
    pub fn check(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .zip(&self.names_prerelease)
            .any(|(group, &named)| {
                let include_pre = self.include_prerelease || named;
                group.iter().all(|c| c.check(version, include_pre))
            })
    }
}

/// Replaces every `A - B` with `>= A, <= B `, as upstream does before splitting on `||`.
fn rewrite_hyphen_ranges(input: &str) -> String {
    let mut out = input.to_string();
    for caps in RANGE.captures_iter(input) {
        let (Some(whole), Some(a), Some(b)) = (caps.get(0), caps.name("a"), caps.name("b")) else {
            continue;
        };
        let replacement = format!(">= {}, <= {} ", a.as_str(), b.as_str());
        out = out.replacen(whole.as_str(), &replacement, 1);
    }
    out
}

/// Go's `String()`: constraints joined by spaces, alternatives by ` || `.
impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            for (j, c) in group.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{}{}", c.op_token, c.orig)?;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Constraints {
    type Err = ConstraintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Constraints::parse(s)
    }
}
