use serde_json::json;

use super::wire::put_varint_field;
use super::*;

fn ld(num: u32, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, num, b);
    out
}

fn wrap(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let tm = [ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())].concat();
    [MAGIC.to_vec(), ld(1, &tm), ld(2, raw)].concat()
}

#[test]
fn decodes_a_configmap_envelope() {
    let mut meta = ld(1, b"cm");
    meta.extend(ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()));
    let mut raw = ld(1, &meta);
    raw.extend(ld(2, &[ld(1, b"k"), ld(2, b"v")].concat()));
    let buf = wrap("v1", "ConfigMap", &raw);
    let v = decode_request(&buf, "v1", "ConfigMap").expect("decode");
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"app": "x"}}, "data": {"k": "v"}})
    );
    let cut = decode_request(&buf[..buf.len() - 3], "v1", "ConfigMap").expect_err("truncated");
    assert_eq!(cut.code, 400);
    assert!(cut.message.starts_with(
        "the object provided is unrecognized (must be of type ConfigMap): unexpected EOF (6b387300"
    ));
    let inner = wrap("v1", "ConfigMap", &raw[..raw.len() - 3]);
    let cut = decode_request(&inner, "v1", "ConfigMap").expect_err("truncated object");
    assert_eq!(
        cut.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: unexpected EOF"
    );
    let junk = decode_request(b"junk", "v1", "ConfigMap").expect_err("junk");
    assert_eq!(
        junk.message,
        "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] (6a756e6b)"
    );
}

#[test]
fn zero_scalars_follow_go_json_rules() {
    // replicas is a pointer (0 is kept); minReadySeconds is omitempty (0 is dropped).
    let mut spec = Vec::new();
    put_varint_field(&mut spec, 1, 0);
    put_varint_field(&mut spec, 5, 0);
    let raw = [ld(1, &ld(1, b"d")), ld(2, &spec)].concat();
    let v = decode_request(
        &wrap("apps/v1", "Deployment", &raw),
        "apps/v1",
        "Deployment",
    )
    .expect("decode");
    assert_eq!(v["spec"], json!({"replicas": 0}));
}

#[test]
fn special_types_round_trip() {
    let obj = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "creationTimestamp": "2024-05-06T07:08:09Z",
            "managedFields": [{"manager": "m", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}
    });
    let bytes = encode(&obj).expect("encode");
    let back = decode_request(&bytes, "v1", "Service").expect("decode");
    assert_eq!(back, obj);
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"cpu": "1", "pods": "10"}}});
    let back =
        decode_request(&encode(&quota).expect("encode"), "v1", "ResourceQuota").expect("decode");
    assert_eq!(back, quota);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"k": "AAEC/w=="}, "type": "Opaque"});
    let back = decode_request(&encode(&secret).expect("encode"), "v1", "Secret").expect("decode");
    assert_eq!(back, secret);
}

#[test]
fn crd_schema_unions_round_trip() {
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "ws.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "ws", "kind": "W"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "additionalProperties": false,
                        "properties": {"n": {"type": "integer", "default": 3, "minimum": 1.5}}}}}}}]}});
    let back = decode_request(
        &encode(&crd).expect("encode"),
        "apiextensions.k8s.io/v1",
        "x",
    )
    .expect("decode");
    assert_eq!(back, crd);
}

#[test]
fn hostile_bodies_are_errors_not_panics() {
    let deep = (0..200).fold(Vec::new(), |inner, _| ld(1, &inner));
    for body in [
        MAGIC.to_vec(),
        [MAGIC, &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f][..]].concat(),
        [MAGIC, &[0x0f][..]].concat(),
        [MAGIC, &[0x80; 12][..]].concat(),
        wrap("v1", "ConfigMap", &[0x12, 0x03, 0x0a, 0x05, 0x41]),
        wrap("v1", "ConfigMap", &ld(1, &ld(1, &[0xff, 0xfe]))),
        wrap("apiextensions.k8s.io/v1", "CustomResourceDefinition", &deep),
        wrap("v1", "Nope", b""),
    ] {
        let _ = decode_request(&body, "v1", "ConfigMap");
    }
    // Mutations of a valid object: flipped bytes and cuts, decoded as several kinds.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d",
        "labels": {"a": "b"}, "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c",
            "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}]}}}});
    let good = encode(&deploy).expect("encode");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut b = good.clone();
        let i = MAGIC.len() + (seed as usize) % (b.len() - MAGIC.len());
        b[i] = (seed >> 32) as u8;
        if seed.is_multiple_of(3) {
            b.truncate(i + 1);
        }
        for kind in [
            "Deployment",
            "Service",
            "CustomResourceDefinition",
            "Status",
        ] {
            let _ = decode_envelope(&b, Some(("apps/v1", kind)), 0);
        }
    }
    for bad in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": 1}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": []}),
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1e20}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}}),
    ] {
        assert!(encode(&bad).is_err(), "{bad}");
    }
    let err = decode_request(&wrap("v1", "Nope", b""), "v1", "ConfigMap").expect_err("kind");
    assert_eq!(
        err.message,
        "Nope in version \"v1\" cannot be handled as a ConfigMap: no kind \"Nope\" is registered for version \"v1\""
    );
}

#[test]
fn watch_frames_are_length_prefixed_watch_events() {
    let ev = json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}});
    let frame = watch_frame(&ev).expect("frame");
    let len = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, frame.len() - 4);
    let fields: Vec<_> = Fields::new(&frame[4..])
        .collect::<Result<_, _>>()
        .expect("event");
    assert!(matches!(fields[0], (1, Wire::Bytes(b"ADDED"))));
    let (2, Wire::Bytes(raw_ext)) = fields[1] else {
        panic!("object field")
    };
    let Some(Ok((1, Wire::Bytes(object)))) = Fields::new(raw_ext).next() else {
        panic!("raw extension")
    };
    assert_eq!(
        decode_request(object, "v1", "ConfigMap").expect("object")["metadata"]["name"],
        "a"
    );
}

#[test]
fn openapi_v2_document_parses_back() {
    let doc = openapi_v2_document(&[PatchPath {
        path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        group: "apps",
        version: "v1",
        kind: "Deployment",
    }]);
    let top: Vec<_> = Fields::new(&doc)
        .collect::<Result<_, _>>()
        .expect("document");
    let paths = top
        .iter()
        .find_map(|(n, f)| match (n, f) {
            (8, Wire::Bytes(b)) => Some(*b),
            _ => None,
        })
        .expect("paths");
    let named: Vec<_> = Fields::new(paths)
        .collect::<Result<_, _>>()
        .expect("paths message");
    assert_eq!(named.len(), 1);
    let Wire::Bytes(item) = named[0].1 else {
        panic!("named path item")
    };
    let parts: Vec<_> = Fields::new(item).collect::<Result<_, _>>().expect("named");
    assert!(matches!(parts[0], (1, Wire::Bytes(b)) if b.starts_with(b"/apis/apps/v1")));
}
