//! Decoding of the Kubernetes protobuf envelope for the few kinds kubectl (1.32+) sends as
//! protobuf through its typed clients (`kubectl create namespace|configmap|secret|
//! serviceaccount|service|deployment`). Fields those commands do not set are not decoded.
//! Everything else is answered with 415 UnsupportedMediaType.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\x00";

/// One field of a protobuf message.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length overflow")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a string field".to_string())
}

/// A `map<string, string|bytes>` entry.
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, f) in fields(b)? {
        if let Field::Bytes(b) = f {
            match n {
                1 => key = string(b)?,
                2 if bytes_value => {
                    value = json!(base64::engine::general_purpose::STANDARD.encode(b))
                }
                2 => value = json!(string(b)?),
                _ => {}
            }
        }
    }
    Ok((key, value))
}

fn insert_map(
    m: &mut Map<String, Value>,
    field: &str,
    b: &[u8],
    bytes_value: bool,
) -> Result<(), String> {
    let (k, v) = map_entry(b, bytes_value)?;
    let entry = m.entry(field).or_insert_with(|| json!({}));
    if let Some(o) = entry.as_object_mut() {
        o.insert(k, v);
    }
    Ok(())
}

fn push(m: &mut Map<String, Value>, field: &str, v: Value) {
    let entry = m.entry(field).or_insert_with(|| json!([]));
    if let Some(a) = entry.as_array_mut() {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                m.insert("name".into(), json!(string(b)?));
            }
            (2, Field::Bytes(b)) => {
                m.insert("generateName".into(), json!(string(b)?));
            }
            (3, Field::Bytes(b)) => {
                m.insert("namespace".into(), json!(string(b)?));
            }
            (6, Field::Bytes(b)) => {
                m.insert("resourceVersion".into(), json!(string(b)?));
            }
            (11, Field::Bytes(b)) => insert_map(&mut m, "labels", b, false)?,
            (12, Field::Bytes(b)) => insert_map(&mut m, "annotations", b, false)?,
            (14, Field::Bytes(b)) => push(&mut m, "finalizers", json!(string(b)?)),
            _ => {}
        }
    }
    for k in ["name", "generateName", "namespace", "resourceVersion"] {
        if m.get(k).and_then(Value::as_str) == Some("") {
            m.remove(k);
        }
    }
    Ok(Value::Object(m))
}

/// Go's protobuf encoder writes empty optional strings; JSON omits them.
fn put_str(m: &mut Map<String, Value>, key: &str, b: &[u8]) -> Result<(), String> {
    if !b.is_empty() {
        m.insert(key.into(), json!(string(b)?));
    }
    Ok(())
}

fn service_port(b: &[u8]) -> Result<Value, String> {
    let mut p = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                put_str(&mut p, "name", b)?;
            }
            (2, Field::Bytes(b)) => {
                put_str(&mut p, "protocol", b)?;
            }
            (3, Field::Varint(v)) => {
                p.insert("port".into(), json!(v));
            }
            (4, Field::Bytes(b)) => {
                // IntOrString: type (0 int, 1 string), intVal, strVal.
                let (mut is_str, mut int_val, mut str_val) = (false, 0u64, String::new());
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Varint(t)) => is_str = t == 1,
                        (2, Field::Varint(v)) => int_val = v,
                        (3, Field::Bytes(s)) => str_val = string(s)?,
                        _ => {}
                    }
                }
                p.insert(
                    "targetPort".into(),
                    if is_str {
                        json!(str_val)
                    } else {
                        json!(int_val)
                    },
                );
            }
            (5, Field::Varint(v)) if v != 0 => {
                p.insert("nodePort".into(), json!(v));
            }
            _ => {}
        }
    }
    Ok(Value::Object(p))
}

fn service_spec(b: &[u8]) -> Result<Value, String> {
    let mut spec = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(b)) => push(&mut spec, "ports", service_port(b)?),
            (2, Field::Bytes(b)) => insert_map(&mut spec, "selector", b, false)?,
            (3, Field::Bytes(b)) if !b.is_empty() => {
                put_str(&mut spec, "clusterIP", b)?;
            }
            (4, Field::Bytes(b)) if !b.is_empty() => {
                put_str(&mut spec, "type", b)?;
            }
            (10, Field::Bytes(b)) if !b.is_empty() => {
                put_str(&mut spec, "externalName", b)?;
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

fn strings_into(m: &mut Map<String, Value>, field: &str, b: &[u8]) -> Result<(), String> {
    push(m, field, json!(string(b)?));
    Ok(())
}

fn container(b: &[u8]) -> Result<Value, String> {
    let mut c = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                put_str(&mut c, "name", b)?;
            }
            (2, Field::Bytes(b)) => {
                put_str(&mut c, "image", b)?;
            }
            (3, Field::Bytes(b)) => strings_into(&mut c, "command", b)?,
            (4, Field::Bytes(b)) => strings_into(&mut c, "args", b)?,
            (5, Field::Bytes(b)) => {
                put_str(&mut c, "workingDir", b)?;
            }
            (6, Field::Bytes(b)) => {
                let mut p = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            put_str(&mut p, "name", s)?;
                        }
                        (2, Field::Varint(v)) if v != 0 => {
                            p.insert("hostPort".into(), json!(v));
                        }
                        (3, Field::Varint(v)) => {
                            p.insert("containerPort".into(), json!(v));
                        }
                        (4, Field::Bytes(s)) => {
                            put_str(&mut p, "protocol", s)?;
                        }
                        _ => {}
                    }
                }
                push(&mut c, "ports", Value::Object(p));
            }
            (7, Field::Bytes(b)) => {
                let mut e = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            put_str(&mut e, "name", s)?;
                        }
                        (2, Field::Bytes(s)) => {
                            put_str(&mut e, "value", s)?;
                        }
                        _ => {}
                    }
                }
                push(&mut c, "env", Value::Object(e));
            }
            (8, Field::Bytes(_)) => {
                c.insert("resources".into(), json!({}));
            }
            (14, Field::Bytes(b)) => {
                put_str(&mut c, "imagePullPolicy", b)?;
            }
            _ => {}
        }
    }
    Ok(Value::Object(c))
}

fn pod_template(b: &[u8]) -> Result<Value, String> {
    let mut t = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                t.insert("metadata".into(), object_meta(b)?);
            }
            (2, Field::Bytes(b)) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (2, Field::Bytes(b)) => push(&mut spec, "containers", container(b)?),
                        (20, Field::Bytes(b)) => push(&mut spec, "initContainers", container(b)?),
                        (3, Field::Bytes(b)) => {
                            put_str(&mut spec, "restartPolicy", b)?;
                        }
                        (7, Field::Bytes(b)) => insert_map(&mut spec, "nodeSelector", b, false)?,
                        (8, Field::Bytes(b)) => {
                            put_str(&mut spec, "serviceAccountName", b)?;
                        }
                        _ => {}
                    }
                }
                t.insert("spec".into(), Value::Object(spec));
            }
            _ => {}
        }
    }
    Ok(Value::Object(t))
}

fn deployment_spec(b: &[u8]) -> Result<Value, String> {
    let mut spec = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Varint(v)) => {
                spec.insert("replicas".into(), json!(v));
            }
            (2, Field::Bytes(b)) => {
                let mut sel = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(e)) = (n, f) {
                        insert_map(&mut sel, "matchLabels", e, false)?;
                    }
                }
                spec.insert("selector".into(), Value::Object(sel));
            }
            (3, Field::Bytes(b)) => {
                spec.insert("template".into(), pod_template(b)?);
            }
            (4, Field::Bytes(_)) => {
                spec.insert("strategy".into(), json!({}));
            }
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

fn body(kind: &str, raw: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (n, f) in fields(raw)? {
        let Field::Bytes(b) = f else {
            if let (Field::Varint(v), "ConfigMap", 4) | (Field::Varint(v), "Secret", 5) =
                (&f, kind, n)
            {
                m.insert("immutable".into(), json!(*v != 0));
            }
            if let (Field::Varint(v), "ServiceAccount", 4) = (&f, kind, n) {
                m.insert("automountServiceAccountToken".into(), json!(*v != 0));
            }
            continue;
        };
        match (kind, n) {
            (_, 1) => {
                m.insert("metadata".into(), object_meta(b)?);
            }
            ("Namespace", 2) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        push(&mut spec, "finalizers", json!(string(s)?));
                    }
                }
                m.insert("spec".into(), Value::Object(spec));
            }
            ("Service", 2) => {
                m.insert("spec".into(), service_spec(b)?);
            }
            ("Deployment", 2) => {
                m.insert("spec".into(), deployment_spec(b)?);
            }
            ("ConfigMap", 2) => insert_map(&mut m, "data", b, false)?,
            ("ConfigMap", 3) => insert_map(&mut m, "binaryData", b, true)?,
            ("Secret", 2) => insert_map(&mut m, "data", b, true)?,
            ("Secret", 3) => {
                m.insert("type".into(), json!(string(b)?));
            }
            ("Secret", 4) => insert_map(&mut m, "stringData", b, false)?,
            ("SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview", 2) => {
                m.insert("spec".into(), access_review_spec(b)?);
            }
            ("SelfSubjectRulesReview", 2) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (n, f) {
                        put_str(&mut spec, "namespace", s)?;
                    }
                }
                m.insert("spec".into(), Value::Object(spec));
            }
            ("TokenRequest", 2) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => push(&mut spec, "audiences", json!(string(s)?)),
                        (4, Field::Varint(v)) => {
                            spec.insert("expirationSeconds".into(), json!(v as i64));
                        }
                        _ => {}
                    }
                }
                m.insert("spec".into(), Value::Object(spec));
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// `authorization/v1` (Self/Local)SubjectAccessReviewSpec.
fn access_review_spec(b: &[u8]) -> Result<Value, String> {
    const RESOURCE: [&str; 7] = [
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut spec = Map::new();
    for (n, f) in fields(b)? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 => {
                let mut r = Map::new();
                for (n, f) in fields(b)? {
                    if let (1..=7, Field::Bytes(s)) = (n, f) {
                        put_str(&mut r, RESOURCE[n as usize - 1], s)?;
                    }
                }
                spec.insert("resourceAttributes".into(), Value::Object(r));
            }
            2 => {
                let mut r = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => put_str(&mut r, "path", s)?,
                        (2, Field::Bytes(s)) => put_str(&mut r, "verb", s)?,
                        _ => {}
                    }
                }
                spec.insert("nonResourceAttributes".into(), Value::Object(r));
            }
            3 => put_str(&mut spec, "user", b)?,
            4 => push(&mut spec, "groups", json!(string(b)?)),
            6 => put_str(&mut spec, "uid", b)?,
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

/// Decodes a protobuf request body for `kind`; errors say why it cannot be used.
pub fn decode(buf: &[u8], kind: &str) -> Result<Value, String> {
    if !matches!(
        kind,
        "Namespace"
            | "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "Service"
            | "Deployment"
            | "SelfSubjectAccessReview"
            | "SubjectAccessReview"
            | "LocalSubjectAccessReview"
            | "SelfSubjectRulesReview"
            | "SelfSubjectReview"
            | "TokenRequest"
    ) {
        return Err(format!(
            "protobuf bodies are not supported for {kind}; send application/json"
        ));
    }
    let rest = buf
        .strip_prefix(MAGIC)
        .ok_or("missing the k8s protobuf envelope")?;
    let mut api_version = String::new();
    let mut got_kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = string(b)?,
                        (2, Field::Bytes(b)) => got_kind = string(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    if !got_kind.is_empty() && got_kind != kind {
        return Err(format!("the body holds a {got_kind}, not a {kind}"));
    }
    let mut obj = body(kind, raw)?;
    obj["apiVersion"] = json!(if api_version.is_empty() {
        "v1".to_string()
    } else {
        api_version
    });
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// Appends a length-delimited field.
fn put_bytes(out: &mut Vec<u8>, num: u64, b: &[u8]) {
    put_varint(out, (num << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One PATCH path of the OpenAPI v2 document: the group/version/kind it serves.
pub struct PatchPath<'a> {
    /// URL path template.
    pub path: &'a str,
    /// Group.
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
}

/// The gnostic `openapi.v2.Document` protobuf that kubectl 1.27-1.31 downloads: one PATCH
/// operation per resource carrying its GVK and the `fieldValidation` query parameter, so that
/// kubectl leaves validation to the server. Definitions are not included.
pub fn openapi_v2_document(paths: &[PatchPath<'_>]) -> Vec<u8> {
    let mut doc = Vec::new();
    put_bytes(&mut doc, 1, b"2.0");
    let mut info = Vec::new();
    put_bytes(&mut info, 1, b"Kubernetes");
    put_bytes(&mut info, 2, b"v1.33.0");
    put_bytes(&mut doc, 2, &info);
    let mut all = Vec::new();
    for p in paths {
        let mut ops = Vec::new();
        for name in ["fieldValidation", "fieldManager", "dryRun"] {
            let mut q = Vec::new();
            put_bytes(&mut q, 2, b"query");
            put_bytes(&mut q, 4, name.as_bytes());
            put_bytes(&mut q, 6, b"string");
            let mut non_body = Vec::new();
            put_bytes(&mut non_body, 3, &q);
            let mut param = Vec::new();
            put_bytes(&mut param, 2, &non_body);
            let mut item = Vec::new();
            put_bytes(&mut item, 1, &param);
            put_bytes(&mut ops, 8, &item);
        }
        let yaml = format!(
            "group: \"{}\"\nkind: {}\nversion: {}\n",
            p.group, p.kind, p.version
        );
        let mut any = Vec::new();
        put_bytes(&mut any, 2, yaml.as_bytes());
        let mut ext = Vec::new();
        put_bytes(&mut ext, 1, b"x-kubernetes-group-version-kind");
        put_bytes(&mut ext, 2, &any);
        put_bytes(&mut ops, 13, &ext);
        let mut item = Vec::new();
        put_bytes(&mut item, 8, &ops);
        let mut named = Vec::new();
        put_bytes(&mut named, 1, p.path.as_bytes());
        put_bytes(&mut named, 2, &item);
        put_bytes(&mut all, 2, &named);
    }
    put_bytes(&mut doc, 8, &all);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u64, b: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, b.len() as u8];
        out.extend_from_slice(b);
        out
    }

    #[test]
    fn decodes_a_configmap_envelope() {
        let mut meta = ld(1, b"cm");
        meta.extend(ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()));
        let mut raw = ld(1, &meta);
        raw.extend(ld(2, &[ld(1, b"k"), ld(2, b"v")].concat()));
        let tm = [ld(1, b"v1"), ld(2, b"ConfigMap")].concat();
        let mut buf = MAGIC.to_vec();
        buf.extend(ld(1, &tm));
        buf.extend(ld(2, &raw));
        let v = decode(&buf, "ConfigMap").expect("decode");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"app": "x"}}, "data": {"k": "v"}})
        );
        assert!(decode(&buf[..buf.len() - 3], "ConfigMap").is_err());
        assert!(decode(&buf, "Deployment").is_err());
        assert!(decode(b"junk", "ConfigMap").is_err());
    }

    #[test]
    fn openapi_v2_document_parses_back() {
        let doc = openapi_v2_document(&[PatchPath {
            path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            group: "apps",
            version: "v1",
            kind: "Deployment",
        }]);
        let top = fields(&doc).expect("document");
        let paths = top
            .iter()
            .find_map(|(n, f)| match (n, f) {
                (8, Field::Bytes(b)) => Some(*b),
                _ => None,
            })
            .expect("paths");
        let named = fields(paths).expect("paths message");
        assert_eq!(named.len(), 1);
        let Field::Bytes(item) = &named[0].1 else {
            panic!("named path item")
        };
        let parts = fields(item).expect("named");
        assert!(matches!(&parts[0], (1, Field::Bytes(b)) if b.starts_with(b"/apis/apps/v1")));
    }
}
