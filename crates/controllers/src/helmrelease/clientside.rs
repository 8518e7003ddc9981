//! Helm's client-side apply (`serverSideApply: false`/`disabled`): objects are created when
//! absent and otherwise patched with a three-way merge patch computed from the previous
//! release's manifest (what Helm applied last), the rendered object and the live one, or,
//! with `force`, replaced whole (Helm's `ForceReplace`).

use serde_json::{Map, Value};

/// How deep a three-way merge descends into a tenant's object: deeper maps are replaced whole.
const MAX_DEPTH: usize = 64;

/// kubectl's `CreateThreeWayJSONMergePatch`: a JSON merge patch that sets what `modified`
/// wants where `current` differs, and deletes (`null`) what `original` set and `modified`
/// no longer does; lists are replaced whole. Empty when nothing is to change.
pub fn three_way_merge_patch(original: &Value, modified: &Value, current: &Value) -> Value {
    Value::Object(patch_of(original, modified, current, 0))
}

fn patch_of(
    original: &Value,
    modified: &Value,
    current: &Value,
    depth: usize,
) -> Map<String, Value> {
    let mut patch = Map::new();
    let empty = Map::new();
    let wanted = modified.as_object().unwrap_or(&empty);
    let live = current.as_object().unwrap_or(&empty);
    let before = original.as_object().unwrap_or(&empty);
    // What the previous release set and this one drops, still on the live object.
    for key in before.keys() {
        if !wanted.contains_key(key) && live.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    for (key, value) in wanted {
        match live.get(key) {
            Some(now) if now == value => {}
            Some(now) if value.is_object() && now.is_object() && depth < MAX_DEPTH => {
                let was = before.get(key).unwrap_or(&Value::Null);
                let nested = patch_of(was, value, now, depth + 1);
                if !nested.is_empty() {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    patch
}

/// The object Helm's `ForceReplace` puts: the rendered object at the live one's
/// `resourceVersion` (a replace overwrites whatever else the live object holds).
pub fn replacement(modified: &Value, current: &Value) -> Value {
    let mut object = modified.clone();
    if let Some(version) = current["metadata"]["resourceVersion"].as_str()
        && let Some(metadata) = object["metadata"].as_object_mut()
    {
        metadata.insert("resourceVersion".into(), Value::String(version.into()));
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_what_differs_and_deletes_what_the_release_dropped() {
        let original = json!({"data": {"a": "1", "gone": "x"}, "metadata": {"labels": {"l": "1"}}});
        let modified = json!({"data": {"a": "2"}, "metadata": {"labels": {"l": "1"}}});
        let current = json!({"data": {"a": "1", "gone": "x", "theirs": "y"},
            "metadata": {"labels": {"l": "1", "other": "z"}, "resourceVersion": "7"}});
        assert_eq!(
            three_way_merge_patch(&original, &modified, &current),
            json!({"data": {"a": "2", "gone": null}})
        );
    }

    #[test]
    fn nothing_to_change_is_an_empty_patch() {
        let object = json!({"data": {"a": "1"}, "list": [1, 2]});
        assert_eq!(three_way_merge_patch(&object, &object, &object), json!({}));
        let current = json!({"data": {"a": "1"}, "list": [1]});
        assert_eq!(
            three_way_merge_patch(&object, &object, &current),
            json!({"list": [1, 2]})
        );
    }

    #[test]
    fn a_replacement_carries_the_live_resource_version() {
        let modified = json!({"metadata": {"name": "a"}, "data": {"a": "1"}});
        let current =
            json!({"metadata": {"name": "a", "resourceVersion": "42", "labels": {"x": "y"}}});
        assert_eq!(
            replacement(&modified, &current),
            json!({"metadata": {"name": "a", "resourceVersion": "42"}, "data": {"a": "1"}})
        );
    }
}
