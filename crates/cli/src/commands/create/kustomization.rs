//! `ferroflux create kustomization`: the Kustomization (kustomize.toolkit.fluxcd.io/v1) that
//! `flux create kustomization` generates, checked in flux's order and words.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use super::CreateArgs;
use super::object::{self, Generated};

/// Create or update a Kustomization.
#[derive(Debug, Args)]
pub struct KustomizationArgs {
    /// The Kustomization's name.
    name: Option<String>,
    /// Source that contains the Kubernetes manifests (`[<kind>/]<name>[.<namespace>]`, kind
    /// one of OCIRepository, GitRepository, Bucket; GitRepository when left out).
    #[arg(long)]
    source: Option<String>,
    /// Path to the directory containing a kustomization.yaml file.
    #[arg(long, default_value = "./")]
    path: String,
    /// Enable garbage collection.
    #[arg(long)]
    prune: bool,
    /// Enable health checking of all the applied resources.
    #[arg(long)]
    wait: bool,
    /// Workload to be included in the health assessment (`<kind>/<name>.<namespace>`).
    #[arg(long = "health-check", value_delimiter = ',')]
    health_checks: Vec<String>,
    /// Timeout of health checking operations.
    #[arg(long, default_value = "2m0s")]
    health_check_timeout: String,
    /// Kustomizations that must be ready first (`[<namespace>/]<name>`).
    #[arg(long = "depends-on", value_delimiter = ',')]
    depends_on: Vec<String>,
    /// The service account to impersonate when reconciling.
    #[arg(long, default_value = "")]
    service_account: String,
    /// Decryption provider (sops).
    #[arg(long)]
    decryption_provider: Option<String>,
    /// The Secret that holds the keys for sops decryption.
    #[arg(long, default_value = "")]
    decryption_secret: String,
    /// Overrides the namespace of all objects reconciled by this Kustomization.
    #[arg(long, default_value = "")]
    target_namespace: String,
    /// The Secret with the kubeconfig of a remote cluster.
    #[arg(long, default_value = "")]
    kubeconfig_secret_ref: String,
    /// The interval at which to retry a failed reconciliation (`0s` leaves it out).
    #[arg(long, default_value = "0s")]
    retry_interval: String,
}

/// The source kinds flux's `--source` flag accepts, in its order.
const SOURCE_KINDS: &[&str] = &["OCIRepository", "GitRepository", "Bucket"];

/// The workload kinds a health check may name.
const HEALTH_CHECK_KINDS: &[&str] = &["Deployment", "DaemonSet", "StatefulSet", "HelmRelease"];

const KUSTOMIZATION: Generated = Generated {
    group: "kustomize.toolkit.fluxcd.io",
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
};

pub fn run(args: &KustomizationArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    object::finish(KUSTOMIZATION, &kustomization(args, create)?, create)
}

/// `--source` as flux's flag reads it: the kind matched case-insensitively to its spelling.
fn source(value: &str) -> anyhow::Result<(&'static str, &str, &str)> {
    let fail =
        |why: String| anyhow::anyhow!("invalid argument {value:?} for \"--source\" flag: {why}");
    if value.trim().is_empty() {
        return Err(fail(format!(
            "no Kustomization source given, please specify source that contains the Kubernetes manifests in the format '[<kind>/]<name>.<namespace>', where kind must be one of: ({}), if kind is not specified it defaults to GitRepository",
            SOURCE_KINDS.join(", ")
        )));
    }
    let (mut kind, name, namespace) = object::kind_name_namespace(value);
    if name.is_empty() {
        return Err(fail(format!("no name given for source of kind '{kind}'")));
    }
    if kind.is_empty() {
        if SOURCE_KINDS.contains(&name) {
            return Err(fail(format!("no kind specified for source '{name}'")));
        }
        kind = "GitRepository";
    }
    let Some(known) = SOURCE_KINDS.iter().find(|k| k.eq_ignore_ascii_case(kind)) else {
        return Err(fail(format!(
            "source kind '{kind}' is not supported, must be one of: {}",
            SOURCE_KINDS.join(", ")
        )));
    };
    Ok((known, name, namespace))
}

/// flux's `SafeRelativePath`: the path cleaned lexically inside `./` (`..` stops at the
/// root), written with a leading `./`.
fn safe_relative_path(value: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in value.trim().split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("./{}", parts.join("/"))
}

/// `healthChecks`: `<kind>/<name>.<namespace>` workloads, refused in flux's words.
fn health_checks(values: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut checks = Vec::new();
    for value in values {
        let kind_object: Vec<&str> = value.split('/').collect();
        let [kind, object] = kind_object[..] else {
            bail!(
                "invalid health check '{value}' must be in the format 'kind/name.namespace' [{}]",
                kind_object.join(" ")
            );
        };
        if !HEALTH_CHECK_KINDS.contains(&kind) {
            bail!(
                "invalid health check kind '{kind}' can be HelmRelease, Deployment, DaemonSet or StatefulSet"
            );
        }
        let name_namespace: Vec<&str> = object.split('.').collect();
        let [name, namespace] = name_namespace[..] else {
            bail!("invalid health check '{value}' must be in the format 'kind/name.namespace'");
        };
        let mut check = json!({"kind": kind, "name": name, "namespace": namespace});
        if kind == "HelmRelease" {
            check["apiVersion"] = json!("helm.toolkit.fluxcd.io/v2");
        }
        checks.push(check);
    }
    Ok(checks)
}

fn kustomization(args: &KustomizationArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    // The flags cobra checks while parsing them, before the NAME.
    let source = args.source.as_deref().map(source).transpose()?;
    if let Some(provider) = args.decryption_provider.as_deref() {
        if provider.trim().is_empty() {
            bail!(
                "invalid argument {provider:?} for \"--decryption-provider\" flag: no decryption provider given, must be one of: sops"
            );
        }
        if provider != "sops" {
            bail!(
                "invalid argument {provider:?} for \"--decryption-provider\" flag: unsupported decryption provider '{provider}', must be one of: sops"
            );
        }
    }
    let interval = object::duration("interval", create.interval())?;
    let health_timeout = object::duration("health-check-timeout", &args.health_check_timeout)?;
    let retry_interval = object::duration("retry-interval", &args.retry_interval)?;
    let name = object::checked_name(args.name.as_deref())?;
    let Some((kind, source_name, source_namespace)) = source else {
        bail!("source is required");
    };
    let metadata = object::metadata(name, create)?;
    let mut spec = json!({"interval": interval, "path": safe_relative_path(&args.path),
        "prune": args.prune,
        "sourceRef": object::reference(kind, source_name, source_namespace)});
    if !args.target_namespace.is_empty() {
        spec["targetNamespace"] = json!(args.target_namespace);
    }
    let depends_on = object::depends_on(&args.depends_on);
    if !depends_on.is_empty() {
        spec["dependsOn"] = json!(depends_on);
    }
    if !args.kubeconfig_secret_ref.is_empty() {
        spec["kubeConfig"] = json!({"secretRef": {"name": args.kubeconfig_secret_ref}});
    }
    // `--wait` checks every applied object, so the named health checks are dropped.
    if !args.health_checks.is_empty() && !args.wait {
        spec["healthChecks"] = json!(health_checks(&args.health_checks)?);
        spec["timeout"] = json!(health_timeout);
    }
    if args.wait {
        spec["wait"] = json!(true);
        spec["timeout"] = json!(health_timeout);
    }
    if !args.service_account.is_empty() {
        spec["serviceAccountName"] = json!(args.service_account);
    }
    if let Some(provider) = &args.decryption_provider {
        let mut decryption = json!({ "provider": provider });
        if !args.decryption_secret.is_empty() {
            decryption["secretRef"] = json!({"name": args.decryption_secret});
        }
        spec["decryption"] = decryption;
    }
    if retry_interval != "0s" && !retry_interval.starts_with('-') {
        spec["retryInterval"] = json!(retry_interval);
    }
    Ok(
        json!({"apiVersion": format!("{}/{}", KUSTOMIZATION.group, KUSTOMIZATION.version),
        "kind": KUSTOMIZATION.kind, "metadata": metadata, "spec": spec}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_source() {
        assert_eq!(safe_relative_path("apps/../x"), "./x");
        assert_eq!(safe_relative_path("../../up"), "./up");
        assert_eq!(safe_relative_path("/abs/"), "./abs");
        assert_eq!(safe_relative_path(""), "./");
    }
}
