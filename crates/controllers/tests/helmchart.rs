//! The HelmChart reconciler end to end: from a HelmRepository (index and charts on a loopback
//! HTTP server, indexed by the HelmRepository reconciler) the semver-highest matching version
//! is pulled; from a GitRepository artifact the chart directory is packaged with its values
//! files merged and the `Revision` strategy's revision.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{NS, condition, wait_until};
use ferroflux_api::source::{
    HelmChart, HelmChartSpec, HelmRepository, HelmRepositorySpec, LocalHelmChartSourceReference,
};
use ferroflux_controllers::{helmchart, helmrepository};
use ferroflux_source::artifact::{IgnoreRules, pack_dir};
use ferroflux_source::oci::cosign::{self, SigningKey};
use ferroflux_source::oci::helm::{HELM_CHART_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE};
use ferroflux_source::oci::{OciClient, OciOptions};
use ferroflux_testpeers::require;
use kube::api::{Api, PostParams};
use serde_json::json;

fn write(dir: &std::path::Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

/// Serves an index of podinfo 0.9.0, 1.0.0, 1.2.0 and 2.0.0-rc.1 and the chart archives.
async fn chart_repository() -> String {
    let mut files = BTreeMap::new();
    let mut index = String::from("apiVersion: v1\nentries:\n  podinfo:\n");
    for version in ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"] {
        let dir = tempfile::tempdir().expect("temp dir");
        write(
            dir.path(),
            "podinfo/Chart.yaml",
            &format!("apiVersion: v2\nname: podinfo\nversion: {version}\n"),
        );
        write(dir.path(), "podinfo/values.yaml", "replicaCount: 1\n");
        let mut tgz = Vec::new();
        let packed = pack_dir(dir.path(), &IgnoreRules::none(), &mut tgz).expect("pack");
        let hex = packed.digest.trim_start_matches("sha256:").to_string();
        index.push_str(&format!(
            "  - name: podinfo\n    version: {version}\n    urls: [charts/podinfo-{version}.tgz]\n    digest: {hex}\n"
        ));
        files.insert(format!("/charts/podinfo-{version}.tgz"), tgz);
    }
    files.insert("/index.yaml".to_string(), index.into_bytes());
    common::serve_files(files).await
}

async fn wait_ready(api: &Api<HelmChart>, name: &str) -> HelmChart {
    wait_until(api, name, "Ready", |chart| {
        condition(chart, "Ready").is_some_and(|c| c.status == "True")
    })
    .await
}

fn helm_chart(
    name: &str,
    chart: &str,
    version: Option<&str>,
    kind: &str,
    source: &str,
) -> HelmChart {
    let mut object = HelmChart::new(
        name,
        HelmChartSpec {
            chart: chart.into(),
            version: version.map(str::to_string),
            source_ref: LocalHelmChartSourceReference {
                kind: kind.into(),
                name: source.into(),
                ..Default::default()
            },
            interval: "2s".into(),
            ..Default::default()
        },
    );
    object.metadata.namespace = Some(NS.into());
    object
}

/// Downloads a chart artifact and extracts it into a fresh directory under `root`.
async fn unpack(root: &std::path::Path, chart: &HelmChart, into: &str) -> std::path::PathBuf {
    let artifact = common::artifact(chart).expect("artifact");
    common::download(&artifact, root.join(into)).await
}

/// Starts the HelmChart reconciler (and the HelmRepository one with `repositories`) until
/// the returned senders are dropped.
fn start(cluster: &common::Cluster, repositories: bool) -> Vec<tokio::sync::oneshot::Sender<()>> {
    let mut stops = Vec::new();
    if repositories {
        let (stop, stopped) = common::shutdown();
        let repo_ctx = Arc::new(helmrepository::Context::new(
            cluster.client.clone(),
            cluster.storage.clone(),
        ));
        tokio::spawn(helmrepository::run(repo_ctx, stopped));
        stops.push(stop);
    }
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let (stop, stopped) = common::shutdown();
    let chart_ctx = Arc::new(helmchart::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
        http,
    ));
    tokio::spawn(helmchart::run(chart_ctx, stopped));
    stops.push(stop);
    stops
}

/// Creates the HelmRepository `name` in [`NS`].
async fn create_repository(cluster: &common::Cluster, name: &str, spec: HelmRepositorySpec) {
    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut repo = HelmRepository::new(name, spec);
    repo.metadata.namespace = Some(NS.into());
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");
}

/// Creates each chart in [`NS`].
async fn create_charts(charts: &Api<HelmChart>, objects: &[HelmChart]) {
    for chart in objects {
        charts
            .create(&PostParams::default(), chart)
            .await
            .expect("created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_a_repository_and_from_git() {
    let cluster = require!(common::cluster().await);
    let _stops = start(&cluster, true);
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    semver_selects_charts_of_a_repository(&cluster, &charts).await;
    let revision = publish_git_chart(&cluster).await;
    a_git_chart_is_packaged_with_merged_values(&cluster, &charts, revision).await;
    a_missing_chart_path_stalls(&charts).await;
    cluster.server.shutdown().await;
}

/// From an HTTP HelmRepository: the highest release without a version, the highest in range
/// with one.
async fn semver_selects_charts_of_a_repository(cluster: &common::Cluster, charts: &Api<HelmChart>) {
    let url = chart_repository().await;
    let spec = HelmRepositorySpec {
        url,
        interval: Some("1m".into()),
        ..Default::default()
    };
    create_repository(cluster, "charts", spec).await;
    // Charts wait (and requeue) while the index is missing; start them once it is stored.
    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    wait_until(&repos, "charts", "an index", |r| {
        common::artifact(r).is_some()
    })
    .await;
    let pinned = Some(">=1.0.0 <1.2.0");
    create_charts(
        charts,
        &[
            helm_chart("latest", "podinfo", None, "HelmRepository", "charts"),
            helm_chart("pinned", "podinfo", pinned, "HelmRepository", "charts"),
        ],
    )
    .await;
    let latest = wait_ready(charts, "latest").await;
    let ready = condition(&latest, "Ready").expect("Ready");
    assert_eq!(ready.reason, "ChartPullSucceeded");
    assert_eq!(ready.message, "pulled 'podinfo' chart with version '1.2.0'");
    let dir = unpack(cluster.dir.path(), &latest, "latest").await;
    assert!(
        std::fs::read_to_string(dir.join("podinfo/Chart.yaml"))
            .expect("chart")
            .contains("version: 1.2.0")
    );
    let pinned = wait_ready(charts, "pinned").await;
    assert_eq!(
        common::artifact(&pinned).map(|a| a.revision).as_deref(),
        Some("1.0.0")
    );
}

/// Stores an artifact holding a chart directory with environment values as the artifact of
/// the GitRepository `fleet`; returns its revision.
async fn publish_git_chart(cluster: &common::Cluster) -> &'static str {
    let tree = cluster.dir.path().join("git-tree");
    write(
        &tree,
        "charts/app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.3.0\n",
    );
    write(
        &tree,
        "charts/app/values.yaml",
        "replicaCount: 1\nimage:\n  repository: ghcr.io/app\n  tag: '1.0'\n",
    );
    write(
        &tree,
        "charts/app/values-prod.yaml",
        "replicaCount: 3\nimage:\n  tag: '1.1'\n",
    );
    let revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
    common::publish_git_artifact(cluster, NS, "fleet", &tree, revision).await;
    revision
}

/// A chart from the GitRepository `fleet` is packaged with its values files merged in order
/// and the `Revision` strategy's version.
async fn a_git_chart_is_packaged_with_merged_values(
    cluster: &common::Cluster,
    charts: &Api<HelmChart>,
    revision: &str,
) {
    let mut from_git = helm_chart("app", "./charts/app", None, "GitRepository", "fleet");
    from_git.spec.values_files = Some(vec!["values.yaml".into(), "values-prod.yaml".into()]);
    from_git.spec.reconcile_strategy = Some("Revision".into());
    create_charts(charts, &[from_git]).await;
    let app = wait_ready(charts, "app").await;
    let ready = condition(&app, "Ready").expect("Ready");
    assert_eq!(ready.reason, "ChartPackageSucceeded");
    let status = app.status.clone().expect("status");
    assert_eq!(
        status.artifact.as_ref().map(|a| a.revision.as_str()),
        Some("0.3.0+0123456789ab")
    );
    assert_eq!(
        status.observed_source_artifact_revision.as_deref(),
        Some(revision)
    );
    assert_eq!(status.observed_chart_name.as_deref(), Some("app"));
    let dir = unpack(cluster.dir.path(), &app, "app").await;
    let values: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("app/values.yaml")).expect("values"),
    )
    .expect("yaml");
    assert_eq!(
        values,
        json!({"replicaCount": 3, "image": {"repository": "ghcr.io/app", "tag": "1.1"}})
    );
}

/// A chart path absent from the GitRepository's artifact stalls, naming the path.
async fn a_missing_chart_path_stalls(charts: &Api<HelmChart>) {
    let missing = helm_chart(
        "missing",
        "./charts/nothing-here",
        None,
        "GitRepository",
        "fleet",
    );
    create_charts(charts, &[missing]).await;
    let chart = wait_until(charts, "missing", "Stalled", |c| {
        condition(c, "Stalled").is_some()
    })
    .await;
    let stalled = condition(&chart, "Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "ChartPackageError");
    assert!(
        stalled.message.contains("nothing-here"),
        "{}",
        stalled.message
    );
}

/// Pushes podinfo 0.9.0, 1.0.0, 1.2.0 and 2.0.0-rc.1 as Helm OCI charts to
/// `oci://<host>/charts/podinfo`, with a cosign signature by `key` on 1.2.0 only.
async fn push_oci_charts(host: &str, key: &SigningKey) {
    let client = OciClient::new(&OciOptions {
        insecure: true,
        ..OciOptions::default()
    })
    .expect("client");
    for version in ["0.9.0", "1.0.0", "1.2.0", "2.0.0-rc.1"] {
        let dir = tempfile::tempdir().expect("temp dir");
        write(
            dir.path(),
            "podinfo/Chart.yaml",
            &format!("apiVersion: v2\nname: podinfo\nversion: {version}\n"),
        );
        let mut tgz = Vec::new();
        pack_dir(dir.path(), &IgnoreRules::none(), &mut tgz).expect("pack");
        let config = json!({"apiVersion": "v2", "name": "podinfo", "version": version}).to_string();
        let digest = client
            .push_layers(
                &format!("oci://{host}/charts/podinfo:{version}"),
                HELM_CONFIG_MEDIA_TYPE,
                config.into_bytes(),
                vec![(HELM_CHART_MEDIA_TYPE.to_string(), tgz)],
                BTreeMap::new(),
            )
            .await
            .expect("push chart");
        if version == "1.2.0" {
            cosign::sign(
                &client,
                &format!("oci://{host}/charts/podinfo"),
                &digest,
                key,
            )
            .await
            .expect("sign 1.2.0");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_an_oci_helm_repository() {
    let registry = require!(ferroflux_testpeers::Registry::start(None));
    let cluster = require!(common::cluster().await);
    let _stops = start(&cluster, false);
    let key = common::cosign_keys_secret(&cluster.client).await;
    push_oci_charts(&registry.host(), &key).await;
    let spec = HelmRepositorySpec {
        url: format!("oci://{}/charts", registry.host()),
        repository_type: Some("oci".into()),
        insecure: Some(true),
        ..Default::default()
    };
    create_repository(&cluster, "oci-charts", spec).await;
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    let from_oci = helm_chart(
        "from-oci",
        "podinfo",
        Some("1.x"),
        "HelmRepository",
        "oci-charts",
    );
    create_charts(&charts, &[from_oci]).await;
    let chart = wait_ready(&charts, "from-oci").await;
    let ready = condition(&chart, "Ready").expect("Ready");
    assert_eq!(ready.message, "pulled 'podinfo' chart with version '1.2.0'");
    let dir = unpack(cluster.dir.path(), &chart, "from-oci").await;
    assert!(
        std::fs::read_to_string(dir.join("podinfo/Chart.yaml"))
            .expect("chart")
            .contains("version: 1.2.0")
    );
    only_signed_oci_charts_are_accepted(&charts).await;
    cluster.server.shutdown().await;
}

/// With `spec.verify`, the signed 1.2.0 is verified and the unsigned 1.0.0 refused, nothing
/// stored.
async fn only_signed_oci_charts_are_accepted(charts: &Api<HelmChart>) {
    let mut signed = helm_chart(
        "signed",
        "podinfo",
        Some("1.x"),
        "HelmRepository",
        "oci-charts",
    );
    signed.spec.verify = Some(common::cosign_verification());
    let mut unsigned = helm_chart(
        "unsigned",
        "podinfo",
        Some("1.0.0"),
        "HelmRepository",
        "oci-charts",
    );
    unsigned.spec.verify = Some(common::cosign_verification());
    create_charts(charts, &[signed, unsigned]).await;
    let signed = wait_ready(charts, "signed").await;
    let verified = condition(&signed, "SourceVerified").expect("SourceVerified");
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "Succeeded")
    );
    let refused = wait_until(charts, "unsigned", "Ready=False", |chart| {
        condition(chart, "Ready").is_some_and(|c| c.status == "False")
    })
    .await;
    let ready = condition(&refused, "Ready").expect("Ready");
    assert_eq!(ready.reason, "VerificationError", "{}", ready.message);
    let verified = condition(&refused, "SourceVerified").expect("SourceVerified");
    assert_eq!(verified.status, "False");
    assert!(
        refused.status.and_then(|s| s.artifact).is_none(),
        "nothing stored"
    );
}
