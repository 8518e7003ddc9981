//! The YAML-patch round shared by the `yaml_patch` fuzz target and the property test
//! `tests/no_panic.rs` (which includes this file by path), so both exercise the same path.

use ferroflux_kustomize::patch::{Schema, apply_json6902, apply_smp};
use ferroflux_kustomize::resource::Gvk;
use ferroflux_kustomize::yaml::{Value, parse_documents, to_yaml};

/// Parses `target` and `patch`, applies every patch document (a mapping as a strategic merge,
/// a sequence as JSON 6902) to the first target mapping and prints the result. Text that is
/// not YAML, or a patch that does not apply, is simply skipped: only a panic is a failure.
pub fn patch_any(target: &str, patch: &str) {
    let (Ok(t), Ok(p)) = (parse_documents(target), parse_documents(patch)) else {
        return;
    };
    let Some(Value::Map(mut obj)) = t.into_iter().next() else {
        return;
    };
    let gvk = Gvk::from_api_version("apps/v1", "Deployment");
    for doc in p {
        match &doc {
            Value::Map(pm) => {
                apply_smp(&mut obj, pm, Schema::for_kind(None, &gvk));
            }
            Value::Seq(_) => {
                let _ = apply_json6902(&mut obj, &doc);
            }
            _ => {}
        }
    }
    let _ = to_yaml(&Value::Map(obj));
}
