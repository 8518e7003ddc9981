//! The HelmRelease reconciler end to end: a chart served by an HTTP HelmRepository is
//! installed (release Secret v1 in Helm's storage), a values change upgrades it (v2, v1
//! superseded, what the chart no longer renders pruned), deletion uninstalls; the real `helm`
//! reads our releases (`list`, `history`, `get values`) and we read a release `helm install`
//! wrote. Unsupported fields stall with the fields named.

mod common;
mod helm_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{NS, condition, wait_until};
use ferroflux_api::helm::{HelmRelease, PostRenderer};
use ferroflux_helm::release::{self as storage, Status};
use helm_support::records;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CHART: &[(&str, &str)] = &[
    (
        "demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 1.0.0\nappVersion: \"1.0\"\n",
    ),
    (
        "demo/values.yaml",
        "greeting: hello\nextra: false\nbad: false\n",
    ),
    (
        "demo/templates/pre-hook.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-pre\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-delete-policy: hook-succeeded\n",
    ),
    (
        "demo/templates/post-hook.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-post\n  annotations:\n    helm.sh/hook: post-install\n    helm.sh/hook-weight: \"5\"\n",
    ),
    (
        "demo/templates/tests/test.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers:\n  - name: test\n    image: busybox\n",
    ),
    (
        "demo/templates/tests/config-test.yaml",
        "{{- if .Values.tests }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ if .Values.failTest }}Not_A_Test{{ else }}{{ .Release.Name }}-config-test{{ end }}\n  annotations:\n    helm.sh/hook: test\n{{- end }}\n",
    ),
    (
        "demo/templates/bad.yaml",
        "{{- if .Values.bad }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n{{- end }}\n",
    ),
    (
        "demo/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  namespace: {{ (lookup \"v1\" \"Namespace\" \"\" .Release.Namespace).metadata.name | quote }}\n",
    ),
    (
        "demo/templates/extra.yaml",
        "{{- if .Values.extra }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\ndata: {}\n{{- end }}\n",
    ),
];

fn write_chart(dir: &Path) {
    for (rel, body) in CHART {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(path, body).expect("write");
    }
}

/// Serves `index.yaml` and `demo-1.0.0.tgz`.
async fn chart_repository() -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    write_chart(dir.path());
    let (tgz, hex) = helm_support::pack_chart(dir.path());
    let index = format!(
        "apiVersion: v1\nentries:\n  demo:\n  - name: demo\n    version: 1.0.0\n    urls: [charts/demo-1.0.0.tgz]\n    digest: {hex}\n"
    );
    let files = BTreeMap::from([
        ("/index.yaml".to_string(), index.into_bytes()),
        ("/charts/demo-1.0.0.tgz".to_string(), tgz),
    ]);
    common::serve_files(files).await
}

/// The HelmRepository `charts` over [`chart_repository`].
async fn create_repository(cluster: &common::Cluster) {
    helm_support::create_helm_repository(cluster, "charts", chart_repository().await).await;
}

fn helm_release(name: &str, values: Value) -> HelmRelease {
    helm_support::helm_release(name, "demo", "charts", values)
}

fn status_of(release: &storage::Release) -> Status {
    release.info.as_ref().expect("info").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_upgrade_uninstall_with_helm_storage() {
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = helm_support::start_reconcilers(&cluster);
    create_repository(&cluster).await;
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    installs(&cluster, &releases).await;
    upgrades(&cluster, &releases).await;
    a_pending_release_is_recovered(&cluster, &releases).await;
    helm_reads_our_release(&cluster).await;
    uninstalls(&cluster, &releases).await;
    refuses_what_it_does_not_implement(&releases).await;
    a_failing_upgrade_is_rolled_back(&cluster, &releases).await;
    a_chart_ref_installs(&cluster, &releases).await;
    drift_is_corrected(&cluster, &releases).await;
    a_tenant_is_held_to_its_rights(&cluster, &releases).await;
    force_and_reset_requests(&cluster, &releases).await;
    cluster.server.shutdown().await;
}

async fn installs(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let hr = helm_release("demo", json!({"greeting": "hi", "extra": true}));
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "demo", "Ready", |hr| common::ready_is(hr, "True")).await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(ready.reason, "InstallSucceeded");
    assert_eq!(
        ready.message,
        "Helm install succeeded for release flux-system/demo.v1 with chart demo@1.0.0"
    );
    let status = hr.status.clone().expect("status");
    assert_eq!(
        status.helm_chart.as_deref(),
        Some("flux-system/flux-system-demo")
    );
    assert_eq!(status.last_attempted_revision.as_deref(), Some("1.0.0"));
    assert_eq!(
        status.last_attempted_release_action.as_deref(),
        Some("install")
    );
    let history = status.history.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].version, history[0].status.as_str()),
        (1, "deployed")
    );
    let charts: Api<ferroflux_api::source::HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    let chart = charts
        .get("flux-system-demo")
        .await
        .expect("HelmChart made");
    let labels = chart.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("helm.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("demo")
    );
    let records = records(cluster, "demo").await;
    assert_eq!(records.len(), 1);
    let (secret, release) = &records[0];
    assert_eq!(secret.type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some("sh.helm.release.v1.demo.v1")
    );
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("owner").map(String::as_str), Some("helm"));
    assert_eq!(labels.get("status").map(String::as_str), Some("deployed"));
    assert_eq!(status_of(release), Status::Deployed);
    assert_eq!(
        release.config,
        json!({"greeting": "hi", "extra": true})
            .as_object()
            .cloned()
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("demo-config").await.expect("installed");
    assert_eq!(
        config
            .data
            .as_ref()
            .and_then(|d| d.get("namespace"))
            .map(String::as_str),
        Some("flux-system"),
        "lookup reads the cluster"
    );
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("hi")
    );
    let annotations = config.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("meta.helm.sh/release-name")
            .map(String::as_str),
        Some("demo")
    );
    assert!(maps.get_opt("demo-extra").await.expect("reads").is_some());
    hooks_ran(cluster, release).await;
}

/// The install ran its hooks as Helm does: the `hook-succeeded` one deleted after it ran,
/// the post-install one kept, the test hook not run; each hook's run is recorded.
async fn hooks_ran(cluster: &common::Cluster, release: &storage::Release) {
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(maps.get_opt("demo-pre").await.expect("reads").is_none());
    assert!(maps.get_opt("demo-post").await.expect("reads").is_some());
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client.clone(), NS);
    assert!(pods.get_opt("demo-test").await.expect("reads").is_none());
    let mut phases: Vec<(String, String)> = release
        .hooks
        .iter()
        .map(|h| (h.name.clone(), h.last_run.phase.clone()))
        .collect();
    phases.sort();
    assert_eq!(
        phases,
        vec![
            ("demo-post".to_string(), "Succeeded".to_string()),
            ("demo-pre".to_string(), "Succeeded".to_string()),
            ("demo-test".to_string(), String::new()),
        ]
    );
}

async fn upgrades(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let patch = json!({"spec": {"values": {"greeting": "bonjour", "extra": false}}});
    releases
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "demo", "an upgrade", |hr| {
        common::ready_is(hr, "True")
            && condition(hr, "Ready").is_some_and(|c| c.reason == "UpgradeSucceeded")
    })
    .await;
    let history = hr.status.expect("status").history.expect("history");
    let versions: Vec<(i64, &str)> = history
        .iter()
        .map(|s| (s.version, s.status.as_str()))
        .collect();
    assert_eq!(versions, vec![(2, "deployed"), (1, "superseded")]);
    let records = records(cluster, "demo").await;
    let statuses: Vec<(u32, Status)> = records
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(
        statuses,
        vec![(2, Status::Deployed), (1, Status::Superseded)]
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("demo-config").await.expect("kept");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("bonjour")
    );
    assert!(
        maps.get_opt("demo-extra").await.expect("reads").is_none(),
        "what the chart no longer renders is deleted"
    );
}

/// The kubeconfig of the server under test, written to a file for `helm`.
fn kubeconfig_file(cluster: &common::Cluster) -> std::path::PathBuf {
    match &cluster.server {
        common::Server::Embedded(server) => {
            let path = cluster.dir.path().join("kubeconfig");
            std::fs::write(&path, &server.kubeconfig).expect("write kubeconfig");
            path
        }
        common::Server::Kube(peer) => peer.kubeconfig().to_path_buf(),
    }
}

fn helm(helm: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(helm)
        .args(args)
        .args(["--kubeconfig", &kubeconfig.display().to_string(), "-n", NS])
        .env("HELM_CACHE_HOME", kubeconfig.with_file_name("helm-cache"))
        .env("HELM_CONFIG_HOME", kubeconfig.with_file_name("helm-config"))
        .env("HELM_DATA_HOME", kubeconfig.with_file_name("helm-data"))
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real `helm` lists our release, its history and values; a release `helm install`
/// wrote is one we decode.
async fn helm_reads_our_release(cluster: &common::Cluster) {
    let binary = match ferroflux_testpeers::peer_binary("helm") {
        Ok(binary) => binary,
        Err(err) => {
            ferroflux_testpeers::skip(format!("helm interop: {err}"));
            return;
        }
    };
    let kubeconfig = kubeconfig_file(cluster);
    let list: Value =
        serde_json::from_str(&helm(&binary, &kubeconfig, &["list", "-o", "json"])).expect("json");
    let demo = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "demo")
        .unwrap_or_else(|| panic!("helm list shows demo: {list}"));
    assert_eq!(demo["revision"], "4");
    assert_eq!(demo["status"], "deployed");
    assert_eq!(demo["chart"], "demo-1.0.0");
    assert_eq!(demo["app_version"], "1.0");
    let history: Value = serde_json::from_str(&helm(
        &binary,
        &kubeconfig,
        &["history", "demo", "-o", "json"],
    ))
    .expect("json");
    let statuses: Vec<&str> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        vec!["superseded", "superseded", "failed", "deployed"]
    );
    let values: Value = serde_json::from_str(&helm(
        &binary,
        &kubeconfig,
        &["get", "values", "demo", "-o", "json"],
    ))
    .expect("json");
    assert_eq!(values, json!({"greeting": "bonjour", "extra": false}));

    let dir = tempfile::tempdir().expect("temp dir");
    write_chart(dir.path());
    let chart = dir.path().join("demo").display().to_string();
    helm(
        &binary,
        &kubeconfig,
        &["install", "byhelm", &chart, "--set", "greeting=from-helm"],
    );
    let records = records(cluster, "byhelm").await;
    assert_eq!(records.len(), 1);
    let (_, release) = &records[0];
    assert_eq!((release.version, status_of(release)), (1, Status::Deployed));
    assert_eq!(
        release.config,
        json!({"greeting": "from-helm"}).as_object().cloned()
    );
    let chart = release.chart.as_ref().expect("chart");
    assert_eq!((chart.name(), chart.version()), ("demo", "1.0.0"));
    assert!(
        release.manifest.contains("name: byhelm-config"),
        "{}",
        release.manifest
    );
    adopts_and_helm_rolls_back(cluster, &binary, &kubeconfig).await;
}

async fn uninstalls(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    releases
        .delete("demo", &DeleteParams::default())
        .await
        .expect("deleted");
    for _ in 0..300 {
        if releases.get_opt("demo").await.expect("reads").is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        releases.get_opt("demo").await.expect("reads").is_none(),
        "finalized"
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        maps.get_opt("demo-config").await.expect("reads").is_none(),
        "uninstalled"
    );
    assert!(
        records(cluster, "demo").await.is_empty(),
        "release records deleted"
    );
    let charts: Api<ferroflux_api::source::HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    for _ in 0..100 {
        if charts
            .get_opt("flux-system-demo")
            .await
            .expect("reads")
            .is_none()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the HelmChart made for the release is deleted with it");
}

async fn refuses_what_it_does_not_implement(releases: &Api<HelmRelease>) {
    let mut hr = helm_release("remote", json!({}));
    // A kubeconfig through a cloud provider's workload identity (a ConfigMap) is refused.
    hr.spec.kube_config = Some(ferroflux_api::meta::KubeConfigReference {
        secret_ref: None,
        config_map_ref: Some(ferroflux_api::meta::LocalObjectReference {
            name: "kubeconfig".into(),
        }),
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "remote", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "InvalidSpec");
    assert_eq!(
        ready.message,
        "not supported by this helm-controller yet: spec.kubeConfig.configMapRef"
    );
}

/// A `pending-upgrade` record left as by a crash mid-upgrade: the next reconciliation marks
/// it failed and upgrades past it.
async fn a_pending_release_is_recovered(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let (_, deployed) = records(cluster, "demo").await.remove(0);
    let mut pending = deployed;
    pending.version = 3;
    pending.info.as_mut().expect("info").status = Status::PendingUpgrade;
    let secret = storage::to_secret(&pending, NS, storage::Written::Created(0)).expect("encodes");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).expect("a Secret"),
        )
        .await
        .expect("created");
    let patch =
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "recover"}}});
    releases
        .patch("demo", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "demo", "a recovery", |hr| {
        common::ready_is(hr, "True")
            && hr
                .status
                .as_ref()
                .and_then(|s| s.history.as_ref())
                .is_some_and(|h| h.first().is_some_and(|s| s.version == 4))
    })
    .await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(ready.reason, "UpgradeSucceeded");
    let records = records(cluster, "demo").await;
    let statuses: Vec<(u32, Status)> = records
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (4, Status::Deployed),
            (3, Status::Failed),
            (2, Status::Superseded),
            (1, Status::Superseded)
        ]
    );
    let unlocked = &records[1].1.info.as_ref().expect("info").description;
    assert_eq!(
        unlocked,
        "Release unlocked from stale 'pending-upgrade' state"
    );
}

/// An upgrade the API server refuses, with `upgrade.remediation.retries: 1`: rolled back,
/// retried once, rolled back again, then Stalled with Flux's RetriesExceeded.
async fn a_failing_upgrade_is_rolled_back(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("flaky", json!({}));
    hr.spec.upgrade = Some(ferroflux_api::helm::Upgrade {
        remediation: Some(ferroflux_api::helm::UpgradeRemediation {
            retries: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    wait_until(releases, "flaky", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    let patch = json!({"spec": {"values": {"bad": true}}});
    releases
        .patch("flaky", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "flaky", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let stalled = condition(&hr, "Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "RetriesExceeded");
    assert_eq!(stalled.message, "Failed to upgrade after 2 attempt(s)");
    let remediated = condition(&hr, "Remediated").expect("Remediated");
    assert_eq!(
        (remediated.status.as_str(), remediated.reason.as_str()),
        ("True", "RollbackSucceeded")
    );
    assert_eq!(
        remediated.message,
        "Helm rollback to previous release flux-system/flaky.v3 with chart demo@1.0.0 succeeded"
    );
    let released = condition(&hr, "Released").expect("Released");
    assert_eq!(
        (released.status.as_str(), released.reason.as_str()),
        ("False", "UpgradeFailed")
    );
    assert_eq!(condition(&hr, "Ready").expect("Ready").status, "False");
    let status = hr.status.expect("status");
    assert_eq!(status.upgrade_failures, Some(2));
    let records = records(cluster, "flaky").await;
    let statuses: Vec<(u32, Status)> = records
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (5, Status::Deployed),
            (4, Status::Failed),
            (3, Status::Superseded),
            (2, Status::Failed),
            (1, Status::Superseded)
        ]
    );
    assert_eq!(
        records[0].1.info.as_ref().expect("info").rollback_revision,
        3
    );
}

/// A HelmRelease takes over the release `helm install` made (upgrading it to its values),
/// and `helm rollback` rolls our revision back.
async fn adopts_and_helm_rolls_back(cluster: &common::Cluster, binary: &Path, kubeconfig: &Path) {
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    let hr = helm_release("byhelm", json!({"greeting": "adopted"}));
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(&releases, "byhelm", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "Helm upgrade succeeded for release flux-system/byhelm.v2 with chart demo@1.0.0"
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("byhelm-config").await.expect("kept");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("adopted")
    );
    // Helm v4 applies server-side and the fields are the controller's (`helm-controller`, as
    // with Flux's), so a hand rollback forces the conflicts as it would against Flux.
    helm(
        binary,
        kubeconfig,
        &["rollback", "byhelm", "1", "--force-conflicts"],
    );
    let records = records(cluster, "byhelm").await;
    let statuses: Vec<(u32, Status)> = records
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (3, Status::Deployed),
            (2, Status::Superseded),
            (1, Status::Superseded)
        ]
    );
    assert_eq!(
        records[0].1.info.as_ref().expect("info").rollback_revision,
        1
    );
    let config = maps.get("byhelm-config").await.expect("kept");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("from-helm"),
        "helm rolled our revision back"
    );
}

/// `chartRef` to an existing HelmChart: no HelmChart is made, the release installs.
async fn a_chart_ref_installs(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let charts: Api<ferroflux_api::source::HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    let mut chart = ferroflux_api::source::HelmChart::new(
        "shared",
        ferroflux_api::source::HelmChartSpec {
            chart: "demo".into(),
            source_ref: ferroflux_api::source::LocalHelmChartSourceReference {
                kind: "HelmRepository".into(),
                name: "charts".into(),
                ..Default::default()
            },
            interval: "1m".into(),
            ..Default::default()
        },
    );
    chart.metadata.namespace = Some(NS.into());
    charts
        .create(&PostParams::default(), &chart)
        .await
        .expect("created");
    let mut hr = helm_release("by-ref", json!({}));
    hr.spec.chart = None;
    hr.spec.chart_ref = Some(ferroflux_api::helm::CrossNamespaceSourceReference {
        kind: "HelmChart".into(),
        name: "shared".into(),
        ..Default::default()
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "by-ref", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").reason,
        "InstallSucceeded"
    );
    assert_eq!(hr.status.expect("status").helm_chart, None);
    assert!(
        charts
            .get_opt("flux-system-by-ref")
            .await
            .expect("reads")
            .is_none()
    );
}

/// A tenant's ServiceAccount may keep its release records but not create ConfigMaps: the
/// install is refused by the API server and, without retries, stalls.
async fn a_tenant_is_held_to_its_rights(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "release-records", "namespace": NS},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}],
    }))
    .expect("a Role");
    Api::<Role>::namespaced(cluster.client.clone(), NS)
        .create(&PostParams::default(), &role)
        .await
        .expect("created");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "release-records", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "release-records"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": NS}],
    }))
    .expect("a RoleBinding");
    Api::<RoleBinding>::namespaced(cluster.client.clone(), NS)
        .create(&PostParams::default(), &binding)
        .await
        .expect("created");
    // The chart looks its namespace up: the tenant may read namespaces.
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let reader: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "namespace-reader"},
        "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}],
    }))
    .expect("a ClusterRole");
    Api::<ClusterRole>::all(cluster.client.clone())
        .create(&PostParams::default(), &reader)
        .await
        .expect("created");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "namespace-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "namespace-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": NS}],
    }))
    .expect("a ClusterRoleBinding");
    Api::<ClusterRoleBinding>::all(cluster.client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("created");
    let mut hr = helm_release("tenant", json!({}));
    hr.spec.service_account_name = Some("tenant".into());
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "tenant", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InstallFailed")
    );
    assert!(ready.message.contains("forbidden"), "{}", ready.message);
    let stalled = condition(&hr, "Stalled").expect("Stalled");
    assert_eq!(stalled.message, "Failed to install after 1 attempt(s)");
    let records = records(cluster, "tenant").await;
    assert_eq!(records.len(), 1);
    assert_eq!(status_of(&records[0].1), Status::Failed);
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        maps.get_opt("tenant-config")
            .await
            .expect("reads")
            .is_none()
    );
}

/// A Helm OCI chart in a registry, read by an OCIRepository that copies the chart layer, is
/// installed through `chartRef: OCIRepository`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oci_chart_installs_through_chart_ref() {
    use ferroflux_source::oci::helm::HELM_CHART_MEDIA_TYPE;
    let registry = ferroflux_testpeers::require!(ferroflux_testpeers::Registry::start(None));
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = helm_support::start_reconcilers(&cluster);
    let (stop, stopped) = common::shutdown();
    let oci = ferroflux_controllers::ocirepository::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
    );
    tokio::spawn(ferroflux_controllers::ocirepository::run(
        Arc::new(oci),
        stopped,
    ));
    let _oci_stop = stop;
    let dir = tempfile::tempdir().expect("temp dir");
    write_chart(dir.path());
    let (tgz, _) = helm_support::pack_chart(dir.path());
    let client = common::registry_client(Default::default());
    helm_support::push_chart(&client, &registry.host(), "demo", "1.0.0", tgz).await;
    let repositories: Api<ferroflux_api::source::OCIRepository> =
        Api::namespaced(cluster.client.clone(), NS);
    let mut repository = ferroflux_api::source::OCIRepository::new(
        "demo",
        ferroflux_api::source::OCIRepositorySpec {
            url: format!("oci://{}/charts/demo", registry.host()),
            reference: Some(ferroflux_api::source::OCIRepositoryRef {
                tag: Some("1.0.0".into()),
                ..Default::default()
            }),
            layer_selector: Some(ferroflux_api::source::OCILayerSelector {
                media_type: Some(HELM_CHART_MEDIA_TYPE.into()),
                operation: Some("copy".into()),
            }),
            insecure: Some(true),
            interval: "1m".into(),
            ..Default::default()
        },
    );
    repository.metadata.namespace = Some(NS.into());
    repositories
        .create(&PostParams::default(), &repository)
        .await
        .expect("created");
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    let mut hr = helm_release("from-oci", json!({"greeting": "oci"}));
    hr.spec.chart = None;
    hr.spec.chart_ref = Some(ferroflux_api::helm::CrossNamespaceSourceReference {
        kind: "OCIRepository".into(),
        name: "demo".into(),
        ..Default::default()
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(&releases, "from-oci", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "Helm install succeeded for release flux-system/from-oci.v1 with chart demo@1.0.0"
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("from-oci-config").await.expect("installed");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("oci")
    );
    cluster.server.shutdown().await;
}

/// A Ready HelmRelease `name` with `driftDetection.mode: mode`, whose `<name>-config` is then
/// edited by hand and a reconcile requested: the first version of it with Drifted=True (seen
/// through a watch, so a later reconcile finding no drift cannot hide it).
async fn drifted_release(
    cluster: &common::Cluster,
    releases: &Api<HelmRelease>,
    name: &str,
    mode: &str,
) -> (HelmRelease, Api<ConfigMap>) {
    let mut hr = helm_release(name, json!({}));
    hr.spec.drift_detection = Some(ferroflux_api::helm::DriftDetection {
        mode: Some(mode.into()),
        ignore: None,
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let ready = wait_until(releases, name, "Ready", |hr| common::ready_is(hr, "True")).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let edit = json!({"data": {"greeting": "tampered"}});
    maps.patch(
        &format!("{name}-config"),
        &PatchParams::default(),
        &Patch::Merge(&edit),
    )
    .await
    .expect("edited by hand");
    let request = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": format!("{name}-1")}}});
    releases
        .patch(name, &PatchParams::default(), &Patch::Merge(&request))
        .await
        .expect("patched");
    let since = ready.metadata.resource_version.expect("a resourceVersion");
    let hr = common::seen_since(releases, name, &since, "a drift report", |hr| {
        condition(hr, "Drifted").is_some_and(|c| c.status == "True")
    })
    .await;
    (hr, maps)
}

/// `driftDetection.mode: enabled`: a hand edit of a release's object is reverted on the next
/// reconciliation (Drifted True, DriftDetected), then no drift is found.
async fn drift_is_corrected(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    // Any reconcile may be the one that corrects it (one queued while the install ran, or
    // the requested one), and the next one finds no drift: the helper watches for it.
    let (hr, maps) = drifted_release(cluster, releases, "drifty", "enabled").await;
    let drifted = condition(&hr, "Drifted").expect("Drifted");
    assert_eq!(drifted.reason, "DriftDetected");
    assert_eq!(
        drifted.message,
        "Cluster state of release flux-system/drifty.v1 has drifted from the desired state:\nConfigMap/flux-system/drifty-config configured"
    );
    let config = maps.get("drifty-config").await.expect("kept");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("hello"),
        "the hand edit is reverted"
    );
    releases
        .patch(
            "drifty",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "drift-2"}}})),
        )
        .await
        .expect("patched");
    wait_until(releases, "drifty", "no drift", |hr| {
        condition(hr, "Drifted")
            .is_some_and(|c| c.status == "False" && c.reason == "NoDriftDetected")
    })
    .await;
}

/// `flux reconcile --force` upgrades a release in sync; `--reset` clears the failures of a
/// release that ran out of retries, which is then upgraded past its failed install.
async fn force_and_reset_requests(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let request = |annotation: &str, at: &str| {
        json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": at, annotation: at}}})
    };
    releases
        .patch(
            "by-ref",
            &PatchParams::default(),
            &Patch::Merge(&request("reconcile.fluxcd.io/forceAt", "force-1")),
        )
        .await
        .expect("patched");
    let hr = wait_until(releases, "by-ref", "a forced upgrade", |hr| {
        hr.status
            .as_ref()
            .is_some_and(|s| s.last_handled_force_at.as_deref() == Some("force-1"))
    })
    .await;
    assert_eq!(
        condition(&hr, "Ready").expect("Ready").message,
        "Helm upgrade succeeded for release flux-system/by-ref.v2 with chart demo@1.0.0"
    );
    // Give the tenant the right it lacked, then ask for a reset.
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(cluster.client.clone(), NS);
    let rules = json!({"rules": [
        {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["*"]}]});
    roles
        .patch(
            "release-records",
            &PatchParams::default(),
            &Patch::Merge(&rules),
        )
        .await
        .expect("patched");
    releases
        .patch(
            "tenant",
            &PatchParams::default(),
            &Patch::Merge(&request("reconcile.fluxcd.io/resetAt", "reset-1")),
        )
        .await
        .expect("patched");
    let hr = wait_until(releases, "tenant", "Ready after a reset", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    let status = hr.status.clone().expect("status");
    assert_eq!(status.last_handled_reset_at.as_deref(), Some("reset-1"));
    assert_eq!(status.install_failures, Some(0), "cleared");
    assert!(condition(&hr, "Stalled").is_none());
    let records = records(cluster, "tenant").await;
    let statuses: Vec<(u32, Status)> = records
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(statuses, vec![(2, Status::Deployed), (1, Status::Failed)]);
}

/// Post-renderers and common metadata, drift detection in `warn` mode, the RetryOnFailure
/// strategy and Helm tests (issue 17's remaining fields).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_renderers_drift_warnings_and_retries() {
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let _stops = helm_support::start_reconcilers(&cluster);
    create_repository(&cluster).await;
    let releases: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), NS);
    post_renderers_and_common_metadata(&cluster, &releases).await;
    drift_is_reported_in_warn_mode(&cluster, &releases).await;
    failures_are_retried_without_remediation(&cluster, &releases).await;
    tests_run_after_each_release(&cluster, &releases).await;
    cluster.server.shutdown().await;
}

/// A strategic-merge patch setting `data.patched` to `value` on the release's ConfigMap, and
/// a JSON6902 patch with a target.
fn post_renderers(value: &str) -> Vec<PostRenderer> {
    use ferroflux_api::meta::{Patch as KustomizePatch, Selector};
    vec![PostRenderer {
        kustomize: Some(ferroflux_api::helm::Kustomize {
            patches: Some(vec![
                KustomizePatch {
                    patch: format!(
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered-config\ndata:\n  patched: \"{value}\"\n"
                    ),
                    target: None,
                },
                KustomizePatch {
                    patch: "- op: add\n  path: /data/json6902\n  value: \"yes\"\n".into(),
                    target: Some(Selector {
                        kind: Some("ConfigMap".into()),
                        name: Some("rendered-config".into()),
                        ..Selector::default()
                    }),
                },
            ]),
            images: None,
        }),
    }]
}

fn common_metadata(team: &str) -> ferroflux_api::meta::CommonMetadata {
    ferroflux_api::meta::CommonMetadata {
        labels: Some([("team".to_string(), team.to_string())].into()),
        annotations: Some([("example.com/owner".to_string(), "platform".to_string())].into()),
    }
}

fn entry<'a>(map: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    map.as_ref()?.get(key).map(String::as_str)
}

/// The post-renderers patch the stored and applied manifest (not the hooks), common metadata
/// labels and annotates every object of it; a change of either upgrades the release.
async fn post_renderers_and_common_metadata(
    cluster: &common::Cluster,
    releases: &Api<HelmRelease>,
) {
    let mut hr = helm_release("rendered", json!({}));
    hr.spec.post_renderers = Some(post_renderers("one"));
    hr.spec.common_metadata = Some(common_metadata("a"));
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "rendered", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    let status = hr.status.clone().expect("status");
    let renderers_digest = status.observed_post_renderers_digest.expect("recorded");
    assert!(
        renderers_digest.starts_with("sha256:"),
        "{renderers_digest}"
    );
    let metadata_digest = status.observed_common_metadata_digest.expect("recorded");
    assert!(metadata_digest.starts_with("sha256:"), "{metadata_digest}");
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    let config = maps.get("rendered-config").await.expect("installed");
    assert_eq!(entry(&config.data, "patched"), Some("one"));
    assert_eq!(entry(&config.data, "json6902"), Some("yes"));
    assert_eq!(entry(&config.data, "greeting"), Some("hello"));
    assert_eq!(entry(&config.metadata.labels, "team"), Some("a"));
    assert_eq!(
        entry(&config.metadata.labels, "helm.toolkit.fluxcd.io/name"),
        Some("rendered")
    );
    assert_eq!(
        entry(&config.metadata.annotations, "example.com/owner"),
        Some("platform")
    );
    let hook = maps
        .get("rendered-post")
        .await
        .expect("the post-install hook");
    assert_eq!(
        entry(&hook.metadata.labels, "team"),
        None,
        "hooks are not post-rendered"
    );
    let (_, release) = records(cluster, "rendered").await.remove(0);
    assert!(
        release.manifest.contains("patched: one"),
        "{}",
        release.manifest
    );
    let patch = json!({"spec": {"postRenderers": post_renderers("two")}});
    releases
        .patch("rendered", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "rendered", "an upgrade for new post-renderers", |hr| {
        condition(hr, "Ready").is_some_and(|c| {
            c.status == "True"
                && c.message
                    == "Helm upgrade succeeded for release flux-system/rendered.v2 with chart demo@1.0.0"
        })
    })
    .await;
    let status = hr.status.expect("status");
    assert_ne!(
        status.observed_post_renderers_digest.as_deref(),
        Some(renderers_digest.as_str())
    );
    let config = maps.get("rendered-config").await.expect("kept");
    assert_eq!(entry(&config.data, "patched"), Some("two"));
    let patch = json!({"spec": {"commonMetadata": common_metadata("b")}});
    releases
        .patch("rendered", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    wait_until(releases, "rendered", "an upgrade for new common metadata", |hr| {
        condition(hr, "Ready").is_some_and(|c| {
            c.status == "True"
                && c.message
                    == "Helm upgrade succeeded for release flux-system/rendered.v3 with chart demo@1.0.0"
        })
    })
    .await;
    let config = maps.get("rendered-config").await.expect("kept");
    assert_eq!(entry(&config.metadata.labels, "team"), Some("b"));
}

/// `driftDetection.mode: warn`: a hand edit is reported (Drifted, DriftDetected) and left
/// in place; the release stays Ready and is not upgraded.
async fn drift_is_reported_in_warn_mode(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let (hr, maps) = drifted_release(cluster, releases, "warned", "warn").await;
    let drifted = condition(&hr, "Drifted").expect("Drifted");
    assert_eq!(drifted.reason, "DriftDetected");
    assert_eq!(
        drifted.message,
        "Cluster state of release flux-system/warned.v1 has drifted from the desired state:\nConfigMap/flux-system/warned-config configured"
    );
    assert_eq!(condition(&hr, "Ready").expect("Ready").status, "True");
    let config = maps.get("warned-config").await.expect("kept");
    assert_eq!(
        entry(&config.data, "greeting"),
        Some("tampered"),
        "warn mode does not correct"
    );
    assert_eq!(records(cluster, "warned").await.len(), 1, "no upgrade");
    // As helm-controller: drift found and left is a Warning event, not a Normal one.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster.client.clone(), common::NS);
    let drift: Vec<_> = events
        .list(&Default::default())
        .await
        .expect("events list")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some("warned")
                && e.reason.as_deref() == Some("DriftDetected")
        })
        .map(|e| e.type_.unwrap_or_default())
        .collect();
    assert!(
        !drift.is_empty() && drift.iter().all(|t| t == "Warning"),
        "DriftDetected events: {drift:?}"
    );
}

/// RetryOnFailure for install and upgrade: a failure is not remediated (no uninstall, no
/// rollback) but retried after `retryInterval`, Reconciling saying so; a fixed spec releases.
async fn failures_are_retried_without_remediation(
    cluster: &common::Cluster,
    releases: &Api<HelmRelease>,
) {
    use ferroflux_api::helm::{Install, InstallStrategy, Upgrade, UpgradeStrategy};
    let mut hr = helm_release("retried", json!({"bad": true}));
    hr.spec.install = Some(Install {
        strategy: Some(InstallStrategy {
            name: "RetryOnFailure".into(),
            retry_interval: Some("2s".into()),
        }),
        ..Default::default()
    });
    hr.spec.upgrade = Some(Upgrade {
        strategy: Some(UpgradeStrategy {
            name: "RetryOnFailure".into(),
            retry_interval: Some("2s".into()),
        }),
        ..Default::default()
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "retried", "a failed install", |hr| {
        condition(hr, "Ready").is_some_and(|c| c.reason == "InstallFailed")
    })
    .await;
    assert_retrying(&hr);
    // The retry of a failed install is an upgrade of the failed release.
    let hr = wait_until(releases, "retried", "a retry", |hr| {
        condition(hr, "Ready").is_some_and(|c| c.reason == "UpgradeFailed")
    })
    .await;
    assert_retrying(&hr);
    let failed = records(cluster, "retried").await;
    assert!(failed.len() >= 2, "retried: {} records", failed.len());
    assert!(
        failed.iter().all(|(_, r)| status_of(r) == Status::Failed),
        "nothing uninstalled or rolled back"
    );
    let patch = json!({"spec": {"values": {"bad": false}}});
    releases
        .patch("retried", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "retried", "a release", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    assert!(condition(&hr, "Reconciling").is_none());
    let patch = json!({"spec": {"values": {"bad": true}}});
    releases
        .patch("retried", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "retried", "a failed upgrade", |hr| {
        condition(hr, "Ready").is_some_and(|c| c.reason == "UpgradeFailed")
    })
    .await;
    assert_retrying(&hr);
    let records = records(cluster, "retried").await;
    assert_eq!(status_of(&records[0].1), Status::Failed);
    assert!(
        records
            .iter()
            .all(|(_, r)| r.info.as_ref().is_some_and(|i| i.rollback_revision == 0)),
        "no rollback"
    );
    assert!(
        records
            .iter()
            .any(|(_, r)| status_of(r) == Status::Deployed),
        "the deployed revision stays deployed"
    );
    releases
        .delete("retried", &DeleteParams::default())
        .await
        .expect("deleted");
}

fn assert_retrying(hr: &HelmRelease) {
    let reconciling = condition(hr, "Reconciling").expect("Reconciling");
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", "ProgressingWithRetry")
    );
    assert_eq!(reconciling.message, "retrying after 2s");
    assert_eq!(condition(hr, "Ready").expect("Ready").status, "False");
    assert!(condition(hr, "Stalled").is_none());
    assert!(condition(hr, "Remediated").is_none());
}

/// `spec.test`: the selected test hooks run after the install (the excluded Pod does not),
/// TestSuccess and Ready say so and the snapshot records them; an upgrade whose test fails
/// is remediated as a failed upgrade (rolled back), then stalls when retries are out.
async fn tests_run_after_each_release(cluster: &common::Cluster, releases: &Api<HelmRelease>) {
    let mut hr = helm_release("tested", json!({"tests": true}));
    hr.spec.test = Some(ferroflux_api::helm::Test {
        enable: Some(true),
        filters: Some(vec![ferroflux_api::helm::TestFilter {
            name: "tested-test".into(),
            exclude: Some(true),
        }]),
        ..Default::default()
    });
    hr.spec.upgrade = Some(ferroflux_api::helm::Upgrade {
        remediation: Some(ferroflux_api::helm::UpgradeRemediation {
            retries: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    });
    releases
        .create(&PostParams::default(), &hr)
        .await
        .expect("created");
    let hr = wait_until(releases, "tested", "Ready", |hr| {
        common::ready_is(hr, "True")
    })
    .await;
    let ready = condition(&hr, "Ready").expect("Ready");
    assert_eq!(ready.reason, "TestSucceeded");
    assert_eq!(
        ready.message,
        "Helm test succeeded for release flux-system/tested.v1 with chart demo@1.0.0: 1 test hook completed successfully"
    );
    let tested = condition(&hr, "TestSuccess").expect("TestSuccess");
    assert_eq!(tested.status, "True");
    let history = hr.status.expect("status").history.expect("history");
    let hooks = history[0].test_hooks.clone().expect("test hooks recorded");
    assert_eq!(hooks.keys().collect::<Vec<_>>(), vec!["tested-config-test"]);
    assert_eq!(
        hooks["tested-config-test"].phase.as_deref(),
        Some("Succeeded")
    );
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        maps.get_opt("tested-config-test")
            .await
            .expect("reads")
            .is_some()
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        pods.get_opt("tested-test").await.expect("reads").is_none(),
        "the filtered-out test does not run"
    );
    let patch = json!({"spec": {"values": {"tests": true, "failTest": true}}});
    releases
        .patch("tested", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let hr = wait_until(releases, "tested", "Stalled", |hr| {
        condition(hr, "Stalled").is_some_and(|c| c.status == "True")
    })
    .await;
    let stalled = condition(&hr, "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.reason.as_str(), stalled.message.as_str()),
        ("RetriesExceeded", "Failed to upgrade after 2 attempt(s)")
    );
    let tested = condition(&hr, "TestSuccess").expect("TestSuccess");
    assert_eq!(
        (tested.status.as_str(), tested.reason.as_str()),
        ("False", "TestFailed")
    );
    assert!(
        tested.message.starts_with(
            "Helm test failed for release flux-system/tested.v4 with chart demo@1.0.0: "
        ),
        "{}",
        tested.message
    );
    let remediated = condition(&hr, "Remediated").expect("Remediated");
    assert_eq!(remediated.reason, "RollbackSucceeded");
    let statuses: Vec<(u32, Status)> = records(cluster, "tested")
        .await
        .iter()
        .map(|(_, r)| (r.version, status_of(r)))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (5, Status::Deployed),
            (4, Status::Superseded),
            (3, Status::Superseded),
            (2, Status::Superseded),
            (1, Status::Superseded)
        ],
        "a failed test leaves the release deployed; Flux rolls it back"
    );
}
