//! `ferroflux trace`: which Flux object manages an in-cluster object, as `flux trace` prints it:
//! the object, the Kustomization or HelmRelease that applied it (found by kustomize-controller's
//! and helm-controller's `<group>/name` labels, on the object or an owner up its chain), that
//! object's source, revisions and the time and message of their last reconciliation.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

use super::cluster::{self, ClusterArgs};
use super::get;

/// How many owners up the chain trace follows (flux follows the whole chain; real chains are
/// Pod, ReplicaSet, Deployment).
const MAX_OWNER_DEPTH: usize = 8;

/// Trace in-cluster objects throughout the GitOps delivery pipeline.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// `<resource> <name> [<name> ...]` or `<resource>/<name> ...`.
    args: Vec<String>,
    /// The Kubernetes object kind, e.g. Deployment.
    #[arg(long)]
    kind: Option<String>,
    /// The Kubernetes object API version, e.g. 'apps/v1'.
    #[arg(long)]
    api_version: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let namespace = args.cluster.namespace.clone();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let objects = if args.kind.is_some() || args.api_version.is_some() {
            vec![static_object(&client, &args, &namespace).await?]
        } else {
            dynamic_objects(&client, &args.args, &namespace).await?
        };
        let count = objects.len();
        for (index, (resource, object)) in objects.into_iter().enumerate() {
            match trace(&client, &resource, &object).await {
                Ok(report) => out!("{report}")?,
                // flux prints this without a line end and goes on.
                Err(err) => eprint!(
                    "failed to trace {}/{} in namespace {}: {err:#}",
                    resource.kind,
                    text(&object["metadata"]["name"]),
                    text(&object["metadata"]["namespace"])
                ),
            }
            if index + 1 < count {
                outln!("---")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// `--kind` and `--api-version`: the object named by the first argument.
async fn static_object(
    client: &kube::Client,
    args: &TraceArgs,
    namespace: &str,
) -> anyhow::Result<(ApiResource, Value)> {
    let Some(name) = args.args.first() else {
        bail!("object name is required");
    };
    let Some(kind) = &args.kind else {
        bail!("object kind is required (--kind)");
    };
    let Some(api_version) = &args.api_version else {
        bail!("object apiVersion is required (--api-version)");
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let discovery = Discovery::new(client.clone()).run().await?;
    let found = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(resource, _)| {
            resource.group == group
                && resource.version == version
                && resource.kind.eq_ignore_ascii_case(kind)
        });
    let Some((resource, capabilities)) = found else {
        bail!("failed to find object: no matches for kind \"{kind}\" in version \"{api_version}\"");
    };
    let object = get_object(client, &resource, capabilities.scope, namespace, name)
        .await
        .context("failed to find object")?;
    Ok((resource, object))
}

/// `<resource> <name> ...` or `<resource>/<name> ...`, resources as kubectl names them (kind,
/// plural, singular or a usual short name).
async fn dynamic_objects(
    client: &kube::Client,
    args: &[String],
    namespace: &str,
) -> anyhow::Result<Vec<(ApiResource, Value)>> {
    let usage = "either `<resource>/<name>` or `<resource> <name>` is required as an argument";
    let pairs: Vec<(String, String)> = if args.iter().all(|a| a.contains('/')) && !args.is_empty() {
        args.iter()
            .filter_map(|a| a.split_once('/'))
            .map(|(r, n)| (r.to_string(), n.to_string()))
            .collect()
    } else if args.len() >= 2 && !args.iter().any(|a| a.contains('/')) {
        args[1..]
            .iter()
            .map(|n| (args[0].clone(), n.clone()))
            .collect()
    } else {
        bail!("{usage}");
    };
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut objects = Vec::new();
    for (resource, name) in pairs {
        let Some((api, scope)) = resolve(&discovery, &resource) else {
            bail!("the server doesn't have a resource type \"{resource}\"");
        };
        // flux words a failed lookup with this prefix.
        let object = get_object(client, &api, scope, namespace, &name)
            .await
            .map_err(|e| anyhow::anyhow!("x: {e:#}"))?;
        objects.push((api, object));
    }
    Ok(objects)
}

/// The API resource a kubectl-style resource name means.
fn resolve(discovery: &Discovery, name: &str) -> Option<(ApiResource, Scope)> {
    let name = name.to_ascii_lowercase();
    let (name, group) = match name.split_once('.') {
        Some((name, group)) => (name.to_string(), Some(group.to_string())),
        None => (name, None),
    };
    let short = match name.as_str() {
        "cm" => "configmaps",
        "svc" => "services",
        "deploy" => "deployments",
        "sa" => "serviceaccounts",
        "ns" => "namespaces",
        "po" => "pods",
        "ds" => "daemonsets",
        "sts" => "statefulsets",
        "rs" => "replicasets",
        "ing" => "ingresses",
        "pvc" => "persistentvolumeclaims",
        "hr" => "helmreleases",
        "ks" => "kustomizations",
        other => other,
    };
    discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(resource, _)| {
            let kind = resource.kind.to_ascii_lowercase();
            (resource.plural == short || kind == short || format!("{kind}s") == short)
                && group.as_deref().is_none_or(|g| resource.group == g)
        })
        .map(|(resource, capabilities)| (resource, capabilities.scope))
}

async fn get_object(
    client: &kube::Client,
    resource: &ApiResource,
    scope: Scope,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let api: Api<DynamicObject> = match scope {
        Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, resource),
        Scope::Cluster => Api::all_with(client.clone(), resource),
    };
    match api.get_opt(name).await? {
        Some(object) => Ok(serde_json::to_value(object)?),
        None if resource.group.is_empty() => bail!("{} \"{name}\" not found", resource.plural),
        None => bail!(
            "{}.{} \"{name}\" not found",
            resource.plural,
            resource.group
        ),
    }
}

/// The namespace and name in the `<group>/name` and `<group>/namespace` labels.
fn managed_by(object: &Value, group: &str) -> Option<(String, String)> {
    let labels = &object["metadata"]["labels"];
    let name = labels[format!("{group}/name")].as_str()?;
    let namespace = text(&labels[format!("{group}/namespace")]);
    Some((namespace, name.to_string()))
}

/// flux's `isOwnerManagedByFlux`: the labels of the object, else of its first owners up the
/// chain (in the object's namespace).
async fn owner_managed_by(
    client: &kube::Client,
    object: &Value,
    group: &str,
) -> Option<(String, String)> {
    let mut current = object.clone();
    for _ in 0..MAX_OWNER_DEPTH {
        if let Some(found) = managed_by(&current, group) {
            return Some(found);
        }
        let namespace = text(&object["metadata"]["namespace"]);
        let owners = current["metadata"]["ownerReferences"].as_array()?.clone();
        let owner = owners.first()?;
        let api_version = text(&owner["apiVersion"]);
        let (owner_group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let kind = text(&owner["kind"]);
        let discovery = Discovery::new(client.clone()).run().await.ok()?;
        let (resource, capabilities) = discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(r, _)| r.group == owner_group && r.kind == kind)?;
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(owner_group, version, &kind),
            &resource.plural,
        );
        current = get_object(
            client,
            &resource,
            capabilities.scope,
            &namespace,
            &text(&owner["name"]),
        )
        .await
        .ok()?;
    }
    None
}

async fn trace(
    client: &kube::Client,
    resource: &ApiResource,
    object: &Value,
) -> anyhow::Result<String> {
    let kustomize = ferroflux_api::kustomize::GROUP;
    if let Some((namespace, name)) = owner_managed_by(client, object, kustomize).await {
        return trace_kustomization(client, resource, object, &namespace, &name).await;
    }
    let helm = ferroflux_api::helm::GROUP;
    if let Some((namespace, name)) = owner_managed_by(client, object, helm).await {
        return trace_helm_release(client, resource, object, &namespace, &name).await;
    }
    bail!("object not managed by Flux")
}

/// An object of a Flux kind, or flux's "failed to find KIND" error.
async fn flux_object(
    client: &kube::Client,
    shown: get::Shown,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &shown.resource());
    let found = match api.get_opt(name).await {
        Ok(Some(object)) => return Ok(serde_json::to_value(object)?),
        Ok(None) => format!("{}.{} \"{name}\" not found", shown.plural, shown.group),
        Err(err) => err.to_string(),
    };
    let kind = if shown.kind == "Kustomization" {
        "kustomization"
    } else {
        shown.kind
    };
    bail!("failed to find {kind}: {found}")
}

/// A condition's `lastTransitionTime` as Go prints a `metav1.Time` in a template (its
/// `String()`, in the local zone).
fn go_time(value: &Value) -> String {
    let stamp = text(value);
    match stamp.parse::<jiff::Timestamp>() {
        Ok(stamp) => stamp
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %z %Z")
            .to_string(),
        Err(_) => stamp,
    }
}

/// The header of every report: the traced object.
fn object_lines(resource: &ApiResource, object: &Value, width: usize) -> String {
    let mut out = String::from("\n");
    let pad = |label: &str| format!("{label:<width$}");
    let _ = write!(
        out,
        "{}{}/{}",
        pad("Object:"),
        resource.kind,
        text(&object["metadata"]["name"])
    );
    let namespace = text(&object["metadata"]["namespace"]);
    if !namespace.is_empty() {
        let _ = write!(out, "\n{}{namespace}", pad("Namespace:"));
    }
    let _ = write!(out, "\n{}Managed by Flux", pad("Status:"));
    out
}

/// The Status and Message lines of a Ready condition; `failed_words` says "Last reconciliation
/// failed at" for a False condition, as flux does for sources.
fn status_lines(out: &mut String, object: &Value, width: usize, failed_words: bool) {
    let pad = |label: &str| format!("{label:<width$}");
    match get::ready(object) {
        Some(ready) => {
            let when = go_time(&ready["lastTransitionTime"]);
            let words = if failed_words && ready["status"] == "False" {
                "Last reconciliation failed at"
            } else {
                "Last reconciled at"
            };
            let _ = write!(out, "\n{}{words} {when}", pad("Status:"));
            let _ = write!(out, "\n{}{}", pad("Message:"), text(&ready["message"]));
        }
        None => {
            let _ = write!(out, "\n{}Unknown", pad("Status:"));
        }
    }
}

/// A source's section: name, namespace, URL, reference, revision, status.
fn source_section(out: &mut String, kind: &str, source: &Value, width: usize) {
    section_head(out, kind, source, width);
    line(out, width, "URL:", text(&source["spec"]["url"]));
    let reference = &source["spec"]["ref"];
    let nonempty = |key: &str| Some(text(&reference[key])).filter(|v| !v.is_empty());
    if reference.is_object() {
        let reference_line = match kind {
            "GitRepository" => nonempty("tag")
                .or_else(|| nonempty("semver"))
                .map(|t| ("Tag:", t))
                .or_else(|| nonempty("branch").map(|b| ("Branch:", b))),
            _ => nonempty("tag")
                .or_else(|| nonempty("semver"))
                .map(|t| ("Tag:", t))
                .or_else(|| nonempty("digest").map(|d| ("Digest:", d))),
        };
        if let Some((label, value)) = reference_line {
            line(out, width, label, value);
        }
    }
    let artifact = &source["status"]["artifact"];
    if artifact.is_object() {
        line(out, width, "Revision:", text(&artifact["revision"]));
        if kind == "OCIRepository" && artifact["metadata"].is_object() {
            // flux ranges over its two annotations in key order; one missing leaves its line
            // empty.
            for (label, key) in [
                ("Origin Revision: ", "org.opencontainers.image.revision"),
                ("Origin Source:   ", "org.opencontainers.image.source"),
            ] {
                out.push('\n');
                if let Some(value) = artifact["metadata"][key].as_str() {
                    let _ = write!(out, "{label}{value}");
                }
            }
        }
    }
    status_lines(out, source, width, true);
}

/// One `Label:  value` line, the label padded to `width` columns.
fn line(out: &mut String, width: usize, label: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "\n{label:<width$}{value}");
}

/// The head of an object's section: a `---` line, its kind and name, and its namespace.
fn section_head(out: &mut String, kind: &str, object: &Value, width: usize) {
    let metadata = &object["metadata"];
    out.push_str("\n---");
    line(out, width, &format!("{kind}:"), text(&metadata["name"]));
    line(out, width, "Namespace:", text(&metadata["namespace"]));
}

/// The head of a Kustomization's or HelmRelease's section, with its target namespace when set.
fn applier_head(out: &mut String, kind: &str, object: &Value, width: usize) {
    section_head(out, kind, object, width);
    let target = text(&object["spec"]["targetNamespace"]);
    if !target.is_empty() {
        line(out, width, "Target:", target);
    }
}

/// The Revision line of an object's artifact, when it has one.
fn artifact_revision(out: &mut String, object: &Value, width: usize) {
    if object["status"]["artifact"].is_object() {
        let revision = text(&object["status"]["artifact"]["revision"]);
        line(out, width, "Revision:", revision);
    }
}

/// The source `reference` names (a sourceRef or chartRef), read when `shown` is a kind trace
/// follows; its namespace is the referrer's (`namespace`) unless the reference names one.
async fn referenced_source(
    client: &kube::Client,
    shown: Option<get::Shown>,
    reference: &Value,
    namespace: String,
) -> anyhow::Result<Option<Value>> {
    let Some(shown) = shown else {
        return Ok(None);
    };
    let namespace = Some(text(&reference["namespace"]))
        .filter(|n| !n.is_empty())
        .unwrap_or(namespace);
    let name = text(&reference["name"]);
    Ok(Some(flux_object(client, shown, &namespace, &name).await?))
}

async fn trace_kustomization(
    client: &kube::Client,
    resource: &ApiResource,
    object: &Value,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let ks = flux_object(client, get::KUSTOMIZATIONS, namespace, name).await?;
    let reference = &ks["spec"]["sourceRef"];
    let kind = text(&reference["kind"]);
    let shown = match kind.as_str() {
        "GitRepository" => Some(get::source("GitRepository", "gitrepositories")),
        "OCIRepository" => Some(get::source("OCIRepository", "ocirepositories")),
        _ => None,
    };
    let ks_namespace = text(&ks["metadata"]["namespace"]);
    let source = referenced_source(client, shown, reference, ks_namespace).await?;
    let width = 17;
    let mut out = object_lines(resource, object, width);
    applier_head(&mut out, "Kustomization", &ks, width);
    line(&mut out, width, "Path:", text(&ks["spec"]["path"]));
    let revision = text(&ks["status"]["lastAppliedRevision"]);
    line(&mut out, width, "Revision:", revision);
    status_lines(&mut out, &ks, width, false);
    if let Some(source) = source {
        source_section(&mut out, &kind, &source, width);
    }
    out.push('\n');
    Ok(out)
}

async fn trace_helm_release(
    client: &kube::Client,
    resource: &ApiResource,
    object: &Value,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let release = flux_object(client, get::HELM_RELEASES, namespace, name).await?;
    let release_namespace = text(&release["metadata"]["namespace"]);
    let chart_name = text(&release["status"]["helmChart"]);
    let chart = match chart_name.split_once('/') {
        Some((ns, name)) => {
            Some(flux_object(client, get::source("HelmChart", "helmcharts"), ns, name).await?)
        }
        None => None,
    };
    let (source_kind, reference) = if release["spec"]["chart"].is_object() {
        let reference = &release["spec"]["chart"]["spec"]["sourceRef"];
        (text(&reference["kind"]), reference)
    } else {
        let reference = &release["spec"]["chartRef"];
        (text(&reference["kind"]), reference)
    };
    let source_shown = match source_kind.as_str() {
        "GitRepository" if release["spec"]["chart"].is_object() => {
            Some(get::source("GitRepository", "gitrepositories"))
        }
        "HelmRepository" if release["spec"]["chart"].is_object() => {
            Some(get::source("HelmRepository", "helmrepositories"))
        }
        "OCIRepository" if !release["spec"]["chart"].is_object() => {
            Some(get::source("OCIRepository", "ocirepositories"))
        }
        _ => None,
    };
    let source = referenced_source(client, source_shown, reference, release_namespace).await?;
    let width = 16;
    let mut out = object_lines(resource, object, width);
    applier_head(&mut out, "HelmRelease", &release, width);
    let revision = text(&release["status"]["lastAttemptedRevision"]);
    line(&mut out, width, "Revision:", revision);
    status_lines(&mut out, &release, width, false);
    if let Some(chart) = &chart {
        section_head(&mut out, "HelmChart", chart, width);
        line(&mut out, width, "Chart:", text(&chart["spec"]["chart"]));
        line(&mut out, width, "Version:", text(&chart["spec"]["version"]));
        artifact_revision(&mut out, chart, width);
        status_lines(&mut out, chart, width, false);
    }
    if let (Some(source), Some(shown)) = (&source, source_shown) {
        match shown.kind {
            "HelmRepository" => helm_repository_section(&mut out, source, width),
            // flux aligns a HelmRelease's GitRepository section on 15 columns.
            "GitRepository" => source_section(&mut out, shown.kind, source, 15),
            _ => source_section(&mut out, shown.kind, source, 17),
        }
    }
    out.push('\n');
    Ok(out)
}

fn helm_repository_section(out: &mut String, source: &Value, width: usize) {
    section_head(out, "HelmRepository", source, width);
    line(out, width, "URL:", text(&source["spec"]["url"]));
    artifact_revision(out, source, width);
    status_lines(out, source, width, false);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kustomization_labels_name_the_manager() {
        let object = json!({"metadata": {"labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            managed_by(&object, "kustomize.toolkit.fluxcd.io"),
            Some(("flux-system".to_string(), "apps".to_string()))
        );
        assert_eq!(managed_by(&object, "helm.toolkit.fluxcd.io"), None);
    }

    #[test]
    fn git_sources_are_reported_like_flux() {
        let source = json!({"metadata": {"name": "flux-system", "namespace": "flux-system"},
            "spec": {"url": "http://127.0.0.1/fleet.git", "ref": {"branch": "main"}},
            "status": {"artifact": {"revision": "main@sha1:0123"},
                "conditions": [{"type": "Ready", "status": "False", "message": "boom",
                    "lastTransitionTime": "2026-12-07T19:14:36Z"}]}});
        let mut out = String::new();
        source_section(&mut out, "GitRepository", &source, 17);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "---");
        assert_eq!(lines[2], "GitRepository:   flux-system");
        assert_eq!(lines[4], "URL:             http://127.0.0.1/fleet.git");
        assert_eq!(lines[5], "Branch:          main");
        assert_eq!(lines[6], "Revision:        main@sha1:0123");
        assert!(
            lines[7].starts_with("Status:          Last reconciliation failed at 2026-12-0"),
            "{out}"
        );
        assert_eq!(lines[8], "Message:         boom");
    }
}
