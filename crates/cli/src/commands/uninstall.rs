//! `ferroflux uninstall`: removes Flux from a cluster as `flux uninstall` does: the components
//! labelled `app.kubernetes.io/part-of=flux` (Deployments, Services, NetworkPolicies and
//! ServiceAccounts of the namespace, ClusterRoles and ClusterRoleBindings), the finalizers of
//! every Flux object in all namespaces (so deleting the CRDs cannot hang on controllers that are
//! gone), the CRDs, then the namespace unless `--keep-namespace`. `--dry-run` only says what
//! would go; without `--silent` it asks first.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::cluster::{self, ClusterArgs};

/// The label of everything a Flux install creates.
const PART_OF: &str = "app.kubernetes.io/part-of=flux";

/// Uninstall Flux and its custom resource definitions.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Only print the objects that would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// Skip namespace deletion.
    #[arg(long)]
    keep_namespace: bool,
    /// Delete components without asking for confirmation.
    #[arg(short, long)]
    silent: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// A kind uninstall deletes or strips: group, version, kind, plural, namespaced.
type Kind = (&'static str, &'static str, &'static str, &'static str, bool);

/// The components, in flux's order.
const COMPONENTS: [Kind; 6] = [
    ("apps", "v1", "Deployment", "deployments", true),
    ("", "v1", "Service", "services", true),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("", "v1", "ServiceAccount", "serviceaccounts", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
];

/// The Flux kinds whose finalizers go, in flux's order.
const FLUX_KINDS: [Kind; 15] = [
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
        "ocirepositories",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmRepository",
        "helmrepositories",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmChart",
        "helmcharts",
        true,
    ),
    ("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets", true),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
        true,
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
        true,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1beta3",
        "Alert",
        "alerts",
        true,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1beta3",
        "Provider",
        "providers",
        true,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1",
        "Receiver",
        "receivers",
        true,
    ),
    (
        "image.toolkit.fluxcd.io",
        "v1",
        "ImagePolicy",
        "imagepolicies",
        true,
    ),
    (
        "image.toolkit.fluxcd.io",
        "v1",
        "ImageRepository",
        "imagerepositories",
        true,
    ),
    (
        "image.toolkit.fluxcd.io",
        "v1",
        "ImageUpdateAutomation",
        "imageupdateautomations",
        true,
    ),
    (
        "source.extensions.fluxcd.io",
        "v1beta1",
        "ArtifactGenerator",
        "artifactgenerators",
        true,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "ExternalArtifact",
        "externalartifacts",
        true,
    ),
];

fn resource((group, version, kind, plural, _): Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn run(args: UninstallArgs) -> anyhow::Result<ExitCode> {
    if !args.dry_run && !args.silent && !confirmed()? {
        bail!("aborting");
    }
    let namespace = args.cluster.namespace.clone();
    let dry_run = args.dry_run;
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        eprintln!("► deleting components in {namespace} namespace");
        components(&client, &namespace, dry_run).await;
        eprintln!("► deleting toolkit.fluxcd.io finalizers in all namespaces");
        finalizers(&client, dry_run).await;
        eprintln!("► deleting toolkit.fluxcd.io custom resource definitions");
        let crds = (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        );
        delete_labelled(&client, crds, &namespace, dry_run).await;
        if !args.keep_namespace {
            let namespaces = ("", "v1", "Namespace", "namespaces", false);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(namespaces));
            match api.delete(&namespace, &delete_params(dry_run)).await {
                Ok(_) => eprintln!("✔ Namespace/{namespace} deleted {}", dry_run_words(dry_run)),
                Err(err) => eprintln!("✗ Namespace/{namespace} deletion failed: {err}"),
            }
        }
        eprintln!("✔ uninstall finished");
        Ok(ExitCode::SUCCESS)
    })
}

/// flux's confirmation prompt, on standard error; only `y` goes on.
fn confirmed() -> anyhow::Result<bool> {
    eprint!("Are you sure you want to delete Flux and its custom resource definitions? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y"))
}

/// What flux appends to each line of a dry run (and an empty word otherwise).
fn dry_run_words(dry_run: bool) -> &'static str {
    if dry_run { "(dry run)" } else { "" }
}

fn delete_params(dry_run: bool) -> DeleteParams {
    DeleteParams {
        dry_run,
        ..DeleteParams::default()
    }
}

async fn components(client: &kube::Client, namespace: &str, dry_run: bool) {
    for kind in COMPONENTS {
        delete_labelled(client, kind, namespace, dry_run).await;
    }
}

/// Deletes the objects of `kind` labelled part-of=flux (in `namespace` when namespaced); a kind
/// the cluster does not serve is passed over, as flux passes over a failed list.
async fn delete_labelled(client: &kube::Client, kind: Kind, namespace: &str, dry_run: bool) {
    let namespaced = kind.4;
    let api: Api<DynamicObject> = if namespaced {
        Api::namespaced_with(client.clone(), namespace, &resource(kind))
    } else {
        Api::all_with(client.clone(), &resource(kind))
    };
    let Ok(list) = api.list(&ListParams::default().labels(PART_OF)).await else {
        return;
    };
    for object in list.items {
        let name = object.metadata.name.unwrap_or_default();
        let subject = if namespaced {
            format!("{}/{namespace}/{name}", kind.2)
        } else {
            format!("{}/{name}", kind.2)
        };
        match api.delete(&name, &delete_params(dry_run)).await {
            Ok(_) => eprintln!("✔ {subject} deleted {}", dry_run_words(dry_run)),
            Err(err) => eprintln!("✗ {subject} deletion failed: {err}"),
        }
    }
}

/// Empties the finalizers of every Flux object in all namespaces.
async fn finalizers(client: &kube::Client, dry_run: bool) {
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    let patch = json!({"metadata": {"finalizers": null}});
    for kind in FLUX_KINDS {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(kind));
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let namespace = object.metadata.namespace.clone().unwrap_or_default();
            let subject = format!("{}/{namespace}/{name}", kind.2);
            let namespaced: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace, &resource(kind));
            match namespaced
                .patch(&name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => eprintln!("✔ {subject} finalizers deleted {}", dry_run_words(dry_run)),
                Err(err) => eprintln!("✗ {subject} removing finalizers failed: {err}"),
            }
        }
    }
}
