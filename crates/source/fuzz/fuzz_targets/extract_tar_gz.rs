//! Fuzzes the artifact extractor: any input must extract or give an error, never panic,
//! allocate without bound, leave a symlink behind or write outside the target directory.
//! The first byte picks the mode: odd, the rest is fed as the gzip stream itself; even, the
//! rest is a tar stream gzipped here (so the fuzzer mutates tar headers, not deflate
//! blocks). Run (from `crates/source/fuzz`):
//! `cargo +nightly fuzz run extract_tar_gz corpus/extract_tar_gz seeds -- -max_total_time=600`.
#![no_main]

use std::io::Write;

use ferroflux_source::artifact::{ExtractOptions, extract_tar_gz};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let archive = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(rest).expect("writing to a Vec cannot fail");
        gz.finish().expect("writing to a Vec cannot fail")
    };
    let sandbox = tempfile::tempdir().expect("temp dir");
    let out = sandbox.path().join("out");
    // Small limits keep each run fast; the limits' logic is the same at any size.
    let options = ExtractOptions {
        max_size: 4 << 20,
        max_entries: 512,
    };
    let result = extract_tar_gz(&archive[..], &out, &options);
    let left: Vec<_> = std::fs::read_dir(sandbox.path())
        .expect("sandbox is readable")
        .map(|e| e.expect("entry").file_name())
        .collect();
    match result {
        Ok(summary) => {
            assert_eq!(left, ["out"], "wrote next to the target");
            assert!(summary.bytes <= options.max_size);
            assert_no_symlinks(&out);
        }
        Err(_) => assert!(left.is_empty(), "a failed extraction left {left:?}"),
    }
});

fn assert_no_symlinks(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("extracted dir is readable") {
        let entry = entry.expect("entry");
        let kind = entry.file_type().expect("file type");
        assert!(!kind.is_symlink(), "symlink {:?} extracted", entry.path());
        if kind.is_dir() {
            assert_no_symlinks(&entry.path());
        }
    }
}
