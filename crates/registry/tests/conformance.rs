//! The OCI distribution-spec conformance suite (the `oci-conformance` peer that
//! scripts/peers.sh builds) against the registry, every feature the suite knows switched on,
//! each case held to tests/conformance/known-failures.txt.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ferroflux_testpeers::KnownFailures;

/// Every `<testcase name=... status=...>` of the suite's junit.xml (a case name can repeat,
/// e.g. `blob-delete` for each blob of one data set).
fn outcomes(junit: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(junit);
    let mut cases = Vec::new();
    loop {
        match reader.read_event().expect("junit.xml is XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let attr = |key: &[u8]| {
                    e.try_get_attribute(key)
                        .ok()
                        .flatten()
                        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok())
                        .map(|v| v.into_owned())
                        .unwrap_or_default()
                };
                cases.push((attr(b"name"), attr(b"status")));
            }
            Event::Eof => return cases,
            _ => {}
        }
    }
}

#[test]
fn the_oci_conformance_suite_passes() {
    let suite = match ferroflux_testpeers::peer_binary("oci-conformance") {
        Ok(p) => p,
        Err(e) => return ferroflux_testpeers::skip(format!("oci-conformance: {e}")),
    };
    let served = common::serve();
    let out = Command::new(&suite)
        // No oci-conformance.yaml there: the environment is the whole configuration.
        .current_dir(served.dir.path())
        .env("OCI_REGISTRY", served.host())
        .env("OCI_TLS", "disabled")
        .env("OCI_VERSION", "1.1")
        .env("OCI_REPO1", "conformance/repo1")
        .env("OCI_REPO2", "conformance/repo2")
        .env("OCI_RESULTS_DIR", served.dir.path().join("results"))
        // The optional features, all of which the registry has.
        .env("OCI_API_BLOBS_UPLOAD_CANCEL", "true")
        .env("OCI_API_BLOBS_MOUNT_ANONYMOUS", "true")
        .env("OCI_API_MANIFESTS_TAG_PARAM", "true")
        .env("OCI_API_BLOBS_DIGEST_HEADER", "true")
        .env("OCI_API_MANIFESTS_DIGEST_HEADER", "true")
        .env("OCI_DATA_SHA512", "true")
        .output()
        .expect("the conformance suite runs");
    let report = String::from_utf8_lossy(&out.stdout);
    let junit = std::fs::read_to_string(served.dir.path().join("results/junit.xml"))
        .unwrap_or_else(|e| panic!("no junit.xml ({e}); the suite said:\n{report}"));
    let cases = outcomes(&junit);
    assert!(
        !cases.is_empty()
            && cases
                .iter()
                .all(|(name, status)| !name.is_empty() && !status.is_empty()),
        "cannot read the suite's junit.xml; the suite said:\n{report}"
    );
    // A case path passes when each of its runs passes.
    let mut by_name: BTreeMap<&str, bool> = BTreeMap::new();
    for (name, status) in &cases {
        *by_name.entry(name).or_insert(true) &= status == "passed";
    }
    let known = KnownFailures::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/known-failures.txt"),
    )
    .expect("the known-failure list");
    for (name, status) in cases.iter().filter(|(_, status)| status != "passed") {
        eprintln!("{status}: {name}{}", known.mark(name));
    }
    let passed = cases.iter().filter(|(_, s)| s == "passed").count();
    println!(
        "oci-conformance: {passed} passed, {} failed",
        cases.len() - passed
    );
    let verdict = known.judge(by_name.iter().map(|(n, ok)| (*n, *ok)));
    println!("{verdict}");
    assert!(verdict.holds(), "{verdict}");
    assert!(out.status.success(), "the suite failed:\n{report}");
}
