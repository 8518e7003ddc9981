//! Processes killed (`SIGKILL`) mid-reconcile: the API server while the source and kustomize
//! controllers work (after it restarts on the same data dir and address, the controllers recover
//! without a restart of their own), and the kustomize controller during its applies (a new one
//! takes over). Every revision ends applied, and a revision is never reported as applied
//! (`lastAppliedRevision`) before all its objects are in the cluster and the pruned ones gone.
//!
//! The killed process is a child: this test binary re-executed with only `child_server` or
//! `child_kustomize_controller` selected. It always is ferroflux's embedded server (killing the kube-apiserver peer is
//! etcd's durability, not ours), so `./test.sh` leaves this binary out of its kube-apiserver run.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec};
use ferroflux_api::source::{GitRepository, GitRepositoryRef, GitRepositorySpec};
use ferroflux_controllers::gitrepository;
use ferroflux_controllers::kustomization::reconciler;
use ferroflux_source::storage::Storage;
use ferroflux_testpeers::{GitHttp, GitWork, require};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const DIR: &str = "FFC_RESTART_DIR";
const LISTEN: &str = "FFC_RESTART_LISTEN";
const NS: &str = "flux-system";
const KUBECONFIG: &str = "FFC_RESTART_KUBECONFIG";

/// Not a test of its own: the API server of the child process (a no-op otherwise).
#[test]
fn child_server() {
    let (Ok(dir), Ok(listen)) = (std::env::var(DIR), std::env::var(LISTEN)) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let mut config = ferroflux_apiserver::Config::new(dir);
        config.listen = listen.parse().expect("address");
        let _server = ferroflux_apiserver::serve(config).await.expect("serves");
        std::future::pending::<()>().await;
    });
}

/// Not a test of its own: the kustomize controller of the child process (a no-op otherwise).
#[test]
fn child_kustomize_controller() {
    let Ok(kubeconfig) = std::env::var(KUBECONFIG) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        let client = Client::try_from(config.clone()).expect("client");
        let context = reconciler::Context::new(client, config, reconciler::Options::default());
        reconciler::run(Arc::new(context), std::future::pending()).await;
    });
}

fn spawn_controller(kubeconfig: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "child_kustomize_controller",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KUBECONFIG, kubeconfig)
        .spawn()
        .expect("the controller starts")
}

fn spawn_server(dir: &Path, listen: SocketAddr) -> Child {
    let _ = std::fs::remove_file(dir.join("kubeconfig"));
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR, dir)
        .env(LISTEN, listen.to_string())
        .spawn()
        .expect("the server starts")
}

async fn wait_kubeconfig(dir: &Path) -> String {
    for _ in 0..600 {
        if let Ok(k) = std::fs::read_to_string(dir.join("kubeconfig"))
            && k.contains("current-context")
        {
            return k;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the child server did not start");
}

/// `count` ConfigMaps of revision `round`, one file each.
fn write_round(work: &GitWork, round: usize, count: usize) {
    let _ = std::fs::remove_dir_all(work.path().join("apps"));
    for i in 0..count {
        work.write(
            &format!("apps/cm-{i}.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}, namespace: {NS}}}\n\
                 data: {{round: \"{round}\"}}\n"
            ),
        )
        .expect("write");
    }
}

/// The ConfigMaps the Kustomization applied: name -> round.
async fn applied(maps: &Api<ConfigMap>) -> Option<Vec<(String, String)>> {
    let params = ListParams::default().labels("kustomize.toolkit.fluxcd.io/name=apps");
    let list = maps.list(&params).await.ok()?;
    let mut out: Vec<_> = list
        .items
        .into_iter()
        .map(|cm| {
            let round = cm
                .data
                .and_then(|d| d.get("round").cloned())
                .unwrap_or_default();
            (cm.metadata.name.unwrap_or_default(), round)
        })
        .collect();
    out.sort();
    Some(out)
}

fn expected(round: usize, count: usize) -> Vec<(String, String)> {
    let mut out: Vec<_> = (0..count)
        .map(|i| (format!("cm-{i}"), round.to_string()))
        .collect();
    out.sort();
    out
}

fn last_applied(ks: &Kustomization) -> Option<String> {
    ks.status.as_ref()?.last_applied_revision.clone()
}

/// The objects of both tests on a fresh server: `flux-system` with Flux's CRDs, the artifact
/// storage and the GitRepository controller (in this process), the GitRepository `fleet` over
/// `git_url` and the pruning Kustomization `apps`.
async fn fleet(client: &Client, git_url: String, storage_dir: &Path) {
    common::install_crds(client).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace created");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let storage = Arc::new(Storage::new(storage_dir, &base).expect("storage"));
    let router = storage.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let sources = gitrepository::Context::new(client.clone(), storage);
    tokio::spawn(gitrepository::run(
        Arc::new(sources),
        std::future::pending(),
    ));

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let mut repo = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: git_url,
            interval: "1s".into(),
            reference: Some(GitRepositoryRef {
                branch: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let mut ks = Kustomization::new(
        "apps",
        KustomizationSpec {
            interval: "1m".into(),
            path: Some("./apps".into()),
            prune: true,
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    ks.metadata.namespace = Some(NS.into());
    kustomizations
        .create(&PostParams::default(), &ks)
        .await
        .expect("created");
}

/// Waits (90 s) until `commit` of `round` is applied and Ready; every time it is reported as
/// applied, its `count` objects must all be there, of this round, and no other.
async fn applied_whole(client: &Client, round: usize, count: usize, commit: &str) {
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), NS);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let revision = format!("main@sha1:{commit}");
    let want = expected(round, count);
    for _ in 0..900 {
        if let Ok(Some(ks)) = kustomizations.get_opt("apps").await
            && last_applied(&ks).as_deref() == Some(revision.as_str())
        {
            // Reported as applied: then it is applied whole, pruning included.
            assert_eq!(
                applied(&maps).await,
                Some(want.clone()),
                "round {round}: {revision} reported applied before it was"
            );
            if common::ready_is(&ks, "True") {
                assert_eq!(
                    common::condition(&ks, "Ready").map(|c| c.reason),
                    Some("ReconciliationSucceeded".into())
                );
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("round {round}: {revision} never applied");
}

/// Each round commits a new revision (fewer objects, so pruning is part of it) and `kill`s a
/// process a little later: before, during or after the controllers' work on it.
async fn rounds(client: &Client, work: &GitWork, mut kill: impl FnMut()) {
    for (round, kill_after_ms) in [(1, 0), (2, 150), (3, 400), (4, 900)] {
        let count = 60 - 10 * round;
        write_round(work, round, count);
        let commit = work.commit(&format!("round {round}")).expect("commit");
        work.push().expect("push");
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        kill();
        applied_whole(client, round, count, &commit).await;
    }
}

async fn client_of(kubeconfig: &str) -> (kube::Config, Client) {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config.clone()).expect("client");
    (config, client)
}

/// The Git server with round 0 (60 ConfigMaps) pushed, its work tree and that commit.
fn git_round_zero() -> Result<(GitHttp, GitWork, String), ferroflux_testpeers::PeerError> {
    let git = GitHttp::start(None)?;
    let bare = git.repos().create("fleet")?;
    let work = GitWork::new(&bare)?;
    write_round(&work, 0, 60);
    let first = work.commit("round 0")?;
    work.push()?;
    Ok((git, work, first))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_api_server_restarts_and_every_revision_ends_applied_whole() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (git, work, first) = require!(git_round_zero());
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("api");
    let listen = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address")
    };
    let mut server = spawn_server(&data, listen);
    let (config, client) = client_of(&wait_kubeconfig(&data).await).await;
    fleet(&client, git.url("fleet"), &dir.path().join("storage")).await;
    let kustomize = reconciler::Context::new(client.clone(), config, Default::default());
    tokio::spawn(reconciler::run(Arc::new(kustomize), std::future::pending()));
    applied_whole(&client, 0, 60, &first).await;

    rounds(&client, &work, || {
        server.kill().expect("SIGKILL");
        let _ = server.wait();
        server = spawn_server(&data, listen);
    })
    .await;
    server.kill().expect("SIGKILL");
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kustomize_controller_killed_mid_apply_is_taken_over_and_nothing_is_half_applied() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (git, work, first) = require!(git_round_zero());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ferroflux_apiserver::Config::new(dir.path().join("api"));
    config.listen = "127.0.0.1:0".parse().expect("address");
    let server = ferroflux_apiserver::serve(config).await.expect("serves");
    let (_, client) = client_of(&server.kubeconfig).await;
    fleet(&client, git.url("fleet"), &dir.path().join("storage")).await;
    let kubeconfig = server.kubeconfig_path.clone();
    let mut controller = spawn_controller(&kubeconfig);
    applied_whole(&client, 0, 60, &first).await;

    rounds(&client, &work, || {
        controller.kill().expect("SIGKILL");
        let _ = controller.wait();
        controller = spawn_controller(&kubeconfig);
    })
    .await;
    controller.kill().expect("SIGKILL");
    let _ = controller.wait();
    server.shutdown().await;
}
