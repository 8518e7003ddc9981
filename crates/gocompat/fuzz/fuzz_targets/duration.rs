//! Fuzzes Go's duration parser (`ferroflux_gocompat::duration`): any text gives a duration or
//! Go's error, never a panic, and a parsed duration prints to text that parses back to it. Run
//! (from `crates/gocompat/fuzz`): `cargo +nightly fuzz run duration corpus/duration seeds -- -max_total_time=600`.
#![no_main]

use ferroflux_gocompat::duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(nanos) = duration::parse(text) {
        assert_eq!(duration::parse(&duration::format(nanos)), Ok(nanos));
    }
    let _ = duration::parse_std(text);
});
