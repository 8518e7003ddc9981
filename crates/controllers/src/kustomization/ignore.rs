//! A Kustomization's `spec.ignore`: JSON pointers left out of drift detection on the objects
//! a rule's `target` selects (every object when it has none). Selectors work as in Flux:
//! `group`, `version`, `kind`, `name` and `namespace` are anchored regular expressions,
//! `labelSelector` and `annotationSelector` Kubernetes label selector expressions. The rules
//! are checked before anything else: a bad one is the user's to fix and stalls.

use std::collections::BTreeMap;

use ferroflux_api::kustomize::IgnoreRule;
use ferroflux_api::meta::{Selector, reason};
use ferroflux_apply::drift::Pointer;
use ferroflux_apply::object::ObjectRef;
use regex::Regex;
use serde_json::Value;

use crate::runtime::ReconcileError;

/// Most rules in `spec.ignore`.
pub const MAX_RULES: usize = 64;
/// Most paths in one rule.
pub const MAX_PATHS: usize = 64;
/// Longest path or selector expression, in bytes.
pub const MAX_TEXT: usize = 1024;
/// Compiled size limit of one selector regular expression (the `regex` crate's measure).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One checked rule.
#[derive(Debug)]
pub struct Rule {
    target: Option<Target>,
    paths: Vec<Pointer>,
}

#[derive(Debug, Default)]
struct Target {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Option<String>,
    annotations: Option<String>,
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::stalling(reason::INVALID, format!("invalid {field}: {why}"))
}

/// Checks and compiles `spec.ignore`.
pub fn compile(rules: Option<&[IgnoreRule]>) -> Result<Vec<Rule>, ReconcileError> {
    let rules = rules.unwrap_or_default();
    if rules.len() > MAX_RULES {
        return Err(invalid(
            "spec.ignore",
            format!("{} rules, at most {MAX_RULES} are allowed", rules.len()),
        ));
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let field = format!("spec.ignore[{i}]");
            if rule.paths.len() > MAX_PATHS {
                return Err(invalid(
                    &format!("{field}.paths"),
                    format!(
                        "{} paths, at most {MAX_PATHS} are allowed",
                        rule.paths.len()
                    ),
                ));
            }
            let paths = rule
                .paths
                .iter()
                .enumerate()
                .map(|(j, path)| {
                    let field = format!("{field}.paths[{j}]");
                    if path.len() > MAX_TEXT {
                        return Err(invalid(&field, format!("longer than {MAX_TEXT} bytes")));
                    }
                    Pointer::parse(path).map_err(|e| invalid(&field, format!("'{path}': {e}")))
                })
                .collect::<Result<_, _>>()?;
            let target = rule
                .target
                .as_ref()
                .map(|t| Target::compile(t, &format!("{field}.target")))
                .transpose()?;
            Ok(Rule { target, paths })
        })
        .collect()
}

impl Target {
    fn compile(selector: &Selector, field: &str) -> Result<Self, ReconcileError> {
        let text = |name: &str, value: &Option<String>| -> Result<Option<String>, ReconcileError> {
            match value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) if v.len() > MAX_TEXT => Err(invalid(
                    &format!("{field}.{name}"),
                    format!("longer than {MAX_TEXT} bytes"),
                )),
                other => Ok(other.map(str::to_string)),
            }
        };
        let regex = |name: &str, value: &Option<String>| -> Result<Option<Regex>, ReconcileError> {
            text(name, value)?
                .map(|pattern| {
                    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                        .size_limit(REGEX_SIZE_LIMIT)
                        .build()
                        .map_err(|e| {
                            invalid(
                                &format!("{field}.{name}"),
                                format!(
                                    "'{pattern}' is not a valid regular expression: {}",
                                    regex_reason(&e.to_string())
                                ),
                            )
                        })
                })
                .transpose()
        };
        let selector_text = |name: &str, value: &Option<String>| {
            let found = text(name, value)?;
            if let Some(expr) = &found {
                check_label_selector(expr).map_err(|why| {
                    invalid(&format!("{field}.{name}"), format!("'{expr}': {why}"))
                })?;
            }
            Ok::<_, ReconcileError>(found)
        };
        Ok(Target {
            group: regex("group", &selector.group)?,
            version: regex("version", &selector.version)?,
            kind: regex("kind", &selector.kind)?,
            name: regex("name", &selector.name)?,
            namespace: regex("namespace", &selector.namespace)?,
            labels: selector_text("labelSelector", &selector.label_selector)?,
            annotations: selector_text("annotationSelector", &selector.annotation_selector)?,
        })
    }

    fn matches(&self, object: &Value) -> bool {
        let hit = |rx: &Option<Regex>, text: &str| rx.as_ref().is_none_or(|rx| rx.is_match(text));
        let Ok(id) = ObjectRef::of(object, 0) else {
            return false;
        };
        let meta = |field: &str| -> Vec<(String, String)> {
            object["metadata"][field]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        };
        let selects = |expr: &Option<String>, field: &str| {
            expr.as_ref().is_none_or(|expr| {
                ferroflux_kustomize::patch::label_selector_matches(expr, &meta(field))
                    .unwrap_or(false)
            })
        };
        hit(&self.group, &id.group)
            && hit(&self.version, &id.version)
            && hit(&self.kind, &id.kind)
            && hit(&self.name, &id.name)
            && hit(&self.namespace, &id.namespace)
            && selects(&self.labels, "labels")
            && selects(&self.annotations, "annotations")
    }
}

/// The regex crate's errors span several lines (the pattern with a caret, then `error: why`);
/// the status keeps the why.
fn regex_reason(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or_default())
        .to_string()
}

/// The pointers each of `objects` has ignored, keyed as the resource manager keys objects.
pub fn ignored_paths(rules: &[Rule], objects: &[Value]) -> BTreeMap<ObjectRef, Vec<Pointer>> {
    let mut out = BTreeMap::new();
    if rules.is_empty() {
        return out;
    }
    for (index, object) in objects.iter().enumerate() {
        let Ok(id) = ObjectRef::of(object, index) else {
            continue;
        };
        let paths: Vec<Pointer> = rules
            .iter()
            .filter(|rule| rule.target.as_ref().is_none_or(|t| t.matches(object)))
            .flat_map(|rule| rule.paths.iter().cloned())
            .collect();
        if !paths.is_empty() {
            out.insert(id, paths);
        }
    }
    out
}

/// Checks a Kubernetes label selector expression (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
/// `a`, `!a`, comma-separated) the way `labels.Parse` accepts it: keys are qualified names,
/// values label values.
fn check_label_selector(expr: &str) -> Result<(), String> {
    for requirement in split_top_level(expr) {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            return Err("found ',', expected: identifier".into());
        }
        if let Some(key) = requirement.strip_prefix('!') {
            check_key(key.trim())?;
            continue;
        }
        let set_op = [" notin ", " in "]
            .iter()
            .find_map(|op| requirement.split_once(op));
        if let Some((key, set)) = set_op {
            check_key(key.trim())?;
            let inner = set
                .trim()
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("found '{}', expected: '('", set.trim()))?;
            for value in inner.split(',') {
                check_value(value.trim())?;
            }
            continue;
        }
        let eq_op = ["!=", "==", "="]
            .iter()
            .find_map(|op| requirement.split_once(op));
        match eq_op {
            Some((key, value)) => {
                check_key(key.trim())?;
                check_value(value.trim())?;
            }
            None => check_key(requirement)?,
        }
    }
    Ok(())
}

fn split_top_level(expr: &str) -> Vec<&str> {
    if expr.trim().is_empty() {
        return Vec::new();
    }
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in expr.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expr[start..]);
    parts
}

/// A label name: at most 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn is_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                let b = label.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            })
    });
    if prefix_ok && is_name(name) {
        Ok(())
    } else {
        Err(format!(
            "key '{key}' is not a qualified name (an optional DNS subdomain prefix and '/', then at most 63 alphanumeric characters, '-', '_' or '.', alphanumeric at both ends)"
        ))
    }
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value) {
        Ok(())
    } else {
        Err(format!(
            "value '{value}' is not a valid label value (at most 63 alphanumeric characters, '-', '_' or '.', alphanumeric at both ends)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(paths: &[&str], target: Option<Selector>) -> IgnoreRule {
        IgnoreRule {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            target,
        }
    }

    fn message(rules: &[IgnoreRule]) -> String {
        let err = compile(Some(rules)).expect_err("invalid");
        assert_eq!(
            (err.reason, err.retry),
            (reason::INVALID, crate::runtime::Retry::Stalling)
        );
        err.message
    }

    #[test]
    fn targets_select_by_regex_and_selectors() {
        let rules = compile(Some(&[
            rule(
                &["/spec/replicas"],
                Some(Selector {
                    kind: Some("Deploy.*".into()),
                    label_selector: Some("tier in (web,api),!legacy".into()),
                    ..Default::default()
                }),
            ),
            rule(&["/metadata/annotations/dns~1host"], None),
        ]))
        .expect("valid");
        let objects = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "a", "labels": {"tier": "web"}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "old", "namespace": "a", "labels": {"tier": "web", "legacy": "y"}}}),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSetDeployment",
                "metadata": {"name": "x", "namespace": "a", "labels": {"tier": "web"}}}),
        ];
        let ignored = ignored_paths(&rules, &objects);
        let paths = |i: usize| {
            ignored
                .get(&ObjectRef::of(&objects[i], i).expect("id"))
                .map(Vec::len)
        };
        assert_eq!(paths(0), Some(2), "both rules select web");
        assert_eq!(
            paths(1),
            Some(1),
            "the label selector excludes legacy objects"
        );
        assert_eq!(paths(2), Some(1), "the kind regex is anchored");
    }

    #[test]
    fn invalid_rules_stall_with_the_field_named() {
        assert_eq!(
            message(&[rule(&["/spec/replicas", "spec/paused"], None)]),
            "invalid spec.ignore[0].paths[1]: 'spec/paused': JSON pointer must be empty or start with a \"/\""
        );
        let bad_kind = Selector {
            kind: Some("Deploy(".into()),
            ..Default::default()
        };
        let text = message(&[rule(&["/a"], None), rule(&["/a"], Some(bad_kind))]);
        assert!(
            text.starts_with(
                "invalid spec.ignore[1].target.kind: 'Deploy(' is not a valid regular expression: "
            ),
            "{text}"
        );
        assert!(text.ends_with(": unclosed group"), "{text}");
        let bad_labels = Selector {
            label_selector: Some("tier in web".into()),
            ..Default::default()
        };
        assert_eq!(
            message(&[rule(&["/a"], Some(bad_labels))]),
            "invalid spec.ignore[0].target.labelSelector: 'tier in web': found 'web', expected: '('"
        );
        let bad_annotations = Selector {
            annotation_selector: Some("a/b/c=x".into()),
            ..Default::default()
        };
        assert!(
            message(&[rule(&["/a"], Some(bad_annotations))])
                .starts_with("invalid spec.ignore[0].target.annotationSelector: 'a/b/c=x': key 'a/b/c' is not a qualified name")
        );
        let many: Vec<IgnoreRule> = (0..=MAX_RULES).map(|_| rule(&["/a"], None)).collect();
        assert_eq!(
            message(&many),
            format!(
                "invalid spec.ignore: {} rules, at most {MAX_RULES} are allowed",
                MAX_RULES + 1
            )
        );
        let paths: Vec<String> = (0..=MAX_PATHS).map(|i| format!("/p{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        assert!(
            message(&[rule(&refs, None)]).starts_with("invalid spec.ignore[0].paths: 65 paths")
        );
    }
}
