//! The payload of every Provider type of Flux's enum (`provider::SUPPORTED`) against a fixture
//! under `tests/fixtures/providers/<type>.json`: the settings the Provider resolves to, and the
//! requests (method, URL, headers, body) the service's documentation says it takes for the
//! shared event of `event.json`, with a link to that documentation. A type without a fixture
//! fails the test, so a new type cannot land without one.
//!
//! Bodies are compared by their `Content-Type`: JSON as JSON (key order free), form bodies as
//! their ordered pairs, Sentry's envelope line by line as JSON, OTLP protobuf as base64 (its
//! fields are checked in `provider::otel`'s unit test). NATS publishes are compared as their
//! subject, servers, credentials and JSON payload; the comment providers as their three steps
//! (who am I, list the comments, create one).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use ferroflux_notify::Event;
use ferroflux_notify::provider::{self, Method, Request, ResponseCheck, Settings};
use serde_json::{Value, json};

/// When the requests are built (expiry of signed tokens, span ends): 2026-12-07T16:01:00Z.
const NOW: i64 = 1_796_659_260;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/providers")
}

fn read(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shared event, with the fixture's `metadata` added (e.g. a `change_request`).
fn event(fixture: &Value) -> Event {
    let mut event: Event =
        serde_json::from_value(read(&fixtures().join("event.json"))).expect("event.json");
    if let Some(extra) = fixture["metadata"].as_object() {
        for (key, value) in extra {
            event
                .metadata
                .insert(key.clone(), value.as_str().unwrap_or_default().to_string());
        }
    }
    event
}

/// The fixture's `settings`, with the shared Provider and Alert identity.
fn settings(provider_type: &str, fixture: &Value) -> Settings {
    let s = &fixture["settings"];
    let text = |key: &str| s[key].as_str().unwrap_or_default().to_string();
    let optional = |key: &str| s[key].as_str().map(str::to_string);
    Settings {
        provider_type: provider_type.to_string(),
        address: text("address"),
        token: optional("token"),
        username: text("username"),
        password: text("password"),
        channel: text("channel"),
        headers: s["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        provider_uid: "4f1c7e2a-8b3d-4e5f-9a6b-7c8d9e0f1a2b".into(),
        commit_status: optional("commitStatus"),
        now: NOW,
        access_token: optional("accessToken"),
        api_endpoint: optional("apiEndpoint"),
        alert_namespace: "apps".into(),
        alert_name: "tenant-failures".into(),
        alert_uid: "5b6c0d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e".into(),
        github_app: None,
    }
}

/// A request as fixtures write it.
fn shown(request: &Request) -> Value {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
    };
    let headers: BTreeMap<&str, &str> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut shown = json!({"method": method, "url": request.url, "headers": headers});
    let content_type = request.header_value("Content-Type").unwrap_or_default();
    let body = if request.body.is_empty() {
        None
    } else if content_type.starts_with("application/json") {
        Some((
            "json",
            serde_json::from_slice(&request.body).unwrap_or(Value::Null),
        ))
    } else if content_type == "application/x-www-form-urlencoded" {
        let pairs: Vec<Value> = form_pairs(&request.body);
        Some(("form", Value::Array(pairs)))
    } else if content_type == "application/x-sentry-envelope" {
        let lines: Vec<Value> = String::from_utf8_lossy(&request.body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_string())))
            .collect();
        Some(("envelope", Value::Array(lines)))
    } else if content_type == "application/x-protobuf" {
        Some((
            "base64",
            base64::engine::general_purpose::STANDARD
                .encode(&request.body)
                .into(),
        ))
    } else {
        Some(("text", String::from_utf8_lossy(&request.body).into()))
    };
    if let (Some((kind, body)), Some(object)) = (body, shown.as_object_mut()) {
        object.insert(kind.into(), body);
    }
    if request.check == ResponseCheck::SlackOk
        && let Some(object) = shown.as_object_mut()
    {
        object.insert("answer".into(), "slack ok".into());
    }
    shown
}

fn form_pairs(body: &[u8]) -> Vec<Value> {
    form_urlencoded::parse(body)
        .map(|(k, v)| json!([k, v]))
        .collect()
}

/// What the type sends for the fixture's event, as fixtures write it.
fn actual(provider_type: &str, fixture: &Value) -> Result<Value, String> {
    let settings = settings(provider_type, fixture);
    let event = event(fixture);
    if provider_type == "nats" {
        let publish = provider::nats(&settings, &event).map_err(|e| e.to_string())?;
        return Ok(json!({"nats": {
            "servers": publish.servers,
            "subject": publish.subject,
            "user": publish.user.map(|(u, p)| json!([u, p])),
            "payload": serde_json::from_slice::<Value>(&publish.payload).unwrap_or(Value::Null),
        }}));
    }
    if provider::is_change_request_provider(provider_type) {
        let plan = provider::comment_plan(&settings, &event).map_err(|e| e.to_string())?;
        let create = plan.write("flux-bot", b"[]").map_err(|e| e.to_string())?;
        return Ok(json!({"requests": [shown(&plan.whoami), shown(&plan.list), shown(&create)]}));
    }
    let requests = provider::requests(&settings, &event).map_err(|e| e.to_string())?;
    Ok(json!({"requests": requests.iter().map(shown).collect::<Vec<_>>()}))
}

#[test]
fn every_provider_type_sends_what_its_service_documents() {
    let mut failures = Vec::new();
    for provider_type in provider::SUPPORTED {
        let path = fixtures().join(format!("{provider_type}.json"));
        if !path.is_file() {
            failures.push(format!("{provider_type}: no fixture at {}", path.display()));
            continue;
        }
        let fixture = read(&path);
        assert!(
            fixture["docs"]
                .as_str()
                .is_some_and(|d| d.starts_with("https://")),
            "{provider_type}: the fixture names the documentation it is written from"
        );
        let expected = match fixture.get("nats") {
            Some(nats) => json!({"nats": nats}),
            None => json!({"requests": fixture["requests"]}),
        };
        match actual(provider_type, &fixture) {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!(
                "{provider_type}: differs from {}; sent:\n{}",
                path.display(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            )),
            Err(err) => failures.push(format!("{provider_type}: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_fixture_is_of_a_built_type() {
    for entry in std::fs::read_dir(fixtures()).expect("fixtures") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        let Some(provider_type) = name.strip_suffix(".json") else {
            continue;
        };
        assert!(
            provider_type == "event" || provider::SUPPORTED.contains(&provider_type),
            "{name} is not a provider type"
        );
    }
}
