//! Each Flux component's reconcilers as supervised tasks: how `ferroflux up` runs them all in
//! one process and `ferroflux controller NAME` runs one component per Deployment.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use ferroflux_controllers::kustomization::reconciler as kustomization;
use ferroflux_controllers::metrics::Metrics;
use ferroflux_controllers::runtime::{RestartPolicy, SupervisionError, supervise};
use ferroflux_controllers::{
    artifactgenerator, bucket, gitrepository, helmchart, helmrepository, imagepolicy,
    imagerepository, imageupdateautomation, ocirepository, simulator,
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

/// The source controller: one reconciler per source kind, as Flux's source-controller.
pub fn source_controllers(
    client: &kube::Client,
    storage: &Arc<Storage>,
    metrics: Option<&Arc<Metrics>>,
    stop: &Stop,
) -> Vec<Supervised> {
    let mut git = gitrepository::Context::new(client.clone(), storage.clone());
    let mut oci = ocirepository::Context::new(client.clone(), storage.clone());
    let mut helm = helmrepository::Context::new(client.clone(), storage.clone());
    let mut chart = helmchart::Context::new(
        client.clone(),
        storage.clone(),
        ferroflux_source::http::default_client(),
    );
    let mut bucket = bucket::Context::new(client.clone(), storage.clone());
    for runtime in [
        &mut git.runtime,
        &mut oci.runtime,
        &mut helm.runtime,
        &mut chart.source.runtime,
        &mut bucket.runtime,
    ] {
        runtime.metrics = metrics.cloned();
    }
    let (git, oci, helm) = (Arc::new(git), Arc::new(oci), Arc::new(helm));
    let (chart, bucket) = (Arc::new(chart), Arc::new(bucket));
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
pub fn source_watcher(
    client: &kube::Client,
    storage: &Arc<Storage>,
    no_cross_namespace_refs: bool,
    metrics: Option<&Arc<Metrics>>,
    stop: &Stop,
) -> Supervised {
    let mut context = artifactgenerator::Context::new(client.clone(), storage.clone());
    context.no_cross_namespace_refs = no_cross_namespace_refs;
    context.runtime.metrics = metrics.cloned();
    let context = Arc::new(context);
    (
        "ArtifactGenerator",
        starter(stop, move |stop| {
            artifactgenerator::run(context.clone(), stop)
        }),
    )
}

/// The kustomize controller.
pub fn kustomize_controller(context: kustomization::Context, stop: &Stop) -> Supervised {
    let context = Arc::new(context);
    (
        "Kustomization",
        starter(stop, move |stop| kustomization::run(context.clone(), stop)),
    )
}

/// The image-reflector controller: the ImageRepository scanner and the ImagePolicy reconciler
/// (which honours `--no-cross-namespace-refs`).
pub fn image_reflector_controllers(
    client: &kube::Client,
    tags: Arc<imagerepository::TagStore>,
    no_cross_namespace_refs: bool,
    metrics: Option<&Arc<Metrics>>,
    stop: &Stop,
) -> Vec<Supervised> {
    let mut policies = imagepolicy::Context::new(client.clone(), tags.clone());
    policies.no_cross_namespace_refs = no_cross_namespace_refs;
    policies.runtime.metrics = metrics.cloned();
    let policies = Arc::new(policies);
    let mut repositories = imagerepository::Context::new(client.clone(), tags);
    repositories.runtime.metrics = metrics.cloned();
    let repositories = Arc::new(repositories);
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
pub fn image_automation_controller(
    client: &kube::Client,
    no_cross_namespace_refs: bool,
    metrics: Option<&Arc<Metrics>>,
    stop: &Stop,
) -> Supervised {
    let mut context = imageupdateautomation::Context::new(client.clone());
    context.no_cross_namespace_refs = no_cross_namespace_refs;
    context.runtime.metrics = metrics.cloned();
    let context = Arc::new(context);
    (
        "ImageUpdateAutomation",
        starter(stop, move |stop| {
            imageupdateautomation::run(context.clone(), stop)
        }),
    )
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
