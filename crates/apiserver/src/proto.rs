//! Protobuf for the built-in kinds, as kube-apiserver speaks it: request bodies of every
//! built-in kind (`Content-Type: application/vnd.kubernetes.protobuf`, what kubectl and
//! client-go's typed clients send), replies (objects, lists, `Status` errors) when the client
//! asks for them, and watch streams in protobuf framing. Custom resources stay JSON-only:
//! a protobuf body for one is 415, a request accepting only protobuf for one is 406.
//!
//! How: a generic transcoder between protobuf messages and the JSON objects the rest of the
//! server works with, driven by a descriptor table, `proto/k8s.table`. The table is generated
//! (by `tests/protobuf/table_gen.rs`, whose test fails when the committed table drifts) from
//! the Kubernetes Go modules of the kube-apiserver release the project tests against: each
//! package's `generated.proto` gives field numbers and types, and the Go struct of each message
//! gives what the wire does not carry: JSON names (not always the proto field names), inlined
//! members, and whether a zero scalar is written to JSON (a pointer such as `replicas: 0`, or a
//! field without `omitempty`). A table from these sources is smaller than descriptors plus a
//! reflection library, and it is exact where the prost types of `k8s-pb` are not (they lose the
//! JSON names and pointer-ness); `k8s-pb` serves the tests as an independent encoder.
//! Regenerate after a Kubernetes bump or a new served kind with
//! `FERROFLUX_REGENERATE=1 cargo test -p ferroflux-apiserver --test protobuf table`.
//!
//! Kubernetes' special encodings are handled by message name: `metav1.Time`/`MicroTime`
//! (seconds/nanos <-> RFC 3339), `IntOrString`, `Quantity` (a string), `RawExtension`,
//! `FieldsV1` and apiextensions `JSON` (JSON held in bytes), the `JSONSchemaPropsOr*` unions,
//! and slice wrappers such as `ExtraValue` (JSON arrays). `bytes` fields are base64 in JSON.
//! Every object on the wire is wrapped in the `k8s\0` magic and a `runtime.Unknown` envelope
//! naming its apiVersion and kind.
//!
//! Hostile input: no panics on any bytes; nesting is bounded by `transcode::MAX_DEPTH`, sizes
//! by the request body limit; malformed bodies are 400 with kube-apiserver's wording.

mod table;
mod transcode;
mod wire;

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;

use crate::registry::Resource;
use crate::status::{ApiError, ApiResult};
use table::TABLE;
use wire::{Fields, Wire, put_bytes};

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// What starts every protobuf object.
const MAGIC: &[u8] = b"k8s\x00";

/// Why a protobuf body cannot be used (or an object cannot be encoded).
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body is empty.
    #[error("empty data")]
    Empty,
    /// The `k8s\0` magic is missing.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingPrefix,
    /// A field runs past the end of its message.
    #[error("unexpected EOF")]
    Truncated,
    /// A varint longer than 64 bits.
    #[error("integer overflow")]
    VarintOverflow,
    /// Field number 0 or beyond the range.
    #[error("illegal tag {0}")]
    IllegalTag(u64),
    /// Wire types 3, 4, 6 and 7.
    #[error("illegal wire type {0}")]
    IllegalWireType(u8),
    /// A known field with another wire type than its declared type.
    #[error("wrong wire type {0} for field {1:?}")]
    WrongWireType(u8, String),
    /// A string field that is not UTF-8.
    #[error("invalid UTF-8 in a string field")]
    InvalidUtf8,
    /// NaN or an infinity, which JSON cannot hold.
    #[error("a number is not finite")]
    NotFinite,
    /// Messages nested too deeply.
    #[error("messages are nested deeper than {} levels", transcode::MAX_DEPTH)]
    TooDeep,
    /// A time outside the representable range.
    #[error("a time is out of range")]
    TimeOutOfRange,
    /// Raw extension bytes that are neither JSON nor a protobuf object.
    #[error("an embedded object is neither JSON nor a protobuf object")]
    RawNotJson,
    /// A watch event larger than its frame's 32-bit length.
    #[error("the object is too large for a watch frame")]
    TooLarge,
    /// The envelope's content encoding is not supported.
    #[error("unsupported content encoding {0:?}")]
    ContentEncoding(String),
    /// No protobuf message is known for this apiVersion/kind.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// apiVersion.
        api_version: String,
        /// kind.
        kind: String,
    },
    /// A JSON value of the wrong type for its field (when encoding).
    #[error("{1}: expected {0}")]
    JsonType(&'static str, String),
}

/// The `runtime.Unknown` envelope of a protobuf object.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

fn read_envelope(buf: &[u8]) -> Result<Envelope<'_>, ProtoError> {
    if buf.is_empty() {
        return Err(ProtoError::Empty);
    }
    let rest = buf.strip_prefix(MAGIC).ok_or(ProtoError::MissingPrefix)?;
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| ProtoError::InvalidUtf8);
    for f in Fields::new(rest) {
        match f? {
            (1, Wire::Bytes(tm)) => {
                for f in Fields::new(tm) {
                    match f? {
                        (1, Wire::Bytes(b)) => env.api_version = text(b)?,
                        (2, Wire::Bytes(b)) => env.kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => env.raw = b,
            (3, Wire::Bytes(b)) if !b.is_empty() => {
                return Err(ProtoError::ContentEncoding(text(b)?));
            }
            _ => {}
        }
    }
    Ok(env)
}

/// Decodes a protobuf object (envelope included) to its JSON form with `apiVersion` and `kind`;
/// `expected` names the type when the envelope does not.
fn decode_envelope(
    buf: &[u8],
    expected: Option<(&str, &str)>,
    depth: usize,
) -> Result<Value, ProtoError> {
    let mut env = read_envelope(buf)?;
    if env.kind.is_empty()
        && let Some((api_version, kind)) = expected
    {
        env.api_version = api_version.to_string();
        env.kind = kind.to_string();
    }
    let msg = TABLE
        .kind(&env.api_version, &env.kind)
        .ok_or_else(|| ProtoError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let mut v = transcode::to_json(env.raw, msg, depth)?
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Value::Object(m) = &mut v {
        m.insert("apiVersion".into(), Value::String(env.api_version));
        m.insert("kind".into(), Value::String(env.kind));
    }
    Ok(v)
}

/// Whether a request's body is protobuf.
pub fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == MEDIA_TYPE)
}

/// The first bytes of a body for an error message, as kube-apiserver shows them.
fn summarize(data: &[u8]) -> String {
    const MAX: usize = 30;
    let (head, more) = (&data[..data.len().min(MAX)], data.len() > MAX);
    let text = match data.first() {
        None => return "<empty>".into(),
        Some(b'{') => String::from_utf8_lossy(head).to_string(),
        Some(_) => head.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if more { format!("{text} ...") } else { text }
}

/// Decodes a protobuf request body meant to be `kind` of `api_version`; the object is of the
/// kind its envelope names (the caller checks it as it checks a JSON body's type).
///
/// Errors: 400 BadRequest in kube-apiserver's words.
pub fn decode_request(body: &[u8], api_version: &str, kind: &str) -> ApiResult<Value> {
    let env = read_envelope(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {e} ({})",
            summarize(body)
        ))
    })?;
    let (got_version, got_kind) = if env.kind.is_empty() {
        (api_version.to_string(), kind.to_string())
    } else {
        (env.api_version.clone(), env.kind.clone())
    };
    decode_envelope(body, Some((api_version, kind)), 0).map_err(|e| {
        let version = got_version.rsplit('/').next().unwrap_or("");
        ApiError::bad_request(format!(
            "{got_kind} in version {version:?} cannot be handled as a {kind}: {e}"
        ))
    })
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    out
}

/// Encodes a JSON object (with `apiVersion` and `kind`) as a protobuf object.
///
/// Errors: the kind has no protobuf message, or a value does not fit its field.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ProtoError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    let msg = TABLE
        .kind(api_version, kind)
        .ok_or_else(|| ProtoError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    let mut raw = Vec::new();
    transcode::from_json(obj, msg, &mut raw, 0)?;
    Ok(envelope(api_version, kind, &raw))
}

/// One watch event (`{"type", "object"}`) as a length-prefixed `metav1.WatchEvent` frame.
fn watch_frame(event: &Value) -> Result<Vec<u8>, ProtoError> {
    let object = encode(&event["object"])?;
    let mut raw_ext = Vec::new();
    put_bytes(&mut raw_ext, 1, &object);
    let mut ev = Vec::new();
    put_bytes(
        &mut ev,
        1,
        event["type"].as_str().unwrap_or_default().as_bytes(),
    );
    put_bytes(&mut ev, 2, &raw_ext);
    let len = u32::try_from(ev.len()).map_err(|_| ProtoError::TooLarge)?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend(ev);
    Ok(frame)
}

/// How a reply is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON.
    Json,
    /// Protobuf.
    Protobuf,
}

/// Picks the reply's encoding from the `Accept` header, in the client's order of preference:
/// protobuf for built-in kinds when it comes before JSON; JSON otherwise (Tables included).
///
/// Errors: 406 NotAcceptable for a custom resource when the client accepts protobuf only.
pub fn negotiate(headers: &HeaderMap, res: &Resource) -> ApiResult<Encoding> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() || crate::table::wants_table(accept) {
        return Ok(Encoding::Json);
    }
    let mut ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|r| {
            let mut parts = r.split(';').map(str::trim);
            let base = parts.next()?.to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                match p.split_once('=') {
                    // Conversions (`as=Table`, `as=PartialObjectMetadata`) are not this range.
                    Some(("as", _)) => return None,
                    Some(("q", v)) => q = v.trim().parse().unwrap_or(0.0),
                    _ => {}
                }
            }
            Some((base, q))
        })
        .filter(|(_, q)| *q > 0.0)
        .collect();
    ranges.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut wanted_protobuf = false;
    for (base, _) in &ranges {
        match base.as_str() {
            "application/json" | "*/*" | "application/*" => return Ok(Encoding::Json),
            MEDIA_TYPE if !res.custom => return Ok(Encoding::Protobuf),
            MEDIA_TYPE => wanted_protobuf = true,
            _ => {}
        }
    }
    if wanted_protobuf && ranges.iter().all(|(b, _)| b == MEDIA_TYPE) {
        return Err(ApiError {
            code: 406,
            reason: "NotAcceptable",
            message:
                "only the following media types are accepted: application/json, application/yaml"
                    .into(),
            details: None,
        });
    }
    Ok(Encoding::Json)
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// Re-encodes a JSON reply in `enc`; a watch stream (`watch`, status 200) becomes a protobuf
/// watch stream. A reply whose object has no protobuf form stays JSON, which every client that
/// asks for protobuf also accepts.
pub async fn respond(enc: Encoding, resp: Response, watch: bool) -> Response {
    if enc == Encoding::Json || !is_json(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    if watch && parts.status == StatusCode::OK {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(WATCH_MEDIA_TYPE),
        );
        return Response::from_parts(parts, protobuf_watch(body));
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| encode(&v).ok());
    match encoded {
        Some(b) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(b))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// Turns a stream of JSON event lines into protobuf watch frames. An event that cannot be
/// encoded ends the watch with an ERROR event, as kube-apiserver ends it.
fn protobuf_watch(body: Body) -> Body {
    let state = (body.into_data_stream(), Vec::<u8>::new(), false);
    let frames = futures::stream::unfold(state, |(mut stream, mut buf, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let frame = serde_json::from_slice::<Value>(&line)
                    .map_err(|e| e.to_string())
                    .and_then(|ev| watch_frame(&ev).map_err(|e| e.to_string()));
                let (frame, end) = match frame {
                    Ok(f) => (f, false),
                    Err(e) => {
                        let status =
                            ApiError::internal(format!("unable to encode watch object: {e}"))
                                .to_status();
                        let ev = serde_json::json!({"type": "ERROR", "object": status});
                        (watch_frame(&ev).unwrap_or_default(), true)
                    }
                };
                return Some((Ok::<_, Infallible>(Bytes::from(frame)), (stream, buf, end)));
            }
            match stream.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    });
    Body::from_stream(frames)
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
mod tests;
