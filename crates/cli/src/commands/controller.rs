//! `ferroflux controller NAME`: one controller, as a Deployment of `ferroflux install` runs it
//! in a real cluster (the in-cluster or `KUBECONFIG` client).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use futures::FutureExt as _;

use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::runtime::Flags;
use ferroflux_controllers::{helmrelease, imagerepository, notification};
use ferroflux_embedded::components::{
    Process, Supervised, canary_controller, helm_controller, image_automation_controller,
    image_reflector_controllers, kustomize_controller, notification_controller, source_controllers,
    source_watcher, supervise_all,
};
use ferroflux_gocompat::duration::parse_std as parse_duration;
use ferroflux_source::storage::Storage;

/// The controllers ferroflux has (the ones `ferroflux install` deploys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Name {
    Source,
    SourceWatcher,
    Kustomize,
    Helm,
    Notification,
    ImageReflector,
    ImageAutomation,
    Canary,
}

/// Run one controller against the cluster of the current kubeconfig (or in-cluster config).
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Which controller.
    #[arg(value_enum)]
    name: Name,
    /// Watch every namespace (false: only the namespace in RUNTIME_NAMESPACE).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    watch_all_namespaces: bool,
    /// Only reconcile objects matching this label selector (sharding).
    #[arg(long)]
    watch_label_selector: Option<String>,
    /// Log level: debug, info or error.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log encoding: json or console.
    #[arg(long, default_value = "json")]
    log_encoding: String,
    /// Hold a Lease while reconciling, so that only one replica works at a time.
    #[arg(long)]
    enable_leader_election: bool,
    /// Where events are posted (notification-controller's address); notification: where
    /// it takes them, as `[host]:port`.
    #[arg(long)]
    events_addr: Option<String>,
    /// notification: where Receivers' webhooks are served, as `[host]:port`.
    #[arg(long, alias = "receiverAddr", default_value = notification::DEFAULT_RECEIVER_ADDR)]
    receiver_addr: String,
    /// Where Prometheus metrics are served (`/metrics`), as `[host]:port`.
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,
    /// Reconciliations run at once.
    #[arg(long, default_value_t = 4)]
    concurrent: u16,
    /// kustomize, helm: the identity of objects without serviceAccountName. image-reflector,
    /// image-automation: accepted as Flux's (the identity of cloud-provider workload identity,
    /// which ferroflux does not offer: their objects use secrets).
    #[arg(long)]
    default_service_account: Option<String>,
    /// kustomize, source-watcher, image-automation: refuse sources in other namespaces;
    /// image-reflector: refuse ImagePolicies' ImageRepositories in other namespaces.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    no_cross_namespace_refs: bool,
    /// kustomize: refuse remote bases (always the case: remote bases are not supported).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    no_remote_bases: bool,
    /// kustomize, helm: how often to check dependencies that are not ready (Flux's default:
    /// 30s for kustomize, 5s for helm).
    #[arg(long)]
    requeue_dependency: Option<String>,
    /// canary: the Prometheus of Canaries without spec.metricsServer (Flagger's flag).
    #[arg(long)]
    metrics_server: Option<String>,
    /// source, source-watcher: where artifacts are stored (image-reflector: where scanned tags
    /// are kept).
    #[arg(long, default_value = "/tmp/artifacts")]
    storage_path: PathBuf,
    /// source, source-watcher: the address the artifact server listens on.
    #[arg(long, default_value = "0.0.0.0:9090")]
    storage_addr: SocketAddr,
    /// source, source-watcher: the host name artifacts are advertised under.
    #[arg(
        long,
        default_value = "source-controller.flux-system.svc.cluster.local."
    )]
    storage_adv_addr: String,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let (level, json) = (args.log_level.clone(), args.log_encoding == "json");
    run_server("ferroflux_controllers", &level, json, run_controller(args))
}

/// Runs a long-lived server command (`controller`, `policy-webhook`) to its end on a
/// multi-thread runtime, after installing the TLS provider and the logger: `level` for
/// ferroflux and the `library` crate doing the work, warnings for the rest, JSON lines with
/// `json`.
pub(crate) fn run_server(
    library: &str,
    level: &str,
    json: bool,
    server: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter =
        tracing_subscriber::EnvFilter::try_new(format!("warn,ferroflux={level},{library}={level}"))
            .with_context(|| format!("--log-level {level:?} is not a level"))?;
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(server)
}

/// The artifact storage of the source controllers (source-controller, source-watcher), served
/// over HTTP at `--storage-addr` and advertised as `--storage-adv-addr`.
async fn serve_storage(args: &ControllerArgs) -> anyhow::Result<Arc<Storage>> {
    let advertised = format!("http://{}", args.storage_adv_addr.trim_end_matches('/'));
    let storage = Arc::new(Storage::new(&args.storage_path, &advertised)?);
    let listener = tokio::net::TcpListener::bind(args.storage_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.storage_addr))?;
    let router = storage.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(storage)
}

async fn run_controller(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    let config = kube::Config::infer()
        .await
        .context("no kubeconfig or in-cluster config")?;
    let client = kube::Client::try_from(config.clone())?;
    let leadership = if args.enable_leader_election {
        let namespace = std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into());
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "ferroflux".into());
        let election = ferroflux_controllers::leader::Election {
            namespace,
            name: format!(
                "{}-controller-leader-election",
                args.name
                    .to_possible_value()
                    .map_or("ferroflux".into(), |v| v.get_name().to_string())
            ),
            identity: format!("{host}_{}", std::process::id()),
            lease_duration: Duration::from_secs(35),
            retry_period: Duration::from_secs(5),
        };
        Some(ferroflux_controllers::leader::acquire(client.clone(), election).await)
    } else {
        None
    };
    let shutdown = async move {
        match &leadership {
            Some(leadership) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = leadership.lost() => {}
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let metrics = ferroflux_controllers::metrics::Metrics::new();
    serve_metrics(&args.metrics_addr, metrics.clone()).await?;
    let shutdown = shutdown.boxed().shared();
    let process = Process {
        client: client.clone(),
        metrics: Some(metrics),
        flags: Flags {
            events_addr: args.events_addr.clone(),
            concurrent: args.concurrent,
            watch_label_selector: args.watch_label_selector.clone(),
            ..Flags::default()
        },
        no_cross_namespace_refs: args.no_cross_namespace_refs,
        stop: shutdown.clone(),
    };
    let controllers: Vec<Supervised> = match args.name {
        Name::Source => source_controllers(&process, &serve_storage(&args).await?),
        Name::SourceWatcher => vec![source_watcher(&process, &serve_storage(&args).await?)],
        Name::Kustomize => {
            let defaults = kustomization::Options::default();
            let options = kustomization::Options {
                default_service_account: args.default_service_account.clone(),
                no_cross_namespace_refs: args.no_cross_namespace_refs,
                requeue_dependency: requeue_dependency(&args, defaults.requeue_dependency)?,
                watch_label_selector: args.watch_label_selector.clone(),
                concurrent: args.concurrent,
                ..defaults
            };
            let context = kustomization::Context::new(client, config, options);
            vec![kustomize_controller(&process, context)]
        }
        Name::Helm => {
            let defaults = helmrelease::Options::default();
            let options = helmrelease::Options {
                default_service_account: args.default_service_account.clone(),
                no_cross_namespace_refs: args.no_cross_namespace_refs,
                requeue_dependency: requeue_dependency(&args, defaults.requeue_dependency)?,
                watch_label_selector: args.watch_label_selector.clone(),
                concurrent: args.concurrent,
                ..defaults
            };
            let context = helmrelease::Context::new(client, config, options);
            vec![helm_controller(&process, context)]
        }
        Name::Notification => {
            let events = args.events_addr.clone();
            let events = events.unwrap_or_else(|| notification::DEFAULT_EVENTS_ADDR.into());
            notification_controller(&process, events, args.receiver_addr.clone())
        }
        Name::ImageReflector => {
            let tags = Arc::new(imagerepository::TagStore::new(&args.storage_path)?);
            image_reflector_controllers(&process, tags)
        }
        Name::ImageAutomation => vec![image_automation_controller(&process)],
        Name::Canary => vec![canary_controller(&process, args.metrics_server.clone())],
    };
    supervise_all(controllers, shutdown).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(ExitCode::SUCCESS)
}

/// `--requeue-dependency`, or the controller's default.
fn requeue_dependency(args: &ControllerArgs, default: Duration) -> anyhow::Result<Duration> {
    match &args.requeue_dependency {
        Some(text) => parse_duration(text)
            .with_context(|| format!("--requeue-dependency {text:?} is not a duration")),
        None => Ok(default),
    }
}

/// Serves `/metrics` on `addr` (`:8080` listens on every interface, like Flux's flag).
async fn serve_metrics(
    addr: &str,
    metrics: Arc<ferroflux_controllers::metrics::Metrics>,
) -> anyhow::Result<()> {
    let addr: SocketAddr = if let Some(port) = addr.strip_prefix(':') {
        format!("0.0.0.0:{port}").parse()
    } else {
        addr.parse()
    }
    .with_context(|| format!("--metrics-addr {addr:?} is not [host]:port"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { metrics.render() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(())
}
