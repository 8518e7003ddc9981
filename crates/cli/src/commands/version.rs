//! `ferroflux version`: the client version (`ferroflux: vX` as text), and with `-o yaml` or
//! `-o json` flux's keys: `flux`, `distribution` (the labels of the GitRepository CRD) and one
//! key per controller image with its tag, read from the Flux Deployments unless `--client`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, ValueEnum};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::cluster::{self, ClusterArgs};

/// Print the version of the ferroflux client and of the Flux controllers on the cluster.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print only the client version, without asking the cluster.
    #[arg(long)]
    client: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Yaml,
    Json,
}

pub fn run(args: VersionArgs) -> anyhow::Result<ExitCode> {
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    if matches!(args.output, Output::Text) {
        outln!("ferroflux: {version}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let (distribution, controllers) = if args.client {
        (None, BTreeMap::new())
    } else {
        cluster::block_on(args.cluster.timeout()?, cluster_versions(&args.cluster))?
    };
    match args.output {
        Output::Json => {
            // flux marshals one map: keys sorted, two-space indent.
            let mut map = controllers;
            map.insert("flux".to_string(), version);
            if let Some(distribution) = distribution {
                map.insert("distribution".to_string(), distribution);
            }
            outln!("{}", serde_json::to_string_pretty(&map)?)?;
        }
        Output::Yaml | Output::Text => {
            // flux's struct order: flux, distribution, then the controllers sorted.
            out!("flux: {version}\n")?;
            if let Some(distribution) = distribution {
                out!("distribution: {distribution}\n")?;
            }
            for (name, tag) in controllers {
                out!("{name}: {tag}\n")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Flux distribution on the cluster and each controller's image tag, as flux reads them.
async fn cluster_versions(
    cluster: &ClusterArgs,
) -> anyhow::Result<(Option<String>, BTreeMap<String, String>)> {
    let client = cluster.client().await?;
    let crds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    let name = format!("gitrepositories.{}", ferroflux_api::source::GROUP);
    let labels = crds
        .get_opt(&name)
        .await?
        .and_then(|crd| crd.metadata.labels)
        .unwrap_or_default();
    let distribution = cluster::distribution(&labels);
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client,
        &cluster.namespace,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        ),
    );
    let list = deployments
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
        .await?;
    if list.items.is_empty() {
        bail!("no deployments found in {} namespace", cluster.namespace);
    }
    let mut controllers = BTreeMap::new();
    for deployment in list.items {
        let containers = deployment.data["spec"]["template"]["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for container in containers {
            let image = container["image"].as_str().unwrap_or_default();
            let (name, tag) = split_image(image)?;
            controllers.insert(name, tag);
        }
    }
    Ok((
        (!distribution.is_empty()).then_some(distribution),
        controllers,
    ))
}

/// flux's `splitImageStr`: the last path segment of the repository and the tag.
fn split_image(image: &str) -> anyhow::Result<(String, String)> {
    // The registry is the first segment when it looks like a host, as go-containerregistry reads it.
    let repository = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
        _ => image,
    };
    let Some((name, tag)) = repository.split_once(':') else {
        bail!("missing image tag in image {image}");
    };
    let name = name.rsplit('/').next().unwrap_or(name);
    Ok((name.to_string(), tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_like_flux() {
        assert_eq!(
            split_image("ghcr.io/fluxcd/source-controller:v1.7.0").ok(),
            Some(("source-controller".to_string(), "v1.7.0".to_string()))
        );
        assert_eq!(
            split_image("localhost:5000/kustomize-controller:v1@sha256:ab").ok(),
            Some((
                "kustomize-controller".to_string(),
                "v1@sha256:ab".to_string()
            ))
        );
        assert!(split_image("ghcr.io/fluxcd/source-controller").is_err());
    }
}
