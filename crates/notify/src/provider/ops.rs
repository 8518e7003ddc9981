//! Incident and observability services: PagerDuty (Events API v2 and change events),
//! Opsgenie alerts, Datadog events, Grafana annotations and Alertmanager alerts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Error, PROGRESSING, Request, Settings, fields, name_and_description, request_uri};
use crate::event::{Event, META_SUMMARY, SEVERITY_ERROR, SEVERITY_INFO};

/// `scheme://host` of an address (services whose API paths are fixed).
fn origin(address: &str, what: &str) -> Result<String, Error> {
    let url = request_uri(address, what)?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Invalid(format!("invalid {what} URL {address}")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    Ok(format!("{scheme}://{host}"))
}

/// The event's time as RFC 3339, as Go's `time.RFC3339` prints it.
fn rfc3339(event: &Event) -> String {
    jiff::Timestamp::from_second(event.unix_seconds())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// PagerDuty: an error triggers an incident deduplicated by the object's UID, anything else
/// resolves it and is also sent as a change event; `Progressing` sends nothing. The routing key
/// is `spec.channel`.
pub(super) fn pagerduty(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    let endpoint = origin(&settings.address, "PagerDuty endpoint")?;
    if event.reason == PROGRESSING {
        return Ok(Vec::new());
    }
    let (name, desc) = name_and_description(event);
    let summary = format!("{desc}: {name}");
    let source = format!("Flux {}", event.reporting_controller);
    let details = json!({"message": event.message, "metadata": event.metadata});
    let mut v2 = json!({
        "routing_key": settings.channel,
        "event_action": "resolve",
        "dedup_key": event.involved_object.uid,
    });
    if event.severity == SEVERITY_ERROR
        && let Some(v) = v2.as_object_mut()
    {
        v.insert("event_action".into(), "trigger".into());
        v.insert(
            "payload".into(),
            json!({
                "summary": summary, "source": source, "severity": "error",
                "timestamp": rfc3339(event), "component": event.involved_object.name,
                "group": event.involved_object.kind, "custom_details": details,
            }),
        );
    }
    let mut out = vec![Request::json(format!("{endpoint}/v2/enqueue"), &v2)];
    if event.severity == SEVERITY_INFO {
        let change = json!({
            "routing_key": settings.channel,
            "payload": {"summary": summary, "source": source, "timestamp": rfc3339(event),
                "custom_details": details},
        });
        out.push(Request::json(
            format!("{endpoint}/v2/change/enqueue"),
            &change,
        ));
    }
    Ok(out)
}

/// Opsgenie: an alert aliased by Provider, object and reason, with `GenieKey` auth.
pub(super) fn opsgenie(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use sha2::Digest;
    let url = request_uri(&settings.address, "Opsgenie hook")?;
    let key = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("empty Opsgenie apikey/token".into()))?;
    let o = &event.involved_object;
    let alias_key = format!(
        "{}/{}/{}/{}/{}",
        settings.provider_uid, o.kind, o.namespace, o.name, event.reason
    );
    let alias = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(alias_key.as_bytes()));
    let mut details = event.metadata.clone();
    details.insert("severity".into(), event.severity.clone());
    let payload = json!({
        "message": format!("{}/{}", o.kind, o.name),
        "alias": alias,
        "description": event.message,
        "details": details,
    });
    Ok(Request::json(url, &payload).header("Authorization", format!("GenieKey {key}")))
}

/// Datadog: an event of the Events API v1 at the address's site, with `DD-API-KEY`.
pub(super) fn datadog(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let key = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("token cannot be empty".into()))?;
    let site = origin(&settings.address, "DataDog")?;
    let o = &event.involved_object;
    let mut tags = vec![
        format!("flux_reporting_controller:{}", event.reporting_controller),
        format!("flux_reason:{}", event.reason),
        format!("kube_kind:{}", o.kind),
        format!("kube_name:{}", o.name),
        format!("kube_namespace:{}", o.namespace),
    ];
    tags.extend(fields(event).map(|(k, v)| format!("{k}:{v}")));
    let tags: Vec<String> = tags.iter().map(|t| t.to_lowercase()).collect();
    let payload = json!({
        "title": format!("Events from the {} {}/{}", o.kind, o.name, o.namespace),
        "text": event.message,
        "tags": tags,
        "source_type_name": "fluxcd",
        "date_happened": event.unix_seconds(),
        "alert_type": if event.severity == SEVERITY_ERROR { "error" } else { "info" },
    });
    Ok(Request::json(format!("{site}/api/v1/events"), &payload).header("DD-API-KEY", key))
}

/// Grafana: an annotation tagged `flux`, the controller, the metadata and the object; a token
/// is a Bearer, otherwise username and password are Basic auth.
pub(super) fn grafana(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use base64::Engine as _;
    let url = request_uri(&settings.address, "Grafana")?;
    let o = &event.involved_object;
    let mut tags = vec!["flux".to_string(), event.reporting_controller.clone()];
    tags.extend(
        fields(event).map(|(k, v)| format!("{}: {}", k.replace(':', "|"), v.replace(':', "|"))),
    );
    tags.push(format!("kind: {}", o.kind));
    tags.push(format!("name: {}", o.name));
    tags.push(format!("namespace: {}", o.namespace));
    let payload = json!({"when": event.unix_seconds(), "text": o.title(), "tags": tags});
    let mut request = Request::json(url, &payload);
    match settings.token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => request = request.header("Authorization", format!("Bearer {token}")),
        None if !settings.username.is_empty() && !settings.password.is_empty() => {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", settings.username, settings.password));
            request = request.header("Authorization", format!("Basic {basic}"));
        }
        None => {}
    }
    Ok(request)
}

/// Go's `cases.Title` of one word: the first letter upper case, the rest lower case.
fn title_case(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect()
    })
}

/// Alertmanager: one firing alert labelled with the metadata and the object, the message (and
/// summary) as annotations.
pub(super) fn alertmanager(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use base64::Engine as _;
    let url = request_uri(&settings.address, "Alertmanager")?;
    let o = &event.involved_object;
    let mut annotations = BTreeMap::from([("message".to_string(), event.message.clone())]);
    let mut labels = event.metadata.clone();
    if let Some(summary) = labels.remove(META_SUMMARY) {
        annotations.insert(META_SUMMARY.into(), summary);
    }
    for (k, v) in [
        (
            "alertname",
            format!("Flux{}{}", o.kind, title_case(&event.reason)),
        ),
        ("severity", event.severity.clone()),
        ("reason", event.reason.clone()),
        ("kind", o.kind.clone()),
        ("name", o.name.clone()),
        ("namespace", o.namespace.clone()),
        ("reportingcontroller", event.reporting_controller.clone()),
    ] {
        labels.insert(k.to_string(), v);
    }
    let payload: Value = json!([{
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(event),
        // Go's encoder writes the zero time of the unset field.
        "endsAt": "0001-01-01T00:00:00Z",
    }]);
    let mut request = Request::json(url, &payload);
    if let Some(token) = settings.token.as_deref().filter(|t| !t.is_empty()) {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if !settings.username.is_empty() && !settings.password.is_empty() {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", settings.username, settings.password));
        request = request.header("Authorization", format!("Basic {basic}"));
    }
    Ok(request)
}

/// incident.io: an alert event of an HTTP alert source, firing on error and resolved
/// otherwise, deduplicated by the object's UID; `Progressing` sends nothing.
pub(super) fn incidentio(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    let url = request_uri(&settings.address, "incident.io alert source")?;
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("empty incident.io API token".into()))?;
    if event.reason == PROGRESSING {
        return Ok(Vec::new());
    }
    let o = &event.involved_object;
    let mut metadata = event.metadata.clone();
    metadata.insert("severity".into(), event.severity.clone());
    metadata.insert("reason".into(), event.reason.clone());
    if !event.reporting_controller.is_empty() {
        metadata.insert(
            "reportingController".into(),
            event.reporting_controller.clone(),
        );
    }
    let mut payload = json!({
        "title": format!("{}: {}", o.title(), event.reason),
        "status": if event.severity == SEVERITY_ERROR { "firing" } else { "resolved" },
        "deduplication_key": o.uid,
        "metadata": metadata,
    });
    if !event.message.is_empty()
        && let Some(p) = payload.as_object_mut()
    {
        p.insert("description".into(), event.message.clone().into());
    }
    Ok(vec![
        Request::json(url, &payload).header("Authorization", format!("Bearer {token}")),
    ])
}

/// The sentry-go release Flux 2.9 reports as its SDK.
const SENTRY_SDK: (&str, &str) = ("sentry.go", "0.46.2");

/// A Sentry DSN (`{scheme}://{public key}[:{secret}]@{host}[/{path}]/{project}`), as sentry-go
/// parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryDsn {
    /// Where envelopes are sent: `{scheme}://{host}{path}/api/{project}/envelope/`.
    pub envelope_url: String,
    /// The public key.
    pub public_key: String,
    /// The secret key of legacy DSNs.
    pub secret_key: Option<String>,
}

impl SentryDsn {
    /// Parses `dsn`; its errors never repeat it (a DSN is a credential).
    ///
    /// # Errors
    /// A DSN without scheme, key, host or project.
    pub fn parse(dsn: &str) -> Result<Self, Error> {
        let invalid = |what: &str| Error::Invalid(format!("invalid Sentry DSN: {what}"));
        if dsn.is_empty() {
            return Err(Error::Invalid("DSN cannot be empty".into()));
        }
        let (scheme, rest) = dsn.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid("scheme must be http or https"));
        }
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (userinfo, rest) = rest
            .rsplit_once('@')
            .ok_or_else(|| invalid("no public key"))?;
        let (public_key, secret_key) = match userinfo.split_once(':') {
            Some((public, secret)) => (public, Some(secret.to_string())),
            None => (userinfo, None),
        };
        if public_key.is_empty() {
            return Err(invalid("empty public key"));
        }
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        let path = path.trim_end_matches('/');
        let (prefix, project) = match path.rsplit_once('/') {
            Some((prefix, project)) => (format!("/{prefix}"), project),
            None => (String::new(), path),
        };
        if project.is_empty() {
            return Err(invalid("empty project id"));
        }
        Ok(SentryDsn {
            envelope_url: format!("{scheme}://{host}{prefix}/api/{project}/envelope/"),
            public_key: public_key.to_string(),
            secret_key,
        })
    }

    /// The `X-Sentry-Auth` header of sentry-go.
    fn auth(&self) -> String {
        let (name, version) = SENTRY_SDK;
        let mut auth = format!(
            "Sentry sentry_version=7, sentry_client={name}/{version}, sentry_key={}",
            self.public_key
        );
        if let Some(secret) = &self.secret_key {
            auth.push_str(&format!(", sentry_secret={secret}"));
        }
        auth
    }
}

/// Sentry (Flux's `NewSentry`): the address is the DSN, the channel the environment. An error
/// is an event at level `error`, with the metadata as the `metadata` context; an info event a
/// transaction of one span tagged with the object, as Flux traces them; other severities send
/// nothing. Identifiers are derived from the event, so one event always has the same ones.
pub(super) fn sentry(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    use sha2::Digest;
    let dsn = SentryDsn::parse(&settings.address)?;
    let digest = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(event.to_json()));
    let event_id = &digest[..32];
    let o = &event.involved_object;
    let transaction = format!("{}: {}/{}", o.kind, o.namespace, o.name);
    let (name, version) = SENTRY_SDK;
    let at = rfc3339(event);
    let mut payload = match event.severity.as_str() {
        SEVERITY_ERROR => json!({
            "event_id": event_id, "level": "error", "message": event.message,
            "server_name": event.reporting_controller, "transaction": transaction,
            "contexts": {"metadata": event.metadata}, "timestamp": at,
        }),
        SEVERITY_INFO => {
            let (trace_id, span_id) = (&digest[32..64], &digest[..16]);
            let mut tags = BTreeMap::from([
                ("flux_involved_object_kind".to_string(), o.kind.clone()),
                ("flux_involved_object_namespace".into(), o.namespace.clone()),
                ("flux_involved_object_name".into(), o.name.clone()),
                (
                    "flux_reporting_controller".into(),
                    event.reporting_controller.clone(),
                ),
                (
                    "flux_reporting_instance".into(),
                    event.reporting_instance.clone(),
                ),
                ("flux_reason".into(), event.reason.clone()),
            ]);
            tags.extend(event.metadata.clone());
            json!({
                "event_id": event_id, "type": "transaction", "transaction": transaction,
                "message": event.message,
                "contexts": {"trace": {"trace_id": trace_id, "span_id": span_id, "op": "event"}},
                "tags": tags, "timestamp": at, "start_timestamp": at,
                "spans": [{"trace_id": trace_id, "span_id": span_id, "op": "event", "tags": tags,
                    "start_timestamp": at, "timestamp": at}],
            })
        }
        _ => return Ok(Vec::new()),
    };
    if let Some(p) = payload.as_object_mut() {
        p.insert("platform".into(), "go".into());
        p.insert("sdk".into(), json!({"name": name, "version": version}));
        if !settings.channel.is_empty() {
            p.insert("environment".into(), settings.channel.clone().into());
        }
    }
    let item = serde_json::to_vec(&payload).unwrap_or_default();
    let kind = if event.severity == SEVERITY_ERROR {
        "event"
    } else {
        "transaction"
    };
    let mut body = json!({"event_id": event_id, "sent_at": at})
        .to_string()
        .into_bytes();
    body.push(b'\n');
    body.extend(
        json!({"type": kind, "length": item.len()})
            .to_string()
            .into_bytes(),
    );
    body.push(b'\n');
    body.extend(item);
    body.push(b'\n');
    Ok(vec![Request {
        method: super::Method::Post,
        url: dsn.envelope_url.clone(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-sentry-envelope".into(),
            ),
            ("X-Sentry-Auth".into(), dsn.auth()),
        ],
        body,
        check: super::ResponseCheck::Success,
    }])
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, requests, settings};
    use super::*;

    #[test]
    fn pagerduty_triggers_on_error_and_resolves_with_a_change_event_on_info() {
        let mut s = settings("pagerduty", "https://events.pagerduty.com/ignored/path");
        s.channel = "routing-key".into();
        let error = requests(&s, &merged_event()).expect("builds");
        assert_eq!(error.len(), 1);
        assert_eq!(error[0].url, "https://events.pagerduty.com/v2/enqueue");
        let body = error[0].json_body();
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["routing_key"], "routing-key");
        assert_eq!(body["dedup_key"], "0c2e3a8e-1b44-4e8f-9c1c-7b5a1f0e2d11");
        assert_eq!(
            body["payload"]["summary"],
            "reconciliation failed: kustomization/podinfo"
        );
        assert_eq!(body["payload"]["source"], "Flux kustomize-controller");
        assert_eq!(body["payload"]["timestamp"], "2026-12-07T16:00:00Z");
        let mut info = merged_event();
        info.severity = "info".into();
        let resolved = requests(&s, &info).expect("builds");
        assert_eq!(resolved.len(), 2);
        assert_eq!(resolved[0].json_body()["event_action"], "resolve");
        assert!(resolved[0].json_body().get("payload").is_none());
        assert_eq!(
            resolved[1].url,
            "https://events.pagerduty.com/v2/change/enqueue"
        );
        info.reason = "Progressing".into();
        assert!(requests(&s, &info).expect("builds").is_empty());
    }

    #[test]
    fn opsgenie_and_datadog_need_a_key_and_send_their_shapes() {
        let mut s = settings("opsgenie", "https://api.opsgenie.com/v2/alerts");
        assert!(requests(&s, &merged_event()).is_err());
        s.token = Some("genie".into());
        let o = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(o.header_value("Authorization"), Some("GenieKey genie"));
        let body = o.json_body();
        assert_eq!(body["message"], "Kustomization/podinfo");
        assert_eq!(body["details"]["severity"], "error");
        assert_eq!(body["alias"].as_str().map(str::len), Some(64));
        let mut d = settings("datadog", "https://api.datadoghq.eu");
        d.token = Some("dd".into());
        let r = &requests(&d, &merged_event()).expect("builds")[0];
        assert_eq!(r.url, "https://api.datadoghq.eu/api/v1/events");
        assert_eq!(r.header_value("DD-API-KEY"), Some("dd"));
        let body = r.json_body();
        assert_eq!(body["title"], "Events from the Kustomization podinfo/apps");
        assert_eq!(body["alert_type"], "error");
        assert_eq!(body["tags"][2], "kube_kind:kustomization");
        assert_eq!(body["tags"][6], "summary:cluster eu-1");
        assert_eq!(body["date_happened"], 1_796_659_200);
    }

    #[test]
    fn incidentio_fires_on_error() {
        let mut s = settings(
            "incident.io",
            "https://api.incident.io/v2/alert_events/http/x",
        );
        assert!(requests(&s, &merged_event()).is_err(), "needs a token");
        s.token = Some("key".into());
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(r.header_value("Authorization"), Some("Bearer key"));
        let body = r.json_body();
        assert_eq!(
            body["title"],
            "kustomization/podinfo.apps: ReconciliationFailed"
        );
        assert_eq!(body["status"], "firing");
        assert_eq!(
            body["metadata"]["reportingController"],
            "kustomize-controller"
        );
    }

    #[test]
    fn sentry_sends_an_error_event_envelope_to_the_dsn_project() {
        let dsn = SentryDsn::parse("https://pub:sec@o1.ingest.sentry.io/prefix/42").expect("dsn");
        assert_eq!(
            dsn.envelope_url,
            "https://o1.ingest.sentry.io/prefix/api/42/envelope/"
        );
        assert!(SentryDsn::parse("https://o1.ingest.sentry.io/42").is_err());
        assert!(SentryDsn::parse("https://k@host/").is_err());
        let mut s = settings("sentry", "https://key@sentry.example/7");
        s.channel = "production".into();
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(r.url, "https://sentry.example/api/7/envelope/");
        assert_eq!(
            r.header_value("X-Sentry-Auth"),
            Some("Sentry sentry_version=7, sentry_client=sentry.go/0.46.2, sentry_key=key")
        );
        let text = String::from_utf8(r.body.clone()).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let item: Value = serde_json::from_str(lines[1]).expect("item header");
        assert_eq!(item["type"], "event");
        assert_eq!(item["length"], lines[2].len());
        let event: Value = serde_json::from_str(lines[2]).expect("event");
        assert_eq!(event["level"], "error");
        assert_eq!(event["message"], "Deployment/apps/podinfo dry-run failed");
        assert_eq!(event["transaction"], "Kustomization: apps/podinfo");
        assert_eq!(event["server_name"], "kustomize-controller");
        assert_eq!(event["environment"], "production");
        assert_eq!(event["contexts"]["metadata"]["summary"], "Cluster eu-1");
        assert_eq!(event["event_id"].as_str().map(str::len), Some(32));
        let mut info = merged_event();
        info.severity = "info".into();
        let r = &requests(&s, &info).expect("builds")[0];
        let text = String::from_utf8(r.body.clone()).expect("text");
        let transaction: Value =
            serde_json::from_str(text.lines().nth(2).expect("item")).expect("json");
        assert_eq!(transaction["type"], "transaction");
        assert_eq!(transaction["tags"]["flux_reason"], "ReconciliationFailed");
        assert_eq!(transaction["contexts"]["trace"]["op"], "event");
        info.severity = "trace".into();
        assert!(requests(&s, &info).expect("builds").is_empty());
        let err = requests(
            &settings("sentry", "https://sentry.example/7"),
            &merged_event(),
        )
        .expect_err("no key");
        assert!(!err.to_string().contains("sentry.example"), "{err}");
    }

    #[test]
    fn grafana_and_alertmanager_shapes() {
        let mut g = settings("grafana", "https://grafana.example/api/annotations");
        g.username = "admin".into();
        g.password = "pw".into();
        let r = &requests(&g, &merged_event()).expect("builds")[0];
        assert_eq!(r.header_value("Authorization"), Some("Basic YWRtaW46cHc="));
        assert_eq!(
            r.json_body()["tags"],
            json!([
                "flux",
                "kustomize-controller",
                "revision: main@sha1|8a7b1c",
                "summary: Cluster eu-1",
                "kind: Kustomization",
                "name: podinfo",
                "namespace: apps"
            ])
        );
        let a = &requests(
            &settings("alertmanager", "https://am.example/api/v2/alerts"),
            &merged_event(),
        )
        .expect("builds")[0];
        let alert = &a.json_body()[0];
        assert_eq!(
            alert["labels"]["alertname"],
            "FluxKustomizationReconciliationfailed"
        );
        assert_eq!(alert["labels"]["revision"], "main@sha1:8a7b1c");
        assert!(alert["labels"].get("summary").is_none());
        assert_eq!(alert["annotations"]["summary"], "Cluster eu-1");
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["startsAt"], "2026-12-07T16:00:00Z");
    }
}
