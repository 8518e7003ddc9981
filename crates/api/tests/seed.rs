//! The seed examples of the foundation issue decode into the typed structs with no field lost,
//! pass strict validation, and a misspelled field is reported with its path.

mod common;

use common::{json_round_trip, numbers_as_floats, yaml_round_trip};
use ferroflux_api::convert;
use ferroflux_api::strict::{self, StrictError};
use serde_json::Value;

fn seed_documents() -> Vec<Value> {
    let text = include_str!("fixtures/seed.yaml");
    serde_saphyr::from_multiple(text).expect("the seed fixture is valid YAML")
}

#[test]
fn every_seed_object_round_trips_through_its_typed_struct() {
    let docs = seed_documents();
    assert_eq!(docs.len(), 9, "the seed has nine objects");
    for doc in &docs {
        let kind = doc["kind"].as_str().expect("kind");
        let mut expected = doc.clone();
        convert::to_storage(&mut expected).expect("seed kinds are served");
        let back = with_kind!(kind, json_round_trip, doc);
        assert_eq!(
            back,
            numbers_as_floats(expected),
            "{kind}: typed decoding lost or changed a field"
        );
        with_kind!(kind, yaml_round_trip, doc);
    }
}

#[test]
fn every_seed_object_passes_strict_validation() {
    for doc in seed_documents() {
        if let Err(errors) = strict::check(&doc) {
            panic!("{}: {errors:?}", doc["kind"]);
        }
    }
}

#[test]
fn a_misspelled_field_is_reported_with_its_path() {
    let mut doc = seed_documents()
        .into_iter()
        .find(|d| d["kind"] == "Kustomization")
        .expect("the seed has a Kustomization");
    let spec = doc["spec"].as_object_mut().expect("spec is a map");
    let interval = spec.remove("interval").expect("interval is set");
    spec.insert("intervall".into(), interval);
    let errors = strict::check(&doc).expect_err("a misspelled field is an error");
    assert!(
        errors.contains(&StrictError::UnknownField {
            path: "spec.intervall".into()
        }),
        "{errors:?}"
    );
    assert!(
        errors.contains(&StrictError::Missing {
            path: "spec.interval".into()
        }),
        "{errors:?}"
    );
}

#[test]
fn wrong_types_and_enum_values_are_reported_with_their_paths() {
    let mut doc = seed_documents()
        .into_iter()
        .find(|d| d["kind"] == "OCIRepository")
        .expect("the seed has an OCIRepository");
    doc["spec"]["insecure"] = Value::String("yes".into());
    doc["spec"]["verify"]["provider"] = Value::String("gpg".into());
    let errors = strict::check(&doc).expect_err("invalid values are errors");
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        messages.contains(&"spec.insecure: expected boolean, found string".to_string()),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("spec.verify.provider: unsupported value")),
        "{messages:?}"
    );
}

#[test]
fn an_unserved_version_is_refused() {
    let mut doc = seed_documents().remove(0);
    doc["apiVersion"] = Value::String("image.toolkit.fluxcd.io/v1alpha1".into());
    let errors = strict::check(&doc).expect_err("v1alpha1 is not served");
    assert!(
        errors[0]
            .to_string()
            .contains("served versions: v1, v1beta2"),
        "{errors:?}"
    );
}

#[test]
fn a_null_field_is_dropped_as_the_api_server_drops_it_and_a_null_required_one_is_missing() {
    let mut doc = seed_documents()
        .into_iter()
        .find(|d| d["kind"] == "Kustomization")
        .expect("the seed has a Kustomization");
    doc["spec"]["targetNamespace"] = Value::Null;
    assert_eq!(strict::check(&doc), Ok(()), "an optional null is dropped");
    doc["spec"]["interval"] = Value::Null;
    assert_eq!(
        strict::check(&doc),
        Err(vec![StrictError::Missing {
            path: "spec.interval".into()
        }])
    );
}
