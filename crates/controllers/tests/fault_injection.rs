//! Fault injection: the source controllers against real peers behind a fault proxy
//! (`ferroflux_testpeers::FaultProxy`) and on a full disk. Every fault must end in a clear
//! `Ready=False` condition, retries with backoff (not a hot loop), the last good artifact still
//! served intact, and recovery to the new revision once the fault clears.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NS, condition, ready_is, wait_until, wait_within};
use ferroflux_api::meta::Artifact;
use ferroflux_api::source::{
    GitRepository, GitRepositoryRef, GitRepositorySpec, HelmRepository, HelmRepositorySpec,
    OCIRepository, OCIRepositoryRef, OCIRepositorySpec,
};
use ferroflux_controllers::{gitrepository, helmrepository, ocirepository};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::{OciAuth, PushMetadata};
use ferroflux_source::storage::Storage;
use ferroflux_testpeers::{Fault, FaultProxy, GitHttp, GitWork, Registry, require};
use kube::api::{Api, PostParams};

/// `n` bytes that gzip cannot shrink much (xorshift), so that an artifact's blob is large
/// enough for a cut to land inside it.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn addr(host: &str) -> SocketAddr {
    host.parse().expect("a 127.0.0.1:PORT address")
}

/// Reads `name` until its Ready condition is False for its generation with a message, and
/// returns that message and reason.
async fn wait_failed<K>(api: &Api<K>, name: &str, what: &str) -> (String, String)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object = wait_within(Duration::from_secs(60), api, name, what, |o| {
        ready_is(o, "False")
    })
    .await;
    let ready = condition(&object, "Ready").expect("Ready");
    assert!(!ready.message.is_empty(), "{what}: an empty message");
    (ready.message, ready.reason)
}

/// The artifact is still served and matches its digest: a fault never left a corrupt one.
async fn served_intact(dir: &Path, artifact: &Artifact, tag: &str) {
    common::download(artifact, dir.join(format!("check-{tag}"))).await;
}

/// The index artifact of a HelmRepository (a YAML file, not an archive) is still served and
/// matches its digest.
async fn index_served_intact(artifact: &Artifact) {
    let body = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .get(&artifact.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("the index artifact is served")
        .bytes()
        .await
        .expect("body");
    assert_eq!(
        Some(ferroflux_source::sha256_digest(&body)),
        artifact.digest,
        "the served index matches its digest"
    );
}

/// Connections the proxy accepts while `fault` holds for `window`: a retry with backoff opens a
/// few, a hot loop thousands.
async fn connections_during(proxy: &FaultProxy, window: Duration) -> u64 {
    let before = proxy.connections();
    tokio::time::sleep(window).await;
    proxy.connections() - before
}

fn oci_repository(url: &str) -> OCIRepository {
    let mut repo = OCIRepository::new(
        "app",
        OCIRepositorySpec {
            url: url.into(),
            reference: Some(OCIRepositoryRef {
                semver: Some(">=1.0.0".into()),
                ..Default::default()
            }),
            interval: "1s".into(),
            timeout: Some("3s".into()),
            insecure: Some(true),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_slow_500_and_cut_mid_blob_then_recovers() {
    let registry = require!(Registry::start(None));
    let proxy = FaultProxy::start(addr(&registry.host())).expect("proxy");
    let cluster = require!(common::cluster().await);
    let context = ocirepository::Context::new(cluster.client.clone(), cluster.storage.clone());
    tokio::spawn(ocirepository::run(
        Arc::new(context),
        std::future::pending(),
    ));

    let oci = common::registry_client(OciAuth::Anonymous);
    let direct = format!("oci://{}/team-a/app", registry.host());
    let push = |version: &'static str| {
        let oci = &oci;
        let direct = &direct;
        async move {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("blob.bin"), noise(600 * 1024, 7)).expect("write");
            std::fs::write(dir.path().join("version.txt"), version).expect("write");
            let metadata = PushMetadata {
                source: "https://git.example/fleet".into(),
                revision: format!("{version}@sha1:abc"),
                ..PushMetadata::default()
            };
            oci.push_dir(
                &format!("{direct}:{version}"),
                dir.path(),
                &IgnoreRules::none(),
                &metadata,
            )
            .await
            .expect("push")
            .digest
        }
    };
    push("1.0.0").await;

    let api: Api<OCIRepository> = Api::namespaced(cluster.client.clone(), NS);
    let url = format!("oci://{}/team-a/app", proxy.addr());
    api.create(&PostParams::default(), &oci_repository(&url))
        .await
        .expect("created");
    let repo = wait_until(&api, "app", "Ready=True", |r| ready_is(r, "True")).await;
    let good = common::artifact(&repo).expect("artifact");
    assert!(good.revision.starts_with("1.0.0@"), "{}", good.revision);

    // Each fault starts from a healthy repository and a newer release that must not land
    // while the fault holds, then must land once it clears.
    let faults = [
        (Fault::Down, "down", "1.1.0"),
        (Fault::Http500, "HTTP 500", "1.2.0"),
        (Fault::CutAfter(100 * 1024), "cut mid-blob", "1.3.0"),
        (
            Fault::Slow(Duration::from_millis(400)),
            "slow past spec.timeout",
            "1.4.0",
        ),
    ];
    let mut good = good;
    for (fault, what, version) in faults {
        proxy.set(fault);
        let next = push(version).await;
        let (message, reason) = wait_failed(&api, "app", what).await;
        println!("{what}: {reason}: {message}");
        assert_eq!(reason, "OCIArtifactPullFailed", "{what}: {message}");
        assert!(
            !message.contains("/tmp/"),
            "{what}: a temp path in the message: {message}"
        );
        if fault == Fault::Http500 {
            assert!(message.contains("500"), "{what}: {message}");
        }
        if matches!(fault, Fault::Slow(_)) {
            assert!(message.contains("timeout"), "{what}: {message}");
        }
        let repo = api.get("app").await.expect("reads");
        let kept = common::artifact(&repo).expect("the last artifact is kept");
        assert_eq!(
            kept.revision, good.revision,
            "{what}: a new artifact from a fault"
        );
        served_intact(cluster.dir.path(), &kept, what).await;
        if fault == Fault::Down {
            let n = connections_during(&proxy, Duration::from_secs(4)).await;
            assert!(
                n <= 12,
                "{what}: {n} connections in 4 s: retries without backoff"
            );
        }

        proxy.set(Fault::None);
        let repo = wait_within(Duration::from_secs(90), &api, "app", "recovery", |r| {
            ready_is(r, "True")
                && common::artifact(r).is_some_and(|a| a.revision.starts_with(version))
        })
        .await;
        good = common::artifact(&repo).expect("artifact");
        assert_eq!(good.revision, format!("{version}@{next}"));
        served_intact(cluster.dir.path(), &good, &format!("{what}-recovered")).await;
    }
    cluster.server.shutdown().await;
}

fn git_repository(url: &str) -> GitRepository {
    let mut repo = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: url.into(),
            interval: "1s".into(),
            timeout: Some("5s".into()),
            reference: Some(GitRepositoryRef {
                branch: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_server_down_and_cut_mid_fetch_then_recovers() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    work.write("apps/app.yaml", "kind: ConfigMap\n")
        .expect("write");
    let first = work.commit("first").expect("commit");
    work.push().expect("push");
    let url = server.url("fleet");
    let upstream = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host");
    let proxy = FaultProxy::start(addr(upstream)).expect("proxy");
    let cluster = require!(common::cluster().await);
    let context = gitrepository::Context::new(cluster.client.clone(), cluster.storage.clone());
    tokio::spawn(gitrepository::run(
        Arc::new(context),
        std::future::pending(),
    ));

    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), NS);
    let proxied = url.replace(upstream, &proxy.addr().to_string());
    api.create(&PostParams::default(), &git_repository(&proxied))
        .await
        .expect("created");
    let repo = wait_until(&api, "fleet", "Ready=True", |r| ready_is(r, "True")).await;
    let good = common::artifact(&repo).expect("artifact");
    assert_eq!(good.revision, format!("main@sha1:{first}"));

    let mut good = good;
    for (i, (fault, what)) in [
        (Fault::Down, "down"),
        (Fault::CutAfter(64 * 1024), "cut mid-fetch"),
        (Fault::Http500, "HTTP 500"),
    ]
    .into_iter()
    .enumerate()
    {
        proxy.set(fault);
        // A large incompressible file makes the pack big enough for the cut to land inside it.
        work.write("apps/blob.bin", noise(800 * 1024, 11 + i as u64))
            .expect("write");
        let next = work.commit(what).expect("commit");
        work.push().expect("push");
        let (message, reason) = wait_failed(&api, "fleet", what).await;
        println!("{what}: {reason}: {message}");
        assert_eq!(reason, "GitOperationFailed", "{what}: {message}");
        let repo = api.get("fleet").await.expect("reads");
        let kept = common::artifact(&repo).expect("the last artifact is kept");
        assert_eq!(
            kept.revision, good.revision,
            "{what}: a new artifact from a fault"
        );
        served_intact(cluster.dir.path(), &kept, what).await;

        proxy.set(Fault::None);
        let expected = format!("main@sha1:{next}");
        let repo = wait_within(Duration::from_secs(90), &api, "fleet", "recovery", |r| {
            ready_is(r, "True") && common::artifact(r).is_some_and(|a| a.revision == expected)
        })
        .await;
        good = common::artifact(&repo).expect("artifact");
        served_intact(cluster.dir.path(), &good, &format!("{what}-recovered")).await;
    }
    cluster.server.shutdown().await;
}

const INDEX: &str = "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: 1.0.0\n    urls: [podinfo-1.0.0.tgz]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_helm_index_keeps_the_last_artifact_then_recovers() {
    let index = Arc::new(Mutex::new(INDEX.to_string()));
    let served = index.clone();
    let app = axum::Router::new().route(
        "/index.yaml",
        axum::routing::get(move || {
            let served = served.clone();
            async move { served.lock().expect("index lock").clone() }
        }),
    );
    let url = common::serve(app).await;
    let cluster = require!(common::cluster().await);
    let context = helmrepository::Context::new(cluster.client.clone(), cluster.storage.clone());
    tokio::spawn(helmrepository::run(
        Arc::new(context),
        std::future::pending(),
    ));
    let api: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), NS);
    let mut repo = HelmRepository::new(
        "charts",
        HelmRepositorySpec {
            url,
            interval: Some("1s".into()),
            ..Default::default()
        },
    );
    repo.metadata.namespace = Some(NS.into());
    api.create(&PostParams::default(), &repo)
        .await
        .expect("created");
    let repo = wait_until(&api, "charts", "Ready=True", |r| ready_is(r, "True")).await;
    let good = common::artifact(&repo).expect("artifact");

    let mut good = good;
    for (i, (corrupt, what)) in [
        (
            "apiVersion: v1\nentries: [this is: not {an index",
            "not YAML",
        ),
        ("\u{0}\u{1}\u{2}binary", "binary garbage"),
        ("entries:\n  podinfo: []\n", "no apiVersion"),
    ]
    .into_iter()
    .enumerate()
    {
        *index.lock().expect("index lock") = corrupt.to_string();
        let (message, reason) = wait_failed(&api, "charts", what).await;
        println!("{what}: {reason}: {message}");
        let repo = api.get("charts").await.expect("reads");
        let kept = common::artifact(&repo).expect("the last artifact is kept");
        assert_eq!(
            kept.revision, good.revision,
            "{what}: a corrupt index became an artifact"
        );
        index_served_intact(&kept).await;

        *index.lock().expect("index lock") = INDEX.replace("1.0.0", &format!("1.{}.0", i + 1));
        let repo = wait_within(Duration::from_secs(60), &api, "charts", "recovery", |r| {
            ready_is(r, "True") && common::artifact(r).is_some_and(|a| a.revision != good.revision)
        })
        .await;
        good = common::artifact(&repo).expect("artifact");
        index_served_intact(&good).await;
    }
    cluster.server.shutdown().await;
}

/// A tmpfs of `size` mounted at a fresh directory; unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(Tmpfs(dir))
            .ok_or_else(|| format!("mount -t tmpfs failed: {status}"))
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_artifact_disk_is_a_clear_condition_and_no_partial_artifact() {
    let server = require!(GitHttp::start(None));
    let bare = server.repos().create("fleet").expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    work.write("apps/app.yaml", "kind: ConfigMap\n")
        .expect("write");
    work.commit("first").expect("commit");
    work.push().expect("push");

    // Mounting needs CAP_SYS_ADMIN: CI runs as root, a developer's machine may not.
    let disk = match Tmpfs::mount("2m") {
        Ok(disk) => disk,
        Err(e) => {
            ferroflux_testpeers::skip(e);
            return;
        }
    };
    let cluster = require!(common::cluster().await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let storage = Arc::new(Storage::new(disk.0.path(), &base).expect("storage"));
    let router = storage.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let context = gitrepository::Context::new(cluster.client.clone(), storage.clone());
    tokio::spawn(gitrepository::run(
        Arc::new(context),
        std::future::pending(),
    ));

    let api: Api<GitRepository> = Api::namespaced(cluster.client.clone(), NS);
    api.create(
        &PostParams::default(),
        &git_repository(&server.url("fleet")),
    )
    .await
    .expect("created");
    let repo = wait_until(&api, "fleet", "Ready=True", |r| ready_is(r, "True")).await;
    let good = common::artifact(&repo).expect("artifact");

    work.write("apps/blob.bin", noise(3 * 1024 * 1024, 13))
        .expect("write");
    let big = work.commit("too big for the disk").expect("commit");
    work.push().expect("push");
    let (message, reason) = wait_failed(&api, "fleet", "disk full").await;
    println!("disk full: {reason}: {message}");
    assert!(
        message.to_lowercase().contains("no space left"),
        "the message names the cause: {message}"
    );
    assert!(
        !message.contains("/tmp/"),
        "a temp path in the message: {message}"
    );
    let repo = api.get("fleet").await.expect("reads");
    let kept = common::artifact(&repo).expect("the last artifact is kept");
    assert_eq!(kept.revision, good.revision);
    served_intact(cluster.dir.path(), &kept, "disk-full").await;
    // Nothing but complete artifacts on the disk: each .tar.gz there is one the status named.
    let mut archives = BTreeMap::new();
    for entry in walk(disk.0.path()) {
        if entry.extension().is_some_and(|e| e == "gz") {
            archives.insert(entry.clone(), std::fs::metadata(&entry).map(|m| m.len()));
        }
    }
    assert_eq!(
        archives.len(),
        1,
        "only the served artifact is stored: {archives:?}"
    );

    disk.resize("16m");
    let expected = format!("main@sha1:{big}");
    let repo = wait_within(
        Duration::from_secs(90),
        &api,
        "fleet",
        "the big commit",
        |r| ready_is(r, "True") && common::artifact(r).is_some_and(|a| a.revision == expected),
    )
    .await;
    served_intact(
        cluster.dir.path(),
        &common::artifact(&repo).expect("artifact"),
        "recovered",
    )
    .await;
    cluster.server.shutdown().await;
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
