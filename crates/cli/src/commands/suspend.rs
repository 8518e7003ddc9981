//! `ferroflux suspend` and `ferroflux resume`: set or clear `spec.suspend` of Flux objects by
//! name or `--all` in a namespace, with flux's progress lines; `resume` of one object (or with
//! `--wait`) then waits until the object is Ready at its generation, as flux does.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::cluster::{self, ClusterArgs};
use super::get::{self, Shown};

/// How often resume polls the object, as flux's `--poll-interval` default.
const POLL: Duration = Duration::from_secs(2);

/// The names of the objects, or none with `--all`.
#[derive(Debug, Clone, Args)]
pub struct Names {
    /// The objects' names.
    names: Vec<String>,
}

/// A kind as the suspend, resume, delete and export commands name it.
#[derive(Debug, Clone, Subcommand)]
pub enum Target {
    /// Kustomizations.
    #[command(visible_alias = "ks")]
    Kustomization(Names),
    /// HelmReleases.
    #[command(visible_alias = "hr")]
    Helmrelease(Names),
    /// Sources.
    Source {
        #[command(subcommand)]
        kind: SourceTarget,
    },
    /// Image automation objects.
    Image {
        #[command(subcommand)]
        kind: ImageTarget,
    },
    /// Alerts.
    Alert(Names),
    /// Alert providers.
    AlertProvider(Names),
    /// Receivers.
    Receiver(Names),
}

/// A source kind.
#[derive(Debug, Clone, Subcommand)]
pub enum SourceTarget {
    /// GitRepositories.
    Git(Names),
    /// OCIRepositories.
    Oci(Names),
    /// HelmRepositories.
    Helm(Names),
    /// HelmCharts.
    Chart(Names),
    /// Buckets.
    Bucket(Names),
}

/// An image kind.
#[derive(Debug, Clone, Subcommand)]
pub enum ImageTarget {
    /// ImageRepositories.
    Repository(Names),
    /// ImagePolicies.
    Policy(Names),
    /// ImageUpdateAutomations.
    Update(Names),
}

impl Target {
    /// The kind, flux's human name for it, and the names given.
    pub fn resolve(&self) -> (Shown, &'static str, &[String]) {
        match self {
            Target::Kustomization(n) => (get::KUSTOMIZATIONS, "kustomization", &n.names),
            Target::Helmrelease(n) => (get::HELM_RELEASES, "helmrelease", &n.names),
            Target::Alert(n) => (get::ALERTS, "alert", &n.names),
            Target::AlertProvider(n) => (get::ALERT_PROVIDERS, "alert provider", &n.names),
            Target::Receiver(n) => (get::RECEIVERS, "receiver", &n.names),
            Target::Source { kind } => match kind {
                SourceTarget::Git(n) => (
                    get::source("GitRepository", "gitrepositories"),
                    "source git",
                    &n.names,
                ),
                SourceTarget::Oci(n) => (
                    get::source("OCIRepository", "ocirepositories"),
                    "source oci",
                    &n.names,
                ),
                SourceTarget::Helm(n) => (
                    get::source("HelmRepository", "helmrepositories"),
                    "source helm",
                    &n.names,
                ),
                SourceTarget::Chart(n) => (
                    get::source("HelmChart", "helmcharts"),
                    "source chart",
                    &n.names,
                ),
                SourceTarget::Bucket(n) => {
                    (get::source("Bucket", "buckets"), "source bucket", &n.names)
                }
            },
            Target::Image { kind } => match kind {
                ImageTarget::Repository(n) => {
                    (get::IMAGE_REPOSITORIES, "image repository", &n.names)
                }
                ImageTarget::Policy(n) => (get::IMAGE_POLICIES, "image policy", &n.names),
                ImageTarget::Update(n) => (get::IMAGE_UPDATES, "image update automation", &n.names),
            },
        }
    }
}

/// Suspend the reconciliation of Flux objects.
#[derive(Debug, Args)]
pub struct SuspendArgs {
    #[command(subcommand)]
    target: Target,
    /// Suspend all objects of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Resume the reconciliation of suspended Flux objects.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(subcommand)]
    target: Target,
    /// Resume all objects of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
    /// Wait for each object to reconcile (the default for exactly one name).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    wait: Option<bool>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The objects named (deduplicated, in order) or, with none, all in the namespace.
async fn select(
    api: &Api<DynamicObject>,
    names: &[String],
) -> anyhow::Result<Vec<(Option<String>, Vec<DynamicObject>)>> {
    if names.is_empty() {
        return Ok(vec![(None, api.list(&ListParams::default()).await?.items)]);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut selected = Vec::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let params = ListParams::default().fields(&format!("metadata.name={name}"));
        selected.push((Some(name.clone()), api.list(&params).await?.items));
    }
    Ok(selected)
}

pub fn suspend(args: SuspendArgs) -> anyhow::Result<ExitCode> {
    let (shown, human, names) = args.target.resolve();
    if names.is_empty() && !args.all {
        bail!("{human} name is required");
    }
    let namespace = args.cluster.namespace.as_str();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &shown.resource());
        for (name, objects) in select(&api, names).await? {
            if objects.is_empty() {
                match name {
                    Some(name) => {
                        eprintln!("✗ {} {name} not found in {namespace} namespace", shown.kind);
                        continue;
                    }
                    None => bail!("no objects found"),
                }
            }
            for object in objects {
                let name = object.metadata.name.clone().unwrap_or_default();
                eprintln!("► suspending {human} {name} in {namespace} namespace");
                let patch = json!({"spec": {"suspend": true}});
                let patched = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                if let Err(err) = patched {
                    eprintln!(
                        "✗ failed suspending {} {name} in {namespace} namespace: {err}",
                        shown.kind
                    );
                    break;
                }
                eprintln!("✔ {human} suspended");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let (shown, human, names) = args.target.resolve();
    if names.is_empty() && !args.all {
        bail!("{human} name is required");
    }
    let wait = args.wait.unwrap_or(names.len() == 1);
    let namespace = args.cluster.namespace.as_str();
    let timeout = args.cluster.timeout()?;
    cluster::block_on(timeout, async {
        let client = args.cluster.client().await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &shown.resource());
        let mut resumed = Vec::new();
        for (name, objects) in select(&api, names).await? {
            if objects.is_empty() {
                match name {
                    // flux names the first argument, whichever was missing.
                    Some(_) => eprintln!(
                        "✗ {} object '{}' not found in {namespace} namespace",
                        shown.kind,
                        names.first().map_or("", String::as_str)
                    ),
                    None => eprintln!("✗ no {} objects found in {namespace} namespace", shown.kind),
                }
                continue;
            }
            for object in objects {
                let name = object.metadata.name.clone().unwrap_or_default();
                eprintln!("► resuming {human} {name} in {namespace} namespace");
                let patch = json!({"spec": {"suspend": false}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                eprintln!("✔ {human} resumed");
                resumed.push(name);
            }
        }
        if !wait {
            return Ok(ExitCode::SUCCESS);
        }
        let mut results = Vec::new();
        for name in resumed {
            eprintln!("◎ waiting for {} reconciliation", shown.kind);
            results.push((name.clone(), wait_ready(&api, shown, &name).await));
        }
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let mut failed = 0;
        for (name, result) in results {
            match result {
                Ok(object) => {
                    eprintln!("✔ {} {name} reconciliation completed", shown.kind);
                    eprintln!("✔ {}", success_message(shown, &object));
                }
                Err(err) => {
                    failed += 1;
                    eprintln!("✗ {} {name} reconciliation failed: {err:#}", shown.kind);
                }
            }
        }
        if failed > 0 {
            bail!("reconciliation failed for {failed} {}(s)", shown.kind);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Polls until flux's `isObjectReady` holds: a Ready condition for the current generation and
/// kstatus Current (an object without status, Alerts and Providers, only has to exist); an
/// object kstatus calls Failed ends the wait with its message.
async fn wait_ready(api: &Api<DynamicObject>, shown: Shown, name: &str) -> anyhow::Result<Value> {
    loop {
        let object = serde_json::to_value(api.get(name).await?)?;
        if shown.always_ready.is_some() || ready_now(&object)? {
            return Ok(object);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One poll of flux's readiness for an object with status.
fn ready_now(object: &Value) -> anyhow::Result<bool> {
    let observed = object["status"]["observedGeneration"].as_i64().unwrap_or(0);
    if observed < 1 {
        return Ok(false);
    }
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
    let Some(ready) = get::ready(object) else {
        return Ok(false);
    };
    match ready["observedGeneration"].as_i64().unwrap_or(0) {
        0 if observed != generation => return Ok(false),
        0 => {}
        at if at != generation => return Ok(false),
        _ => {}
    }
    use ferroflux_apply::health::{Status, assess};
    let health = assess(object);
    match health.status {
        Status::Current => Ok(true),
        Status::InProgress => Ok(false),
        _ => bail!("{}", health.message),
    }
}

/// What flux prints once a resumed or reconciled object is Ready.
pub(crate) fn success_message(shown: Shown, object: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match shown.kind {
        "Kustomization" | "HelmRelease" => {
            format!("applied revision {}", shown.revision_of(object))
        }
        "Alert" | "Provider" | "Receiver" => format!("{} reconciliation completed", shown.kind),
        "ImageRepository" => format!(
            "scan fetched {} tags",
            object["status"]["lastScanResult"]["tagCount"]
                .as_i64()
                .unwrap_or(0)
        ),
        "ImagePolicy" => {
            // image-reflector's `ImageRef.String()`: name:tag, then @digest when known.
            let latest = &object["status"]["latestRef"];
            let mut reference = format!("{}:{}", text(&latest["name"]), text(&latest["tag"]));
            if let Some(digest) = latest["digest"].as_str().filter(|d| !d.is_empty()) {
                reference.push('@');
                reference.push_str(digest);
            }
            format!("selected ref {reference}")
        }
        "ImageUpdateAutomation" => get::ready(object)
            .map(|c| text(&c["message"]))
            .unwrap_or_default(),
        _ => format!("fetched revision {}", shown.revision_of(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_flux_generation_rules() {
        let ready = |observed: i64, generation: i64| {
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"generation": generation},
                "status": {"observedGeneration": observed,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]}})
        };
        assert!(ready_now(&ready(2, 2)).is_ok_and(|r| r));
        assert!(ready_now(&ready(1, 2)).is_ok_and(|r| !r));
        assert!(ready_now(&json!({"status": {}})).is_ok_and(|r| !r));
        let object = ready(3, 3);
        assert_eq!(
            success_message(get::KUSTOMIZATIONS, &object),
            "applied revision "
        );
    }
}
