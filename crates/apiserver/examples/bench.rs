//! Load figures for the API server over HTTPS with 8 concurrent kube-rs clients:
//! creates/s, gets/s, the list of all objects, watch latency p50/p99 and RSS.
//!
//! `cargo run --release -p ferroflux-apiserver --example bench -- [OBJECTS] [RSS_OBJECTS]`
//! (defaults 10000 and 0; RSS_OBJECTS > 0 fills the store up to that many ConfigMaps and prints
//! the resident set size).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const CLIENTS: usize = 8;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "1"}}, "data": {"k": "v"}}),
    )
    .expect("valid ConfigMap")
}

async fn client(kubeconfig: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn create_range(apis: &[Api<ConfigMap>], prefix: &str, from: usize, to: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, api) in apis.iter().enumerate() {
        let api = api.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (from + c..to).step_by(CLIENTS) {
                api.create(&PostParams::default(), &cm(&format!("{prefix}-{i}")))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rss_target: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ferroflux_apiserver::Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    let server = ferroflux_apiserver::serve(config).await.expect("server");
    let mut apis = Vec::new();
    for _ in 0..CLIENTS {
        apis.push(Api::<ConfigMap>::namespaced(
            client(&server.kubeconfig).await,
            "default",
        ));
    }

    let took = create_range(&apis, "cm", 0, n).await;
    println!(
        "creates: {n} in {:.2}s = {:.0}/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    let gets = n * 2;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, api) in apis.iter().enumerate() {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in (c..gets).step_by(CLIENTS) {
                api.get(&format!("cm-{}", (i * 7919) % n))
                    .await
                    .expect("get");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let took = start.elapsed();
    println!(
        "gets: {gets} in {:.2}s = {:.0}/s",
        took.as_secs_f64(),
        gets as f64 / took.as_secs_f64()
    );

    let start = Instant::now();
    let list = apis[0].list(&ListParams::default()).await.expect("list");
    println!(
        "list of {} objects: {:.0} ms",
        list.items.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );

    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let mut stream = apis[0]
        .watch(&WatchParams::default().labels("watch=1"), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut lat = Vec::new();
    for i in 0..300 {
        let mut obj = cm(&format!("w-{i}"));
        obj.metadata.labels = Some([("watch".to_string(), "1".to_string())].into());
        let start = Instant::now();
        apis[1]
            .create(&PostParams::default(), &obj)
            .await
            .expect("create");
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Added(o)))
                    if o.metadata.name.as_deref() == Some(&format!("w-{i}")) =>
                {
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("watch ended: {other:?}"),
            }
        }
        lat.push(start.elapsed());
    }
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "watch latency (create acknowledged + event received): p50 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );

    if rss_target > n {
        let took = create_range(&apis, "rss", n, rss_target).await;
        println!(
            "filled to {rss_target} objects in {:.1}s",
            took.as_secs_f64()
        );
        println!(
            "RSS with {rss_target} ConfigMaps (server and clients in one process): {:.0} MiB",
            rss_mib()
        );
    } else {
        println!(
            "RSS with {n} ConfigMaps (server and clients in one process): {:.0} MiB",
            rss_mib()
        );
    }
    server.shutdown().await;
}
