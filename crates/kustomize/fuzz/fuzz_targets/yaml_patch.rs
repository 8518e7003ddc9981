//! Fuzzes the YAML-patch path: parse a target and a patch, apply the patch (strategic
//! merge or JSON 6902), print the result. Any input must give a result or an error, never
//! a panic. Run (from `crates/kustomize/fuzz`):
//! `cargo +nightly fuzz run yaml_patch corpus/yaml_patch seeds -- -max_total_time=600`.
#![no_main]

use ferroflux_kustomize::patch::{Schema, apply_json6902, apply_smp};
use ferroflux_kustomize::resource::Gvk;
use ferroflux_kustomize::yaml::{Value, parse_documents, to_yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (target, patch) = text.split_once("\n---\n").unwrap_or((text, ""));
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
});
