//! The Provider types of issue 18's second round, each delivering one failing Kustomization's
//! event to a real listener on loopback through the notification controller: Bitbucket Server
//! and Azure DevOps commit statuses, Sentry, Zulip, Google Pub/Sub (with a service account's
//! OAuth2 token), Azure Event Hubs (SAS), OpenTelemetry (OTLP/HTTP protobuf) and GitHub pull
//! request comments over HTTP; NATS on a TCP listener speaking NATS' client protocol and on the
//! real nats-server (`scripts/peers.sh`). Secrets stay out of the Warning events of a failed
//! delivery.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use ferroflux_api::meta::LocalObjectReference;
use ferroflux_api::notification::{
    Alert, AlertSpec, CrossNamespaceObjectReference, Provider, ProviderSpec,
};
use ferroflux_controllers::notification;
use ferroflux_notify::provider::otel::proto as otlp;
use ferroflux_testpeers::require;
use kube::api::Api;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use common::NS;

const SHA: &str = "8a7b1c0d2e3f405162738495a6b7c8d9e0f1a2b3";

/// One HTTP call the stand-in services received.
#[derive(Debug)]
struct Call {
    method: Method,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A loopback HTTP server taking every call; `/token` answers as Google's OAuth2 endpoint.
async fn services() -> (String, mpsc::UnboundedReceiver<Call>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let answer = match (&method, uri.path()) {
                    (_, "/token") => {
                        r#"{"access_token":"ya29.loopback","expires_in":3600,"token_type":"Bearer"}"#
                    }
                    (&Method::GET, "/api/v3/user") => r#"{"login":"flux-bot","id":1}"#,
                    (&Method::GET, _) => "[]",
                    _ => "{}",
                };
                let _ = tx.send(Call {
                    method,
                    uri: uri.to_string(),
                    headers,
                    body,
                });
                answer
            }
        },
    );
    (common::serve(router).await, rx)
}

/// What the NATS stand-in received: the CONNECT options, the subject and the payload.
struct NatsMessage {
    connect: serde_json::Value,
    subject: String,
    payload: Vec<u8>,
}

/// A TCP listener on loopback speaking NATS' client protocol to one publisher per connection:
/// INFO, then CONNECT, PUB and PING, answered with PONG.
async fn nats_server() -> (String, mpsc::UnboundedReceiver<NatsMessage>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                write
                    .write_all(b"INFO {\"server_id\":\"loopback\",\"version\":\"2.11.0\",\"proto\":1,\"max_payload\":1048576}\r\n")
                    .await
                    .expect("info");
                let mut connect = serde_json::Value::Null;
                let mut published = None;
                let mut line = String::new();
                loop {
                    line.clear();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let text = line.trim_end().to_string();
                    if let Some(options) = text.strip_prefix("CONNECT ") {
                        connect = serde_json::from_str(options).expect("CONNECT json");
                    } else if let Some(rest) = text.strip_prefix("PUB ") {
                        let (subject, size) = rest.split_once(' ').expect("PUB subject size");
                        let size: usize = size.parse().expect("size");
                        let mut payload = vec![0; size + 2];
                        read.read_exact(&mut payload).await.expect("payload");
                        payload.truncate(size);
                        published = Some((subject.to_string(), payload));
                    } else if text == "PING" {
                        write.write_all(b"PONG\r\n").await.expect("pong");
                        if let Some((subject, payload)) = published.take() {
                            let _ = tx.send(NatsMessage {
                                connect: connect.clone(),
                                subject,
                                payload,
                            });
                        }
                    }
                }
            });
        }
    });
    (format!("nats://{addr}"), rx)
}

/// An event of the Kustomization `apps` at a revision, as kustomize-controller posts it.
fn failed_event() -> serde_json::Value {
    serde_json::json!({
        "involvedObject": {"kind": "Kustomization", "namespace": NS, "name": "apps",
            "uid": "7d0f9f5e-5a4c-4d7b-a0a8-9c3f1e2d3c4b",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "error", "timestamp": "2026-12-07T16:00:00Z",
        "message": "Deployment/apps/web dry-run failed", "reason": "ReconciliationFailed",
        "metadata": {"kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
            "event.toolkit.fluxcd.io/change_request": "12"},
        "reportingController": "kustomize-controller"
    })
}

/// A Provider of `kind` with an optional Secret, and an Alert sending every Kustomization
/// event of the namespace to it.
async fn provider_and_alert(
    client: &kube::Client,
    kind: &str,
    spec: ProviderSpec,
    secret: Option<BTreeMap<String, String>>,
) {
    let name = kind.replace('.', "-");
    let mut spec = ProviderSpec {
        provider_type: kind.into(),
        ..spec
    };
    if let Some(data) = secret {
        common::create_secret(client, &format!("{name}-secret"), data).await;
        spec.secret_ref = Some(LocalObjectReference {
            name: format!("{name}-secret"),
        });
    }
    common::create(client, Provider::new(&name, spec)).await;
    let alert = Alert::new(
        &format!("to-{name}"),
        AlertSpec {
            provider_ref: LocalObjectReference { name: name.clone() },
            event_sources: vec![CrossNamespaceObjectReference {
                kind: "Kustomization".into(),
                name: "*".into(),
                ..CrossNamespaceObjectReference::default()
            }],
            ..AlertSpec::default()
        },
    );
    common::create(client, alert).await;
}

fn secret(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn start(context: notification::Context) -> (String, tokio::sync::oneshot::Sender<()>) {
    let events = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receivers = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", events.local_addr().expect("address"));
    let (stop, stopped) = common::shutdown();
    tokio::spawn(notification::serve(
        Arc::new(context),
        events,
        receivers,
        stopped,
    ));
    (url, stop)
}

#[tokio::test]
async fn each_remaining_provider_type_delivers_to_its_loopback_service() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let (service, mut calls) = services().await;
    let (nats, mut published) = nats_server().await;
    let spec = |address: Option<String>, channel: Option<&str>| ProviderSpec {
        address,
        channel: channel.map(str::to_string),
        ..ProviderSpec::default()
    };
    provider_and_alert(
        &client,
        "bitbucketserver",
        spec(Some(format!("{service}/scm/proj/repo.git")), None),
        secret(&[("token", "bb-token")]),
    )
    .await;
    provider_and_alert(
        &client,
        "azuredevops",
        spec(Some(format!("{service}/org/proj/_git/repo")), None),
        secret(&[("token", "ado-pat")]),
    )
    .await;
    let dsn = service.replacen("http://", "http://sentrykey@", 1) + "/42";
    provider_and_alert(
        &client,
        "sentry",
        spec(None, Some("production")),
        secret(&[("address", &dsn)]),
    )
    .await;
    provider_and_alert(
        &client,
        "zulip",
        spec(Some(format!("{service}/")), Some("flux/alerts")),
        secret(&[("username", "bot@zulip.example"), ("password", "zulip-key")]),
    )
    .await;
    let key = serde_json::json!({
        "type": "service_account", "client_email": "flux@proj.iam.gserviceaccount.com",
        "private_key": include_str!("../../notify/testdata/test-service-account-key.pem"),
        "private_key_id": "k1", "token_uri": format!("{service}/token"),
    });
    provider_and_alert(
        &client,
        "googlepubsub",
        spec(Some("proj".into()), Some("flux-events")),
        secret(&[("token", &key.to_string()), ("headers", "team: platform")]),
    )
    .await;
    let connection = format!(
        "Endpoint={service}/;SharedAccessKeyName=send;SharedAccessKey=sas-key;EntityPath=hub"
    );
    provider_and_alert(
        &client,
        "azureeventhub",
        spec(None, None),
        secret(&[("address", &connection)]),
    )
    .await;
    provider_and_alert(
        &client,
        "nats",
        spec(Some(nats), Some("flux.events")),
        secret(&[("username", "flux"), ("password", "nats-pw")]),
    )
    .await;
    provider_and_alert(
        &client,
        "githubpullrequestcomment",
        spec(Some(format!("{service}/org/repo")), None),
        secret(&[("token", "gh-token")]),
    )
    .await;
    provider_and_alert(
        &client,
        "otel",
        spec(Some(format!("{service}/v1/traces")), None),
        secret(&[("token", "otel-token"), ("headers", "X-Scope-OrgID: fleet")]),
    )
    .await;
    let mut context = notification::Context::new(client.clone());
    context.google_pubsub_endpoint = Some(service.clone());
    let (events, _stop) = start(context).await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .post(&events)
        .json(&failed_event())
        .send()
        .await
        .expect("the event server answers");
    assert_eq!(answer.status(), 202);

    // Every HTTP service gets its call (Pub/Sub two: the token, then the publish; the pull
    // request comment three: who, list, create).
    let mut seen: BTreeMap<String, Call> = BTreeMap::new();
    while seen.len() < 11 {
        let call = tokio::time::timeout(Duration::from_secs(30), calls.recv())
            .await
            .unwrap_or_else(|_| panic!("missing calls, got {:?}", seen.keys()))
            .expect("the services run");
        let path = call.uri.split('?').next().unwrap_or_default();
        seen.insert(format!("{} {path}", call.method), call);
    }
    let take = |seen: &mut BTreeMap<String, Call>, path: &str| {
        let path = if path.contains(' ') {
            path.to_string()
        } else {
            format!("POST {path}")
        };
        seen.remove(&path)
            .unwrap_or_else(|| panic!("no call to {path}: {:?}", seen.keys()))
    };
    let json = |call: &Call| -> serde_json::Value {
        serde_json::from_slice(&call.body).expect("json body")
    };

    let bb = take(
        &mut seen,
        &format!("/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds"),
    );
    assert_eq!(bb.header("Authorization"), "Bearer bb-token");
    assert_eq!(bb.header("x-atlassian-token"), "no-check");
    let body = json(&bb);
    assert_eq!(body["state"], "FAILED");
    assert_eq!(body["name"], "kustomization/apps [reconciliation failed]");
    assert_eq!(body["key"].as_str().map(str::len), Some(40));

    let ado = take(
        &mut seen,
        &format!("/org/proj/_apis/git/repositories/repo/commits/{SHA}/statuses"),
    );
    assert!(
        ado.uri.ends_with("?api-version=6.0-preview.1"),
        "{}",
        ado.uri
    );
    assert_eq!(ado.header("Authorization"), "Basic OmFkby1wYXQ=");
    let body = json(&ado);
    assert_eq!(body["state"], "error");
    assert_eq!(body["context"]["genre"], "fluxcd");
    assert!(
        body["context"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kustomization/apps/")),
        "{body}"
    );

    let sentry = take(&mut seen, "/api/42/envelope/");
    assert!(
        sentry
            .header("X-Sentry-Auth")
            .ends_with("sentry_key=sentrykey"),
        "{:?}",
        sentry.headers
    );
    let envelope = String::from_utf8(sentry.body.to_vec()).expect("text");
    let item: serde_json::Value =
        serde_json::from_str(envelope.lines().nth(2).expect("item")).expect("json");
    assert_eq!(item["level"], "error");
    assert_eq!(item["environment"], "production");
    assert_eq!(item["message"], "Deployment/apps/web dry-run failed");

    let zulip = take(&mut seen, "/api/v1/messages");
    assert_eq!(
        zulip.header("Authorization"),
        "Basic Ym90QHp1bGlwLmV4YW1wbGU6enVsaXAta2V5"
    );
    let form: BTreeMap<String, String> = url_form(&zulip.body);
    assert_eq!(form["to"], "flux");
    assert_eq!(form["topic"], "alerts");
    assert!(form["content"].contains(&format!("Kustomization/{NS}/apps")));

    let token = take(&mut seen, "/token");
    let grant = url_form(&token.body);
    assert_eq!(
        grant["grant_type"],
        "urn:ietf:params:oauth2:grant-type:jwt-bearer"
    );
    let publish = take(&mut seen, "/v1/projects/proj/topics/flux-events:publish");
    assert_eq!(publish.header("Authorization"), "Bearer ya29.loopback");
    let body = json(&publish);
    assert_eq!(body["messages"][0]["attributes"]["team"], "platform");
    let data = body["messages"][0]["data"].as_str().expect("data");
    let event: serde_json::Value = serde_json::from_slice(&base64_decode(data)).expect("the event");
    assert_eq!(event["involvedObject"]["name"], "apps");

    let hub = take(&mut seen, "/hub/messages");
    let sas = hub.header("Authorization");
    let expiry: i64 = sas
        .rsplit("&se=")
        .next()
        .and_then(|rest| rest.split('&').next())
        .and_then(|se| se.parse().ok())
        .expect("se");
    assert_eq!(
        sas,
        ferroflux_notify::provider::bus::sas_token(
            &format!("{service}/hub"),
            "send",
            "sas-key",
            expiry
        )
    );
    let event: serde_json::Value = serde_json::from_slice(&hub.body).expect("the event");
    assert_eq!(event["reason"], "ReconciliationFailed");

    let whoami = take(&mut seen, "GET /api/v3/user");
    assert_eq!(whoami.header("Authorization"), "Bearer gh-token");
    let list = take(&mut seen, "GET /api/v3/repos/org/repo/issues/12/comments");
    assert!(list.uri.contains("per_page=100"), "{}", list.uri);
    let comment = take(&mut seen, "/api/v3/repos/org/repo/issues/12/comments");
    let body = json(&comment);
    let text = body["body"].as_str().expect("comment body");
    assert!(
        text.starts_with("<!-- flux-pr-comment-key:") && text.contains("## Flux Status"),
        "{text}"
    );
    assert!(!text.contains("change_request"), "{text}");

    let traces = take(&mut seen, "/v1/traces");
    assert_eq!(traces.header("Content-Type"), "application/x-protobuf");
    assert_eq!(traces.header("Authorization"), "Bearer otel-token");
    assert_eq!(traces.header("X-Scope-OrgID"), "fleet");
    let export = <otlp::ExportTraceServiceRequest as prost::Message>::decode(traces.body.clone())
        .expect("an OTLP export");
    let span = &export.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, format!("Kustomization: {NS}/apps"));
    assert_eq!(
        span.status.as_ref().map(|s| s.code),
        Some(2),
        "an error span"
    );
    let service_name = &export.resource_spans[0]
        .resource
        .as_ref()
        .expect("resource")
        .attributes[1];
    assert_eq!(
        service_name.value.as_ref().map(|v| v.string_value.as_str()),
        Some(format!("{NS}/to-otel").as_str())
    );

    let message = tokio::time::timeout(Duration::from_secs(30), published.recv())
        .await
        .expect("a NATS publish arrives")
        .expect("the NATS server runs");
    assert_eq!(message.subject, "flux.events");
    assert_eq!(message.connect["user"], "flux");
    assert_eq!(message.connect["pass"], "nats-pw");
    let event: serde_json::Value = serde_json::from_slice(&message.payload).expect("the event");
    assert_eq!(event["involvedObject"]["kind"], "Kustomization");
    drop(cluster);
}

fn url_form(body: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn base64_decode(data: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64")
}

/// A failed delivery is reported on the Alert without the Provider's secrets.
#[tokio::test]
async fn a_failed_delivery_names_no_secret() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    // Nothing listens on the DSN's port once this listener is dropped.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let dsn = format!("http://supersecretkey@127.0.0.1:{port}/42");
    provider_and_alert(
        &client,
        "sentry",
        ProviderSpec::default(),
        secret(&[("address", &dsn)]),
    )
    .await;
    provider_and_alert(
        &client,
        "nats",
        ProviderSpec {
            address: Some(format!("nats://127.0.0.1:{port}")),
            channel: Some("flux".into()),
            ..ProviderSpec::default()
        },
        secret(&[("nkey", "SUAxxxx")]),
    )
    .await;
    let (events, _stop) = start(notification::Context::new(client.clone())).await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .post(&events)
        .json(&failed_event())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 202);
    let note = warning(&client, "to-sentry").await;
    assert!(note.contains("failed to send notification"), "{note}");
    assert!(!note.contains("supersecretkey"), "{note}");
    let note = warning(&client, "to-nats").await;
    assert!(note.contains("'nkey'"), "{note}");
    assert!(!note.contains("SUAxxxx"), "{note}");
    drop(cluster);
}

/// The note of the `NotificationDispatchFailed` Warning about `alert`.
async fn warning(client: &kube::Client, alert: &str) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    for _ in 0..300 {
        let found = events
            .list(&Default::default())
            .await
            .expect("lists events")
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("NotificationDispatchFailed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(alert)
            });
        if let Some(event) = found {
            return event.note.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no NotificationDispatchFailed event about the Alert {alert}");
}

/// Reads protocol lines from a NATS connection until one starts with `prefix`.
async fn nats_line<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(30), read.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("no {prefix} from nats-server"))
            .expect("reads");
        assert!(n > 0, "nats-server closed the connection before {prefix}");
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
        assert!(!line.starts_with("-ERR"), "nats-server refused: {line}");
    }
}

/// The real nats-server (built by `scripts/peers.sh`) with a user: the Provider's publish
/// reaches a subscriber, a wrong password is refused and reported without the password.
#[tokio::test]
async fn nats_publishes_through_a_real_nats_server() {
    let cluster = require!(common::cluster().await);
    let binary = require!(ferroflux_testpeers::peer_binary("nats-server"));
    let client = cluster.client.clone();
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = free.local_addr().expect("address").port();
    drop(free);
    let _server = tokio::process::Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", "flux", "--pass", "nats-pw"])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let mut connection = None;
    for _ in 0..100 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            connection = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (read, mut write) = connection.expect("nats-server listens").into_split();
    let mut read = BufReader::new(read);
    nats_line(&mut read, "INFO").await;
    write
        .write_all(b"CONNECT {\"verbose\":false,\"user\":\"flux\",\"pass\":\"nats-pw\"}\r\nSUB flux.events 1\r\nPING\r\n")
        .await
        .expect("subscribes");
    nats_line(&mut read, "PONG").await;

    let address = format!("nats://127.0.0.1:{port}");
    for (name, password) in [("nats", "nats-pw"), ("nats-wrong", "guess")] {
        common::create_secret(
            &client,
            &format!("{name}-auth"),
            [
                ("username".to_string(), "flux".to_string()),
                ("password".to_string(), password.to_string()),
            ]
            .into(),
        )
        .await;
        let provider = Provider::new(
            name,
            ProviderSpec {
                provider_type: "nats".into(),
                address: Some(address.clone()),
                channel: Some("flux.events".into()),
                secret_ref: Some(LocalObjectReference {
                    name: format!("{name}-auth"),
                }),
                ..ProviderSpec::default()
            },
        );
        common::create(&client, provider).await;
        let alert = Alert::new(
            &format!("to-{name}"),
            AlertSpec {
                provider_ref: LocalObjectReference { name: name.into() },
                event_sources: vec![CrossNamespaceObjectReference {
                    kind: "Kustomization".into(),
                    name: "*".into(),
                    ..CrossNamespaceObjectReference::default()
                }],
                ..AlertSpec::default()
            },
        );
        common::create(&client, alert).await;
    }
    let (events, _stop) = start(notification::Context::new(client.clone())).await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .post(&events)
        .json(&failed_event())
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 202);

    let header = nats_line(&mut read, "MSG").await;
    let size: usize = header
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("MSG size");
    assert!(header.starts_with("MSG flux.events 1 "), "{header}");
    let mut payload = vec![0; size + 2];
    read.read_exact(&mut payload).await.expect("payload");
    payload.truncate(size);
    let event: serde_json::Value = serde_json::from_slice(&payload).expect("the event");
    assert_eq!(event["involvedObject"]["name"], "apps");
    assert_eq!(event["reason"], "ReconciliationFailed");
    let note = warning(&client, "to-nats-wrong").await;
    assert!(note.contains("Authorization Violation"), "{note}");
    assert!(!note.contains("guess"), "{note}");
    drop(cluster);
}

/// Verifies the RS256 signature of `jwt` with the public half of the PEM key `key`, through
/// openssl (an independent implementation); its claims.
fn verified_claims(jwt: &str, key: &str) -> serde_json::Value {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signed, signature) = jwt.rsplit_once('.').expect("a JWT");
    let (header, claims) = signed.split_once('.').expect("a JWT");
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(header).expect("base64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("write");
        path
    };
    let private = write("key.pem", key.as_bytes());
    let data = write("data", signed.as_bytes());
    let sig = write("sig", &b64.decode(signature).expect("base64"));
    let public = dir.path().join("public.pem");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(&sig)
        .arg(&data)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "the JWT's signature does not verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&b64.decode(claims).expect("base64")).expect("json")
}

/// A `github` Provider whose Secret holds a GitHub App (Flux 2.9's `githubAppID`,
/// `githubAppInstallationID`, `githubAppPrivateKey`, `githubAppBaseURL`) asks a loopback GitHub
/// Enterprise API for an installation token with the App's signed JWT, then sets the commit
/// status with that token.
#[tokio::test]
async fn a_github_provider_authenticates_as_a_github_app() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let key = include_str!("../../notify/testdata/test-service-account-key.pem");
    let (tx, mut calls) = mpsc::unbounded_channel();
    let router = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let answer = if uri.path() == "/api/v3/app/installations/456/access_tokens" {
                    r#"{"token":"ghs_installation","expires_at":"2030-01-01T00:00:00Z"}"#
                } else {
                    "{}"
                };
                let _ = tx.send(Call {
                    method,
                    uri: uri.to_string(),
                    headers,
                    body,
                });
                (axum::http::StatusCode::CREATED, answer)
            }
        },
    );
    let github = common::serve(router).await;
    let base = format!("{github}/api/v3");
    provider_and_alert(
        &client,
        "github",
        ProviderSpec {
            address: Some(format!("{github}/org/repo")),
            ..ProviderSpec::default()
        },
        secret(&[
            ("githubAppID", "123"),
            ("githubAppInstallationID", "456"),
            ("githubAppPrivateKey", key),
            ("githubAppBaseURL", &base),
        ]),
    )
    .await;
    let (events, _stop) = start(notification::Context::new(client.clone())).await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .post(&events)
        .json(&failed_event())
        .send()
        .await
        .expect("the event server answers");
    assert_eq!(answer.status(), 202);

    let next = async |calls: &mut mpsc::UnboundedReceiver<Call>| {
        tokio::time::timeout(Duration::from_secs(30), calls.recv())
            .await
            .expect("a call to GitHub")
            .expect("the server runs")
    };
    let token = next(&mut calls).await;
    assert_eq!(token.method, Method::POST);
    assert_eq!(token.uri, "/api/v3/app/installations/456/access_tokens");
    let jwt = token
        .header("Authorization")
        .strip_prefix("Bearer ")
        .expect("the App's JWT");
    let claims = verified_claims(jwt, key);
    assert_eq!(claims["iss"], "123");
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(120), "{claims}");
    let status = next(&mut calls).await;
    assert_eq!(status.uri, format!("/api/v3/repos/org/repo/statuses/{SHA}"));
    assert_eq!(status.header("Authorization"), "Bearer ghs_installation");
    let body: serde_json::Value = serde_json::from_slice(&status.body).expect("json");
    assert_eq!(body["state"], "failure");
    drop(cluster);
}
