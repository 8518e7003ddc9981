//! `ferroflux get ... --watch`: the rows of one kind as the API server reports each object
//! (first its current objects, then every change), one row per event, the header with the first
//! only, as `flux get --watch` prints them; ends after `--timeout` with flux's
//! "timed out waiting for the condition".

use std::process::ExitCode;

use anyhow::bail;
use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};

use super::cluster::ClusterArgs;
use super::get::{self, Query, Shown};
use crate::table;

pub fn run(cluster: &ClusterArgs, kinds: &[Shown], query: &Query<'_>) -> anyhow::Result<ExitCode> {
    let [shown] = kinds else {
        bail!("expected a single resource type, but found all");
    };
    let shown = *shown;
    let timeout = cluster.timeout()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = cluster.client().await?;
        match tokio::time::timeout(timeout, watch(&client, shown, query)).await {
            Ok(result) => result.map(|()| ExitCode::SUCCESS),
            Err(_) => bail!("timed out waiting for the condition"),
        }
    })
}

async fn watch(client: &kube::Client, shown: Shown, query: &Query<'_>) -> anyhow::Result<()> {
    let resource = shown.resource();
    let api: Api<DynamicObject> = match query.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut params = WatchParams::default();
    if let Some(name) = query.name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    if let Some(selector) = query.label_selector {
        params = params.labels(selector);
    }
    let with_namespace = query.namespace.is_none();
    let mut first = true;
    // "0": the API server first sends every current object as ADDED, as a client-go watch
    // without a resource version starts.
    let mut version = "0".to_string();
    loop {
        let mut events = api.watch(&params, &version).await?.boxed();
        while let Some(event) = events.try_next().await? {
            let object = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
                WatchEvent::Bookmark(bookmark) => {
                    version = bookmark.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    // Expired: start again from the current objects.
                    version = "0".to_string();
                    break;
                }
                WatchEvent::Error(status) => bail!("{}", status.message),
            };
            if let Some(v) = &object.metadata.resource_version {
                version.clone_from(v);
            }
            let object = serde_json::to_value(object)?;
            let selected = query
                .status
                .as_ref()
                .is_none_or(|(condition, status, negated)| {
                    shown.status_matches(&object, condition, status) != *negated
                });
            let rows: Vec<Vec<String>> = if selected {
                vec![get::row(shown, &object, with_namespace, false)]
            } else {
                Vec::new()
            };
            let header = if first && query.header {
                shown.header(with_namespace)
            } else {
                Vec::new()
            };
            first = false;
            out!("{}", table::render(&header, &rows))?;
        }
    }
}
