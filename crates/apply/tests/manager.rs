//! The resource manager against the embedded API server over HTTPS: change sets, drift
//! correction, CRDs before their resources, prune with its opt-out, and health waits.

use std::time::Duration;

use ferroflux_apply::manager::{Action, ApplyOptions, DeleteOptions, ResourceManager};
use ferroflux_apply::object::ObjectRef;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

struct Cluster {
    _dir: tempfile::TempDir,
    server: ferroflux_apiserver::RunningServer,
    client: kube::Client,
}

async fn cluster() -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ferroflux_apiserver::Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().expect("address");
    let server = ferroflux_apiserver::serve(config)
        .await
        .expect("API server starts");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("usable kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    Cluster {
        _dir: dir,
        server,
        client,
    }
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "team-a"}, "data": data})
}

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "team-a"},
        "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {"metadata": {"labels": {"app": "podinfo"}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:6.5.0"}]}}}})
}

/// The CRD of `example.com/v1` `Widget`, whose `spec.size` is an integer.
fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})
}

/// Applies `objects` with the default options.
async fn apply(
    manager: &ResourceManager,
    objects: &[Value],
) -> Vec<ferroflux_apply::manager::Change> {
    manager
        .apply_all(objects, &ApplyOptions::default())
        .await
        .expect("applies")
}

fn actions(changes: &[ferroflux_apply::manager::Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn apply_reports_created_unchanged_and_configured() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let objects = vec![
        deployment(2),
        config_map("settings", json!({"region": "eu"})),
        namespace("team-a"),
    ];
    let changes = apply(&manager, &objects).await;
    assert_eq!(
        actions(&changes),
        [
            "Namespace/team-a created",
            "ConfigMap/team-a/settings created",
            "Deployment/team-a/podinfo created"
        ]
    );
    let again = apply(&manager, &objects).await;
    assert!(
        again.iter().all(|c| c.action == Action::Unchanged),
        "{:?}",
        actions(&again)
    );

    let changed = vec![
        namespace("team-a"),
        config_map("settings", json!({"region": "us"})),
    ];
    let changes = apply(&manager, &changed).await;
    assert_eq!(
        actions(&changes),
        [
            "Namespace/team-a unchanged",
            "ConfigMap/team-a/settings configured"
        ]
    );
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn drift_made_by_another_manager_is_reverted() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let objects = vec![namespace("team-a"), deployment(2)];
    apply(&manager, &objects).await;

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"));
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), "team-a", &resource);
    api.patch(
        "podinfo",
        &PatchParams {
            field_manager: Some("kubectl-scale".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("a user scales by hand");

    let changes = apply(&manager, &objects).await;
    assert_eq!(actions(&changes)[1], "Deployment/team-a/podinfo configured");
    let live = api.get("podinfo").await.expect("exists");
    assert_eq!(live.data["spec"]["replicas"], 2, "the drift is reverted");
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn custom_resources_are_applied_after_their_crd_is_established() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let crd = widget_crd();
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "team-a"}, "spec": {"size": 3}});
    let changes = manager
        .apply_all(
            &[widget, crd, namespace("team-a")],
            &ApplyOptions::default(),
        )
        .await
        .expect("applies");
    assert_eq!(
        actions(&changes),
        [
            "CustomResourceDefinition/widgets.example.com created",
            "Namespace/team-a created",
            "Widget/team-a/w created"
        ]
    );
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn prune_deletes_unless_disabled_and_skips_what_is_gone() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let mut kept = config_map("kept", json!({}));
    kept["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/prune": "disabled"});
    let objects = vec![namespace("team-a"), config_map("stale", json!({})), kept];
    apply(&manager, &objects).await;
    let refs: Vec<ObjectRef> = objects[1..]
        .iter()
        .map(|o| ObjectRef::of(o, 0).expect("identifies"))
        .collect();
    let mut with_gone = refs.clone();
    let mut gone = refs[0].clone();
    gone.name = "never-existed".into();
    with_gone.push(gone);
    let changes = manager
        .delete_all(&with_gone, &DeleteOptions::default())
        .await
        .expect("prunes");
    assert_eq!(
        actions(&changes),
        [
            "ConfigMap/team-a/stale deleted",
            "ConfigMap/team-a/kept skipped"
        ]
    );
    assert!(manager.get(&refs[0]).await.expect("reads").is_none());
    assert!(manager.get(&refs[1]).await.expect("reads").is_some());
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn waiting_ends_when_objects_are_current_or_times_out_naming_them() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let objects = vec![namespace("team-a"), config_map("settings", json!({}))];
    apply(&manager, &objects).await;
    let refs: Vec<ObjectRef> = objects
        .iter()
        .map(|o| ObjectRef::of(o, 0).expect("identifies"))
        .collect();
    manager
        .wait_healthy(&refs, Duration::from_secs(5), true)
        .await
        .expect("config maps and namespaces are current");

    let mut missing = refs[1].clone();
    missing.name = "missing".into();
    let err = manager
        .wait_healthy(&[missing], Duration::from_millis(300), true)
        .await
        .expect_err("never appears");
    assert!(
        err.to_string().contains("ConfigMap/team-a/missing"),
        "{err}"
    );
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn a_refused_object_means_nothing_of_its_stage_is_written() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let crd = widget_crd();
    let bad_widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "team-a"}, "spec": {"size": "large"}});
    let objects = vec![
        namespace("team-a"),
        crd,
        config_map("settings", json!({"a": "b"})),
        bad_widget,
    ];
    let err = manager
        .apply_all(&objects, &ApplyOptions::default())
        .await
        .expect_err("the widget is invalid");
    let message = err.to_string();
    assert!(
        message.starts_with("Widget/team-a/w dry-run failed: "),
        "{message}"
    );
    assert!(
        !message.contains("Status {") && !message.contains("ApiError"),
        "the API server's message, not a Rust dump: {message}"
    );
    let settings = ObjectRef::of(&objects[2], 2).expect("identifies");
    assert!(
        manager.get(&settings).await.expect("reads").is_none(),
        "the ConfigMap of the refused stage is not applied"
    );
    let ns = ObjectRef::of(&objects[0], 0).expect("identifies");
    assert!(
        manager.get(&ns).await.expect("reads").is_some(),
        "earlier stages are applied"
    );
    cluster.server.shutdown().await;
}

fn job(image: &str, annotations: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "team-a", "annotations": annotations},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "migrate", "image": image}]}}}})
}

#[tokio::test]
async fn the_force_annotation_recreates_an_object_whose_immutable_field_changed() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let force = json!({"kustomize.toolkit.fluxcd.io/force": "enabled"});
    manager
        .apply_all(
            &[namespace("team-a"), job("migrate:1", json!({}))],
            &ApplyOptions::default(),
        )
        .await
        .expect("applies");
    let refused = manager
        .apply_all(&[job("migrate:2", json!({}))], &ApplyOptions::default())
        .await
        .expect_err("spec.template of a Job is immutable");
    assert!(refused.to_string().contains("immutable"), "{refused}");

    let changes = manager
        .apply_all(&[job("migrate:2", force)], &ApplyOptions::default())
        .await
        .expect("the annotation recreates the Job");
    assert_eq!(actions(&changes), ["Job/team-a/migrate configured"]);
    let job_ref = ObjectRef::of(&job("migrate:2", json!({})), 0).expect("identifies");
    let live = manager.get(&job_ref).await.expect("reads").expect("exists");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "migrate:2"
    );
    cluster.server.shutdown().await;
}

#[tokio::test]
async fn deletion_skips_objects_whose_labels_name_another_owner() {
    let cluster = cluster().await;
    let manager = ResourceManager::new(cluster.client.clone(), "kustomize-controller");
    let owned_by = |owner: &str, name: &str| {
        let mut object = config_map(name, json!({}));
        object["metadata"]["labels"] = json!({
            "kustomize.toolkit.fluxcd.io/name": owner,
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"});
        object
    };
    let objects = vec![
        namespace("team-a"),
        owned_by("first", "mine"),
        owned_by("second", "taken-over"),
    ];
    apply(&manager, &objects).await;
    let refs: Vec<ObjectRef> = objects[1..]
        .iter()
        .map(|o| ObjectRef::of(o, 0).expect("identifies"))
        .collect();
    let owner = [
        ("kustomize.toolkit.fluxcd.io/name", "first"),
        ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let changes = manager
        .delete_all(&refs, &DeleteOptions { owner })
        .await
        .expect("deletes");
    assert_eq!(
        actions(&changes),
        [
            "ConfigMap/team-a/mine deleted",
            "ConfigMap/team-a/taken-over skipped"
        ]
    );
    assert!(manager.get(&refs[0]).await.expect("reads").is_none());
    assert!(
        manager.get(&refs[1]).await.expect("reads").is_some(),
        "another Kustomization's object is kept"
    );
    cluster.server.shutdown().await;
}
