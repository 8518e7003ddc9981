//! `ferroflux export` and `ferroflux delete`: flux's `export` (each object as `sigs.k8s.io/yaml`
//! prints it after a `---` line, with only apiVersion, kind, name, namespace, labels,
//! annotations and spec) and `delete` (flux's confirmation prompt unless `--silent`).

use std::borrow::Cow;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use serde_json::{Map, Value};

use ferroflux_gocompat::yaml::emit::{self, Flavor, Node};

use super::cluster::{self, ClusterArgs};
use super::get::Shown;
use super::suspend::Target;

/// Export Flux objects in YAML.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    target: Target,
    /// Export all objects of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Delete a Flux object.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(subcommand)]
    target: Target,
    /// Delete without asking for confirmation.
    #[arg(short, long, global = true)]
    silent: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let (shown, _, names) = args.target.resolve();
    let name = names.first().cloned();
    if !args.all && name.is_none() {
        bail!("name is required");
    }
    let namespace = args.cluster.namespace.as_str();
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &shown.resource());
        let objects = if args.all {
            let list = api.list(&ListParams::default()).await?.items;
            if list.is_empty() {
                bail!("no objects found in {namespace} namespace");
            }
            list
        } else {
            let name = name.unwrap_or_default();
            vec![get_or_not_found(&api, shown, &name).await?]
        };
        for object in objects {
            out!("{}", exported(shown, &serde_json::to_value(object)?))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The object, or the API server's NotFound in client-go's words.
async fn get_or_not_found(
    api: &Api<DynamicObject>,
    shown: Shown,
    name: &str,
) -> anyhow::Result<DynamicObject> {
    match api.get_opt(name).await? {
        Some(object) => Ok(object),
        None => bail!("{}.{} \"{name}\" not found", shown.plural, shown.group),
    }
}

/// What `flux export` prints for one object.
fn exported(shown: Shown, object: &Value) -> String {
    let mut metadata = Map::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        let value = &object["metadata"][key];
        let empty = value.as_object().is_some_and(Map::is_empty);
        if !value.is_null() && !empty {
            metadata.insert(key.to_string(), value.clone());
        }
    }
    let mut exported = Map::new();
    exported.insert(
        "apiVersion".to_string(),
        Value::String(format!("{}/{}", shown.group, shown.version)),
    );
    exported.insert("kind".to_string(), Value::String(shown.kind.to_string()));
    exported.insert("metadata".to_string(), Value::Object(metadata));
    let spec = &object["spec"];
    if !spec.is_null() {
        exported.insert("spec".to_string(), as_go_prints(None, spec));
    }
    let text = emit::to_string(&node(&Value::Object(exported)), Flavor::Sigs);
    format!("---\n{}\n", text.trim())
}

/// The fields of Flux's API types that are `metav1.Duration`s: Go prints them normalized
/// (`1h` as `1h0m0s`).
const DURATIONS: &[&str] = &["interval", "retryInterval", "timeout"];

/// A spec as flux's round trip through its Go types prints it: durations normalized and
/// `false` booleans left out (every Flux boolean is `omitempty` but a Kustomization's `prune`).
fn as_go_prints(key: Option<&str>, value: &Value) -> Value {
    match value {
        Value::String(text) if key.is_some_and(|k| DURATIONS.contains(&k)) => {
            match ferroflux_gocompat::duration::parse(text) {
                Ok(nanos) => Value::String(ferroflux_gocompat::duration::format(nanos)),
                Err(_) => value.clone(),
            }
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| **v != Value::Bool(false) || k.as_str() == "prune")
                .map(|(k, v)| (k.clone(), as_go_prints(Some(k), v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| as_go_prints(None, v)).collect()),
        _ => value.clone(),
    }
}

/// The YAML writer's view of a JSON value, keys sorted as `sigs.k8s.io/yaml` sorts them.
pub(crate) fn node(value: &Value) -> Node<'_> {
    match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Node::Float(n.as_f64().unwrap_or_default()), Node::Int),
        Value::String(s) => Node::Str(Cow::Borrowed(s)),
        Value::Array(items) => Node::Seq(items.iter().map(node).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(Cow<'_, str>, Node<'_>)> = map
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), node(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Node::Map(entries)
        }
    }
}

pub fn delete(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let (shown, human, names) = args.target.resolve();
    let Some(name) = names.first().cloned() else {
        bail!("{human} name is required");
    };
    let namespace = args.cluster.namespace.clone();
    let silent = args.silent;
    cluster::block_on(args.cluster.timeout()?, async {
        let client = args.cluster.client().await?;
        let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &shown.resource());
        get_or_not_found(&api, shown, &name).await?;
        if !silent && !confirmed(&format!("Are you sure you want to delete this {human}"))? {
            bail!("aborting");
        }
        eprintln!("► deleting {human} {name} in {namespace} namespace");
        api.delete(&name, &DeleteParams::default()).await?;
        eprintln!("✔ {human} deleted");
        Ok(ExitCode::SUCCESS)
    })
}

/// promptui's confirmation: `? LABEL? [y/N]`, yes only for `y`/`Y`/`yes`; no terminal or an
/// empty answer is no.
fn confirmed(label: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, Read as _, Write as _};
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "? {label}? [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    // One line of at most 1 KiB: a confirmation answer, bounded.
    let read = std::io::stdin().lock().take(1024).read_line(&mut answer)?;
    writeln!(stderr)?;
    Ok(read > 0 && matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn export_keeps_only_what_flux_exports() {
        let object = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "uid": "1", "generation": 3,
                "resourceVersion": "9", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"team": "a"}, "annotations": {}, "managedFields": []},
            "spec": {"interval": "10m", "path": "./apps", "prune": true, "force": false,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            "status": {"observedGeneration": 3}
        });
        assert_eq!(
            exported(super::super::get::KUSTOMIZATIONS, &object),
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
             labels:\n    team: a\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m0s\n  \
             path: ./apps\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
        );
    }
}
