//! `ferroflux up`: the embedded GitOps control plane on one machine. Starts the API server, the
//! artifact server, a local Git server with the fleet, the source and kustomize controllers,
//! bootstraps the fleet like `flux bootstrap`, and shows the Kustomizations like
//! `flux get kustomizations -A` until they are Ready.

mod fleet;
mod git_http;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::FutureExt as _;
use serde_json::{Value, json};

use ferroflux_apply::manager::{ApplyOptions, ResourceManager};
use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::{imagerepository, simulator};
use ferroflux_gocompat::duration::parse_std as parse_duration;
use ferroflux_source::storage::Storage;

use super::controller;

/// Run the embedded control plane with a fleet repository.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the API server's database, the artifacts and the Git repositories live.
    #[arg(long, default_value = ".ferroflux")]
    data_dir: PathBuf,
    /// Address of the API server.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write the kubeconfig (default `<data-dir>/kubeconfig`).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Fleet repository folder, used on first run (default: the bundled examples/fleet-infra).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Tenants' app repository folder, used on first run (default: the bundled examples/tenant-apps).
    #[arg(long)]
    apps: Option<PathBuf>,
    /// Cluster name: the fleet is synced from `clusters/<cluster>`.
    #[arg(long, default_value = "prod")]
    cluster: String,
    /// Exit 0 once every Kustomization is Ready, 1 when one fails or on --timeout.
    #[arg(long)]
    exit_when_ready: bool,
    /// With --exit-when-ready: how long to wait.
    #[arg(long, default_value = "5m")]
    timeout: String,
    /// Lockdown: the ServiceAccount that Kustomizations without `serviceAccountName`
    /// impersonate (the flux-system ones name `kustomize-controller`, as in Flux's guide).
    #[arg(long, value_name = "NAME")]
    default_service_account: Option<String>,
    /// Lockdown: refuse references to objects in other namespaces (Kustomization sources,
    /// ImagePolicy repositories, ImageUpdateAutomation sources).
    #[arg(long)]
    no_cross_namespace_refs: bool,
    /// Workloads whose image matches this glob never become available (to test health
    /// gating and rollbacks).
    #[arg(long, value_name = "IMAGE_GLOB")]
    simulate_failure: Option<String>,
    /// Time before a simulated rollout becomes available.
    #[arg(long, default_value = "1s")]
    simulator_delay: String,
    /// Do not simulate workload status (Deployments then never become available).
    #[arg(long)]
    no_simulator: bool,
}

/// Ports chosen on first run, kept so artifact and Git URLs stay valid across restarts.
#[derive(serde::Serialize, serde::Deserialize)]
struct Ports {
    artifacts: u16,
    git: u16,
}

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Errors only (a controller that died, ...): stdout is the status table. RUST_LOG widens it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(up(args))
}

async fn bind_persisted(
    data_dir: &Path,
) -> anyhow::Result<(tokio::net::TcpListener, tokio::net::TcpListener)> {
    let file = data_dir.join("ports.json");
    let saved: Option<Ports> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let bind = |port: u16| tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)));
    let (artifacts, git) = match saved {
        Some(ports) => (
            bind(ports.artifacts)
                .await
                .with_context(|| format!("artifact server port {} is taken", ports.artifacts))?,
            bind(ports.git)
                .await
                .with_context(|| format!("git server port {} is taken", ports.git))?,
        ),
        None => (bind(0).await?, bind(0).await?),
    };
    let ports = Ports {
        artifacts: artifacts.local_addr()?.port(),
        git: git.local_addr()?.port(),
    };
    std::fs::write(&file, serde_json::to_vec(&ports)?)?;
    Ok((artifacts, git))
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    let simulator_delay = parse_duration(&args.simulator_delay).with_context(|| {
        format!(
            "--simulator-delay {:?} is not a duration",
            args.simulator_delay
        )
    })?;
    let simulator = simulator::Options::new(simulator_delay, args.simulate_failure.as_deref())
        .with_context(|| {
            format!(
                "--simulate-failure {:?} is not a glob",
                args.simulate_failure
            )
        })?;
    let timeout = parse_duration(&args.timeout)
        .with_context(|| format!("--timeout {:?} is not a duration", args.timeout))?;
    outln!("► starting the API server")?;
    let mut config = ferroflux_apiserver::Config::new(args.data_dir.join("apiserver"));
    config.listen = args.listen;
    config.kubeconfig_out = args.kubeconfig_out.clone();
    let server = ferroflux_apiserver::serve(config)
        .await
        .context("the API server did not start")?;
    outln!(
        "✔ API server at {} (kubeconfig: {})",
        server.url,
        server.kubeconfig_path.display()
    )?;

    let (artifact_listener, git_listener) = bind_persisted(&args.data_dir).await?;
    let artifact_url = format!("http://{}", artifact_listener.local_addr()?);
    let git_url = format!("http://{}", git_listener.local_addr()?);
    let storage = Arc::new(Storage::new(
        args.data_dir.join("artifacts"),
        &artifact_url,
    )?);
    let router = storage.router();
    tokio::spawn(async move { axum::serve(artifact_listener, router).await });
    let git_root = args.data_dir.join("git");
    std::fs::create_dir_all(&git_root)?;
    tokio::spawn(git_http::serve(git_root.clone(), git_listener));

    let fleet_url = format!("{git_url}/fleet-infra.git");
    let mut fleet_files = match &args.fleet {
        Some(path) => fleet::disk_files(path)?,
        None => fleet::bundled_files(&fleet::EXAMPLE_FLEET),
    };
    fleet_files
        .retain(|(path, _)| !path.starts_with(&format!("clusters/{}/flux-system/", args.cluster)));
    fleet_files.extend(fleet::bootstrap_files(&args.cluster, &fleet_url));
    let apps_files = match &args.apps {
        Some(path) => fleet::disk_files(path)?,
        None => fleet::bundled_files(&fleet::EXAMPLE_APPS),
    };
    let (_, created) = fleet::ensure_repository(
        &git_root,
        "fleet-infra",
        &fleet_files,
        "Add Flux sync manifests",
    )?;
    fleet::ensure_repository(&git_root, "tenant-apps", &apps_files, "Add tenant apps")?;
    if created {
        outln!("✔ fleet repository created at {fleet_url}")?;
    }

    let kube_config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let client = kube::Client::try_from(kube_config.clone())?;
    outln!(
        "► installing components and bootstrapping clusters/{}",
        args.cluster
    )?;
    bootstrap(&client, &args.cluster, &fleet_url, &git_url).await?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }
    .boxed()
    .shared();
    let tags = Arc::new(imagerepository::TagStore::new(
        args.data_dir.join("image-tags"),
    )?);
    let ks_options = kustomization::Options {
        default_service_account: args.default_service_account.clone(),
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        ..Default::default()
    };
    // The lockdown flags reach every controller that follows a reference or applies.
    let mut controllers = controller::source_controllers(&client, &storage, &shutdown);
    controllers.push(controller::source_watcher(
        &client,
        &storage,
        args.no_cross_namespace_refs,
        &shutdown,
    ));
    controllers.extend(controller::image_reflector_controllers(
        &client,
        tags,
        args.no_cross_namespace_refs,
        &shutdown,
    ));
    controllers.push(controller::image_automation_controller(
        &client,
        args.no_cross_namespace_refs,
        &shutdown,
    ));
    controllers.push(controller::kustomize_controller(
        kustomization::Context::new(client.clone(), kube_config, ks_options),
        &shutdown,
    ));
    if !args.no_simulator {
        controllers.push(controller::workload_simulator(
            &client, simulator, &shutdown,
        ));
    }
    let mut supervisors = tokio::spawn(controller::supervise_all(controllers, shutdown));

    let code = watch_status(&client, args.exit_when_ready, timeout, &mut supervisors).await?;
    let _ = stop.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown().await;
    Ok(code)
}

/// The Flux components `up` runs in its process (see `run`); their CRDs are the ones it installs.
const COMPONENTS: &[&str] = &[
    "source-controller",
    "source-watcher",
    "kustomize-controller",
    "image-reflector-controller",
    "image-automation-controller",
];

/// Installs the CRDs of [`COMPONENTS`] and the flux-system namespace, the applier's ServiceAccount and binding,
/// the `cluster-vars` the fleet substitutes, and the bootstrap GitRepository + Kustomization. Server-side apply with a dry run first, so
/// a second start writes nothing.
async fn bootstrap(
    client: &kube::Client,
    cluster: &str,
    fleet_url: &str,
    git_url: &str,
) -> anyhow::Result<()> {
    let manager = ResourceManager::new(client.clone(), "ferroflux");
    // Like `install`: only the kinds of the controllers `up` runs; a CRD without its controller
    // would accept objects that nothing ever reconciles.
    let mut objects: Vec<Value> = ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|kind| COMPONENTS.contains(&kind.component))
        .map(|kind| {
            let crd = kind.definition();
            let mut value = serde_json::to_value(crd).expect("CRDs serialise");
            value["apiVersion"] = json!("apiextensions.k8s.io/v1");
            value["kind"] = json!("CustomResourceDefinition");
            value
        })
        .collect();
    objects.push(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    );
    // What `flux install` creates for the applier: its ServiceAccount, bound to cluster-admin
    // by `cluster-reconciler`; the flux-system Kustomizations impersonate it.
    let applier = super::install::service_account(super::install::APPLIER, "flux-system");
    objects.push(serde_json::to_value(applier)?);
    objects.push(serde_json::to_value(super::install::cluster_reconciler(
        "flux-system",
    ))?);
    objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
        "data": {"git_server": git_url, "cluster_name": cluster}}));
    for (_, content) in fleet::bootstrap_files(cluster, fleet_url)
        .into_iter()
        .take(1)
    {
        let text = String::from_utf8(content).expect("bootstrap files are text");
        let docs: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text)?;
        objects.extend(docs);
    }
    let changes = manager
        .apply_all(&objects, &ApplyOptions::default())
        .await?;
    let changed = changes
        .iter()
        .filter(|c| c.action != ferroflux_apply::manager::Action::Unchanged)
        .count();
    outln!(
        "✔ bootstrap: {changed} object(s) created or configured, {} unchanged",
        changes.len() - changed
    )?;
    Ok(())
}

/// Prints the Kustomizations whenever they change; with `exit_when_ready` returns 0 once all
/// are Ready, 1 when one is Stalled or the timeout passes. Otherwise runs until Ctrl-C. Fails
/// when a controller keeps dying (its supervisor gave up).
async fn watch_status(
    client: &kube::Client,
    exit_when_ready: bool,
    timeout: Duration,
    supervisors: &mut tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut last = String::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let list = super::get::list(client, super::get::KUSTOMIZATIONS, None).await?;
        let all_ready = !list.is_empty() && list.iter().all(super::get::is_ready);
        let stalled = list.iter().find(|ks| {
            ks["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True")
            })
        });
        let stalled = stalled.map(|ks| {
            format!(
                "{}/{}",
                ks["metadata"]["namespace"].as_str().unwrap_or_default(),
                ks["metadata"]["name"].as_str().unwrap_or_default()
            )
        });
        let rendered = super::get::render(super::get::KUSTOMIZATIONS, &list, true);
        if rendered != last {
            outln!("{rendered}")?;
            last = rendered;
        }
        if exit_when_ready {
            if all_ready {
                outln!("✔ all Kustomizations are Ready")?;
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(name) = stalled {
                outln!("✗ Kustomization {name} is stalled")?;
                return Ok(ExitCode::FAILURE);
            }
            if started.elapsed() > timeout {
                outln!("✗ timeout after {timeout:?} waiting for the Kustomizations to be Ready")?;
                return Ok(ExitCode::FAILURE);
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                outln!("► shutting down")?;
                return Ok(ExitCode::SUCCESS);
            }
            // The supervisors end before shutdown only when a controller keeps dying: the
            // statuses printed would then be stale, so `up` fails.
            ended = &mut *supervisors => {
                ended.context("the controllers' supervisor failed")??;
                anyhow::bail!("the controllers stopped");
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
