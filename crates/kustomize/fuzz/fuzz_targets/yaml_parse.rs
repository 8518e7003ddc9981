//! Fuzzes the YAML reader every kustomize build goes through (`yaml::parse_*`, granit-parser
//! events under the `ferroflux_gocompat::yaml` budget): any input gives documents or an error,
//! never a panic and never an alias expansion past the budget; what parses prints. Run (from
//! `crates/kustomize/fuzz`): `cargo +nightly fuzz run yaml_parse corpus/yaml_parse seeds ../../gocompat/fuzz/seeds -- -max_total_time=600`.
#![no_main]

use ferroflux_kustomize::yaml::parse::{parse_documents_with, parse_objects};
use ferroflux_kustomize::yaml::{parse_documents, to_yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(docs) = parse_documents(text) {
        for doc in &docs {
            let _ = to_yaml(doc);
        }
    }
    let _ = parse_documents_with(text, true);
    let _ = parse_objects(text);
});
