//! Helpers shared by the api crate's tests (each test binary uses a part of them).
#![allow(dead_code)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parses `value` as `T` and serialises it back; any field the type drops or renames shows up as
/// a difference.
pub fn json_round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("does not decode as typed struct: {e}\n{value:#}"));
    numbers_as_floats(serde_json::to_value(&typed).expect("typed structs serialise"))
}

/// JSON numbers compared by value: `99` written by a user and `99.0` written back by a float
/// field are the same number.
pub fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

/// typed -> YAML -> typed must give the same typed value.
pub fn yaml_round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    value: &Value,
) {
    let typed: T = serde_json::from_value(value.clone()).expect("decodes");
    let yaml = serde_saphyr::to_string(&typed).expect("serialises to YAML");
    let again: T = serde_saphyr::from_str(&yaml)
        .unwrap_or_else(|e| panic!("YAML written by us does not decode: {e}\n{yaml}"));
    assert_eq!(
        typed, again,
        "typed -> YAML -> typed changed the object:\n{yaml}"
    );
}

/// Runs `$f::<T>(value)` with the typed struct of `value`'s kind.
#[macro_export]
macro_rules! with_kind {
    ($kind:expr, $f:ident, $value:expr) => {{
        use ferroflux_api::*;
        match $kind {
            "GitRepository" => $f::<source::GitRepository>($value),
            "OCIRepository" => $f::<source::OCIRepository>($value),
            "HelmRepository" => $f::<source::HelmRepository>($value),
            "HelmChart" => $f::<source::HelmChart>($value),
            "Bucket" => $f::<source::Bucket>($value),
            "ExternalArtifact" => $f::<source::ExternalArtifact>($value),
            "ArtifactGenerator" => $f::<artifactgenerator::ArtifactGenerator>($value),
            "Kustomization" => $f::<kustomize::Kustomization>($value),
            "HelmRelease" => $f::<helm::HelmRelease>($value),
            "ImageRepository" => $f::<image::ImageRepository>($value),
            "ImagePolicy" => $f::<image::ImagePolicy>($value),
            "ImageUpdateAutomation" => $f::<image::ImageUpdateAutomation>($value),
            "Provider" => $f::<notification::Provider>($value),
            "Alert" => $f::<notification::Alert>($value),
            "Receiver" => $f::<notification::Receiver>($value),
            "Canary" => $f::<flagger::Canary>($value),
            "MetricTemplate" => $f::<flagger::MetricTemplate>($value),
            "AlertProvider" => $f::<flagger::AlertProvider>($value),
            "ClusterPolicy" => $f::<kyverno::ClusterPolicy>($value),
            "Policy" => $f::<kyverno::Policy>($value),
            "PolicyReport" => $f::<wgpolicy::PolicyReport>($value),
            "ClusterPolicyReport" => $f::<wgpolicy::ClusterPolicyReport>($value),
            other => panic!("no typed struct for kind {other}"),
        }
    }};
}
