//! Fuzzes the YAML-patch path: parse a target and a patch, apply the patch (strategic
//! merge or JSON 6902), print the result. Any input must give a result or an error, never
//! a panic. Run (from `crates/kustomize/fuzz`):
//! `cargo +nightly fuzz run yaml_patch corpus/yaml_patch seeds -- -max_total_time=600`.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod patch_any;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (target, patch) = text.split_once("\n---\n").unwrap_or((text, ""));
    patch_any::patch_any(target, patch);
});
