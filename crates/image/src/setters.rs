//! Setter markers: format-preserving image rewrites in YAML text (Flux's `Setters` strategy).
//!
//! A marker is a same-line comment naming an image policy:
//!
//! ```yaml
//! image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "flux-system:app"}
//! tag: "1.0.0" # {"$imagepolicy": "flux-system:app:tag"}
//! ```
//!
//! `NS:NAME` sets the whole reference (`name:tag`, plus `@digest` when known), `NS:NAME:tag`,
//! `NS:NAME:name` and `NS:NAME:digest` set one part. The marker applies to the scalar that
//! ends on its line right before it, with only blanks (or one flow `,`) in between; a marker
//! after a flow collection's closing bracket, on a mapping key, an alias, a block scalar or a
//! multi-line scalar changes nothing.
//!
//! Guarantees: only the bytes of marked scalars change. Comments, key order, indentation,
//! line ends (LF or CRLF), anchors, tags and quoting stay; a plain scalar becomes
//! double-quoted only when the new value would otherwise read as another type or break the
//! YAML (e.g. tag `1.10` would read as a float).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::LazyLock;

use ferroflux_gocompat::yaml::{BudgetError, Guard, parser_options};
use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Why a file could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetterError {
    /// The file holds setter markers but is not valid YAML.
    #[error(
        "{file}:{line}:{column}: cannot update image setters, the file is not valid YAML: {message}"
    )]
    Yaml {
        /// The file as named by the caller.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// The file breaks the YAML budget every reader applies (size, depth, excessive aliasing).
    #[error("{file}:{line}: cannot update image setters: {source}")]
    Budget {
        /// The file as named by the caller.
        file: String,
        /// 1-based line where the budget broke.
        line: usize,
        /// Which limit.
        source: BudgetError,
    },
}

/// The latest image an ImagePolicy selected (`status.latestRef`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestImage {
    /// Image name, e.g. `ghcr.io/org/app`.
    pub name: String,
    /// Selected tag, e.g. `1.2.3`.
    pub tag: String,
    /// Digest (`sha256:...`) when the policy reflects digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl LatestImage {
    /// The full reference the `NS:NAME` setter writes: `name[:tag][@digest]`.
    pub fn reference(&self) -> String {
        let mut out = self.name.clone();
        if !self.tag.is_empty() {
            out.push(':');
            out.push_str(&self.tag);
        }
        if let Some(digest) = self.digest.as_deref().filter(|d| !d.is_empty()) {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// The value for one setter suffix: `None` (whole reference), `tag`, `name` or `digest`.
    /// Empty parts (e.g. no digest) give `None`: an empty value is never written.
    fn value_for(&self, part: Option<&str>) -> Option<String> {
        let value = match part {
            None => self.reference(),
            Some("tag") => self.tag.clone(),
            Some("name") => self.name.clone(),
            Some("digest") => self.digest.clone().unwrap_or_default(),
            Some(_) => return None,
        };
        (!value.is_empty()).then_some(value)
    }
}

/// The Kubernetes object a change was made in (Flux's `ObjectIdentifier`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    /// `apiVersion` of the document.
    pub api_version: String,
    /// `kind` of the document.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (empty when absent).
    pub namespace: String,
}

/// One rewritten scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file, as named by the caller.
    pub file: String,
    /// The object (document) that holds the scalar.
    pub object: ObjectId,
    /// The setter named by the marker, e.g. `flux-system:app:tag`.
    pub setter: String,
    /// The scalar's value before.
    pub old_value: String,
    /// The scalar's value after.
    pub new_value: String,
    /// 1-based line of the scalar.
    pub line: usize,
    /// Byte range of the scalar (quotes included) in the original text.
    pub range: Range<usize>,
    /// The bytes written over `range` (quotes included).
    pub replacement: String,
}

/// The result of [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The new file text (equal to the input when `changes` is empty).
    pub text: String,
    /// The scalars changed, in file order.
    pub changes: Vec<Change>,
}

/// Setter values by setter name (`NS:NAME`, `NS:NAME:tag`, ...), built from policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setters {
    values: BTreeMap<String, String>,
}

impl Setters {
    /// Builds the four setters of each policy, keyed `NAMESPACE:NAME`.
    pub fn from_policies<'a>(
        policies: impl IntoIterator<Item = (&'a str, &'a LatestImage)>,
    ) -> Setters {
        let mut values = BTreeMap::new();
        for (policy, latest) in policies {
            for part in [None, Some("tag"), Some("name"), Some("digest")] {
                if let Some(value) = latest.value_for(part) {
                    let setter = match part {
                        None => policy.to_string(),
                        Some(p) => format!("{policy}:{p}"),
                    };
                    values.insert(setter, value);
                }
            }
        }
        Setters { values }
    }

    /// The value a setter writes, if it is known.
    pub fn get(&self, setter: &str) -> Option<&str> {
        self.values.get(setter).map(String::as_str)
    }
}

/// Whether `text` may hold a setter marker (a cheap screen before parsing, as Flux does).
pub fn may_have_markers(text: &str) -> bool {
    text.contains("$imagepolicy") || text.contains("io.k8s.cli.setters.")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
    Root,
}

struct Frame {
    mapping: bool,
    flow: bool,
    expecting_key: bool,
    key: Option<String>,
}

struct ScalarNode {
    range: Range<usize>,
    value: String,
    style: ScalarStyle,
    role: Role,
    in_flow: bool,
    document: usize,
}

struct Marker {
    setter: String,
    start: usize,
}

/// Rewrites every marked scalar whose setter has a value in `setters`.
///
/// Expected flow: screen with [`may_have_markers`], call this per file, write `text` back
/// only when `changes` is non-empty.
///
/// # Errors
/// [`SetterError::Yaml`] when the text holds a marker but does not parse as YAML; nothing is
/// rewritten then.
pub fn rewrite(file: &str, text: &str, setters: &Setters) -> Result<Rewrite, SetterError> {
    let unchanged = || Rewrite {
        text: text.to_string(),
        changes: Vec::new(),
    };
    if !may_have_markers(text) {
        return Ok(unchanged());
    }
    let mut scalars: Vec<ScalarNode> = Vec::new();
    let mut markers: Vec<Marker> = Vec::new();
    let mut objects: Vec<ObjectId> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let budget_error = |line, source| SetterError::Budget {
        file: file.to_string(),
        line,
        source,
    };
    let mut guard = Guard::new(text.len()).map_err(|e| budget_error(1, e))?;
    for next in Parser::new_from_str_with_options(text, parser_options()) {
        let (event, span) = next.map_err(|err| {
            let mark = err.marker();
            SetterError::Yaml {
                file: file.to_string(),
                line: mark.line(),
                column: mark.col() + 1,
                message: err.info(),
            }
        })?;
        guard
            .event(&event)
            .map_err(|e| budget_error(span.start.line(), e))?;
        let Some(range) = span.byte_range() else {
            continue;
        };
        match event {
            Event::DocumentStart(..) => {
                objects.push(ObjectId::default());
                stack.clear();
            }
            Event::Comment(body, _) => {
                if let Some(setter) = parse_marker(&body) {
                    markers.push(Marker {
                        setter,
                        start: range.start,
                    });
                }
            }
            Event::Scalar(value, style, ..) => {
                let role = next_role(&mut stack);
                let in_flow = stack.iter().any(|f| f.flow);
                if role == Role::Key {
                    if let Some(top) = stack.last_mut() {
                        top.key = Some(value.to_string());
                    }
                } else if let Some(object) = objects.last_mut() {
                    record_identity(object, &stack, &value);
                }
                scalars.push(ScalarNode {
                    range,
                    value: value.into_owned(),
                    style,
                    role,
                    in_flow,
                    document: objects.len().saturating_sub(1),
                });
            }
            Event::Alias(..) | Event::UnresolvedAlias(..) => {
                let role = next_role(&mut stack);
                if role == Role::Key
                    && let Some(top) = stack.last_mut()
                {
                    top.key = None;
                }
            }
            Event::MappingStart(style, ..) | Event::SequenceStart(style, ..) => {
                let role = next_role(&mut stack);
                if role == Role::Key
                    && let Some(top) = stack.last_mut()
                {
                    top.key = None;
                }
                stack.push(Frame {
                    mapping: matches!(event, Event::MappingStart(..)),
                    flow: style == StructureStyle::Flow,
                    expecting_key: true,
                    key: None,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }

    let mut changes = Vec::new();
    for marker in &markers {
        let Some(value) = setters.get(&marker.setter) else {
            continue;
        };
        // The scalar ending last before the comment.
        let idx = scalars.partition_point(|s| s.range.end <= marker.start);
        let Some(node) = idx.checked_sub(1).and_then(|i| scalars.get(i)) else {
            continue;
        };
        if !applies_to(text, node, marker.start) || node.value == value {
            continue;
        }
        let replacement = render(value, node.style, node.in_flow);
        changes.push(Change {
            file: file.to_string(),
            object: objects.get(node.document).cloned().unwrap_or_default(),
            setter: marker.setter.clone(),
            old_value: node.value.clone(),
            new_value: value.to_string(),
            line: line_of(text, node.range.start),
            range: node.range.clone(),
            replacement,
        });
    }
    if changes.is_empty() {
        return Ok(unchanged());
    }
    changes.sort_by_key(|c| c.range.start);
    changes.dedup_by_key(|c| c.range.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for change in &changes {
        out.push_str(&text[at..change.range.start]);
        out.push_str(&change.replacement);
        at = change.range.end;
    }
    out.push_str(&text[at..]);
    Ok(Rewrite { text: out, changes })
}

/// Decides the role of the node starting now and advances its parent mapping's key/value turn.
fn next_role(stack: &mut [Frame]) -> Role {
    let Some(top) = stack.last_mut() else {
        return Role::Root;
    };
    if !top.mapping {
        return Role::Item;
    }
    let role = if top.expecting_key {
        Role::Key
    } else {
        Role::Value
    };
    top.expecting_key = !top.expecting_key;
    role
}

/// Records `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` of a document.
fn record_identity(object: &mut ObjectId, stack: &[Frame], value: &str) {
    if stack.len() > 2 {
        return;
    }
    let keys: Vec<Option<&str>> = stack
        .iter()
        .map(|f| f.mapping.then_some(f.key.as_deref()).flatten())
        .collect();
    let slot = match keys.as_slice() {
        [Some("apiVersion")] => &mut object.api_version,
        [Some("kind")] => &mut object.kind,
        [Some("metadata"), Some("name")] => &mut object.name,
        [Some("metadata"), Some("namespace")] => &mut object.namespace,
        _ => return,
    };
    *slot = value.to_string();
}

/// Is `node` the scalar a marker starting at `comment` refers to?
fn applies_to(text: &str, node: &ScalarNode, comment: usize) -> bool {
    if node.role == Role::Key || node.range.is_empty() {
        return false;
    }
    if !matches!(
        node.style,
        ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
    ) {
        return false;
    }
    let (Some(raw), Some(between)) = (
        text.get(node.range.clone()),
        text.get(node.range.end..comment),
    ) else {
        return false;
    };
    if raw.contains(['\n', '\r']) {
        return false;
    }
    let mut commas = 0;
    for c in between.chars() {
        match c {
            ' ' | '\t' => {}
            ',' if node.in_flow => commas += 1,
            _ => return false,
        }
    }
    commas <= 1
}

/// The setter a comment names, if it is a marker: `{"$imagepolicy": "NS:NAME[:part]"}` (any
/// YAML flow mapping, so JSON and unquoted forms both work) or the long form
/// `{"$ref": "#/definitions/io.k8s.cli.setters.NS:NAME"}`.
fn parse_marker(comment: &str) -> Option<String> {
    if !comment.contains("$imagepolicy") && !comment.contains("$ref") {
        return None;
    }
    let body = comment.trim();
    if !body.starts_with('{') {
        return None;
    }
    let mut depth = 0usize;
    let mut key: Option<String> = None;
    let mut found = None;
    let mut guard = Guard::new(body.len()).ok()?;
    for next in Parser::new_from_str_with_options(body, parser_options()) {
        let (event, span) = next.ok()?;
        guard.event(&event).ok()?;
        // An implicit null (`{"$imagepolicy": }`) has an empty span; it names nothing.
        let empty = span.byte_range().is_none_or(|r| r.is_empty());
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            Event::Scalar(value, ..) if depth == 1 && !empty => match key.take() {
                None => key = Some(value.into_owned()),
                Some(k) if k == "$imagepolicy" => found = Some(value.into_owned()),
                Some(k) if k == "$ref" => {
                    found = value
                        .strip_prefix("#/definitions/io.k8s.cli.setters.")
                        .map(str::to_string);
                }
                Some(_) => {}
            },
            Event::Scalar(..) if depth == 1 => key = None,
            _ => {}
        }
    }
    found
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .get(..offset)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

/// Writes `value` in the scalar's own style, switching a plain scalar to double quotes only
/// when plain would change its meaning.
fn render(value: &str, style: ScalarStyle, in_flow: bool) -> String {
    match style {
        ScalarStyle::SingleQuoted if !value.chars().any(char::is_control) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        ScalarStyle::Plain if plain_is_safe(value, in_flow) => value.to_string(),
        _ => double_quoted(value),
    }
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Plain scalars that YAML 1.1 or 1.2 would read as something other than a string.
static NON_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        r"~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        r"|[-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)",
        r"|[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?",
        r"|<<|=",
        r")$"
    ))
    .expect("the non-string scalar pattern is a valid regular expression")
});

fn plain_is_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.trim() != value || value.chars().any(char::is_control) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    if in_flow && value.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    !NON_STRING.is_match(value)
}

#[cfg(test)]
mod tests;
