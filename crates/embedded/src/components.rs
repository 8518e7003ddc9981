//! Each Flux component's reconcilers as supervised tasks: how `ferroflux up` runs them all in
//! one process and `ferroflux controller NAME` runs one component per Deployment.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::metrics::Metrics;
use ferroflux_controllers::runtime::{
    self, Flags, Reconciler, RestartPolicy, SupervisionError, supervise,
};
use ferroflux_controllers::{
    artifactgenerator, bucket, canary, gitrepository, helmchart, helmrelease, helmrepository,
    imagepolicy, imagerepository, imageupdateautomation, notification, ocirepository, simulator,
};
use ferroflux_source::storage::Storage;

/// A controller to supervise: its name (the kind it reconciles) and how to start it.
pub type Supervised = (
    &'static str,
    Box<dyn FnMut() -> BoxFuture<'static, ()> + Send>,
);

/// What stops the controllers: one signal, resolved for every clone at once.
pub type Stop = Shared<BoxFuture<'static, ()>>;

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

/// What every controller of one process shares: the client, the metrics it serves, the flags
/// of every kind (`--events-addr`, jitter), the lockdown flag that refuses cross-namespace
/// references, and the stop signal.
#[derive(Clone)]
pub struct Process {
    /// The controllers' client.
    pub client: kube::Client,
    /// Flux's `gotk_*` metrics, when the process serves them.
    pub metrics: Option<Arc<Metrics>>,
    /// The flags every kind honours.
    pub flags: Flags,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Stops every controller.
    pub stop: Stop,
}

impl Process {
    /// Gives a controller's runtime the process's metrics and flags.
    fn configure(&self, runtime: &mut runtime::Context) {
        runtime.metrics = self.metrics.clone();
        runtime.flags = self.flags.clone();
    }

    /// One supervised reconciler of `kind` on `context`.
    fn reconciler<R: Reconciler>(&self, kind: &'static str, context: R) -> Supervised {
        let context = Arc::new(context);
        (
            kind,
            starter(&self.stop, move |stop| {
                ferroflux_controllers::runtime::run(context.clone(), stop)
            }),
        )
    }
}

/// The source controller: one reconciler per source kind, as Flux's source-controller.
pub fn source_controllers(process: &Process, storage: &Arc<Storage>) -> Vec<Supervised> {
    let client = &process.client;
    let mut git = gitrepository::Context::new(client.clone(), storage.clone());
    let mut oci = ocirepository::Context::new(client.clone(), storage.clone());
    let mut helm = helmrepository::Context::new(client.clone(), storage.clone());
    let http = ferroflux_source::http::default_client();
    let mut chart = helmchart::Context::new(client.clone(), storage.clone(), http);
    let mut bucket = bucket::Context::new(client.clone(), storage.clone());
    for runtime in [
        &mut git.runtime,
        &mut oci.runtime,
        &mut helm.runtime,
        &mut chart.source.runtime,
        &mut bucket.runtime,
    ] {
        process.configure(runtime);
    }
    vec![
        process.reconciler("GitRepository", git),
        process.reconciler("OCIRepository", oci),
        process.reconciler("HelmRepository", helm),
        process.reconciler("HelmChart", chart),
        process.reconciler("Bucket", bucket),
    ]
}

/// Flux's source-watcher: the ArtifactGenerator reconciler, storing into `storage`.
pub fn source_watcher(process: &Process, storage: &Arc<Storage>) -> Supervised {
    let mut context = artifactgenerator::Context::new(process.client.clone(), storage.clone());
    context.no_cross_namespace_refs = process.no_cross_namespace_refs;
    process.configure(&mut context.runtime);
    process.reconciler("ArtifactGenerator", context)
}

/// The kustomize controller.
pub fn kustomize_controller(process: &Process, mut context: kustomization::Context) -> Supervised {
    process.configure(&mut context.runtime);
    process.reconciler("Kustomization", context)
}

/// The helm controller.
pub fn helm_controller(process: &Process, mut context: helmrelease::Context) -> Supervised {
    process.configure(&mut context.runtime);
    process.reconciler("HelmRelease", context)
}

/// The image-reflector controller: the ImageRepository scanner and the ImagePolicy reconciler.
pub fn image_reflector_controllers(
    process: &Process,
    tags: Arc<imagerepository::TagStore>,
) -> Vec<Supervised> {
    let mut policies = imagepolicy::Context::new(process.client.clone(), tags.clone());
    policies.no_cross_namespace_refs = process.no_cross_namespace_refs;
    process.configure(&mut policies.runtime);
    let mut repositories = imagerepository::Context::new(process.client.clone(), tags);
    process.configure(&mut repositories.runtime);
    vec![
        process.reconciler("ImageRepository", repositories),
        process.reconciler("ImagePolicy", policies),
    ]
}

/// Flagger's canary controller; `metrics_server` is Flagger's `-metrics-server`, the
/// Prometheus of Canaries without `spec.metricsServer`.
pub fn canary_controller(process: &Process, metrics_server: Option<String>) -> Supervised {
    let mut context = canary::Context::new(process.client.clone());
    context.metrics_server = metrics_server;
    process.configure(&mut context.runtime);
    process.reconciler("Canary", context)
}

/// The image-automation controller.
pub fn image_automation_controller(process: &Process) -> Supervised {
    let mut context = imageupdateautomation::Context::new(process.client.clone());
    context.no_cross_namespace_refs = process.no_cross_namespace_refs;
    process.configure(&mut context.runtime);
    process.reconciler("ImageUpdateAutomation", context)
}

/// The notification controller: the Receiver reconciler, and the servers of the events the
/// other controllers post (`events_addr`) and of the Receivers' webhooks (`receiver_addr`),
/// both as Flux's `[host]:port` flags.
pub fn notification_controller(
    process: &Process,
    events_addr: String,
    receiver_addr: String,
) -> Vec<Supervised> {
    let mut context = notification::Context::new(process.client.clone());
    context.no_cross_namespace_refs = process.no_cross_namespace_refs;
    process.configure(&mut context.runtime);
    // The controller posts nothing to itself: its own events are about Alerts and Receivers.
    context.runtime.flags.events_addr = None;
    let context = Arc::new(context);
    let server = context.clone();
    let serve = move |stop: Stop| {
        let (server, events, receivers) =
            (server.clone(), events_addr.clone(), receiver_addr.clone());
        async move {
            if let Err(error) = notification::listen(server, &events, &receivers, stop).await {
                tracing::error!(%error, %events, %receivers, "the notification servers stopped");
            }
        }
    };
    vec![
        (
            "Receiver",
            starter(&process.stop, move |stop| {
                notification::run(context.clone(), stop)
            }),
        ),
        ("notification servers", starter(&process.stop, serve)),
    ]
}

/// The workload simulator (`ferroflux up` only: in a real cluster, pods run).
pub fn workload_simulator(
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
pub async fn supervise_all(
    controllers: Vec<Supervised>,
    shutdown: Stop,
) -> Result<(), SupervisionError> {
    let policy = RestartPolicy::default();
    futures::future::try_join_all(
        controllers
            .into_iter()
            .map(|(name, start)| supervise(name, &policy, shutdown.clone(), start)),
    )
    .await?;
    Ok(())
}
