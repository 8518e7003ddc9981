//! kube-rs against the server over HTTPS: typed, dynamic, watcher, server-side apply.

mod common;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}
    }))
    .expect("valid deployment")
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

/// Asserts `e` is an API error with `code` and a message holding every one of `parts`; the
/// error's reason.
fn assert_api_error(e: kube::Error, code: u16, parts: &[&str]) -> String {
    match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, code, "{}", s.message);
            assert!(parts.iter().all(|p| s.message.contains(p)), "{}", s.message);
            s.reason.clone()
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn typed_deployment_crud_and_concurrency() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let created = api
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let (code, reason) = api_error(
        api.create(&PostParams::default(), &deployment("web", 1))
            .await
            .expect_err("duplicate"),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    api.create(&PostParams::default(), &deployment("other", 2))
        .await
        .expect("create other");
    let listed = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let listed = api
        .list(&ListParams::default().fields("metadata.name=other"))
        .await
        .expect("list");
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("other"));
    let page = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 1);
    let token = page.metadata.continue_.clone().expect("continue token");
    let page2 = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(page2.items.len(), 1);
    assert_ne!(page.items[0].metadata.name, page2.items[0].metadata.name);

    // A stale resourceVersion is refused.
    let mut stale = created.clone();
    let mut fresh = api.get("web").await.expect("get");
    fresh.spec.as_mut().expect("spec").replicas = Some(3);
    let replaced = api
        .replace("web", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_eq!(
        replaced.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    stale.spec.as_mut().expect("spec").replicas = Some(4);
    let (code, reason) = api_error(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // Status writes and label changes do not bump the generation.
    let st = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}})),
        )
        .await
        .expect("status");
    assert_eq!(st.metadata.generation, Some(2));
    assert_eq!(st.status.and_then(|s| s.replicas), Some(3));
    let labeled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label");
    assert_eq!(labeled.metadata.generation, Some(2));
    let ignored = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .expect("status through main resource");
    assert_eq!(
        ignored.status.and_then(|s| s.replicas),
        Some(3),
        "main resource keeps status"
    );

    // The selector is immutable (Flux's force-apply recreates on this error).
    let err = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"matchLabels": {"app": "other"}}}})),
        )
        .await
        .expect_err("immutable");
    assert_api_error(err, 422, &["spec.selector", "field is immutable"]);

    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    let (code, _) = api_error(api.get("web").await.expect_err("gone"));
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_conflicts_and_force() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let ssa = |m: &str| PatchParams::apply(m);
    let d = api
        .patch("app", &ssa("alice"), &Patch::Apply(deployment("app", 1)))
        .await
        .expect("apply creates");
    assert_eq!(d.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
    let again = api
        .patch("app", &ssa("alice"), &Patch::Apply(deployment("app", 1)))
        .await
        .expect("same apply");
    assert_eq!(
        again.metadata.resource_version, d.metadata.resource_version,
        "a no-op apply writes nothing"
    );
    let err = api
        .patch("app", &ssa("bob"), &Patch::Apply(deployment("app", 2)))
        .await
        .expect_err("conflict");
    assert_api_error(err, 409, &["alice", ".spec.replicas"]);
    let forced = api
        .patch(
            "app",
            &ssa("bob").force(),
            &Patch::Apply(deployment("app", 2)),
        )
        .await
        .expect("force");
    assert_eq!(forced.spec.as_ref().and_then(|s| s.replicas), Some(2));
    // alice stops applying the label she shared with bob: it stays; bob drops it: it goes.
    let mut no_labels = deployment("app", 2);
    no_labels.metadata.labels = None;
    let after = api
        .patch("app", &ssa("alice"), &Patch::Apply(no_labels.clone()))
        .await
        .expect("alice reapplies");
    assert!(after.metadata.labels.is_some(), "bob still owns the label");
    let after = api
        .patch("app", &ssa("bob"), &Patch::Apply(no_labels))
        .await
        .expect("bob reapplies");
    assert!(
        after.metadata.labels.is_none_or(|l| l.is_empty()),
        "nobody owns the label any more"
    );
    // A status apply owns status fields under its own entry (subresource "status").
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"}, "status": {"replicas": 2}});
    let st = api
        .patch_status("app", &ssa("status-writer"), &Patch::Apply(status))
        .await
        .expect("status apply");
    assert_eq!(st.status.as_ref().and_then(|s| s.replicas), Some(2));
    let entry = st
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("status-writer"))
        .expect("status manager entry");
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert!(
        entry
            .fields_v1
            .map(|f| f.0.to_string())
            .unwrap_or_default()
            .contains("f:replicas")
    );
    // dryRun=All leaves the store unchanged.
    let dry = api
        .patch(
            "app",
            &ssa("bob").force().dry_run(),
            &Patch::Apply(deployment("app", 7)),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.spec.as_ref().and_then(|s| s.replicas), Some(7));
    let live = api.get("app").await.expect("get");
    assert_eq!(live.spec.as_ref().and_then(|s| s.replicas), Some(2));
    server.shutdown().await;
}

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.ferroflux.io"},
        "spec": {"group": "test.ferroflux.io", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["url"], "properties": {
                        "url": {"type": "string"},
                        "interval": {"type": "string", "default": "5m"},
                        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    }))
    .expect("valid CRD")
}

#[tokio::test]
async fn dynamic_objects_through_discovery() {
    let (_dir, server, client) = common::start_with_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &crd())
        .await
        .expect("create CRD");
    let conds = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let gvk = GroupVersionKind::gvk("test.ferroflux.io", "v1", "Gadget");
    let (ar, caps) = discovery.resolve_gvk(&gvk).expect("served after creation");
    assert_eq!(ar.plural, "gadgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.ferroflux.io/v1", "kind": "Gadget", "metadata": {"name": "g1"},
        "spec": {"url": "https://x", "unknown": true, "items": [{"name": "a", "v": 1}]},
        "status": {"ignored": true}
    }))
    .expect("object");
    let g = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create gadget");
    assert_eq!(g.data["spec"]["interval"], "5m", "defaulted");
    assert!(g.data["spec"].get("unknown").is_none(), "pruned");
    assert!(
        g.data.get("status").is_none(),
        "status is set through the subresource only"
    );

    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.ferroflux.io/v1", "kind": "Gadget", "metadata": {"name": "g2"}, "spec": {"interval": 3}
    }))
    .expect("object");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("invalid");
    let reason = assert_api_error(err, 422, &["spec.url", "spec.interval"]);
    assert_eq!(reason, "Invalid");

    // Server-side apply merges the list-map by its key.
    let pp = PatchParams::apply("m2");
    let p: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.ferroflux.io/v1", "kind": "Gadget", "metadata": {"name": "g1"},
        "spec": {"url": "https://x", "items": [{"name": "b", "v": 2}]}
    }))
    .expect("object");
    let merged = api.patch("g1", &pp, &Patch::Apply(p)).await.expect("apply");
    assert_eq!(
        merged.data["spec"]["items"].as_array().map(Vec::len),
        Some(2)
    );

    // Deleting the CRD removes its objects and stops serving it.
    crds.delete("gadgets.test.ferroflux.io", &DeleteParams::default())
        .await
        .expect("delete CRD");
    let err = api
        .list(&ListParams::default())
        .await
        .expect_err("no longer served");
    assert_eq!(api_error(err).0, 404);
    assert_eq!(
        server.store.count(&format!(
            "{}test.ferroflux.io/gadgets/",
            ferroflux_apiserver::registry::CUSTOM_ROOT
        )),
        0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::start(dir.path(), None).await;
    let addr = server.addr;
    let client = common::client(&server.kubeconfig).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |n: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n}, "data": {"k": n}})).expect("cm")
    };
    api.create(&PostParams::default(), &cm("before"))
        .await
        .expect("create");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let w = api.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(w, watcher::Config::default())
            .default_backoff()
            .boxed();
        // Errors while the server is down are expected; the watcher retries.
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev {
                let _ = tx.send(o.metadata.name.unwrap_or_default());
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("initial")
        .expect("name");
    assert_eq!(first, "before");
    server.shutdown().await;
    let server = common::start(dir.path(), Some(addr)).await;
    api.create(&PostParams::default(), &cm("after"))
        .await
        .expect("create after restart");
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(n) = rx.recv().await {
            if n == "after" {
                return true;
            }
        }
        false
    })
    .await
    .expect("watcher sees the object created after the restart");
    assert!(seen);
    task.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_namespace_deletion() {
    let (_dir, server, client) = common::start_with_client().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns"),
    )
    .await
    .expect("ns");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let held: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["test/hold"]}}))
            .expect("cm");
    api.create(&PostParams::default(), &held)
        .await
        .expect("held");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "free"}})).expect("cm"),
    )
    .await
    .expect("free");
    api.delete("held", &DeleteParams::default())
        .await
        .expect("delete held");
    let h = api.get("held").await.expect("still there");
    assert!(h.metadata.deletion_timestamp.is_some());

    nss.delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    let ns = nss.get("team").await.expect("terminating");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let err = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "late"}})).expect("cm"),
        )
        .await
        .expect_err("terminating namespace refuses new objects");
    assert_eq!(api_error(err).0, 403);
    let emptied = tokio::time::timeout(Duration::from_secs(10), async {
        while api.get("free").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(emptied.is_ok(), "the namespace is emptied");
    assert!(nss.get("team").await.is_ok(), "waits for the finalizer");
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if nss.get("team").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "namespace removed once empty");
    server.shutdown().await;
}

#[tokio::test]
async fn owner_references_are_collected_or_orphaned() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut uids = Vec::new();
    for owner in ["owner1", "owner2"] {
        let o = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": owner}})).expect("cm"),
            )
            .await
            .expect("owner");
        let uid = o.metadata.uid.expect("uid");
        let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("{owner}-child"),
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}]}}))
        .expect("cm");
        api.create(&PostParams::default(), &c).await.expect("child");
        uids.push(uid);
    }
    api.delete("owner1", &DeleteParams::background())
        .await
        .expect("delete owner1");
    api.delete("owner2", &DeleteParams::orphan())
        .await
        .expect("delete owner2");
    let settled = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let gone = api.get("owner1-child").await.is_err();
            let orphaned = api
                .get("owner2-child")
                .await
                .is_ok_and(|c| c.metadata.owner_references.is_none_or(|r| r.is_empty()));
            if gone && orphaned {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "background deletion collects, orphan keeps without the reference"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn deletecollection_foreground_and_recreate() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mk = |n: &str, labels: serde_json::Value| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": n, "labels": labels}})).expect("cm")
    };
    for (n, l) in [
        ("a", json!({"batch": "x"})),
        ("b", json!({"batch": "x"})),
        ("c", json!({})),
    ] {
        api.create(&PostParams::default(), &mk(n, l))
            .await
            .expect("create");
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=x"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    // The server's own root-CA ConfigMap is in every namespace, as on kube.
    assert_eq!(left, ["c", "kube-root-ca.crt"]);

    // Re-creating a deleted name works and gets a new uid.
    let first = api
        .create(&PostParams::default(), &mk("a", json!({})))
        .await
        .expect("re-create");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let second = api
        .create(&PostParams::default(), &mk("a", json!({})))
        .await
        .expect("re-create again");
    assert_ne!(first.metadata.uid, second.metadata.uid);

    // Foreground: the owner waits (foregroundDeletion finalizer) until its dependents are gone.
    let owner = api
        .create(&PostParams::default(), &mk("owner", json!({})))
        .await
        .expect("owner");
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "finalizers": ["test/hold"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]}}))
    .expect("cm");
    api.create(&PostParams::default(), &child)
        .await
        .expect("dependent");
    api.delete("owner", &DeleteParams::foreground())
        .await
        .expect("foreground delete");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let o = api
        .get("owner")
        .await
        .expect("owner waits for its dependent");
    assert!(
        o.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    api.patch(
        "dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release dependent");
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        while api.get("owner").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "owner deleted after its dependent");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher_and_event_field_selectors() {
    let (_dir, server, client) = common::start_with_client().await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    for (n, target) in [("e1", "web"), ("e2", "db")] {
        let e = serde_json::from_value(
            json!({"metadata": {"name": n}, "involvedObject": {"kind": "Pod", "name": target},
            "reason": "Test", "message": "m"}),
        )
        .expect("event");
        events
            .create(&PostParams::default(), &e)
            .await
            .expect("event");
    }
    let web = events
        .list(&ListParams::default().fields("involvedObject.name=web"))
        .await
        .expect("list");
    assert_eq!(web.items.len(), 1);
    assert_eq!(web.items[0].metadata.name.as_deref(), Some("e1"));

    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm"),
    )
    .await
    .expect("create");
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.next().await {
            match ev.expect("watch event") {
                watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap_or_default()),
                watcher::Event::InitDone => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(done.is_ok(), "the initial-events-end bookmark arrives");
    assert_eq!(initial, ["kube-root-ca.crt", "x"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_and_applies_all_land() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "shared"}})).expect("cm"),
    )
    .await
    .expect("create");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let p = json!({"metadata": {"labels": {format!("k{i}"): "v"}}});
                api.patch("shared", &PatchParams::default(), &Patch::Merge(p)).await.map(|_| ())
            } else {
                let p = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"},
                    "data": {format!("k{i}"): "v"}});
                api.patch("shared", &PatchParams::apply(&format!("m{i}")), &Patch::Apply(p)).await.map(|_| ())
            }
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("no write is lost to a race");
    }
    let cm = api.get("shared").await.expect("get");
    assert_eq!(cm.metadata.labels.map(|l| l.len()), Some(8));
    assert_eq!(cm.data.map(|d| d.len()), Some(8));
    server.shutdown().await;
}

#[tokio::test]
async fn both_event_apis_share_one_storage() {
    let (_dir, server, client) = common::start_with_client().await;
    let new_api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let core_api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let ev = serde_json::from_value(json!({"metadata": {"name": "from-new"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Kustomization", "name": "apps"}, "note": "applied", "reason": "ReconciliationSucceeded",
        "type": "Normal", "action": "Reconcile", "reportingController": "kustomize-controller", "reportingInstance": "i"}))
    .expect("event");
    new_api
        .create(&PostParams::default(), &ev)
        .await
        .expect("create events.k8s.io/v1");
    let core = core_api.get("from-new").await.expect("visible as v1");
    assert_eq!(core.message.as_deref(), Some("applied"));
    assert_eq!(core.involved_object.name.as_deref(), Some("apps"));
    let listed = core_api
        .list(&ListParams::default().fields("involvedObject.name=apps"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    let back = new_api
        .list(&ListParams::default().fields("regarding.name=apps"))
        .await
        .expect("list new");
    assert_eq!(back.items[0].note.as_deref(), Some("applied"));
    new_api
        .patch(
            "from-new",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "again"})),
        )
        .await
        .expect("patch through events.k8s.io");
    assert_eq!(
        core_api
            .get("from-new")
            .await
            .expect("get")
            .message
            .as_deref(),
        Some("again")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_kubernetes_service_leads_to_the_server_across_restarts() {
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    let dir = tempfile::tempdir().expect("temp dir");
    for _ in 0..2 {
        let server = common::start(dir.path(), None).await;
        let client = common::client(&server.kubeconfig).await;
        let service = Api::<Service>::namespaced(client.clone(), "default")
            .get("kubernetes")
            .await
            .expect("kube-apiserver's bootstrap Service exists");
        let spec = service.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
        let port = &spec.ports.expect("ports")[0];
        assert_eq!((port.name.as_deref(), port.port), (Some("https"), 443));
        assert_eq!(
            port.target_port,
            Some(
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                    server.addr.port()
                ))
            )
        );
        let endpoints = Api::<Endpoints>::namespaced(client, "default")
            .get("kubernetes")
            .await
            .expect("its Endpoints exist");
        let subset = &endpoints.subsets.expect("subsets")[0];
        assert_eq!(
            subset.ports.as_ref().expect("ports")[0].port,
            i32::from(server.addr.port())
        );
        server.shutdown().await;
    }
}
