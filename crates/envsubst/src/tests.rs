use std::collections::HashMap;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expand(input: &str, pairs: &[(&str, &str)]) -> String {
    let vars = vars(pairs);
    eval(input, &|name| vars.get(name).cloned(), false).expect("expands")
}

fn expand_strict(input: &str, pairs: &[(&str, &str)]) -> Result<String, Error> {
    let vars = vars(pairs);
    eval(input, &|name| vars.get(name).cloned(), true)
}

#[test]
fn braced_variables_expand_and_bare_ones_stay() {
    let pairs = [("cluster", "prod-eu"), ("replicas", "3")];
    assert_eq!(expand("name: ${cluster}-app", &pairs), "name: prod-eu-app");
    assert_eq!(expand("replicas: ${replicas}", &pairs), "replicas: 3");
    assert_eq!(expand("echo $cluster $1 $", &pairs), "echo $cluster $1 $");
    assert_eq!(expand("no dollars at all", &pairs), "no dollars at all");
}

#[test]
fn double_dollar_escapes() {
    let pairs = [("region", "eu")];
    assert_eq!(expand("$${region}", &pairs), "${region}");
    assert_eq!(expand("$$region", &pairs), "$region");
    assert_eq!(expand("a $${x:=y} b ${region}", &pairs), "a ${x:=y} b eu");
}

#[test]
fn defaults_apply_to_unset_and_empty_values() {
    let pairs = [("set", "value"), ("empty", "")];
    assert_eq!(
        expand("${set:=d}|${unset:=d}|${empty:=d}", &pairs),
        "value|d|d"
    );
    assert_eq!(
        expand("${set:-d}|${unset:-d}|${empty:-d}", &pairs),
        "value|d|d"
    );
    assert_eq!(expand("${unset=d}", &pairs), "d");
    assert_eq!(expand("${set:+alt}|${unset:+alt}", &pairs), "alt|");
    assert_eq!(expand("${unset:=${set}-x}", &pairs), "value-x");
    assert_eq!(expand("${unset}", &pairs), "");
}

#[test]
fn string_operators() {
    let pairs = [
        ("file", "dir/sub/app.tar.gz"),
        ("word", "fluxCD"),
        ("s", "a-b-a-b"),
    ];
    assert_eq!(expand("${#word}", &pairs), "6");
    assert_eq!(
        expand("${word^}|${word^^}|${word,}|${word,,}", &[("word", "Flux")]),
        "Flux|FLUX|flux|flux"
    );
    assert_eq!(expand("${file#*/}", &pairs), "sub/app.tar.gz");
    assert_eq!(expand("${file##*/}", &pairs), "app.tar.gz");
    assert_eq!(expand("${file%.*}", &pairs), "dir/sub/app.tar");
    assert_eq!(expand("${file%%.*}", &pairs), "dir/sub/app");
    assert_eq!(expand("${s/a/x}|${s//a/x}", &pairs), "x-b-a-b|x-b-x-b");
    assert_eq!(
        expand("${s/#a/x}|${s/%b/y}|${s/%a/y}", &pairs),
        "x-b-a-b|a-b-a-y|a-b-a-b"
    );
    assert_eq!(expand("${s/#/pre-}", &pairs), "pre-a-b-a-b");
    assert_eq!(expand(r"${file//\//_}", &pairs), "dir_sub_app.tar.gz");
    assert_eq!(
        expand("${word:4}|${word:0:4}|${word:-2}", &pairs),
        "CD|flux|fluxCD"
    );
    assert_eq!(expand("${word:10}|${word:2:100}", &pairs), "|uxCD");
}

#[test]
fn strict_mode_refuses_unset_variables_without_defaults() {
    assert_eq!(
        expand_strict("${missing}", &[]),
        Err(Error::VarNotSet {
            name: "missing".into()
        })
    );
    assert!(matches!(
        expand_strict("${missing^^}", &[]),
        Err(Error::VarNotSet { .. })
    ));
    assert!(matches!(
        expand_strict("${#missing}", &[]),
        Err(Error::VarNotSet { .. })
    ));
    assert_eq!(expand_strict("${missing:=x}", &[]), Ok("x".into()));
    assert_eq!(expand_strict("${missing:-x}", &[]), Ok("x".into()));
    assert_eq!(
        expand_strict("${empty}", &[("empty", "")]),
        Ok(String::new())
    );
    assert!(matches!(
        expand_strict("${empty:?must be set}", &[("empty", "")]),
        Err(Error::Required { message, .. }) if message == "must be set"
    ));
}

#[test]
fn malformed_expressions_are_errors_not_panics() {
    for input in [
        "${",
        "${unclosed",
        "${}",
        "${-x}",
        "${a:=${b}",
        "${a!}",
        "${#a:1}",
        "${a/b",
        "${a\\",
    ] {
        let result = eval(input, &|_| Some("v".into()), false);
        assert!(
            matches!(result, Err(Error::Syntax { .. })),
            "{input}: {result:?}"
        );
    }
}

#[test]
fn multibyte_text_is_kept_intact() {
    let pairs = [("city", "Zürich")];
    assert_eq!(
        expand("Grüße aus ${city}: ${city:1:3} ${#city}", &pairs),
        "Grüße aus Zürich: üri 6"
    );
}

#[test]
fn variable_names_follow_flux_rules() {
    for good in ["a", "_x", "CLUSTER_NAME", "v1"] {
        assert_eq!(validate_var_name(good), Ok(()), "{good}");
    }
    for bad in ["", "1a", "a-b", "a.b", "ä"] {
        assert!(validate_var_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn glob_matches_like_the_shell() {
    let g = |p: &str, t: &str| {
        glob(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    };
    assert!(g("*", ""));
    assert!(g("a*c", "abbbc"));
    assert!(g("a?c", "abc"));
    assert!(!g("a?c", "ac"));
    assert!(g("*/", "x/y/"));
    assert!(!g("*.", "abc"));
}
