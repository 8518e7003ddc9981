//! Protobuf on the embedded API server: the generated descriptor table matches Kubernetes'
//! sources, request bodies of every built-in kind decode, replies are encoded when asked for,
//! and the machine's kubectl (which sends protobuf for built-in kinds) works end to end.

mod common;
#[path = "protobuf/table_gen.rs"]
mod table_gen;

use std::path::PathBuf;

fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/proto/k8s.table")
}

/// The committed table is what the generator makes from the pinned Kubernetes modules for the
/// kinds the registry serves; `FERROFLUX_REGENERATE=1` rewrites it.
#[test]
fn proto_table_matches_kubernetes_sources() {
    let modules = match table_gen::module_dirs() {
        Ok(m) => m,
        Err(e) => {
            ferroflux_testpeers::skip(format!("the Kubernetes Go modules are not available: {e}"));
            return;
        }
    };
    let served: Vec<(String, String, String)> = ferroflux_apiserver::registry::Registry::default()
        .all()
        .iter()
        .filter(|r| !r.custom)
        .map(|r| (r.group.clone(), r.version.clone(), r.kind.clone()))
        .collect();
    let text = table_gen::generate(&modules, &served).expect("the table generates");
    if std::env::var("FERROFLUX_REGENERATE").is_ok_and(|v| v == "1") {
        std::fs::write(table_path(), &text).expect("write the table");
    }
    let committed = std::fs::read_to_string(table_path()).unwrap_or_default();
    assert!(
        committed == text,
        "src/proto/k8s.table is stale: run FERROFLUX_REGENERATE=1 cargo test -p ferroflux-apiserver --test protobuf table"
    );
}

// ---- transcoding: k8s-pb's prost types as the independent encoder ----

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferroflux_apiserver::proto;
use ferroflux_apiserver::router;
use ferroflux_apiserver::store::Store;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};
use tower::ServiceExt;

const MAGIC: &[u8] = b"k8s\x00";

/// `obj` in the `k8s\0` + `runtime.Unknown` envelope, as client-go sends it.
fn envelope<M: Message>(api_version: &str, kind: &str, obj: &M) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(obj.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC, &unknown.encode_to_vec()].concat()
}

/// The object inside an envelope, and the envelope's type.
fn open<M: Message + Default>(bytes: &[u8]) -> (M, TypeMeta) {
    let rest = bytes.strip_prefix(MAGIC).expect("the k8s magic");
    let unknown = Unknown::decode(rest).expect("an Unknown envelope");
    let obj = M::decode(unknown.raw.unwrap_or_default().as_slice()).expect("the object");
    (obj, unknown.type_meta.unwrap_or_default())
}

/// protobuf -> JSON -> protobuf: the same message comes back; returns the JSON form.
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(
    api_version: &str,
    kind: &str,
    obj: &M,
) -> Value {
    let json = proto::decode_request(&envelope(api_version, kind, obj), api_version, kind)
        .unwrap_or_else(|e| panic!("{kind} decodes: {}", e.message));
    let bytes = proto::encode(&json).unwrap_or_else(|e| panic!("{kind} encodes: {e}"));
    let (back, tm): (M, TypeMeta) = open(&bytes);
    assert_eq!(&back, obj, "{kind} round trip through {json}");
    assert_eq!(tm.kind.as_deref(), Some(kind));
    assert_eq!(tm.api_version.as_deref(), Some(api_version));
    json
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: s("demo"),
        labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: None,
        }),
        ..Default::default()
    })
}

#[test]
fn built_in_objects_round_trip_through_json() {
    deployment_round_trips();
    small_objects_round_trip();
    crd_round_trips();
}

/// A Deployment with pointers, int-or-strings, quantities and an inlined probe handler.
fn deployment_round_trips() {
    let deploy = k8s_pb::api::apps::v1::Deployment {
        metadata: meta("web"),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            replicas: Some(0),
            revision_history_limit: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                ..Default::default()
            }),
            strategy: Some(k8s_pb::api::apps::v1::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(k8s_pb::api::apps::v1::RollingUpdateDeployment {
                    max_surge: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(2),
                        str_val: None,
                    }),
                    max_unavailable: Some(IntOrString {
                        r#type: Some(1),
                        int_val: None,
                        str_val: s("25%"),
                    }),
                }),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    automount_service_account_token: Some(false),
                    containers: vec![core::Container {
                        name: s("web"),
                        image: s("nginx:1.27"),
                        command: vec!["nginx".into(), "-g".into()],
                        ports: vec![core::ContainerPort {
                            container_port: Some(80),
                            protocol: s("TCP"),
                            ..Default::default()
                        }],
                        env: vec![core::EnvVar {
                            name: s("A"),
                            value: s("b"),
                            ..Default::default()
                        }],
                        resources: Some(core::ResourceRequirements {
                            limits: BTreeMap::from([(
                                "cpu".to_string(),
                                Quantity { string: s("500m") },
                            )]),
                            ..Default::default()
                        }),
                        readiness_probe: Some(core::Probe {
                            handler: Some(core::ProbeHandler {
                                http_get: Some(core::HttpGetAction {
                                    path: s("/healthz"),
                                    port: Some(IntOrString {
                                        r#type: Some(1),
                                        int_val: None,
                                        str_val: s("http"),
                                    }),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            period_seconds: Some(5),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let v = round_trip("apps/v1", "Deployment", &deploy);
    assert_eq!(v["spec"]["replicas"], 0, "a pointer keeps its zero");
    assert_eq!(v["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 2);
    assert_eq!(
        v["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        "25%"
    );
    let c = &v["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["cpu"], "500m");
    // ProbeHandler is inlined into the probe's JSON.
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(
        v["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
}

/// Service, Secret, Lease, SubjectAccessReview and ControllerRevision.
fn small_objects_round_trip() {
    let svc = core::Service {
        metadata: meta("svc"),
        spec: Some(core::ServiceSpec {
            cluster_ip: s("10.0.0.1"),
            ports: vec![core::ServicePort {
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: None,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let v = round_trip("v1", "Service", &svc);
    assert_eq!(
        v["spec"]["clusterIP"], "10.0.0.1",
        "JSON names come from Go's tags"
    );

    let secret = core::Secret {
        metadata: meta("s"),
        data: BTreeMap::from([("k".to_string(), vec![0u8, 1, 2, 255])]),
        r#type: s("Opaque"),
        immutable: Some(false),
        ..Default::default()
    };
    let v = round_trip("v1", "Secret", &secret);
    assert_eq!(v["data"]["k"], "AAEC/w==");
    assert_eq!(v["immutable"], false);

    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: meta("l"),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("me"),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(123_456_000),
            }),
            ..Default::default()
        }),
    };
    let v = round_trip("coordination.k8s.io/v1", "Lease", &lease);
    assert_eq!(v["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");

    let review = k8s_pb::api::authorization::v1::SubjectAccessReview {
        metadata: Some(Default::default()),
        spec: Some(k8s_pb::api::authorization::v1::SubjectAccessReviewSpec {
            user: s("alice"),
            uid: s("u-1"),
            extra: BTreeMap::from([(
                "scopes".to_string(),
                k8s_pb::api::authorization::v1::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]),
            resource_attributes: Some(k8s_pb::api::authorization::v1::ResourceAttributes {
                verb: s("get"),
                resource: s("pods"),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let v = round_trip("authorization.k8s.io/v1", "SubjectAccessReview", &review);
    assert_eq!(v["spec"]["extra"]["scopes"], json!(["a", "b"]));

    let revision = k8s_pb::api::apps::v1::ControllerRevision {
        metadata: meta("r"),
        data: Some(RawExtension {
            raw: Some(br#"{"a":1,"b":[true]}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let v = round_trip("apps/v1", "ControllerRevision", &revision);
    assert_eq!(v["data"], json!({"a": 1, "b": [true]}));
}

/// A CRD with nested JSON schema props.
fn crd_round_trips() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let leaf = ext::JsonSchemaProps {
        r#type: s("integer"),
        default: Some(ext::Json {
            raw: Some(b"3".to_vec()),
        }),
        minimum: Some(1.5),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta::ObjectMeta {
            name: s("ws.example.com"),
            ..Default::default()
        }),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            scope: s("Namespaced"),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: s("ws"),
                kind: s("W"),
                ..Default::default()
            }),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(ext::JsonSchemaProps {
                        r#type: s("object"),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                            allows: Some(false),
                            schema: None,
                        })),
                        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                            schema: Some(Box::new(leaf.clone())),
                            j_son_schemas: Vec::new(),
                        })),
                        properties: BTreeMap::from([("n".to_string(), leaf)]),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let v = round_trip("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    let schema = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(schema["properties"]["n"]["default"], 3);
    assert_eq!(schema["items"]["minimum"], 1.5);
}

// ---- the HTTP layer, in process ----

const TOKEN: &str = "test-token";
const ACCEPT_PROTOBUF: &str = "application/vnd.kubernetes.protobuf, application/json";

struct Fixture {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(Store::open(&dir.path().join("db")).expect("store"));
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}, "status": {"phase": "Active"}});
    store
        .put("/registry/core/namespaces//default", ns, true, None)
        .expect("ns");
    Fixture {
        app: router(store, TOKEN.into()),
        _dir: dir,
    }
}

/// (status, content type, body).
async fn call(
    f: &Fixture,
    method: Method,
    uri: &str,
    content_type: &str,
    accept: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", content_type)
        .header("accept", accept)
        .body(Body::from(body))
        .expect("request");
    let resp = f.app.clone().oneshot(req).await.expect("response");
    let code = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (code, ct, bytes.to_vec())
}

/// A GET of `uri` accepting `accept`: (status, content type, body).
async fn get(f: &Fixture, uri: &str, accept: &str) -> (StatusCode, String, Vec<u8>) {
    call(f, Method::GET, uri, PROTOBUF, accept, vec![]).await
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn configmap(name: &str) -> core::ConfigMap {
    core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: s(name),
            ..Default::default()
        }),
        data: BTreeMap::from([("k".to_string(), "v".to_string())]),
        ..Default::default()
    }
}

#[tokio::test]
async fn protobuf_replies_for_objects_lists_and_errors() {
    let f = fixture();
    let body = envelope("v1", "ConfigMap", &configmap("a"));
    let (code, ct, bytes) = call(&f, Method::POST, CMS, PROTOBUF, ACCEPT_PROTOBUF, body).await;
    assert_eq!(
        code,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(ct, PROTOBUF);
    let (created, tm): (core::ConfigMap, _) = open(&bytes);
    assert_eq!(tm.kind.as_deref(), Some("ConfigMap"));
    let created_meta = created.metadata.clone().unwrap_or_default();
    assert!(created_meta.uid.is_some_and(|u| !u.is_empty()));
    assert!(created_meta.creation_timestamp.is_some());
    assert_eq!(created.data.get("k").map(String::as_str), Some("v"));

    let (code, ct, bytes) = get(&f, &format!("{CMS}/a"), ACCEPT_PROTOBUF).await;
    assert_eq!((code, ct.as_str()), (StatusCode::OK, PROTOBUF));
    let (got, _): (core::ConfigMap, _) = open(&bytes);
    assert_eq!(got, created);

    let (code, ct, bytes) = get(&f, CMS, ACCEPT_PROTOBUF).await;
    assert_eq!((code, ct.as_str()), (StatusCode::OK, PROTOBUF));
    let (list, tm): (core::ConfigMapList, _) = open(&bytes);
    assert_eq!(tm.kind.as_deref(), Some("ConfigMapList"));
    assert_eq!(list.items, vec![created]);
    assert!(list.metadata.and_then(|m| m.resource_version).is_some());

    let (code, ct, bytes) = get(&f, &format!("{CMS}/nope"), ACCEPT_PROTOBUF).await;
    assert_eq!((code, ct.as_str()), (StatusCode::NOT_FOUND, PROTOBUF));
    let (status, tm): (meta::Status, _) = open(&bytes);
    assert_eq!(tm.kind.as_deref(), Some("Status"));
    assert_eq!(status.code, Some(404));
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(
        status.message.as_deref(),
        Some("configmaps \"nope\" not found")
    );

    // JSON first in Accept, or no Accept: JSON, as before.
    let (_, ct, _) = get(
        &f,
        &format!("{CMS}/a"),
        "application/json, application/vnd.kubernetes.protobuf",
    )
    .await;
    assert_eq!(ct, "application/json");
    let (_, ct, _) = get(
        &f,
        CMS,
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(ct, "application/json");
}

#[tokio::test]
async fn garbage_protobuf_is_a_clear_bad_request() {
    let f = fixture();
    for (body, want) in [
        (
            b"garbage".to_vec(),
            "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] (67617262616765)",
        ),
        (
            envelope(
                "v1",
                "ConfigMap",
                &RawExtension {
                    raw: Some(vec![0x0a, 0x20, 0x01]),
                },
            ),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: unexpected EOF",
        ),
    ] {
        let (code, _, bytes) =
            call(&f, Method::POST, CMS, PROTOBUF, "application/json", body).await;
        let v: Value = serde_json::from_slice(&bytes).expect("a JSON Status");
        assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["reason"], "BadRequest");
        assert_eq!(v["message"], want);
    }
}

#[tokio::test]
async fn protobuf_watch_streams_length_prefixed_events() {
    let f = fixture();
    let body = envelope("v1", "ConfigMap", &configmap("w"));
    let (code, _, _) = call(&f, Method::POST, CMS, PROTOBUF, ACCEPT_PROTOBUF, body).await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, ct, bytes) = get(
        &f,
        &format!("{CMS}?watch=true&resourceVersion=0&timeoutSeconds=1"),
        ACCEPT_PROTOBUF,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ct, "application/vnd.kubernetes.protobuf;stream=watch");
    let len = u32::from_be_bytes(bytes[..4].try_into().expect("a frame")) as usize;
    let event = meta::WatchEvent::decode(&bytes[4..4 + len]).expect("a WatchEvent");
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let raw = event.object.and_then(|o| o.raw).expect("the object");
    let (cm, _): (core::ConfigMap, _) = open(&raw);
    assert_eq!(cm.metadata.and_then(|m| m.name).as_deref(), Some("w"));
    assert_eq!(bytes.len(), 4 + len, "one event");
}

#[tokio::test]
async fn custom_resources_stay_json_only() {
    let f = fixture();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let (code, _, bytes) = call(
        &f,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        "application/json",
        crd.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let mut served = false;
    for _ in 0..50 {
        let (code, ct, _) = call(
            &f,
            Method::POST,
            widgets,
            "application/json",
            ACCEPT_PROTOBUF,
            widget.to_string().into_bytes(),
        )
        .await;
        if code == StatusCode::CREATED {
            assert_eq!(ct, "application/json", "JSON when JSON is accepted too");
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "the CRD was established");
    let (code, _, _) = call(
        &f,
        Method::POST,
        widgets,
        PROTOBUF,
        "application/json",
        envelope("example.com/v1", "Widget", &configmap("x")),
    )
    .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (code, _, bytes) = call(
        &f,
        Method::GET,
        &format!("{widgets}/w"),
        "application/json",
        PROTOBUF,
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::NOT_ACCEPTABLE);
    let v: Value = serde_json::from_slice(&bytes).expect("JSON Status");
    assert_eq!(v["reason"], "NotAcceptable");
}

// ---- the machine's kubectl, which sends protobuf for built-in kinds ----

/// `kubectl create` of the kinds kubectl sends as protobuf, then `kubectl get -o json` shows
/// what was sent.
#[test]
fn kubectl_creates_built_in_kinds_over_protobuf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::ThreadServer::start(&dir.path().join("data"));
    let run = |args: &[&str]| common::kubectl(&server.kubeconfig, args);
    if run(&["version", "--client"]).is_none() {
        ferroflux_testpeers::skip("kubectl is not installed");
        return;
    }
    let ok = |args: &[&str]| -> String {
        let (ok, text) = run(args).expect("kubectl runs");
        assert!(ok, "kubectl {args:?} failed:\n{text}");
        text
    };
    let json = |args: &[&str]| -> Value {
        let text = ok(&[args, &["-o", "json"]].concat());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
    };
    ok(&["create", "namespace", "demo"]);
    ok(&["create", "serviceaccount", "sa1", "-n", "demo"]);
    let n = ["-n", "demo"];
    for args in [
        &[
            "create",
            "role",
            "r1",
            "--verb=get,list",
            "--resource=pods,configmaps",
        ][..],
        &[
            "create",
            "clusterrole",
            "cr1",
            "--verb=get",
            "--resource=nodes",
        ],
        &["create", "rolebinding", "rb1", "--role=r1", "--user=alice"],
        &[
            "create",
            "clusterrolebinding",
            "crb1",
            "--clusterrole=cr1",
            "--group=devs",
            "--serviceaccount=demo:sa1",
        ],
        &["create", "quota", "q1", "--hard=cpu=1,pods=10"],
        &[
            "create",
            "priorityclass",
            "pc1",
            "--value=1000",
            "--description=high",
        ],
        &[
            "create",
            "pdb",
            "pdb1",
            "--selector=app=web",
            "--min-available=50%",
        ],
        &["create", "job", "j1", "--image=busybox", "--", "echo", "hi"],
        &[
            "create",
            "cronjob",
            "cj1",
            "--image=busybox",
            "--schedule=*/5 * * * *",
        ],
        &["create", "ingress", "ing1", "--rule=foo.com/bar=svc1:8080"],
    ] {
        let text = ok(&[&n[..], args].concat());
        assert!(text.contains("created"), "{args:?}: {text}");
    }
    // describe reads through typed clients: protobuf objects, lists and Status errors.
    let d = ok(&["describe", "pdb", "pdb1", "-n", "demo"]);
    assert!(d.contains("Min available:  50%"), "{d}");
    let d = ok(&["describe", "job", "j1", "-n", "demo"]);
    assert!(d.contains("busybox"), "{d}");
    let d = ok(&["describe", "ingress", "ing1", "-n", "demo"]);
    assert!(d.contains("services \"svc1\" not found"), "{d}");
    let token = ok(&["create", "token", "sa1", "-n", "demo"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

    let role = json(&["get", "role", "r1", "-n", "demo"]);
    assert_eq!(role["rules"][0]["verbs"], json!(["get", "list"]));
    assert_eq!(role["rules"][0]["resources"], json!(["pods", "configmaps"]));
    let cr = json(&["get", "clusterrole", "cr1"]);
    assert_eq!(cr["rules"][0]["resources"], json!(["nodes"]));
    let rb = json(&["get", "rolebinding", "rb1", "-n", "demo"]);
    assert_eq!(rb["roleRef"]["name"], "r1");
    assert_eq!(rb["subjects"][0]["name"], "alice");
    let crb = json(&["get", "clusterrolebinding", "crb1"]);
    assert_eq!(crb["subjects"][0]["name"], "devs");
    assert_eq!(crb["subjects"][1]["namespace"], "demo");
    let q = json(&["get", "quota", "q1", "-n", "demo"]);
    assert_eq!(q["spec"]["hard"], json!({"cpu": "1", "pods": "10"}));
    let pc = json(&["get", "priorityclass", "pc1"]);
    assert_eq!(
        (pc["value"].clone(), pc["description"].clone()),
        (json!(1000), json!("high"))
    );
    let pdb = json(&["get", "pdb", "pdb1", "-n", "demo"]);
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"]["app"], "web");
    let job = json(&["get", "job", "j1", "-n", "demo"]);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    let cj = json(&["get", "cronjob", "cj1", "-n", "demo"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );
    let ing = json(&["get", "ingress", "ing1", "-n", "demo"]);
    let rule = &ing["spec"]["rules"][0];
    assert_eq!(rule["host"], "foo.com");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        8080
    );
}
