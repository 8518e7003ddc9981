//! `validate.MatchPattern`: a resource against a `pattern` with anchors and wildcards, with
//! Kyverno's error kinds (a conditional or global anchor that does not hold skips the rule, a
//! negation anchor that matches fails it) and the failing path (`/spec/containers/0/image/`).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value};

use crate::anchor::{self, AnchorType};
use crate::gofmt;
use crate::pattern;
use crate::wildcard;

/// Deepest pattern followed; deeper patterns are an error, not a stack overflow.
pub const MAX_PATTERN_DEPTH: usize = 64;

/// Which anchor made an error, when one did (Kyverno's `validateAnchorError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnchorErr {
    Conditional,
    Global,
    Negation,
}

/// An error of the walk. Kyverno tells kinds apart by type first and by message text second,
/// and so does [`Failure::is`].
#[derive(Debug, Clone)]
struct Failure {
    anchor: Option<AnchorErr>,
    /// A `PatternError` (a group of skips), which Kyverno treats apart from plain anchor errors.
    pattern_error: bool,
    message: String,
}

impl Failure {
    fn plain(message: String) -> Self {
        Failure {
            anchor: None,
            pattern_error: false,
            message,
        }
    }

    fn anchor(kind: AnchorErr, message: &str) -> Self {
        let prefix = match kind {
            AnchorErr::Conditional => "conditional anchor mismatch",
            AnchorErr::Global => "global anchor mismatch",
            AnchorErr::Negation => "negation anchor matched in resource",
        };
        Failure {
            anchor: Some(kind),
            pattern_error: false,
            message: format!("{prefix}: {message}"),
        }
    }

    fn is(&self, kind: AnchorErr) -> bool {
        match self.anchor {
            Some(own) => own == kind,
            None => {
                let text = match kind {
                    AnchorErr::Conditional => "conditional anchor mismatch",
                    AnchorErr::Global => "global anchor mismatch",
                    AnchorErr::Negation => "negation anchor matched in resource",
                };
                self.message.contains(text)
            }
        }
    }

    fn is_skip(&self) -> bool {
        self.is(AnchorErr::Conditional) || self.is(AnchorErr::Global)
    }

    fn skips(errors: &[Failure]) -> Failure {
        Failure {
            anchor: None,
            pattern_error: true,
            message: errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

type Walk = Result<(), (String, Failure)>;

/// What [`match_pattern`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Kyverno's error text.
    pub message: String,
    /// Where it failed; empty for a skip and for an execution error.
    pub path: String,
    /// An anchor says the rule does not apply.
    pub skip: bool,
}

/// `validate.MatchPattern`. `floats` says how the resource's numbers were decoded (see
/// [`gofmt::scalar`]).
pub fn match_pattern(resource: &Value, pattern: &Value, floats: bool) -> Result<(), PatternError> {
    let mut walker = Walker {
        anchors: BTreeMap::new(),
        floats,
    };
    let Err((path, err)) = walker.element(resource, pattern, "/", 0) else {
        return Ok(());
    };
    let (path, skip) = if err.is_skip() {
        (String::new(), true)
    } else if err.is(AnchorErr::Negation) || !walker.keys_are_missing() {
        (path, false)
    } else {
        (String::new(), false)
    };
    Err(PatternError {
        message: err.message,
        path,
        skip,
    })
}

struct Walker {
    /// Conditional, existence and negation anchor keys, and whether any resource map had them.
    anchors: BTreeMap<String, bool>,
    floats: bool,
}

impl Walker {
    fn keys_are_missing(&self) -> bool {
        self.anchors
            .iter()
            .any(|(k, found)| !found && !anchor::is_one_of(k, &[AnchorType::Negation]))
    }

    fn element(&mut self, resource: &Value, pattern: &Value, path: &str, depth: usize) -> Walk {
        if depth > MAX_PATTERN_DEPTH {
            return Err((
                path.into(),
                Failure::plain(format!("pattern deeper than {MAX_PATTERN_DEPTH} levels")),
            ));
        }
        match pattern {
            Value::Object(pattern_map) => {
                let Value::Object(resource_map) = resource else {
                    return Err((
                        path.into(),
                        Failure::plain(format!(
                            "pattern and resource have different structures. Path: {path}. Expected {}, found {}",
                            gofmt::type_name(pattern, true),
                            gofmt::type_name(resource, self.floats)
                        )),
                    ));
                };
                self.check_anchors_in_resource(pattern_map, resource);
                self.map(resource_map, pattern_map, path, depth)
            }
            Value::Array(pattern_items) => {
                let Value::Array(resource_items) = resource else {
                    return Err((
                        path.into(),
                        Failure::plain(format!(
                            "validation rule failed at path {path}, resource does not satisfy the expected overlay pattern"
                        )),
                    ));
                };
                self.array(resource_items, pattern_items, path, depth)
            }
            _ => self.leaf(resource, pattern, path),
        }
    }

    fn leaf(&self, resource: &Value, pattern: &Value, path: &str) -> Walk {
        let holds = match resource {
            Value::Array(items) => items
                .iter()
                .all(|item| pattern::validate(item, pattern, self.floats)),
            _ => pattern::validate(resource, pattern, self.floats),
        };
        if holds {
            return Ok(());
        }
        Err((
            path.into(),
            Failure::plain(format!(
                "resource value '{}' does not match '{}' at path {path}",
                gofmt::sprint(resource, self.floats),
                gofmt::sprint(pattern, true)
            )),
        ))
    }

    fn check_anchors_in_resource(&mut self, pattern: &Map<String, Value>, resource: &Value) {
        let kinds = [
            AnchorType::Condition,
            AnchorType::Existence,
            AnchorType::Negation,
        ];
        for key in pattern.keys() {
            let Some(a) = anchor::parse(key).filter(|a| kinds.contains(&a.kind)) else {
                continue;
            };
            let found = self.anchors.entry(key.clone()).or_insert(false);
            if !*found && has_key(resource, a.key) {
                *found = true;
            }
        }
    }

    fn map(
        &mut self,
        resource: &Map<String, Value>,
        pattern: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Walk {
        let pattern = expand_in_metadata(pattern, resource);
        let anchor_kinds = [
            AnchorType::Condition,
            AnchorType::Existence,
            AnchorType::Equality,
            AnchorType::Negation,
        ];
        // Kyverno walks keys in sorted order; sort here too whatever order the map keeps.
        let mut entries: Vec<_> = pattern.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let (anchors, plain): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(k, _)| anchor::is_one_of(k, &anchor_kinds));
        let mut skips: Vec<Failure> = Vec::new();
        let mut applied = 0usize;
        for (key, value) in anchors {
            match self.handle(key, value, resource, path, depth) {
                Ok(()) => applied += 1,
                Err((_, err)) if err.is_skip() => skips.push(err),
                Err(failure) => {
                    if !skips.iter().any(|s| !s.pattern_error) {
                        return Err(failure);
                    }
                }
            }
        }
        if !skips.is_empty() && (applied == 0 || skips.iter().any(|s| !s.pattern_error)) {
            return Err((path.into(), Failure::skips(&skips)));
        }
        for (key, value) in nested_anchors_first(plain) {
            self.handle(key, value, resource, path, depth)?;
        }
        Ok(())
    }

    fn array(&mut self, resource: &[Value], pattern: &[Value], path: &str, depth: usize) -> Walk {
        let Some(first) = pattern.first() else {
            return Err((path.into(), Failure::plain("pattern Array empty".into())));
        };
        match first {
            Value::Object(_) => self.array_of_maps(resource, first, path, depth),
            Value::Array(_) => {
                if resource.len() < pattern.len() {
                    return Err((
                        String::new(),
                        Failure::plain(format!(
                            "validate Array failed, array length mismatch, resource Array len is {} and pattern Array len is {}",
                            resource.len(),
                            pattern.len()
                        )),
                    ));
                }
                let mut skips = Vec::new();
                let mut applied = 0usize;
                for (i, item) in pattern.iter().enumerate() {
                    let item_path = format!("{path}{i}/");
                    match self.element(&resource[i], item, &item_path, depth + 1) {
                        Ok(()) => applied += 1,
                        Err((_, err)) if err.is_skip() => skips.push(err),
                        Err(failure) => return Err(failure),
                    }
                }
                if applied == 0 && !skips.is_empty() {
                    return Err((path.into(), Failure::skips(&skips)));
                }
                Ok(())
            }
            _ => self.leaf(&Value::Array(resource.to_vec()), first, path),
        }
    }

    fn array_of_maps(
        &mut self,
        resource: &[Value],
        pattern: &Value,
        path: &str,
        depth: usize,
    ) -> Walk {
        let mut skips = Vec::new();
        let mut applied = 0usize;
        for (i, item) in resource.iter().enumerate() {
            let item_path = format!("{path}{i}/");
            match self.element(item, pattern, &item_path, depth + 1) {
                Ok(()) => applied += 1,
                Err((_, err)) if err.is_skip() => skips.push(err),
                Err(failure) => return Err(failure),
            }
        }
        if applied == 0 && !skips.is_empty() {
            return Err((path.into(), Failure::skips(&skips)));
        }
        Ok(())
    }

    /// `CreateElementHandler(...).Handle`: one pattern key against the resource map.
    fn handle(
        &mut self,
        key: &str,
        pattern: &Value,
        resource: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Walk {
        let parsed = anchor::parse(key).filter(|a| a.kind != AnchorType::AddIfNotPresent);
        let Some(a) = parsed else {
            return self.handle_plain(key, pattern, resource, path, depth);
        };
        let current = format!("{path}{}/", a.key);
        let value = resource.get(a.key);
        match a.kind {
            AnchorType::Negation => match value {
                Some(_) => Err((
                    current.clone(),
                    Failure::anchor(AnchorErr::Negation, &format!("{current} is not allowed")),
                )),
                None => Ok(()),
            },
            AnchorType::Equality => match value {
                Some(v) => self.element(v, pattern, &current, depth + 1),
                None => Ok(()),
            },
            AnchorType::Condition => match value {
                Some(v) => self
                    .element(v, pattern, &current, depth + 1)
                    .map_err(|(p, e)| (p, Failure::anchor(AnchorErr::Conditional, &e.message))),
                None => Err((
                    current,
                    Failure::anchor(
                        AnchorErr::Conditional,
                        "conditional anchor key doesn't exist in the resource",
                    ),
                )),
            },
            AnchorType::Global => match value {
                Some(v) => self
                    .element(v, pattern, &current, depth + 1)
                    .map_err(|(p, e)| (p, Failure::anchor(AnchorErr::Global, &e.message))),
                None => Ok(()),
            },
            AnchorType::Existence => match value {
                Some(v) => self.existence(v, pattern, &current, depth),
                None => Ok(()),
            },
            AnchorType::AddIfNotPresent => Ok(()),
        }
    }

    fn handle_plain(
        &mut self,
        key: &str,
        pattern: &Value,
        resource: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Walk {
        let value = resource.get(key).unwrap_or(&Value::Null);
        if pattern.as_str() == Some("*") {
            if value.is_null() {
                return Err((
                    path.into(),
                    Failure::plain(format!("{path}/{key} not found")),
                ));
            }
            return Ok(());
        }
        self.element(value, pattern, &format!("{path}{key}/"), depth + 1)
    }

    fn existence(&mut self, value: &Value, pattern: &Value, path: &str, depth: usize) -> Walk {
        let Value::Array(items) = value else {
            return Err((
                path.into(),
                Failure::plain(format!(
                    "invalid resource type {}: Existence ^ () anchor can be used only on list/array type resource",
                    gofmt::type_name(value, self.floats)
                )),
            ));
        };
        let Value::Array(patterns) = pattern else {
            return Err((
                path.into(),
                Failure::plain(format!(
                    "invalid pattern type {}: Pattern has to be of list to compare against resource",
                    gofmt::type_name(pattern, true)
                )),
            ));
        };
        for sub in patterns {
            if !sub.is_object() {
                return Err((
                    path.into(),
                    Failure::plain(format!(
                        "invalid pattern type {}: Pattern has to be of type map to compare against items in resource",
                        gofmt::type_name(pattern, true)
                    )),
                ));
            }
            let found = items.iter().enumerate().any(|(i, item)| {
                self.element(item, sub, &format!("{path}{i}/"), depth + 1)
                    .is_ok()
            });
            if !found {
                return Err((
                    path.into(),
                    Failure::plain(format!("existence anchor validation failed at path {path}")),
                ));
            }
        }
        Ok(())
    }
}

/// `resourceHasValueForKey`: the key in this map, or in any map of this list.
fn has_key(resource: &Value, key: &str) -> bool {
    match resource {
        Value::Object(map) => map.contains_key(key),
        Value::Array(items) => items.iter().any(|item| has_key(item, key)),
        _ => false,
    }
}

/// `getSortedNestedAnchorResource`: sorted keys, global anchors and keys holding anchors moved
/// to the front (each in front of the previous one, as Go's `PushFront` does).
fn nested_anchors_first<'a>(
    plain: Vec<(&'a String, &'a Value)>,
) -> VecDeque<(&'a String, &'a Value)> {
    let mut ordered = VecDeque::with_capacity(plain.len());
    for (key, value) in plain {
        if anchor::is_one_of(key, &[AnchorType::Global]) || has_nested_anchors(value, 0) {
            ordered.push_front((key, value));
        } else {
            ordered.push_back((key, value));
        }
    }
    ordered
}

fn has_nested_anchors(pattern: &Value, depth: usize) -> bool {
    if depth > MAX_PATTERN_DEPTH {
        return false;
    }
    let kinds = [
        AnchorType::Condition,
        AnchorType::Existence,
        AnchorType::Equality,
        AnchorType::Negation,
        AnchorType::Global,
    ];
    match pattern {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| anchor::is_one_of(k, &kinds) || has_nested_anchors(v, depth + 1)),
        Value::Array(items) => items.iter().any(|v| has_nested_anchors(v, depth + 1)),
        _ => false,
    }
}

/// `wildcards.ExpandInMetadata`: wildcard keys of `metadata.labels`/`annotations` in the
/// pattern replaced by the first resource key they match.
fn expand_in_metadata(
    pattern: &Map<String, Value>,
    resource: &Map<String, Value>,
) -> Map<String, Value> {
    let mut pattern = pattern.clone();
    let Some(meta_key) = tagged_key("metadata", &pattern) else {
        return pattern;
    };
    let Some(Value::Object(resource_meta)) = resource.get("metadata") else {
        return pattern;
    };
    let Some(Value::Object(meta)) = pattern.get_mut(&meta_key) else {
        return pattern;
    };
    for tag in ["labels", "annotations"] {
        let Some(pattern_key) = tagged_key(tag, meta) else {
            continue;
        };
        let (Some(pattern_data), Some(resource_data)) = (
            string_map(meta.get(&pattern_key)),
            string_map(resource_meta.get(tag)),
        ) else {
            continue;
        };
        let expanded = expand_keys(pattern_data, &resource_data);
        meta.insert(pattern_key, Value::Object(expanded));
    }
    pattern
}

/// The key of `map` that is `tag` or an anchor around it.
fn tagged_key(tag: &str, map: &Map<String, Value>) -> Option<String> {
    map.keys()
        .find(|k| *k == tag || anchor::parse(k).is_some_and(|a| a.key == tag))
        .cloned()
}

/// The string entries of a map value.
fn string_map(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let Value::Object(map) = value? else {
        return None;
    };
    Some(
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
    )
}

fn expand_keys(
    pattern: BTreeMap<String, String>,
    resource: &BTreeMap<String, String>,
) -> Map<String, Value> {
    let first_match = |key: &str| {
        resource
            .keys()
            .find(|k| wildcard::matches(key, k))
            .cloned()
            .unwrap_or_else(|| key.to_string())
    };
    pattern
        .into_iter()
        .map(|(k, v)| {
            let key = if !wildcard::contains_wildcard(&k) {
                k
            } else if let Some(a) = anchor::parse(&k) {
                anchor::render(a.kind, &first_match(a.key))
            } else {
                first_match(&k)
            };
            (key, Value::String(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(resource: Value, pattern: Value) -> Result<(), PatternError> {
        match_pattern(&resource, &pattern, false)
    }

    #[test]
    fn plain_patterns_report_the_failing_path() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "nginx:latest"}]}});
        let err = check(
            pod.clone(),
            json!({"spec": {"containers": [{"image": "!*:latest"}]}}),
        )
        .expect_err("latest is refused");
        assert_eq!(err.path, "/spec/containers/0/image/");
        assert!(!err.skip);
        assert!(check(pod, json!({"spec": {"containers": [{"image": "*:*"}]}})).is_ok());
    }

    #[test]
    fn conditional_anchor_skips_when_it_does_not_hold() {
        let pattern =
            json!({"spec": {"containers": [{"(image)": "*:latest", "imagePullPolicy": "Always"}]}});
        let tagged = json!({"spec": {"containers": [{"image": "nginx:1.2"}]}});
        let err = check(tagged, pattern.clone()).expect_err("skip");
        assert!(err.skip, "{err:?}");
        let latest = json!({"spec": {"containers": [{"image": "nginx:latest", "imagePullPolicy": "IfNotPresent"}]}});
        let err = check(latest, pattern.clone()).expect_err("fail");
        assert!(!err.skip);
        assert_eq!(err.path, "/spec/containers/0/imagePullPolicy/");
        let good = json!({"spec": {"containers": [{"image": "nginx:latest", "imagePullPolicy": "Always"}]}});
        assert!(check(good, pattern).is_ok());
    }

    #[test]
    fn global_anchor_skips_the_whole_pattern() {
        let pattern = json!({"spec": {"<(type)": "LoadBalancer", "loadBalancerSourceRanges": "*"}});
        let err = check(json!({"spec": {"type": "ClusterIP"}}), pattern.clone()).expect_err("skip");
        assert!(err.skip);
        let err = check(json!({"spec": {"type": "LoadBalancer"}}), pattern).expect_err("fail");
        assert!(!err.skip);
        assert_eq!(err.path, "/spec/");
    }

    #[test]
    fn negation_equality_and_existence_anchors() {
        let no_host_path = json!({"spec": {"volumes": [{"X(hostPath)": "null"}]}});
        let err = check(
            json!({"spec": {"volumes": [{"hostPath": {"path": "/"}}]}}),
            no_host_path.clone(),
        )
        .expect_err("hostPath refused");
        assert_eq!(err.path, "/spec/volumes/0/hostPath/");
        assert!(
            check(
                json!({"spec": {"volumes": [{"emptyDir": {}}]}}),
                no_host_path
            )
            .is_ok()
        );

        let equality = json!({"spec": {"=(hostNetwork)": false}});
        assert!(check(json!({"spec": {}}), equality.clone()).is_ok());
        assert!(check(json!({"spec": {"hostNetwork": true}}), equality).is_err());

        let existence = json!({"spec": {"^(containers)": [{"image": "nginx*"}]}});
        assert!(
            check(
                json!({"spec": {"containers": [{"image": "redis"}, {"image": "nginx:1"}]}}),
                existence.clone()
            )
            .is_ok()
        );
        assert!(
            check(
                json!({"spec": {"containers": [{"image": "redis"}]}}),
                existence
            )
            .is_err()
        );
    }

    #[test]
    fn wildcard_label_keys_expand_to_the_resource_key() {
        let pattern = json!({"metadata": {"labels": {"app.kubernetes.io/*": "?*"}}});
        assert!(
            check(
                json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
                pattern.clone()
            )
            .is_ok()
        );
        assert!(check(json!({"metadata": {"labels": {"other": "x"}}}), pattern).is_err());
    }

    #[test]
    fn a_deep_pattern_is_an_error_not_a_crash() {
        let mut pattern = json!("x");
        let mut resource = json!("x");
        for _ in 0..200 {
            pattern = json!({ "a": pattern });
            resource = json!({ "a": resource });
        }
        let err = check(resource, pattern).expect_err("too deep");
        assert!(err.message.contains("deeper"));
    }
}
