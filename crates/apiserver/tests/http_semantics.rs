//! The HTTP layer in-process: bad input, Status errors, watch semantics, Table output.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferroflux_apiserver::router;
use ferroflux_apiserver::store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "test-token";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: axum::Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::open(&dir.path().join("db")).expect("store"));
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}, "status": {"phase": "Active"}});
    store
        .put("/registry/core/namespaces//default", ns, true, None)
        .expect("ns");
    let app = router(store.clone(), TOKEN.into());
    Fixture {
        _dir: dir,
        store,
        app,
    }
}

async fn call(
    f: &Fixture,
    method: Method,
    uri: &str,
    ct: &str,
    body: Vec<u8>,
    accept: Option<&str>,
) -> (StatusCode, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", ct);
    if let Some(a) = accept {
        b = b.header("accept", a);
    }
    let resp = f
        .app
        .clone()
        .oneshot(b.body(Body::from(body)).expect("request"))
        .await
        .expect("response");
    let code = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v)
}

/// A GET of `uri` with no body.
async fn get(f: &Fixture, uri: &str) -> (StatusCode, Value) {
    call(f, Method::GET, uri, "", vec![], None).await
}

async fn post(f: &Fixture, uri: &str, body: Value) -> (StatusCode, Value) {
    call(
        f,
        Method::POST,
        uri,
        "application/json",
        body.to_string().into_bytes(),
        None,
    )
    .await
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn bad_input_is_a_4xx_status_and_leaves_the_store_unchanged() {
    let f = fixture();
    let rev = f.store.revision();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed", b"{not json".to_vec(), 400, "BadRequest"),
        ("not an object", b"[1,2]".to_vec(), 400, "BadRequest"),
        (
            "bad name",
            json!({"metadata": {"name": "Bad_Name"}})
                .to_string()
                .into_bytes(),
            422,
            "Invalid",
        ),
        (
            "namespace mismatch",
            json!({"metadata": {"name": "a", "namespace": "other"}})
                .to_string()
                .into_bytes(),
            400,
            "BadRequest",
        ),
        (
            "wrong kind",
            json!({"kind": "Secret", "metadata": {"name": "a"}})
                .to_string()
                .into_bytes(),
            400,
            "BadRequest",
        ),
        (
            "bad label",
            json!({"metadata": {"name": "a", "labels": {"k": "no spaces"}}})
                .to_string()
                .into_bytes(),
            422,
            "Invalid",
        ),
        (
            "huge",
            vec![b' '; 50 * 1024 * 1024],
            413,
            "RequestEntityTooLarge",
        ),
    ];
    for (what, body, code, reason) in cases {
        let (got, v) = call(&f, Method::POST, CMS, "application/json", body, None).await;
        assert_eq!(got.as_u16(), code, "{what}: {v}");
        assert_eq!(v["kind"], "Status", "{what}");
        assert_eq!(v["reason"], reason, "{what}");
        assert_eq!(v["code"], code, "{what}");
    }
    let (_, v) = post(&f, CMS, json!({"metadata": {"name": "Bad_Name"}})).await;
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(f.store.revision(), rev, "nothing was written");
}

#[tokio::test]
async fn status_errors_for_routes_methods_and_auth() {
    let f = fixture();
    let (code, v) = get(&f, "/api/v1/nothings").await;
    assert_eq!(
        (code.as_u16(), v["reason"].as_str()),
        (404, Some("NotFound"))
    );
    let (code, v) = get(&f, &format!("{CMS}/missing")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(v["details"]["name"], "missing");
    assert_eq!(v["message"], "configmaps \"missing\" not found");
    let (code, _) = call(
        &f,
        Method::PUT,
        CMS,
        "application/json",
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    post(&f, CMS, json!({"metadata": {"name": "a"}})).await;
    let (code, v) = call(
        &f,
        Method::PATCH,
        &format!("{CMS}/a"),
        "text/plain",
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (code.as_u16(), v["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, v) = post(&f, CMS, json!({"metadata": {"name": "a"}})).await;
    assert_eq!(
        (code.as_u16(), v["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let (code, v) = post(
        &f,
        "/api/v1/namespaces/nope/configmaps",
        json!({"metadata": {"name": "a"}}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{v}");
    let req = Request::builder()
        .uri(CMS)
        .body(Body::empty())
        .expect("request");
    let resp = f.app.clone().oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn create_semantics_generate_name_dry_run_secrets() {
    let f = fixture();
    let (code, v) = post(&f, CMS, json!({"metadata": {"generateName": "gen-"}})).await;
    assert_eq!(code, StatusCode::CREATED);
    let name = v["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(
        v["metadata"].get("generation").is_none(),
        "ConfigMaps carry no generation"
    );
    assert!(v["metadata"]["uid"].is_string() && v["metadata"]["creationTimestamp"].is_string());
    let rev = f.store.revision();
    let (code, v) = post(
        &f,
        &format!("{CMS}?dryRun=All"),
        json!({"metadata": {"name": "dry"}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(v["metadata"]["name"], "dry");
    assert_eq!(f.store.revision(), rev, "dry run stores nothing");
    let (_, v) = post(
        &f,
        "/api/v1/namespaces/default/secrets",
        json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}}),
    )
    .await;
    assert_eq!(v["data"]["user"], "YWRtaW4=");
    assert_eq!(v["type"], "Opaque");
    assert!(v.get("stringData").is_none());
}

#[tokio::test]
async fn patches_of_each_kind() {
    let f = fixture();
    let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]}]}}}});
    post(&f, "/apis/apps/v1/namespaces/default/deployments", deploy).await;
    let uri = "/apis/apps/v1/namespaces/default/deployments/d";
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}, {"name": "b", "image": "b:1"}]}}}});
    let (code, v) = call(
        &f,
        Method::PATCH,
        uri,
        "application/strategic-merge-patch+json",
        smp.to_string().into_bytes(),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let cs = &v["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().map(Vec::len), Some(2));
    assert_eq!(cs[0]["env"].as_array().map(Vec::len), Some(2));
    assert_eq!(cs[0]["image"], "a:1");
    let (_, v) = call(
        &f,
        Method::PATCH,
        uri,
        "application/merge-patch+json",
        br#"{"spec":{"replicas":4}}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(v["spec"]["replicas"], 4);
    assert_eq!(v["metadata"]["generation"], 3);
    let jp = br#"[{"op":"test","path":"/spec/replicas","value":5}]"#.to_vec();
    let (code, v) = call(
        &f,
        Method::PATCH,
        uri,
        "application/json-patch+json",
        jp,
        None,
    )
    .await;
    assert_eq!(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "failed test op: {v}"
    );
    assert_eq!(v["reason"], "Invalid", "{v}");
    let stale = br#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":9}}"#.to_vec();
    let (code, _) = call(
        &f,
        Method::PATCH,
        uri,
        "application/merge-patch+json",
        stale,
        None,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
}

async fn watch_lines(f: &Fixture, query: &str) -> Vec<Value> {
    let (_, v) = call(
        f,
        Method::GET,
        &format!("{CMS}?watch=true&timeoutSeconds=1&{query}"),
        "",
        vec![],
        None,
    )
    .await;
    let text = v
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    text.lines()
        .map(|l| serde_json::from_str(l).expect("event line is JSON"))
        .collect()
}

#[tokio::test]
async fn watch_resumes_and_answers_gone_after_compaction() {
    let f = fixture();
    for n in ["a", "b", "c"] {
        post(&f, CMS, json!({"metadata": {"name": n}})).await;
    }
    let (_, a) = get(&f, &format!("{CMS}/a")).await;
    let rv_a: i64 = a["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("rv");
    call(
        &f,
        Method::DELETE,
        &format!("{CMS}/b"),
        "application/json",
        vec![],
        None,
    )
    .await;
    let events = watch_lines(&f, &format!("resourceVersion={rv_a}")).await;
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("ADDED", "b"), ("ADDED", "c"), ("DELETED", "b")]
    );
    let events = watch_lines(&f, "labelSelector=x%3Dy").await;
    assert!(events.is_empty(), "no object has the label");
    let all = watch_lines(&f, "").await;
    assert_eq!(
        all.len(),
        2,
        "no resourceVersion: the current state as ADDED"
    );
    for i in 0..5 {
        post(&f, CMS, json!({"metadata": {"name": format!("x{i}")}})).await;
    }
    f.store.compact(1).expect("compact");
    let events = watch_lines(&f, &format!("resourceVersion={rv_a}")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
}

#[tokio::test]
async fn table_output_and_discovery() {
    let f = fixture();
    post(&f, CMS, json!({"metadata": {"name": "a"}})).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (_, t) = call(&f, Method::GET, CMS, "", vec![], Some(accept)).await;
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    assert_eq!(t["rows"][0]["cells"][0], "a");
    let (_, v) = get(&f, "/version").await;
    assert_eq!(v["minor"], "33");
    let (_, v) = get(&f, "/apis/apps/v1").await;
    let deploy = v["resources"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "deployments"))
        .expect("deployments");
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(deploy["namespaced"], true);
    assert!(
        v["resources"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["name"] == "deployments/scale"))
    );
}

#[tokio::test]
async fn watch_with_a_selector_sees_objects_enter_and_leave() {
    let f = Arc::new(fixture());
    post(&f, CMS, json!({"metadata": {"name": "a"}})).await;
    let rv = f.store.revision();
    let w = f.clone();
    let watch = tokio::spawn(async move {
        let (_, v) = call(
            &w,
            Method::GET,
            &format!("{CMS}?watch=true&timeoutSeconds=3&labelSelector=x%3Dy&resourceVersion={rv}"),
            "",
            vec![],
            None,
        )
        .await;
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    });
    // The watch starts at `rv`, so events written before it is established are replayed.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let merge = |labels: Value| {
        json!({"metadata": {"labels": labels}})
            .to_string()
            .into_bytes()
    };
    let uri = format!("{CMS}/a");
    for labels in [
        json!({"x": "y"}),
        json!({"x": "y", "z": "1"}),
        json!({"x": null}),
        json!({"z": "2"}),
    ] {
        call(
            &f,
            Method::PATCH,
            &uri,
            "application/merge-patch+json",
            merge(labels),
            None,
        )
        .await;
    }
    let text = watch.await.expect("watch task");
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("event")["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"]);
    // The same from the log alone (the watch starts after the writes).
    let (_, v) = get(
        &f,
        &format!("{CMS}?watch=true&timeoutSeconds=1&labelSelector=x%3Dy&resourceVersion={rv}"),
    )
    .await;
    let replayed: Vec<String> = v
        .as_str()
        .unwrap_or("")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("event")["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(replayed, types);
}

#[tokio::test]
async fn discovery_lists_exactly_the_subresources_served() {
    let f = fixture();
    let (code, list) = get(&f, "/api/v1").await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    let token = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .unwrap_or_else(|| panic!("serviceaccounts/token is served, so listed: {names:?}"));
    assert_eq!(token["kind"], "TokenRequest");
    assert_eq!(token["group"], "authentication.k8s.io");
    assert_eq!(token["verbs"], json!(["create"]));
    assert!(!names.contains(&"secrets/status"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with("/finalizers")),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_resource_version_that_is_not_a_number_is_refused_as_kube_refuses_it() {
    let f = fixture();
    let (code, _) = post(&f, CMS, json!({"metadata": {"name": "a"}})).await;
    assert_eq!(code, StatusCode::CREATED);
    let field = |rv: &str, why: &str| {
        format!(
            "resourceVersion: Invalid value: \"{rv}\": strconv.ParseUint: parsing \"{rv}\": {why}"
        )
    };
    // A list validates it first: 400.
    let (code, v) = get(&f, &format!("{CMS}?resourceVersion=abc")).await;
    assert_eq!(
        (code, &v["reason"]),
        (StatusCode::BAD_REQUEST, &json!("BadRequest")),
        "{v}"
    );
    assert_eq!(
        v["message"],
        format!(
            "invalid resource version: {}",
            field("abc", "invalid syntax")
        )
    );
    let (code, v) = get(&f, &format!("{CMS}?resourceVersion=%2B5")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "a sign is not a digit: {v}");
    let (_, v) = get(&f, &format!("{CMS}?resourceVersion=18446744073709551616")).await;
    assert_eq!(
        v["message"],
        format!(
            "invalid resource version: {}",
            field("18446744073709551616", "value out of range")
        )
    );
    // A get or a watch hands the watch cache's parse error through unconverted: a 500 without
    // a reason, also for an object that does not exist.
    for uri in [
        format!("{CMS}/a?resourceVersion=abc"),
        format!("{CMS}/missing?resourceVersion=abc"),
        format!("{CMS}?watch=true&resourceVersion=abc"),
    ] {
        let (code, v) = get(&f, &uri).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{uri}: {v}");
        assert_eq!(v["message"], field("abc", "invalid syntax"), "{uri}");
        assert_eq!(v["reason"].as_str().unwrap_or(""), "", "{uri}");
    }
    // Events are not cached: a get parses it in storage, with a 400.
    let (code, v) = get(&f, "/api/v1/namespaces/default/events/e?resourceVersion=x").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    // Empty and 0 mean any.
    for rv in ["", "0"] {
        let (code, v) = get(&f, &format!("{CMS}/a?resourceVersion={rv}")).await;
        assert_eq!(code, StatusCode::OK, "{rv:?}: {v}");
    }
}
