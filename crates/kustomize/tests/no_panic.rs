//! Property tests: arbitrary YAML-ish text as resources, patches and kustomizations never
//! makes the engine panic; it builds or returns an error.

use std::path::Path;

use ferroflux_kustomize::fs::MemFs;
use ferroflux_kustomize::yaml::{Value, parse_documents, to_yaml};
use ferroflux_kustomize::{Options, build};
use proptest::prelude::*;

#[path = "../fuzz/fuzz_targets/patch_any.rs"]
mod patch_any;

/// Text made of YAML's structural characters, keys and values that mean something to
/// kustomize, so that random input often parses.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "\n",
        "  ",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        "\"",
        "|",
        ">",
        "#",
        "&a ",
        "*a",
        "---\n",
        "name",
        "containers",
        "env",
        "$patch",
        "delete",
        "replace",
        "merge",
        "spec",
        "metadata",
        "kind",
        "apiVersion",
        "v1",
        "op",
        "add",
        "remove",
        "path",
        "/spec/x",
        "/-",
        "value",
        "1",
        "true",
        "null",
        "~",
        "ports",
        "containerPort",
        "80",
        "\t",
        "é",
        "$setElementOrder/containers",
        "$retainKeys",
        "$deleteFromPrimitiveList/args",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patching_never_panics(target in yamlish(), patch in yamlish()) {
        patch_any::patch_any(&target, &patch);
    }

    #[test]
    fn building_never_panics(kust in yamlish(), res in yamlish(), patch in yamlish()) {
        let mut fs = MemFs::new();
        fs.add("app/kustomization.yaml", format!("resources:\n- r.yaml\npatchesStrategicMerge:\n- p.yaml\n{kust}"))
            .add("app/r.yaml", res)
            .add("app/p.yaml", patch);
        let _ = build(&fs, Path::new("/app"), Options::default());
    }

    /// U+0085, U+2028 and U+2029 are excluded: go-yaml (and so kustomize) prints them as
    /// YAML 1.1 line breaks, which YAML 1.2 readers do not treat as breaks.
    #[test]
    fn printing_then_reading_gives_the_same_data(s in "([^\u{85}\u{2028}\u{2029}\\p{Cc}]|\n|\t|\r){0,120}") {
        let v = Value::Map([("k".to_string(), Value::Str(s.clone()))].into_iter().collect());
        let text = to_yaml(&v);
        let back = parse_documents(&text).expect("our own output parses");
        prop_assert_eq!(back[0].get("k"), Some(&Value::Str(s)));
    }
}
