use super::*;

fn semver(range: &str) -> PolicySpec {
    PolicySpec {
        semver: Some(SemVerSpec {
            range: range.to_string(),
        }),
        ..PolicySpec::default()
    }
}

fn alphabetical(order: Option<&str>) -> PolicySpec {
    PolicySpec {
        alphabetical: Some(OrderSpec {
            order: order.map(str::to_string),
        }),
        ..PolicySpec::default()
    }
}

fn numerical(order: Option<&str>) -> PolicySpec {
    PolicySpec {
        numerical: Some(OrderSpec {
            order: order.map(str::to_string),
        }),
        ..PolicySpec::default()
    }
}

fn filter(pattern: &str, extract: &str) -> FilterTagsSpec {
    FilterTagsSpec {
        pattern: pattern.to_string(),
        extract: extract.to_string(),
    }
}

/// Selects over the tags in the given order and in reverse; both must agree.
fn select(
    policy: &PolicySpec,
    f: Option<&FilterTagsSpec>,
    tags: &[&str],
) -> Result<String, PolicyError> {
    let forward = select_latest(policy, f, tags);
    let reversed: Vec<&str> = tags.iter().rev().copied().collect();
    let backward = select_latest(policy, f, &reversed);
    match (&forward, &backward) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "selection depends on tag order"),
        (Err(_), Err(_)) => {}
        _ => panic!("selection depends on tag order: {forward:?} vs {backward:?}"),
    }
    forward
}

#[test]
fn semver_skips_prereleases_unless_the_range_names_one() {
    let tags = ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0-alpha", "v1.1.5"];
    assert_eq!(
        select(&semver(">=1.0.0"), None, &tags).expect("a match"),
        "v1.1.5"
    );
    assert_eq!(
        select(&semver(">=1.0.0-0"), None, &tags).expect("a match"),
        "2.0.0-alpha"
    );
    assert_eq!(
        select(&semver("~1.2.0-0"), None, &tags).expect("a match"),
        "1.2.0-rc.1"
    );
    // The issue's acceptance: 2.0.0-rc.1 is not picked by >=1.0.0.
    let oci = ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"];
    assert_eq!(
        select(&semver(">=1.0.0"), None, &oci).expect("a match"),
        "1.2.0"
    );
}

#[test]
fn semver_only_ranks_strict_versions_and_never_falls_back_to_lexical() {
    // `1.10` and `1.9.0.1` are not strict versions; `latest` is not a version at all.
    let tags = ["1.9.0", "1.10", "1.9.0.1", "latest", "01.20.0", "v1.9.1"];
    assert_eq!(
        select(&semver("*"), None, &tags).expect("a match"),
        "v1.9.1"
    );
    // Numeric order, not lexical: 1.10.0 > 1.9.0.
    assert_eq!(
        select(&semver("^1"), None, &["1.9.0", "1.10.0"]).expect("a match"),
        "1.10.0"
    );
    let err = select(&semver("*"), None, &["latest", "main", "1.0"]).expect_err("no versions");
    assert!(matches!(err, PolicyError::NoVersionInRange { .. }), "{err}");
    // Only one leading `v` is dropped.
    assert!(select(&semver("*"), None, &["vv1.0.0"]).is_err());
}

#[test]
fn semver_ties_are_broken_by_the_tag_text() {
    let tags = ["v1.0.0", "1.0.0+b", "1.0.0+a", "1.0.0"];
    assert_eq!(
        select(&semver("1.0.0"), None, &tags).expect("a match"),
        "1.0.0"
    );
}

#[test]
fn filter_tags_with_named_groups_and_extract() {
    let tags = [
        "main-abc123-1718000000",
        "main-def456-1718000100",
        "dev-999999-1718999999",
        "1.0.0",
        "latest",
    ];
    let f = filter(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "$ts");
    assert_eq!(
        select(&numerical(Some("asc")), Some(&f), &tags).expect("a match"),
        "main-def456-1718000100"
    );
    assert_eq!(
        select(&numerical(Some("DESC")), Some(&f), &tags).expect("a match"),
        "main-abc123-1718000000"
    );
    // `${name}` braces and numbered groups work too; extract maps back to the tag.
    let f = filter(r"^(?<env>main|dev)-[a-f0-9]+-(?P<ts>\d+)$", "${ts}");
    assert_eq!(
        select(&numerical(None), Some(&f), &tags).expect("a match"),
        "dev-999999-1718999999"
    );
    let f = filter(r"^release-(\d+\.\d+\.\d+)$", "$1");
    let rel = [
        "release-1.2.3",
        "release-1.10.0",
        "release-1.9.9",
        "other-9.9.9",
    ];
    assert_eq!(
        select(&semver("^1"), Some(&f), &rel).expect("a match"),
        "release-1.10.0"
    );
}

#[test]
fn filter_errors_say_why() {
    let tags = ["a", "b"];
    let err = select(&alphabetical(None), Some(&filter("^z", "")), &tags).expect_err("no match");
    assert!(
        matches!(err, PolicyError::NoTagMatchesPattern { count: 2, .. }),
        "{err}"
    );
    let err = select(&alphabetical(None), Some(&filter("(", "")), &tags).expect_err("bad regex");
    assert!(matches!(err, PolicyError::InvalidPattern { .. }), "{err}");
    // Syntax the regex crate knows but Go's RE2 does not is refused too.
    for rust_only in [r"\u0041", "(?x)a b", "a{1001}", "a**"] {
        let err = TagFilter::new(&filter(rust_only, "")).expect_err(rust_only);
        assert!(
            matches!(err, PolicyError::InvalidPattern { .. }),
            "{rust_only}"
        );
    }
    // An extract that yields a non-number is a numerical error, not a silent skip.
    let f = filter(r"^(?P<x>.*)$", "$x");
    let err = select(&numerical(None), Some(&f), &["1", "x"]).expect_err("not a number");
    assert!(matches!(err, PolicyError::NotANumber { .. }), "{err}");
}

#[test]
fn go_expand_rules() {
    let tags = ["ab-12"];
    let expand = |pattern: &str, extract: &str| {
        let f = TagFilter::new(&filter(pattern, extract)).expect("valid");
        f.apply(&tags)
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>()
    };
    assert_eq!(expand(r"(?P<w>[a-z]+)-(\d+)", "$2.$w"), ["12.ab"]);
    assert_eq!(expand(r"(?P<w>[a-z]+)-(\d+)", "$$w"), ["$w"]);
    // `$1x` names group "1x", which does not exist.
    assert_eq!(expand(r"([a-z]+)-(\d+)", "$1x"), [""]);
    assert_eq!(expand(r"([a-z]+)-(\d+)", "${1}x"), ["abx"]);
    // Malformed references stay as text; missing groups are empty.
    assert_eq!(expand(r"([a-z]+)", "${1"), ["${1"]);
    assert_eq!(expand(r"([a-z]+)", "$-$9"), ["$-"]);
}

#[test]
fn filter_values_are_unique_and_sorted() {
    let f = TagFilter::new(&filter(r"-(\d+)$", "$1")).expect("valid");
    let tags = ["b-2", "a-1", "c-2", "zzz"];
    let kept = f.apply(&tags);
    assert_eq!(
        kept,
        vec![("1".to_string(), "a-1"), ("2".to_string(), "c-2")]
    );
}

#[test]
fn alphabetical_is_bytewise() {
    let tags = [
        "RELEASE.2023-01-31",
        "RELEASE.2023-10-01",
        "release.2000",
        "Z",
    ];
    assert_eq!(
        select(&alphabetical(None), None, &tags).expect("a tag"),
        "release.2000"
    );
    assert_eq!(
        select(&alphabetical(Some("Desc")), None, &tags).expect("a tag"),
        "RELEASE.2023-01-31"
    );
    let err = Policer::from_spec(&alphabetical(Some("up"))).expect_err("bad order");
    assert!(matches!(err, PolicyError::InvalidOrder { .. }), "{err}");
}

#[test]
fn numerical_parses_like_go() {
    for (text, value) in [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1_000", 1000.0),
        ("0x1p-2", 0.25),
        ("+Inf", f64::INFINITY),
    ] {
        assert_eq!(parse_go_float(text), Some(value), "{text}");
    }
    for bad in ["", "1e400", "1_", "_1", "0x10", "1.2.3", "12a", "+nan", "١"] {
        assert_eq!(parse_go_float(bad), None, "{bad}");
    }
    let tags = ["10", "9", "1e1", "-3"];
    // 10 and 1e1 tie; the text breaks the tie the same way in any order.
    assert_eq!(select(&numerical(None), None, &tags).expect("a tag"), "1e1");
    assert_eq!(
        select(&numerical(Some("desc")), None, &tags).expect("a tag"),
        "-3"
    );
}

#[test]
fn construction_errors() {
    assert!(matches!(
        Policer::from_spec(&PolicySpec::default()),
        Err(PolicyError::NoPolicy)
    ));
    let err = Policer::from_spec(&semver("1x")).expect_err("bad range");
    assert!(err.to_string().contains("1x"), "{err}");
    assert!(matches!(
        select(&semver("*"), None, &[]),
        Err(PolicyError::NoTags)
    ));
    // semver wins when several policies are set, as in Flux.
    let both = PolicySpec {
        semver: Some(SemVerSpec {
            range: "*".to_string(),
        }),
        alphabetical: Some(OrderSpec::default()),
        numerical: None,
    };
    assert_eq!(
        select(&both, None, &["z", "1.0.0"]).expect("a tag"),
        "1.0.0"
    );
}

#[test]
fn policy_spec_reads_the_crd_json() {
    let spec: PolicySpec =
        serde_json::from_str(r#"{"numerical": {"order": "desc"}}"#).expect("valid JSON");
    assert_eq!(spec, numerical(Some("desc")));
    let f: FilterTagsSpec = serde_json::from_str(r#"{"pattern": "^a"}"#).expect("valid JSON");
    assert_eq!(f, filter("^a", ""));
}

#[test]
fn invalid_filter_pattern_reports_gos_message() {
    let err = TagFilter::new(&filter("^v(\\d+", "")).expect_err("unclosed group");
    assert_eq!(
        err.to_string(),
        "invalid spec.filterTags.pattern \"^v(\\\\d+\": error parsing regexp: missing closing ): `^v(\\d+`"
    );
}
