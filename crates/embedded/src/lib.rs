//! The embedded GitOps control plane of `ferroflux up`, on one machine: the API server, the
//! artifact server, a local Git server holding the fleet, the Flux-style bootstrap and the
//! controllers as supervised tasks. The steps are separate functions so that the caller can
//! report each one; the `ferroflux` binary only parses flags and prints.

pub mod components;
mod error;
pub mod fleet;
pub mod git_http;
pub mod manifests;
pub mod seed;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use serde_json::{Value, json};

use ferroflux_admission::PolicyCache;
use ferroflux_apiserver::RunningServer;
use ferroflux_apply::manager::{ApplyOptions, Change, ResourceManager};
use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::runtime::{Flags, SupervisionError};
use ferroflux_controllers::{helmrelease, imagerepository, simulator};
use ferroflux_source::storage::Storage;

pub use error::Error;

/// The Flux components the embedded control plane runs in its process (see
/// [`start_controllers`]), and `policy-webhook`: Kyverno-style policies, enforced inside the
/// API server ([`start_api_server`]) rather than by `install`'s webhook Deployment. Their CRDs
/// are the ones [`bootstrap`] installs.
pub const COMPONENTS: &[&str] = &[
    "source-controller",
    "source-watcher",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
    "flagger",
    manifests::POLICY_WEBHOOK,
];

/// Creates `data_dir` and starts the API server there (database under `apiserver/`), with
/// Kyverno's webhooks in-process over `policies` (kept current by [`watch_policies`]).
pub async fn start_api_server(
    data_dir: &Path,
    listen: SocketAddr,
    kubeconfig_out: Option<PathBuf>,
    policies: &Arc<PolicyCache>,
    durability: ferroflux_apiserver::store::Durability,
) -> Result<RunningServer, Error> {
    std::fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let mut config = ferroflux_apiserver::Config::new(data_dir.join("apiserver"));
    config.listen = listen;
    config.kubeconfig_out = kubeconfig_out;
    config.validators = ferroflux_admission::validators(policies);
    config.durability = durability;
    ferroflux_apiserver::serve(config)
        .await
        .map_err(Error::ApiServer)
}

/// The artifact server and the Git server, running.
pub struct SourceServers {
    /// The artifact storage the source controllers write to.
    pub storage: Arc<Storage>,
    /// `http://127.0.0.1:PORT` of the artifact server.
    pub artifact_url: String,
    /// Where the bare repositories are (`<data-dir>/git`).
    pub git_root: PathBuf,
    /// `http://127.0.0.1:PORT` of the Git server.
    pub git_url: String,
    /// Where the notification controller takes events (`127.0.0.1:PORT`).
    pub events_addr: SocketAddr,
    /// Where the notification controller serves Receivers' webhooks (`127.0.0.1:PORT`).
    pub receiver_addr: SocketAddr,
}

/// Starts the artifact server and the Git server on the ports of the previous run (the first
/// run picks free ones), so that the URLs written into objects stay valid across restarts, and
/// reserves the notification controller's ports (events: kept likewise; Receivers' webhooks:
/// `receiver_listen`, port 0 for a free one).
pub async fn serve_sources(
    data_dir: &Path,
    receiver_listen: SocketAddr,
) -> Result<SourceServers, Error> {
    let [artifact_listener, git_listener, events] = bind_persisted(data_dir).await?;
    let receivers = tokio::net::TcpListener::bind(receiver_listen)
        .await
        .map_err(|source| Error::PortTaken {
            server: "receiver",
            port: receiver_listen.port(),
            source,
        })?;
    let artifact_url = format!("http://{}", artifact_listener.local_addr()?);
    let git_url = format!("http://{}", git_listener.local_addr()?);
    let storage = Arc::new(Storage::new(data_dir.join("artifacts"), &artifact_url)?);
    let router = storage.router();
    tokio::spawn(async move { axum::serve(artifact_listener, router).await });
    let git_root = data_dir.join("git");
    std::fs::create_dir_all(&git_root)?;
    tokio::spawn(git_http::serve(git_root.clone(), git_listener));
    // The notification controller binds its own addresses (again after a restart): these
    // listeners only reserved the ports.
    Ok(SourceServers {
        storage,
        artifact_url,
        git_root,
        git_url,
        events_addr: events.local_addr()?,
        receiver_addr: receivers.local_addr()?,
    })
}

/// The servers of `up` whose ports are chosen on first run and kept, so that the URLs written
/// into objects (artifacts, Git) and given to the controllers (events) stay valid across
/// restarts.
const PERSISTED: [&str; 3] = ["artifacts", "git", "events"];

async fn bind_persisted(data_dir: &Path) -> Result<[tokio::net::TcpListener; 3], Error> {
    let file = data_dir.join("ports.json");
    let saved: BTreeMap<String, u16> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    // Other servers' entries (the registry's) stay.
    let mut ports = saved.clone();
    let mut listeners = Vec::with_capacity(PERSISTED.len());
    for server in PERSISTED {
        let listener = match saved.get(server) {
            Some(&port) => tokio::net::TcpListener::bind(local(port))
                .await
                .map_err(|source| Error::PortTaken {
                    server,
                    port,
                    source,
                })?,
            None => tokio::net::TcpListener::bind(local(0)).await?,
        };
        ports.insert(server.to_string(), listener.local_addr()?.port());
        listeners.push(listener);
    }
    std::fs::write(&file, serde_json::to_vec(&ports)?)?;
    listeners
        .try_into()
        .map_err(|_| Error::Io(std::io::Error::other("a listener is missing")))
}

/// Where `up`'s OCI registry listens when `--registry-listen` is not given and no earlier run
/// kept a port (5000 is often a developer's own registry).
pub const DEFAULT_REGISTRY_PORT: u16 = 5050;

/// Starts the local OCI registry, storage under `<data-dir>/registry`, on `listen`; without
/// it on the port of the previous run, else on [`DEFAULT_REGISTRY_PORT`] when free, else on a
/// free one, so that image references written into objects stay valid across restarts. The
/// port is kept in `ports.json` as `registry`.
pub async fn serve_registry(
    data_dir: &Path,
    listen: Option<SocketAddr>,
) -> Result<ferroflux_registry::RunningRegistry, Error> {
    use ferroflux_registry::{Config, Error as RegistryError, serve};
    let file = data_dir.join("ports.json");
    let mut saved: BTreeMap<String, u16> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let root = data_dir.join("registry");
    let local = |port: u16| Config::new(&root, SocketAddr::from(([127, 0, 0, 1], port)));
    let registry = match (listen, saved.get("registry")) {
        (Some(addr), _) => serve(Config::new(&root, addr))
            .await
            .map_err(Error::Registry)?,
        (None, Some(&port)) => serve(local(port)).await.map_err(|e| match e {
            RegistryError::Bind { source, .. } => Error::PortTaken {
                server: "registry",
                port,
                source,
            },
            other => Error::Registry(other),
        })?,
        (None, None) => match serve(local(DEFAULT_REGISTRY_PORT)).await {
            Err(RegistryError::Bind { .. }) => serve(local(0)).await,
            other => other,
        }
        .map_err(Error::Registry)?,
    };
    saved.insert("registry".into(), registry.addr().port());
    std::fs::write(&file, serde_json::to_vec(&saved)?)?;
    Ok(registry)
}

/// Where the fleet's content comes from.
pub struct FleetSource<'a> {
    /// The fleet repository folder (`None`: the bundled examples/fleet-infra).
    pub fleet: Option<&'a Path>,
    /// The tenants' app repository folder (`None`: the bundled examples/tenant-apps).
    pub apps: Option<&'a Path>,
    /// The cluster whose `clusters/<cluster>/flux-system` gets the bootstrap files.
    pub cluster: &'a str,
}

/// The fleet repository.
pub struct Fleet {
    /// Its URL on the Git server.
    pub url: String,
    /// Whether this run created it (a later run keeps what is there).
    pub created: bool,
}

/// Creates the fleet repository (with the bootstrap files, replacing any the folder has) and
/// the tenants' app repository on the Git server, unless they exist.
pub fn write_fleet(servers: &SourceServers, source: &FleetSource<'_>) -> Result<Fleet, Error> {
    let url = format!("{}/fleet-infra.git", servers.git_url);
    let mut fleet_files = match source.fleet {
        Some(path) => fleet::disk_files(path)?,
        None => fleet::bundled_files(&fleet::EXAMPLE_FLEET),
    };
    let flux_system = format!("clusters/{}/flux-system/", source.cluster);
    fleet_files.retain(|(path, _)| !path.starts_with(&flux_system));
    fleet_files.extend(fleet::bootstrap_files(source.cluster, &url));
    let apps_files = match source.apps {
        Some(path) => fleet::disk_files(path)?,
        None => fleet::bundled_files(&fleet::EXAMPLE_APPS),
    };
    let (_, created) = fleet::ensure_repository(
        &servers.git_root,
        "fleet-infra",
        &fleet_files,
        "Add Flux sync manifests",
    )?;
    fleet::ensure_repository(
        &servers.git_root,
        "tenant-apps",
        &apps_files,
        "Add tenant apps",
    )?;
    Ok(Fleet { url, created })
}

/// A client of the API server, as its admin, and the config it was built from.
pub async fn client(server: &RunningServer) -> Result<(kube::Client, kube::Config), Error> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&server.kubeconfig)?,
        &Default::default(),
    )
    .await?;
    Ok((kube::Client::try_from(config.clone())?, config))
}

/// Keeps `policies` current from the API server and waits until it has listed them once (an
/// API server without Kyverno's kinds yet has none), so no write is refused for want of them.
/// The watch runs until the returned task is aborted.
pub async fn watch_policies(
    client: &kube::Client,
    policies: &Arc<PolicyCache>,
) -> tokio::task::JoinHandle<()> {
    let task = tokio::spawn(policies.clone().run(client.clone()));
    policies.wait_synced().await;
    task
}

/// The CRDs of [`COMPONENTS`], as objects to apply. Like `install`: only the kinds of the
/// controllers that run; a CRD without its controller would accept objects that nothing ever
/// reconciles.
pub fn crds() -> Result<Vec<Value>, Error> {
    let mut crds = ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|kind| COMPONENTS.contains(&kind.component))
        .map(|kind| {
            let mut value = serde_json::to_value(kind.definition())?;
            value["apiVersion"] = json!("apiextensions.k8s.io/v1");
            value["kind"] = json!("CustomResourceDefinition");
            Ok(value)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // The canary controller routes through Gateway API HTTPRoutes, which nothing else serves.
    if COMPONENTS.contains(&"flagger") {
        crds.push(ferroflux_controllers::canary::router::httproute_crd());
    }
    Ok(crds)
}

/// Installs the [`crds`] and the flux-system namespace, the applier's ServiceAccount and
/// binding, the `cluster-vars` the fleet substitutes, and the bootstrap GitRepository +
/// Kustomization. Server-side apply with a dry run first, so a second start writes nothing.
pub async fn bootstrap(
    client: &kube::Client,
    cluster: &str,
    fleet_url: &str,
    git_url: &str,
) -> Result<Vec<Change>, Error> {
    let manager = ResourceManager::new(client.clone(), "ferroflux");
    let mut objects = crds()?;
    objects.push(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    );
    // What `flux install` creates for the appliers: their ServiceAccounts, bound to
    // cluster-admin by `cluster-reconciler`; the flux-system Kustomizations impersonate
    // kustomize-controller's under lockdown.
    for applier in manifests::APPLIERS {
        let account = manifests::service_account(applier, "flux-system");
        objects.push(serde_json::to_value(account)?);
    }
    let reconciler = manifests::cluster_reconciler("flux-system", manifests::APPLIERS);
    objects.push(serde_json::to_value(reconciler)?);
    objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
        "data": {"git_server": git_url, "cluster_name": cluster}}));
    let sync = fleet::sync_manifests(cluster, fleet_url);
    objects.extend(ferroflux_gocompat::yaml::from_multiple::<Value>(&sync)?);
    Ok(manager
        .apply_all(&objects, &ApplyOptions::default())
        .await?)
}

/// What the controllers honour besides their defaults.
#[derive(Debug, Clone, Default)]
pub struct ControllerOptions {
    /// Lockdown: the ServiceAccount Kustomizations without `serviceAccountName` impersonate.
    pub default_service_account: Option<String>,
    /// Lockdown: refuse references to objects in other namespaces.
    pub no_cross_namespace_refs: bool,
    /// Simulate workload status (`None`: Deployments never become available).
    pub simulator: Option<simulator::Options>,
}

impl ControllerOptions {
    /// The flags of the `ferroflux controller` command line that runs `controller` as this
    /// process runs it (its subcommand is the Deployment's, [`manifests::Command::args`]): its storage under `data_dir`, the artifact server's address and
    /// the lockdown flags of the controllers that honour them, in Flux's `--flag=value` form.
    pub fn args(
        &self,
        controller: &manifests::Controller,
        servers: &SourceServers,
        data_dir: &Path,
    ) -> Vec<String> {
        let mut args = vec!["--watch-all-namespaces=true".to_string()];
        let storage = |dir: &str| format!("--storage-path={}", data_dir.join(dir).display());
        let advertised = servers
            .artifact_url
            .trim_start_matches("http://")
            .to_string();
        match controller.name {
            "source-controller" | "source-watcher" => {
                args.push(storage("artifacts"));
                args.push(format!("--storage-addr={advertised}"));
                args.push(format!("--storage-adv-addr={advertised}"));
            }
            "image-reflector-controller" => args.push(storage("image-tags")),
            "notification-controller" => {
                args.push(format!("--events-addr={}", servers.events_addr));
                args.push(format!("--receiver-addr={}", servers.receiver_addr));
            }
            _ => {}
        }
        if controller.name != "notification-controller" {
            args.push(format!("--events-addr=http://{}/", servers.events_addr));
        }
        // Flux's source-controller has no cross-namespace reference to refuse.
        if self.no_cross_namespace_refs && controller.name != "source-controller" {
            args.push("--no-cross-namespace-refs=true".to_string());
        }
        // The impersonation default of Flux's lockdown belongs to the appliers.
        if let Some(account) = &self.default_service_account
            && manifests::APPLIERS.contains(&controller.name)
        {
            args.push(format!("--default-service-account={account}"));
        }
        args
    }
}

/// The Deployments that record the controllers of [`COMPONENTS`] in `flux-system`, as
/// `ferroflux install` would deploy them, with the flags they run with in this process. The
/// policy webhook has none: admission runs inside the API server here, not as a webhook.
pub fn controller_deployments(
    options: &ControllerOptions,
    servers: &SourceServers,
    data_dir: &Path,
) -> Vec<k8s_openapi::api::apps::v1::Deployment> {
    COMPONENTS
        .iter()
        .filter_map(|name| manifests::controller(name))
        .filter(|component| component.is_controller())
        .map(|controller| {
            let args = options.args(controller, servers, data_dir);
            manifests::deployment(controller, "flux-system", manifests::IMAGE, args)
        })
        .collect()
}

/// Applies `deployments` (server-side, so a restart with the same flags writes nothing) and
/// reports them Available: they are records of controllers running in this process, not
/// workloads, so no pod (and no workload simulator, which `--no-simulator` turns off) decides
/// their status.
pub async fn register_controllers(
    client: &kube::Client,
    deployments: &[k8s_openapi::api::apps::v1::Deployment],
) -> Result<Vec<Change>, Error> {
    let manager = ResourceManager::new(client.clone(), "ferroflux");
    let objects = deployments
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    let changes = manager
        .apply_all(&objects, &ApplyOptions::default())
        .await?;
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), "flux-system");
    for deployment in deployments {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        // The status of the stored object (defaulted by the server), as the simulator writes it.
        let stored = serde_json::to_value(api.get(name).await?)?;
        let status = simulator::simulated_status(&stored, false, Duration::ZERO);
        if !holds(&stored["status"], &status) {
            api.patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({ "status": status })),
            )
            .await?;
        }
    }
    Ok(changes)
}

/// Whether `have` holds every top-level field of `want` as it is (the server may add others).
fn holds(have: &Value, want: &Value) -> bool {
    want.as_object()
        .is_some_and(|want| want.iter().all(|(k, v)| have.get(k) == Some(v)))
}

/// The controllers, running under their supervisors.
pub struct Controllers {
    stop: tokio::sync::watch::Sender<bool>,
    /// Ends before [`Controllers::stop`] only when a controller keeps dying.
    pub supervisors: tokio::task::JoinHandle<Result<(), SupervisionError>>,
}

impl Controllers {
    /// Signals every controller to stop and gives them a moment to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the controllers of [`COMPONENTS`] (and the workload simulator) as supervised tasks.
/// The image tags are kept under `<data-dir>/image-tags`.
pub fn start_controllers(
    client: &kube::Client,
    kube_config: kube::Config,
    servers: &SourceServers,
    data_dir: &Path,
    options: ControllerOptions,
) -> Result<Controllers, Error> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }
    .boxed()
    .shared();
    let tags = Arc::new(imagerepository::TagStore::new(data_dir.join("image-tags"))?);
    // The lockdown flags reach every controller that follows a reference or applies; every
    // controller posts its events to the notification controller.
    let process = components::Process {
        client: client.clone(),
        metrics: None,
        flags: Flags {
            events_addr: Some(format!("http://{}/", servers.events_addr)),
            ..Flags::default()
        },
        no_cross_namespace_refs: options.no_cross_namespace_refs,
        stop: shutdown.clone(),
    };
    let storage = &servers.storage;
    let mut controllers = components::source_controllers(&process, storage);
    controllers.push(components::source_watcher(&process, storage));
    controllers.extend(components::image_reflector_controllers(&process, tags));
    controllers.push(components::image_automation_controller(&process));
    controllers.push(components::canary_controller(&process, None));
    let ks_options = kustomization::Options {
        default_service_account: options.default_service_account.clone(),
        no_cross_namespace_refs: options.no_cross_namespace_refs,
        ..Default::default()
    };
    let ks = kustomization::Context::new(client.clone(), kube_config.clone(), ks_options);
    controllers.push(components::kustomize_controller(&process, ks));
    let hr_options = helmrelease::Options {
        default_service_account: options.default_service_account,
        no_cross_namespace_refs: options.no_cross_namespace_refs,
        ..Default::default()
    };
    let hr = helmrelease::Context::new(client.clone(), kube_config, hr_options);
    controllers.push(components::helm_controller(&process, hr));
    controllers.extend(components::notification_controller(
        &process,
        servers.events_addr.to_string(),
        servers.receiver_addr.to_string(),
    ));
    if let Some(simulator) = options.simulator {
        controllers.push(components::workload_simulator(client, simulator, &shutdown));
    }
    let supervisors = tokio::spawn(components::supervise_all(controllers, shutdown));
    Ok(Controllers { stop, supervisors })
}
