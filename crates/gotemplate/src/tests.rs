//! Behaviour pinned against Go 1.27's `text/template` (expected strings were produced by Go on
//! the same template and JSON data), plus limits, host objects and Helm's engine.

use std::collections::BTreeMap;

use crate::{
    Error, HelmEngine, MissingKey, Options, Sources, Template, Value, capabilities, helm_funcs,
};

fn data(v: serde_json::Value) -> Value {
    Value::from_json(&v)
}

fn render(t: &str, d: serde_json::Value) -> Result<String, Error> {
    let mut tp = Template::new();
    tp.parse("test", t)?;
    tp.execute("test", &data(d))
}

fn render_helm(t: &str, d: Value) -> Result<String, Error> {
    let mut tp = Template::with_funcs(helm_funcs(&Sources::default()));
    tp.parse("test", t)?;
    tp.execute("test", &d)
}

#[test]
fn seed_message_template() {
    let d = serde_json::json!({"Changed": {"Changes": [
        {"OldValue": "ghcr.io/app:1.0.0", "NewValue": "ghcr.io/app:1.0.1"},
        {"OldValue": "ghcr.io/web:2.0", "NewValue": "ghcr.io/web:2.1"}
    ]}});
    let out = render("Automated image update\n{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n{{ end }}", d).expect("renders");
    assert_eq!(
        out,
        "Automated image update\nghcr.io/app:1.0.0 -> ghcr.io/app:1.0.1\nghcr.io/web:2.0 -> ghcr.io/web:2.1\n"
    );
}

#[test]
fn prints_values_like_go() {
    let d = serde_json::json!({"a": 1e21, "b": 1e20, "c": 0.000001, "d": 123456.7, "m": {"b": [1, 2.5, null], "a": 1e6}});
    assert_eq!(
        render(
            "{{ .a }} {{ .b }} {{ .c }} {{ .d }} {{ .m }} {{ .missing }}",
            d
        )
        .expect("renders"),
        "1e+21 1e+20 1e-06 123456.7 map[a:1e+06 b:[1 2.5 <nil>]] <no value>"
    );
    assert_eq!(
        render(
            "{{ print 1 2 \"a\" 3 nil }} {{ println 1.0 true }}",
            serde_json::json!(null)
        )
        .expect("renders"),
        "1 2a3 <nil> 1 true\n"
    );
}

#[test]
fn printf_verbs_like_go() {
    let out = render(
        r#"{{ printf "%6.3v|%e|%g|%G|%E|%08.3f|%+d|% d|%o|%O|%b|%X|%c|%U" 3.14159 1234.5678 0.00001234 1e21 5.0 -3.14159 5 5 8 8 5 255 65 65 }}"#,
        serde_json::json!(null),
    )
    .expect("renders");
    assert_eq!(
        out,
        "  3.14|1.234568e+03|1.234e-05|1E+21|5.000000E+00|-003.142|+5| 5|10|0o10|101|FF|A|U+0041"
    );
    let out = render(
        r#"{{ printf "%s %d" 1 "x" }} {{ printf "%d" }} {{ printf "%d" 1 2 }} {{ printf "%z" 1 }}"#,
        serde_json::json!(null),
    )
    .expect("renders");
    assert_eq!(
        out,
        "%!s(int=1) %!d(string=x) %!d(MISSING) 1%!(EXTRA int=2) %!z(int=1)"
    );
    let out = render(
        r#"{{ printf "%v %+v %#v" .m .m .m }}"#,
        serde_json::json!({"m": {"a": [1, "x"]}}),
    )
    .expect("renders");
    assert_eq!(
        out,
        r#"map[a:[1 x]] map[a:[1 x]] map[string]interface {}{"a":[]interface {}{1, "x"}}"#
    );
}

#[test]
fn exec_errors_are_shaped_like_go() {
    let cases = [
        (
            "{{ index .a 5 }}",
            serde_json::json!({"a": [1, 2]}),
            r#"template: test:1:3: executing "test" at <index .a 5>: error calling index: index out of range: 5"#,
        ),
        (
            "x\n  {{ .a.b.c }}",
            serde_json::json!({"a": {"b": null}}),
            r#"template: test:2:7: executing "test" at <.a.b.c>: nil pointer evaluating interface {}.c"#,
        ),
        (
            "{{ len 3 }}",
            serde_json::json!(null),
            r#"template: test:1:3: executing "test" at <len 3>: error calling len: len of type int"#,
        ),
        (
            "{{ lt 1 2.0 }}",
            serde_json::json!(null),
            r#"template: test:1:3: executing "test" at <lt 1 2.0>: error calling lt: incompatible types for comparison: int and float64"#,
        ),
        (
            r#"{{ template "nope" }}"#,
            serde_json::json!(null),
            r#"template: test:1:12: executing "test" at <{{template "nope"}}>: template "nope" not defined"#,
        ),
        (
            "{{ .a.b }}",
            serde_json::json!({"a": [1]}),
            r#"template: test:1:5: executing "test" at <.a.b>: can't evaluate field b in type interface {}"#,
        ),
        (
            "{{ $x := 1 }}{{ $x.y }}",
            serde_json::json!(null),
            r#"template: test:1:18: executing "test" at <$x.y>: can't evaluate field y in type int"#,
        ),
    ];
    for (t, d, want) in cases {
        let err = render(t, d).expect_err(t);
        assert_eq!(err.to_string(), want, "{t}");
    }
}

#[test]
fn parse_errors_name_line_and_column() {
    let err = render("line1\n  {{ .X | 3 }}", serde_json::json!(null))
        .expect_err("stage 2 is not executable");
    match err {
        Error::Parse { line, col, .. } => assert_eq!((line, col), (2, 10)),
        other => panic!("expected a parse error, got {other}"),
    }
    for bad in [
        "{{end}}",
        "{{if .X}}",
        "{{$x}}",
        "{{ .X ( }}",
        "{{/* x }}",
        "{{ \"abc }}",
        "{{range .x}}{{else}}{{break}}{{end}}",
    ] {
        assert!(
            matches!(
                render(bad, serde_json::json!(null)),
                Err(Error::Parse { .. })
            ),
            "{bad} must not parse"
        );
    }
}

#[test]
fn missing_keys_follow_the_option() {
    let mut t = Template::new();
    t.parse("t", "{{ .a.b }}").expect("parses");
    assert_eq!(
        t.execute("t", &data(serde_json::json!({})))
            .expect("default"),
        "<no value>"
    );
    t.missing_key(MissingKey::Zero);
    // Go: the zero value of interface{} is a nil interface, and a field of it is an error.
    assert!(t.execute("t", &data(serde_json::json!({}))).is_err());
    t.missing_key(MissingKey::Error);
    let err = t
        .execute("t", &data(serde_json::json!({})))
        .expect_err("missing key");
    assert!(
        err.to_string().contains(r#"map has no entry for key "a""#),
        "{err}"
    );
}

#[test]
fn variables_ranges_and_control_flow() {
    let out = render(
        "{{ $n := 0 }}{{ range $i, $v := .l }}{{ if eq $v 3 }}{{ continue }}{{ end }}{{ if gt $i 3 }}{{ break }}{{ end }}{{ $n = $v }}{{ $i }}={{ $v }},{{ end }}last={{ $n }} {{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }} {{ range 3 }}{{ . }}{{ end }}",
        serde_json::json!({"l": [1, 2, 3, 4, 5, 6], "m": {"b": 2, "a": 1}}),
    )
    .expect("renders");
    assert_eq!(out, "0=1,1=2,3=4,last=4 a1b2 012");
}

#[test]
fn trim_markers_comments_and_delims() {
    assert_eq!(
        render("a  {{- /* c */ -}}  b {{- 3 -}} c", serde_json::json!(null)).expect("renders"),
        "ab3c"
    );
    let mut t = Template::new();
    t.delims("[[", "]]");
    t.parse("t", "[[ .x ]] {{ .x }}").expect("parses");
    assert_eq!(
        t.execute("t", &data(serde_json::json!({"x": 1})))
            .expect("renders"),
        "1 {{ .x }}"
    );
}

#[test]
fn deep_template_recursion_stops_with_an_error() {
    let err = render(
        r#"{{define "t"}}{{template "t" .}}{{end}}{{template "t" .}}"#,
        serde_json::json!({}),
    )
    .expect_err("recursion must stop");
    assert!(err.to_string().contains("maximum template depth"), "{err}");
}

#[test]
fn deep_nesting_is_refused_by_the_parser() {
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert!(matches!(
        render(&parens, serde_json::json!(null)),
        Err(Error::Parse { .. })
    ));
    let ifs = format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
    assert!(matches!(
        render(&ifs, serde_json::json!(null)),
        Err(Error::Parse { .. })
    ));
}

#[test]
fn runaway_output_and_loops_stop() {
    let mut t = Template::new();
    t.options(Options {
        max_output: 1000,
        ..Options::default()
    });
    t.parse("t", "{{ range 100000 }}xxxxxxxxxx{{ end }}")
        .expect("parses");
    assert!(matches!(
        t.execute("t", &Value::Nil),
        Err(Error::OutputLimit { .. })
    ));
    let mut t = Template::new();
    t.options(Options {
        max_steps: 10_000,
        ..Options::default()
    });
    t.parse("t", "{{ range 1000000000 }}{{ end }}")
        .expect("parses");
    let err = t.execute("t", &Value::Nil).expect_err("loop must stop");
    assert!(err.to_string().contains("step limit"), "{err}");
}

#[test]
fn host_objects_have_methods() {
    let files = crate::Files::new(BTreeMap::from([(
        "config/app.ini".to_string(),
        "a=1\nb=2".to_string(),
    )]));
    let mut top = crate::Map::new();
    top.insert("Files".into(), files.into_value());
    top.insert(
        "Capabilities".into(),
        capabilities(vec!["apps/v1".into(), "policy/v1".into()], "v1.33.2"),
    );
    let d = Value::map(top);
    let out = render_helm(
        r#"{{ .Files.Get "config/app.ini" | indent 2 }}|{{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "batch/v2" }} {{ .Capabilities.KubeVersion.Minor }}|{{ range $p, $c := .Files.Glob "config/*" }}{{ $p }}{{ end }}"#,
        d.clone(),
    );
    // Glob returns Files, which range cannot iterate; Go fails the same way.
    assert!(out.is_err());
    let out = render_helm(r#"{{ .Files.Get "config/app.ini" | indent 2 }}|{{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "batch/v2" }} {{ .Capabilities.KubeVersion.Minor }}"#, d).expect("renders");
    assert_eq!(out, "  a=1\n  b=2|true false 33");
}

#[test]
fn sprig_set_changes_the_dict_everywhere() {
    let out = render_helm(r#"{{ $d := dict "a" 1 }}{{ $e := $d }}{{ $_ := set $d "b" 2 }}{{ $e }} {{ merge (dict "x" 1) $d | toJson }}"#, Value::Nil).expect("renders");
    assert_eq!(out, r#"map[a:1 b:2] {"a":1,"b":2,"x":1}"#);
}

#[test]
fn helm_to_yaml_and_back() {
    let d = data(
        serde_json::json!({"v": {"name": "web", "replicas": 3, "ports": [80, 443], "labels": {"on": "yes"}}}),
    );
    let out = render_helm(
        "{{ toYaml .v }}\n---\n{{ (fromYaml (toYaml .v)).replicas }}",
        d,
    )
    .expect("renders");
    assert_eq!(
        out,
        "labels:\n  \"on\": \"yes\"\nname: web\nports:\n- 80\n- 443\nreplicas: 3\n---\n3"
    );
}

#[test]
fn helm_engine_include_tpl_required() {
    let files = BTreeMap::from([
        ("c/templates/_helpers.tpl".to_string(), r#"{{- define "c.name" -}}{{ .Chart.Name }}-{{ .Release.Name }}{{- end -}}"#.to_string()),
        ("c/templates/cm.yaml".to_string(), "name: {{ include \"c.name\" . }}\nmsg: {{ tpl .Values.msg . }}\nmissing: {{ .Values.nope }}\nfile: {{ .Template.Name }} {{ .Template.BasePath }}".to_string()),
    ]);
    let d = data(
        serde_json::json!({"Values": {"msg": "hi {{ .Release.Name }}"}, "Chart": {"Name": "c"}, "Release": {"Name": "r"}}),
    );
    let out = HelmEngine::new(false).render(&files, &d).expect("renders");
    assert_eq!(out.len(), 1, "partials are not rendered on their own");
    assert_eq!(
        out["c/templates/cm.yaml"],
        "name: c-r\nmsg: hi r\nmissing: \nfile: c/templates/cm.yaml c/templates"
    );

    let files = BTreeMap::from([(
        "c/templates/x.yaml".to_string(),
        r#"{{ required "x is required" .Values.x }}"#.to_string(),
    )]);
    let err = HelmEngine::new(false)
        .render(&files, &data(serde_json::json!({"Values": {}})))
        .expect_err("required");
    assert_eq!(
        err.to_string(),
        "execution error at (c/templates/x.yaml:1:3): x is required"
    );
    let err = HelmEngine::new(true).render(
        &BTreeMap::from([(
            "c/templates/y".to_string(),
            "{{ .Values.nope }}".to_string(),
        )]),
        &data(serde_json::json!({"Values": {}})),
    );
    assert!(err.is_err(), "strict mode fails on missing keys");
}

#[test]
fn helm_include_recursion_is_limited() {
    let files = BTreeMap::from([(
        "c/templates/a".to_string(),
        r#"{{ define "r" }}{{ include "r" . }}{{ end }}{{ include "r" . }}"#.to_string(),
    )]);
    let err = HelmEngine::new(false)
        .render(&files, &data(serde_json::json!({})))
        .expect_err("recursion");
    assert!(
        err.to_string().contains("nested reference") || err.to_string().contains("depth"),
        "{err}"
    );
}

#[test]
fn from_yaml_reads_like_sigs_yaml() {
    let d = Value::from("a: yes\nb: 1\nc: 1.5\nd: ~\ne: 0x10\nf: '1'\ng: [1, two]\nh: on\n");
    let out = render_helm("{{ $m := fromYaml . }}{{ $m }} {{ typeOf $m.b }}", d).expect("renders");
    assert_eq!(
        out,
        "map[a:true b:1 c:1.5 d:<nil> e:16 f:1 g:[1 two] h:true] float64"
    );
}

#[test]
fn from_yaml_refuses_an_alias_bomb_quickly() {
    let bomb = Value::from(include_str!("../../gocompat/testdata/alias-bomb.yaml"));
    let start = std::time::Instant::now();
    let out = render_helm("{{ fromYaml . }}|{{ fromYamlArray . }}", bomb).expect("renders");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        out,
        "map[Error:error converting YAML to JSON: yaml: document contains excessive aliasing]|\
         [error converting YAML to JSON: yaml: document contains excessive aliasing]"
    );
}

#[test]
fn injected_sources_make_random_and_clock_functions_deterministic() {
    let sources = Sources {
        random: Some(std::sync::Arc::new(|| 0x0123_4567_89ab_cdef)),
        now: Some(std::sync::Arc::new(|| 1_560_458_379)),
        env: Some(std::sync::Arc::new(|name: &str| {
            (name == "HOME").then(|| "/root".to_string())
        })),
    };
    let mut t = Template::with_funcs(crate::sprig_funcs(&sources));
    t.parse(
        "t",
        r#"{{ uuidv4 }}|{{ now | date "2006-01-02T15:04:05Z07:00" }}|{{ randAlphaNum 8 | len }}|{{ env "HOME" }}|{{ toDate "2006-01-02" "2017-12-31" | date "02/01/2006" }}|{{ toDate "2006-01-02" "2019-06-13" | unixEpoch }}"#,
    )
    .expect("parses");
    let first = t.execute("t", &Value::Nil).expect("renders");
    assert_eq!(
        first,
        t.execute("t", &Value::Nil).expect("renders again"),
        "same sources, same output"
    );
    assert_eq!(
        first,
        "01234567-89ab-4def-8123-456789abcdef|2019-06-13T20:39:39Z|8|/root|31/12/2017|1560384000"
    );
}

#[test]
fn legit_recursion_forty_deep_renders_on_a_default_thread() {
    let mut v = serde_json::json!({});
    for _ in 0..40 {
        v = serde_json::json!({ "c": v });
    }
    let out = render(
        r#"{{define "t"}}x{{with .c}}{{template "t" .}}{{end}}{{end}}{{template "t" .}}"#,
        v,
    )
    .expect("renders");
    assert_eq!(
        out,
        "x".repeat(40),
        "the innermost {{}} is empty, so with skips it"
    );
}

#[test]
fn deeply_nested_yaml_and_json_are_errors_not_crashes() {
    let deep = "[".repeat(100_000);
    let out = render_helm(
        "{{ fromYaml . }}|{{ fromJson . }}|{{ fromYamlArray . }}",
        Value::from(deep.as_str()),
    );
    // Either an error value inside the result or an execution error; never a stack overflow.
    if let Ok(s) = out {
        assert!(
            s.contains("Error") || s.contains("error"),
            "{}",
            &s[..s.len().min(200)]
        );
    }
}

#[test]
fn exponential_growth_is_stopped() {
    let t =
        r#"{{ $x := "abcdefgh" }}{{ range 40 }}{{ $x = replace "" $x $x }}{{ end }}{{ len $x }}"#;
    let err = render_helm(t, Value::Nil).expect_err("must stop before exhausting memory");
    assert!(err.to_string().contains("limit"), "{err}");
    let t = r#"{{ $x := "ab" }}{{ range 64 }}{{ $x = printf "%s%s" $x $x }}{{ end }}{{ len $x }}"#;
    let err = render_helm(t, Value::Nil).expect_err("must stop before exhausting memory");
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn templates_and_values_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<Value>();
    assert_send_sync::<HelmEngine>();
    let mut t = Template::new();
    t.parse("t", "{{ . }}").expect("parses");
    let t = std::sync::Arc::new(t);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || t.execute("t", &Value::Int(i)).expect("renders"))
        })
        .collect();
    let outs: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("thread ran"))
        .collect();
    assert_eq!(outs, ["0", "1", "2", "3"]);
}

#[test]
fn helm_lookup_goes_through_the_host_callback() {
    let engine = HelmEngine::new(false).with_lookup(|api, kind, ns, name| {
        let mut m = crate::Map::new();
        m.insert(
            "found".into(),
            Value::from(format!("{api}/{kind} {ns}/{name}")),
        );
        Ok(Value::map(m))
    });
    let files = BTreeMap::from([(
        "c/templates/a".to_string(),
        r#"{{ (lookup "v1" "Secret" "ns" "s").found }}"#.to_string(),
    )]);
    let out = engine
        .render(&files, &data(serde_json::json!({})))
        .expect("renders");
    assert_eq!(out["c/templates/a"], "v1/Secret ns/s");
}

#[test]
fn sprig_regex_functions_use_gos_regexp_dialect() {
    // Go's `\w` is ASCII, `a{,2}` is a literal, and `a**` is refused with Go's message.
    let out = render_helm(
        r#"{{ regexMatch "^\\w$" "é" }} {{ regexFind "a{,2}" "xa{,2}" }}"#,
        Value::Nil,
    )
    .expect("renders");
    assert_eq!(out, "false a{,2}");
    let err = render_helm(r#"{{ mustRegexMatch "a**" "a" }}"#, Value::Nil).expect_err("refused");
    assert!(
        err.to_string()
            .contains("error parsing regexp: invalid nested repetition operator: `**`"),
        "{err}"
    );
}

#[test]
fn to_yaml_quotes_only_what_go_yaml_reads_as_a_timestamp() {
    // go-yaml's timestamps need the whole text to match a layout: a date alone does, a date
    // with hours and minutes but no seconds does not.
    let out = render_helm(
        r#"{{ toYaml (dict "at" "2024-01-01" "when" "2024-01-01 10:00") }}"#,
        Value::Nil,
    )
    .expect("renders");
    assert_eq!(out, "at: \"2024-01-01\"\nwhen: 2024-01-01 10:00");
}

#[test]
fn regex_match_answers_false_for_a_bad_pattern_as_sprig_does() {
    let out = render_helm(r#"{{ regexMatch "a(" "a(" }}"#, Value::Nil).expect("renders");
    assert_eq!(out, "false");
    assert!(render_helm(r#"{{ mustRegexMatch "a(" "a(" }}"#, Value::Nil).is_err());
}

#[test]
fn float64_reads_strings_as_go_strconv_does() {
    // Hexadecimal floats are Go syntax; an out-of-range value is an error, so cast gives 0.
    let out = render_helm(
        r#"{{ float64 "0x1p-2" }} {{ float64 "1e400" }}"#,
        Value::Nil,
    )
    .expect("renders");
    assert_eq!(out, "0.25 0");
}

#[test]
fn an_out_of_range_float_literal_is_illegal_number_syntax() {
    let err = render("{{ 1e400 }}", serde_json::json!({})).expect_err("out of range");
    assert!(err.to_string().contains("illegal number syntax"), "{err}");
}
