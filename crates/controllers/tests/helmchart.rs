//! The HelmChart reconciler end to end: from a HelmRepository (index and charts on a loopback
//! HTTP server, indexed by the HelmRepository reconciler) the semver-highest matching version
//! is pulled; from a GitRepository artifact the chart directory is packaged with its values
//! files merged and the `Revision` strategy's revision.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::NS;
use ferroflux_api::meta::Condition;
use ferroflux_api::source::{
    GitRepository, GitRepositorySpec, HelmChart, HelmChartSpec, HelmRepository, HelmRepositorySpec,
    LocalHelmChartSourceReference,
};
use ferroflux_controllers::{helmchart, helmrepository};
use ferroflux_source::artifact::{ExtractOptions, IgnoreRules, pack_dir};
use ferroflux_source::storage::{ObjectKey, fetch_artifact};
use ferroflux_testpeers::require;
use kube::api::{Api, Patch, PatchParams, PostParams};
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
    let files = Arc::new(files);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(body) => (axum::http::StatusCode::OK, body.clone()),
                None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn condition<'a>(chart: &'a HelmChart, type_: &str) -> Option<&'a Condition> {
    chart
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

async fn wait_ready(api: &Api<HelmChart>, name: &str) -> HelmChart {
    for _ in 0..300 {
        if let Some(chart) = api.get_opt(name).await.expect("reads")
            && condition(&chart, "Ready").is_some_and(|c| c.status == "True")
        {
            return chart;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chart = api.get(name).await.expect("reads");
    panic!("HelmChart {name} never got Ready: {:#?}", chart.status);
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
    let artifact = chart
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .expect("artifact");
    let dest = root.join(into);
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    fetch_artifact(
        &http,
        &artifact.url,
        artifact.digest.as_deref().expect("digest"),
        &dest,
        &ExtractOptions::default(),
    )
    .await
    .expect("served with its digest");
    dest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_a_repository_and_from_git() {
    let cluster = require!(common::cluster().await);
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let (_stop_repo, stopped) = common::shutdown();
    let repo_ctx = Arc::new(helmrepository::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
    ));
    tokio::spawn(helmrepository::run(repo_ctx, stopped));
    let (_stop_chart, stopped) = common::shutdown();
    let chart_ctx = Arc::new(helmchart::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
        http,
    ));
    tokio::spawn(helmchart::run(chart_ctx, stopped));

    let url = chart_repository().await;
    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut repo = HelmRepository::new(
        "charts",
        HelmRepositorySpec {
            url,
            interval: Some("1m".into()),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");

    // Charts wait (and requeue) while the index is missing; start them once it is stored.
    for _ in 0..300 {
        let repo = repos.get("charts").await.expect("reads");
        if repo.status.and_then(|s| s.artifact).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    charts
        .create(
            &PostParams::default(),
            &helm_chart("latest", "podinfo", None, "HelmRepository", "charts"),
        )
        .await
        .expect("created");
    charts
        .create(
            &PostParams::default(),
            &helm_chart(
                "pinned",
                "podinfo",
                Some(">=1.0.0 <1.2.0"),
                "HelmRepository",
                "charts",
            ),
        )
        .await
        .expect("created");
    let latest = wait_ready(&charts, "latest").await;
    let ready = condition(&latest, "Ready").expect("Ready");
    assert_eq!(ready.reason, "ChartPullSucceeded");
    assert_eq!(ready.message, "pulled 'podinfo' chart with version '1.2.0'");
    let dir = unpack(cluster.dir.path(), &latest, "latest").await;
    assert!(
        std::fs::read_to_string(dir.join("podinfo/Chart.yaml"))
            .expect("chart")
            .contains("version: 1.2.0")
    );
    let pinned = wait_ready(&charts, "pinned").await;
    assert_eq!(
        pinned
            .status
            .and_then(|s| s.artifact)
            .map(|a| a.revision)
            .as_deref(),
        Some("1.0.0")
    );

    // A GitRepository whose artifact holds a chart directory with environment values.
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
    let stored = cluster
        .storage
        .store_dir(
            &ObjectKey::new("GitRepository", NS, "fleet"),
            revision,
            &tree,
            &IgnoreRules::none(),
        )
        .expect("publish the source artifact");
    let gits: Api<GitRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut git = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: "https://git.example/fleet".into(),
            interval: "1m".into(),
            ..Default::default()
        },
    );
    git.metadata.namespace = Some(NS.into());
    gits.create(&PostParams::default(), &git)
        .await
        .expect("created");
    let status = json!({"status": {"artifact": {
        "path": stored.path, "url": stored.url, "revision": stored.revision,
        "digest": stored.digest, "size": stored.size,
        "lastUpdateTime": stored.last_update_time.to_string()}}});
    gits.patch_status("fleet", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");

    let mut from_git = helm_chart("app", "./charts/app", None, "GitRepository", "fleet");
    from_git.spec.values_files = Some(vec!["values.yaml".into(), "values-prod.yaml".into()]);
    from_git.spec.reconcile_strategy = Some("Revision".into());
    charts
        .create(&PostParams::default(), &from_git)
        .await
        .expect("created");
    let app = wait_ready(&charts, "app").await;
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

    let mut missing = helm_chart(
        "missing",
        "./charts/nothing-here",
        None,
        "GitRepository",
        "fleet",
    );
    missing.metadata.name = Some("missing".into());
    charts
        .create(&PostParams::default(), &missing)
        .await
        .expect("created");
    for _ in 0..300 {
        let chart = charts.get("missing").await.expect("reads");
        if let Some(stalled) = condition(&chart, "Stalled") {
            assert_eq!(stalled.reason, "ChartPackageError");
            assert!(
                stalled.message.contains("nothing-here"),
                "{}",
                stalled.message
            );
            cluster.server.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a missing chart path never stalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_from_an_oci_helm_repository() {
    use ferroflux_source::oci::helm::{HELM_CHART_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE};
    use ferroflux_source::oci::{OciClient, OciOptions};
    let registry = require!(ferroflux_testpeers::Registry::start(None));
    let cluster = require!(common::cluster().await);
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let (_stop, stopped) = common::shutdown();
    let chart_ctx = Arc::new(helmchart::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
        http,
    ));
    tokio::spawn(helmchart::run(chart_ctx, stopped));

    let (key, pem) = {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
        let digest = ferroflux_source::sha256_digest(seed.as_bytes());
        // 32 ASCII hex digits are a valid scalar (far below the curve order).
        let key = ferroflux_source::oci::cosign::SigningKey::from_slice(&digest.as_bytes()[7..39])
            .expect("scalar");
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem");
        (key, pem)
    };
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
                &format!("oci://{}/charts/podinfo:{version}", registry.host()),
                HELM_CONFIG_MEDIA_TYPE,
                config.into_bytes(),
                vec![(HELM_CHART_MEDIA_TYPE.to_string(), tgz)],
                BTreeMap::new(),
            )
            .await
            .expect("push chart");
        if version == "1.2.0" {
            ferroflux_source::oci::cosign::sign(
                &client,
                &format!("oci://{}/charts/podinfo", registry.host()),
                &digest,
                &key,
            )
            .await
            .expect("sign 1.2.0");
        }
    }
    common::create_secret(
        &cluster.client,
        "cosign-keys",
        [("cosign.pub".to_string(), pem)].into(),
    )
    .await;

    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut repo = HelmRepository::new(
        "oci-charts",
        HelmRepositorySpec {
            url: format!("oci://{}/charts", registry.host()),
            repository_type: Some("oci".into()),
            insecure: Some(true),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), NS);
    charts
        .create(
            &PostParams::default(),
            &helm_chart(
                "from-oci",
                "podinfo",
                Some("1.x"),
                "HelmRepository",
                "oci-charts",
            ),
        )
        .await
        .expect("created");
    let chart = wait_ready(&charts, "from-oci").await;
    let ready = condition(&chart, "Ready").expect("Ready");
    assert_eq!(ready.message, "pulled 'podinfo' chart with version '1.2.0'");
    let dir = unpack(cluster.dir.path(), &chart, "from-oci").await;
    assert!(
        std::fs::read_to_string(dir.join("podinfo/Chart.yaml"))
            .expect("chart")
            .contains("version: 1.2.0")
    );

    let verify = ferroflux_api::source::OCIRepositoryVerification {
        provider: "cosign".into(),
        secret_ref: Some(ferroflux_api::meta::LocalObjectReference {
            name: "cosign-keys".into(),
        }),
        match_oidc_identity: None,
        trusted_root_secret_ref: None,
    };
    let mut signed = helm_chart(
        "signed",
        "podinfo",
        Some("1.x"),
        "HelmRepository",
        "oci-charts",
    );
    signed.spec.verify = Some(verify.clone());
    let mut unsigned = helm_chart(
        "unsigned",
        "podinfo",
        Some("1.0.0"),
        "HelmRepository",
        "oci-charts",
    );
    unsigned.spec.verify = Some(verify);
    for chart in [&signed, &unsigned] {
        charts
            .create(&PostParams::default(), chart)
            .await
            .expect("created");
    }
    let signed = wait_ready(&charts, "signed").await;
    let verified = condition(&signed, "SourceVerified").expect("SourceVerified");
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "Succeeded")
    );
    let mut refused = None;
    for _ in 0..300 {
        let chart = charts.get("unsigned").await.expect("reads");
        if condition(&chart, "Ready").is_some_and(|c| c.status == "False") {
            refused = Some(chart);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("the unsigned chart is refused");
    let ready = condition(&refused, "Ready").expect("Ready");
    assert_eq!(ready.reason, "VerificationError", "{}", ready.message);
    let verified = condition(&refused, "SourceVerified").expect("SourceVerified");
    assert_eq!(verified.status, "False");
    assert!(
        refused.status.and_then(|s| s.artifact).is_none(),
        "nothing stored"
    );
    cluster.server.shutdown().await;
}
