//! `ferroflux check`: flux's `check` — the Kubernetes version, the Flux distribution on the
//! cluster, every controller Deployment (`app.kubernetes.io/part-of=flux`) until kstatus calls
//! it Current, and the stored version of every Flux CRD. Progress on standard error as flux
//! prints it; exit 1 when a check fails.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::cluster::{self, ClusterArgs};

/// The Kubernetes versions Flux 2.9 supports (a Masterminds constraint, as flux prints it).
const KUBERNETES_CONSTRAINT: &str = ">=1.33.0-0";
/// The lowest supported version, as (major, minor, patch).
const KUBERNETES_MINIMUM: (u64, u64, u64) = (1, 33, 0);
/// The label every Flux component and CRD carries (ferroflux's too), as flux selects them.
const PART_OF: &str = "app.kubernetes.io/part-of=flux";

/// Check requirements and installation.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only run pre-installation checks.
    #[arg(long)]
    pre: bool,
    /// How often the controllers' health is polled, a Go duration.
    #[arg(long, default_value = "5s")]
    poll_interval: String,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let poll = ferroflux_gocompat::duration::parse_std(&args.poll_interval).map_err(|e| {
        anyhow::anyhow!(
            "--poll-interval {:?} is not a duration: {e}",
            args.poll_interval
        )
    })?;
    let timeout = args.cluster.timeout()?;
    eprintln!("► checking prerequisites");
    cluster::block_on(timeout, async {
        let client = args
            .cluster
            .client()
            .await
            .map_err(|e| anyhow::anyhow!("Kubernetes client initialization failed: {e:#}"))?;
        let mut failed = !kubernetes_check(&client).await;
        if args.pre {
            if failed {
                return Ok(ExitCode::FAILURE);
            }
            eprintln!("✔ prerequisites checks passed");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("► checking version in cluster");
        failed |= !cluster_version_check(&client).await;
        eprintln!("► checking controllers");
        let deadline = Instant::now() + timeout;
        failed |= !components_check(&client, &args.cluster.namespace, poll, deadline).await;
        eprintln!("► checking crds");
        failed |= !crds_check(&client).await;
        if failed {
            eprintln!("✗ check failed");
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("✔ all checks passed");
        Ok(ExitCode::SUCCESS)
    })
}

/// The server's version against [`KUBERNETES_CONSTRAINT`].
async fn kubernetes_check(client: &kube::Client) -> bool {
    let info = match client.apiserver_version().await {
        Ok(info) => info,
        Err(err) => {
            eprintln!("✗ Kubernetes API call failed: {err}");
            return false;
        }
    };
    let Some((version, numbers)) = parse_version(&info.git_version) else {
        eprintln!("✗ Kubernetes version can't be determined");
        return false;
    };
    if numbers < KUBERNETES_MINIMUM {
        eprintln!(
            "✗ Kubernetes version {} does not match {KUBERNETES_CONSTRAINT}",
            info.git_version
        );
        return false;
    }
    eprintln!("✔ Kubernetes {version} {KUBERNETES_CONSTRAINT}");
    true
}

/// A Kubernetes `gitVersion` (`v1.33.1`, `v1.33.1+k3s1`) as Masterminds semver prints it
/// (`1.33.1+k3s1`), and its numbers.
fn parse_version(git_version: &str) -> Option<(String, (u64, u64, u64))> {
    let text = git_version.strip_prefix('v').unwrap_or(git_version);
    let end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(end);
    let mut numbers = core.split('.').map(|n| n.parse::<u64>());
    let major = numbers.next()?.ok()?;
    let minor = numbers.next().unwrap_or(Ok(0)).ok()?;
    let patch = numbers.next().unwrap_or(Ok(0)).ok()?;
    if numbers.next().is_some() {
        return None;
    }
    Some((
        format!("{major}.{minor}.{patch}{rest}"),
        (major, minor, patch),
    ))
}

fn crds(client: &kube::Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    Api::all_with(client.clone(), &resource)
}

/// flux's "version in cluster": the labels of the GitRepository CRD.
async fn cluster_version_check(client: &kube::Client) -> bool {
    let name = format!("gitrepositories.{}", ferroflux_api::source::GROUP);
    let crd = match crds(client).get(&name).await {
        Ok(crd) => crd,
        Err(kube::Error::Api(status)) => {
            eprintln!("✗ checking failed: {}", status.message);
            return false;
        }
        Err(err) => {
            eprintln!("✗ checking failed: {err}");
            return false;
        }
    };
    let labels = crd.metadata.labels.unwrap_or_default();
    let distribution = cluster::distribution(&labels);
    if !distribution.is_empty() {
        eprintln!("✔ distribution: {distribution}");
    }
    // As flux, only the last of the bootstrap labels decides.
    let bootstrapped =
        labels.contains_key(&format!("{}/namespace", ferroflux_api::kustomize::GROUP));
    eprintln!("✔ bootstrapped: {bootstrapped}");
    true
}

/// Every controller Deployment, waited for until Current, then its images.
async fn components_check(
    client: &kube::Client,
    namespace: &str,
    poll: Duration,
    deadline: Instant,
) -> bool {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    // flux passes over a failed list silently.
    let Ok(list) = api.list(&ListParams::default().labels(PART_OF)).await else {
        return true;
    };
    if list.items.is_empty() {
        eprintln!(
            "✗ no controllers found in the '{namespace}' namespace with the label selector '{PART_OF}'"
        );
        return false;
    }
    let mut ok = true;
    for deployment in list.items {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        match wait_current(&api, &name, poll, deadline).await {
            Some(true) => eprintln!("✔ {name}: deployment ready"),
            Some(false) => {
                ok = false;
                eprintln!("✗ {name}: deployment not ready");
            }
            None => {
                ok = false;
                eprintln!("✗ {name}: deployment not found");
            }
        }
        let containers = deployment.data["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for container in containers {
            eprintln!("► {}", container["image"].as_str().unwrap_or_default());
        }
    }
    ok
}

/// Polls a Deployment until kstatus calls it Current (Some(true)), the deadline passes
/// (Some(false)) or it is gone (None).
async fn wait_current(
    api: &Api<DynamicObject>,
    name: &str,
    poll: Duration,
    deadline: Instant,
) -> Option<bool> {
    loop {
        let object = match api.get_opt(name).await {
            Ok(Some(object)) => serde_json::to_value(object).unwrap_or(Value::Null),
            Ok(None) => return None,
            Err(_) => Value::Null,
        };
        if !object.is_null()
            && ferroflux_apply::health::assess(&object).status
                == ferroflux_apply::health::Status::Current
        {
            return Some(true);
        }
        if Instant::now() + poll > deadline {
            return Some(false);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Every Flux CRD with its newest stored version.
async fn crds_check(client: &kube::Client) -> bool {
    let Ok(list) = crds(client)
        .list(&ListParams::default().labels(PART_OF))
        .await
    else {
        return true;
    };
    if list.items.is_empty() {
        eprintln!("✗ no crds found with the label selector '{PART_OF}'");
        return false;
    }
    let mut ok = true;
    for crd in list.items {
        let name = crd.metadata.name.unwrap_or_default();
        match crd.data["status"]["storedVersions"]
            .as_array()
            .and_then(|v| v.last())
            .and_then(Value::as_str)
        {
            Some(version) => eprintln!("✔ {name}/{version}"),
            None => {
                ok = false;
                eprintln!("✗ no stored versions for {name}");
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_versions_print_as_masterminds_semver() {
        assert_eq!(
            parse_version("v1.33.1"),
            Some(("1.33.1".to_string(), (1, 33, 1)))
        );
        assert_eq!(
            parse_version("v1.34.0+k3s1"),
            Some(("1.34.0+k3s1".to_string(), (1, 34, 0)))
        );
        assert_eq!(
            parse_version("v1.32"),
            Some(("1.32.0".to_string(), (1, 32, 0)))
        );
        assert!(parse_version("vx.y").is_none());
        assert!(parse_version("v1.32.0").is_some_and(|(_, n)| n < KUBERNETES_MINIMUM));
    }
}
