//! `ferroflux events`: the Kubernetes Events about Flux objects as `flux events` prints them
//! (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest first), `--for Kind/name` with the events of
//! the object it references (a Kustomization's source, an Alert's Provider, ...), `--types`
//! and `-A`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::cluster::{self, ClusterArgs};
use crate::table;

/// The most events read per namespace (flux follows list continuations without bound; this
/// keeps a flood of events from exhausting memory).
const MAX_EVENTS: usize = 20_000;

/// Display Kubernetes events for Flux resources.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// List the events across all namespaces.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// The events of one Flux object, `<kind>[/<name>]`.
    #[arg(long = "for")]
    for_selector: Option<String>,
    /// Only events of these types (Normal, Warning).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// A Flux kind as `flux events` knows it, and where its reference to another object is.
struct RefInfo {
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    /// The path of the reference (`kind`, `name`, `namespace` below it).
    field: &'static [&'static str],
    /// The referenced kind when the reference has no `kind`.
    ref_kind: Option<&'static str>,
    cross_namespaced: bool,
}

const fn kind(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
) -> RefInfo {
    RefInfo {
        kind,
        group,
        version,
        plural,
        field: &[],
        ref_kind: None,
        cross_namespaced: false,
    }
}

const SOURCE: &str = "source.toolkit.fluxcd.io";
const IMAGE: &str = "image.toolkit.fluxcd.io";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";

/// flux's `fluxKindMap`.
const FLUX_KINDS: &[RefInfo] = &[
    RefInfo {
        field: &["spec", "sourceRef"],
        cross_namespaced: true,
        ..kind(
            "Kustomization",
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "kustomizations",
        )
    },
    RefInfo {
        field: &["spec", "chart", "spec", "sourceRef"],
        cross_namespaced: true,
        ..kind(
            "HelmRelease",
            "helm.toolkit.fluxcd.io",
            "v2",
            "helmreleases",
        )
    },
    RefInfo {
        field: &["spec", "providerRef"],
        ref_kind: Some("Provider"),
        ..kind("Alert", NOTIFICATION, "v1beta3", "alerts")
    },
    kind("Receiver", NOTIFICATION, "v1", "receivers"),
    kind("Provider", NOTIFICATION, "v1beta3", "providers"),
    RefInfo {
        field: &["spec", "imageRepositoryRef"],
        ref_kind: Some("ImageRepository"),
        cross_namespaced: true,
        ..kind("ImagePolicy", IMAGE, "v1", "imagepolicies")
    },
    RefInfo {
        field: &["spec", "sourceRef"],
        cross_namespaced: true,
        ..kind("HelmChart", SOURCE, "v1", "helmcharts")
    },
    kind("GitRepository", SOURCE, "v1", "gitrepositories"),
    kind("OCIRepository", SOURCE, "v1", "ocirepositories"),
    kind("Bucket", SOURCE, "v1", "buckets"),
    kind("HelmRepository", SOURCE, "v1", "helmrepositories"),
    kind(
        "ImageUpdateAutomation",
        IMAGE,
        "v1",
        "imageupdateautomations",
    ),
    kind("ImageRepository", IMAGE, "v1", "imagerepositories"),
    kind(
        "ArtifactGenerator",
        "source.extensions.fluxcd.io",
        "v1beta1",
        "artifactgenerators",
    ),
];

fn flux_kind(name: &str) -> Option<&'static RefInfo> {
    FLUX_KINDS
        .iter()
        .find(|k| k.kind.eq_ignore_ascii_case(name))
}

/// Which events to show: (namespace or all, kind, name) filters.
struct Selection {
    namespace: Option<String>,
    kind: Option<String>,
    name: Option<String>,
}

pub fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    for t in &args.types {
        if !t.eq_ignore_ascii_case("Warning") && !t.eq_ignore_ascii_case("Normal") {
            bail!("type '{t}' not supported. Supported types are Normal, Warning");
        }
    }
    let namespace = args.cluster.namespace.clone();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let mut selections = vec![Selection {
            namespace: (!args.all_namespaces).then(|| namespace.clone()),
            kind: None,
            name: None,
        }];
        let mut other_namespace = false;
        if let Some(selector) = &args.for_selector {
            let (kind, name) = match selector.split_once('/') {
                Some((kind, name)) => (kind, Some(name.to_string())),
                None => (selector.as_str(), None),
            };
            if kind.is_empty() {
                bail!("--for selector must be of format <kind>[/<name>]");
            }
            let Some(info) = flux_kind(kind) else {
                bail!("'{kind}' is not a recognized Flux kind");
            };
            selections[0].kind = Some(info.kind.to_string());
            selections[0].name = name.clone();
            if let Some(name) = name {
                for (kind, name, ns) in references(&client, info, &name, &namespace).await? {
                    other_namespace |= ns != namespace || args.all_namespaces;
                    selections.push(Selection {
                        namespace: Some(ns),
                        kind: Some(kind),
                        name: Some(name),
                    });
                }
            }
        }
        let show_namespace = args.all_namespaces || other_namespace;
        let mut events = Vec::new();
        for selection in &selections {
            events.extend(list_events(&client, selection).await?);
        }
        events.retain(|e| {
            let kind = e["involvedObject"]["kind"].as_str().unwrap_or_default();
            let kind_known = flux_kind(kind).is_some();
            let type_wanted = args.types.is_empty()
                || args.types.iter().any(|t| {
                    e["type"]
                        .as_str()
                        .is_some_and(|et| et.eq_ignore_ascii_case(t))
                });
            kind_known && type_wanted
        });
        // Oldest first, as flux sorts (stable, so equal times keep the API's order).
        events.sort_by_key(event_time);
        if events.is_empty() {
            if args.all_namespaces {
                eprintln!("✗ No events found.");
            } else {
                eprintln!("✗ No events found in {namespace} namespace.");
            }
            return Ok(ExitCode::SUCCESS);
        }
        let now = jiff::Timestamp::now();
        let rows: Vec<Vec<String>> = events.iter().map(|e| row(e, show_namespace, now)).collect();
        let mut header = vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
        if show_namespace {
            header.insert(0, "NAMESPACE");
        }
        out!("{}", table::render(&header, &rows))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// flux's `getObjectRef`: the objects `name` references, as (kind, name, namespace).
async fn references(
    client: &kube::Client,
    info: &RefInfo,
    name: &str,
    namespace: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    if info.field.is_empty() {
        return Ok(Vec::new());
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(info.group, info.version, info.kind),
        info.plural,
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let Some(object) = api.get_opt(name).await? else {
        bail!("{}.{} \"{name}\" not found", info.plural, info.group);
    };
    let object = serde_json::to_value(object)?;
    let reference = info.field.iter().fold(&object, |v, key| &v[*key]);
    let field = info.field.join(".");
    let kind = match info.ref_kind {
        Some(kind) => kind.to_string(),
        None => match reference["kind"].as_str() {
            Some(kind) => kind.to_string(),
            None => bail!("field '{field}.kind' for '{namespace}/{name}' not found"),
        },
    };
    let Some(ref_name) = reference["name"].as_str() else {
        bail!("field '{field}.name' for '{namespace}/{name}' not found");
    };
    let ref_namespace = match reference["namespace"].as_str() {
        Some(ns) if info.cross_namespaced => ns.to_string(),
        _ => namespace.to_string(),
    };
    let mut refs = vec![(kind, ref_name.to_string(), ref_namespace.clone())];
    if info.kind == "HelmRelease" {
        refs.push((
            "HelmChart".to_string(),
            format!("{namespace}-{name}"),
            ref_namespace,
        ));
    }
    Ok(refs)
}

async fn list_events(client: &kube::Client, selection: &Selection) -> anyhow::Result<Vec<Value>> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Event"), "events");
    let api: Api<DynamicObject> = match &selection.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut events = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let list = api
            .list(&params)
            .await
            .map_err(|e| anyhow::anyhow!("error getting events: {e}"))?;
        for event in list.items {
            let event = serde_json::to_value(event)?;
            let involved = &event["involvedObject"];
            let kind_matches = selection
                .kind
                .as_deref()
                .is_none_or(|k| involved["kind"] == k);
            let name_matches = selection
                .name
                .as_deref()
                .is_none_or(|n| involved["name"] == n);
            if kind_matches && name_matches {
                events.push(event);
            }
        }
        match list.metadata.continue_ {
            Some(token) if !token.is_empty() && events.len() < MAX_EVENTS => {
                params = params.continue_token(&token);
            }
            _ => return Ok(events),
        }
    }
}

fn timestamp(value: &Value) -> Option<jiff::Timestamp> {
    value.as_str()?.parse().ok()
}

/// flux's `eventTime`: the series' last observation, else the last timestamp, else the event
/// time.
fn event_time(event: &Value) -> Option<jiff::Timestamp> {
    timestamp(&event["series"]["lastObservedTime"])
        .or_else(|| timestamp(&event["lastTimestamp"]))
        .or_else(|| timestamp(&event["eventTime"]))
}

fn row(event: &Value, show_namespace: bool, now: jiff::Timestamp) -> Vec<String> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut row = Vec::new();
    if show_namespace {
        row.push(text(&event["metadata"]["namespace"]));
    }
    let involved = &event["involvedObject"];
    row.extend([
        last_seen(event, now),
        text(&event["type"]),
        text(&event["reason"]),
        format!("{}/{}", text(&involved["kind"]), text(&involved["name"])),
        text(&event["message"]),
    ]);
    row
}

/// flux's `getLastSeen`: the age, with `(xN over AGE)` for repeated events.
fn last_seen(event: &Value, now: jiff::Timestamp) -> String {
    let since = |t: Option<jiff::Timestamp>| match t {
        Some(t) => human_duration(now.as_second() - t.as_second()),
        None => "<unknown>".to_string(),
    };
    let first = match timestamp(&event["eventTime"]) {
        Some(t) => since(Some(t)),
        None => since(timestamp(&event["firstTimestamp"])),
    };
    let count = event["count"].as_i64().unwrap_or(0);
    if event["series"].is_object() {
        let series_count = event["series"]["count"].as_i64().unwrap_or(0);
        let last = since(timestamp(&event["series"]["lastObservedTime"]));
        format!("{last} (x{series_count} over {first})")
    } else if count > 1 {
        let last = since(timestamp(&event["lastTimestamp"]));
        format!("{last} (x{count} over {first})")
    } else {
        first
    }
}

/// apimachinery's `duration.HumanDuration` of `seconds`.
fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ages_print_as_apimachinery_prints_them() {
        for (seconds, shown) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (50 * 3600, "2d2h"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ] {
            assert_eq!(human_duration(seconds), shown, "{seconds}");
        }
    }

    #[test]
    fn repeated_events_show_their_count_like_flux() {
        let now: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().unwrap_or_default();
        let event = json!({"count": 3, "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:09:30Z", "type": "Normal", "reason": "Progressing",
            "involvedObject": {"kind": "Kustomization", "name": "apps"}, "message": "done",
            "metadata": {"namespace": "flux-system"}});
        assert_eq!(
            row(&event, true, now),
            [
                "flux-system",
                "30s (x3 over 10m)",
                "Normal",
                "Progressing",
                "Kustomization/apps",
                "done"
            ]
        );
        assert!(flux_kind("kustomization").is_some() && flux_kind("Deployment").is_none());
    }
}
