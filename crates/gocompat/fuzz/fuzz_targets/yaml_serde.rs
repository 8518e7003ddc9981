//! Fuzzes the serde YAML readers every crate uses (`ferroflux_gocompat::yaml`): any input gives
//! a value or an error, never a panic, and never more than the budget's memory. Run (from
//! `crates/gocompat/fuzz`): `cargo +nightly fuzz run yaml_serde corpus/yaml_serde seeds -- -max_total_time=600`.
#![no_main]

use ferroflux_gocompat::yaml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = yaml::from_slice::<serde_json::Value>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = yaml::from_multiple::<serde_json::Value>(text);
    }
});
