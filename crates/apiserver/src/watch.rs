//! Watch: a chunked stream of JSON event lines (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::handlers::{App, Ctx, list_prefix, present, selectors, served_text};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::{Event, Store, StoreError, Stored};

/// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// A BOOKMARK, of the watched kind or, for a metadata-only watch, of `PartialObjectMetadata`.
fn bookmark(ctx: &Ctx, rev: i64, initial_end: bool, partial: Option<&str>) -> Bytes {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object =
        json!({"kind": ctx.res.kind, "apiVersion": ctx.res.api_version(), "metadata": meta});
    match partial {
        Some(version) => line(
            "BOOKMARK",
            &crate::meta::partial_object_metadata(&object, version),
        ),
        None => line("BOOKMARK", &object),
    }
}

/// How long a read waits for a resourceVersion the store has not reached yet (kube-apiserver's
/// watch cache waits as long).
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Waits until the store reaches revision `want`, at most [`FRESHNESS_WAIT`].
///
/// Errors: kube-apiserver's `Too large resource version` timeout, with `retry_after`.
pub async fn wait_for_revision(store: &Store, want: i64, retry_after: u32) -> ApiResult<()> {
    // Subscribed before looking, so no write between the look and the wait is missed.
    let mut rx = store.subscribe();
    let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
    loop {
        if store.revision() >= want {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                let current = store.revision();
                if current >= want {
                    return Ok(());
                }
                return Err(ApiError::too_large_resource_version(
                    want,
                    current,
                    retry_after,
                ));
            }
        }
    }
}

/// A `200 OK` watch answer holding one ERROR event: kube-apiserver reports a watch that
/// cannot start this way rather than with an error status.
fn error_event(status: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        line("ERROR", status),
    )
        .into_response()
}

/// Turns stored writes into the event lines of one watch: applies the prefix and selectors
/// (a modification moving an object in or out of the selection becomes ADDED or DELETED) and
/// renders the object as the client asked (as stored, as a Table row, or as metadata only).
struct Emitter {
    prefix: String,
    ls: LabelSelector,
    fs: FieldSelector,
    as_table: bool,
    partial: Option<String>,
    sent_columns: bool,
}

impl Emitter {
    /// One event line, or None when the object is outside the watch. Objects are parsed only
    /// for selectors and Tables; otherwise the stored text is sent as is.
    fn event(
        &mut self,
        ctx: &Ctx,
        kind: &str,
        key: &str,
        raw: &str,
        prev: Option<&str>,
    ) -> Option<Bytes> {
        if !key.starts_with(&self.prefix) {
            return None;
        }
        let filter = !self.ls.is_empty() || !self.fs.is_empty();
        let parse = |r: &str| serde_json::from_str::<Value>(r).unwrap_or(Value::Null);
        let parsed = (filter || self.as_table || self.partial.is_some())
            .then(|| crate::handlers::view(parse(raw), &ctx.res));
        let mut kind = kind;
        if let Some(o) = &parsed
            && filter
        {
            let selected = |o: &Value| self.ls.matches(o) && self.fs.matches(o);
            let now_in = selected(o);
            let was_in = prev.map(|p| selected(&parse(p)));
            kind = match (kind, now_in, was_in) {
                (_, false, None | Some(false)) => return None,
                ("MODIFIED", true, Some(false)) => "ADDED",
                ("MODIFIED", false, Some(true)) => "DELETED",
                (k, _, _) => k,
            };
        }
        match (parsed, &self.partial) {
            (Some(o), _) if self.as_table => {
                let o = present(&o, &ctx.res);
                let rv = o["metadata"]["resourceVersion"].clone();
                let mut t = crate::handlers::table_of(ctx, &[o], json!({"resourceVersion": rv}));
                // kube-apiserver sends the column definitions with the first Table event only.
                if self.sent_columns {
                    t["columnDefinitions"] = json!([]);
                }
                self.sent_columns = true;
                Some(line(kind, &t))
            }
            (Some(o), Some(version)) => Some(line(
                kind,
                &crate::meta::partial_object_metadata(&o, version),
            )),
            _ => Some(Bytes::from(format!(
                "{{\"type\":\"{kind}\",\"object\":{}}}\n",
                served_text(raw, &ctx.res)
            ))),
        }
    }
}

/// What one watch streams, in order: the initial objects (and the initial-events-end
/// bookmark), the logged events after `from`, then live events until `timeout`.
struct Feed {
    initial: Vec<(String, Stored)>,
    backlog: Vec<Arc<Event>>,
    hub: broadcast::Receiver<Arc<Event>>,
    from: i64,
    send_initial: bool,
    bookmarks: bool,
    timeout: Duration,
}

/// Sends the feed's event lines to `tx` until the timeout, the client leaving or the watch
/// falling behind the store (an ERROR event: the client lists and watches again).
async fn stream(
    ctx: Ctx,
    store: Arc<Store>,
    mut emit: Emitter,
    feed: Feed,
    tx: mpsc::Sender<Bytes>,
) {
    let Feed {
        initial,
        backlog,
        mut hub,
        from,
        send_initial,
        bookmarks,
        timeout,
    } = feed;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = from;
    for (key, s) in &initial {
        if let Some(l) = emit.event(&ctx, "ADDED", key, &s.raw, None)
            && tx.send(l).await.is_err()
        {
            return;
        }
    }
    if send_initial
        && bookmarks
        && tx
            .send(bookmark(&ctx, from, true, emit.partial.as_deref()))
            .await
            .is_err()
    {
        return;
    }
    for ev in backlog {
        last = ev.rev;
        if let Some(l) = emit.event(&ctx, ev.kind.as_str(), &ev.key, &ev.raw, ev.prev.as_deref())
            && tx.send(l).await.is_err()
        {
            return;
        }
    }
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        let out = tokio::select! {
            ev = hub.recv() => match ev {
                Ok(ev) => {
                    if ev.rev <= last {
                        continue;
                    }
                    last = ev.rev;
                    match emit.event(&ctx, ev.kind.as_str(), &ev.key, &ev.raw, ev.prev.as_deref()) {
                        Some(l) => l,
                        None => continue,
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let status = ApiError::gone("the watch fell behind; list and watch again").to_status();
                    let _ = tx.send(line("ERROR", &status)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // A watch from a future revision gets no bookmark until the store is there.
            _ = tick.tick(), if bookmarks => {
                if last > store.revision() {
                    continue;
                }
                bookmark(&ctx, last, false, emit.partial.as_deref())
            }
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        };
        if tx.send(out).await.is_err() {
            return;
        }
    }
}

/// Serves `GET ...?watch=true`.
pub async fn watch(app: Arc<App>, ctx: Ctx) -> ApiResult<Response> {
    let (ls, fs) = selectors(&ctx)?;
    crate::handlers::resource_version(&ctx, true)?;
    let prefix = list_prefix(&ctx);
    let q = |k: &str| ctx.query.get(k).map(String::as_str).unwrap_or("");
    let rv_param = q("resourceVersion").to_string();
    let send_initial = q("sendInitialEvents") == "true";
    let bookmarks = q("allowWatchBookmarks") == "true";
    let timeout = q("timeoutSeconds")
        .parse::<u64>()
        .unwrap_or(1800)
        .clamp(1, 3600);
    // A watch that starts with the current state must see at least the revision asked for;
    // as in kube-apiserver the failure arrives as an ERROR event of the watch.
    if send_initial
        && let Ok(want) = rv_param.parse::<i64>()
        && let Err(e) = wait_for_revision(&app.store, want, 1).await
    {
        return Ok(error_event(&e.to_status()));
    }
    let (initial, from) = if rv_param.is_empty() || rv_param == "0" || send_initial {
        let (rev, items) = app.store.list(&prefix);
        (items, rev)
    } else {
        let rv = rv_param
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv_param:?}")))?;
        (Vec::new(), rv)
    };
    let (backlog, hub) = match app.store.watch(&prefix, from) {
        Ok(w) => w,
        Err(StoreError::Gone {
            requested,
            compacted,
        }) => {
            let status = ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            ));
            return Ok(error_event(&status.to_status()));
        }
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let as_table = ctx
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::table::wants_table);
    let emit = Emitter {
        partial: crate::handlers::wants_partial_metadata(&ctx, false),
        prefix,
        ls,
        fs,
        as_table,
        sent_columns: false,
    };
    let feed = Feed {
        initial,
        backlog,
        hub,
        from,
        send_initial,
        bookmarks,
        timeout: Duration::from_secs(timeout),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(stream(ctx, app.store.clone(), emit, feed, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
