//! OpenTelemetry (`otel`): each event becomes one span exported over OTLP/HTTP (protobuf), as
//! Flux's OTLP tracer sends it. The trace ID is derived from the Alert's UID and the event's
//! revision, so the events of one revision through one Alert share a trace; the span is named
//! after the object, carries the object and metadata as attributes and is `Error` for an error
//! event. Events of HelmRepositories are not traced (Flux skips them).

use prost::Message;

use super::{Error, Method, Request, ResponseCheck, Settings, request_uri};
use crate::event::{Event, SEVERITY_ERROR};

/// The semantic conventions Flux's resource names.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.34.0";
/// The instrumentation scope of Flux's tracer.
const SCOPE: &str = "flux:notification-controller";

/// The OTLP messages a span export needs (`opentelemetry/proto/collector/trace/v1` and the
/// messages it uses), with their field numbers.
pub mod proto {
    /// `ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        /// Spans per resource.
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    /// `ResourceSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        /// The resource.
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// Spans per instrumentation scope.
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
        /// Schema of the resource's attributes.
        #[prost(string, tag = "3")]
        pub schema_url: String,
    }
    /// `Resource`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        /// Attributes.
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    /// `ScopeSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        /// The instrumentation scope.
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        /// Spans.
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    /// `InstrumentationScope`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
    }
    /// `KeyValue` with a string `AnyValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        /// Key.
        #[prost(string, tag = "1")]
        pub key: String,
        /// Value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    /// `AnyValue` (strings only here).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        /// `string_value`.
        #[prost(string, tag = "1")]
        pub string_value: String,
    }
    /// `Span`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        /// 16 bytes.
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// 8 bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        /// Name.
        #[prost(string, tag = "5")]
        pub name: String,
        /// `SPAN_KIND_INTERNAL` (1).
        #[prost(int32, tag = "6")]
        pub kind: i32,
        /// Start, nanoseconds since the epoch.
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        /// End, nanoseconds since the epoch.
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        /// Attributes.
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        /// Status.
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    /// `Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// Description (errors only).
        #[prost(string, tag = "2")]
        pub message: String,
        /// `STATUS_CODE_OK` (1) or `STATUS_CODE_ERROR` (2).
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
}

fn attribute(key: &str, value: &str) -> proto::KeyValue {
    proto::KeyValue {
        key: key.to_string(),
        value: Some(proto::AnyValue {
            string_value: value.to_string(),
        }),
    }
}

/// Flux's revision of a trace: `app-version@oci-digest` of an OCI artifact, else the
/// revision, else `unknown`.
fn trace_revision(event: &Event) -> String {
    match (
        event.metadata.get("app-version"),
        event.metadata.get("oci-digest"),
    ) {
        (Some(version), Some(digest)) => format!("{version}@{digest}"),
        _ => event
            .metadata
            .get("revision")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// The span export of `event` through the Alert in `settings`, to the address (the full
/// OTLP/HTTP traces URL). With headers from the Secret and no `Authorization` among them, the
/// token is a Bearer, or username and token Basic auth (Flux's rule).
pub(super) fn otel(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    use sha2::Digest;
    let url = request_uri(&settings.address, "OTLP endpoint")?;
    if settings.alert_uid.is_empty() {
        return Err(Error::Invalid("alert metadata not found".into()));
    }
    let o = &event.involved_object;
    if o.kind == "HelmRepository" {
        return Ok(Vec::new());
    }
    let trace = sha2::Sha256::digest(
        format!("{}:{}", settings.alert_uid, trace_revision(event)).as_bytes(),
    );
    let span_id = sha2::Sha256::digest(event.to_json());
    let mut attributes = vec![
        attribute("object.uid", &o.uid),
        attribute("object.kind", &o.kind),
        attribute("object.name", &o.name),
        attribute("object.namespace", &o.namespace),
    ];
    attributes.extend(event.metadata.iter().map(|(k, v)| attribute(k, v)));
    let start = u64::try_from(event.unix_seconds()).unwrap_or_default() * 1_000_000_000;
    let end = u64::try_from(settings.now).unwrap_or_default() * 1_000_000_000;
    let status = if event.severity == SEVERITY_ERROR {
        proto::Status {
            message: event.message.clone(),
            code: 2,
        }
    } else {
        proto::Status {
            message: String::new(),
            code: 1,
        }
    };
    let span = proto::Span {
        trace_id: trace[..16].to_vec(),
        span_id: span_id[..8].to_vec(),
        name: format!("{}: {}/{}", o.kind, o.namespace, o.name),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        attributes,
        status: Some(status),
    };
    let alert = (&settings.alert_namespace, &settings.alert_name);
    let export = proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(proto::Resource {
                attributes: vec![
                    attribute("service.instance.id", &settings.alert_uid),
                    attribute("service.name", &format!("{}/{}", alert.0, alert.1)),
                    attribute("service.namespace", alert.0),
                ],
            }),
            scope_spans: vec![proto::ScopeSpans {
                scope: Some(proto::InstrumentationScope {
                    name: SCOPE.to_string(),
                }),
                spans: vec![span],
            }],
            schema_url: SCHEMA_URL.to_string(),
        }],
    };
    let mut headers = vec![(
        "Content-Type".to_string(),
        "application/x-protobuf".to_string(),
    )];
    headers.extend(settings.headers.clone());
    let has_auth = settings
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("Authorization"));
    let token = settings
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or(&settings.password);
    if !settings.headers.is_empty() && !has_auth && !token.is_empty() {
        let value = if settings.username.is_empty() {
            format!("Bearer {token}")
        } else {
            use base64::Engine as _;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{token}", settings.username));
            format!("Basic {basic}")
        };
        headers.push(("Authorization".into(), value));
    }
    Ok(vec![Request {
        method: Method::Post,
        url,
        headers,
        body: export.encode_to_vec(),
        check: ResponseCheck::Success,
    }])
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, requests, settings};
    use super::*;

    #[test]
    fn an_event_is_one_span_of_the_alert_s_trace_for_its_revision() {
        let mut s = settings("otel", "https://otel.example:4318/v1/traces");
        assert!(requests(&s, &merged_event()).is_err(), "needs the Alert");
        s.alert_uid = "5b6c".into();
        s.alert_namespace = "apps".into();
        s.alert_name = "traces".into();
        s.now = 1_796_659_260;
        s.token = Some("tok".into());
        s.headers = [("X-Tenant".to_string(), "a".to_string())].into();
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(r.url, "https://otel.example:4318/v1/traces");
        assert_eq!(
            r.header_value("Content-Type"),
            Some("application/x-protobuf")
        );
        assert_eq!(r.header_value("Authorization"), Some("Bearer tok"));
        assert_eq!(r.header_value("X-Tenant"), Some("a"));
        let export = proto::ExportTraceServiceRequest::decode(r.body.as_slice()).expect("OTLP");
        let resource = &export.resource_spans[0];
        assert_eq!(resource.schema_url, SCHEMA_URL);
        let service = resource.resource.as_ref().expect("resource");
        assert_eq!(
            service.attributes[1],
            attribute("service.name", "apps/traces")
        );
        let span = &resource.scope_spans[0].spans[0];
        assert_eq!(span.name, "Kustomization: apps/podinfo");
        use sha2::Digest;
        let trace = sha2::Sha256::digest(b"5b6c:main@sha1:8a7b1c");
        assert_eq!(span.trace_id, trace[..16].to_vec());
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, 1_796_659_200_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_796_659_260_000_000_000);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert!(
            span.attributes
                .contains(&attribute("summary", "Cluster eu-1"))
        );
        assert!(
            span.attributes
                .contains(&attribute("object.kind", "Kustomization"))
        );
        // The first bytes are field 1 (resource_spans), length-delimited, as OTLP expects.
        assert_eq!(r.body[0], 0x0a);
        s.headers.clear();
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(
            r.header_value("Authorization"),
            None,
            "Flux adds auth to headers only"
        );
        let mut helm = merged_event();
        helm.involved_object.kind = "HelmRepository".into();
        assert!(requests(&s, &helm).expect("builds").is_empty());
    }
}
