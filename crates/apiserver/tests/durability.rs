//! Acknowledged writes survive `kill -9` of the server process, and a restart keeps the CA.
//!
//! The server runs in a child process: this test binary re-executed with only the
//! `child_server` test selected and `FFA_CHILD_DATA_DIR` set.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const ENV: &str = "FFA_CHILD_DATA_DIR";

/// Not a test of its own: the server entry point of the child process (a no-op otherwise).
#[test]
fn child_server() {
    let Ok(dir) = std::env::var(ENV) else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let _server = common::start(Path::new(&dir), None).await;
        std::future::pending::<()>().await;
    });
}

fn spawn_child(dir: &Path) -> Child {
    let _ = std::fs::remove_file(dir.join("kubeconfig"));
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV, dir)
        .spawn()
        .expect("child starts")
}

async fn wait_kubeconfig(dir: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(k) = std::fs::read_to_string(dir.join("kubeconfig"))
            && k.contains("current-context")
        {
            return k;
        }
        assert!(Instant::now() < deadline, "the child server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child(dir.path());
    let kc = wait_kubeconfig(dir.path()).await;
    let ca_before = std::fs::read_to_string(dir.path().join("ca.crt")).expect("ca");
    let api: Api<ConfigMap> = Api::namespaced(common::client(&kc).await, "default");
    let n = 100;
    for i in 0..n {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}}),
        )
        .expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("acknowledged create");
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let mut child = spawn_child(dir.path());
    let kc = wait_kubeconfig(dir.path()).await;
    let api: Api<ConfigMap> = Api::namespaced(common::client(&kc).await, "default");
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list after restart");
    // The namespace also holds the server's own kube-root-ca.crt.
    let written = list
        .items
        .iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cm-"))
        })
        .count();
    assert_eq!(written, n, "every acknowledged write survived");
    let last = api.get(&format!("cm-{}", n - 1)).await.expect("last write");
    assert_eq!(
        last.data.and_then(|d| d.get("i").cloned()).as_deref(),
        Some("99")
    );
    let ca_after = std::fs::read_to_string(dir.path().join("ca.crt")).expect("ca");
    assert_eq!(ca_before, ca_after, "the CA is kept");
    child.kill().expect("stop child");
    let _ = child.wait();
}

#[tokio::test]
async fn periodic_compaction_bounds_the_log() {
    common::init_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ferroflux_apiserver::Config::new(dir.path());
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.compaction_retain = 5;
    config.compaction_interval = Duration::from_millis(100);
    let server = ferroflux_apiserver::serve(config).await.expect("server");
    let api: Api<ConfigMap> = Api::namespaced(common::client(&server.kubeconfig).await, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "churn"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    // The bootstrap objects (namespaces, default RBAC) are live and never compacted away.
    let base = server.store.log_len().expect("log");
    for i in 0..40 {
        let p = json!({"data": {"i": i.to_string()}});
        api.patch(
            "churn",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(p),
        )
        .await
        .expect("update");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.store.log_len().expect("log") > base + 15 {
        assert!(Instant::now() < deadline, "compaction did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.store.compacted_revision() > 0);
    let live = api.get("churn").await.expect("the live object stays");
    assert_eq!(
        live.data.and_then(|d| d.get("i").cloned()).as_deref(),
        Some("39")
    );
    server.shutdown().await;
}
