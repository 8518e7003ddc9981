//! `ferroflux-bench`: the end-to-end benchmark of issue "Kustomize controller", shaped like
//! Flux's own published benchmark (fluxcd/flux-benchmark) so the figures compare: N apps, each
//! its own OCIRepository (tag `latest` in a local docker-registry) and Kustomization (prune,
//! wait, timeout 1m, serviceAccountName, targetNamespace, three postBuild variables); the app is
//! a Deployment (replicas 0), a ServiceAccount, a Service and an Ingress. All N artifacts are
//! pushed at once and the clock runs from the push until every Kustomization is Ready.
//!
//! By default it starts `ferroflux up` (an empty fleet) and reports that process's peak RSS and
//! CPU seconds; with `--kubeconfig` it targets any cluster that runs the controllers.
//! `--helm-releases N` measures the HelmRelease controller instead (see [`helm`]). Each run
//! appends a row to `BENCHMARKS.md` at the repository root.

mod helm;
mod plane;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::{OciClient, OciOptions, PushMetadata};

/// Run the benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Number of apps.
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Target an existing cluster instead of starting `ferroflux up`.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The ferroflux binary to start (default: next to this one).
    #[arg(long)]
    ferroflux: Option<PathBuf>,
    /// Registry to push to (`host:port`, plain HTTP); default: a docker-registry started here.
    #[arg(long)]
    registry: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Instead of apps: reconcile this many GitRepositories of one repository served by
    /// `git http-backend` (the source controller's memory benchmark).
    #[arg(long)]
    git_repositories: Option<usize>,
    /// Instead of apps: this many HelmReleases of a podinfo-like chart from one HelmRepository
    /// served here (the helm controller's benchmark).
    #[arg(long)]
    helm_releases: Option<usize>,
    /// The table a row of results is appended to (default: BENCHMARKS.md at the repository root).
    #[arg(long)]
    record: Option<PathBuf>,
    /// The API server of an `--apps` run: `up` (API server and controllers in one process),
    /// `embedded` (`ferroflux apiserver`) or `kube` (the real kube-apiserver and etcd).
    #[arg(long, value_enum, default_value = "up")]
    api_server: plane::ApiServer,
    /// Whose controllers reconcile an `--apps` run on `embedded` or `kube`: `ferroflux` or
    /// `flux` (Flux's own source- and kustomize-controller from the peers script).
    #[arg(long, value_enum, default_value = "ferroflux")]
    controllers: plane::Controllers,
}

const APP: &str = "apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${app_name}
---
apiVersion: v1
kind: Service
metadata:
  name: ${app_name}
spec:
  selector:
    app: ${app_name}
  ports:
    - name: http
      port: 9898
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app_name}
  labels:
    tier: ${app_tier}
spec:
  replicas: 0
  selector:
    matchLabels:
      app: ${app_name}
  template:
    metadata:
      labels:
        app: ${app_name}
    spec:
      serviceAccountName: ${app_name}
      containers:
        - name: app
          image: ghcr.io/stefanprodan/podinfo:${app_version}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${app_name}
spec:
  rules:
    - host: ${app_name}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: ${app_name}
                port:
                  number: 9898
";

/// Prints the final line (`N WHAT Ready in X s; peak RSS Y MiB; CPU Z s`) and appends a row
/// to the `record` table, writing its header first when the file is new.
fn report(
    what: &str,
    count: usize,
    wall: f64,
    usage: Option<(f64, f64)>,
    record: &Path,
) -> anyhow::Result<()> {
    let (peak, cpu) = match usage {
        Some((peak, cpu)) => (format!("{peak:.0}"), format!("{cpu:.1}")),
        None => ("-".to_string(), "-".to_string()),
    };
    println!("✔ {count} {what} Ready in {wall:.1} s; peak RSS {peak} MiB; CPU {cpu} s");
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".to_string())
    };
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M"]);
    let commit = output("git", &["rev-parse", "--short", "HEAD"]);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut text = std::fs::read_to_string(record).unwrap_or_default();
    if text.is_empty() {
        text.push_str(BENCHMARKS_HEADER);
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "| {date} | {commit} | {what} | {count} | {wall:.1} | {peak} | {cpu} | {cores} |\n"
    ));
    std::fs::write(record, text)
        .with_context(|| format!("cannot append to {}", record.display()))?;
    println!("  recorded in {}", record.display());
    Ok(())
}

const BENCHMARKS_HEADER: &str = "# Benchmarks

Rows appended by `ferroflux-bench` (crates/bench): the time from creating the objects until
every one is Ready, and the peak RSS and CPU seconds of the whole `ferroflux up` process (API
server and every controller), or, on rows naming their API server, of the two controller
processes alone (`--api-server embedded|kube --controllers ferroflux|flux`: the same API server
for both sets). Commit is HEAD at the time (the tree may have had local changes).

| date (UTC) | commit | objects | N | wall s | peak RSS MiB | CPU s | cores |
|---|---|---|---|---|---|---|---|
";

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

struct Up {
    child: Child,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_up(binary: &Path) -> anyhow::Result<Up> {
    let dir = tempfile::tempdir()?;
    let fleet = dir.path().join("fleet");
    std::fs::create_dir_all(&fleet)?;
    std::fs::write(
        fleet.join("README.md"),
        "benchmark fleet: the apps are created by the harness\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .args([
            "up",
            "--simulator-delay",
            "0s",
            "--receiver-listen=127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--fleet"])
        .arg(&fleet)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let kubeconfig = dir.path().join("data/apiserver/kubeconfig");
    Ok(Up {
        child,
        _dir: dir,
        kubeconfig,
    })
}

/// Peak resident memory (MiB) and CPU seconds of a process, from /proc.
fn usage(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((peak_kib / 1024.0, ticks / 100.0))
}

async fn client(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)?,
        &Default::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

fn dynamic(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    namespace: &str,
) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    if namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), namespace, &resource)
    }
}

async fn apply(api: &Api<DynamicObject>, object: Value) -> anyhow::Result<()> {
    let name = object["metadata"]["name"]
        .as_str()
        .expect("objects are named")
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("ferroflux-bench").force(),
        &Patch::Apply(&object),
    )
    .await?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let registry_peer;
    let needs_registry = args.git_repositories.is_none() && args.helm_releases.is_none();
    let registry = match &args.registry {
        Some(registry) => registry.clone(),
        None if !needs_registry => String::new(),
        None => {
            registry_peer =
                ferroflux_testpeers::Registry::start(None).map_err(|e| anyhow::anyhow!("{e}"))?;
            registry_peer.host()
        }
    };
    let binary = args.ferroflux.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("own path")
            .with_file_name("ferroflux")
    });
    let separate = args.api_server != plane::ApiServer::Up;
    if !separate && args.controllers == plane::Controllers::Flux {
        bail!("--controllers flux needs --api-server embedded or kube");
    }
    let plane = match (&args.kubeconfig, separate) {
        (None, true) => {
            println!(
                "► starting {:?} with {:?} controllers",
                args.api_server, args.controllers
            );
            Some(plane::Plane::start(
                args.api_server,
                args.controllers,
                &binary,
            )?)
        }
        _ => None,
    };
    let up = match (&args.kubeconfig, &plane) {
        (None, None) => Some(start_up(&binary)?),
        _ => None,
    };
    let kubeconfig = args
        .kubeconfig
        .clone()
        .or_else(|| plane.as_ref().map(|p| p.kubeconfig.clone()))
        .or_else(|| up.as_ref().map(|u| u.kubeconfig.clone()))
        .expect("one of them");
    let client = connect(&kubeconfig).await?;
    let pid = up.as_ref().map(|u| u.child.id());
    if let Some(count) = args.git_repositories {
        return git_repositories(&client, count, &args, pid).await;
    }
    let record = args
        .record
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../BENCHMARKS.md"));
    if let Some(count) = args.helm_releases {
        return helm::helm_releases(&client, count, &args, pid, &record).await;
    }
    println!("► creating {} apps", args.apps);
    create_tenants(&client, args.apps).await?;
    println!(
        "► pushing {} artifacts to {registry} and creating the sources",
        args.apps
    );
    let t0 = Instant::now();
    push_artifacts(&registry, args.apps).await?;
    create_apps(&client, &registry, args.apps).await?;
    println!("◎ waiting for {} Kustomizations to be Ready", args.apps);
    let all = dynamic(
        &client,
        ferroflux_api::kustomize::GROUP,
        "v1",
        "Kustomization",
        "",
    );
    let bench_app_ready = |ks: &DynamicObject| {
        ks.metadata
            .namespace
            .as_deref()
            .is_some_and(|n| n.starts_with("bench-"))
            && ks.data["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
    };
    wait_for(
        &all,
        bench_app_ready,
        args.apps,
        "Kustomizations Ready",
        t0,
        args.timeout,
    )
    .await?;
    let wall = t0.elapsed().as_secs_f64();
    match &plane {
        Some(plane) => report_plane(plane, &args, wall, &record).await,
        None => report("apps", args.apps, wall, pid.and_then(usage), &record),
    }
}

/// The report of a run on separate processes: controllers and API server apart, and the
/// controllers' reconcile durations.
async fn report_plane(
    plane: &plane::Plane,
    args: &Args,
    wall: f64,
    record: &Path,
) -> anyhow::Result<()> {
    let controllers = plane::Usage::of(&plane.controller_pids);
    let api = plane::Usage::of(&plane.api_pids);
    for (name, pid) in ["source", "kustomize"].iter().zip(&plane.controller_pids) {
        let own = plane::Usage::of(&[*pid]);
        println!(
            "  {name} controller: peak RSS {:.0} MiB, CPU {:.1} s",
            own.peak_mib, own.cpu_s
        );
    }
    for kind in ["OCIRepository", "Kustomization"] {
        if let Some(d) = plane.reconcile_durations(kind).await {
            println!(
                "  {kind}: {} reconciles, mean {:.3} s, p50 <= {} s, p99 <= {} s",
                d.reconciles, d.mean, d.p50, d.p99
            );
        }
    }
    println!(
        "{} apps Ready in {wall:.1} s; peak RSS: controllers {:.0} MiB, API server {:.0} MiB; CPU {:.1} s",
        args.apps,
        controllers.peak_mib,
        api.peak_mib,
        controllers.cpu_s + api.cpu_s
    );
    let what = format!(
        "apps: {} controllers on {}",
        match args.controllers {
            plane::Controllers::Ferroflux => "ferroflux",
            plane::Controllers::Flux => "flux",
        },
        match args.api_server {
            plane::ApiServer::Kube => "kube-apiserver",
            _ => "ferroflux apiserver",
        }
    );
    // The row's RSS and CPU are the controllers' alone: the API server is the same for both.
    report(
        &what,
        args.apps,
        wall,
        Some((controllers.peak_mib, controllers.cpu_s)),
        record,
    )
}

/// A client once the API server answers and the Flux CRDs are installed.
async fn connect(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let started = Instant::now();
    let client = loop {
        if kubeconfig.is_file()
            && let Ok(client) = client(kubeconfig).await
            && client.apiserver_version().await.is_ok()
        {
            break client;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the API server at {} did not come up", kubeconfig.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let crds = dynamic(
        &client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "",
    );
    while crds
        .get_opt("kustomizations.kustomize.toolkit.fluxcd.io")
        .await?
        .is_none()
    {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the Flux CRDs were not installed within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(client)
}

/// Namespaces `bench-N`, each with a `flux` ServiceAccount bound to cluster-admin.
async fn create_tenants(client: &kube::Client, apps: usize) -> anyhow::Result<()> {
    let namespaces = dynamic(client, "", "v1", "Namespace", "");
    for i in 0..apps {
        let ns = format!("bench-{i}");
        apply(
            &namespaces,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        apply(&dynamic(client, "", "v1", "ServiceAccount", &ns),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "flux", "namespace": ns}})).await?;
        apply(&dynamic(client, "rbac.authorization.k8s.io", "v1", "RoleBinding", &ns), json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "flux", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "flux", "namespace": ns}]})).await?;
    }
    Ok(())
}

/// One OCI artifact `bench/app-N:latest` per app, 16 pushes at a time.
async fn push_artifacts(registry: &str, apps: usize) -> anyhow::Result<()> {
    let source_dir = tempfile::tempdir()?;
    std::fs::write(source_dir.path().join("app.yaml"), APP)?;
    let oci = OciClient::new(&OciOptions {
        insecure: true,
        ..Default::default()
    })?;
    let pushes = futures::stream::iter(0..apps).map(|i| {
        let oci = &oci;
        let dir = source_dir.path();
        async move {
            let metadata = PushMetadata {
                source: "https://github.com/ferroflux/bench".into(),
                revision: format!("app-{i}@sha1:{i:040x}"),
                ..Default::default()
            };
            oci.push_dir(
                &format!("oci://{registry}/bench/app-{i}:latest"),
                dir,
                &IgnoreRules::flux_defaults(),
                &metadata,
            )
            .await
        }
    });
    let results: Vec<_> = pushes.buffer_unordered(16).collect().await;
    for result in results {
        result.map_err(|e| anyhow::anyhow!("push failed: {e}"))?;
    }
    Ok(())
}

/// Per app namespace, an OCIRepository and a Kustomization applying it, as the Flux benchmark.
async fn create_apps(client: &kube::Client, registry: &str, apps: usize) -> anyhow::Result<()> {
    for i in 0..apps {
        let ns = format!("bench-{i}");
        apply(&dynamic(client, ferroflux_api::source::GROUP, "v1", "OCIRepository", &ns), json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"interval": "10m", "url": format!("oci://{registry}/bench/app-{i}"), "ref": {"tag": "latest"}, "insecure": true}})).await?;
        apply(&dynamic(client, ferroflux_api::kustomize::GROUP, "v1", "Kustomization", &ns), json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": ns},
            "spec": {"interval": "10m", "prune": true, "wait": true, "timeout": "1m",
                "serviceAccountName": "flux", "targetNamespace": ns,
                "sourceRef": {"kind": "OCIRepository", "name": "app"},
                "postBuild": {"substitute": {"app_name": format!("app-{i}"), "app_tier": "backend", "app_version": "6.5.0"}}}})).await?;
    }
    Ok(())
}

/// Polls `api` until `count` objects are `done`, or fails `timeout` seconds after `t0` naming
/// how many were (`what`: "Kustomizations Ready").
async fn wait_for(
    api: &Api<DynamicObject>,
    done: impl Fn(&DynamicObject) -> bool,
    count: usize,
    what: &str,
    t0: Instant,
    timeout: u64,
) -> anyhow::Result<()> {
    loop {
        let list = api.list(&ListParams::default()).await?;
        let ready = list.items.iter().filter(|o| done(o)).count();
        if ready >= count {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(timeout) {
            bail!("only {ready} of {count} {what} after {timeout}s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// N GitRepositories of one repository: time until all have an artifact, and the peak RSS.
async fn git_repositories(
    client: &kube::Client,
    count: usize,
    args: &Args,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let server = ferroflux_testpeers::GitHttp::start(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bare = server
        .repos()
        .create("fleet")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let work = ferroflux_testpeers::GitWork::new(&bare).map_err(|e| anyhow::anyhow!("{e}"))?;
    work.write("apps/app.yaml", APP)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    work.commit("apps").map_err(|e| anyhow::anyhow!("{e}"))?;
    work.push().map_err(|e| anyhow::anyhow!("{e}"))?;
    let api = dynamic(
        client,
        ferroflux_api::source::GROUP,
        "v1",
        "GitRepository",
        "flux-system",
    );
    println!("► creating {count} GitRepositories");
    let t0 = Instant::now();
    for i in 0..count {
        apply(
            &api,
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": format!("repo-{i}"), "namespace": "flux-system"},
            "spec": {"interval": "10m", "url": server.url("fleet"), "ref": {"branch": "main"}}}),
        )
        .await?;
    }
    let has_artifact = |r: &DynamicObject| {
        r.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("repo-"))
            && !r.data["status"]["artifact"].is_null()
    };
    wait_for(
        &api,
        has_artifact,
        count,
        "GitRepositories have an artifact",
        t0,
        args.timeout,
    )
    .await?;
    println!(
        "✔ {count} GitRepositories reconciled in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    if let Some((peak, cpu)) = pid.and_then(usage) {
        println!(
            "  ferroflux up (API server + controllers): peak RSS {peak:.0} MiB, CPU {cpu:.1}s"
        );
    }
    Ok(())
}
