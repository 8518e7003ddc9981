//! `ferroflux get`: Flux objects as `flux get` shows them (NAME, REVISION, SUSPENDED, READY,
//! MESSAGE, with NAMESPACE first for `-A`; the notification kinds without the columns flux
//! leaves out for them).

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
    pub(crate) revision: Revision,
    /// Whether flux shows a SUSPENDED column for the kind.
    pub(crate) suspendable: bool,
    /// The READY message flux shows for every object of a kind without status (v1beta3 Alerts
    /// and Providers): READY is then always True.
    pub(crate) always_ready: Option<&'static str>,
}

/// Where a kind's REVISION column comes from.
#[derive(Debug, Clone, Copy)]
pub enum Revision {
    /// No REVISION column.
    None,
    /// The string at this path of the object.
    At(&'static [&'static str]),
    /// A HelmRelease's: the chart version of the newest release in `status.history`, else
    /// `status.lastAttemptedRevision`, as flux's `getHelmReleaseRevision`.
    HelmRelease,
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
        let value = match self.revision {
            Revision::None => return "",
            Revision::At(path) => path.iter().fold(object, |v, key| &v[*key]),
            Revision::HelmRelease => match object["status"]["history"].as_array() {
                Some(history) if !history.is_empty() => &history[0]["chartVersion"],
                _ => &object["status"]["lastAttemptedRevision"],
            },
        };
        value.as_str().unwrap_or_default()
    }
}

/// Kustomizations.
pub const KUSTOMIZATIONS: Shown = Shown {
    group: ferroflux_api::kustomize::GROUP,
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
    revision: Revision::At(&["status", "lastAppliedRevision"]),
    suspendable: true,
    always_ready: None,
};

/// HelmReleases.
pub const HELM_RELEASES: Shown = Shown {
    group: ferroflux_api::helm::GROUP,
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
    revision: Revision::HelmRelease,
    suspendable: true,
    always_ready: None,
};

/// Alerts (v1beta3: no status, so flux shows each as ready).
pub const ALERTS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Alert",
    plural: "alerts",
    revision: Revision::None,
    suspendable: true,
    always_ready: Some("Alert is Ready"),
};

/// Providers (v1beta3: no status and no SUSPENDED column in flux's table).
pub const ALERT_PROVIDERS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Provider",
    plural: "providers",
    revision: Revision::None,
    suspendable: false,
    always_ready: Some("Provider is Ready"),
};

/// Receivers.
pub const RECEIVERS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1",
    kind: "Receiver",
    plural: "receivers",
    revision: Revision::None,
    suspendable: true,
    always_ready: None,
};

const SOURCE_REVISION: &[&str] = &["status", "artifact", "revision"];

/// A source kind.
pub fn source(kind: &'static str, plural: &'static str) -> Shown {
    Shown {
        group: ferroflux_api::source::GROUP,
        version: "v1",
        kind,
        plural,
        revision: Revision::At(SOURCE_REVISION),
        suspendable: true,
        always_ready: None,
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
    /// HelmReleases.
    #[command(visible_aliases = ["hr", "helmrelease"])]
    Helmreleases,
    /// Alerts.
    #[command(visible_alias = "alert")]
    Alerts,
    /// Alert providers.
    #[command(visible_alias = "alert-provider")]
    AlertProviders,
    /// Receivers.
    #[command(visible_alias = "receiver")]
    Receivers,
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
            What::Helmreleases => HELM_RELEASES,
            What::Alerts => ALERTS,
            What::AlertProviders => ALERT_PROVIDERS,
            What::Receivers => RECEIVERS,
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
    list.items
        .into_iter()
        .map(|o| serde_json::to_value(o).context("cannot read a listed object"))
        .collect()
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
        .map(|object| row(shown, object, with_namespace))
        .collect();
    rows.sort();
    let mut header = vec!["NAME"];
    if !matches!(shown.revision, Revision::None) {
        header.push("REVISION");
    }
    if shown.suspendable {
        header.push("SUSPENDED");
    }
    header.extend(["READY", "MESSAGE"]);
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    table::render(&header, &rows)
}

/// One object's row, in the columns of [`render`]'s header.
fn row(shown: Shown, object: &Value, with_namespace: bool) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut row = Vec::new();
    if with_namespace {
        row.push(text(&object["metadata"]["namespace"]));
    }
    row.push(text(&object["metadata"]["name"]));
    if !matches!(shown.revision, Revision::None) {
        row.push(table::truncate_hex(shown.revision_of(object)));
    }
    if shown.suspendable {
        let suspended = object["spec"]["suspend"] == true;
        row.push(if suspended { "True" } else { "False" }.to_string());
    }
    if let Some(message) = shown.always_ready {
        row.extend(["True".to_string(), message.to_string()]);
        return row;
    }
    // Without a Ready condition flux shows False and "waiting to be reconciled".
    let condition = ready(object);
    row.push(condition.map_or("False".to_string(), |c| text(&c["status"])));
    row.push(
        condition.map_or("waiting to be reconciled".to_string(), |c| {
            table::truncate_hex(&text(&c["message"]))
        }),
    );
    row
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

    #[test]
    fn helm_release_revision_is_the_newest_chart_version_like_flux() {
        let objects = vec![
            json!({"metadata": {"name": "podinfo"}, "spec": {},
                "status": {"lastAttemptedRevision": "6.5.0",
                    "history": [{"chartVersion": "6.5.4"}, {"chartVersion": "6.5.3"}],
                    "conditions": [{"type": "Ready", "status": "True",
                        "message": "Helm install succeeded"}]}}),
            json!({"metadata": {"name": "redis"}, "spec": {"suspend": true},
                "status": {"lastAttemptedRevision": "18.0.0"}}),
        ];
        assert_eq!(
            render(HELM_RELEASES, &objects, false),
            "NAME   \tREVISION\tSUSPENDED\tREADY\tMESSAGE                  \n\
             podinfo\t6.5.4   \tFalse    \tTrue \tHelm install succeeded  \t\n\
             redis  \t18.0.0  \tTrue     \tFalse\twaiting to be reconciled\t\n"
        );
    }

    #[test]
    fn notification_kinds_show_flux_columns() {
        let alert =
            json!({"metadata": {"name": "slack", "namespace": "apps"}, "spec": {"suspend": true}});
        assert_eq!(
            render(ALERTS, std::slice::from_ref(&alert), true),
            "NAMESPACE\tNAME \tSUSPENDED\tREADY\tMESSAGE        \n\
             apps     \tslack\tTrue     \tTrue \tAlert is Ready\t\n"
        );
        assert_eq!(
            render(ALERT_PROVIDERS, std::slice::from_ref(&alert), false),
            "NAME \tREADY\tMESSAGE           \n\
             slack\tTrue \tProvider is Ready\t\n"
        );
    }
}
