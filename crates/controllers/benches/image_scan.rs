//! Scanning 200 ImageRepositories: 200 repositories with 20 tags each in Debian's
//! `docker-registry`, 200 ImageRepository objects in the embedded API server, and the time
//! until every one reports its `lastScanResult`. Prints the timing (skips with a message
//! when the registry program is missing).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_api::image::{ImageRepository, ImageRepositorySpec};
use ferroflux_controllers::imagerepository::{self, TagStore};
use ferroflux_source::oci::{OciClient, OciOptions};
use ferroflux_testpeers::Registry;
use kube::api::{Api, ListParams, PostParams};

const REPOSITORIES: usize = 200;
const TAGS: usize = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registry = match Registry::start(None) {
        Ok(registry) => registry,
        Err(err) if err.is_skip() => {
            eprintln!("skipping the scan benchmark: {err}");
            return;
        }
        Err(err) => panic!("registry: {err}"),
    };
    let cluster = common::cluster().await.expect("the API server starts");
    let oci = OciClient::new(&OciOptions {
        insecure: true,
        ..OciOptions::default()
    })
    .expect("client");
    let host = registry.host();
    for r in 0..REPOSITORIES {
        for t in 0..TAGS {
            oci.push_layers(
                &format!("oci://{host}/bench/app-{r}:1.0.{t}"),
                "application/vnd.oci.image.config.v1+json",
                b"{}".to_vec(),
                vec![(
                    "application/vnd.oci.image.layer.v1.tar".into(),
                    format!("{r}-{t}").into_bytes(),
                )],
                BTreeMap::new(),
            )
            .await
            .expect("push");
        }
    }
    let store = Arc::new(TagStore::new(cluster.dir.path().join("tags")).expect("store"));
    let context = Arc::new(imagerepository::Context::new(cluster.client.clone(), store));
    let (_stop, stopped) = common::shutdown();
    tokio::spawn(imagerepository::run(context, stopped));
    let api: Api<ImageRepository> = Api::namespaced(cluster.client.clone(), common::NS);
    let started = Instant::now();
    for r in 0..REPOSITORIES {
        let mut repo = ImageRepository::new(
            &format!("app-{r}"),
            ImageRepositorySpec {
                image: format!("{host}/bench/app-{r}"),
                interval: "1h".into(),
                insecure: Some(true),
                ..Default::default()
            },
        );
        repo.metadata.namespace = Some(common::NS.into());
        api.create(&PostParams::default(), &repo)
            .await
            .expect("created");
    }
    loop {
        let list = api.list(&ListParams::default()).await.expect("list");
        let scanned = list
            .items
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.last_scan_result.as_ref())
                    .is_some_and(|s| s.tag_count == TAGS as i64)
            })
            .count();
        if scanned == REPOSITORIES {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {scanned} of {REPOSITORIES} scanned after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "scanned {REPOSITORIES} ImageRepositories ({TAGS} tags each), from creation to the last status: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}
