//! The distribution spec's HTTP API over a [`Store`]. Repository names contain `/`, so one
//! handler reads the route from the path's end (`.../blobs/<digest>`, `.../manifests/<ref>`, ...)
//! and checks every part before it reaches the store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::Limits;
use crate::names::{self, Algorithm, Digest, Reference};
use crate::store::{Manifest, Store, subject_of};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Most referrers one response lists (the spec allows a registry to bound the list).
const MAX_REFERRERS: usize = 10_000;
/// Most `?tag=` parameters one manifest push may carry.
const MAX_TAGS_PER_PUSH: usize = 100;

/// The registry's state behind the router.
pub struct Registry {
    store: Store,
    limits: Limits,
    sessions: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<Session>>>>,
}

/// An upload in progress.
struct Session {
    name: String,
    path: PathBuf,
    size: u64,
    touched: Instant,
}

/// A spec error: status and one `errors[]` entry.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> ApiError {
        tracing::error!(%error, "registry storage");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "storage error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

type Reply = Result<Response, ApiError>;

fn name_unknown(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        format!("repository {name} is not known to the registry"),
    )
}

fn digest_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", message)
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported",
    )
}

/// What a path names, its parts not yet validated.
#[derive(Debug, PartialEq)]
enum Route<'a> {
    Base,
    Blob(&'a str, &'a str),
    Uploads(&'a str),
    Upload(&'a str, &'a str),
    Manifest(&'a str, &'a str),
    Tags(&'a str),
    Referrers(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::Uploads(name));
    }
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "blobs" => Some(Route::Blob(name, last)),
        "manifests" => Some(Route::Manifest(name, last)),
        "referrers" => Some(Route::Referrers(name, last)),
        "tags" if last == "list" => Some(Route::Tags(name)),
        "uploads" => name
            .strip_suffix("/blobs")
            .map(|name| Route::Upload(name, last)),
        _ => None,
    }
}

fn checked_name(name: &str) -> Result<&str, ApiError> {
    if names::valid_name(name) {
        Ok(name)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        ))
    }
}

fn checked_digest(text: &str) -> Result<Digest, ApiError> {
    Digest::parse(text).ok_or_else(|| digest_invalid(format!("invalid digest {text:?}")))
}

fn query(request: &Request) -> Vec<(String, String)> {
    Query::<Vec<(String, String)>>::try_from_uri(request.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn response(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

fn finish(builder: axum::http::response::Builder, body: Body) -> Reply {
    builder.body(body).map_err(|error| {
        tracing::error!(%error, "registry response");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "response error",
        )
    })
}

/// The one handler of the router.
pub async fn dispatch(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    match registry.handle(request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

impl Registry {
    /// The registry over `store`.
    pub fn new(store: Store, limits: Limits) -> Registry {
        Registry {
            store,
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    async fn handle(&self, request: Request) -> Reply {
        let path = request.uri().path().to_string();
        let Some(route) = route(&path) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "no such endpoint",
            ));
        };
        let method = request.method().clone();
        let head = method == Method::HEAD;
        match (route, method) {
            (Route::Base, Method::GET | Method::HEAD) => finish(
                response(StatusCode::OK).header(header::CONTENT_TYPE, "application/json"),
                Body::from("{}"),
            ),
            (Route::Blob(name, digest), Method::GET | Method::HEAD) => {
                let range = request.headers().get(header::RANGE).cloned();
                self.get_blob(checked_name(name)?, &checked_digest(digest)?, head, range)
                    .await
            }
            (Route::Blob(name, digest), Method::DELETE) => {
                self.delete_blob(checked_name(name)?, &checked_digest(digest)?)
                    .await
            }
            (Route::Uploads(name), Method::POST) => {
                let name = checked_name(name)?.to_string();
                self.start_upload(&name, request).await
            }
            (Route::Upload(name, id), method) => {
                let name = checked_name(name)?.to_string();
                let id = id.to_string();
                self.upload(&name, &id, method, request).await
            }
            (Route::Manifest(name, reference), Method::GET | Method::HEAD) => {
                self.get_manifest(checked_name(name)?, reference, head)
                    .await
            }
            (Route::Manifest(name, reference), Method::PUT) => {
                let (name, reference) = (checked_name(name)?.to_string(), reference.to_string());
                self.put_manifest(&name, &reference, request).await
            }
            (Route::Manifest(name, reference), Method::DELETE) => {
                self.delete_manifest(checked_name(name)?, reference).await
            }
            (Route::Tags(name), Method::GET) => {
                let query = query(&request);
                self.tags(checked_name(name)?, &query).await
            }
            (Route::Referrers(name, digest), Method::GET) => {
                let query = query(&request);
                let filter = param(&query, "artifactType");
                self.referrers(checked_name(name)?, &checked_digest(digest)?, filter)
                    .await
            }
            _ => Err(unsupported()),
        }
    }

    async fn get_blob(
        &self,
        name: &str,
        digest: &Digest,
        head: bool,
        range: Option<HeaderValue>,
    ) -> Reply {
        let Some(size) = self.store.blob_size(name, digest).await? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob {digest} is not in {name}"),
            ));
        };
        let builder = response(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("Docker-Content-Digest", digest.to_string())
            .header(header::ACCEPT_RANGES, "bytes");
        if head {
            return finish(builder.header(header::CONTENT_LENGTH, size), Body::empty());
        }
        let mut file = self.store.open_blob(digest).await?;
        let Some(range) = range.as_ref().and_then(|r| r.to_str().ok()) else {
            let stream = tokio_util::io::ReaderStream::new(file);
            return finish(
                builder.header(header::CONTENT_LENGTH, size),
                Body::from_stream(stream),
            );
        };
        let Some((start, end)) = byte_range(range, size) else {
            return finish(
                response(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_LENGTH, 0),
                Body::empty(),
            );
        };
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let length = end - start + 1;
        let stream = tokio_util::io::ReaderStream::new(tokio::io::AsyncReadExt::take(file, length));
        finish(
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_LENGTH, length)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}")),
            Body::from_stream(stream),
        )
    }

    async fn delete_blob(&self, name: &str, digest: &Digest) -> Reply {
        if !self.store.unlink_blob(name, digest).await? {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob {digest} is not in {name}"),
            ));
        }
        finish(response(StatusCode::ACCEPTED), Body::empty())
    }

    fn blob_created(name: &str, digest: &Digest) -> Reply {
        finish(
            response(StatusCode::CREATED)
                .header(header::LOCATION, format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest.to_string())
                .header(header::CONTENT_LENGTH, 0),
            Body::empty(),
        )
    }

    fn upload_status(name: &str, id: &uuid::Uuid, size: u64, status: StatusCode) -> Reply {
        // distribution's spelling: an empty upload is `0-0` too.
        let end = size.saturating_sub(1);
        finish(
            response(status)
                .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
                .header(header::RANGE, format!("0-{end}"))
                .header("Docker-Upload-UUID", id.to_string())
                .header(header::CONTENT_LENGTH, 0),
            Body::empty(),
        )
    }

    /// POST `.../blobs/uploads/`: a mount, a monolithic upload (`?digest=`), or a new session.
    async fn start_upload(&self, name: &str, request: Request) -> Reply {
        let query = query(&request);
        if let Some(mount) = param(&query, "mount") {
            let digest = checked_digest(mount)?;
            let from = param(&query, "from").filter(|from| names::valid_name(from));
            // Without `from` (an anonymous mount) any stored copy will do: pulls are
            // anonymous too, so this reveals nothing a pull would not.
            let mountable = match from {
                Some(from) => self.store.blob_size(from, &digest).await?.is_some(),
                None => self.store.blob_stored(&digest).await,
            };
            if mountable {
                self.store.link_blob(name, &digest).await?;
                return Self::blob_created(name, &digest);
            }
        }
        if let Some(digest) = param(&query, "digest") {
            let digest = checked_digest(digest)?;
            let path = self.store.upload_path(&uuid::Uuid::new_v4());
            let written = self.append(&path, 0, request.into_body()).await;
            if let Err(error) = written {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(error);
            }
            return self.commit(name, &path, &digest).await;
        }
        let id = self.new_session(name).await?;
        Self::upload_status(name, &id, 0, StatusCode::ACCEPTED)
    }

    async fn commit(&self, name: &str, path: &std::path::Path, digest: &Digest) -> Reply {
        if self.store.commit_upload(path, digest, name).await? {
            Self::blob_created(name, digest)
        } else {
            Err(digest_invalid(format!(
                "the uploaded content does not match {digest}"
            )))
        }
    }

    /// Appends `body` to the file at `path` holding `size` bytes, within the blob size limit;
    /// returns the new size.
    async fn append(&self, path: &std::path::Path, size: u64, body: Body) -> Result<u64, ApiError> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let mut size = size;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    e.to_string(),
                )
            })?;
            size += chunk.len() as u64;
            if size > self.limits.max_blob_size {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    format!("blobs are limited to {} bytes", self.limits.max_blob_size),
                ));
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(size)
    }

    /// Opens a session, after ending the expired ones; refused when too many are open.
    async fn new_session(&self, name: &str) -> Result<uuid::Uuid, ApiError> {
        let id = uuid::Uuid::new_v4();
        let path = self.store.upload_path(&id);
        let expired = {
            let mut sessions = self
                .sessions
                .lock()
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "lock"))?;
            let mut expired = Vec::new();
            let timeout = self.limits.upload_timeout;
            sessions.retain(|id, session| {
                // A session busy with a request is not idle.
                let idle = session
                    .try_lock()
                    .map(|s| s.touched.elapsed() > timeout)
                    .unwrap_or(false);
                if idle {
                    expired.push(*id);
                }
                !idle
            });
            if sessions.len() >= self.limits.max_upload_sessions {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOOMANYREQUESTS",
                    "too many uploads in progress",
                ));
            }
            sessions.insert(
                id,
                Arc::new(tokio::sync::Mutex::new(Session {
                    name: name.to_string(),
                    path: path.clone(),
                    size: 0,
                    touched: Instant::now(),
                })),
            );
            expired
        };
        for old in expired {
            let _ = tokio::fs::remove_file(self.store.upload_path(&old)).await;
        }
        tokio::fs::write(&path, b"").await?;
        Ok(id)
    }

    fn session(
        &self,
        name: &str,
        id: &str,
    ) -> Result<(uuid::Uuid, Arc<tokio::sync::Mutex<Session>>), ApiError> {
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "no such upload",
            )
        };
        let id = uuid::Uuid::parse_str(id).map_err(|_| unknown())?;
        let sessions = self
            .sessions
            .lock()
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "lock"))?;
        let session = sessions.get(&id).cloned().ok_or_else(unknown)?;
        drop(sessions);
        if session.try_lock().map(|s| s.name != name).unwrap_or(false) {
            return Err(unknown());
        }
        Ok((id, session))
    }

    fn end_session(&self, id: &uuid::Uuid) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(id);
        }
    }

    /// GET, PATCH, PUT or DELETE of an upload session.
    async fn upload(&self, name: &str, id: &str, method: Method, request: Request) -> Reply {
        let (id, session) = self.session(name, id)?;
        let mut session = session.lock().await;
        if session.name != name {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "no such upload",
            ));
        }
        session.touched = Instant::now();
        match method {
            Method::GET | Method::HEAD => {
                Self::upload_status(name, &id, session.size, StatusCode::NO_CONTENT)
            }
            Method::PATCH => {
                check_chunk_start(request.headers(), session.size)?;
                let path = session.path.clone();
                let size = self.append(&path, session.size, request.into_body()).await;
                match size {
                    Ok(size) => {
                        session.size = size;
                        Self::upload_status(name, &id, size, StatusCode::ACCEPTED)
                    }
                    Err(error) => {
                        self.end_session(&id);
                        let _ = tokio::fs::remove_file(&path).await;
                        Err(error)
                    }
                }
            }
            Method::PUT => {
                let query = query(&request);
                let digest = param(&query, "digest")
                    .ok_or_else(|| digest_invalid("the digest parameter is missing"))
                    .and_then(checked_digest)?;
                if request.headers().contains_key(header::CONTENT_RANGE) {
                    check_chunk_start(request.headers(), session.size)?;
                }
                let path = session.path.clone();
                self.end_session(&id);
                if let Err(error) = self.append(&path, session.size, request.into_body()).await {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(error);
                }
                self.commit(name, &path, &digest).await
            }
            Method::DELETE => {
                self.end_session(&id);
                let _ = tokio::fs::remove_file(&session.path).await;
                finish(response(StatusCode::NO_CONTENT), Body::empty())
            }
            _ => Err(unsupported()),
        }
    }

    async fn get_manifest(&self, name: &str, reference: &str, head: bool) -> Reply {
        let reference = Reference::parse(reference).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                "invalid reference",
            )
        })?;
        let Some(manifest) = self.store.manifest(name, &reference).await? else {
            if !self.store.repository_exists(name).await {
                return Err(name_unknown(name));
            }
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ));
        };
        let builder = response(StatusCode::OK)
            .header(header::CONTENT_TYPE, manifest.media_type)
            .header("Docker-Content-Digest", manifest.digest.to_string())
            .header(header::CONTENT_LENGTH, manifest.bytes.len());
        let body = if head {
            Body::empty()
        } else {
            Body::from(manifest.bytes)
        };
        finish(builder, body)
    }

    async fn put_manifest(&self, name: &str, reference: &str, request: Request) -> Reply {
        let reference = Reference::parse(reference).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                "invalid tag or digest",
            )
        })?;
        let query = query(&request);
        let mut tags = Vec::new();
        if let Reference::Tag(tag) = &reference {
            tags.push(tag.clone());
        }
        for (_, tag) in query.iter().filter(|(k, _)| k == "tag") {
            if tags.len() >= MAX_TAGS_PER_PUSH {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    format!("at most {MAX_TAGS_PER_PUSH} tags per push"),
                ));
            }
            if !names::valid_tag(tag) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    "invalid tag",
                ));
            }
            tags.push(tag.clone());
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
        let bytes = axum::body::to_bytes(request.into_body(), self.limits.max_manifest_size)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    format!(
                        "manifests are limited to {} bytes",
                        self.limits.max_manifest_size
                    ),
                )
            })?;
        let invalid = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m);
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|_| invalid("the manifest is not JSON"))?;
        if !value.is_object() {
            return Err(invalid("the manifest is not a JSON object"));
        }
        let body_type = value.get("mediaType").and_then(Value::as_str);
        if let (Some(body_type), Some(header_type)) = (body_type, content_type.as_deref())
            && body_type != header_type
        {
            return Err(invalid(
                "the Content-Type differs from the manifest's mediaType",
            ));
        }
        let media_type = content_type
            .or(body_type.map(str::to_string))
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        let digest = match &reference {
            Reference::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), &bytes);
                if actual != *expected {
                    return Err(digest_invalid(format!(
                        "the manifest's digest is {actual}, not {expected}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
        };
        let subject = subject_of(&bytes);
        let descriptor = descriptor(&value, &media_type, &digest, bytes.len());
        let manifest = Manifest {
            digest,
            media_type,
            bytes: bytes.to_vec(),
        };
        self.store
            .put_manifest(
                name,
                &manifest,
                &tags,
                subject.as_ref().map(|s| (s, &descriptor)),
            )
            .await?;
        let mut builder = response(StatusCode::CREATED)
            .header(
                header::LOCATION,
                format!("/v2/{name}/manifests/{}", manifest.digest),
            )
            .header("Docker-Content-Digest", manifest.digest.to_string())
            .header(header::CONTENT_LENGTH, 0);
        if let Some(subject) = subject {
            builder = builder.header("OCI-Subject", subject.to_string());
        }
        // The tags a push by digest applied (`?tag=`), as the spec's tag parameter asks.
        if matches!(reference, Reference::Digest(_)) {
            for tag in &tags {
                builder = builder.header("OCI-Tag", tag.as_str());
            }
        }
        finish(builder, Body::empty())
    }

    async fn delete_manifest(&self, name: &str, reference: &str) -> Reply {
        let deleted = match Reference::parse(reference) {
            Some(Reference::Digest(digest)) => self.store.delete_manifest(name, &digest).await?,
            Some(Reference::Tag(tag)) => self.store.delete_tag(name, &tag).await?,
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MANIFEST_INVALID",
                    "invalid reference",
                ));
            }
        };
        if !deleted {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ));
        }
        finish(response(StatusCode::ACCEPTED), Body::empty())
    }

    async fn tags(&self, name: &str, query: &[(String, String)]) -> Reply {
        let Some(tags) = self.store.tags(name).await? else {
            return Err(name_unknown(name));
        };
        let n = match param(query, "n") {
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "PAGINATION_NUMBER_INVALID",
                    "invalid n",
                )
            })?),
            None => None,
        };
        let last = param(query, "last");
        let (page, more) = names::paginate(&tags, n, last);
        let body = json!({"name": name, "tags": page});
        let mut builder = response(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
        if let (true, Some(n), Some(last)) = (more, n, page.last()) {
            builder = builder.header(
                header::LINK,
                format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""),
            );
        }
        finish(builder, Body::from(body.to_string()))
    }

    async fn referrers(&self, name: &str, subject: &Digest, filter: Option<&str>) -> Reply {
        let mut manifests = self.store.referrers(name, subject, MAX_REFERRERS).await?;
        let mut builder = response(StatusCode::OK).header(header::CONTENT_TYPE, OCI_INDEX);
        if let Some(filter) = filter {
            manifests.retain(|d| d.get("artifactType").and_then(Value::as_str) == Some(filter));
            builder = builder.header("OCI-Filters-Applied", "artifactType");
        }
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        finish(builder, Body::from(body.to_string()))
    }
}

/// A referrer's descriptor: its `artifactType` is the manifest's, else (an image manifest's)
/// its config's media type; annotations are copied.
fn descriptor(manifest: &Value, media_type: &str, digest: &Digest, size: usize) -> Value {
    let mut descriptor =
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": size});
    let artifact_type = manifest
        .get("artifactType")
        .or_else(|| manifest.get("config").and_then(|c| c.get("mediaType")))
        .and_then(Value::as_str);
    if let Some(artifact_type) = artifact_type {
        descriptor["artifactType"] = json!(artifact_type);
    }
    if let Some(annotations) = manifest.get("annotations").filter(|a| a.is_object()) {
        descriptor["annotations"] = annotations.clone();
    }
    descriptor
}

/// A chunk must start where the upload ends: 416 otherwise.
fn check_chunk_start(headers: &HeaderMap, size: u64) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let start = value
        .to_str()
        .ok()
        .and_then(names::parse_content_range)
        .map(|(start, _)| start);
    if start != Some(size) {
        return Err(ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            format!("the chunk must start at byte {size}"),
        ));
    }
    Ok(())
}

/// A `Range: bytes=<start>-[<end>]` or `bytes=-<suffix length>` within a blob of `size`
/// bytes, as an inclusive pair clamped to the blob; `None` when unsatisfiable or malformed
/// (one range only: multipart answers are not worth their cost here).
fn byte_range(text: &str, size: u64) -> Option<(u64, u64)> {
    let (start, end) = text.trim().strip_prefix("bytes=")?.split_once('-')?;
    let last = size.checked_sub(1)?;
    if start.is_empty() {
        let suffix: u64 = end.parse().ok()?;
        return (suffix > 0).then(|| (size.saturating_sub(suffix), last));
    }
    let start: u64 = start.parse().ok()?;
    let end: u64 = if end.is_empty() {
        last
    } else {
        end.parse::<u64>().ok()?.min(last)
    };
    (start <= end).then_some((start, end))
}

/// Idle time after which an upload session ends.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_from_the_path_end_so_names_may_contain_kind_words() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(
            route("/v2/a/blobs/x/manifests/latest"),
            Some(Route::Manifest("a/blobs/x", "latest"))
        );
        assert_eq!(route("/v2/a/b/blobs/uploads/"), Some(Route::Uploads("a/b")));
        assert_eq!(
            route("/v2/a/blobs/uploads/123"),
            Some(Route::Upload("a", "123"))
        );
        assert_eq!(route("/v2/a/tags/list"), Some(Route::Tags("a")));
        assert_eq!(route("/v2/a/tags/other"), None);
        assert_eq!(
            route("/v2/a/referrers/sha256:x"),
            Some(Route::Referrers("a", "sha256:x"))
        );
        assert_eq!(route("/v3/a/tags/list"), None);
        assert_eq!(route("/v2/x"), None);
    }

    #[test]
    fn byte_ranges_are_clamped_to_the_blob() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=90-200", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=0-", 0), None);
        assert_eq!(byte_range("items=0-1", 10), None);
        assert_eq!(byte_range("bytes=-30", 100), Some((70, 99)));
        assert_eq!(byte_range("bytes=-300", 100), Some((0, 99)));
        assert_eq!(byte_range("bytes=-0", 100), None);
        assert_eq!(byte_range("bytes=50-10", 100), None);
    }

    #[test]
    fn referrer_descriptors_take_the_config_type_when_no_artifact_type() {
        let digest = Digest::of(Algorithm::Sha256, b"m");
        let image =
            json!({"config": {"mediaType": "application/x.sig"}, "annotations": {"a": "b"}});
        let d = descriptor(&image, OCI_MANIFEST, &digest, 1);
        assert_eq!(d["artifactType"], "application/x.sig");
        assert_eq!(d["annotations"]["a"], "b");
        let artifact = json!({"artifactType": "application/x.sbom", "config": {"mediaType": "c"}});
        let d = descriptor(&artifact, OCI_MANIFEST, &digest, 1);
        assert_eq!(d["artifactType"], "application/x.sbom");
        assert!(
            descriptor(&json!({}), OCI_INDEX, &digest, 1)
                .get("artifactType")
                .is_none()
        );
    }
}
