//! `ferroflux tree kustomization NAME`: the objects a Kustomization applied, from its inventory,
//! nested Kustomizations expanded, drawn as `flux tree` draws them (`├── `, `│   `, `└── `).

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use super::cluster::{self, ClusterArgs};
use super::get;

/// The deepest nesting of Kustomizations followed (a cycle of inventories must end).
const MAX_DEPTH: usize = 64;
/// The most inventory entries drawn in all.
const MAX_ENTRIES: usize = 100_000;

/// Print the resource inventory of a Flux object as a tree.
#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Debug, Subcommand)]
enum What {
    /// The objects a Kustomization reconciles.
    #[command(visible_alias = "ks")]
    Kustomization {
        /// Its name.
        name: Option<String>,
        /// Show only the Flux objects.
        #[arg(long)]
        compact: bool,
    },
    /// The objects of a HelmRelease's current release.
    #[command(visible_alias = "hr")]
    Helmrelease {
        /// Its name.
        name: Option<String>,
        /// Show only the Flux objects.
        #[arg(long)]
        compact: bool,
    },
}

/// One object of the tree: `Kind/namespace/name` and what it holds.
#[derive(Debug, Default, PartialEq)]
struct Node {
    text: String,
    children: Vec<Node>,
}

/// An inventory id, `namespace_name_group_kind` (a `:` in the name written `__`), parsed as
/// cli-utils' `ParseObjMetadata`.
pub(crate) fn parse_id(id: &str) -> Option<(String, String, String, String)> {
    let (namespace, rest) = id.split_once('_')?;
    let (rest, kind) = rest.rsplit_once('_')?;
    let (name, group) = rest.rsplit_once('_')?;
    Some((
        namespace.to_string(),
        name.replace("__", ":"),
        group.to_string(),
        kind.to_string(),
    ))
}

pub fn run(args: TreeArgs) -> anyhow::Result<ExitCode> {
    let (name, compact) = match &args.what {
        What::Kustomization { name, compact } => (name.clone(), *compact),
        What::Helmrelease { name, compact } => {
            let Some(name) = name.clone() else {
                bail!("helmrelease name is required");
            };
            return helm_release(&args.cluster, &name, *compact);
        }
    };
    let Some(name) = name else {
        bail!("kustomization name is required");
    };
    let namespace = args.cluster.namespace.clone();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let object = kustomization(&client, &namespace, &name).await?;
        let mut root = Node {
            text: format!("Kustomization/{namespace}/{name}"),
            children: Vec::new(),
        };
        let mut budget = MAX_ENTRIES;
        expand(&client, &object, &mut root, compact, 0, &mut budget).await?;
        out!("{}\n", draw(&root))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `tree helmrelease NAME`: the release's objects under it.
fn helm_release(cluster: &ClusterArgs, name: &str, compact: bool) -> anyhow::Result<ExitCode> {
    let namespace = cluster.namespace.clone();
    cluster::block_on(cluster.timeout()?, async {
        let client = cluster.client().await?;
        let mut root = Node {
            text: format!("HelmRelease/{namespace}/{name}"),
            children: Vec::new(),
        };
        for (group, text) in super::tree_helm::inventory(&client, &namespace, name).await? {
            if compact && !group.contains("toolkit.fluxcd.io") {
                continue;
            }
            root.children.push(Node {
                text,
                children: Vec::new(),
            });
        }
        out!("{}\n", draw(&root))?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn kustomization(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &get::KUSTOMIZATIONS.resource());
    match api.get_opt(name).await? {
        Some(object) => Ok(serde_json::to_value(object)?),
        None => bail!("kustomizations.kustomize.toolkit.fluxcd.io \"{name}\" not found"),
    }
}

/// Adds the inventory of `item` under `node`, following nested Kustomizations.
async fn expand(
    client: &kube::Client,
    item: &Value,
    node: &mut Node,
    compact: bool,
    depth: usize,
    budget: &mut usize,
) -> anyhow::Result<()> {
    let entries = item["status"]["inventory"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (item_ns, item_name) = (
        item["metadata"]["namespace"].as_str().unwrap_or_default(),
        item["metadata"]["name"].as_str().unwrap_or_default(),
    );
    for entry in entries {
        let id = entry["id"].as_str().unwrap_or_default();
        let Some((ns, name, group, kind)) = parse_id(id) else {
            bail!("unable to parse stored object metadata: {id}");
        };
        if compact && !group.contains("toolkit.fluxcd.io") {
            continue;
        }
        let is_kustomization = group == get::KUSTOMIZATIONS.group && kind == "Kustomization";
        if is_kustomization && ns == item_ns && name == item_name {
            continue;
        }
        if *budget == 0 {
            bail!("the inventory has more than {MAX_ENTRIES} entries");
        }
        *budget -= 1;
        let mut child = Node {
            text: if ns.is_empty() {
                format!("{kind}/{name}")
            } else {
                format!("{kind}/{ns}/{name}")
            },
            children: Vec::new(),
        };
        if group == get::HELM_RELEASES.group && kind == "HelmRelease" {
            for (group, text) in super::tree_helm::inventory(client, &ns, &name).await? {
                if compact && !group.contains("toolkit.fluxcd.io") {
                    continue;
                }
                child.children.push(Node {
                    text,
                    children: Vec::new(),
                });
            }
        }
        // A Kustomization applied to a remote cluster is not followed, as flux.
        if is_kustomization && item["spec"]["kubeConfig"].is_null() {
            if depth >= MAX_DEPTH {
                bail!("Kustomizations nested deeper than {MAX_DEPTH}");
            }
            let nested = kustomization(client, &ns, &name)
                .await
                .map_err(|e| anyhow::anyhow!("failed to find object: {e:#}"))?;
            Box::pin(expand(
                client,
                &nested,
                &mut child,
                compact,
                depth + 1,
                budget,
            ))
            .await?;
        }
        node.children.push(child);
    }
    Ok(())
}

/// flux's tree printer: the root, then every item behind its branch.
fn draw(root: &Node) -> String {
    let mut out = format!("{}\n", root.text);
    draw_items(&root.children, &mut Vec::new(), &mut out);
    out
}

fn draw_items(items: &[Node], spaces: &mut Vec<bool>, out: &mut String) {
    for (index, item) in items.iter().enumerate() {
        let last = index + 1 == items.len();
        for &space in spaces.iter() {
            out.push_str(if space { "    " } else { "│   " });
        }
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&item.text);
        out.push('\n');
        if !item.children.is_empty() {
            spaces.push(last);
            draw_items(&item.children, spaces, out);
            spaces.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_ids_parse_like_cli_utils() {
        assert_eq!(
            parse_id("_system__admins_rbac.authorization.k8s.io_ClusterRole"),
            Some((
                String::new(),
                "system:admins".to_string(),
                "rbac.authorization.k8s.io".to_string(),
                "ClusterRole".to_string()
            ))
        );
        assert_eq!(
            parse_id("apps_podinfo_apps_Deployment").map(|p| p.1),
            Some("podinfo".to_string())
        );
        assert_eq!(parse_id("nonsense"), None);
    }

    #[test]
    fn trees_are_drawn_like_flux() {
        let leaf = |t: &str| Node {
            text: t.to_string(),
            children: Vec::new(),
        };
        let root = Node {
            text: "Kustomization/flux-system/flux-system".to_string(),
            children: vec![
                Node {
                    text: "Kustomization/flux-system/apps".to_string(),
                    children: vec![leaf("Deployment/apps/a"), leaf("Service/apps/a")],
                },
                leaf("Namespace/apps"),
            ],
        };
        assert_eq!(
            draw(&root),
            "Kustomization/flux-system/flux-system\n\
             ├── Kustomization/flux-system/apps\n\
             │   ├── Deployment/apps/a\n\
             │   └── Service/apps/a\n\
             └── Namespace/apps\n"
        );
    }
}
