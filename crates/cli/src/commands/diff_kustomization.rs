//! `ferroflux diff kustomization NAME --path DIR`: what applying a local directory would change
//! in the cluster, as `flux diff kustomization` prints it. The directory is built as `build
//! kustomization` builds it (postBuild substitution included), each object is dry-run applied
//! server-side as kustomize-controller would apply it, and every object that would be created
//! (`► Kind/namespace/name created`), changed (`► ... drifted` and the changed fields) or pruned
//! from the inventory (`► ... deleted`) is printed; exit 1 when anything would change, 2 on
//! error.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

use super::build::LocalKustomizationArgs;
use super::cluster::{self, ClusterArgs};

/// The field manager kustomize-controller applies with, so the dry run merges as it would.
const FIELD_MANAGER: &str = "kustomize-controller";
/// How many changed fields of one object are listed before the rest is summed up.
const MAX_FIELDS: usize = 256;
/// How deep the field comparison goes into an object.
const MAX_DEPTH: usize = 64;

/// `diff kustomization` flags, as flux's (its `--path` help is flux's own for diff).
#[derive(Debug, Args)]
#[command(mut_arg("path", |a| a.help(
    "Path to a local directory that matches the specified Kustomization.spec.path"
)))]
pub struct DiffKustomizationArgs {
    #[command(flatten)]
    local: LocalKustomizationArgs,
    /// Show a progress bar (accepted for flux's flags; nothing is drawn off a terminal).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    progress_bar: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// What one object's dry run says.
#[derive(Debug, PartialEq)]
enum Outcome {
    Created,
    Drifted(Vec<String>),
    Unchanged,
    Skipped,
}

pub fn run(args: DiffKustomizationArgs) -> anyhow::Result<ExitCode> {
    let name = args.local.name()?;
    match diff(&args, &name) {
        Ok((report, changed)) => {
            out!("{report}")?;
            if changed {
                eprintln!("⚠️ identified at least one change, exiting with non-zero exit code");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        // flux exits 2 when the diff could not be made.
        Err(err) => {
            eprintln!("✗ {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The report and whether anything would change.
fn diff(args: &DiffKustomizationArgs, name: &str) -> anyhow::Result<(String, bool)> {
    let local = &args.local;
    let path = std::path::absolute(&local.path).unwrap_or_else(|_| PathBuf::from(&local.path));
    if local.path.is_empty() || !path.is_dir() {
        bail!("invalid resource path {:?}", local.path);
    }
    let namespace = args.cluster.namespace.clone();
    let from_file = local.read_file(name, &namespace)?;
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let kustomization = match super::build::live(&client, &namespace, name).await? {
            Some(live) => live,
            None => from_file.ok_or_else(|| {
                anyhow::anyhow!(
                    "failed to get kustomization object: kustomizations.kustomize.toolkit.fluxcd.io \"{name}\" not found"
                )
            })?,
        };
        let objects = super::build::build(
            &kustomization,
            &path,
            Some(&client),
            local.strict_substitute,
        )
        .await?;
        let mut report = String::new();
        let mut changed = false;
        let mut applied = BTreeSet::new();
        for object in &objects {
            let subject = subject(object);
            applied.insert(inventory_key(object));
            match dry_run(&client, object).await? {
                Outcome::Created => {
                    report.push_str(&format!("► {subject} created\n"));
                    changed = true;
                }
                Outcome::Drifted(fields) => {
                    report.push_str(&format!("► {subject} drifted\n\n"));
                    for field in fields {
                        report.push_str(&field);
                    }
                    changed = true;
                }
                Outcome::Skipped => report.push_str(&format!("► {subject} skipped\n")),
                Outcome::Unchanged => {}
            }
        }
        let ks = serde_json::to_value(&kustomization)?;
        if ks["spec"]["prune"] == true {
            for stale in stale_entries(&ks, &applied) {
                report.push_str(&format!("► {stale} deleted\n"));
                changed = true;
            }
        }
        Ok((report, changed))
    })
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// `Kind/namespace/name`, or `Kind/name` for a cluster-scoped object (ssa's subject).
fn subject(object: &Value) -> String {
    let kind = text(&object["kind"]);
    let name = text(&object["metadata"]["name"]);
    match text(&object["metadata"]["namespace"]) {
        "" => format!("{kind}/{name}"),
        namespace => format!("{kind}/{namespace}/{name}"),
    }
}

/// The object as its inventory entry names it: namespace, name, group, kind.
fn inventory_key(object: &Value) -> (String, String, String, String) {
    let group = text(&object["apiVersion"])
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    (
        text(&object["metadata"]["namespace"]).to_string(),
        text(&object["metadata"]["name"]).to_string(),
        group.to_string(),
        text(&object["kind"]).to_string(),
    )
}

/// The inventory entries the build no longer holds, as subjects.
fn stale_entries(ks: &Value, applied: &BTreeSet<(String, String, String, String)>) -> Vec<String> {
    let entries = ks["status"]["inventory"]["entries"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| super::tree::parse_id(text(&entry["id"])))
        .filter(|key| !applied.contains(key))
        .map(|(namespace, name, _, kind)| {
            if namespace.is_empty() {
                format!("{kind}/{name}")
            } else {
                format!("{kind}/{namespace}/{name}")
            }
        })
        .collect()
}

/// Server-side dry-run apply of one object against the live one.
async fn dry_run(client: &kube::Client, object: &Value) -> anyhow::Result<Outcome> {
    let annotations = &object["metadata"]["annotations"];
    let labels = &object["metadata"]["labels"];
    let marked = |key: &str, value: &str| {
        [annotations, labels].iter().any(|m| {
            m[key]
                .as_str()
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    };
    if marked("kustomize.toolkit.fluxcd.io/reconcile", "disabled")
        || marked("kustomize.toolkit.fluxcd.io/ssa", "ignore")
    {
        return Ok(Outcome::Skipped);
    }
    let api_version = text(&object["apiVersion"]);
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, text(&object["kind"]));
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("{} dry-run failed: unknown kind", subject(object)))?;
    let api = api_for(client, &resource, capabilities.scope, object);
    let name = text(&object["metadata"]["name"]);
    let existing = api
        .get_opt(name)
        .await
        .with_context(|| format!("{} dry-run failed", subject(object)))?;
    let Some(existing) = existing else {
        return Ok(Outcome::Created);
    };
    if marked("kustomize.toolkit.fluxcd.io/ssa", "ifnotpresent") {
        return Ok(Outcome::Skipped);
    }
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let merged = api
        .patch(name, &params, &Patch::Apply(object))
        .await
        .with_context(|| format!("{} dry-run failed", subject(object)))?;
    let (live, merged) = (
        comparable(serde_json::to_value(existing)?),
        comparable(serde_json::to_value(merged)?),
    );
    if live == merged {
        return Ok(Outcome::Unchanged);
    }
    let mut fields = Vec::new();
    changed_fields(&live, &merged, "", 0, &mut fields);
    if fields.len() > MAX_FIELDS {
        let more = fields.len() - MAX_FIELDS;
        fields.truncate(MAX_FIELDS);
        fields.push(format!("... and {more} more changes\n"));
    }
    Ok(Outcome::Drifted(fields))
}

fn api_for(
    client: &kube::Client,
    resource: &ApiResource,
    scope: Scope,
    object: &Value,
) -> Api<DynamicObject> {
    match scope {
        Scope::Namespaced => {
            let namespace = text(&object["metadata"]["namespace"]);
            Api::namespaced_with(client.clone(), namespace, resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), resource),
    }
}

/// The object without what the API server keeps for itself (status and the server-set
/// metadata), as ssa compares drift; Secret values masked so none reach the output.
fn comparable(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in [
            "managedFields",
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
        ] {
            metadata.remove(key);
        }
    }
    if object["kind"] == "Secret" && object["apiVersion"] == "v1" {
        for field in ["data", "stringData"] {
            if let Some(values) = object[field].as_object_mut() {
                for (key, value) in values.iter_mut() {
                    // Different values stay different, equal ones equal, none is shown.
                    let digest = format!("{:x}", fingerprint(key, value));
                    *value = Value::String(format!("*** ({digest})"));
                }
            }
        }
    }
    object
}

/// A short fingerprint of a Secret value, so that a changed value shows as changed without
/// being printed.
fn fingerprint(key: &str, value: &Value) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    value.to_string().hash(&mut hasher);
    hasher.finish() & 0xffff_ffff
}

/// dyff's report of every changed field (`flux diff` prints it with the header left out): the
/// path, then what changed, then an empty line.
fn changed_fields(live: &Value, merged: &Value, path: &str, depth: usize, out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (live, merged) {
        (Value::Object(before), Value::Object(after)) if depth < MAX_DEPTH => {
            let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
            let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
            let here = if path.is_empty() {
                "(root level)"
            } else {
                path
            };
            if !added.is_empty() {
                out.push(entries(here, "added", "+", &added, after));
            }
            if !removed.is_empty() {
                out.push(entries(here, "removed", "-", &removed, before));
            }
            for (key, value) in before {
                if let Some(other) = after.get(key)
                    && other != value
                {
                    changed_fields(value, other, &join(key), depth + 1, out);
                }
            }
        }
        (Value::Array(before), Value::Array(after))
            if before.len() == after.len() && depth < MAX_DEPTH =>
        {
            for (index, (value, other)) in before.iter().zip(after).enumerate() {
                if value != other {
                    changed_fields(value, other, &format!("{path}.{index}"), depth + 1, out);
                }
            }
        }
        _ => out.push(format!(
            "{path}\n± value change\n{}{}\n",
            block("- ", live),
            block("+ ", merged)
        )),
    }
}

/// A value after a `- ` or `+ ` sign: a scalar on the sign's line, a map or list below it.
fn block(sign: &str, value: &Value) -> String {
    match value {
        Value::Object(_) | Value::Array(_) => {
            let mut text = String::new();
            render(value, 1, &mut text);
            format!("{}\n{text}", sign.trim_end())
        }
        scalar_value => format!("{sign}{}\n", scalar(scalar_value)),
    }
}

/// `one`, `two`, ... as dyff counts entries.
fn count(amount: usize) -> String {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    amount
        .checked_sub(1)
        .and_then(|i| WORDS.get(i))
        .map_or_else(|| amount.to_string(), |w| (*w).to_string())
}

fn entries(
    path: &str,
    verb: &str,
    sign: &str,
    keys: &[&String],
    map: &serde_json::Map<String, Value>,
) -> String {
    let noun = if keys.len() == 1 {
        "map entry"
    } else {
        "map entries"
    };
    let mut text = format!("{path}\n{sign} {} {noun} {verb}:\n", count(keys.len()));
    let selected: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| ((*k).clone(), map[k.as_str()].clone()))
        .collect();
    render(&Value::Object(selected), 1, &mut text);
    text.push('\n');
    text
}

/// A map or list as dyff shows it: `key: value` lines, nested ones two spaces deeper, list
/// items after `- `, strings unquoted.
fn render(value: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        render(value, indent + 1, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        render(value, indent + 1, out);
                    }
                    other => out.push_str(&format!("{pad}{key}: {}\n", scalar(other))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        let mut nested = String::new();
                        render(item, indent + 1, &mut nested);
                        // The first line of the item goes after the dash.
                        let inner = "  ".repeat(indent + 1);
                        let nested = nested.replacen(&inner, &format!("{pad}- "), 1);
                        out.push_str(&nested);
                    }
                    other => out.push_str(&format!("{pad}- {}\n", scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_fields_read_like_dyff() {
        let live = json!({"spec": {"replicas": 1, "template": {"x": "a"}}, "data": {"a": "1"}});
        let merged =
            json!({"spec": {"replicas": 2, "template": {"x": "a"}}, "data": {"a": "1", "b": "2"}});
        let mut out = Vec::new();
        changed_fields(&live, &merged, "", 0, &mut out);
        assert_eq!(
            out,
            [
                "data\n+ one map entry added:\n  b: 2\n\n",
                "spec.replicas\n± value change\n- 1\n+ 2\n\n"
            ]
        );
        let mut out = Vec::new();
        let live = json!({"metadata": {"name": "x"}});
        let merged = json!({"metadata": {"name": "x", "annotations": {"drift": "yes"}, "labels": {"a": "1"}}});
        changed_fields(&live, &merged, "", 0, &mut out);
        assert_eq!(
            out,
            [
                "metadata\n+ two map entries added:\n  annotations:\n    drift: yes\n  labels:\n    a: 1\n\n"
            ]
        );
    }

    #[test]
    fn stale_inventory_entries_are_deleted_subjects() {
        let ks = json!({"status": {"inventory": {"entries": [
            {"id": "apps_web_apps_Deployment", "v": "v1"},
            {"id": "_apps__Namespace", "v": "v1"}]}}});
        let applied = BTreeSet::from([(
            String::new(),
            "apps".to_string(),
            String::new(),
            "Namespace".to_string(),
        )]);
        assert_eq!(stale_entries(&ks, &applied), ["Deployment/apps/web"]);
    }

    #[test]
    fn secret_values_never_show() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"token": "c2VjcmV0"}});
        let shown = comparable(secret).to_string();
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
