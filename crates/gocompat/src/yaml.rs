//! The one budget for reading untrusted YAML, and the readers that apply it.
//!
//! Every YAML document ferroflux reads may come from a tenant (a fleet repository, an artifact,
//! a Helm index, a request body). [`BUDGET`] bounds the input bytes, nesting depth, documents,
//! nodes after alias expansion and the bytes copied by aliases, and refuses excessive aliasing
//! with go-yaml v3's rule (`decode.go`, `allowedAliasRatio`): a small document may draw almost
//! all of its nodes from aliases, but once a document decodes to more than 400,000 nodes the
//! share that may come from aliases shrinks, down to 10% at 4,000,000. The expansion is counted,
//! never performed, so a "billion laughs" document is refused in time proportional to its text.
//!
//! Expected flow:
//! - serde readers call [`from_str`], [`from_multiple`] or [`from_slice`] instead of the
//!   `serde_saphyr` functions;
//! - readers that walk granit-parser events themselves build a [`Guard`] for the input and pass
//!   every event to [`Guard::event`] before acting on it.
//!
//! Errors: a breach is a [`BudgetError`] with a go-yaml style message
//! (`yaml: document contains excessive aliasing`); syntax and type errors stay the reader's own.
//!
//! Writing: [`emit`] writes YAML as go-yaml does (kustomize, Helm's `toYaml`/`toYamlPretty`),
//! with [`resolve`]'s reading of plain scalars.

pub mod emit;
pub mod resolve;

use std::collections::HashMap;

use granit_parser::{Event, Parser};

/// Limits for one YAML input (a file, a request body, a Helm index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Largest input, in bytes. Above Flux's default Helm index limit (50 MiB).
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most documents in one stream.
    pub max_documents: usize,
    /// Most nodes in the whole stream, counting every node an alias expands to.
    pub max_nodes: u64,
    /// Most scalar bytes copied by aliases in the whole stream.
    pub max_alias_bytes: u64,
}

/// The budget every reader uses.
pub const BUDGET: Budget = Budget {
    max_bytes: 64 << 20,
    // As serde_json's recursion limit: far deeper than any real manifest or schema, and shallow
    // enough for the recursive walks over the result.
    max_depth: 128,
    max_documents: 10_000,
    // go-yaml's upper alias-ratio bound; enough for a 50 MiB Helm index.
    max_nodes: 4_000_000,
    max_alias_bytes: 32 << 20,
};

/// go-yaml v3: up to this many decoded nodes, 99% of them may come from aliases.
const ALIAS_RATIO_RANGE_LOW: u64 = 400_000;
/// go-yaml v3: from this many decoded nodes on, 10% of them may come from aliases.
const ALIAS_RATIO_RANGE_HIGH: u64 = 4_000_000;

/// go-yaml v3's `allowedAliasRatio`.
fn allowed_alias_ratio(decodes: u64) -> f64 {
    if decodes <= ALIAS_RATIO_RANGE_LOW {
        0.99
    } else if decodes >= ALIAS_RATIO_RANGE_HIGH {
        0.10
    } else {
        let range = (ALIAS_RATIO_RANGE_HIGH - ALIAS_RATIO_RANGE_LOW) as f64;
        0.99 - 0.89 * ((decodes - ALIAS_RATIO_RANGE_LOW) as f64 / range)
    }
}

/// A YAML input that breaks [`BUDGET`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// Aliases expand to too large a share of a document (go-yaml v3's rule).
    #[error("yaml: document contains excessive aliasing")]
    ExcessiveAliasing,
    /// The input is larger than [`Budget::max_bytes`].
    #[error("yaml: input is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Nesting deeper than [`Budget::max_depth`].
    #[error("yaml: exceeded max depth of {0}")]
    TooDeep(usize),
    /// More documents than [`Budget::max_documents`].
    #[error("yaml: more than {0} documents")]
    TooManyDocuments(usize),
    /// More nodes, after alias expansion, than [`Budget::max_nodes`].
    #[error("yaml: more than {0} nodes after alias expansion")]
    TooManyNodes(u64),
    /// Aliases copy more scalar bytes than [`Budget::max_alias_bytes`].
    #[error("yaml: aliases expand to more than {0} bytes")]
    AliasesTooLarge(u64),
    /// An alias inside the node its anchor names (go-yaml: "anchor value contains itself").
    #[error("yaml: anchor value contains itself")]
    AliasInsideItsAnchor,
}

/// An error of the serde readers: a budget breach, or serde-saphyr's own syntax or type error
/// (its message unchanged).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks [`BUDGET`].
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// Not valid YAML, or not the requested type.
    #[error(transparent)]
    Parse(Box<serde_saphyr::Error>),
}

impl From<serde_saphyr::Error> for Error {
    fn from(e: serde_saphyr::Error) -> Self {
        Error::Parse(Box::new(e))
    }
}

/// Size of a node once its aliases are expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Expanded {
    /// Decode operations, as go-yaml counts them (one per node, aliases included).
    nodes: u64,
    /// Scalar bytes.
    bytes: u64,
}

impl Expanded {
    fn add(&mut self, other: Expanded) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// An open sequence or mapping: its anchor id (0 for none) and its size so far.
#[derive(Debug)]
struct Open {
    anchor: usize,
    size: Expanded,
}

/// Enforces [`BUDGET`] on a granit-parser event stream, for readers that walk events
/// themselves. Feed it every event, in order, before using the event.
///
/// Guarantees: memory is proportional to the anchors and open collections of the input, never
/// to the expanded size; a breach is reported at the first event that causes it.
#[derive(Debug)]
pub struct Guard {
    budget: Budget,
    documents: usize,
    nodes: u64,
    alias_bytes: u64,
    open: Vec<Open>,
    anchors: HashMap<usize, Expanded>,
    /// go-yaml's per-document `decodeCount` and `aliasCount`.
    decodes: u64,
    aliased: u64,
}

impl Guard {
    /// A guard for an input of `len` bytes.
    ///
    /// Errors: [`BudgetError::TooLarge`] when `len` is above the budget.
    pub fn new(len: usize) -> Result<Self, BudgetError> {
        Self::with_budget(len, BUDGET)
    }

    fn with_budget(len: usize, budget: Budget) -> Result<Self, BudgetError> {
        if len > budget.max_bytes {
            return Err(BudgetError::TooLarge {
                size: len,
                limit: budget.max_bytes,
            });
        }
        Ok(Guard {
            budget,
            documents: 0,
            nodes: 0,
            alias_bytes: 0,
            open: Vec::new(),
            anchors: HashMap::new(),
            decodes: 0,
            aliased: 0,
        })
    }

    /// Accounts for one event.
    ///
    /// Errors: the [`BudgetError`] this event breaks. An alias to an unknown anchor is left to
    /// the parser, which reports it.
    pub fn event(&mut self, event: &Event<'_>) -> Result<(), BudgetError> {
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > self.budget.max_documents {
                    return Err(BudgetError::TooManyDocuments(self.budget.max_documents));
                }
                // go-yaml decodes each document with a fresh decoder; the document node counts.
                self.anchors.clear();
                self.open.clear();
                self.decodes = 1;
                self.aliased = 0;
            }
            Event::Scalar(text, _, anchor, _) => {
                let size = Expanded {
                    nodes: 1,
                    bytes: text.len() as u64,
                };
                self.count_nodes(1)?;
                self.decoded(1, 0)?;
                self.finish(*anchor, size);
            }
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if self.open.len() >= self.budget.max_depth {
                    return Err(BudgetError::TooDeep(self.budget.max_depth));
                }
                self.count_nodes(1)?;
                self.decoded(1, 0)?;
                self.open.push(Open {
                    anchor: *anchor,
                    size: Expanded { nodes: 1, bytes: 0 },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                // An unbalanced end is the parser's error to report, not a budget's.
                if let Some(done) = self.open.pop() {
                    self.finish(done.anchor, done.size);
                }
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(id).copied() else {
                    if self.open.iter().any(|o| o.anchor == *id) {
                        return Err(BudgetError::AliasInsideItsAnchor);
                    }
                    return Ok(());
                };
                // The alias node itself, then every node of its target, as go-yaml counts.
                self.count_nodes(target.nodes.saturating_add(1))?;
                self.decoded(target.nodes.saturating_add(1), target.nodes)?;
                self.alias_bytes = self.alias_bytes.saturating_add(target.bytes);
                if self.alias_bytes > self.budget.max_alias_bytes {
                    return Err(BudgetError::AliasesTooLarge(self.budget.max_alias_bytes));
                }
                self.finish(
                    0,
                    Expanded {
                        nodes: target.nodes.saturating_add(1),
                        bytes: target.bytes,
                    },
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// A node is complete: remember an anchored one's size, and add it to its parent.
    fn finish(&mut self, anchor: usize, size: Expanded) {
        if anchor != 0 {
            self.anchors.insert(anchor, size);
        }
        if let Some(parent) = self.open.last_mut() {
            parent.size.add(size);
        }
    }

    fn count_nodes(&mut self, n: u64) -> Result<(), BudgetError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.budget.max_nodes {
            return Err(BudgetError::TooManyNodes(self.budget.max_nodes));
        }
        Ok(())
    }

    /// go-yaml's check after decoding `decodes` nodes, `aliased` of them inside an alias. Checking
    /// once after a whole alias is enough: during an expansion the alias share only grows and
    /// the allowed ratio only shrinks, so the end is the worst point.
    fn decoded(&mut self, decodes: u64, aliased: u64) -> Result<(), BudgetError> {
        self.decodes = self.decodes.saturating_add(decodes);
        self.aliased = self.aliased.saturating_add(aliased);
        if self.aliased > 100
            && self.decodes > 1000
            && self.aliased as f64 / self.decodes as f64 > allowed_alias_ratio(self.decodes)
        {
            return Err(BudgetError::ExcessiveAliasing);
        }
        Ok(())
    }
}

/// Options for a granit-parser that a [`Guard`] watches: nesting limits one above the budget's
/// depth, so the guard, not the parser, reports a document that is too deep.
pub fn parser_options() -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.block_nesting_limit = BUDGET.max_depth + 1;
    options.flow_nesting_limit = BUDGET.max_depth + 1;
    options
}

/// Checks `text` against [`BUDGET`] without building anything.
///
/// Errors: the first [`BudgetError`]. A syntax error ends the check successfully: the reader
/// that parses the text next reports it in its own words.
pub fn check(text: &str) -> Result<(), BudgetError> {
    let mut guard = Guard::new(text.len())?;
    for event in Parser::new_from_str_with_options(text, parser_options()) {
        match event {
            Ok((event, _)) => guard.event(&event)?,
            Err(_) => break,
        }
    }
    Ok(())
}

/// serde-saphyr options matching [`BUDGET`]. serde-saphyr's own alias heuristic (aliases per
/// anchor) is off: it refuses documents go-yaml accepts, and [`check`] applies go-yaml's rule.
fn saphyr_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    let nodes = usize::try_from(BUDGET.max_nodes).unwrap_or(usize::MAX);
    budget.max_reader_input_bytes = Some(BUDGET.max_bytes);
    budget.max_depth = BUDGET.max_depth;
    budget.max_documents = BUDGET.max_documents;
    budget.max_nodes = nodes;
    budget.max_anchors = nodes;
    budget.max_aliases = nodes;
    // Every node is at most two events, plus a start and an end per document and stream.
    budget.max_events = nodes
        .saturating_mul(2)
        .saturating_add(BUDGET.max_documents.saturating_mul(2) + 2);
    budget.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = nodes.saturating_mul(2);
    options
}

/// `serde_saphyr::from_str` under [`BUDGET`]: the first document of `text`.
///
/// Errors: [`Error::Budget`] for a breach, [`Error::Parse`] with serde-saphyr's message
/// otherwise.
pub fn from_str<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    check(text)?;
    Ok(serde_saphyr::from_str_with_options(text, saphyr_options())?)
}

/// `serde_saphyr::from_multiple` under [`BUDGET`]: every document of `text`.
///
/// Errors: as [`from_str`].
pub fn from_multiple<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<Vec<T>, Error> {
    check(text)?;
    Ok(serde_saphyr::from_multiple_with_options(
        text,
        saphyr_options(),
    )?)
}

/// `serde_saphyr::from_slice` under [`BUDGET`]: the first document of UTF-8 `bytes`.
///
/// Errors: as [`from_str`]; bytes that are not UTF-8 are serde-saphyr's error.
pub fn from_slice<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Error> {
    if bytes.len() > BUDGET.max_bytes {
        return Err(Error::Budget(BudgetError::TooLarge {
            size: bytes.len(),
            limit: BUDGET.max_bytes,
        }));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        check(text)?;
    }
    Ok(serde_saphyr::from_slice_with_options(
        bytes,
        saphyr_options(),
    )?)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::*;

    /// A "billion laughs" Kubernetes object: nine levels, each a list of nine aliases to the
    /// one before (9^9 strings once expanded). Other crates' tests read the same file.
    const BOMB: &str = include_str!("../testdata/alias-bomb.yaml");

    fn quick<T>(f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
        out
    }

    #[test]
    fn billion_laughs_is_excessive_aliasing() {
        let err = quick(|| check(BOMB)).expect_err("bomb");
        assert_eq!(err, BudgetError::ExcessiveAliasing);
        assert_eq!(
            err.to_string(),
            "yaml: document contains excessive aliasing"
        );
        let err = quick(|| from_str::<Value>(BOMB)).expect_err("bomb");
        assert_eq!(
            err.to_string(),
            "yaml: document contains excessive aliasing"
        );
    }

    #[test]
    fn bombs_of_other_shapes_are_refused() {
        // Mappings instead of sequences, block style.
        let mut maps = String::from("l0: &l0 {k0: v, k1: v, k2: v, k3: v}\n");
        for level in 1..12 {
            let prev = level - 1;
            maps.push_str(&format!("l{level}: &l{level}\n"));
            for k in 0..4 {
                maps.push_str(&format!("  k{k}: *l{prev}\n"));
            }
        }
        // One flat level: a 200-item list repeated by 1000 aliases.
        let mut wide = format!("s: &s [{}]\nlist:\n", vec!["x"; 200].join(","));
        for _ in 0..1000 {
            wide.push_str("- *s\n");
        }
        // Merge keys.
        let mut merges = String::from("m0: &m0 {a: 1, b: 2, c: 3, d: 4}\n");
        for level in 1..12 {
            let prev = level - 1;
            merges.push_str(&format!(
                "m{level}: &m{level} {{x: *m{prev}, y: *m{prev}, <<: *m{prev}, z: [*m{prev}, *m{prev}]}}\n"
            ));
        }
        // The bomb in a later document of a stream.
        let later = format!("a: 1\n---\n{BOMB}");
        for (name, text) in [
            ("maps", &maps),
            ("wide", &wide),
            ("merges", &merges),
            ("later", &later),
        ] {
            let err = quick(|| check(text)).expect_err(name);
            assert_eq!(err, BudgetError::ExcessiveAliasing, "{name}");
            assert!(quick(|| from_multiple::<Value>(text)).is_err(), "{name}");
        }
    }

    #[test]
    fn huge_aliased_scalar_is_refused() {
        let big = "x".repeat(1 << 20);
        let mut text = format!("s: &s {big}\nl: [");
        text.push_str(&vec!["*s"; 40].join(","));
        text.push_str("]\n");
        assert_eq!(
            check(&text),
            Err(BudgetError::AliasesTooLarge(BUDGET.max_alias_bytes))
        );
    }

    #[test]
    fn normal_documents_with_a_few_aliases_parse() {
        let text = "defaults: &defaults\n  adapter: postgres\n  host: localhost\n\
                    development:\n  database: dev\n  <<: *defaults\n\
                    test:\n  database: test\n  <<: *defaults\n\
                    list: &l [a, b]\nagain: *l\n";
        assert_eq!(check(text), Ok(()));
        let v: Value = from_str(text).expect("parses");
        assert_eq!(v["test"]["adapter"], "postgres");
        assert_eq!(v["again"][1], "b");
    }

    #[test]
    fn many_aliases_in_a_large_document_are_fine() {
        // 200 aliases to one small anchor among 3000 real nodes: well under go-yaml's 99%.
        let mut text = String::from("base: &b {k: v}\nitems:\n");
        for i in 0..1500 {
            text.push_str(&format!("- name: n{i}\n"));
        }
        text.push_str("refs:\n");
        for _ in 0..200 {
            text.push_str("- *b\n");
        }
        assert_eq!(check(&text), Ok(()));
        let v: Value = from_str(&text).expect("serde-saphyr's own alias heuristic is off");
        assert_eq!(v["refs"][199]["k"], "v");
    }

    #[test]
    fn go_alias_ratio_matches_decode_go() {
        assert_eq!(allowed_alias_ratio(1_000), 0.99);
        assert_eq!(allowed_alias_ratio(400_000), 0.99);
        assert!((allowed_alias_ratio(2_200_000) - 0.545).abs() < 1e-9);
        assert_eq!(allowed_alias_ratio(4_000_000), 0.10);
        assert_eq!(allowed_alias_ratio(u64::MAX), 0.10);
    }

    #[test]
    fn depth_documents_and_size_are_bounded() {
        let deep = "[".repeat(BUDGET.max_depth + 1) + &"]".repeat(BUDGET.max_depth + 1);
        assert_eq!(check(&deep), Err(BudgetError::TooDeep(BUDGET.max_depth)));
        assert_eq!(
            from_str::<Value>(&deep).expect_err("deep").to_string(),
            "yaml: exceeded max depth of 128"
        );
        let ok = "[".repeat(BUDGET.max_depth) + &"]".repeat(BUDGET.max_depth);
        assert_eq!(check(&ok), Ok(()));
        let block_deep: String = (0..=BUDGET.max_depth)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        assert_eq!(
            check(&block_deep),
            Err(BudgetError::TooDeep(BUDGET.max_depth))
        );

        let docs = "a: 1\n---\n".repeat(BUDGET.max_documents + 1);
        assert_eq!(
            check(&docs),
            Err(BudgetError::TooManyDocuments(BUDGET.max_documents))
        );
        assert!(from_multiple::<Value>(&docs).is_err());

        let small = Budget {
            max_bytes: 10,
            ..BUDGET
        };
        assert!(matches!(
            Guard::with_budget(11, small),
            Err(BudgetError::TooLarge {
                size: 11,
                limit: 10
            })
        ));
    }

    #[test]
    fn node_budget_counts_expanded_aliases() {
        let small = Budget {
            max_nodes: 50,
            ..BUDGET
        };
        let mut guard = Guard::with_budget(0, small).expect("small input");
        let text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a, *a, *a, *a]\n";
        let result = Parser::new_from_str(text)
            .map(|e| e.expect("valid yaml"))
            .try_for_each(|(e, _)| guard.event(&e));
        assert_eq!(result, Err(BudgetError::TooManyNodes(50)));
    }

    #[test]
    fn syntax_errors_keep_serde_saphyrs_message() {
        let ours = from_str::<Value>("a: [1, 2")
            .expect_err("unclosed")
            .to_string();
        let theirs = serde_saphyr::from_str::<Value>("a: [1, 2")
            .expect_err("unclosed")
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn self_referencing_alias_is_refused() {
        let mut guard = Guard::new(0).expect("empty");
        let events: Vec<_> = Parser::new_from_str("a: &a [1, *a]\n")
            .map(|e| {
                e.expect("granit-parser resolves an alias to an open collection")
                    .0
            })
            .collect();
        let result = events.iter().try_for_each(|e| guard.event(e));
        assert_eq!(result, Err(BudgetError::AliasInsideItsAnchor));
    }
}
