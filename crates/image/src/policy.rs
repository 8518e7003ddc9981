//! ImagePolicy tag selection, as Flux's image-reflector-controller decides it: `semver`,
//! `alphabetical` and `numerical` policies, optionally after `filterTags`.
//!
//! Expected flow: [`Policer::from_spec`] (construction errors are spec errors), then
//! [`select_latest`] over the scanned tags. Guarantees: the result is always one of the input
//! tags, chosen independently of the input order; an empty or unrankable result is an error
//! with a reason, never a guess. Semver never falls back to lexical order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use ferroflux_semver::{ConstraintError, Constraints, Version};
use regex::{CaptureLocations, Regex};
use serde::{Deserialize, Serialize};

mod gocompat;

pub use ferroflux_gocompat::float::parse as parse_go_float;
use gocompat::Template;

/// Why a policy could not be built or could not select a tag.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `spec.policy` names none of the known policies.
    #[error("spec.policy selects no policy: set one of semver, alphabetical or numerical")]
    NoPolicy,
    /// `spec.policy.semver.range` is not a valid constraint.
    #[error("invalid spec.policy.semver.range {range:?}: {source}")]
    InvalidRange {
        /// The range as written.
        range: String,
        /// The constraint parser's reason.
        #[source]
        source: ConstraintError,
    },
    /// `order` is neither `asc` nor `desc`.
    #[error("invalid order {order:?} in spec.policy.{policy}: must be one of asc, desc")]
    InvalidOrder {
        /// `alphabetical` or `numerical`.
        policy: &'static str,
        /// The order as written.
        order: String,
    },
    /// `spec.filterTags.pattern` is not a valid regular expression.
    #[error("invalid spec.filterTags.pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        reason: String,
    },
    /// There were no tags to choose from.
    #[error("the image repository has no tags to select from; check that it has been scanned")]
    NoTags,
    /// Tags exist but none matches `filterTags.pattern`.
    #[error("none of the {count} tags matches spec.filterTags.pattern {pattern:?}")]
    NoTagMatchesPattern {
        /// The filter pattern.
        pattern: String,
        /// How many tags were scanned.
        count: usize,
    },
    /// No candidate is a strict semantic version within the range.
    #[error(
        "no tag is a semantic version (MAJOR.MINOR.PATCH, optional leading v) within range {range:?} among {count} candidates"
    )]
    NoVersionInRange {
        /// The semver range.
        range: String,
        /// How many candidates were considered.
        count: usize,
    },
    /// A candidate is not a number under the `numerical` policy.
    #[error(
        "tag value {value:?} is not a number, so the numerical policy cannot rank it; use filterTags to select numeric tags"
    )]
    NotANumber {
        /// The candidate value (after `extract`).
        value: String,
    },
}

/// `spec.policy` of an ImagePolicy, as in the CRD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// `semver: {range}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerSpec>,
    /// `alphabetical: {order}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<OrderSpec>,
    /// `numerical: {order}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<OrderSpec>,
}

/// `spec.policy.semver`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemVerSpec {
    /// A Masterminds/semver v3 constraint, e.g. `>=1.0.0 <2.0.0`.
    #[serde(default)]
    pub range: String,
}

/// `spec.policy.alphabetical` / `spec.policy.numerical`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSpec {
    /// `asc` (default; the greatest wins) or `desc` (the least wins), any case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// `spec.filterTags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterTagsSpec {
    /// Go RE2 syntax; tags that do not match are dropped. Empty matches everything.
    #[serde(default)]
    pub pattern: String,
    /// Replacement template (`$1`, `$name`, `${name}`) giving the value to rank.
    #[serde(default)]
    pub extract: String,
}

/// Which end of the order wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The greatest value wins.
    Asc,
    /// The least value wins.
    Desc,
}

/// A built policy, ready to rank tags.
#[derive(Debug, Clone)]
pub enum Policer {
    /// Highest strict semantic version within the range.
    SemVer {
        /// The range as written.
        range: String,
        /// The parsed range.
        constraints: Constraints,
    },
    /// Byte-wise string order.
    Alphabetical(Order),
    /// Tags as 64-bit floats.
    Numerical(Order),
}

fn parse_order(policy: &'static str, spec: &OrderSpec) -> Result<Order, PolicyError> {
    let order = spec.order.as_deref().unwrap_or("");
    match order.to_uppercase().as_str() {
        "" | "ASC" => Ok(Order::Asc),
        "DESC" => Ok(Order::Desc),
        _ => Err(PolicyError::InvalidOrder {
            policy,
            order: order.to_string(),
        }),
    }
}

impl Policer {
    /// Builds the policy named by `spec`; semver takes precedence over alphabetical over
    /// numerical when several are set, as in Flux.
    ///
    /// # Errors
    /// [`PolicyError::NoPolicy`], [`PolicyError::InvalidRange`], [`PolicyError::InvalidOrder`].
    pub fn from_spec(spec: &PolicySpec) -> Result<Policer, PolicyError> {
        if let Some(semver) = &spec.semver {
            let constraints =
                Constraints::parse(&semver.range).map_err(|source| PolicyError::InvalidRange {
                    range: semver.range.clone(),
                    source,
                })?;
            return Ok(Policer::SemVer {
                range: semver.range.clone(),
                constraints,
            });
        }
        if let Some(alpha) = &spec.alphabetical {
            return Ok(Policer::Alphabetical(parse_order("alphabetical", alpha)?));
        }
        if let Some(num) = &spec.numerical {
            return Ok(Policer::Numerical(parse_order("numerical", num)?));
        }
        Err(PolicyError::NoPolicy)
    }

    /// The winning candidate among `values` (its index).
    ///
    /// Ties (values of equal rank but different text, e.g. `1.0.0` and `v1.0.0`) are broken
    /// by the text so the answer never depends on the input order: semver keeps the
    /// byte-wise least, numerical the greatest (Flux's answers for a registry's sorted list).
    ///
    /// # Errors
    /// [`PolicyError::NoTags`] for an empty list, [`PolicyError::NoVersionInRange`],
    /// [`PolicyError::NotANumber`].
    pub fn latest<S: AsRef<str>>(&self, values: &[S]) -> Result<usize, PolicyError> {
        if values.is_empty() {
            return Err(PolicyError::NoTags);
        }
        let items = values.iter().enumerate().map(|(i, v)| {
            let v = v.as_ref();
            (Cow::Borrowed(v), v, i)
        });
        let (winner, count) = self.best(items)?;
        winner.ok_or_else(|| self.nothing_in_range(count))
    }

    fn nothing_in_range(&self, count: usize) -> PolicyError {
        match self {
            Policer::SemVer { range, .. } => PolicyError::NoVersionInRange {
                range: range.clone(),
                count,
            },
            _ => PolicyError::NoTags,
        }
    }

    /// How a value ranks; `None` when it is no candidate (semver: no version in range).
    fn rank(&self, value: &str) -> Result<Option<Rank>, PolicyError> {
        Ok(match self {
            Policer::SemVer { constraints, .. } => Version::parse_tag(value)
                .ok()
                .filter(|v| constraints.check(v))
                .map(Rank::Version),
            Policer::Numerical(_) => {
                Some(Rank::Number(parse_go_float(value).ok_or_else(|| {
                    PolicyError::NotANumber {
                        value: value.to_string(),
                    }
                })?))
            }
            Policer::Alphabetical(_) => Some(Rank::Text),
        })
    }

    /// Orders two candidates (`Greater`: `a` wins); `Equal` only for identical value text.
    fn compare(&self, a: (&Rank, &str), b: (&Rank, &str)) -> Ordering {
        match (self, a.0, b.0) {
            (Policer::SemVer { .. }, Rank::Version(x), Rank::Version(y)) => {
                x.cmp(y).then_with(|| b.1.cmp(a.1))
            }
            (Policer::Numerical(order), Rank::Number(x), Rank::Number(y)) => {
                numeric_rank(*order, *x, *y).then_with(|| a.1.cmp(b.1))
            }
            (Policer::Alphabetical(Order::Asc), ..) => a.1.cmp(b.1),
            (Policer::Alphabetical(Order::Desc), ..) => b.1.cmp(a.1),
            _ => Ordering::Equal,
        }
    }

    /// One pass over `(value, tag, index)` candidates: the winner's index and how many
    /// candidates there were. The same value from several tags keeps the byte-wise greatest
    /// tag (Flux keeps the last of the registry's sorted list).
    fn best<'t>(
        &self,
        items: impl Iterator<Item = (Cow<'t, str>, &'t str, usize)>,
    ) -> Result<(Option<usize>, usize), PolicyError> {
        let mut best: Option<(Rank, Cow<'t, str>, &'t str, usize)> = None;
        let mut count = 0;
        for (value, tag, index) in items {
            count += 1;
            let Some(rank) = self.rank(&value)? else {
                continue;
            };
            let wins = match &best {
                None => true,
                Some((r, v, t, _)) => match self.compare((&rank, &value), (r, v)) {
                    Ordering::Greater => true,
                    Ordering::Equal => tag > *t,
                    Ordering::Less => false,
                },
            };
            if wins {
                best = Some((rank, value, tag, index));
            }
        }
        Ok((best.map(|(.., index)| index), count))
    }
}

/// A candidate's parsed rank.
enum Rank {
    Version(Version),
    Number(f64),
    Text,
}

/// How `n` ranks against `best` (`Greater`: `n` wins). NaN ranks below every number in both
/// orders; `-0` equals `0`, as Go's comparison operators have it.
fn numeric_rank(order: Order, n: f64, best: f64) -> Ordering {
    match (n.is_nan(), best.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => {
            let asc = if n > best {
                Ordering::Greater
            } else if n < best {
                Ordering::Less
            } else {
                Ordering::Equal
            };
            match order {
                Order::Asc => asc,
                Order::Desc => asc.reverse(),
            }
        }
    }
}

/// A compiled `spec.filterTags`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    pattern: String,
    regex: Regex,
    /// `None` when `extract` is empty: the tag itself is ranked.
    extract: Option<Template>,
}

impl TagFilter {
    /// Compiles the pattern with Go's `regexp` syntax and meaning (translated for the `regex`
    /// crate where the two differ) and resolves `extract` against its groups.
    ///
    /// # Errors
    /// [`PolicyError::InvalidPattern`] when Go would refuse the pattern.
    pub fn new(spec: &FilterTagsSpec) -> Result<TagFilter, PolicyError> {
        // Go's syntax, not the regex crate's: see `ferroflux_gocompat::regex` for where they
        // differ.
        let regex = ferroflux_gocompat::regex::compile(&spec.pattern).map_err(|e| {
            PolicyError::InvalidPattern {
                pattern: spec.pattern.clone(),
                reason: e.to_string(),
            }
        })?;
        let extract = (!spec.extract.is_empty()).then(|| Template::new(&spec.extract, &regex));
        Ok(TagFilter {
            pattern: spec.pattern.clone(),
            regex,
            extract,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Keeps the tags the pattern matches (anywhere, as Go's `FindStringSubmatchIndex`), each
    /// paired with its ranking value: the expansion of `extract`, or the tag itself.
    ///
    /// Values are unique; when two tags give the same value the byte-wise greatest tag is
    /// kept (Flux keeps the last one of the registry's sorted list). The result is sorted by
    /// value.
    pub fn apply<'t, S: AsRef<str>>(&self, tags: &'t [S]) -> Vec<(String, &'t str)> {
        let mut by_value: HashMap<String, &'t str> = HashMap::new();
        let mut locations = self.regex.capture_locations();
        for tag in tags {
            let tag = tag.as_ref();
            let Some(value) = self.value(tag, &mut locations) else {
                continue;
            };
            by_value
                .entry(value.into_owned())
                .and_modify(|kept| {
                    if tag > *kept {
                        *kept = tag;
                    }
                })
                .or_insert(tag);
        }
        let mut out: Vec<(String, &'t str)> = by_value.into_iter().collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The ranking value of `tag`, or `None` when the pattern does not match it.
    fn value<'t>(&self, tag: &'t str, locations: &mut CaptureLocations) -> Option<Cow<'t, str>> {
        match &self.extract {
            None => self.regex.is_match(tag).then_some(Cow::Borrowed(tag)),
            Some(template) => {
                self.regex.captures_read(locations, tag)?;
                Some(template.expand(locations, tag))
            }
        }
    }
}

/// Selects the latest tag: filter (if any), rank, and map the winner back to its tag.
///
/// # Errors
/// Any [`PolicyError`]: invalid spec, no tags, nothing matching the filter or the range, or
/// a non-number under `numerical`.
pub fn select_latest<S: AsRef<str>>(
    policy: &PolicySpec,
    filter: Option<&FilterTagsSpec>,
    tags: &[S],
) -> Result<String, PolicyError> {
    let policer = Policer::from_spec(policy)?;
    let filter = filter.map(TagFilter::new).transpose()?;
    select_with(&policer, filter.as_ref(), tags)
}

/// [`select_latest`] with a policy and filter built beforehand (to rank many tag lists).
///
/// # Errors
/// As [`select_latest`], without the construction errors.
pub fn select_with<S: AsRef<str>>(
    policer: &Policer,
    filter: Option<&TagFilter>,
    tags: &[S],
) -> Result<String, PolicyError> {
    if tags.is_empty() {
        return Err(PolicyError::NoTags);
    }
    match filter {
        None => {
            let i = policer.latest(tags)?;
            Ok(tags[i].as_ref().to_string())
        }
        Some(filter) => {
            // Ranked in one pass, without collecting the filtered values first.
            let mut locations = filter.regex.capture_locations();
            let items = tags.iter().enumerate().filter_map(|(i, tag)| {
                let tag = tag.as_ref();
                filter.value(tag, &mut locations).map(|v| (v, tag, i))
            });
            match policer.best(items)? {
                (_, 0) => Err(PolicyError::NoTagMatchesPattern {
                    pattern: filter.pattern().to_string(),
                    count: tags.len(),
                }),
                (Some(i), _) => Ok(tags[i].as_ref().to_string()),
                (None, count) => Err(policer.nothing_in_range(count)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
