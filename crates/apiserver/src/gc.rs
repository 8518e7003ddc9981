//! Background work: emptying deleted namespaces, garbage collection by ownerReferences
//! (background, foreground, orphan).
//!
//! Handlers send jobs; one worker task owns them so that a request never waits for cascades.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::handlers::{App, internal_ctx};
use crate::registry::Resource;
use crate::write::{delete_object, put};

/// Work for the collector.
#[derive(Debug)]
pub enum Job {
    /// Delete everything in the namespace, then the namespace.
    Namespace(String),
    /// The owner with this uid is gone: delete (or orphan) its dependents.
    Dependents {
        /// Owner uid.
        uid: String,
        /// `Background`, `Foreground` or `Orphan`.
        policy: String,
    },
    /// Foreground deletion: delete dependents, then drop the owner's `foregroundDeletion`.
    Foreground(Arc<Resource>, Arc<Value>),
}

fn resources(app: &App) -> Vec<Arc<Resource>> {
    let mut seen = BTreeSet::new();
    app.registry
        .all()
        .into_iter()
        .filter(|r| seen.insert(r.prefix()))
        .collect()
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

/// Whether any object names `owner` in its ownerReferences.
pub fn has_dependents(app: &App, owner: &Value) -> bool {
    let Some(uid) = owner["metadata"]["uid"].as_str() else {
        return false;
    };
    resources(app).iter().any(|r| {
        app.store
            .list(&r.prefix())
            .1
            .iter()
            .any(|(_, s)| s.raw.contains(uid) && owned_by(&s.obj(), uid))
    })
}

/// Queues collection of the dependents of a deleted object.
pub fn collect_dependents(app: &App, obj: &Value, policy: &str) {
    if let Some(uid) = obj["metadata"]["uid"].as_str() {
        let _ = app.gc.send(Job::Dependents {
            uid: uid.to_string(),
            policy: policy.to_string(),
        });
    }
}

/// Queues emptying of a terminating namespace.
pub fn spawn_namespace_cleanup(app: &App, name: String) {
    let _ = app.gc.send(Job::Namespace(name));
}

/// Queues a foreground deletion.
pub fn spawn_foreground(app: &App, res: Arc<Resource>, obj: Arc<Value>) {
    let _ = app.gc.send(Job::Foreground(res, obj));
}

/// Runs the collector until the channel closes.
pub fn spawn_worker(
    app: Arc<App>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let app = app.clone();
            // Each job may wait on finalizers held by clients; run them independently.
            tokio::spawn(async move {
                match job {
                    Job::Namespace(ns) => empty_namespace(&app, &ns).await,
                    Job::Dependents { uid, policy } => dependents(&app, &uid, &policy).await,
                    Job::Foreground(res, obj) => foreground(&app, res, obj).await,
                }
            });
        }
    })
}

async fn dependents(app: &App, uid: &str, policy: &str) {
    for r in resources(app) {
        let (_, items) = app.store.list(&r.prefix());
        for (key, s) in items {
            // The text check spares parsing every object for every deletion.
            if !s.raw.contains(uid) || !owned_by(&s.obj(), uid) {
                continue;
            }
            if policy == "Orphan" {
                let mut o = s.obj();
                if let Some(a) = o["metadata"]["ownerReferences"].as_array_mut() {
                    a.retain(|r| r["uid"].as_str() != Some(uid));
                }
                let _ = put(app, key, o, false, Some(s.rev)).await;
            } else {
                let o = s.obj();
                let (name, ns) = crate::meta::name_of(&o);
                let ctx = internal_ctx(r.clone(), ns, name);
                let _ = delete_object(app, &ctx, &json!({"propagationPolicy": "Background"})).await;
            }
        }
    }
}

async fn foreground(app: &App, res: Arc<Resource>, obj: Arc<Value>) {
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
    loop {
        dependents(app, &uid, "Background").await;
        if !has_dependents(app, &obj) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (name, ns) = crate::meta::name_of(&obj);
    let key = res.key(ns, name);
    let Some(cur) = app.store.get(&key) else {
        return;
    };
    let mut o = cur.obj();
    if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
        a.retain(|f| f != "foregroundDeletion");
    }
    if crate::meta::has_finalizers(&o) {
        let _ = put(app, key, o, false, Some(cur.rev)).await;
    } else {
        let _ = app.store.delete(&key, Some(cur.rev));
    }
}

async fn empty_namespace(app: &App, ns: &str) {
    let ns_res = app
        .registry
        .lookup("", "v1", "namespaces")
        .expect("namespaces are built in");
    let ns_key = ns_res.key("", ns);
    loop {
        let Some(cur) = app.store.get(&ns_key) else {
            return;
        };
        if cur.obj()["metadata"]["deletionTimestamp"].is_null() {
            return;
        }
        let mut left = 0;
        for r in resources(app).into_iter().filter(|r| r.namespaced) {
            let (_, items) = app.store.list(&format!("{}{ns}/", r.prefix()));
            for (_, s) in items {
                left += 1;
                if s.obj()["metadata"]["deletionTimestamp"].is_string() {
                    continue;
                }
                let o = s.obj();
                let (name, _) = crate::meta::name_of(&o);
                let ctx = internal_ctx(r.clone(), ns, name);
                let _ = delete_object(app, &ctx, &json!({})).await;
            }
        }
        if left == 0 {
            let _ = app.store.delete(&ns_key, Some(cur.rev));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
