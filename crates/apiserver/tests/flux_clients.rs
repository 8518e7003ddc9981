//! What Flux's own controllers (controller-runtime, client-go, fluxcd/pkg) need from the server,
//! one focused request each, found by running the real source-controller and
//! kustomize-controller against it (`crates/cli/tests/flux_controllers.rs`).

mod common;

use kube::Client;
use serde_json::{Value, json};

/// Sends `body` with `method` to `uri`; the status code and the JSON answer.
async fn send(client: &Client, method: &str, uri: &str, ct: &str, body: Value) -> (u16, Value) {
    let (code, bytes) =
        common::request(client, method, uri, &[("content-type", ct)], Some(&body)).await;
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// GETs `uri` accepting `accept`; the status code and the raw answer.
async fn get_as(client: &Client, uri: &str, accept: &str) -> (u16, Vec<u8>) {
    common::request(client, "GET", uri, &[("accept", accept)], None).await
}

/// A CRD as controller-gen writes it: the root schema declares `metadata: {type: object}`.
fn controller_gen_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.ferroflux.io"},
        "spec": {"group": "test.ferroflux.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "properties": {"url": {"type": "string"}}},
                    "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}}]}
    })
}

async fn create_crd(client: &Client, crd: Value) {
    let (code, body) = send(
        client,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        crd,
    )
    .await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn a_declared_metadata_schema_keeps_the_object_metadata_under_strict_validation() {
    let (_dir, server, client) = common::start_with_client().await;
    create_crd(&client, controller_gen_crd()).await;
    let (code, body) = send(
        &client,
        "POST",
        "/apis/test.ferroflux.io/v1/namespaces/default/widgets?fieldValidation=Strict",
        "application/json",
        json!({"apiVersion": "test.ferroflux.io/v1", "kind": "Widget",
            "metadata": {"name": "w1", "labels": {"app": "w"}, "annotations": {"a": "b"}},
            "spec": {"url": "https://x"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["metadata"]["name"], "w1");
    assert_eq!(body["metadata"]["labels"]["app"], "w");
    assert_eq!(body["metadata"]["annotations"]["a"], "b");
    server.shutdown().await;
}

/// What client-go's metadata client (controller-runtime's metadata-only informers) sends.
const METADATA_ONLY: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const METADATA_ONLY_LIST: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

#[tokio::test]
async fn metadata_only_clients_get_partial_object_metadata_from_get_list_and_watch() {
    let (_dir, server, client) = common::start_with_client().await;
    let (code, body) = send(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vars", "labels": {"app": "x"}}, "data": {"secret": "value"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let partial = |o: &Value| {
        assert_eq!(o["kind"], "PartialObjectMetadata", "{o}");
        assert_eq!(o["apiVersion"], "meta.k8s.io/v1", "{o}");
        assert!(o.get("data").is_none(), "metadata only: {o}");
    };

    let (code, bytes) = get_as(
        &client,
        "/api/v1/namespaces/default/configmaps/vars",
        METADATA_ONLY,
    )
    .await;
    assert_eq!(code, 200);
    let got: Value = serde_json::from_slice(&bytes).expect("JSON");
    partial(&got);
    assert_eq!(got["metadata"]["labels"]["app"], "x");

    let (code, bytes) = get_as(
        &client,
        // Only the test's object, not the server's own kube-root-ca.crt.
        "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dx",
        METADATA_ONLY_LIST,
    )
    .await;
    assert_eq!(code, 200);
    let list: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list}");
    partial(&items[0]);
    assert_eq!(items[0]["metadata"]["name"], "vars");

    // A streaming watch list, as client-go's informers run it: the initial events and the
    // bookmark that ends them carry the metadata type too.
    let (code, bytes) = get_as(
        &client,
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
        METADATA_ONLY,
    )
    .await;
    assert_eq!(code, 200);
    let events: Vec<Value> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect();
    assert!(events.iter().any(|e| e["type"] == "ADDED"), "{events:?}");
    assert!(events.iter().any(|e| e["type"] == "BOOKMARK"), "{events:?}");
    for event in &events {
        partial(&event["object"]);
    }

    // A plain JSON client still gets the whole object.
    let (_, bytes) = get_as(
        &client,
        "/api/v1/namespaces/default/configmaps/vars",
        "application/json",
    )
    .await;
    let full: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(full["kind"], "ConfigMap");
    assert_eq!(full["data"]["secret"], "value");
    server.shutdown().await;
}

/// controller-runtime's `GenerationChangedPredicate` (Flux's controllers filter with it) lets
/// an update through only when the generation moved: kube-apiserver bumps it when it marks an
/// object for deletion, so the finalizer runs.
#[tokio::test]
async fn marking_an_object_for_deletion_bumps_its_generation_once() {
    let (_dir, server, client) = common::start_with_client().await;
    create_crd(&client, controller_gen_crd()).await;
    let uri = "/apis/test.ferroflux.io/v1/namespaces/default/widgets";
    let (code, body) = send(
        &client,
        "POST",
        uri,
        "application/json",
        json!({"apiVersion": "test.ferroflux.io/v1", "kind": "Widget",
            "metadata": {"name": "w1", "finalizers": ["example.com/cleanup"]},
            "spec": {"url": "https://x"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["metadata"]["generation"], 1);
    for _ in 0..2 {
        let (code, body) = send(
            &client,
            "DELETE",
            &format!("{uri}/w1"),
            "application/json",
            json!({}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(body["metadata"]["deletionTimestamp"].is_string(), "{body}");
        assert_eq!(body["metadata"]["generation"], 2, "{body}");
    }
    server.shutdown().await;
}
