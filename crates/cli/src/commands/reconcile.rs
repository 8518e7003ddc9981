//! `ferroflux reconcile`: asks a controller to reconcile now, like `flux reconcile`, by setting
//! `reconcile.fluxcd.io/requestedAt` (and, for a HelmRelease, `forceAt`/`resetAt`) and waiting
//! until the controller has handled it. Every kind flux 2.9 reconciles: sources git, oci, helm,
//! bucket and chart, Kustomizations, HelmReleases, the image kinds and Receivers; `--with-source`
//! reconciles the source first as flux does (a HelmRelease's HelmChart and, in turn, the chart's
//! source). Progress goes to standard error as flux's does, so standard output stays empty.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};

use ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION;

use super::cluster::{self, ClusterArgs};
use super::get::{self, Shown};

/// HelmRelease's annotation asking for a one-off install or upgrade (helm-controller's
/// `ForceRequestAnnotation`).
const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// HelmRelease's annotation asking to reset its failure counts (`ResetRequestAnnotation`).
const RESET_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";
/// How often the object is read while waiting (flux polls every 2 s; quicker is the same output).
const POLL: Duration = Duration::from_millis(500);

/// Reconcile a Flux object now.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `--with-source` of the kinds that have a source.
#[derive(Debug, Clone, Args)]
struct WithSource {
    /// Its name.
    name: Option<String>,
    /// Reconcile its source first.
    #[arg(long)]
    with_source: bool,
}

/// The name of a kind without a source.
#[derive(Debug, Clone, Args)]
struct Named {
    /// Its name.
    name: Option<String>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// A Kustomization.
    #[command(visible_aliases = ["ks", "kustomizations"])]
    Kustomization(WithSource),
    /// A HelmRelease.
    #[command(visible_aliases = ["hr"])]
    Helmrelease {
        #[command(flatten)]
        source: WithSource,
        /// Force a one-off install or upgrade of the HelmRelease resource.
        #[arg(long)]
        force: bool,
        /// Reset the failure count for this HelmRelease resource.
        #[arg(long)]
        reset: bool,
    },
    /// A source.
    Source {
        #[command(subcommand)]
        kind: SourceKind,
    },
    /// An image automation object.
    Image {
        #[command(subcommand)]
        kind: ImageKind,
    },
    /// A Receiver.
    Receiver(Named),
    /// An Alert (v1beta3 Alerts have no reconciler: flux's static answer).
    Alert(Named),
    /// An alert Provider (v1beta3 Providers have no reconciler: flux's static answer).
    AlertProvider(Named),
}

#[derive(Debug, Subcommand)]
enum SourceKind {
    /// A Bucket.
    Bucket(Named),
    /// A HelmChart.
    Chart(WithSource),
    /// A GitRepository.
    Git(Named),
    /// A HelmRepository.
    Helm(Named),
    /// An OCIRepository.
    Oci(Named),
}

#[derive(Debug, Subcommand)]
enum ImageKind {
    /// An ImagePolicy.
    Policy(Named),
    /// An ImageRepository.
    Repository(Named),
    /// An ImageUpdateAutomation.
    Update(Named),
}

/// HelmRelease-only requests flux adds to the reconcile annotation.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    force: bool,
    reset: bool,
}

/// One reconcile to run: the kind, whether it goes through flux's with-source command (which
/// words a failure without quotes) and whether that reconciles the source first.
#[derive(Debug, Clone, Copy)]
struct Plan {
    shown: Shown,
    with_source_command: bool,
    reconcile_source: bool,
    requests: Requests,
}

fn helm_charts() -> Shown {
    get::source("HelmChart", "helmcharts")
}

impl What {
    /// The plan and the NAME argument.
    fn plan(&self) -> (Plan, Option<String>) {
        let plain = |shown: Shown, named: &Named| {
            let plan = Plan {
                shown,
                with_source_command: false,
                reconcile_source: false,
                requests: Requests::default(),
            };
            (plan, named.name.clone())
        };
        let with = |shown: Shown, source: &WithSource, requests: Requests| {
            let plan = Plan {
                shown,
                with_source_command: true,
                reconcile_source: source.with_source,
                requests,
            };
            (plan, source.name.clone())
        };
        match self {
            What::Kustomization(source) => with(get::KUSTOMIZATIONS, source, Requests::default()),
            What::Helmrelease {
                source,
                force,
                reset,
            } => with(
                get::HELM_RELEASES,
                source,
                Requests {
                    force: *force,
                    reset: *reset,
                },
            ),
            What::Source { kind } => match kind {
                SourceKind::Bucket(n) => plain(get::source("Bucket", "buckets"), n),
                SourceKind::Chart(source) => with(helm_charts(), source, Requests::default()),
                SourceKind::Git(n) => plain(get::source("GitRepository", "gitrepositories"), n),
                SourceKind::Helm(n) => plain(get::source("HelmRepository", "helmrepositories"), n),
                SourceKind::Oci(n) => plain(get::source("OCIRepository", "ocirepositories"), n),
            },
            What::Image { kind } => match kind {
                ImageKind::Policy(n) => plain(get::IMAGE_POLICIES, n),
                ImageKind::Repository(n) => plain(get::IMAGE_REPOSITORIES, n),
                ImageKind::Update(n) => plain(get::IMAGE_UPDATES, n),
            },
            What::Receiver(n) => plain(get::RECEIVERS, n),
            What::Alert(n) => plain(get::ALERTS, n),
            What::AlertProvider(n) => plain(get::ALERT_PROVIDERS, n),
        }
    }
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let (plan, name) = args.what.plan();
    let Some(name) = name else {
        bail!("{} name is required", plan.shown.kind);
    };
    let namespace = args.cluster.namespace.clone();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        reconcile(&client, plan, &namespace, &name).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// flux's `reconcileCommand` or `reconcileWithSourceCommand` for one object.
async fn reconcile(
    client: &kube::Client,
    plan: Plan,
    namespace: &str,
    name: &str,
) -> anyhow::Result<()> {
    let shown = plan.shown;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &shown.resource());
    let object = fetch(&api, shown, name).await?;
    if !plan.with_source_command && is_static(shown, &object) {
        eprintln!("✔ reconciliation not supported by the object");
        return Ok(());
    }
    if object["spec"]["suspend"] == true {
        bail!("resource is suspended");
    }
    if plan.reconcile_source {
        let source = source_of(shown, &object, namespace)?;
        Box::pin(reconcile(
            client,
            source.plan,
            &source.namespace,
            &source.name,
        ))
        .await?;
    }
    let handled_before = last_handled(&object);
    eprintln!(
        "► annotating {} {name} in {namespace} namespace",
        shown.kind
    );
    annotate(&api, name, plan.requests).await?;
    eprintln!("✔ {} annotated", shown.kind);
    eprintln!("◎ waiting for {} reconciliation", shown.kind);
    let object = wait_handled(&api, name, &handled_before).await?;
    let Some(ready) = get::ready(&object) else {
        bail!("status can't be determined");
    };
    if ready["status"] != "True" {
        let message = ready["message"].as_str().unwrap_or_default();
        if plan.with_source_command {
            bail!("{} reconciliation failed: {message}", shown.kind);
        }
        bail!("{} reconciliation failed: '{message}'", shown.kind);
    }
    eprintln!("✔ {}", super::suspend::success_message(shown, &object));
    Ok(())
}

/// The object as JSON, or the API server's NotFound in client-go's words.
async fn fetch(api: &Api<DynamicObject>, shown: Shown, name: &str) -> anyhow::Result<Value> {
    match api.get_opt(name).await? {
        Some(object) => Ok(serde_json::to_value(object)?),
        None => bail!("{}.{} \"{name}\" not found", shown.plural, shown.group),
    }
}

/// Whether flux calls the object static (no reconciler acts on requests): a HelmRepository of
/// type `oci`, and the status-less v1beta3 Alerts and Providers.
fn is_static(shown: Shown, object: &Value) -> bool {
    shown.always_ready.is_some()
        || (shown.kind == "HelmRepository" && object["spec"]["type"] == "oci")
}

fn last_handled(object: &Value) -> String {
    object["status"]["lastHandledReconcileAt"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sets the request annotations to now (RFC 3339 with nanoseconds, as flux writes them).
async fn annotate(api: &Api<DynamicObject>, name: &str, requests: Requests) -> anyhow::Result<()> {
    let requested = jiff::Timestamp::now().to_string();
    let mut annotations = Map::new();
    annotations.insert(RECONCILE_REQUEST_ANNOTATION.to_string(), json!(requested));
    if requests.force {
        annotations.insert(FORCE_REQUEST_ANNOTATION.to_string(), json!(requested));
    }
    if requests.reset {
        annotations.insert(RESET_REQUEST_ANNOTATION.to_string(), json!(requested));
    }
    let patch = json!({"metadata": {"annotations": annotations}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Polls until the controller has handled a new request and kstatus calls the object Current
/// (flux's `reconciliationHandled`); a Failed object (Stalled) ends the wait with its message.
async fn wait_handled(
    api: &Api<DynamicObject>,
    name: &str,
    handled_before: &str,
) -> anyhow::Result<Value> {
    loop {
        let object = serde_json::to_value(api.get(name).await?)?;
        if last_handled(&object) != handled_before && is_current(&object)? {
            return Ok(object);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// kstatus' generic verdict as flux's CLI computes it: not Current while being deleted, behind
/// its generation or `Reconciling`; Failed (an error with its message) when `Stalled`; Ready is
/// not looked at, so a failed reconcile is Current and reported from its Ready condition.
fn is_current(object: &Value) -> anyhow::Result<bool> {
    if !object["metadata"]["deletionTimestamp"].is_null() {
        return Ok(false);
    }
    let generation = object["metadata"]["generation"].as_i64();
    let observed = object["status"]["observedGeneration"].as_i64();
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Ok(false);
    }
    let conditions = object["status"]["conditions"].as_array();
    for condition in conditions.into_iter().flatten() {
        if condition["status"] != "True" {
            continue;
        }
        match condition["type"].as_str() {
            Some("Reconciling") => return Ok(false),
            Some("Stalled") => bail!("{}", condition["message"].as_str().unwrap_or_default()),
            _ => {}
        }
    }
    Ok(true)
}

/// The source to reconcile first.
#[derive(Debug)]
struct Source {
    plan: Plan,
    namespace: String,
    name: String,
}

/// flux's `getSource` of each kind with a source: a Kustomization's `sourceRef` (git, oci,
/// bucket), a HelmChart's `sourceRef` (helm, git, bucket; in the chart's namespace), a
/// HelmRelease's `chartRef` (a HelmChart with its source, or an OCIRepository) or the HelmChart
/// it templates (`<namespace>-<name>` in the sourceRef's namespace, its source reconciled too).
fn source_of(shown: Shown, object: &Value, namespace: &str) -> anyhow::Result<Source> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let plain = |shown: Shown| Plan {
        shown,
        with_source_command: false,
        reconcile_source: false,
        requests: Requests::default(),
    };
    let chart = Plan {
        shown: helm_charts(),
        with_source_command: true,
        reconcile_source: true,
        requests: Requests::default(),
    };
    let (reference, plan) = match shown.kind {
        "HelmRelease" if object["spec"]["chartRef"].is_object() => {
            let reference = &object["spec"]["chartRef"];
            let plan = match reference["kind"].as_str() {
                Some("HelmChart") => Some(chart),
                Some("OCIRepository") => {
                    Some(plain(get::source("OCIRepository", "ocirepositories")))
                }
                _ => None,
            };
            (reference, plan)
        }
        "HelmRelease" => {
            let source_namespace = text(&object["spec"]["chart"]["spec"]["sourceRef"]["namespace"]);
            let release_namespace = text(&object["metadata"]["namespace"]);
            let name = format!("{release_namespace}-{}", text(&object["metadata"]["name"]));
            return Ok(Source {
                plan: chart,
                namespace: if source_namespace.is_empty() {
                    release_namespace
                } else {
                    source_namespace
                },
                name,
            });
        }
        _ => {
            let reference = &object["spec"]["sourceRef"];
            let plan = match (shown.kind, reference["kind"].as_str()) {
                ("Kustomization", Some("OCIRepository")) => {
                    Some(plain(get::source("OCIRepository", "ocirepositories")))
                }
                (_, Some("GitRepository")) => {
                    Some(plain(get::source("GitRepository", "gitrepositories")))
                }
                (_, Some("Bucket")) => Some(plain(get::source("Bucket", "buckets"))),
                ("HelmChart", Some("HelmRepository")) => {
                    Some(plain(get::source("HelmRepository", "helmrepositories")))
                }
                _ => None,
            };
            (reference, plan)
        }
    };
    let Some(plan) = plan else {
        bail!(
            "cannot reconcile source of kind {}",
            text(&reference["kind"])
        );
    };
    // A HelmChart's source is in its own namespace; the others may name one.
    let named_namespace = text(&reference["namespace"]);
    let namespace = if shown.kind == "HelmChart" || named_namespace.is_empty() {
        namespace.to_string()
    } else {
        named_namespace
    };
    Ok(Source {
        plan,
        namespace,
        name: text(&reference["name"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_found_as_flux_finds_them() {
        let ks = json!({"metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "OCIRepository", "name": "apps", "namespace": "team-a"}}});
        let source = source_of(get::KUSTOMIZATIONS, &ks, "flux-system").ok();
        let source = source.as_ref();
        assert_eq!(source.map(|s| s.plan.shown.kind), Some("OCIRepository"));
        assert_eq!(source.map(|s| s.namespace.as_str()), Some("team-a"));

        let release = json!({"metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {"chart": {"spec": {"chart": "podinfo",
                "sourceRef": {"kind": "HelmRepository", "name": "podinfo", "namespace": "flux-system"}}}}});
        let source = source_of(get::HELM_RELEASES, &release, "apps").ok();
        let source = source.as_ref();
        assert_eq!(source.map(|s| s.name.as_str()), Some("apps-podinfo"));
        assert_eq!(source.map(|s| s.namespace.as_str()), Some("flux-system"));
        assert!(source.is_some_and(|s| s.plan.reconcile_source && s.plan.with_source_command));

        let chart = json!({"metadata": {"name": "apps-podinfo", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}});
        let source = source_of(helm_charts(), &chart, "flux-system").ok();
        assert_eq!(
            source.as_ref().map(|s| s.plan.shown.kind),
            Some("HelmRepository")
        );

        let external = json!({"spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "x"}}});
        let refused = source_of(get::KUSTOMIZATIONS, &external, "flux-system");
        assert_eq!(
            refused.err().map(|e| e.to_string()),
            Some("cannot reconcile source of kind ExternalArtifact".to_string())
        );
    }

    #[test]
    fn kstatus_ignores_ready_and_fails_on_stalled() {
        let failed = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "False", "message": "build failed"}]}});
        assert!(is_current(&failed).is_ok_and(|c| c));
        let behind = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}});
        assert!(is_current(&behind).is_ok_and(|c| !c));
        let stalled = json!({"status": {"conditions": [
            {"type": "Stalled", "status": "True", "message": "invalid spec"}]}});
        assert_eq!(
            is_current(&stalled).err().map(|e| e.to_string()),
            Some("invalid spec".to_string())
        );
    }

    #[test]
    fn oci_helm_repositories_are_static() {
        let source = get::source("HelmRepository", "helmrepositories");
        assert!(is_static(source, &json!({"spec": {"type": "oci"}})));
        assert!(!is_static(source, &json!({"spec": {}})));
        assert!(is_static(get::ALERTS, &json!({"spec": {}})));
        assert!(is_static(get::ALERT_PROVIDERS, &json!({"spec": {}})));
        assert!(!is_static(get::RECEIVERS, &json!({"spec": {}})));
    }
}
