//! Setup the HelmRelease suites share (`helmrelease.rs`, `helmrelease_options.rs`): the
//! HelmRepository, HelmChart and HelmRelease reconcilers, a HelmRepository over a served chart
//! repository, a HelmRelease of one of its charts and the Helm release records it leaves.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ferroflux_api::helm::{
    CrossNamespaceObjectReference, HelmChartTemplate, HelmChartTemplateSpec, HelmRelease,
    HelmReleaseSpec,
};
use ferroflux_api::source::{HelmRepository, HelmRepositorySpec};
use ferroflux_controllers::{helmchart, helmrelease, helmrepository};
use ferroflux_helm::release as storage;
use ferroflux_source::artifact::{IgnoreRules, pack_dir};
use ferroflux_source::oci::OciClient;
use ferroflux_source::oci::helm::{HELM_CHART_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use crate::common::{self, NS};

/// Starts the HelmRepository, HelmChart and HelmRelease reconcilers until the returned
/// senders are dropped.
pub fn start_reconcilers(cluster: &common::Cluster) -> Vec<tokio::sync::oneshot::Sender<()>> {
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let mut stops = Vec::new();
    let (stop, stopped) = common::shutdown();
    let repos = helmrepository::Context::new(cluster.client.clone(), cluster.storage.clone());
    tokio::spawn(helmrepository::run(Arc::new(repos), stopped));
    stops.push(stop);
    let (stop, stopped) = common::shutdown();
    let charts = helmchart::Context::new(
        cluster.client.clone(),
        cluster.storage.clone(),
        http.clone(),
    );
    tokio::spawn(helmchart::run(Arc::new(charts), stopped));
    stops.push(stop);
    let (stop, stopped) = common::shutdown();
    let mut releases = helmrelease::Context::new(
        cluster.client.clone(),
        cluster.config.clone(),
        helmrelease::Options::default(),
    );
    releases.http = http;
    tokio::spawn(helmrelease::run(Arc::new(releases), stopped));
    stops.push(stop);
    stops
}

/// Creates the HelmRepository `name` in [`NS`] over the chart repository at `url`.
pub async fn create_helm_repository(cluster: &common::Cluster, name: &str, url: String) {
    let spec = HelmRepositorySpec {
        url,
        interval: Some("1m".into()),
        ..Default::default()
    };
    create_helm_repository_of(cluster, name, spec).await;
}

/// Creates the HelmRepository `name` in [`NS`] with `spec`.
pub async fn create_helm_repository_of(
    cluster: &common::Cluster,
    name: &str,
    spec: HelmRepositorySpec,
) {
    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut repo = HelmRepository::new(name, spec);
    repo.metadata.namespace = Some(NS.into());
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");
}

/// Pushes the packed chart `tgz` (`name` at `version`) to `oci://{host}/charts/{name}` as
/// `helm push` does; the manifest's digest.
pub async fn push_chart(
    client: &OciClient,
    host: &str,
    name: &str,
    version: &str,
    tgz: Vec<u8>,
) -> String {
    let config = json!({"apiVersion": "v2", "name": name, "version": version}).to_string();
    client
        .push_layers(
            &format!("oci://{host}/charts/{name}:{version}"),
            HELM_CONFIG_MEDIA_TYPE,
            config.into_bytes(),
            vec![(HELM_CHART_MEDIA_TYPE.to_string(), tgz)],
            BTreeMap::new(),
        )
        .await
        .expect("push chart")
}

/// The chart directory `dir` packed: its archive and sha256 hex.
pub fn pack_chart(dir: &Path) -> (Vec<u8>, String) {
    let mut tgz = Vec::new();
    let packed = pack_dir(dir, &IgnoreRules::none(), &mut tgz).expect("pack");
    let hex = packed.digest.trim_start_matches("sha256:").to_string();
    (tgz, hex)
}

/// The HelmRelease `name` in [`NS`] of `chart` from the HelmRepository `repository`, with
/// `values`.
pub fn helm_release(name: &str, chart: &str, repository: &str, values: Value) -> HelmRelease {
    let mut object = HelmRelease::new(
        name,
        HelmReleaseSpec {
            chart: Some(HelmChartTemplate {
                metadata: None,
                spec: HelmChartTemplateSpec {
                    chart: chart.into(),
                    source_ref: CrossNamespaceObjectReference {
                        kind: "HelmRepository".into(),
                        name: repository.into(),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            }),
            interval: "1m".into(),
            values: Some(values),
            ..Default::default()
        },
    );
    object.metadata.namespace = Some(NS.into());
    object
}

/// The release records of `name`, newest first, decoded.
pub async fn records(cluster: &common::Cluster, name: &str) -> Vec<(Secret, storage::Release)> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), NS);
    let list = secrets
        .list(&ListParams::default().labels(&storage::history_selector(name)))
        .await
        .expect("lists");
    let mut out: Vec<(Secret, storage::Release)> = list
        .items
        .into_iter()
        .map(|s| {
            let value = serde_json::to_value(&s).expect("json");
            let release = storage::from_secret(&value, storage::DEFAULT_MAX_RELEASE_SIZE)
                .expect("a Helm release record");
            (s, release)
        })
        .collect();
    out.sort_by_key(|(_, r)| std::cmp::Reverse(r.version));
    out
}
