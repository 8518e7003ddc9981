//! Helm's release record and Secret encoding as Helm's Go code writes and reads them: field
//! names and omissions of `release.v1.Release`, `base64(gzip(json))` under the API's own
//! base64, the driver's labels, and a size budget on decoding.

use std::collections::BTreeMap;

use base64::Engine;
use ferroflux_helm::release::{
    self, ChartRecord, File, Hook, Info, Release, Status, Written, from_secret, to_secret,
};
use serde_json::{Value, json};

fn sample() -> Release {
    let at: jiff::Timestamp = "2026-12-07T16:50:01.123456789Z".parse().expect("time");
    let mut info = Info::new(Status::Deployed, "Install complete", at);
    info.notes = "thanks".into();
    Release {
        name: "podinfo".into(),
        info: Some(info),
        chart: Some(ChartRecord {
            metadata: json!({"name": "podinfo", "version": "6.0.0", "apiVersion": "v2"}),
            templates: vec![File {
                name: "templates/cm.yaml".into(),
                data: b"kind: ConfigMap\n".to_vec(),
            }],
            values: json!({"replicas": 1}),
            ..ChartRecord::default()
        }),
        config: json!({"replicas": 2}).as_object().cloned(),
        manifest: "---\nkind: ConfigMap\n".into(),
        hooks: vec![Hook {
            name: "test".into(),
            events: vec!["test".into()],
            ..Hook::default()
        }],
        version: 3,
        namespace: "apps".into(),
        labels: BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            ("status".to_string(), "spoofed".to_string()),
        ]),
        apply_method: "ssa".into(),
    }
}

#[test]
fn the_record_has_helms_json_shape() {
    let json = serde_json::to_value(sample()).expect("serialises");
    assert_eq!(
        json["info"]["first_deployed"],
        "2026-12-07T16:50:01.123456789Z"
    );
    assert_eq!(json["info"]["status"], "deployed");
    assert!(
        json["info"].get("deleted").is_none(),
        "zero times are left out"
    );
    assert_eq!(
        json["chart"]["templates"][0]["data"],
        "a2luZDogQ29uZmlnTWFwCg=="
    );
    assert_eq!(
        json["chart"]["schema"],
        Value::Null,
        "Go writes a nil []byte as null"
    );
    assert_eq!(json["chart"]["lock"], Value::Null);
    assert_eq!(json["chart"]["schemamodtime"], "0001-01-01T00:00:00Z");
    assert_eq!(json["hooks"][0]["last_run"], json!({"phase": ""}));
    assert_eq!(json["apply_method"], "ssa");
    assert!(json.get("labels").is_none(), "labels live on the Secret");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "apply_method",
        "chart",
        "config",
        "hooks",
        "info",
        "manifest",
        "name",
        "namespace",
        "version",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn the_secret_round_trips_with_helms_labels() {
    let secret = to_secret(&sample(), "apps", Written::Modified(1_700_000_000)).expect("encodes");
    assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.podinfo.v3");
    assert_eq!(secret["type"], "helm.sh/release.v1");
    assert_eq!(
        secret["metadata"]["labels"],
        json!({"name": "podinfo", "owner": "helm", "status": "deployed", "version": "3",
               "modifiedAt": "1700000000", "team": "a"})
    );
    // The API's base64 of Helm's base64 of gzip.
    let outer = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["release"].as_str().expect("data"))
        .expect("outer base64");
    let inner = base64::engine::general_purpose::STANDARD
        .decode(&outer)
        .expect("inner base64");
    assert_eq!(&inner[..3], &[0x1f, 0x8b, 0x08], "gzip");
    let back = from_secret(&secret, release::DEFAULT_MAX_RELEASE_SIZE).expect("decodes");
    let mut expected = sample();
    expected.labels.remove("status");
    assert_eq!(back, expected);
}

#[test]
fn records_that_are_not_releases_are_refused() {
    let mut secret = to_secret(&sample(), "apps", Written::Created(1)).expect("encodes");
    assert!(from_secret(&secret, 64).is_err(), "over the size budget");
    secret["type"] = json!("Opaque");
    assert!(from_secret(&secret, release::DEFAULT_MAX_RELEASE_SIZE).is_err());
}

#[test]
fn digests_follow_the_values_and_the_release() {
    let a = release::values_digest(&json!({"a": 1, "b": 2}));
    assert_eq!(a, release::values_digest(&json!({"b": 2, "a": 1})));
    assert_ne!(a, release::values_digest(&json!({"a": 1})));
    assert_eq!(
        release::values_digest(&Value::Null),
        release::values_digest(&json!({}))
    );
    let mut changed = sample();
    let before = release::observation_digest(&changed);
    changed.hooks.clear();
    assert_eq!(
        before,
        release::observation_digest(&changed),
        "test hooks are not observed"
    );
    changed.manifest.push_str("data: {}\n");
    assert_ne!(before, release::observation_digest(&changed));
}
