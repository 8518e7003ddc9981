//! Reading and re-printing every expected output of the kustomize corpus must give the same
//! bytes: a check of the YAML writer against upstream's printer. Skips when `../shared` is
//! absent.

use std::path::PathBuf;

use ferroflux_kustomize::yaml::{parse_documents, to_yaml_stream};

#[test]
fn expected_outputs_reprint_byte_for_byte() {
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/kustomize/cases");
    let Ok(entries) = std::fs::read_dir(&cases) else {
        ferroflux_testpeers::skip(format!("{} is absent", cases.display()));
        return;
    };
    let (mut passed, mut failed) = (0, 0);
    for entry in entries.flatten() {
        let path = entry.path().join("expected.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let docs = parse_documents(&text).expect("expected outputs are valid YAML");
        let docs: Vec<_> = docs.into_iter().filter(|d| !d.is_null()).collect();
        let out = to_yaml_stream(docs.iter());
        if out == text {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("differs: {}", path.display());
            for (a, b) in text.lines().zip(out.lines()) {
                if a != b {
                    eprintln!("  expected: {a}\n  actual:   {b}");
                    break;
                }
            }
        }
    }
    eprintln!("{passed} passed, {failed} failed");
    assert_eq!(failed, 0);
}
