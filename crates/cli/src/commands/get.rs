//! `ferroflux get`: Flux objects as `flux get` shows them (NAME, REVISION, SUSPENDED, READY,
//! MESSAGE, with NAMESPACE first for `-A`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::table;

/// A kind `get` can show, and where its revision is.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) revision: &'static [&'static str],
}

impl Shown {
    /// The API resource of the kind.
    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// The revision an object reports.
    pub fn revision_of<'a>(&self, object: &'a Value) -> &'a str {
        self.revision
            .iter()
            .fold(object, |v, key| &v[*key])
            .as_str()
            .unwrap_or_default()
    }
}

/// Kustomizations.
pub const KUSTOMIZATIONS: Shown = Shown {
    group: ferroflux_api::kustomize::GROUP,
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
    revision: &["status", "lastAppliedRevision"],
};

const SOURCE_REVISION: &[&str] = &["status", "artifact", "revision"];

/// A source kind.
pub fn source(kind: &'static str, plural: &'static str) -> Shown {
    Shown {
        group: ferroflux_api::source::GROUP,
        version: "v1",
        kind,
        plural,
        revision: SOURCE_REVISION,
    }
}

/// Get Flux objects.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(subcommand)]
    what: What,
    /// List across all namespaces.
    #[arg(short = 'A', long, global = true)]
    all_namespaces: bool,
    /// The namespace.
    #[arg(short, long, global = true, default_value = "flux-system")]
    namespace: String,
    /// Path to the kubeconfig (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Kustomizations.
    #[command(visible_aliases = ["ks", "kustomization"])]
    Kustomizations,
    /// Sources.
    #[command(visible_alias = "source")]
    Sources {
        #[command(subcommand)]
        kind: SourceKind,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum SourceKind {
    /// GitRepositories.
    Git,
    /// OCIRepositories.
    Oci,
    /// HelmRepositories.
    Helm,
    /// HelmCharts.
    Chart,
    /// Buckets.
    Bucket,
}

pub fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_deref()).await?;
        let shown = match args.what {
            What::Kustomizations => KUSTOMIZATIONS,
            What::Sources {
                kind: SourceKind::Git,
            } => source("GitRepository", "gitrepositories"),
            What::Sources {
                kind: SourceKind::Oci,
            } => source("OCIRepository", "ocirepositories"),
            What::Sources {
                kind: SourceKind::Helm,
            } => source("HelmRepository", "helmrepositories"),
            What::Sources {
                kind: SourceKind::Chart,
            } => source("HelmChart", "helmcharts"),
            What::Sources {
                kind: SourceKind::Bucket,
            } => source("Bucket", "buckets"),
        };
        let namespace = (!args.all_namespaces).then_some(args.namespace.as_str());
        let objects = list(&client, shown, namespace).await?;
        if objects.is_empty() {
            // flux fails with this error (exit 1), the namespace quoted.
            anyhow::bail!(
                "no {} objects found in {} namespace",
                shown.kind,
                namespace.map_or("any".to_string(), |n| format!("{n:?}"))
            );
        }
        out!("{}", render(shown, &objects, args.all_namespaces))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A client from `kubeconfig`, or the usual inference.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found; pass --kubeconfig")?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// The objects of a kind, in one namespace or all.
pub async fn list(
    client: &kube::Client,
    shown: Shown,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let resource = shown.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("cannot list {}", shown.plural))?;
    Ok(list
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("objects serialise"))
        .collect())
}

/// Whether an object is Ready at its current generation.
pub fn is_ready(object: &Value) -> bool {
    ready(object).is_some_and(|c| c["status"] == "True")
        && object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// The Ready condition of an object.
pub fn ready(object: &Value) -> Option<&Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// The table `flux get` prints for `objects`.
pub fn render(shown: Shown, objects: &[Value], with_namespace: bool) -> String {
    let mut rows: Vec<Vec<String>> = objects
        .iter()
        .map(|object| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let revision = shown.revision_of(object);
            let condition = ready(object);
            let mut row = Vec::new();
            if with_namespace {
                row.push(text(&object["metadata"]["namespace"]));
            }
            row.push(text(&object["metadata"]["name"]));
            row.push(table::truncate_hex(revision));
            row.push(
                if object["spec"]["suspend"] == true {
                    "True"
                } else {
                    "False"
                }
                .to_string(),
            );
            // Without a Ready condition flux shows False and "waiting to be reconciled".
            row.push(condition.map_or("False".to_string(), |c| text(&c["status"])));
            row.push(
                condition.map_or("waiting to be reconciled".to_string(), |c| {
                    table::truncate_hex(&text(&c["message"]))
                }),
            );
            row
        })
        .collect();
    rows.sort();
    let mut header = vec!["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"];
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    table::render(&header, &rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_show_revision_suspension_and_readiness_like_flux() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let objects = vec![
            json!({"metadata": {"name": "tenants", "namespace": "flux-system", "generation": 2},
                "spec": {"suspend": true},
                "status": {"observedGeneration": 1, "lastAppliedRevision": format!("main@sha1:{sha}"),
                    "conditions": [{"type": "Ready", "status": "False",
                        "message": format!("build failed at main@sha1:{sha}")}]}}),
            json!({"metadata": {"name": "apps", "namespace": "flux-system", "generation": 1}, "spec": {}}),
        ];
        let text = render(KUSTOMIZATIONS, &objects, false);
        // No Ready condition yet reads as flux shows it; hashes are cut in messages too.
        assert_eq!(
            text,
            "NAME   \tREVISION          \tSUSPENDED\tREADY\tMESSAGE                            \n\
             apps   \t                  \tFalse    \tFalse\twaiting to be reconciled          \t\n\
             tenants\tmain@sha1:01234567\tTrue     \tFalse\tbuild failed at main@sha1:01234567\t\n"
        );
        assert!(!is_ready(&objects[0]));
    }
}
