//! `ferroflux get`: Flux objects as `flux get` shows them: each kind with flux 2.9's columns
//! (sources and Kustomizations NAME, REVISION, SUSPENDED, READY, MESSAGE; image policies IMAGE
//! and TAG; image updates LAST RUN; ...), NAMESPACE first for `-A`, `get sources all`,
//! `get images all` and `get all` as flux groups them, a NAME argument, `--status-selector`,
//! `-l` and `--no-header`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::cluster::{self, ClusterArgs};
use crate::table;

mod canary;

/// A kind `get` can show: its API and its columns.
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) revision: Revision,
    /// The columns between NAME and READY.
    pub(crate) columns: &'static [Column],
    /// Whether flux cuts hashes in the MESSAGE column of the kind.
    pub(crate) truncate_message: bool,
    /// The READY message flux shows for every object of a kind without status (v1beta3 Alerts
    /// and Providers): READY is then always True.
    pub(crate) always_ready: Option<&'static str>,
}

/// A column flux shows for some kinds between NAME and READY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The revision, its hashes cut to 8 digits or (HelmCharts, HelmReleases) whole.
    Revision { truncate: bool },
    /// An ExternalArtifact's source, `Kind/namespace/name`.
    Source,
    /// An ImageRepository's last scan time.
    LastScan,
    /// An ImageUpdateAutomation's last run time.
    LastRun,
    /// An ImagePolicy's latest image name.
    Image,
    /// An ImagePolicy's latest tag.
    Tag,
    /// `spec.suspend`, as `True` or `False`.
    Suspended,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Revision { .. } => "REVISION",
            Column::Source => "SOURCE",
            Column::LastScan => "LAST SCAN",
            Column::LastRun => "LAST RUN",
            Column::Image => "IMAGE",
            Column::Tag => "TAG",
            Column::Suspended => "SUSPENDED",
        }
    }

    fn cell(self, shown: Shown, object: &Value) -> String {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        match self {
            Column::Revision { truncate: true } => table::truncate_hex(shown.revision_of(object)),
            Column::Revision { truncate: false } => shown.revision_of(object).to_string(),
            Column::Source => {
                let source = &object["spec"]["sourceRef"];
                if source.is_object() {
                    format!(
                        "{}/{}/{}",
                        text(&source["kind"]),
                        text(&source["namespace"]),
                        text(&source["name"])
                    )
                } else {
                    String::new()
                }
            }
            Column::LastScan => rfc3339(&object["status"]["lastScanResult"]["scanTime"]),
            Column::LastRun => rfc3339(&object["status"]["lastAutomationRunTime"]),
            Column::Image => text(&object["status"]["latestRef"]["name"]),
            Column::Tag => text(&object["status"]["latestRef"]["tag"]),
            Column::Suspended => {
                let suspended = object["spec"]["suspend"] == true;
                if suspended { "True" } else { "False" }.to_string()
            }
        }
    }
}

/// A timestamp as Go's `time.RFC3339` prints a `metav1.Time` (seconds, the local zone, `Z` for
/// UTC); empty when unset.
fn rfc3339(value: &Value) -> String {
    let Some(stamp) = value.as_str() else {
        return String::new();
    };
    let Ok(stamp) = stamp.parse::<jiff::Timestamp>() else {
        return stamp.to_string();
    };
    let zoned = stamp.to_zoned(jiff::tz::TimeZone::system());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Where a kind's revision is.
#[derive(Debug, Clone, Copy)]
pub enum Revision {
    /// The kind has none.
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

    /// The column headers flux prints for the kind.
    pub(crate) fn header(&self, with_namespace: bool) -> Vec<&'static str> {
        let mut header = Vec::new();
        if with_namespace {
            header.push("NAMESPACE");
        }
        header.push("NAME");
        header.extend(self.columns.iter().map(|c| c.header()));
        header.extend(["READY", "MESSAGE"]);
        header
    }

    /// Whether flux's `--status-selector TYPE=STATUS` matches the object: the kind's last
    /// condition of that type (case-insensitive) has that status; kinds without status match
    /// only `ready=true`.
    pub(crate) fn status_matches(
        &self,
        object: &Value,
        condition_type: &str,
        status: &str,
    ) -> bool {
        if self.always_ready.is_some() {
            return condition_type.eq_ignore_ascii_case("Ready")
                && status.eq_ignore_ascii_case("True");
        }
        let conditions = object["status"]["conditions"].as_array();
        conditions
            .and_then(|all| {
                all.iter().rev().find(|c| {
                    c["type"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(condition_type))
                })
            })
            .and_then(|c| c["status"].as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case(status))
    }
}

const SOURCE_REVISION: &[&str] = &["status", "artifact", "revision"];
const REVISION_SUSPENDED: &[Column] = &[Column::Revision { truncate: true }, Column::Suspended];
const WHOLE_REVISION_SUSPENDED: &[Column] =
    &[Column::Revision { truncate: false }, Column::Suspended];

/// Kustomizations.
pub const KUSTOMIZATIONS: Shown = Shown {
    group: ferroflux_api::kustomize::GROUP,
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
    revision: Revision::At(&["status", "lastAppliedRevision"]),
    columns: REVISION_SUSPENDED,
    truncate_message: true,
    always_ready: None,
};

/// HelmReleases (flux shows their revision and message whole).
pub const HELM_RELEASES: Shown = Shown {
    group: ferroflux_api::helm::GROUP,
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
    revision: Revision::HelmRelease,
    columns: WHOLE_REVISION_SUSPENDED,
    truncate_message: false,
    always_ready: None,
};

/// Alerts (v1beta3: no status, so flux shows each as ready).
pub const ALERTS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Alert",
    plural: "alerts",
    revision: Revision::None,
    columns: &[Column::Suspended],
    truncate_message: false,
    always_ready: Some("Alert is Ready"),
};

/// Providers (v1beta3: no status and no SUSPENDED column in flux's table).
pub const ALERT_PROVIDERS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1beta3",
    kind: "Provider",
    plural: "providers",
    revision: Revision::None,
    columns: &[],
    truncate_message: false,
    always_ready: Some("Provider is Ready"),
};

/// Receivers.
pub const RECEIVERS: Shown = Shown {
    group: ferroflux_api::notification::GROUP,
    version: "v1",
    kind: "Receiver",
    plural: "receivers",
    revision: Revision::None,
    columns: &[Column::Suspended],
    truncate_message: false,
    always_ready: None,
};

/// ImageRepositories: LAST SCAN.
pub const IMAGE_REPOSITORIES: Shown = Shown {
    group: ferroflux_api::image::GROUP,
    version: "v1",
    kind: "ImageRepository",
    plural: "imagerepositories",
    revision: Revision::None,
    columns: &[Column::LastScan, Column::Suspended],
    truncate_message: false,
    always_ready: None,
};

/// ImagePolicies: IMAGE and TAG of the latest reference (flux 2.9; older flux printed LATEST
/// IMAGE).
pub const IMAGE_POLICIES: Shown = Shown {
    group: ferroflux_api::image::GROUP,
    version: "v1",
    kind: "ImagePolicy",
    plural: "imagepolicies",
    revision: Revision::None,
    columns: &[Column::Image, Column::Tag],
    truncate_message: false,
    always_ready: None,
};

/// ImageUpdateAutomations: LAST RUN.
pub const IMAGE_UPDATES: Shown = Shown {
    group: ferroflux_api::image::GROUP,
    version: "v1",
    kind: "ImageUpdateAutomation",
    plural: "imageupdateautomations",
    revision: Revision::None,
    columns: &[Column::LastRun, Column::Suspended],
    truncate_message: false,
    always_ready: None,
};

/// A source kind (HelmCharts keep their SemVer revision whole, ExternalArtifacts show their
/// SOURCE instead of SUSPENDED).
pub fn source(kind: &'static str, plural: &'static str) -> Shown {
    let columns = match kind {
        "HelmChart" => WHOLE_REVISION_SUSPENDED,
        "ExternalArtifact" => &[Column::Revision { truncate: true }, Column::Source],
        _ => REVISION_SUSPENDED,
    };
    Shown {
        group: ferroflux_api::source::GROUP,
        version: "v1",
        kind,
        plural,
        revision: Revision::At(SOURCE_REVISION),
        columns,
        truncate_message: true,
        always_ready: None,
    }
}

/// The source kinds in the order `flux get sources all` prints them.
pub fn all_sources() -> [Shown; 6] {
    [
        source("OCIRepository", "ocirepositories"),
        source("Bucket", "buckets"),
        source("GitRepository", "gitrepositories"),
        source("HelmRepository", "helmrepositories"),
        source("HelmChart", "helmcharts"),
        source("ExternalArtifact", "externalartifacts"),
    ]
}

/// The image kinds in the order `flux get images all` prints them.
pub const ALL_IMAGES: [Shown; 3] = [IMAGE_REPOSITORIES, IMAGE_POLICIES, IMAGE_UPDATES];

/// The kinds `flux get all` prints after the sources and images, in its order.
pub const ALL_OTHERS: [Shown; 5] = [
    HELM_RELEASES,
    KUSTOMIZATIONS,
    RECEIVERS,
    ALERT_PROVIDERS,
    ALERTS,
];

/// Get Flux objects and their status.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(subcommand)]
    what: What,
    /// List the requested object(s) across all namespaces.
    #[arg(short = 'A', long, global = true)]
    all_namespaces: bool,
    /// Skip the header when printing the results.
    #[arg(long, global = true)]
    no_header: bool,
    /// The status condition name and the desired state to filter the get result, e.g.
    /// ready=false or ready!=true.
    #[arg(long, global = true)]
    status_selector: Option<String>,
    /// Filter objects by label selector.
    #[arg(short = 'l', long, global = true)]
    label_selector: Option<String>,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long, global = true)]
    watch: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// The optional NAME argument of every `get` command.
#[derive(Debug, Clone, Args)]
struct Named {
    /// Show only the object of this name.
    name: Option<String>,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Kustomizations.
    #[command(visible_aliases = ["ks", "kustomization"])]
    Kustomizations(Named),
    /// HelmReleases.
    #[command(visible_aliases = ["hr", "helmrelease"])]
    Helmreleases(Named),
    /// Alerts.
    #[command(visible_alias = "alert")]
    Alerts(Named),
    /// Alert providers.
    #[command(visible_alias = "alert-provider")]
    AlertProviders(Named),
    /// Receivers.
    #[command(visible_alias = "receiver")]
    Receivers(Named),
    /// Sources.
    #[command(visible_alias = "source")]
    Sources {
        #[command(subcommand)]
        kind: SourceKind,
    },
    /// Image automation objects.
    #[command(visible_alias = "image")]
    Images {
        #[command(subcommand)]
        kind: ImageKind,
    },
    /// Every kind: sources, images, HelmReleases, Kustomizations and notifications.
    All(Named),
    /// Flagger's Canaries, with kubectl's columns.
    #[command(visible_alias = "canary")]
    Canaries(Named),
}

#[derive(Debug, Subcommand)]
enum SourceKind {
    /// GitRepositories.
    Git(Named),
    /// OCIRepositories.
    Oci(Named),
    /// HelmRepositories.
    Helm(Named),
    /// HelmCharts.
    Chart(Named),
    /// Buckets.
    Bucket(Named),
    /// ExternalArtifacts.
    External(Named),
    /// Every source kind.
    All(Named),
}

#[derive(Debug, Subcommand)]
enum ImageKind {
    /// ImageRepositories.
    Repository(Named),
    /// ImagePolicies.
    Policy(Named),
    /// ImageUpdateAutomations.
    Update(Named),
    /// Every image kind.
    All(Named),
}

impl What {
    /// The kinds to show, whether as `get ... all` (kind in NAME, empty kinds left out), and
    /// the NAME argument.
    fn kinds(&self) -> (Vec<Shown>, bool, Option<String>) {
        let one = |shown: Shown, named: &Named| (vec![shown], false, named.name.clone());
        match self {
            What::Kustomizations(n) => one(KUSTOMIZATIONS, n),
            What::Helmreleases(n) => one(HELM_RELEASES, n),
            What::Alerts(n) => one(ALERTS, n),
            What::AlertProviders(n) => one(ALERT_PROVIDERS, n),
            What::Receivers(n) => one(RECEIVERS, n),
            What::Sources { kind } => match kind {
                SourceKind::Git(n) => one(source("GitRepository", "gitrepositories"), n),
                SourceKind::Oci(n) => one(source("OCIRepository", "ocirepositories"), n),
                SourceKind::Helm(n) => one(source("HelmRepository", "helmrepositories"), n),
                SourceKind::Chart(n) => one(source("HelmChart", "helmcharts"), n),
                SourceKind::Bucket(n) => one(source("Bucket", "buckets"), n),
                SourceKind::External(n) => one(source("ExternalArtifact", "externalartifacts"), n),
                SourceKind::All(n) => (all_sources().to_vec(), true, n.name.clone()),
            },
            What::Images { kind } => match kind {
                ImageKind::Repository(n) => one(IMAGE_REPOSITORIES, n),
                ImageKind::Policy(n) => one(IMAGE_POLICIES, n),
                ImageKind::Update(n) => one(IMAGE_UPDATES, n),
                ImageKind::All(n) => (ALL_IMAGES.to_vec(), true, n.name.clone()),
            },
            What::Canaries(n) => (Vec::new(), false, n.name.clone()),
            What::All(n) => {
                let kinds = all_sources()
                    .into_iter()
                    .chain(ALL_IMAGES)
                    .chain(ALL_OTHERS)
                    .collect();
                (kinds, true, n.name.clone())
            }
        }
    }
}

/// How one `get` lists and prints.
pub(crate) struct Query<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) label_selector: Option<&'a str>,
    /// `--status-selector`: condition type, status, and whether `!=` negates it.
    pub(crate) status: Option<(String, String, bool)>,
    pub(crate) header: bool,
    /// `get ... all`: each NAME prefixed by its kind, empty kinds printed as nothing.
    pub(crate) all: bool,
}

/// flux's `--status-selector`: `type=status` or `type!=status`.
fn parse_status_selector(selector: &str) -> anyhow::Result<(String, String, bool)> {
    let (separator, negated) = if selector.contains("!=") {
        ("!=", true)
    } else {
        ("=", false)
    };
    match selector.split_once(separator) {
        Some((condition, status)) => Ok((condition.to_string(), status.to_string(), negated)),
        None => anyhow::bail!(
            "expected status selector in type=status or type!=status format, but found: {selector}"
        ),
    }
}

pub fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    let (kinds, all, name) = args.what.kinds();
    if let What::Canaries(_) = &args.what {
        let header = !args.no_header;
        return canary::run(&args.cluster, args.all_namespaces, name.as_deref(), header);
    }
    let status = args
        .status_selector
        .as_deref()
        .map(parse_status_selector)
        .transpose()?;
    let query = Query {
        namespace: (!args.all_namespaces).then_some(args.cluster.namespace.as_str()),
        name: name.as_deref(),
        label_selector: args.label_selector.as_deref(),
        status,
        header: !args.no_header,
        all,
    };
    if args.watch {
        return super::get_watch::run(&args.cluster, &kinds, &query);
    }
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        for shown in kinds {
            match show(&client, shown, &query).await {
                Ok(text) => out!("{text}")?,
                // `get ... all` reports a kind's failure and goes on, as flux does.
                Err(err) if query.all => eprintln!("✗ {err:#}"),
                Err(err) => return Err(err),
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The table of one kind, or flux's error for no object; empty for an empty or unserved kind
/// of `get ... all`.
async fn show(client: &kube::Client, shown: Shown, query: &Query<'_>) -> anyhow::Result<String> {
    let namespace = query.namespace;
    let mut params = ListParams::default();
    if let Some(name) = query.name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    if let Some(selector) = query.label_selector {
        params = params.labels(selector);
    }
    let objects = match list_with(client, shown, namespace, &params).await {
        Ok(objects) => objects,
        Err(Listing::NotServed) if query.all => return Ok(String::new()),
        Err(Listing::NotServed) => anyhow::bail!(
            "no matches for kind \"{}\" in version \"{}/{}\"",
            shown.kind,
            shown.group,
            shown.version
        ),
        Err(Listing::Failed(err)) => return Err(err),
    };
    let scope = namespace.map_or("any".to_string(), |n| format!("{n:?}"));
    if objects.is_empty() {
        if let Some(name) = query.name {
            anyhow::bail!(
                "{} object '{name}' not found in {scope} namespace",
                shown.kind
            );
        }
        if query.all {
            return Ok(String::new());
        }
        // flux fails with this error (exit 1), the namespace quoted.
        anyhow::bail!("no {} objects found in {scope} namespace", shown.kind);
    }
    let selected: Vec<Value> = objects
        .into_iter()
        .filter(|object| {
            query
                .status
                .as_ref()
                .is_none_or(|(condition, status, negated)| {
                    shown.status_matches(object, condition, status) != *negated
                })
        })
        .collect();
    if query.all && selected.is_empty() {
        return Ok(String::new());
    }
    let mut text = render_table(
        shown,
        &selected,
        namespace.is_none(),
        query.all,
        query.header,
    );
    if query.all {
        text.push('\n');
    }
    Ok(text)
}

/// Why a list failed.
enum Listing {
    /// The API server does not serve the kind (its CRD is not installed).
    NotServed,
    Failed(anyhow::Error),
}

async fn list_with(
    client: &kube::Client,
    shown: Shown,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<Vec<Value>, Listing> {
    let resource = shown.resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let list = match api.list(params).await {
        Ok(list) => list,
        Err(err) if cluster::is_not_served(&err) => return Err(Listing::NotServed),
        Err(err) => {
            return Err(Listing::Failed(
                anyhow::Error::new(err).context(format!("cannot list {}", shown.plural)),
            ));
        }
    };
    list.items
        .into_iter()
        .map(|o| {
            serde_json::to_value(o)
                .context("cannot read a listed object")
                .map_err(Listing::Failed)
        })
        .collect()
}

/// A client from `kubeconfig`, or the usual inference.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let cluster = ClusterArgs {
        namespace: String::new(),
        kubeconfig: kubeconfig.map(std::path::Path::to_path_buf),
        context: None,
        timeout: String::new(),
    };
    cluster.client().await
}

/// The objects of a kind, in one namespace or all.
pub async fn list(
    client: &kube::Client,
    shown: Shown,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    match list_with(client, shown, namespace, &ListParams::default()).await {
        Ok(objects) => Ok(objects),
        Err(Listing::NotServed) => anyhow::bail!("cannot list {}: not served", shown.plural),
        Err(Listing::Failed(err)) => Err(err),
    }
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
    render_table(shown, objects, with_namespace, false, true)
}

/// The table of `objects`, in the API server's order (namespace, then name); `with_kind`
/// prefixes each name with its lower-case kind as `get all` does.
fn render_table(
    shown: Shown,
    objects: &[Value],
    with_namespace: bool,
    with_kind: bool,
    with_header: bool,
) -> String {
    let mut objects: Vec<&Value> = objects.iter().collect();
    let key = |o: &Value| {
        (
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    objects.sort_by_key(|o| key(o));
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|object| row(shown, object, with_namespace, with_kind))
        .collect();
    let header = if with_header {
        shown.header(with_namespace)
    } else {
        Vec::new()
    };
    table::render(&header, &rows)
}

/// One object's row, in the columns of [`Shown::header`].
pub(crate) fn row(
    shown: Shown,
    object: &Value,
    with_namespace: bool,
    with_kind: bool,
) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut row = Vec::new();
    if with_namespace {
        row.push(text(&object["metadata"]["namespace"]));
    }
    let name = text(&object["metadata"]["name"]);
    row.push(if with_kind {
        format!("{}/{name}", shown.kind.to_lowercase())
    } else {
        name
    });
    row.extend(shown.columns.iter().map(|c| c.cell(shown, object)));
    if let Some(message) = shown.always_ready {
        row.extend(["True".to_string(), message.to_string()]);
        return row;
    }
    // Without a Ready condition flux shows False and "waiting to be reconciled".
    let condition = ready(object);
    row.push(condition.map_or("False".to_string(), |c| text(&c["status"])));
    let message = condition.map_or("waiting to be reconciled".to_string(), |c| {
        text(&c["message"])
    });
    row.push(if shown.truncate_message {
        table::truncate_hex(&message)
    } else {
        message
    });
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

    #[test]
    fn image_kinds_show_flux_2_9_columns() {
        let policy = json!({"metadata": {"name": "podinfo", "namespace": "flux-system"},
            "status": {"latestRef": {"name": "ghcr.io/stefanprodan/podinfo", "tag": "main-0123abcd-1700000000"},
                "conditions": [{"type": "Ready", "status": "True",
                    "message": "Latest image tag for ghcr.io/stefanprodan/podinfo resolved to main-0123abcd-1700000000"}]}});
        let text = render(IMAGE_POLICIES, std::slice::from_ref(&policy), false);
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::trim)
            .collect();
        assert_eq!(header, ["NAME", "IMAGE", "TAG", "READY", "MESSAGE"]);
        let cells: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::trim)
            .collect();
        assert_eq!(
            cells[..4],
            [
                "podinfo",
                "ghcr.io/stefanprodan/podinfo",
                "main-0123abcd-1700000000",
                "True"
            ]
        );

        let update = json!({"metadata": {"name": "apps"}, "spec": {"suspend": true},
            "status": {"lastAutomationRunTime": "2026-12-07T19:14:36Z"}});
        let text = render_table(IMAGE_UPDATES, &[update], false, true, false);
        let cells: Vec<&str> = text
            .lines()
            .next()
            .unwrap_or_default()
            .split('\t')
            .map(str::trim)
            .collect();
        // `get all` names the kind; LAST RUN is RFC 3339 (UTC here unless TZ says otherwise).
        assert_eq!(cells[0], "imageupdateautomation/apps");
        assert!(cells[1].starts_with("2026-12-0"), "{text}");
        assert_eq!(
            cells[2..],
            ["True", "False", "waiting to be reconciled", ""]
        );
    }

    #[test]
    fn status_selector_matches_like_flux() {
        let ready = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "True"}, {"type": "Ready", "status": "False"}]}});
        assert!(KUSTOMIZATIONS.status_matches(&ready, "ready", "false"));
        assert!(!KUSTOMIZATIONS.status_matches(&ready, "ready", "true"));
        assert!(!KUSTOMIZATIONS.status_matches(&json!({}), "ready", "false"));
        assert!(ALERTS.status_matches(&json!({}), "Ready", "true"));
        assert!(!ALERTS.status_matches(&ready, "ready", "false"));
        assert_eq!(
            parse_status_selector("ready!=true").ok(),
            Some(("ready".to_string(), "true".to_string(), true))
        );
        assert!(parse_status_selector("ready").is_err());
    }
}
