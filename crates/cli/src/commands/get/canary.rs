//! `ferroflux get canaries`: Canaries as `kubectl get canaries` prints them with Flagger's
//! printer columns (NAME, STATUS, WEIGHT, LASTTRANSITIONTIME; NAMESPACE first with `-A`).

use std::process::ExitCode;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use crate::commands::cluster::{self, ClusterArgs};

/// Flagger's columns of priority 0: header and JSON path.
const COLUMNS: &[(&str, &[&str])] = &[
    ("STATUS", &["status", "phase"]),
    ("WEIGHT", &["status", "canaryWeight"]),
    ("LASTTRANSITIONTIME", &["status", "lastTransitionTime"]),
];

/// A cell as kubectl prints a printer column: strings as they are, numbers and booleans as
/// JSON writes them, `<none>` when the field is unset.
fn cell(object: &Value, path: &[&str]) -> String {
    match path.iter().fold(object, |v, key| &v[*key]) {
        Value::Null => "<none>".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// kubectl's table (Go's tabwriter with minimum width 6 and padding 3, the last column
/// unpadded).
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let lines: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().cloned())
        .collect();
    let columns = header.len();
    let mut widths = vec![0; columns];
    for line in &lines {
        for (column, text) in line.iter().enumerate().take(columns) {
            widths[column] = widths[column].max((text.chars().count() + 3).max(6));
        }
    }
    let mut out = String::new();
    for line in lines {
        for (column, text) in line.iter().enumerate() {
            out.push_str(text);
            if column + 1 < columns {
                let pad = widths[column].saturating_sub(text.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The table of the Canaries of `namespace` (all with `None`), or kubectl's answer for none.
pub async fn table(
    client: &kube::Client,
    namespace: Option<&str>,
    name: Option<&str>,
    header: bool,
) -> anyhow::Result<String> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flagger.app", "v1beta1", "Canary"),
        "canaries",
    );
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut params = ListParams::default();
    if let Some(name) = name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    let mut objects: Vec<Value> = api
        .list(&params)
        .await?
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).unwrap_or_default())
        .collect();
    if objects.is_empty() {
        if let Some(name) = name {
            anyhow::bail!("canaries.flagger.app \"{name}\" not found");
        }
        return Ok(match namespace {
            Some(namespace) => format!("No resources found in {namespace} namespace.\n"),
            None => "No resources found\n".to_string(),
        });
    }
    let key = |o: &Value| {
        let meta = &o["metadata"];
        (
            meta["namespace"].as_str().unwrap_or_default().to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        )
    };
    objects.sort_by_key(key);
    let mut head = Vec::new();
    if namespace.is_none() {
        head.push("NAMESPACE");
    }
    head.push("NAME");
    head.extend(COLUMNS.iter().map(|(h, _)| *h));
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let (ns, name) = key(o);
            let mut row = Vec::new();
            if namespace.is_none() {
                row.push(ns);
            }
            row.push(name);
            row.extend(COLUMNS.iter().map(|(_, path)| cell(o, path)));
            row
        })
        .collect();
    let text = render(&head, &rows);
    Ok(if header {
        text
    } else {
        text.split_once('\n')
            .map_or(text.clone(), |(_, rest)| rest.to_string())
    })
}

/// `ferroflux get canaries [NAME] [-A]`.
pub fn run(
    args: &ClusterArgs,
    all_namespaces: bool,
    name: Option<&str>,
    header: bool,
) -> anyhow::Result<ExitCode> {
    let namespace = (!all_namespaces).then_some(args.namespace.as_str());
    cluster::block_on(args.timeout()?, async {
        let client = args.client().await?;
        let text = table(&client, namespace, name, header).await?;
        out!("{text}")?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_as_kubectl_prints_flaggers_columns() {
        let head = ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"];
        let object = serde_json::json!({"status": {"phase": "Progressing", "canaryWeight": 10,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}});
        let row: Vec<String> = std::iter::once("podinfo".to_string())
            .chain(COLUMNS.iter().map(|(_, p)| cell(&object, p)))
            .collect();
        assert_eq!(
            render(&head, &[row]),
            "NAME      STATUS        WEIGHT   LASTTRANSITIONTIME\n\
             podinfo   Progressing   10       2026-01-01T00:00:00Z\n"
        );
        assert_eq!(cell(&serde_json::json!({}), &["status", "phase"]), "<none>");
    }
}
