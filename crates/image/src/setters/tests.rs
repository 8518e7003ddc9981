use super::*;

fn setters() -> Setters {
    let latest = LatestImage {
        name: "reg.example/app".to_string(),
        tag: "1.10".to_string(),
        digest: Some("sha256:abc".to_string()),
    };
    Setters::from_policies([("ns:app", &latest)])
}

#[test]
fn marker_forms() {
    assert_eq!(
        parse_marker(r#" {"$imagepolicy": "ns:app"}"#).as_deref(),
        Some("ns:app")
    );
    assert_eq!(
        parse_marker(r#"{"$imagepolicy":"ns:app:tag"}"#).as_deref(),
        Some("ns:app:tag")
    );
    assert_eq!(
        parse_marker(" {$imagepolicy: ns:app:name}").as_deref(),
        Some("ns:app:name")
    );
    assert_eq!(
        parse_marker(r##" {"$ref": "#/definitions/io.k8s.cli.setters.ns:app"}"##).as_deref(),
        Some("ns:app")
    );
    assert_eq!(
        parse_marker(r#" {"$imagepolicy": "ns:app"} # keep"#).as_deref(),
        Some("ns:app")
    );
    for not_a_marker in [
        " see $imagepolicy docs",
        r#" {"$imagepolicy": }"#,
        r#" {"other": "ns:app"}"#,
        r#" {"$imagepolicy": "ns:app""#,
        " plain comment",
    ] {
        assert_eq!(parse_marker(not_a_marker), None, "{not_a_marker}");
    }
}

#[test]
fn setter_values() {
    let s = setters();
    assert_eq!(s.get("ns:app"), Some("reg.example/app:1.10@sha256:abc"));
    assert_eq!(s.get("ns:app:tag"), Some("1.10"));
    assert_eq!(s.get("ns:app:name"), Some("reg.example/app"));
    assert_eq!(s.get("ns:app:digest"), Some("sha256:abc"));
    let no_digest = LatestImage {
        name: "a".to_string(),
        tag: "1".to_string(),
        digest: None,
    };
    let s = Setters::from_policies([("ns:b", &no_digest)]);
    assert_eq!(s.get("ns:b"), Some("a:1"));
    assert_eq!(
        s.get("ns:b:digest"),
        None,
        "an empty digest is never written"
    );
}

#[test]
fn plain_values_are_quoted_only_when_needed() {
    for (value, flow, plain) in [
        ("reg.example/app:1.2.3", false, true),
        ("1.2.3", false, true),
        ("v1.10", false, true),
        ("1.10", false, false),
        ("10", false, false),
        ("0x1F", false, false),
        ("1e3", false, false),
        ("yes", false, false),
        ("null", false, false),
        ("2024-01-02", false, false),
        ("1:30", false, false),
        ("a,b", false, true),
        ("a,b", true, false),
        ("@sha256:abc", false, false),
        ("a: b", false, false),
        ("a #b", false, false),
        ("", false, false),
    ] {
        assert_eq!(
            plain_is_safe(value, flow),
            plain,
            "{value:?} in flow={flow}"
        );
    }
    assert_eq!(render("1.10", ScalarStyle::Plain, false), "\"1.10\"");
    assert_eq!(render("it's", ScalarStyle::SingleQuoted, false), "'it''s'");
    assert_eq!(
        render("a\"b\\", ScalarStyle::DoubleQuoted, false),
        r#""a\"b\\""#
    );
}

#[test]
fn records_changes_with_their_object() {
    let text = "kind: Deployment\napiVersion: apps/v1\nspec:\n  image: old:1 # {\"$imagepolicy\": \"ns:app\"}\nmetadata:\n  name: web\n  namespace: prod\n";
    let out = rewrite("deploy.yaml", text, &setters()).expect("valid YAML");
    assert_eq!(out.changes.len(), 1);
    let change = &out.changes[0];
    assert_eq!(change.old_value, "old:1");
    assert_eq!(change.new_value, "reg.example/app:1.10@sha256:abc");
    assert_eq!(change.setter, "ns:app");
    assert_eq!(change.line, 4);
    assert_eq!(
        change.object,
        ObjectId {
            api_version: "apps/v1".to_string(),
            kind: "Deployment".to_string(),
            name: "web".to_string(),
            namespace: "prod".to_string(),
        }
    );
    assert_eq!(
        out.text,
        text.replace("old:1", "reg.example/app:1.10@sha256:abc")
    );
}

#[test]
fn invalid_yaml_is_an_error_with_a_position() {
    let text = "a: [1, 2\nimage: x # {\"$imagepolicy\": \"ns:app\"}\n";
    let err = rewrite("bad.yaml", text, &setters()).expect_err("invalid YAML");
    let SetterError::Yaml { file, line, .. } = &err else {
        panic!("a syntax error: {err}");
    };
    assert_eq!(file, "bad.yaml");
    assert!(*line >= 1, "{err}");
}

#[test]
fn alias_bomb_with_a_marker_is_refused_by_the_yaml_budget() {
    let bomb = include_str!("../../../gocompat/testdata/alias-bomb.yaml");
    let text = format!("{bomb}  image: reg.example/app:1.0 # {{\"$imagepolicy\": \"ns:app\"}}\n");
    let start = std::time::Instant::now();
    let err = rewrite("bomb.yaml", &text, &setters()).expect_err("excessive aliasing");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        err.to_string(),
        "bomb.yaml:10: cannot update image setters: yaml: document contains excessive aliasing"
    );
}

#[test]
fn unknown_setters_and_current_values_change_nothing() {
    let text = "image: reg.example/app:1.10@sha256:abc # {\"$imagepolicy\": \"ns:app\"}\nother: x # {\"$imagepolicy\": \"ns:other\"}\n";
    let out = rewrite("f.yaml", text, &setters()).expect("valid YAML");
    assert!(out.changes.is_empty());
    assert_eq!(out.text, text);
}
