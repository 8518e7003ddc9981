//! `ferroflux create helmrelease|hr`: the HelmRelease (`helm.toolkit.fluxcd.io/v2`) that
//! `flux create helmrelease` generates for a chart of a HelmRepository, GitRepository or Bucket,
//! with `--values` files merged as flux merges them.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::{Map, Value, json};

use super::CreateArgs;
use super::object::{self, Generated};

/// Create or update a HelmRelease.
#[derive(Debug, Args)]
pub struct HelmReleaseArgs {
    /// The HelmRelease's name.
    name: Option<String>,
    /// Source that contains the chart (`<kind>/<name>[.<namespace>]`, kind one of
    /// HelmRepository, GitRepository, Bucket).
    #[arg(long)]
    source: Option<String>,
    /// Helm chart name or path.
    #[arg(long, default_value = "")]
    chart: String,
    /// Helm chart version, accepts a semver range.
    #[arg(long, default_value = "")]
    chart_version: String,
    /// The interval at which to check for new chart versions.
    #[arg(long)]
    chart_interval: Option<String>,
    /// Name used for the Helm release (default `[<target-namespace>-]<name>`).
    #[arg(long = "release-name", default_value = "")]
    release_name: String,
    /// Namespace to install this release (default: the HelmRelease's namespace).
    #[arg(long, default_value = "")]
    target_namespace: String,
    /// Namespace to store the Helm release (default: the target namespace).
    #[arg(long, default_value = "")]
    storage_namespace: String,
    /// Create the target namespace if it does not exist.
    #[arg(long)]
    create_target_namespace: bool,
    /// The service account to impersonate when reconciling this HelmRelease.
    #[arg(long, default_value = "")]
    service_account: String,
    /// The reconcile strategy of the generated HelmChart (ChartVersion or Revision).
    #[arg(long, default_value = "ChartVersion")]
    reconcile_strategy: String,
    /// Local paths to values.yaml files, also accepts comma-separated values.
    #[arg(long = "values", value_delimiter = ',')]
    values: Vec<std::path::PathBuf>,
    /// Objects holding a values.yaml data key (`<kind>/<name>`, kind Secret or ConfigMap).
    #[arg(long = "values-from", value_delimiter = ',')]
    values_from: Vec<String>,
    /// HelmReleases that must be ready before this one (`<name>` or `<namespace>/<name>`).
    #[arg(long = "depends-on", value_delimiter = ',')]
    depends_on: Vec<String>,
}

const HELM_RELEASE: Generated = Generated {
    group: ferroflux_api::helm::GROUP,
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
};

/// The source kinds flux's `--source` flag accepts, in its order.
const SOURCE_KINDS: &[&str] = &["HelmRepository", "GitRepository", "Bucket"];

/// The kinds `--values-from` accepts, in flux's order.
const VALUES_FROM_KINDS: &[&str] = &["Secret", "ConfigMap"];

/// Most `--values` files read for one HelmRelease.
const MAX_VALUES_FILES: usize = 64;

pub fn run(args: &HelmReleaseArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    object::finish(HELM_RELEASE, &helm_release(args, create)?, create)
}

/// `--source` as flux's flag reads it: kind matched case-insensitively to its spelling.
fn source(value: &str) -> anyhow::Result<(&'static str, &str, &str)> {
    let fail =
        |why: String| anyhow::anyhow!("invalid argument {value:?} for \"--source\" flag: {why}");
    if value.trim().is_empty() {
        return Err(fail(format!(
            "no helm chart source given, please specify source that contains the chart in the format '<kind>/<name>.<namespace>', where kind must be one of: ({})",
            SOURCE_KINDS.join(", ")
        )));
    }
    let (kind, name, namespace) = object::kind_name_namespace(value);
    if kind.is_empty() || name.is_empty() {
        return Err(fail(format!(
            "invalid helm chart source '{value}', must be in format <kind>/<name>"
        )));
    }
    let Some(known) = SOURCE_KINDS.iter().find(|k| k.eq_ignore_ascii_case(kind)) else {
        return Err(fail(format!(
            "source kind '{kind}' is not supported, must be one of: {}",
            SOURCE_KINDS.join(", ")
        )));
    };
    Ok((known, name, namespace))
}

fn helm_release(args: &HelmReleaseArgs, create: &CreateArgs) -> anyhow::Result<Value> {
    // Flags are checked when cobra parses them, before the NAME.
    let source = args.source.as_deref().map(source).transpose()?;
    let interval = object::duration("interval", create.interval())?;
    let chart_interval = args
        .chart_interval
        .as_deref()
        .map(|v| object::duration("chart-interval", v))
        .transpose()?;
    let name = object::checked_name(args.name.as_deref())?;
    if args.chart.is_empty() {
        bail!("chart or chart-ref is required");
    }
    let metadata = object::metadata(name, create)?;
    if !["Revision", "ChartVersion"].contains(&args.reconcile_strategy.as_str()) {
        bail!(
            "'{}' is an invalid reconcile strategy(valid: Revision, ChartVersion)",
            args.reconcile_strategy
        );
    }
    let (kind, source_name, source_namespace) = source.unwrap_or(("", "", ""));
    let mut chart = json!({"chart": args.chart, "reconcileStrategy": args.reconcile_strategy,
        "sourceRef": object::reference(kind, source_name, source_namespace)});
    if !args.chart_version.is_empty() {
        chart["version"] = json!(args.chart_version);
    }
    // Go leaves a zero `--chart-interval` out.
    if let Some(every) = chart_interval.filter(|every| every != "0s") {
        chart["interval"] = json!(every);
    }
    let mut spec = json!({"chart": {"spec": chart}, "interval": interval});
    let storage_namespace = if args.storage_namespace.is_empty() {
        &args.target_namespace
    } else {
        &args.storage_namespace
    };
    for (field, value) in [
        ("releaseName", &args.release_name),
        ("targetNamespace", &args.target_namespace),
        ("storageNamespace", storage_namespace),
        ("serviceAccountName", &args.service_account),
    ] {
        if !value.is_empty() {
            spec[field] = json!(value);
        }
    }
    if args.create_target_namespace {
        spec["install"] = json!({"createNamespace": true});
    }
    let depends_on = object::depends_on(&args.depends_on);
    if !depends_on.is_empty() {
        spec["dependsOn"] = json!(depends_on);
    }
    if !args.values.is_empty() {
        spec["values"] = values(&args.values)?;
    }
    if !args.values_from.is_empty() {
        spec["valuesFrom"] = values_from(&args.values_from)?;
    }
    Ok(
        json!({"apiVersion": format!("{}/{}", HELM_RELEASE.group, HELM_RELEASE.version),
        "kind": HELM_RELEASE.kind, "metadata": metadata, "spec": spec}),
    )
}

/// The `--values` files merged as flux merges them (`transform.MergeMaps`: later files win,
/// maps merge key by key), numbers as they come out of Go's `float64` round trip.
fn values(files: &[std::path::PathBuf]) -> anyhow::Result<Value> {
    if files.len() > MAX_VALUES_FILES {
        bail!("at most {MAX_VALUES_FILES} --values files are read");
    }
    let mut merged = Map::new();
    for file in files {
        let shown = file.display();
        let mut text = String::new();
        std::fs::File::open(file)
            .and_then(|f| {
                // One byte over the budget lets the YAML reader refuse the file in its words.
                let limit = ferroflux_gocompat::yaml::BUDGET.max_bytes as u64 + 1;
                f.take(limit).read_to_string(&mut text)
            })
            .map_err(|err| {
                anyhow::anyhow!(
                    "reading values from {shown} failed: open {shown}: {}",
                    io_text(&err)
                )
            })?;
        let parsed: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            ferroflux_gocompat::yaml::from_str(&text).map_err(|err| {
                anyhow::anyhow!("converting values to JSON from {shown} failed: {err}")
            })?
        };
        let map = match go_numbers(parsed) {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => bail!(
                "unmarshaling values from {shown} failed: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&other)
            ),
        };
        merge(&mut merged, map);
    }
    Ok(Value::Object(merged))
}

/// `--values-from` references, the kind matched case-insensitively to its spelling.
fn values_from(references: &[String]) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for reference in references {
        let (kind, name) = object::kind_name(reference);
        if kind.is_empty() {
            bail!(
                "invalid Kubernetes object reference '{reference}', must be in format <kind>/<name>"
            );
        }
        let Some(kind) = VALUES_FROM_KINDS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(kind))
        else {
            bail!(
                "reference kind '{kind}' is not supported, must be one of: {}",
                VALUES_FROM_KINDS.join(", ")
            );
        };
        out.push(json!({"kind": kind, "name": name}));
    }
    Ok(Value::Array(out))
}

/// Go's `syscall.Errno` text for the usual failures of opening a file.
pub(super) fn io_text(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string(),
    }
}

/// encoding/json's name of a JSON value's type.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// `transform.MergeMaps(into, from)`.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Numbers after flux's trip through Go's `float64` and back to YAML: whole numbers below
/// 2^63 print as integers, others as floats.
fn go_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            // Below 2^63 the cast is exact for whole floats.
            if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18 {
                json!(f as i64)
            } else {
                json!(f)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(go_numbers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, go_numbers(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_merge_like_flux() {
        let mut merged = Map::new();
        merge(
            &mut merged,
            json!({"image": {"tag": "1", "pull": "Always"}, "list": [1]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        merge(
            &mut merged,
            json!({"image": {"tag": "2"}, "list": [2, 3]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(
            Value::Object(merged),
            json!({"image": {"tag": "2", "pull": "Always"}, "list": [2, 3]})
        );
        assert_eq!(go_numbers(json!([1.0, 1.5, 3])), json!([1, 1.5, 3]));
    }

    #[test]
    fn sources_are_read_like_flux_flag() {
        assert_eq!(
            source("helmrepository/podinfo.flux-system").ok(),
            Some(("HelmRepository", "podinfo", "flux-system"))
        );
        assert_eq!(
            source("Foo/bar").err().map(|e| e.to_string()).as_deref(),
            Some(
                "invalid argument \"Foo/bar\" for \"--source\" flag: source kind 'Foo' is not supported, must be one of: HelmRepository, GitRepository, Bucket"
            )
        );
    }
}
