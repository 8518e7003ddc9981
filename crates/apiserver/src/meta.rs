//! Object metadata rules: names, namespaces, uid, timestamps, generation, Secrets' stringData.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::registry::Resource;
use crate::status::{ApiError, Cause, Target};

/// Now, as Kubernetes writes times (RFC 3339, seconds).
pub fn now() -> String {
    let ts = jiff::Timestamp::now();
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub use ferroflux_schema::names::{SUBDOMAIN_MSG, is_subdomain, validate_metadata};

/// Validates an object name for `res`; `None` when valid.
pub fn name_error(res: &Resource, name: &str) -> Option<Cause> {
    ferroflux_schema::names::name_error(&res.group, &res.kind, name)
}

/// Whether objects of `res` carry `metadata.generation`: custom resources, and the built-in
/// kinds whose kube-apiserver strategy sets it (the workloads and the other kinds with a
/// versioned spec; Namespaces, Services, RBAC objects, quotas and the like have none).
fn tracks_generation(res: &Resource) -> bool {
    res.custom
        || matches!(
            (res.group.as_str(), res.kind.as_str()),
            ("", "Pod" | "PodTemplate" | "ReplicationController")
                | (
                    "apps",
                    "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
                )
                | ("batch", "Job" | "CronJob")
                | ("policy", "PodDisruptionBudget")
                | (
                    "networking.k8s.io",
                    "Ingress" | "IngressClass" | "NetworkPolicy"
                )
                | ("discovery.k8s.io", "EndpointSlice")
                | ("scheduling.k8s.io", "PriorityClass")
                | (
                    "admissionregistration.k8s.io",
                    "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
                )
                | ("apiextensions.k8s.io", "CustomResourceDefinition")
        )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Checks `apiVersion`/`kind` of a body against the URL's resource, filling them in when absent.
pub fn check_type(obj: &mut Value, res: &Resource) -> Result<(), ApiError> {
    let Some(m) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let av = res.api_version();
    match m.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("apiVersion".into(), json!(av));
        }
        Some(got) => {
            let group = got.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            if group != res.group {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({got}) does not match the expected API version ({av})"
                )));
            }
            m.insert("apiVersion".into(), json!(av));
        }
    }
    match m.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            m.insert("kind".into(), json!(res.kind));
        }
        Some(k) if k != res.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
        Some(_) => {}
    }
    if !m.get("metadata").is_none_or(Value::is_object) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    m.entry("metadata").or_insert_with(|| json!({}));
    Ok(())
}

/// Checks the body's namespace against the URL's and sets it (or removes it for cluster-scoped).
pub fn check_namespace(
    obj: &mut Value,
    res: &Resource,
    url_ns: Option<&str>,
) -> Result<(), ApiError> {
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("check_type made metadata an object");
    let body_ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if res.namespaced {
        let url_ns = url_ns.unwrap_or("");
        if !body_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), json!(url_ns));
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Fills in server-set metadata of a new object and checks its name.
pub fn prepare_create(obj: &mut Value, res: &Resource, now: &str) -> Result<String, ApiError> {
    // kube-apiserver checks the name and the kind's own fields in one pass.
    let key_causes = data_key_causes(obj, res);
    let meta = obj["metadata"]
        .as_object_mut()
        .expect("check_type made metadata an object");
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty()
        && let Some(g) = meta.get("generateName").and_then(Value::as_str)
        && !g.is_empty()
    {
        name = format!("{g}{}", random_suffix());
        meta.insert("name".into(), json!(name));
    }
    let t = Target {
        resource: &res.plural,
        group: &res.group,
        name: &name,
        kind: &res.kind,
    };
    let mut causes: Vec<Cause> = name_error(res, &name).into_iter().collect();
    causes.extend(key_causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(t, causes));
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now));
    if tracks_generation(res) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    defaults_for_kind(obj, res)?;
    Ok(name)
}

/// The keys of a ConfigMap's `data`/`binaryData` or a Secret's `data` that kube-apiserver
/// refuses (they become file names when mounted), one cause per fault in its words.
pub fn data_key_causes(obj: &Value, res: &Resource) -> Vec<Cause> {
    let bags: &[&str] = match (res.custom, res.group.as_str(), res.kind.as_str()) {
        (false, "", "ConfigMap") => &["data", "binaryData"],
        (false, "", "Secret") => &["data"],
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for bag in bags {
        let Some(keys) = obj[*bag].as_object() else {
            continue;
        };
        for key in keys.keys() {
            let field = format!("{bag}[{key}]");
            let mut faults = Vec::new();
            if key.len() > 253 {
                faults.push("must be no more than 253 characters".to_string());
            }
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                faults.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
            }
            match key.as_str() {
                "." => faults.push("must not be '.'".to_string()),
                ".." => faults.push("must not be '..'".to_string()),
                k if k.starts_with("..") => faults.push("must not start with '..'".to_string()),
                _ => {}
            }
            if *bag == "data" && res.kind == "ConfigMap" && obj["binaryData"].get(key).is_some() {
                faults.push("duplicate of key present in binaryData".to_string());
            }
            for fault in faults {
                out.push(Cause::invalid(field.clone(), &json!(key), &fault));
            }
        }
    }
    out
}

/// Kind-specific defaulting: Secrets fold stringData into data, Namespaces start Active.
fn defaults_for_kind(obj: &mut Value, res: &Resource) -> Result<(), ApiError> {
    if !res.group.is_empty() {
        return Ok(());
    }
    match res.kind.as_str() {
        "Secret" => {
            let m = obj.as_object_mut().expect("objects checked by check_type");
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default().to_string();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(s)),
                        );
                    }
                }
            }
            if let Some(d) = m.get("data").and_then(Value::as_object) {
                for (k, v) in d {
                    let ok = v.as_str().is_some_and(|s| {
                        base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                    });
                    if !ok {
                        return Err(ApiError::bad_request(format!(
                            "Secret data[{k}]: illegal base64 data"
                        )));
                    }
                }
            }
            if m.get("type").is_none() {
                m.insert("type".into(), json!("Opaque"));
            }
        }
        "Namespace" => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            if obj["status"]["phase"].is_null() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        _ => {}
    }
    Ok(())
}

fn without_meta_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// Fields of built-in kinds that cannot change once set, by (group, kind).
const IMMUTABLE: &[(&str, &str, &[&str])] = &[
    ("apps", "Deployment", &["spec.selector"]),
    ("apps", "ReplicaSet", &["spec.selector"]),
    ("apps", "DaemonSet", &["spec.selector"]),
    (
        "apps",
        "StatefulSet",
        &[
            "spec.selector",
            "spec.serviceName",
            "spec.volumeClaimTemplates",
            "spec.podManagementPolicy",
        ],
    ),
    (
        "batch",
        "Job",
        &["spec.selector", "spec.template", "spec.completionMode"],
    ),
    ("", "Service", &["spec.clusterIP"]),
    (
        "",
        "PersistentVolumeClaim",
        &[
            "spec.storageClassName",
            "spec.volumeName",
            "spec.accessModes",
        ],
    ),
];

fn at<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |cur, seg| &cur[seg])
}

/// Updates that change an immutable field: the `field is immutable` causes Flux's force-apply
/// (recreate) looks for.
pub fn immutable_changes(old: &Value, new: &Value, res: &Resource) -> Vec<Cause> {
    let mut out = Vec::new();
    if !res.custom
        && let Some((_, _, paths)) = IMMUTABLE
            .iter()
            .find(|(g, k, _)| *g == res.group && *k == res.kind)
    {
        for p in *paths {
            let (was, now) = (at(old, p), at(new, p));
            // An unset clusterIP may be set once; other fields may not change at all.
            let settable = *p == "spec.clusterIP" && was.as_str().is_none_or(str::is_empty);
            if was != now && !settable {
                out.push(Cause::invalid(*p, now, "field is immutable"));
            }
        }
    }
    if !res.custom
        && res.group == crate::rbac::RBAC_GROUP
        && matches!(res.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
        && old["roleRef"] != new["roleRef"]
    {
        // kube-apiserver prints the new reference as the JSON of its internal rbac.RoleRef,
        // whose fields have no JSON tags (so Go's field names, in declaration order).
        let r = &new["roleRef"];
        let s = |k: &str| json!(r[k].as_str().unwrap_or(""));
        out.push(Cause {
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: {{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}: cannot change roleRef",
                s("apiGroup"),
                s("kind"),
                s("name")
            ),
            field: "roleRef".into(),
        });
    }
    if res.group.is_empty()
        && matches!(res.kind.as_str(), "ConfigMap" | "Secret")
        && old["immutable"] == true
    {
        for p in ["data", "binaryData", "immutable"] {
            if old.get(p) != new.get(p) {
                out.push(Cause::invalid(
                    p,
                    &Value::Null,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    out
}

/// Carries server-set metadata over from `old` to an update `new`, keeps the status (main
/// resource) or everything but the status (status subresource), and bumps the generation when
/// anything but metadata and status changed.
pub fn prepare_update(
    old: &Value,
    new: &mut Value,
    res: &Resource,
    subresource: &str,
) -> Result<(), ApiError> {
    if subresource == "status" {
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(m) = merged.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        // Labels, annotations and managedFields may change through status writes too.
        merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        if merged["metadata"]["managedFields"].is_null()
            && let Some(m) = merged["metadata"].as_object_mut()
        {
            m.remove("managedFields");
        }
        *new = merged;
        return Ok(());
    }
    if res.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    let old_meta = &old["metadata"];
    let meta = new["metadata"]
        .as_object_mut()
        .expect("check_type made metadata an object");
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(k) {
            Some(v) => meta.insert(k.into(), v.clone()),
            None => meta.remove(k),
        };
    }
    meta.insert("name".into(), old_meta["name"].clone());
    if tracks_generation(res) && without_meta_status(old) != without_meta_status(new) {
        let g = old_meta["generation"].as_i64().unwrap_or(1) + 1;
        new["metadata"]["generation"] = json!(g);
    }
    defaults_for_kind(new, res)?;
    if res.kind == "Namespace" && res.group.is_empty() {
        new["status"] = old["status"].clone();
    }
    Ok(())
}

/// The name and namespace in `obj`'s metadata.
pub fn name_of(obj: &Value) -> (&str, &str) {
    (
        obj["metadata"]["name"].as_str().unwrap_or(""),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
    )
}

/// Whether the object has finalizers left.
pub fn has_finalizers(obj: &Value) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// The `meta.k8s.io` version of the metadata-only form the client asks for in `accept`
/// (`as=PartialObjectMetadata`, or `as=PartialObjectMetadataList` for a list), as client-go's
/// metadata client and controller-runtime's metadata informers do; `None` when a plain or
/// other form comes first. Ranges are read in the client's order: a protobuf range of the
/// metadata form is passed over (JSON is served for it), as kube-apiserver passes over a range
/// it cannot serve.
pub fn partial_metadata_version(accept: &str, list: bool) -> Option<&str> {
    let wanted = if list {
        "PartialObjectMetadataList"
    } else {
        "PartialObjectMetadata"
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let base = parts.next().unwrap_or_default();
        let (mut kind, mut group, mut version, mut q) = (None, None, None, "1");
        for param in parts {
            match param.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("as", v)) => kind = Some(v),
                Some(("g", v)) => group = Some(v),
                Some(("v", v)) => version = Some(v),
                Some(("q", v)) => q = v,
                _ => {}
            }
        }
        if q.parse::<f32>().is_ok_and(|q| q <= 0.0) {
            continue;
        }
        let json = matches!(base, "application/json" | "application/*" | "*/*");
        match (kind, group, version) {
            (None, ..) if json => return None,
            (Some(k), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) if k == wanted && json => {
                return Some(v);
            }
            _ => {}
        }
    }
    None
}

/// `obj` as `PartialObjectMetadata` of `meta.k8s.io/<version>`: its metadata only.
pub fn partial_object_metadata(obj: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": obj["metadata"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn the_metadata_only_form_is_served_when_it_comes_before_a_plain_range() {
        let go = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(partial_metadata_version(go, false), Some("v1"));
        // A list asks for the list form; the single form does not match it.
        assert_eq!(partial_metadata_version(go, true), None);
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1";
        assert_eq!(partial_metadata_version(list, true), Some("v1beta1"));
        for plain in [
            "application/json",
            "application/json,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
            "application/json;as=Table;g=meta.k8s.io;v=v1,application/json",
            "application/json;as=PartialObjectMetadata;g=example.com;v=v1",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1;q=0",
            "",
        ] {
            assert_eq!(partial_metadata_version(plain, false), None, "{plain}");
        }
    }

    #[test]
    fn names_and_namespaces() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").expect("cm");
        let ns = reg.lookup("", "v1", "namespaces").expect("ns");
        assert!(name_error(&cm, "a.b-c").is_none());
        assert!(name_error(&cm, "Bad_Name").is_some());
        assert!(name_error(&ns, "a.b").is_some());
        let mut o = json!({"metadata": {"namespace": "other"}});
        check_type(&mut o, &cm).expect("type");
        assert_eq!(o["kind"], "ConfigMap");
        assert_eq!(
            check_namespace(&mut o, &cm, Some("ns1"))
                .expect_err("mismatch")
                .code,
            400
        );
    }

    #[test]
    fn generation_moves_on_spec_only() {
        let reg = Registry::default();
        let d = reg.lookup("apps", "v1", "deployments").expect("deploy");
        let old = json!({"metadata": {"name": "d", "generation": 3, "uid": "u"}, "spec": {"replicas": 1}, "status": {"x": 1}});
        let mut new = json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"x": 2}});
        prepare_update(&old, &mut new, &d, "").expect("update");
        assert_eq!(new["metadata"]["generation"], 3);
        assert_eq!(
            new["status"]["x"], 1,
            "status comes from the status subresource only"
        );
        assert_eq!(new["metadata"]["uid"], "u");
        let mut new = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
        prepare_update(&old, &mut new, &d, "").expect("update");
        assert_eq!(new["metadata"]["generation"], 4);
        let mut st =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": 9}, "status": {"x": 5}});
        prepare_update(&old, &mut st, &d, "status").expect("status");
        assert_eq!(st["spec"]["replicas"], 1);
        assert_eq!(st["status"]["x"], 5);
        assert_eq!(st["metadata"]["generation"], 3);
    }

    #[test]
    fn generation_only_on_the_kinds_kube_apiserver_versions() {
        let reg = Registry::default();
        for (group, plural, tracked) in [
            ("apps", "deployments", true),
            ("", "pods", true),
            ("scheduling.k8s.io", "priorityclasses", true),
            ("", "namespaces", false),
            ("", "services", false),
            ("rbac.authorization.k8s.io", "roles", false),
            ("", "resourcequotas", false),
        ] {
            let res = reg.lookup(group, "v1", plural).expect("built in");
            assert_eq!(tracks_generation(&res), tracked, "{plural}");
        }
    }

    #[test]
    fn configmap_keys_and_name_are_refused_together() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").expect("built in");
        let mut obj =
            json!({"metadata": {"name": "Bad_Name"}, "data": {"bad key!": "x", "ok": "y"}});
        let err = prepare_create(&mut obj, &cm, "now").expect_err("invalid");
        let fields: Vec<&str> = err.details.as_ref().expect("details")["causes"]
            .as_array()
            .expect("causes")
            .iter()
            .filter_map(|c| c["field"].as_str())
            .collect();
        assert_eq!(fields, ["metadata.name", "data[bad key!]"]);
        let dup = json!({"data": {"a": "x"}, "binaryData": {"a": "eA=="}});
        assert_eq!(
            data_key_causes(&dup, &cm)[0].message,
            "Invalid value: \"a\": duplicate of key present in binaryData"
        );
    }

    #[test]
    fn immutable_fields() {
        let reg = Registry::default();
        let d = reg.lookup("apps", "v1", "deployments").expect("deploy");
        let old = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 1}});
        let new = json!({"spec": {"selector": {"matchLabels": {"a": "2"}}, "replicas": 1}});
        let c = immutable_changes(&old, &new, &d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "spec.selector");
        assert!(c[0].message.contains("field is immutable"));
        assert!(
            immutable_changes(
                &old,
                &json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 5}}),
                &d
            )
            .is_empty()
        );
        let svc = reg.lookup("", "v1", "services").expect("svc");
        assert!(
            immutable_changes(
                &json!({"spec": {}}),
                &json!({"spec": {"clusterIP": "10.0.0.1"}}),
                &svc
            )
            .is_empty()
        );
        assert_eq!(
            immutable_changes(
                &json!({"spec": {"clusterIP": "10.0.0.1"}}),
                &json!({"spec": {"clusterIP": "10.0.0.2"}}),
                &svc
            )
            .len(),
            1
        );
        let cm = reg.lookup("", "v1", "configmaps").expect("cm");
        assert_eq!(
            immutable_changes(
                &json!({"immutable": true, "data": {"a": "1"}}),
                &json!({"immutable": true, "data": {"a": "2"}}),
                &cm
            )
            .len(),
            1
        );
        assert!(
            immutable_changes(
                &json!({"data": {"a": "1"}}),
                &json!({"data": {"a": "2"}}),
                &cm
            )
            .is_empty()
        );
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let reg = Registry::default();
        let s = reg.lookup("", "v1", "secrets").expect("secret");
        let mut o = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        prepare_create(&mut o, &s, "t").expect("create");
        assert_eq!(o["data"]["k"], "dg==");
        assert!(o.get("stringData").is_none());
        let mut bad = json!({"metadata": {"name": "s"}, "data": {"k": "***"}});
        assert!(prepare_create(&mut bad, &s, "t").is_err());
    }
}
