//! The Kustomization reconciler end to end against the API server (embedded or kube-apiserver, see
//! `common`): an artifact served over HTTP is built, substituted, applied into the target
//! namespace, pruned when a file leaves the source, and cross-namespace sources are refused when
//! the flag says so.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::kustomize::{
    CrossNamespaceSourceReference, IgnoreRule, Kustomization, KustomizationSpec, PostBuild,
    SubstituteReference,
};
use ferroflux_api::meta::Selector;
use ferroflux_controllers::kustomization::reconciler::{self, Context, Options};
use ferroflux_testpeers::{PeerError, require};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

struct Env {
    cluster: common::Cluster,
    client: Client,
    source_tree: std::path::PathBuf,
}

async fn env() -> Result<Env, PeerError> {
    let cluster = common::cluster().await?;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    for ns in ["team-a", "team-b"] {
        let object = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("namespace created");
    }
    let source_tree = cluster.dir.path().join("repo");
    std::fs::create_dir_all(source_tree.join("apps")).expect("mkdir");
    Ok(Env {
        client: cluster.client.clone(),
        cluster,
        source_tree,
    })
}

impl Env {
    /// Writes `apps/settings.yaml` and publishes the tree as `revision` in `flux-system`.
    async fn publish_settings(&self, settings: &str, revision: &str) {
        std::fs::write(self.source_tree.join("apps/settings.yaml"), settings).expect("write");
        self.publish("flux-system", revision).await;
    }

    /// Packs the source tree as a new revision and publishes it in the GitRepository's status.
    async fn publish(&self, namespace: &str, revision: &str) {
        let (cluster, tree) = (&self.cluster, &self.source_tree);
        common::publish_git_artifact(cluster, namespace, "fleet", tree, revision).await;
    }

    fn start_controller(&self, options: Options) -> tokio::sync::oneshot::Sender<()> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let context = Arc::new(Context::new(
            self.client.clone(),
            self.cluster.config.clone(),
            options,
        ));
        tokio::spawn(reconciler::run(context, async move {
            let _ = stopped.await;
        }));
        stop
    }
}

fn kustomization(namespace: &str, source_namespace: Option<&str>) -> Kustomization {
    let mut ks = Kustomization::new(
        "apps",
        KustomizationSpec {
            interval: "1m".into(),
            path: Some("./apps".into()),
            prune: true,
            target_namespace: Some("team-a".into()),
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                namespace: source_namespace.map(str::to_string),
                ..Default::default()
            },
            post_build: Some(PostBuild {
                substitute: Some([("replicas".to_string(), "2".to_string())].into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    ks.metadata.namespace = Some(namespace.into());
    ks
}

async fn wait_for_ready(api: &Api<Kustomization>, name: &str, status: &str) -> Kustomization {
    wait_until(api, name, &format!("Ready={status}"), |ks| {
        common::condition(ks, "Ready").is_some_and(|c| c.status == status)
    })
    .await
}

/// Waits until `revision` is applied and Ready: Ready=True alone may still be the previous
/// revision's, whose status a slower server has not replaced yet.
async fn wait_for_applied(api: &Api<Kustomization>, name: &str, revision: &str) -> Kustomization {
    wait_until(api, name, &format!("{revision} applied"), |ks| {
        common::condition(ks, "Ready").is_some_and(|c| c.status == "True")
            && ks
                .status
                .as_ref()
                .and_then(|s| s.last_applied_revision.as_deref())
                == Some(revision)
    })
    .await
}

/// Polls `name` until `done` holds (up to 15 s).
async fn wait_until(
    api: &Api<Kustomization>,
    name: &str,
    what: &str,
    done: impl Fn(&Kustomization) -> bool,
) -> Kustomization {
    common::wait_within(Duration::from_secs(15), api, name, what, done).await
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
      - name: podinfo
        image: ghcr.io/stefanprodan/podinfo:6.5.0
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_substitutes_and_prunes() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    std::fs::write(
        env.source_tree.join("apps/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {region: eu}\n",
    )
    .expect("write");
    std::fs::write(
        env.source_tree.join("apps/kept.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  annotations: {kustomize.toolkit.fluxcd.io/prune: disabled}\n",
    )
    .expect("write");
    env.publish(
        "flux-system",
        "main@sha1:1111111111111111111111111111111111111111",
    )
    .await;
    let _stop = env.start_controller(Options::default());

    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    api.create(&PostParams::default(), &kustomization("flux-system", None))
        .await
        .expect("created");
    let ks = wait_for_ready(&api, "apps", "True").await;
    let status = ks.status.expect("status");
    assert_eq!(
        status.last_applied_revision.as_deref(),
        Some("main@sha1:1111111111111111111111111111111111111111")
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), "flux-system");
    let notes: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("apps"))
        .filter_map(|e| e.note)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Deployment/team-a/podinfo created")
                && n.contains("ConfigMap/team-a/settings created")),
        "{notes:?}"
    );
    let ids: Vec<String> = status
        .inventory
        .expect("inventory")
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        [
            "team-a_kept__ConfigMap",
            "team-a_podinfo_apps_Deployment",
            "team-a_settings__ConfigMap"
        ]
    );

    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    let deployment = deployments
        .get("podinfo")
        .await
        .expect("applied into the target namespace");
    assert_eq!(
        deployment.spec.and_then(|s| s.replicas),
        Some(2),
        "postBuild substituted ${{replicas}}"
    );
    let labels = deployment.metadata.labels.expect("labels");
    assert_eq!(
        labels
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("apps")
    );
    assert_eq!(
        labels
            .get("kustomize.toolkit.fluxcd.io/namespace")
            .map(String::as_str),
        Some("flux-system")
    );

    std::fs::remove_file(env.source_tree.join("apps/settings.yaml")).expect("remove");
    std::fs::remove_file(env.source_tree.join("apps/kept.yaml")).expect("remove");
    env.publish(
        "flux-system",
        "main@sha1:2222222222222222222222222222222222222222",
    )
    .await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-a");
    let mut pruned = false;
    for _ in 0..150 {
        if config_maps
            .get_opt("settings")
            .await
            .expect("reads")
            .is_none()
        {
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pruned, "the ConfigMap that left the source is pruned");
    assert!(
        config_maps.get_opt("kept").await.expect("reads").is_some(),
        "an object annotated prune: disabled is kept"
    );
    wait_for_applied(
        &api,
        "apps",
        "main@sha1:2222222222222222222222222222222222222222",
    )
    .await;
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_sources_are_refused_when_disabled() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "team-a",
        "main@sha1:3333333333333333333333333333333333333333",
    )
    .await;
    let _stop = env.start_controller(Options {
        no_cross_namespace_refs: true,
        ..Options::default()
    });

    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "team-b");
    api.create(
        &PostParams::default(),
        &kustomization("team-b", Some("team-a")),
    )
    .await
    .expect("created");
    let ks = wait_for_ready(&api, "apps", "False").await;
    let conditions = ks.status.and_then(|s| s.conditions).expect("conditions");
    let stalled = conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled is set");
    assert_eq!(stalled.reason, "AccessDenied");
    assert!(
        stalled
            .message
            .contains("can't access 'GitRepository/team-a/fleet'"),
        "{}",
        stalled.message
    );
    assert_nothing_applied(&env).await;
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_error_is_reported_with_the_file() {
    let env = require!(env().await);
    std::fs::write(
        env.source_tree.join("apps/kustomization.yaml"),
        "resources:\n- missing.yaml\n",
    )
    .expect("write");
    env.publish(
        "flux-system",
        "main@sha1:4444444444444444444444444444444444444444",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    api.create(&PostParams::default(), &kustomization("flux-system", None))
        .await
        .expect("created");
    let ks = wait_for_ready(&api, "apps", "False").await;
    let status = ks.status.expect("status");
    let ready = status
        .conditions
        .expect("conditions")
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason, "BuildFailed");
    assert!(ready.message.contains("missing.yaml"), "{}", ready.message);
    assert_eq!(
        status.last_attempted_revision.as_deref(),
        Some("main@sha1:4444444444444444444444444444444444444444")
    );
    assert!(status.last_applied_revision.is_none());
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reverted_within_an_interval() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:5555555555555555555555555555555555555555",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.interval = "2s".into();
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    wait_for_ready(&api, "apps", "True").await;

    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    let scale = PatchParams {
        field_manager: Some("kubectl-scale".into()),
        ..Default::default()
    };
    deployments
        .patch(
            "podinfo",
            &scale,
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("a user scales by hand");
    let mut replicas = None;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        replicas = deployments
            .get("podinfo")
            .await
            .expect("reads")
            .spec
            .and_then(|s| s.replicas);
        if replicas == Some(2) {
            break;
        }
    }
    assert_eq!(
        replicas,
        Some(2),
        "the manual scale is reverted on the next interval"
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomization_waits_for_its_dependencies() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:6666666666666666666666666666666666666666",
    )
    .await;
    let options = Options {
        requeue_dependency: Duration::from_millis(500),
        ..Options::default()
    };
    let _stop = env.start_controller(options);
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut apps = kustomization("flux-system", None);
    apps.spec.depends_on = Some(vec![ferroflux_api::meta::DependencyReference {
        name: "infra".into(),
        ..Default::default()
    }]);
    api.create(&PostParams::default(), &apps)
        .await
        .expect("created");
    let waiting = wait_for_ready(&api, "apps", "False").await;
    let ready = waiting
        .status
        .and_then(|s| s.conditions)
        .expect("conditions")
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason, "DependencyNotReady");
    assert_eq!(ready.message, "dependency 'flux-system/infra' is not ready");
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    assert!(
        deployments
            .get_opt("podinfo")
            .await
            .expect("reads")
            .is_none(),
        "nothing applied before the dependency"
    );

    let mut infra = kustomization("flux-system", None);
    infra.metadata.name = Some("infra".into());
    infra.spec.path = Some("./infra".into());
    std::fs::create_dir_all(env.source_tree.join("infra")).expect("mkdir");
    std::fs::write(
        env.source_tree.join("infra/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: infra-settings}\n",
    )
    .expect("write");
    env.publish(
        "flux-system",
        "main@sha1:7777777777777777777777777777777777777777",
    )
    .await;
    api.create(&PostParams::default(), &infra)
        .await
        .expect("created");
    wait_for_ready(&api, "infra", "True").await;
    wait_for_ready(&api, "apps", "True").await;
    assert!(
        deployments
            .get_opt("podinfo")
            .await
            .expect("reads")
            .is_some()
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_gating_fails_on_a_broken_image_and_recovers_when_git_fixes_it() {
    let env = require!(env().await);
    let broken = DEPLOYMENT
        .replace("podinfo:6.5.0", "podinfo:6.6.6-broken")
        .replace(
            "spec:\n  replicas",
            "spec:\n  progressDeadlineSeconds: 1\n  replicas",
        );
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), &broken).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:8888888888888888888888888888888888888888",
    )
    .await;
    let simulator = ferroflux_controllers::simulator::Options::new(
        Duration::from_millis(200),
        Some("*-broken"),
    )
    .expect("glob");
    let (stop_sim, sim_stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut stopped = sim_stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn(ferroflux_controllers::simulator::run(
        env.client.clone(),
        simulator,
        futures::FutureExt::shared(Box::pin(shutdown)),
    ));
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.wait = Some(true);
    ks.spec.timeout = Some("20s".into());
    ks.spec.interval = "2s".into();
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    // While it waits for health, the status says so, as Flux's does.
    let waiting = wait_until(&api, "apps", "the health check in progress", |ks| {
        common::condition(ks, "Reconciling").is_some_and(|c| c.status == "True")
    })
    .await;
    for type_ in ["Reconciling", "Ready"] {
        let condition = common::condition(&waiting, type_).expect("set");
        assert_eq!(
            (condition.reason.as_str(), condition.message.as_str()),
            ("Progressing", "Health check in progress")
        );
    }
    assert_eq!(
        common::condition(&waiting, "Ready").map(|c| c.status),
        Some("Unknown".into())
    );
    let failed = wait_for_ready(&api, "apps", "False").await;
    assert!(common::condition(&failed, "Reconciling").is_none());
    let conditions = failed
        .status
        .and_then(|s| s.conditions)
        .expect("conditions");
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason, "HealthCheckFailed", "{}", ready.message);
    assert!(
        ready.message.contains("Deployment/team-a/podinfo"),
        "{}",
        ready.message
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Healthy" && c.status == "False")
    );

    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:9999999999999999999999999999999999999999",
    )
    .await;
    let healthy = wait_for_ready(&api, "apps", "True").await;
    let conditions = healthy
        .status
        .and_then(|s| s.conditions)
        .expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Healthy" && c.status == "True"),
        "{conditions:?}"
    );
    let _ = stop_sim.send(true);
    env.cluster.server.shutdown().await;
}

fn named(name: &str, mut ks: Kustomization) -> Kustomization {
    ks.metadata.name = Some(name.into());
    ks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_durations_stall_and_a_fresh_kustomization_is_still_reconciled() {
    let env = require!(env().await);
    env.publish_settings(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
        "main@sha1:6666666666666666666666666666666666666666",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut huge_interval = named("huge-interval", kustomization("flux-system", None));
    huge_interval.spec.interval = "99999999999999999999h".into();
    let mut huge_timeout = named("huge-timeout", kustomization("flux-system", None));
    huge_timeout.spec.timeout = Some("99999999999999999999h".into());
    for ks in [&huge_interval, &huge_timeout] {
        api.create(&PostParams::default(), ks)
            .await
            .expect("the pattern admits it");
    }
    for (name, field) in [
        ("huge-interval", "spec.interval"),
        ("huge-timeout", "spec.timeout"),
    ] {
        let ks = wait_for_ready(&api, name, "False").await;
        let stalled = common::condition(&ks, "Stalled").expect("Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "InvalidSpec")
        );
        assert_eq!(
            stalled.message,
            format!("invalid {field}: time: invalid duration \"99999999999999999999h\"")
        );
    }
    api.create(&PostParams::default(), &kustomization("flux-system", None))
        .await
        .expect("created");
    wait_for_ready(&api, "apps", "True").await;
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_manifest_fails_with_a_stable_status_and_no_hot_loop() {
    let env = require!(env().await);
    std::fs::write(
        env.source_tree.join("apps/broken.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\ndata: [\n",
    )
    .expect("write");
    env.publish(
        "flux-system",
        "main@sha1:7777777777777777777777777777777777777777",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    api.create(&PostParams::default(), &kustomization("flux-system", None))
        .await
        .expect("created");
    let ks = wait_for_ready(&api, "apps", "False").await;
    let ready = common::condition(&ks, "Ready").expect("Ready");
    assert_eq!(ready.reason, "BuildFailed", "{}", ready.message);
    assert!(
        !ready
            .message
            .contains(&*std::env::temp_dir().to_string_lossy()),
        "no temp path in the message: {}",
        ready.message
    );
    let mut versions = std::collections::BTreeSet::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ks = api.get("apps").await.expect("reads");
        versions.insert(ks.metadata.resource_version.expect("resourceVersion"));
    }
    assert!(
        versions.len() <= 2,
        "the status is written {} times in 4 s",
        versions.len()
    );
    // Read as core/v1 Events, as `kubectl get events` does: repeats count up `count`.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), "flux-system");
    let failures: Vec<_> = events
        .list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("BuildFailed"))
        .collect();
    let recorded: i32 = failures.iter().map(|e| e.count.unwrap_or(1)).sum();
    assert!(
        failures.iter().all(|e| e.last_timestamp.is_some()
            && e.source.as_ref().and_then(|s| s.component.as_deref())
                == Some("kustomize-controller")),
        "{failures:?}"
    );
    assert!(
        recorded <= 3,
        "{recorded} BuildFailed events recorded in {} objects",
        failures.len()
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_kustomization_keeps_the_objects_another_one_took_over() {
    let env = require!(env().await);
    env.publish_settings(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
        "main@sha1:8888888888888888888888888888888888888888",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    api.create(
        &PostParams::default(),
        &named("first", kustomization("flux-system", None)),
    )
    .await
    .expect("created");
    wait_for_ready(&api, "first", "True").await;
    api.create(
        &PostParams::default(),
        &named("second", kustomization("flux-system", None)),
    )
    .await
    .expect("created");
    wait_for_ready(&api, "second", "True").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-a");
    let owner = config_maps
        .get("settings")
        .await
        .expect("applied")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        owner
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("second")
    );

    api.delete("first", &Default::default())
        .await
        .expect("deleted");
    for _ in 0..100 {
        if api.get_opt("first").await.expect("reads").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        api.get_opt("first").await.expect("reads").is_none(),
        "the finalizer ran"
    );
    assert!(
        config_maps
            .get_opt("settings")
            .await
            .expect("reads")
            .is_some(),
        "the object the second Kustomization took over is kept"
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substitute_strategy_always_applies_defaults_without_variables() {
    let env = require!(env().await);
    env.publish_settings("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: '${greeting:=hello}'}\n", "main@sha1:9999999999999999999999999999999999999999")
        .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    // No variable resolves: the only source is an optional ConfigMap that does not exist.
    let no_variables = PostBuild {
        substitute_from: Some(vec![SubstituteReference {
            kind: "ConfigMap".into(),
            name: "absent".into(),
            optional: Some(true),
        }]),
        ..Default::default()
    };
    let mut with_variables = named("with-variables", kustomization("flux-system", None));
    with_variables.spec.post_build = Some(no_variables.clone());
    let mut always = named("always", kustomization("flux-system", None));
    always.spec.target_namespace = Some("team-b".into());
    always.spec.post_build = Some(PostBuild {
        substitute_strategy: Some("Always".into()),
        ..no_variables
    });
    for ks in [&with_variables, &always] {
        api.create(&PostParams::default(), ks)
            .await
            .expect("created");
        wait_for_ready(&api, &ks.metadata.name.clone().expect("named"), "True").await;
    }
    for (namespace, greeting) in [("team-a", "${greeting:=hello}"), ("team-b", "hello")] {
        let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), namespace);
        let data = config_maps
            .get("settings")
            .await
            .expect("applied")
            .data
            .unwrap_or_default();
        assert_eq!(
            data.get("greeting").map(String::as_str),
            Some(greeting),
            "{namespace}"
        );
    }
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_metadata_annotates_objects_with_their_relative_origin() {
    let env = require!(env().await);
    env.publish_settings(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
        "main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.build_metadata = Some(vec![
        "originAnnotations".into(),
        "transformerAnnotations".into(),
    ]);
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    wait_for_ready(&api, "apps", "True").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-a");
    let annotations = config_maps
        .get("settings")
        .await
        .expect("applied")
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("config.kubernetes.io/origin")
            .map(String::as_str),
        Some("path: settings.yaml\n"),
        "relative to the Kustomization's path: {annotations:?}"
    );
    let transformations = annotations
        .get("alpha.config.kubernetes.io/transformations")
        .expect("the namespace transformer is recorded");
    assert!(
        transformations.contains("kind: NamespaceTransformer"),
        "{transformations}"
    );
    let temp = std::env::temp_dir().to_string_lossy().into_owned();
    assert!(
        annotations.values().all(|v| !v.contains(&temp)),
        "no work directory leaks: {annotations:?}"
    );
    env.cluster.server.shutdown().await;
}

/// Asserts that the Deployment `podinfo` was not applied to team-a.
async fn assert_nothing_applied(env: &Env) {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    assert!(
        deployments
            .get_opt("podinfo")
            .await
            .expect("reads")
            .is_none(),
        "nothing is applied"
    );
}

/// The Deployment `podinfo` in team-a, as the API server holds it.
async fn podinfo(env: &Env) -> serde_json::Value {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    serde_json::to_value(deployments.get("podinfo").await.expect("reads")).expect("serialises")
}

/// Changes the image by hand and waits until the controller has put it back.
async fn drift_the_image_and_wait_for_the_revert(env: &Env) -> serde_json::Value {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    // A merge patch replaces the whole list: the one container, with another image.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "podinfo", "image": "podinfo:tampered"}]}}}});
    deployments
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("a user edits the image");
    for _ in 0..100 {
        let live = podinfo(env).await;
        if live["spec"]["template"]["spec"]["containers"][0]["image"]
            == "ghcr.io/stefanprodan/podinfo:6.5.0"
        {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the image was never reverted: {}",
        podinfo(env).await["spec"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_fields_are_not_drift_and_keep_their_owner() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.interval = "1s".into();
    ks.spec.ignore = Some(vec![IgnoreRule {
        paths: vec!["/spec/replicas".into()],
        target: Some(Selector {
            kind: Some("Deploy.*".into()),
            ..Default::default()
        }),
    }]);
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    wait_for_ready(&api, "apps", "True").await;

    // An update (as `kubectl scale` or an HPA's client makes) of an ignored field is no drift:
    // nothing is applied, the object is not even written.
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "team-a");
    let scaled = deployments
        .patch(
            "podinfo",
            &PatchParams {
                field_manager: Some("kubectl-scale".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("a user scales by hand");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live = podinfo(&env).await;
    assert_eq!(live["spec"]["replicas"], 7);
    assert_eq!(
        live["metadata"]["resourceVersion"],
        json!(scaled.metadata.resource_version),
        "three intervals passed without a write"
    );

    // Other drift is reverted, and the ignored field, which only the controller applies,
    // keeps its live value (adopted).
    let live = drift_the_image_and_wait_for_the_revert(&env).await;
    assert_eq!(live["spec"]["replicas"], 7, "adopted, not reverted");

    // Another server-side-apply manager takes the field: the controller's applies leave it out,
    // so that manager stays its only owner.
    let hpa = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "team-a"}, "spec": {"replicas": 5}});
    deployments
        .patch(
            "podinfo",
            &PatchParams::apply("hpa-controller").force(),
            &Patch::Apply(&hpa),
        )
        .await
        .expect("the HPA applies");
    let live = drift_the_image_and_wait_for_the_revert(&env).await;
    assert_eq!(live["spec"]["replicas"], 5);
    let ours = live["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|m| m["manager"] == "kustomize-controller" && m["operation"] == "Apply")
        .expect("the controller's apply entry")
        .clone();
    assert!(
        ours["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "stripped, not co-owned: {}",
        ours["fieldsV1"]
    );
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_ignore_rule_stalls_naming_the_field() {
    let env = require!(env().await);
    std::fs::write(env.source_tree.join("apps/deployment.yaml"), DEPLOYMENT).expect("write");
    env.publish(
        "flux-system",
        "main@sha1:cccccccccccccccccccccccccccccccccccccccc",
    )
    .await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.ignore = Some(vec![IgnoreRule {
        paths: vec!["spec/replicas".into()],
        target: None,
    }]);
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    let ks = wait_for_ready(&api, "apps", "False").await;
    let stalled = common::condition(&ks, "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert_eq!(
        stalled.message,
        "invalid spec.ignore[0].paths[0]: 'spec/replicas': JSON pointer must be empty or start with a \"/\""
    );
    assert_nothing_applied(&env).await;
    env.cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_counts_reconciliations_of_a_set_and_starts_a_snapshot_per_change() {
    let env = require!(env().await);
    std::fs::write(
        env.source_tree.join("apps/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {region: eu}\n",
    )
    .expect("write");
    let first = "main@sha1:dddddddddddddddddddddddddddddddddddddddd";
    env.publish("flux-system", first).await;
    let _stop = env.start_controller(Options::default());
    let api: Api<Kustomization> = Api::namespaced(env.client.clone(), "flux-system");
    let mut ks = kustomization("flux-system", None);
    ks.spec.interval = "1s".into();
    api.create(&PostParams::default(), &ks)
        .await
        .expect("created");
    let history = |ks: &Kustomization| {
        ks.status
            .as_ref()
            .and_then(|s| s.history.clone())
            .unwrap_or_default()
    };
    let ks = wait_until(&api, "apps", "reconciled", |ks| !history(ks).is_empty()).await;
    // Reconciling the same set again without changing anything keeps the status as it is:
    // Flux would rewrite the object every interval for a timestamp.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let steady = api.get("apps").await.expect("reads");
    assert_eq!(
        steady.metadata.resource_version,
        ks.metadata.resource_version,
        "a reconciliation that changed nothing wrote the status: {:#?}",
        history(&steady)
    );
    // Correcting drift is a reconciliation of the same set that counts.
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "team-a");
    config_maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"region": "drifted"}})),
        )
        .await
        .expect("drifted");
    let ks = wait_until(&api, "apps", "reconciled twice", |ks| {
        history(ks)
            .first()
            .is_some_and(|s| s.total_reconciliations >= 2)
    })
    .await;
    let snapshots = history(&ks);
    assert_eq!(snapshots.len(), 1, "{snapshots:#?}");
    let snapshot = &snapshots[0];
    assert!(
        snapshot.digest.starts_with("sha256:"),
        "{}",
        snapshot.digest
    );
    assert_eq!(snapshot.last_reconciled_status, "ReconciliationSucceeded");
    assert!(snapshot.first_reconciled.0 <= snapshot.last_reconciled.0);
    assert!(
        snapshot.last_reconciled_duration.ends_with('s'),
        "a Go duration: {}",
        snapshot.last_reconciled_duration
    );
    assert_eq!(
        snapshot.metadata.as_ref().and_then(|m| m.get("revision")),
        Some(&first.to_string())
    );

    std::fs::write(
        env.source_tree.join("apps/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {region: us}\n",
    )
    .expect("write");
    let second = "main@sha1:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    env.publish("flux-system", second).await;
    let ks = wait_for_applied(&api, "apps", second).await;
    let snapshots = history(&ks);
    let revisions: Vec<&str> = snapshots
        .iter()
        .filter_map(|s| s.metadata.as_ref()?.get("revision").map(String::as_str))
        .collect();
    assert_eq!(revisions, [second, first], "newest first");
    assert_ne!(snapshots[0].digest, snapshots[1].digest);

    // Writing the history is a status write: it does not trigger another reconciliation.
    api.patch(
        "apps",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"interval": "1h"}})),
    )
    .await
    .expect("patched");
    let ks = wait_until(&api, "apps", "reconciled at the new generation", |ks| {
        ks.status.as_ref().and_then(|s| s.observed_generation) == ks.metadata.generation
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = api.get("apps").await.expect("reads");
    assert_eq!(
        after.metadata.resource_version, ks.metadata.resource_version,
        "no reconciliation without a trigger"
    );
    env.cluster.server.shutdown().await;
}
