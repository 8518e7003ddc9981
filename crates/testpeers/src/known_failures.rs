//! Checked-in lists of the conformance cases known not to pass.
//!
//! A pass ratio lets one new failure hide behind an old success; a list of names does not.
//! Each conformance harness reads its suite's list, judges every case, and hands the outcomes
//! to [`KnownFailures::judge`]: a failing case missing from the list is a regression, and a
//! listed case that passes (or no longer exists) must be taken off the list, so it only shrinks.
//!
//! List format: one case name per line, exactly as the suite spells it; blank lines and lines
//! whose first non-blank character is `#` are comments (put a case's reason on the line above
//! it; names may contain `#`, so there are no trailing comments).

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a known-failure list cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KnownFailuresError {
    /// The list file cannot be read.
    #[error(
        "cannot read the known-failure list {path} (create it, empty when every case passes): {source}"
    )]
    Read {
        /// The list.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A name appears twice, so removing it once would leave it listed.
    #[error("{path}:{line}: {name:?} is listed twice")]
    Duplicate {
        /// The list.
        path: PathBuf,
        /// The 1-based line of the second mention.
        line: usize,
        /// The case name.
        name: String,
    },
}

/// One suite's list of case names known not to pass.
#[derive(Debug)]
pub struct KnownFailures {
    path: PathBuf,
    names: BTreeSet<String>,
}

impl KnownFailures {
    /// Reads the list at `path` (format in the module documentation).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KnownFailuresError> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|source| KnownFailuresError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: PathBuf, text: &str) -> Result<Self, KnownFailuresError> {
        let mut names = BTreeSet::new();
        for (index, line) in text.lines().enumerate() {
            let name = line.trim();
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            if !names.insert(name.to_string()) {
                return Err(KnownFailuresError::Duplicate {
                    path,
                    line: index + 1,
                    name: name.to_string(),
                });
            }
        }
        Ok(KnownFailures { path, names })
    }

    /// True when `case` is listed.
    pub fn contains(&self, case: &str) -> bool {
        self.names.contains(case)
    }

    /// ` (known)` when `case` is listed, else nothing: the suffix harnesses print after a
    /// failing case's line.
    pub fn mark(&self, case: &str) -> &'static str {
        if self.contains(case) { " (known)" } else { "" }
    }

    /// Compares one run of the suite with the list. `outcomes` holds every case of the suite
    /// once, as (name, passed); a case that was skipped or could not be judged did not pass.
    pub fn judge<'a>(&self, outcomes: impl IntoIterator<Item = (&'a str, bool)>) -> Verdict {
        let mut verdict = Verdict {
            list: self.path.clone(),
            passed: 0,
            failed: 0,
            known: 0,
            new_failures: Vec::new(),
            now_passing: Vec::new(),
            not_in_suite: Vec::new(),
        };
        let mut seen = BTreeSet::new();
        for (name, passed) in outcomes {
            seen.insert(name);
            match (passed, self.contains(name)) {
                (true, false) => verdict.passed += 1,
                (true, true) => {
                    verdict.passed += 1;
                    verdict.now_passing.push(name.to_string());
                }
                (false, true) => {
                    verdict.failed += 1;
                    verdict.known += 1;
                }
                (false, false) => {
                    verdict.failed += 1;
                    verdict.new_failures.push(name.to_string());
                }
            }
        }
        verdict.not_in_suite = self
            .names
            .iter()
            .filter(|name| !seen.contains(name.as_str()))
            .cloned()
            .collect();
        verdict
    }
}

/// What one run of a suite came to, against its known-failure list.
#[derive(Debug)]
pub struct Verdict {
    list: PathBuf,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that did not pass, listed or not.
    pub failed: usize,
    /// Failing cases the list names.
    pub known: usize,
    /// Failing cases the list does not name: regressions.
    pub new_failures: Vec<String>,
    /// Listed cases that passed: to be removed from the list.
    pub now_passing: Vec<String>,
    /// Listed names that are no case of the suite: to be removed from the list.
    pub not_in_suite: Vec<String>,
}

impl Verdict {
    /// True when the run and the list agree exactly.
    pub fn holds(&self) -> bool {
        self.new_failures.is_empty() && self.now_passing.is_empty() && self.not_in_suite.is_empty()
    }
}

/// `N passed, N failed (N known)`, then one line per disagreement with the list.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed ({} known)",
            self.passed, self.failed, self.known
        )?;
        let list = self.list.display();
        for name in &self.new_failures {
            write!(f, "\n  new failure, not in {list}: {name}")?;
        }
        for name in &self.now_passing {
            write!(f, "\n  passes now, remove it from {list}: {name}")?;
        }
        for name in &self.not_in_suite {
            write!(f, "\n  no such case, remove it from {list}: {name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> KnownFailures {
        KnownFailures::parse(PathBuf::from("known/suite.txt"), text).expect("a valid list")
    }

    #[test]
    fn comments_and_blank_lines_are_not_case_names_but_a_hash_inside_a_name_is_kept() {
        let known = list("# why the next one fails\nideal int #2\n\n  # indented comment\n");
        assert!(known.contains("ideal int #2"));
        assert_eq!(known.names.len(), 1);
    }

    #[test]
    fn a_name_listed_twice_is_refused_with_its_line() {
        let err = KnownFailures::parse(PathBuf::from("known/suite.txt"), "a\n# c\na\n")
            .expect_err("a duplicate");
        assert_eq!(err.to_string(), "known/suite.txt:3: \"a\" is listed twice");
    }

    #[test]
    fn listed_failures_hold_and_are_counted_as_known() {
        let verdict = list("b\n").judge([("a", true), ("b", false)]);
        assert!(verdict.holds(), "{verdict}");
        assert_eq!(verdict.to_string(), "1 passed, 1 failed (1 known)");
    }

    #[test]
    fn one_unlisted_failure_breaks_the_verdict_and_is_named() {
        let outcomes: Vec<(String, bool)> =
            (0..1000).map(|i| (format!("case {i}"), i != 500)).collect();
        let verdict = list("").judge(outcomes.iter().map(|(n, p)| (n.as_str(), *p)));
        assert!(!verdict.holds());
        assert_eq!(
            verdict.to_string(),
            "999 passed, 1 failed (0 known)\n  new failure, not in known/suite.txt: case 500"
        );
    }

    #[test]
    fn a_listed_case_that_passes_or_is_gone_must_be_removed_from_the_list() {
        let verdict = list("a\ngone\n").judge([("a", true)]);
        assert!(!verdict.holds());
        assert_eq!(
            verdict.to_string(),
            "1 passed, 0 failed (0 known)\n  passes now, remove it from known/suite.txt: a\n  no such case, remove it from known/suite.txt: gone"
        );
    }

    #[test]
    fn a_missing_list_says_to_create_it() {
        let err = KnownFailures::load("/nonexistent/known/suite.txt").expect_err("absent");
        assert!(
            err.to_string().starts_with(
                "cannot read the known-failure list /nonexistent/known/suite.txt (create it, empty when every case passes)"
            ),
            "{err}"
        );
    }
}
