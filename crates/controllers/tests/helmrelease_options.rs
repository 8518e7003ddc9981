//! The HelmRelease options of Flux 2.9 that change how Helm acts (issue 17): cleanup of a
//! failed upgrade, Jobs left out of the wait, reused values, schema validation off, refusal to
//! adopt objects, reuse of an uninstalled release's name, client-side apply and its forced
//! replace, the legacy wait, orphaning on uninstall and the rollback options, each on a chart
//! whose templates exercise it.

mod common;
mod helm_support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{NS, condition, wait_until, wait_within};
use ferroflux_api::helm::{
    HelmRelease, Install, Rollback, Uninstall, Upgrade, UpgradeRemediation, WaitStrategy,
};
use ferroflux_api::kustomize::CustomHealthCheck;
use ferroflux_api::meta::DependencyReference;
use ferroflux_api::source::HelmRepositorySpec;
use ferroflux_helm::release::{self as storage, Status};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CHART: &[(&str, &str)] = &[
    (
        "opts/Chart.yaml",
        "apiVersion: v2\nname: opts\nversion: 1.0.0\n",
    ),
    (
        "opts/values.yaml",
        "greeting: hello\nextra: false\njob: false\nbad: false\nlb: false\n",
    ),
    (
        "opts/values.schema.json",
        r#"{"type": "object", "properties": {"greeting": {"type": "string"}}}"#,
    ),
    (
        "opts/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  first: {{ .Values.first | default \"\" | quote }}\n  second: {{ .Values.second | default \"\" | quote }}\n  ready: {{ .Values.ready | default \"\" | quote }}\n",
    ),
    (
        "opts/templates/extra.yaml",
        "{{- if .Values.extra }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\ndata: {}\n{{- end }}\n",
    ),
    (
        "opts/templates/job.yaml",
        "{{- if .Values.job }}\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-job\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: job\n        image: busybox\n{{- end }}\n",
    ),
    (
        "opts/templates/bad.yaml",
        "{{- if .Values.bad }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n{{- end }}\n",
    ),
    (
        "opts/templates/lb.yaml",
        "{{- if .Values.lb }}\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-lb\nspec:\n  type: LoadBalancer\n  externalIPs: [192.0.2.10]\n  selector:\n    app: none\n  ports:\n  - port: 80\n{{- end }}\n",
    ),
];

/// The chart of [`CHART`] as `name` at `version`, packed; its archive and sha256 hex.
fn packed_chart(name: &str, version: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, body) in CHART {
        let rel = rel.replacen("opts/", &format!("{name}/"), 1);
        let body = body
            .replace("name: opts\n", &format!("name: {name}\n"))
            .replace("version: 1.0.0\n", &format!("version: {version}\n"));
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
    helm_support::pack_chart(dir.path())
}

/// Serves `index.yaml` with `opts-1.0.0.tgz` and the same chart named `other`.
async fn chart_repository() -> String {
    let mut files = BTreeMap::new();
    let mut index = String::from("apiVersion: v1\nentries:\n");
    for name in ["opts", "other"] {
        let (tgz, hex) = packed_chart(name, "1.0.0");
        index.push_str(&format!(
            "  {name}:\n  - name: {name}\n    version: 1.0.0\n    urls: [charts/{name}-1.0.0.tgz]\n    digest: {hex}\n"
        ));
        files.insert(format!("/charts/{name}-1.0.0.tgz"), tgz);
    }
    files.insert("/index.yaml".to_string(), index.into_bytes());
    common::serve_files(files).await
}

/// Starts the HelmRepository, HelmChart and HelmRelease reconcilers and creates the
/// HelmRepository `opts`; the reconcilers stop when the returned senders are dropped.
async fn start(cluster: &common::Cluster) -> Vec<tokio::sync::oneshot::Sender<()>> {
    let stops = helm_support::start_reconcilers(cluster);
    helm_support::create_helm_repository(cluster, "opts", chart_repository().await).await;
    stops
}

fn helm_release(name: &str, values: Value) -> HelmRelease {
    helm_support::helm_release(name, "opts", "opts", values)
}

/// The release records of `name`, newest first.
async fn records(cluster: &common::Cluster, name: &str) -> Vec<storage::Release> {
    let records = helm_support::records(cluster, name).await;
    records.into_iter().map(|(_, release)| release).collect()
}

fn statuses(records: &[storage::Release]) -> Vec<(u32, Status)> {
    records
        .iter()
        .map(|r| (r.version, r.info.as_ref().expect("info").status))
        .collect()
}

async fn create(releases: &Api<HelmRelease>, hr: &HelmRelease) {
    releases
        .create(&PostParams::default(), hr)
        .await
        .expect("created");
}

async fn patch(releases: &Api<HelmRelease>, name: &str, patch: Value) {
    releases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
}

/// Sets the values of the HelmRelease `name` (a merge patch of `spec.values`).
async fn set_values(releases: &Api<HelmRelease>, name: &str, values: Value) {
    patch(releases, name, json!({"spec": {"values": values}})).await;
}

/// Waits for `name` to fail with `reason`, its Ready message containing `says`.
async fn failed_saying(releases: &Api<HelmRelease>, name: &str, reason: &str, says: &str) {
    let hr = failed(releases, name, reason).await;
    let message = condition(&hr, "Ready").expect("Ready").message;
    assert!(message.contains(says), "{message}");
}

/// Upgrades within `timeout` whose failure is remediated once (by a rollback).
fn rolled_back_once(timeout: Option<&str>) -> Upgrade {
    Upgrade {
        timeout: timeout.map(str::to_string),
        remediation: Some(UpgradeRemediation {
            retries: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates `hr` and waits for its install to succeed.
async fn installed(releases: &Api<HelmRelease>, hr: &HelmRelease) {
    create(releases, hr).await;
    let name = hr.metadata.name.as_deref().expect("a name");
    ready(releases, name, "InstallSucceeded").await;
}

async fn ready(releases: &Api<HelmRelease>, name: &str, reason: &str) -> HelmRelease {
    wait_until(releases, name, reason, |hr| {
        common::ready_is(hr, "True") && condition(hr, "Ready").is_some_and(|c| c.reason == reason)
    })
    .await
}

async fn failed(releases: &Api<HelmRelease>, name: &str, reason: &str) -> HelmRelease {
    wait_until(releases, name, reason, |hr| {
        common::ready_is(hr, "False") && condition(hr, "Ready").is_some_and(|c| c.reason == reason)
    })
    .await
}

fn data(config: &ConfigMap, key: &str) -> Option<String> {
    config.data.as_ref()?.get(key).cloned()
}

async fn delete_and_wait(releases: &Api<HelmRelease>, name: &str) {
    releases
        .delete(name, &DeleteParams::default())
        .await
        .expect("deleted");
    for _ in 0..300 {
        if releases.get_opt(name).await.expect("reads").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("HelmRelease {name} is never deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_and_install_options() {
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = start(&cluster).await;
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    a_failed_upgrade_cleans_up(&cluster, &releases).await;
    jobs_are_left_out_of_the_wait(&cluster, &releases).await;
    values_are_preserved(&cluster, &releases).await;
    schema_validation_can_be_disabled(&cluster, &releases).await;
    ownership_is_not_taken(&cluster, &releases).await;
    an_uninstalled_name_is_replaced(&cluster, &releases).await;
    a_release_through_a_kubeconfig(&cluster, &releases).await;
    a_changed_target_is_reinstalled(&cluster, &releases).await;
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_uninstall_and_rollback_options() {
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = start(&cluster).await;
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    client_side_apply_and_force(&cluster, &releases).await;
    legacy_wait_checks_as_helm_v3(&releases).await;
    uninstall_orphans_dependents(&cluster, &releases).await;
    rollback_options_are_accepted(&cluster, &releases).await;
    a_failed_rollback_cleans_up(&cluster, &releases).await;
    health_check_expressions(&releases).await;
    ready_expressions_decide_dependencies(&releases).await;
    cluster.server.shutdown().await;
}

/// `upgrade.cleanupOnFail`: an upgrade that times out waiting for its Job deletes the
/// objects it created (the Job, a new ConfigMap) and keeps the ones it had.
async fn a_failed_upgrade_cleans_up(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("cleanup", json!({}));
    hr.spec.upgrade = Some(Upgrade {
        cleanup_on_fail: Some(true),
        timeout: Some("2s".into()),
        ..Default::default()
    });
    installed(releases, &hr).await;
    set_values(releases, "cleanup", json!({"extra": true, "job": true})).await;
    failed_saying(
        releases,
        "cleanup",
        "UpgradeFailed",
        "resources not ready after 2s",
    )
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        maps.get_opt("cleanup-config")
            .await
            .expect("reads")
            .is_some(),
        "what the release had stays"
    );
    for _ in 0..100 {
        let extra = maps.get_opt("cleanup-extra").await.expect("reads");
        let job = jobs.get_opt("cleanup-job").await.expect("reads");
        // A deleted Job may linger on its finalizers; it is on its way out.
        let job_gone = job.is_none_or(|j| j.metadata.deletion_timestamp.is_some());
        if extra.is_none() && job_gone {
            let records = records(cluster, "cleanup").await;
            assert_eq!(
                statuses(&records),
                vec![(2, Status::Failed), (1, Status::Deployed)]
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the objects the failed upgrade created are still there");
}

/// `install.disableWaitForJobs`: the Job that never completes does not hold the install.
async fn jobs_are_left_out_of_the_wait(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("jobs", json!({"job": true}));
    hr.spec.install = Some(Install {
        disable_wait_for_jobs: Some(true),
        timeout: Some("2s".into()),
        ..Default::default()
    });
    installed(releases, &hr).await;
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), NS);
    let job = jobs.get("jobs-job").await.expect("the Job is installed");
    let succeeded = job.status.and_then(|s| s.succeeded).unwrap_or(0);
    assert_eq!(succeeded, 0, "the Job never ran");
}

/// `upgrade.preserveValues`: values dropped from the spec stay as the last release had them,
/// and the release stays in sync afterwards.
async fn values_are_preserved(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("preserve", json!({"first": "1"}));
    hr.spec.upgrade = Some(Upgrade {
        preserve_values: Some(true),
        ..Default::default()
    });
    installed(releases, &hr).await;
    set_values(releases, "preserve", json!({"first": null, "second": "2"})).await;
    ready(releases, "preserve", "UpgradeSucceeded").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("preserve-config").await.expect("installed");
    assert_eq!(data(&config, "first").as_deref(), Some("1"));
    assert_eq!(data(&config, "second").as_deref(), Some("2"));
    let stored = records(cluster, "preserve").await;
    assert_eq!(
        stored[0].config,
        json!({"first": "1", "second": "2"}).as_object().cloned()
    );
    // A reconciliation finds it in sync: no third revision.
    patch(
        releases,
        "preserve",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}}),
    )
    .await;
    wait_until(releases, "preserve", "the request handled", |hr| {
        hr.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("again")
    })
    .await;
    assert_eq!(records(cluster, "preserve").await.len(), 2);
}

/// `install.disableSchemaValidation`: values that break `values.schema.json` fail the
/// install until validation is off.
async fn schema_validation_can_be_disabled(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let hr = helm_release("schema", json!({"greeting": 5}));
    create(releases, &hr).await;
    failed_saying(
        releases,
        "schema",
        "InstallFailed",
        "values don't meet the specifications of the schema(s)",
    )
    .await;
    patch(
        releases,
        "schema",
        json!({"spec": {"install": {"disableSchemaValidation": true}}}),
    )
    .await;
    ready(releases, "schema", "InstallSucceeded").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("schema-config").await.expect("installed");
    assert_eq!(data(&config, "greeting").as_deref(), Some("5"));
}

/// `install.disableTakeOwnership`: an existing object without the release's ownership
/// metadata stops the install with Helm's message and no record; by default it is adopted.
async fn ownership_is_not_taken(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let foreign: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "owned-config"}, "data": {"greeting": "theirs"}}),
    )
    .expect("a ConfigMap");
    maps.create(&PostParams::default(), &foreign)
        .await
        .expect("created");
    let mut hr = helm_release("owned", json!({}));
    hr.spec.install = Some(Install {
        disable_take_ownership: Some(true),
        ..Default::default()
    });
    create(releases, &hr).await;
    let hr = failed(releases, "owned", "InstallFailed").await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "Helm install failed for release flux-system/owned with chart opts@1.0.0: unable to \
         continue with install: ConfigMap \"owned-config\" in namespace \"flux-system\" exists \
         and cannot be imported into the current release: invalid ownership metadata; label \
         validation error: missing key \"app.kubernetes.io/managed-by\": must be set to \
         \"Helm\"; annotation validation error: missing key \"meta.helm.sh/release-name\": \
         must be set to \"owned\"; annotation validation error: missing key \
         \"meta.helm.sh/release-namespace\": must be set to \"flux-system\""
    );
    assert!(
        records(cluster, "owned").await.is_empty(),
        "nothing recorded"
    );
    let config = maps.get("owned-config").await.expect("reads");
    assert_eq!(data(&config, "greeting").as_deref(), Some("theirs"));
    patch(
        releases,
        "owned",
        json!({"spec": {"install": {"disableTakeOwnership": false}}}),
    )
    .await;
    ready(releases, "owned", "InstallSucceeded").await;
    let config = maps.get("owned-config").await.expect("reads");
    assert_eq!(data(&config, "greeting").as_deref(), Some("hello"));
    let annotations = config.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("meta.helm.sh/release-name")
            .map(String::as_str),
        Some("owned")
    );
}

/// `install.replace`: a name whose last record is uninstalled (kept by
/// `uninstall.keepHistory`) is refused by Helm's install, then reused with `replace`.
async fn an_uninstalled_name_is_replaced(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("replaced", json!({}));
    hr.spec.uninstall = Some(Uninstall {
        keep_history: Some(true),
        ..Default::default()
    });
    installed(releases, &hr).await;
    delete_and_wait(releases, "replaced").await;
    assert_eq!(
        statuses(&records(cluster, "replaced").await),
        vec![(1, Status::Uninstalled)]
    );
    let hr = helm_release("replaced", json!({}));
    create(releases, &hr).await;
    let hr = failed(releases, "replaced", "InstallFailed").await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "Helm install failed for release flux-system/replaced with chart opts@1.0.0: cannot \
         reuse a name that is still in use"
    );
    patch(
        releases,
        "replaced",
        json!({"spec": {"install": {"replace": true}}}),
    )
    .await;
    ready(releases, "replaced", "InstallSucceeded").await;
    assert_eq!(
        statuses(&records(cluster, "replaced").await),
        vec![(2, Status::Deployed), (1, Status::Superseded)]
    );
}

/// `install.serverSideApply: false`: the release is applied client-side (an `Update` of the
/// field manager, recorded `csa`), upgrades follow (`auto`) with a three-way merge that keeps
/// what another manager added, and `upgrade.force` replaces the object whole.
async fn client_side_apply_and_force(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("csa", json!({}));
    hr.spec.install = Some(Install {
        server_side_apply: Some(false),
        ..Default::default()
    });
    installed(releases, &hr).await;
    assert_eq!(records(cluster, "csa").await[0].apply_method, "csa");
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("csa-config").await.expect("installed");
    let managers: Vec<(String, String)> = config
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("helm-controller".into(), "Update".into())),
        "{managers:?}"
    );
    assert!(
        !managers.iter().any(|(_, op)| op == "Apply"),
        "{managers:?}"
    );
    let theirs = json!({"metadata": {"labels": {"added-by": "someone"}}});
    let params = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    maps.patch("csa-config", &params, &Patch::Merge(&theirs))
        .await
        .expect("patched");
    set_values(releases, "csa", json!({"greeting": "merged"})).await;
    ready(releases, "csa", "UpgradeSucceeded").await;
    let config = maps.get("csa-config").await.expect("reads");
    assert_eq!(data(&config, "greeting").as_deref(), Some("merged"));
    let labels = config.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("added-by").map(String::as_str), Some("someone"));
    assert_eq!(records(cluster, "csa").await[0].apply_method, "csa");
    patch(
        releases,
        "csa",
        json!({"spec": {"upgrade": {"force": true}, "values": {"greeting": "replaced"}}}),
    )
    .await;
    wait_until(releases, "csa", "a forced upgrade", |hr| {
        common::ready_is(hr, "True")
            && hr
                .status
                .as_ref()
                .and_then(|s| s.history.as_ref())
                .is_some_and(|h| h.first().is_some_and(|s| s.version == 3))
    })
    .await;
    let config = maps.get("csa-config").await.expect("reads");
    assert_eq!(data(&config, "greeting").as_deref(), Some("replaced"));
    let labels = config.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("added-by"),
        None,
        "a replace drops what others added"
    );
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("Helm")
    );
}

/// `waitStrategy: legacy`: Helm v3's checks count a LoadBalancer Service with external IPs
/// ready, where kstatus (`poller`, the default) waits for an ingress no controller assigns.
async fn legacy_wait_checks_as_helm_v3(releases: &Api<HelmRelease>) {
    let mut hr = helm_release("legacy", json!({"lb": true}));
    hr.spec.wait_strategy = Some(WaitStrategy {
        name: "legacy".into(),
    });
    hr.spec.timeout = Some("10s".into());
    installed(releases, &hr).await;
    let mut hr = helm_release("poller", json!({"lb": true}));
    hr.spec.timeout = Some("2s".into());
    create(releases, &hr).await;
    failed_saying(
        releases,
        "poller",
        "InstallFailed",
        "Pending LoadBalancer ingress",
    )
    .await;
}

/// `uninstall.deletionPropagation: orphan`: what the release's objects own outlives them,
/// freed of its owner references.
async fn uninstall_orphans_dependents(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("orphan", json!({}));
    hr.spec.uninstall = Some(Uninstall {
        deletion_propagation: Some("orphan".into()),
        ..Default::default()
    });
    installed(releases, &hr).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let parent = maps.get("orphan-config").await.expect("installed");
    let child: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "orphan-child", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "orphan-config",
            "uid": parent.metadata.uid.expect("a uid")}]},
        "data": {}
    }))
    .expect("a ConfigMap");
    maps.create(&PostParams::default(), &child)
        .await
        .expect("created");
    delete_and_wait(releases, "orphan").await;
    wait_within(
        Duration::from_secs(30),
        &maps,
        "orphan-child",
        "orphaned",
        |c| {
            c.metadata
                .owner_references
                .as_ref()
                .is_none_or(Vec::is_empty)
        },
    )
    .await;
    for _ in 0..300 {
        if maps
            .get_opt("orphan-config")
            .await
            .expect("reads")
            .is_none()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the release's own ConfigMap is never deleted");
}

/// `rollback.cleanupOnFail`, `force` and `recreate` (the last deprecated, without effect in
/// Flux 2.9) are accepted: a failing upgrade is rolled back with them.
async fn rollback_options_are_accepted(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("rollback", json!({}));
    hr.spec.upgrade = Some(rolled_back_once(None));
    hr.spec.rollback = Some(Rollback {
        cleanup_on_fail: Some(true),
        force: Some(true),
        recreate: Some(true),
        ..Default::default()
    });
    installed(releases, &hr).await;
    set_values(releases, "rollback", json!({"bad": true})).await;
    let hr = wait_until(releases, "rollback", "a rollback", |hr| {
        condition(hr, "Remediated").is_some_and(|c| c.reason == "RollbackSucceeded")
    })
    .await;
    assert!(
        condition(&hr, "Stalled").is_none_or(|c| c.reason != "InvalidSpec"),
        "accepted"
    );
    let records = records(cluster, "rollback").await;
    let deployed = records
        .iter()
        .find(|r| {
            r.info
                .as_ref()
                .is_some_and(|i| i.status == Status::Deployed)
        })
        .expect("a deployed revision");
    assert_eq!(deployed.info.as_ref().expect("info").rollback_revision, 1);
    assert_eq!(deployed.apply_method, "ssa");
}

/// `healthCheckExprs`: the objects they cover are judged by them while Helm waits (in
/// progress until `current` holds, failed at once when `failed` holds); an expression that
/// does not parse stalls the release with Flux's InvalidCELExpression.
async fn health_check_expressions(releases: &Api<HelmRelease>) {
    let checks = |current: &str| {
        vec![CustomHealthCheck {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            in_progress: None,
            failed: Some("data.ready == 'broken'".into()),
            current: current.into(),
        }]
    };
    let mut hr = helm_release("health", json!({"ready": "no"}));
    hr.spec.health_check_exprs = Some(checks("data.ready == 'yes'"));
    hr.spec.timeout = Some("2s".into());
    create(releases, &hr).await;
    failed_saying(
        releases,
        "health",
        "InstallFailed",
        "health-config status: 'InProgress'",
    )
    .await;
    set_values(releases, "health", json!({"ready": "broken"})).await;
    failed_saying(
        releases,
        "health",
        "UpgradeFailed",
        "health-config status: 'Failed'",
    )
    .await;
    set_values(releases, "health", json!({"ready": "yes"})).await;
    ready(releases, "health", "UpgradeSucceeded").await;
    let mut hr = helm_release("badcel", json!({}));
    hr.spec.health_check_exprs = Some(checks("data.ready =="));
    create(releases, &hr).await;
    let hr = wait_until(releases, "badcel", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let stalled = condition(&hr, "Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "InvalidCELExpression");
    assert!(
        stalled.message.starts_with(
            "Reconciliation failed terminally due to configuration error: failed to create \
             custom status evaluator for healthchecks[0]: failed to parse the expression \
             Current: failed to parse the CEL expression 'data.ready =='"
        ),
        "{}",
        stalled.message
    );
}

/// `dependsOn[].readyExpr`: the expression over `self` and `dep` replaces the Ready check,
/// so a dependency that is not Ready (stalled `badcel`) still counts once it holds.
async fn ready_expressions_decide_dependencies(releases: &Api<HelmRelease>) {
    let mut hr = helm_release("dependent", json!({}));
    hr.spec.depends_on = Some(vec![DependencyReference {
        name: "badcel".into(),
        namespace: None,
        ready_expr: Some(
            "dep.metadata.generation >= 2 && self.metadata.name == 'dependent'".into(),
        ),
    }]);
    create(releases, &hr).await;
    let hr = wait_until(releases, "dependent", "DependencyNotReady", |hr| {
        condition(hr, "Ready").is_some_and(|c| c.reason == "DependencyNotReady")
    })
    .await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "dependency 'flux-system/badcel' is not ready according to readyExpr eval"
    );
    set_values(releases, "badcel", json!({"greeting": "v2"})).await;
    ready(releases, "dependent", "InstallSucceeded").await;
    let dep = releases.get("badcel").await.expect("reads");
    assert!(
        !common::ready_is(&dep, "True"),
        "the dependency is not Ready"
    );
}

/// The admin kubeconfig of the server under test with every file it names inlined, as a
/// tenant writes one into a Secret.
fn inline_kubeconfig(cluster: &common::Cluster) -> Value {
    use base64::Engine;
    let (text, dir) = match &cluster.server {
        common::Server::Embedded(server) => {
            (server.kubeconfig.clone(), cluster.dir.path().to_path_buf())
        }
        common::Server::Kube(peer) => (
            std::fs::read_to_string(peer.kubeconfig()).expect("reads the kubeconfig"),
            peer.kubeconfig()
                .parent()
                .expect("a directory")
                .to_path_buf(),
        ),
    };
    let mut config: Value = ferroflux_gocompat::yaml::from_str(&text).expect("a kubeconfig");
    let inline = |object: &mut Value, file: &str, data: &str| {
        if let Some(path) = object[file].as_str().map(str::to_string) {
            let bytes = std::fs::read(dir.join(path)).expect("reads a kubeconfig file");
            object[data] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
            object.as_object_mut().expect("an object").remove(file);
        }
    };
    for named in config["clusters"].as_array_mut().expect("clusters") {
        inline(
            &mut named["cluster"],
            "certificate-authority",
            "certificate-authority-data",
        );
    }
    for named in config["users"].as_array_mut().expect("users") {
        let user = &mut named["user"];
        inline(user, "client-certificate", "client-certificate-data");
        inline(user, "client-key", "client-key-data");
        if let Some(path) = user["tokenFile"].as_str().map(str::to_string) {
            let token = std::fs::read_to_string(dir.join(path)).expect("reads the token");
            user["token"] = json!(token.trim());
        }
    }
    config
}

async fn kubeconfig_secret(cluster: &common::Cluster, name: &str, config: &Value) {
    let text = serde_json::to_string(config).expect("json");
    common::create_secret(
        &cluster.client,
        name,
        BTreeMap::from([("value".to_string(), text)]),
    )
    .await;
}

fn remote_release(name: &str, secret: &str) -> HelmRelease {
    let mut hr = helm_release(name, json!({}));
    hr.spec.kube_config = Some(ferroflux_api::meta::KubeConfigReference {
        secret_ref: Some(ferroflux_api::meta::SecretKeyReference {
            name: secret.into(),
            key: None,
        }),
        config_map_ref: None,
    });
    hr
}

/// `spec.kubeConfig`: the release is made through the kubeconfig of a Secret (here the
/// same API server's, inlined); one that would run a program is refused, and one that
/// points elsewhere is where the release goes (and fails to reach).
async fn a_release_through_a_kubeconfig(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let config = inline_kubeconfig(cluster);
    kubeconfig_secret(cluster, "kubeconfig", &config).await;
    create(releases, &remote_release("remote", "kubeconfig")).await;
    ready(releases, "remote", "InstallSucceeded").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        maps.get_opt("remote-config")
            .await
            .expect("reads")
            .is_some()
    );
    assert_eq!(
        statuses(&records(cluster, "remote").await),
        vec![(1, Status::Deployed)]
    );

    let mut exec = config.clone();
    for named in exec["users"].as_array_mut().expect("users") {
        named["user"] = json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1",
            "command": "/bin/sh", "args": ["-c", "touch /tmp/pwned"]}});
    }
    kubeconfig_secret(cluster, "exec-kubeconfig", &exec).await;
    create(releases, &remote_release("execremote", "exec-kubeconfig")).await;
    let hr = wait_until(releases, "execremote", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("exec is not allowed"),
        "{}",
        ready.message
    );

    let mut elsewhere = config;
    for named in elsewhere["clusters"].as_array_mut().expect("clusters") {
        named["cluster"]["server"] = json!("https://127.0.0.1:1");
    }
    kubeconfig_secret(cluster, "elsewhere-kubeconfig", &elsewhere).await;
    create(
        releases,
        &remote_release("elsewhere", "elsewhere-kubeconfig"),
    )
    .await;
    let hr = wait_until(releases, "elsewhere", "a failure", |hr| {
        common::ready_is(hr, "False")
            && condition(hr, "Ready").is_some_and(|c| c.reason == "StateError")
    })
    .await;
    let message = condition(&hr, "Ready").expect("Ready").message;
    assert!(
        message.starts_with("Could not determine release state"),
        "{message}"
    );
    assert!(records(cluster, "elsewhere").await.is_empty());
}

/// helm-controller's release target changes: a new release name (or, by the default
/// `chartNameChangeStrategy: Reinstall`, a new chart name) uninstalls the previous release
/// and installs anew; `InPlaceUpdate` upgrades across the chart rename.
async fn a_changed_target_is_reinstalled(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    create(releases, &helm_release("target", json!({}))).await;
    ready(releases, "target", "InstallSucceeded").await;
    patch(
        releases,
        "target",
        json!({"spec": {"releaseName": "renamed"}}),
    )
    .await;
    let hr = wait_until(releases, "target", "the new target", |hr| {
        common::ready_is(hr, "True")
            && condition(hr, "Ready").is_some_and(|c| c.message.contains("flux-system/renamed.v1"))
    })
    .await;
    assert!(records(cluster, "target").await.is_empty(), "uninstalled");
    assert_eq!(
        statuses(&records(cluster, "renamed").await),
        vec![(1, Status::Deployed)]
    );
    assert!(
        maps.get_opt("target-config")
            .await
            .expect("reads")
            .is_none()
    );
    assert!(
        maps.get_opt("renamed-config")
            .await
            .expect("reads")
            .is_some()
    );
    let history = hr.status.and_then(|s| s.history).unwrap_or_default();
    let names: Vec<&str> = history.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["renamed"]);

    for (name, strategy) in [("reinstalled", None), ("inplace", Some("InPlaceUpdate"))] {
        let mut hr = helm_release(name, json!({}));
        hr.spec.upgrade = Some(Upgrade {
            chart_name_change_strategy: strategy.map(str::to_string),
            ..Default::default()
        });
        create(releases, &hr).await;
        ready(releases, name, "InstallSucceeded").await;
        patch(
            releases,
            name,
            json!({"spec": {"chart": {"spec": {"chart": "other"}}}}),
        )
        .await;
        wait_until(releases, name, "the other chart", |hr| {
            common::ready_is(hr, "True")
                && condition(hr, "Ready").is_some_and(|c| c.message.ends_with("chart other@1.0.0"))
        })
        .await;
        let stored = records(cluster, name).await;
        let expected = if strategy.is_none() {
            vec![(1, Status::Deployed)]
        } else {
            vec![(2, Status::Deployed), (1, Status::Superseded)]
        };
        assert_eq!(statuses(&stored), expected, "{name}");
        assert_eq!(stored[0].chart.as_ref().expect("chart").name(), "other");
    }
}

/// `chart.spec.verify`: the HelmChart made for the release verifies the cosign signature of
/// the OCI chart (SourceVerified); an unsigned version is never installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_oci_charts_are_verified() {
    use ferroflux_source::oci::cosign;
    use ferroflux_source::oci::{OciClient, OciOptions};
    let registry = ferroflux_testpeers::require!(ferroflux_testpeers::Registry::start(None));
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = start(&cluster).await;
    let key = common::cosign_keys_secret(&cluster.client).await;
    let client = OciClient::new(&OciOptions {
        insecure: true,
        ..OciOptions::default()
    })
    .expect("client");
    for version in ["1.0.0", "1.1.0"] {
        let (tgz, _) = packed_chart("opts", version);
        let digest =
            helm_support::push_chart(&client, &registry.host(), "opts", version, tgz).await;
        if version == "1.1.0" {
            let repository = format!("oci://{}/charts/opts", registry.host());
            cosign::sign(&client, &repository, &digest, &key)
                .await
                .expect("sign 1.1.0");
        }
    }
    let spec = HelmRepositorySpec {
        url: format!("oci://{}/charts", registry.host()),
        repository_type: Some("oci".into()),
        insecure: Some(true),
        interval: Some("1m".into()),
        ..Default::default()
    };
    helm_support::create_helm_repository_of(&cluster, "oci-opts", spec).await;
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    for (name, version) in [("signed", "1.1.0"), ("unsigned", "1.0.0")] {
        let mut hr = helm_release(name, json!({}));
        let chart = &mut hr.spec.chart.as_mut().expect("a chart").spec;
        chart.source_ref.name = "oci-opts".into();
        chart.version = Some(version.into());
        chart.verify = Some(common::cosign_verification());
        create(&releases, &hr).await;
    }
    ready(&releases, "signed", "InstallSucceeded").await;
    let charts: Api<ferroflux_api::source::HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    let chart = charts.get("flux-system-signed").await.expect("made");
    let verified = condition(&chart, "SourceVerified").expect("SourceVerified");
    assert_eq!(verified.status, "True");
    let hr = wait_until(&releases, "unsigned", "ArtifactFailed", |hr| {
        condition(hr, "Ready").is_some_and(|c| c.status == "False" && c.reason == "ArtifactFailed")
    })
    .await;
    assert!(
        hr.status
            .and_then(|s| s.history)
            .is_none_or(|h| h.is_empty())
    );
    let chart = wait_until(&charts, "flux-system-unsigned", "VerificationError", |c| {
        condition(c, "Ready").is_some_and(|c| c.reason == "VerificationError")
    })
    .await;
    assert_eq!(
        condition(&chart, "SourceVerified")
            .expect("SourceVerified")
            .status,
        "False"
    );
    assert!(
        records(&cluster, "unsigned").await.is_empty(),
        "never installed"
    );
    cluster.server.shutdown().await;
}

/// `rollback.cleanupOnFail`: a rollback that times out deletes what it created. The failed
/// upgrade removed the `extra` ConfigMap of revision 1; rolling back to it creates it again,
/// then the failed rollback deletes it (the watch sees delete, add, delete).
async fn a_failed_rollback_cleans_up(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let mut hr = helm_release("rb", json!({"extra": true, "lb": true}));
    hr.spec.install = Some(Install {
        disable_wait: Some(true),
        ..Default::default()
    });
    hr.spec.upgrade = Some(rolled_back_once(Some("2s")));
    hr.spec.rollback = Some(Rollback {
        cleanup_on_fail: Some(true),
        timeout: Some("2s".into()),
        ..Default::default()
    });
    installed(releases, &hr).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(maps.get_opt("rb-extra").await.expect("reads").is_some());
    let since = maps
        .list(&ListParams::default())
        .await
        .expect("lists")
        .metadata
        .resource_version
        .expect("a resourceVersion");
    set_values(releases, "rb", json!({"extra": false})).await;
    let params = WatchParams::default()
        .fields("metadata.name=rb-extra")
        .timeout(60);
    let events = maps.watch(&params, &since).await.expect("watches");
    let mut events = std::pin::pin!(events);
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        match event.expect("a watch event") {
            WatchEvent::Added(_) => seen.push("added"),
            WatchEvent::Deleted(_) => seen.push("deleted"),
            _ => {}
        }
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen, vec!["deleted", "added", "deleted"]);
    let hr = wait_until(releases, "rb", "RollbackFailed", |hr| {
        condition(hr, "Remediated").is_some_and(|c| c.reason == "RollbackFailed")
    })
    .await;
    let message = condition(&hr, "Remediated").expect("Remediated").message;
    assert!(
        message.contains("Pending LoadBalancer ingress"),
        "{message}"
    );
}
