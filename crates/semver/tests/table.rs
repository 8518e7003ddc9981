//! Table tests for versions and constraints, written from Masterminds/semver v3's documented
//! rules (the public corpus is run separately by the conformance harness).

use std::cmp::Ordering;

use ferroflux_semver::{Constraints, Version};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn check(constraint: &str, version: &str) -> bool {
    Constraints::parse(constraint)
        .unwrap_or_else(|e| panic!("{constraint:?} should parse: {e}"))
        .check(&v(version))
}

#[test]
fn coercing_parse_fills_missing_parts_and_keeps_the_original() {
    for (input, shown, original) in [
        ("v2", "2.0.0", "v2"),
        ("1.4", "1.4.0", "1.4"),
        ("007.1.2", "7.1.2", "007.1.2"),
        ("1.2-rc.1+build.5", "1.2.0-rc.1+build.5", "1.2-rc.1+build.5"),
    ] {
        let parsed = v(input);
        assert_eq!(parsed.to_string(), shown, "{input}");
        assert_eq!(parsed.original(), original, "{input}");
    }
    let full = v("v3.4.5-beta.2+sha.1");
    assert_eq!(
        (full.major(), full.minor(), full.patch()),
        (3, 4, 5),
        "numbers"
    );
    assert_eq!(full.prerelease(), "beta.2");
    assert_eq!(full.metadata(), "sha.1");
}

#[test]
fn parsers_refuse_malformed_input() {
    for bad in [
        "",
        "v",
        "1.",
        "1..2",
        "1.2.3.4",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3-01",
        "x.1.2",
        " 1.2.3",
        "1.2.3 ",
        "V1.2.3",
        "1.2.3+a+b",
        "99999999999999999999.0.0",
        "1.2.3-é",
    ] {
        assert!(
            Version::parse(bad).is_err(),
            "coercing parse accepted {bad:?}"
        );
    }
    for bad in [
        "1.2",
        "v1.2.3",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-beta.01",
        "1.2.3+",
        "1.2",
    ] {
        assert!(
            Version::parse_strict(bad).is_err(),
            "strict parse accepted {bad:?}"
        );
    }
    for good in [
        "0.0.0",
        "1.2.3-0",
        "1.2.3-rc-1.x-y+a-b.c",
        "10.20.30-alpha.0.beta",
    ] {
        assert!(
            Version::parse_strict(good).is_ok(),
            "strict parse refused {good:?}"
        );
    }
}

#[test]
fn tags_parse_like_flux() {
    let tag = Version::parse_tag("v1.2.3-rc.1").expect("a strict version after the v");
    assert_eq!(tag.original(), "v1.2.3-rc.1");
    assert_eq!(tag.to_string(), "1.2.3-rc.1");
    assert_eq!(
        Version::parse_tag("1.2.3").expect("valid").original(),
        "1.2.3"
    );
    for bad in ["v1.2", "vv1.2.3", "V1.2.3", "1.2.3.4", "latest"] {
        assert!(Version::parse_tag(bad).is_err(), "{bad}");
    }
}

#[test]
fn precedence_follows_semver_with_masterminds_prerelease_rules() {
    let ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ];
    for pair in ordered.windows(2) {
        assert_eq!(v(pair[0]).cmp(&v(pair[1])), Ordering::Less, "{pair:?}");
        assert_eq!(v(pair[1]).cmp(&v(pair[0])), Ordering::Greater, "{pair:?}");
    }
    // Metadata and the `v` prefix do not take part in precedence.
    assert_eq!(v("v1.2.3+a"), v("1.2.3+b"));
    // A numeric identifier too large for 64 bits compares as text, after numbers.
    assert!(v("1.0.0-99999999999999999999") > v("1.0.0-5"));
    let mut shuffled: Vec<Version> = ordered.iter().rev().map(|s| v(s)).collect();
    shuffled.sort();
    let sorted: Vec<String> = shuffled.iter().map(ToString::to_string).collect();
    assert_eq!(sorted, ordered);
}

#[test]
fn constraint_syntax() {
    for good in [
        "*",
        "1.x",
        "1.2.X",
        ">= 1.2, < 2",
        ">=1.2 <2",
        "~1.2",
        "~> 1.2",
        "^0.3",
        "!= 1.4",
        "1.0.0 - 2.0.0",
        "v1.2.3",
        "=> 1",
        "=< 2",
        ">1 || <0.5",
        "1.2.3-beta.1",
    ] {
        assert!(Constraints::parse(good).is_ok(), "refused {good:?}");
    }
    for bad in [
        "",
        "foo",
        ">=",
        "1.2.3.4",
        "1 ||",
        "|| 1",
        ">= 1.2,, < 2",
        "1x",
        "x1",
        "-1",
        "*-*",
        ">>1",
        "1.2.3-01",
        "~ 1.2 ~",
    ] {
        assert!(Constraints::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn constraint_matching_table() {
    let table = [
        // wildcards and partial versions
        ("1.x", "1.9.9", true),
        ("1.x", "2.0.0", false),
        ("1.2", "1.2.9", true),
        ("1.2", "1.3.0", false),
        ("*", "0.0.1", true),
        // hyphen ranges are inclusive
        ("1.2 - 1.4.5", "1.4.5", true),
        ("1.2 - 1.4.5", "1.4.6", false),
        ("1.2 - 1.4.5", "1.1.9", false),
        // tilde and caret
        ("~1.2.3", "1.2.9", true),
        ("~1.2.3", "1.3.0", false),
        ("~> 1.2", "1.2.0", true),
        ("^1.2.3", "1.99.0", true),
        ("^1.2.3", "2.0.0", false),
        ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.0.3", "0.0.4", false),
        // not-equal with wildcards
        ("!=1.2.x", "1.2.7", false),
        ("!=1.2.x", "1.3.0", true),
        // AND and OR
        (">=1.0.0, <1.5.0 || >=2.0.0", "1.7.0", false),
        (">=1.0.0, <1.5.0 || >=2.0.0", "2.1.0", true),
        (">=1.0.0 <1.5.0 !=1.2.0", "1.2.0", false),
        // a `v` on either side is ignored
        ("v1.2.3", "1.2.3", true),
        (">= v1.2", "v1.3", true),
    ];
    for (constraint, version, expected) in table {
        assert_eq!(
            check(constraint, version),
            expected,
            "{constraint:?} vs {version:?}"
        );
    }
}

#[test]
fn prereleases_only_match_when_asked_for() {
    // A range without a pre-release never matches one...
    assert!(!check(">=1.0.0", "1.5.0-rc.1"));
    assert!(!check("*", "1.0.0-alpha"));
    // ...unless an AND group names a pre-release, which opens the whole group.
    assert!(check(">=1.0.0-0", "1.5.0-rc.1"));
    assert!(check(">=1.0.0-0 <2.0.0", "1.5.0-rc.1"));
    assert!(!check(">=1.0.0-0 <2.0.0 || >=3", "3.1.0-rc.1"));
    // Pre-releases order before their release.
    assert!(check("<1.0.0-0 || >=1.0.0-beta", "1.0.0-rc.1"));
    assert!(!check(">=1.0.0-rc.2", "1.0.0-rc.1"));
    // IncludePrerelease opens every group.
    let any = Constraints::parse(">=1.0.0 <2.0.0")
        .expect("valid")
        .with_include_prerelease(true);
    assert!(any.include_prerelease());
    assert!(any.check(&v("1.5.0-rc.1")));
    // Pre-releases of the upper bound sort below it, so they match (as upstream).
    assert!(any.check(&v("2.0.0-rc.1")));
    assert!(!any.check(&v("2.0.1-rc.1")));
    assert!(any.check(&v("1.0.1-0")));
    assert!(!any.check(&v("1.0.0-0")), "1.0.0-0 sorts before 1.0.0");
}

#[test]
fn display_matches_go_string_forms() {
    assert_eq!(
        Constraints::parse(">= 1.2, <2 || ~3")
            .expect("valid")
            .to_string(),
        ">=1.2 <2 || ~3"
    );
    assert_eq!(
        Constraints::parse("1 - 2").expect("valid").to_string(),
        ">=1 <=2"
    );
    assert_eq!(
        "v1.2".parse::<Version>().expect("valid").to_string(),
        "1.2.0"
    );
}
