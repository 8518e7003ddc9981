//! Fuzzes the image setter reader (`ferroflux_image::setters::rewrite`), which walks YAML
//! events under the same budget: any file gives a rewrite or an error, never a panic. Run (from
//! `crates/gocompat/fuzz`): `cargo +nightly fuzz run image_setters corpus/image_setters seeds -- -max_total_time=600`.
#![no_main]

use ferroflux_image::setters::{LatestImage, Setters, rewrite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let latest = LatestImage {
        name: "reg.example/app".to_string(),
        tag: "1.10".to_string(),
        digest: Some("sha256:abc".to_string()),
    };
    let setters = Setters::from_policies([("ns:app", &latest)]);
    let _ = rewrite("fuzz.yaml", text, &setters);
});
