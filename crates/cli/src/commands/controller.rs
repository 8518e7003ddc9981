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

use ferroflux_controllers::imagerepository;
use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_embedded::components::{
    Supervised, image_automation_controller, image_reflector_controllers, kustomize_controller,
    source_controllers, source_watcher, supervise_all,
};
use ferroflux_gocompat::duration::parse_std as parse_duration;
use ferroflux_source::storage::Storage;

/// The controllers ferroflux has (the ones `ferroflux install` deploys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Name {
    Source,
    SourceWatcher,
    Kustomize,
    ImageReflector,
    ImageAutomation,
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
    /// Where events are posted (notification-controller's address).
    #[arg(long)]
    events_addr: Option<String>,
    /// Where Prometheus metrics are served (`/metrics`), as `[host]:port`.
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,
    /// Reconciliations run at once.
    #[arg(long, default_value_t = 4)]
    concurrent: u16,
    /// kustomize: the identity of Kustomizations without serviceAccountName. image-reflector,
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
    /// kustomize: how often to check dependencies that are not ready.
    #[arg(long, default_value = "30s")]
    requeue_dependency: String,
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "warn,ferroflux={0},ferroflux_controllers={0}",
        args.log_level
    ))
    .with_context(|| format!("--log-level {:?} is not a level", args.log_level))?;
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log_encoding == "json" {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_controller(args))
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
    let controllers: Vec<Supervised> = match args.name {
        Name::Source => {
            let advertised = format!("http://{}", args.storage_adv_addr.trim_end_matches('/'));
            let storage = Arc::new(Storage::new(&args.storage_path, &advertised)?);
            let listener = tokio::net::TcpListener::bind(args.storage_addr)
                .await
                .with_context(|| format!("cannot listen on {}", args.storage_addr))?;
            let router = storage.router();
            tokio::spawn(async move { axum::serve(listener, router).await });
            source_controllers(&client, &storage, Some(&metrics), &shutdown)
        }
        Name::SourceWatcher => {
            let advertised = format!("http://{}", args.storage_adv_addr.trim_end_matches('/'));
            let storage = Arc::new(Storage::new(&args.storage_path, &advertised)?);
            let listener = tokio::net::TcpListener::bind(args.storage_addr)
                .await
                .with_context(|| format!("cannot listen on {}", args.storage_addr))?;
            let router = storage.router();
            tokio::spawn(async move { axum::serve(listener, router).await });
            vec![source_watcher(
                &client,
                &storage,
                args.no_cross_namespace_refs,
                Some(&metrics),
                &shutdown,
            )]
        }
        Name::Kustomize => {
            let options = kustomization::Options {
                default_service_account: args.default_service_account.clone(),
                no_cross_namespace_refs: args.no_cross_namespace_refs,
                requeue_dependency: parse_duration(&args.requeue_dependency).with_context(
                    || {
                        format!(
                            "--requeue-dependency {:?} is not a duration",
                            args.requeue_dependency
                        )
                    },
                )?,
                watch_label_selector: args.watch_label_selector.clone(),
                concurrent: args.concurrent,
                ..Default::default()
            };
            let context =
                kustomization::Context::new(client, config, options).with_metrics(metrics);
            vec![kustomize_controller(context, &shutdown)]
        }
        Name::ImageReflector => {
            let tags = Arc::new(imagerepository::TagStore::new(&args.storage_path)?);
            image_reflector_controllers(
                &client,
                tags,
                args.no_cross_namespace_refs,
                Some(&metrics),
                &shutdown,
            )
        }
        Name::ImageAutomation => {
            vec![image_automation_controller(
                &client,
                args.no_cross_namespace_refs,
                Some(&metrics),
                &shutdown,
            )]
        }
    };
    supervise_all(controllers, shutdown).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(ExitCode::SUCCESS)
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
