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
use futures::future::{BoxFuture, Shared};

use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::{
    artifactgenerator, bucket, gitrepository, helmchart, helmrepository, imagepolicy,
    imagerepository, imageupdateautomation, ocirepository,
    runtime::{RestartPolicy, supervise},
    simulator,
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
    /// kustomize: the identity of Kustomizations without serviceAccountName.
    #[arg(long)]
    default_service_account: Option<String>,
    /// kustomize, source-watcher: refuse sources in other namespaces.
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
            source_controllers(&client, &storage, &shutdown)
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
            image_reflector_controllers(&client, tags, args.no_cross_namespace_refs, &shutdown)
        }
        Name::ImageAutomation => {
            vec![image_automation_controller(
                &client,
                args.no_cross_namespace_refs,
                &shutdown,
            )]
        }
    };
    supervise_all(controllers, shutdown).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(ExitCode::SUCCESS)
}

/// A controller to supervise: its name (the kind it reconciles) and how to start it.
pub(crate) type Supervised = (
    &'static str,
    Box<dyn FnMut() -> BoxFuture<'static, ()> + Send>,
);

/// What stops the controllers: one signal, resolved for every clone at once.
pub(crate) type Stop = Shared<BoxFuture<'static, ()>>;

/// Boxes a controller's start function for [`supervise_all`]; every start gets its own handle
/// on `stop`.
fn starter<Fut>(
    stop: &Stop,
    mut start: impl FnMut(Stop) -> Fut + Send + 'static,
) -> Box<dyn FnMut() -> BoxFuture<'static, ()> + Send>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let stop = stop.clone();
    Box::new(move || start(stop.clone()).boxed())
}

/// The source controller: one reconciler per source kind, as Flux's source-controller.
pub(crate) fn source_controllers(
    client: &kube::Client,
    storage: &Arc<Storage>,
    stop: &Stop,
) -> Vec<Supervised> {
    let git = Arc::new(gitrepository::Context::new(client.clone(), storage.clone()));
    let oci = Arc::new(ocirepository::Context::new(client.clone(), storage.clone()));
    let helm = Arc::new(helmrepository::Context::new(
        client.clone(),
        storage.clone(),
    ));
    let chart = Arc::new(helmchart::Context::new(
        client.clone(),
        storage.clone(),
        ferroflux_source::http::default_client(),
    ));
    let bucket = Arc::new(bucket::Context::new(client.clone(), storage.clone()));
    vec![
        (
            "GitRepository",
            starter(stop, move |stop| gitrepository::run(git.clone(), stop)),
        ),
        (
            "OCIRepository",
            starter(stop, move |stop| ocirepository::run(oci.clone(), stop)),
        ),
        (
            "HelmRepository",
            starter(stop, move |stop| helmrepository::run(helm.clone(), stop)),
        ),
        (
            "HelmChart",
            starter(stop, move |stop| helmchart::run(chart.clone(), stop)),
        ),
        (
            "Bucket",
            starter(stop, move |stop| bucket::run(bucket.clone(), stop)),
        ),
    ]
}

/// Flux's source-watcher: the ArtifactGenerator reconciler, storing into `storage` (which
/// honours `--no-cross-namespace-refs`).
pub(crate) fn source_watcher(
    client: &kube::Client,
    storage: &Arc<Storage>,
    no_cross_namespace_refs: bool,
    stop: &Stop,
) -> Supervised {
    let mut context = artifactgenerator::Context::new(client.clone(), storage.clone());
    context.no_cross_namespace_refs = no_cross_namespace_refs;
    let context = Arc::new(context);
    (
        "ArtifactGenerator",
        starter(stop, move |stop| {
            artifactgenerator::run(context.clone(), stop)
        }),
    )
}

/// The kustomize controller.
pub(crate) fn kustomize_controller(context: kustomization::Context, stop: &Stop) -> Supervised {
    let context = Arc::new(context);
    (
        "Kustomization",
        starter(stop, move |stop| kustomization::run(context.clone(), stop)),
    )
}

/// The image-reflector controller: the ImageRepository scanner and the ImagePolicy reconciler
/// (which honours `--no-cross-namespace-refs`).
pub(crate) fn image_reflector_controllers(
    client: &kube::Client,
    tags: Arc<imagerepository::TagStore>,
    no_cross_namespace_refs: bool,
    stop: &Stop,
) -> Vec<Supervised> {
    let mut policies = imagepolicy::Context::new(client.clone(), tags.clone());
    policies.no_cross_namespace_refs = no_cross_namespace_refs;
    let policies = Arc::new(policies);
    let repositories = Arc::new(imagerepository::Context::new(client.clone(), tags));
    vec![
        (
            "ImageRepository",
            starter(stop, move |stop| {
                imagerepository::run(repositories.clone(), stop)
            }),
        ),
        (
            "ImagePolicy",
            starter(stop, move |stop| imagepolicy::run(policies.clone(), stop)),
        ),
    ]
}

/// The image-automation controller (honours `--no-cross-namespace-refs`).
pub(crate) fn image_automation_controller(
    client: &kube::Client,
    no_cross_namespace_refs: bool,
    stop: &Stop,
) -> Supervised {
    let mut context = imageupdateautomation::Context::new(client.clone());
    context.no_cross_namespace_refs = no_cross_namespace_refs;
    let context = Arc::new(context);
    (
        "ImageUpdateAutomation",
        starter(stop, move |stop| {
            imageupdateautomation::run(context.clone(), stop)
        }),
    )
}

/// The workload simulator (`ferroflux up` only: in a real cluster, pods run).
pub(crate) fn workload_simulator(
    client: &kube::Client,
    options: simulator::Options,
    stop: &Stop,
) -> Supervised {
    let client = client.clone();
    (
        "workload simulator",
        starter(stop, move |stop| {
            simulator::run(client.clone(), options.clone(), stop)
        }),
    )
}

/// Runs every controller under [`supervise`] with the default [`RestartPolicy`] until
/// `shutdown`; fails as soon as one of them keeps dying.
pub(crate) async fn supervise_all(
    controllers: Vec<Supervised>,
    shutdown: Stop,
) -> anyhow::Result<()> {
    let policy = RestartPolicy::default();
    futures::future::try_join_all(
        controllers
            .into_iter()
            .map(|(name, start)| supervise(name, &policy, shutdown.clone(), start)),
    )
    .await?;
    Ok(())
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
