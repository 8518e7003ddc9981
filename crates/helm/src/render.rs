//! Helm's rendering of a chart: values coalesced as Helm does, every template of the chart
//! and its enabled subcharts rendered on the [`HelmEngine`](ferroflux_gotemplate::helm::HelmEngine),
//! the output split into the release manifest (in Helm's install order), hooks, `NOTES.txt`
//! and CRDs.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroflux_gotemplate::{HelmEngine, Map, ScopedTemplate, Value as TValue};
use serde_json::Value;

use crate::chart::Chart;
use crate::values::{Table, coalesce_values, process_dependencies};

/// The Kubernetes version `helm template` assumes (Helm v4.3's client-go, v0.37, plus one).
pub const DEFAULT_KUBE_VERSION: &str = "v1.37.0";

/// The group/versions `helm template` assumes, as Helm v4.3 lists them.
const DEFAULT_API_VERSIONS: &str = include_str!("default_api_versions.txt");

/// How the release being rendered is named and what operation renders it (`.Release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseOptions {
    /// `.Release.Name`.
    pub name: String,
    /// `.Release.Namespace`.
    pub namespace: String,
    /// `.Release.Revision`.
    pub revision: u32,
    /// `.Release.IsInstall`.
    pub is_install: bool,
    /// `.Release.IsUpgrade`.
    pub is_upgrade: bool,
}

/// The cluster the chart is rendered for (`.Capabilities`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The Kubernetes version, e.g. `v1.33.0`; empty means Helm's default.
    pub kube_version: String,
    /// Extra group/versions (and `group/version/Kind`s) on top of Helm's defaults.
    pub api_versions: Vec<String>,
}

/// Backs the `lookup` template function: `(apiVersion, kind, namespace, name)` to the object
/// (or list) as JSON, `{}` when nothing is found, or an error message.
pub type Lookup = Arc<dyn Fn(&str, &str, &str, &str) -> Result<Value, String> + Send + Sync>;

/// One hook of a rendered chart (`helm.sh/hook`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hook {
    /// `metadata.name`.
    pub name: String,
    /// `kind`.
    pub kind: String,
    /// The template path it came from.
    pub path: String,
    /// The document.
    pub manifest: String,
    /// The events (`pre-install`, `post-upgrade`, `test`, ...).
    pub events: Vec<String>,
    /// `helm.sh/hook-weight`.
    pub weight: i32,
    /// `helm.sh/hook-delete-policy`, as written (lower-cased).
    pub delete_policies: Vec<String>,
}

/// What a chart renders to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// Helm's release manifest: `---\n# Source: PATH\nDOC\n` per document, in install order.
    pub manifest: String,
    /// The hooks, in Helm's install order by kind (Helm sorts by weight when it runs them).
    pub hooks: Vec<Hook>,
    /// The top chart's `NOTES.txt`, rendered.
    pub notes: String,
    /// The CRDs of the chart and its subcharts: (path, content).
    pub crds: Vec<(String, String)>,
    /// The coalesced values (the chart's values with the user's on top), as templates saw
    /// them as `.Values`.
    pub values: Value,
}

/// A chart cannot be rendered; messages are Helm's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The values break `values.schema.json`.
    #[error(
        "values don't meet the specifications of the schema(s) in the following chart(s):\n{0}"
    )]
    Schema(String),
    /// The chart's `kubeVersion` excludes the target cluster.
    #[error(
        "chart requires kubeVersion: {required} which is incompatible with Kubernetes {actual}"
    )]
    KubeVersion {
        /// The chart's range.
        required: String,
        /// The cluster's version.
        actual: String,
    },
    /// A library chart cannot be installed.
    #[error("library charts are not installable")]
    Library,
    /// Dependencies or values cannot be processed.
    #[error("{0}")]
    Values(String),
    /// A template fails to parse or execute.
    #[error("{0}")]
    Template(String),
    /// The rendered output is not valid YAML where Helm needs it to be.
    #[error("{0}")]
    Manifest(String),
}

/// Renders `chart` with user `values` (`-f`/`--set` merged) as Helm's install does in
/// `template` mode (or for a controller, with `lookup` backed by the cluster).
///
/// # Errors
/// [`RenderError`].
pub fn render(
    chart: &Chart,
    values: &Value,
    release: &ReleaseOptions,
    caps: &Capabilities,
    lookup: Option<Lookup>,
) -> Result<Rendered, RenderError> {
    render_with(
        chart,
        values,
        release,
        caps,
        lookup,
        &RenderOptions::default(),
    )
}

/// What an install or upgrade may leave out of rendering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Helm's `SkipSchemaValidation` (`--skip-schema-validation`): the values are not
    /// checked against the charts' `values.schema.json`.
    pub skip_schema_validation: bool,
}

/// [`render`] with `options`.
///
/// # Errors
/// [`RenderError`].
pub fn render_with(
    chart: &Chart,
    values: &Value,
    release: &ReleaseOptions,
    caps: &Capabilities,
    lookup: Option<Lookup>,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    if !matches!(chart.metadata.chart_type.as_str(), "" | "application") {
        return Err(RenderError::Values(format!(
            "{} charts are not installable",
            chart.metadata.chart_type
        )));
    }
    check_dependencies(chart)?;
    let user: Table = match values {
        Value::Object(m) => m.clone(),
        _ => Table::new(),
    };
    let mut chart = chart.clone();
    process_dependencies(&mut chart, &user)
        .map_err(|e| RenderError::Values(format!("chart dependencies processing failed: {e}")))?;
    let kube_version = if caps.kube_version.is_empty() {
        DEFAULT_KUBE_VERSION.to_string()
    } else {
        caps.kube_version.clone()
    };
    let vals = coalesce_values(&chart, &user, false).map_err(RenderError::Values)?;
    if !options.skip_schema_validation {
        crate::schema::validate(&chart, &vals).map_err(RenderError::Schema)?;
    }
    let normalized = normalize_kube_version(&kube_version);
    if !chart.metadata.kube_version.is_empty()
        && !kube_version_compatible(&chart.metadata.kube_version, &normalized)
    {
        return Err(RenderError::KubeVersion {
            required: chart.metadata.kube_version.clone(),
            actual: if kube_version.starts_with('v') {
                kube_version.clone()
            } else {
                format!("v{kube_version}")
            },
        });
    }
    let mut api_versions: Vec<String> = DEFAULT_API_VERSIONS.lines().map(str::to_string).collect();
    api_versions.extend(caps.api_versions.iter().cloned());
    let caps_value = capabilities_value(api_versions, &kube_version);
    let top = Top {
        release: release_value(release),
        capabilities: caps_value,
    };
    let mut templates = BTreeMap::new();
    let vals_value = TValue::from_json(&Value::Object(vals.clone()));
    all_templates(&chart, &top, &vals_value, None, &mut templates);
    let mut engine = HelmEngine::new(false);
    if let Some(lookup) = lookup {
        engine = engine
            .with_lookup(move |a, k, ns, n| lookup(a, k, ns, n).map(|v| TValue::from_json(&v)));
    }
    let mut files = engine
        .render_scoped(&templates)
        .map_err(|e| RenderError::Template(helm_template_error(&e)))?;
    let notes_name = format!("{}/templates/NOTES.txt", chart.name());
    let notes = files.get(&notes_name).cloned().unwrap_or_default();
    files.retain(|k, _| !k.ends_with("NOTES.txt"));
    let (hooks, manifests) = crate::manifest::sort_manifests(&files)?;
    let mut manifest = String::new();
    for m in &manifests {
        manifest.push_str(&format!("---\n# Source: {}\n{}\n", m.name, m.content));
    }
    Ok(Rendered {
        manifest,
        hooks,
        notes,
        crds: crd_objects(&chart),
        values: Value::Object(vals),
    })
}

/// Helm's `CheckDependencies`: every dependency of `Chart.yaml` present under `charts/`.
fn check_dependencies(chart: &Chart) -> Result<(), RenderError> {
    let missing: Vec<&str> = chart
        .metadata
        .dependencies
        .iter()
        .filter(|r| !chart.dependencies.iter().any(|d| d.name() == r.name))
        .map(|r| r.name.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(RenderError::Values(format!(
        "an error occurred while checking for chart dependencies. You may need to run 'helm dependency build' to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {}",
        missing.join(", ")
    )))
}

/// `k8s.io/apimachinery`'s generic version, printed as `vMAJOR.MINOR.PATCH`.
fn normalize_kube_version(v: &str) -> String {
    let t = v.trim_start_matches('v');
    let core: String = t
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<&str> = core.split('.').filter(|p| !p.is_empty()).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    format!("v{}", parts[..3].join("."))
}

/// Helm's `IsCompatibleRange` for a chart's `kubeVersion`.
fn kube_version_compatible(constraint: &str, version: &str) -> bool {
    let Ok(v) = ferroflux_semver::Version::parse(version) else {
        return false;
    };
    ferroflux_semver::Constraints::parse(constraint).is_ok_and(|c| c.check(&v))
}

/// The objects every chart of a render shares.
struct Top {
    release: TValue,
    capabilities: TValue,
}

fn release_value(r: &ReleaseOptions) -> TValue {
    let mut m = Map::new();
    m.insert("Name".into(), TValue::str(&r.name));
    m.insert("Namespace".into(), TValue::str(&r.namespace));
    m.insert("IsUpgrade".into(), TValue::Bool(r.is_upgrade));
    m.insert("IsInstall".into(), TValue::Bool(r.is_install));
    m.insert("Revision".into(), TValue::Int(i64::from(r.revision)));
    m.insert("Service".into(), TValue::str("Helm"));
    TValue::map(m)
}

fn capabilities_value(api_versions: Vec<String>, kube_version: &str) -> TValue {
    let caps = ferroflux_gotemplate::capabilities(api_versions, kube_version);
    let TValue::Map(cell) = &caps else {
        return caps;
    };
    let mut m = cell.snapshot();
    let mut hv = Map::new();
    hv.insert("Version".into(), TValue::str("v4.3"));
    hv.insert("GitCommit".into(), TValue::str(""));
    hv.insert("GitTreeState".into(), TValue::str(""));
    hv.insert("GoVersion".into(), TValue::str("go1.26.8"));
    hv.insert("KubeClientVersion".into(), TValue::str("v1.37"));
    m.insert("HelmVersion".into(), TValue::map(hv));
    TValue::map(m)
}

/// `.Chart`: the metadata as Helm's `MetadataAsMap` gives it (Go field names) plus `IsRoot`.
fn chart_value(chart: &Chart, is_root: bool) -> TValue {
    let md = &chart.metadata;
    let strs = |v: &[String]| TValue::list(v.iter().map(TValue::str).collect());
    let mut m = Map::new();
    m.insert("Name".into(), TValue::str(&md.name));
    m.insert("Home".into(), TValue::str(&md.home));
    m.insert("Sources".into(), strs(&md.sources));
    m.insert("Version".into(), TValue::str(&md.version));
    m.insert("Description".into(), TValue::str(&md.description));
    m.insert("Keywords".into(), strs(&md.keywords));
    let maintainers = md
        .maintainers
        .iter()
        .map(|x| {
            let mut mm = Map::new();
            mm.insert("Name".into(), TValue::str(&x.name));
            mm.insert("Email".into(), TValue::str(&x.email));
            mm.insert("URL".into(), TValue::str(&x.url));
            TValue::map(mm)
        })
        .collect();
    m.insert("Maintainers".into(), TValue::list(maintainers));
    m.insert("Icon".into(), TValue::str(&md.icon));
    m.insert("APIVersion".into(), TValue::str(&md.api_version));
    m.insert("Condition".into(), TValue::str(&md.condition));
    m.insert("Tags".into(), TValue::str(&md.tags));
    m.insert("AppVersion".into(), TValue::str(&md.app_version));
    m.insert("Deprecated".into(), TValue::Bool(md.deprecated));
    let annotations = md
        .annotations
        .iter()
        .map(|(k, v)| (k.as_str().into(), TValue::str(v)))
        .collect();
    m.insert("Annotations".into(), TValue::map(annotations));
    m.insert("KubeVersion".into(), TValue::str(&md.kube_version));
    let deps = md
        .dependencies
        .iter()
        .map(|d| {
            let mut dm = Map::new();
            dm.insert("Name".into(), TValue::str(&d.name));
            dm.insert("Version".into(), TValue::str(&d.version));
            dm.insert("Repository".into(), TValue::str(&d.repository));
            dm.insert("Condition".into(), TValue::str(&d.condition));
            dm.insert("Tags".into(), strs(&d.tags));
            dm.insert("Enabled".into(), TValue::Bool(d.enabled));
            let iv = d.import_values.iter().map(TValue::from_json).collect();
            dm.insert("ImportValues".into(), TValue::list(iv));
            dm.insert("Alias".into(), TValue::str(&d.alias));
            TValue::map(dm)
        })
        .collect();
    m.insert("Dependencies".into(), TValue::list(deps));
    m.insert("Type".into(), TValue::str(&md.chart_type));
    m.insert("IsRoot".into(), TValue::Bool(is_root));
    TValue::map(m)
}

fn files_value(chart: &Chart) -> TValue {
    let files = chart
        .files
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                String::from_utf8_lossy(&f.data).into_owned(),
            )
        })
        .collect();
    ferroflux_gotemplate::Files::new(files).into_value()
}

/// Helm's `recAllTpls`: every template of the chart and its subcharts with the data of its
/// own chart; returns the chart's top-level object (what `.Subcharts.NAME` is).
fn all_templates(
    chart: &Chart,
    top: &Top,
    parent_values: &TValue,
    parent_path: Option<&str>,
    out: &mut BTreeMap<String, ScopedTemplate>,
) -> TValue {
    let is_root = parent_path.is_none();
    let values = if is_root {
        parent_values.clone()
    } else {
        match parent_values {
            TValue::Map(cell) => match cell.get(chart.name()) {
                Some(v @ TValue::Map(_)) => v,
                _ => TValue::map(Map::new()),
            },
            _ => TValue::map(Map::new()),
        }
    };
    let full_path = match parent_path {
        None => chart.name().to_string(),
        Some(p) => format!("{p}/charts/{}", chart.name()),
    };
    let mut subcharts = Map::new();
    for child in &chart.dependencies {
        let sub = all_templates(child, top, &values, Some(&full_path), out);
        subcharts.insert(child.name().into(), sub);
    }
    let mut next = Map::new();
    next.insert("Chart".into(), chart_value(chart, is_root));
    next.insert("Files".into(), files_value(chart));
    next.insert("Release".into(), top.release.clone());
    next.insert("Capabilities".into(), top.capabilities.clone());
    next.insert("Values".into(), values);
    next.insert("Subcharts".into(), TValue::map(subcharts));
    let next = TValue::map(next);
    for t in &chart.templates {
        if chart.is_library() && !t.name.rsplit('/').next().unwrap_or("").starts_with('_') {
            continue;
        }
        out.insert(
            format!("{full_path}/{}", t.name),
            ScopedTemplate {
                text: String::from_utf8_lossy(&t.data).into_owned(),
                data: next.clone(),
                base_path: format!("{full_path}/templates"),
            },
        );
    }
    next
}

/// Helm's `CRDObjects`: `crds/` files of the chart, then of its subcharts.
fn crd_objects(chart: &Chart) -> Vec<(String, String)> {
    let mut out = Vec::new();
    crd_objects_into(chart, chart.name(), &mut out);
    out
}

fn crd_objects_into(chart: &Chart, full_path: &str, out: &mut Vec<(String, String)>) {
    for f in chart.crd_files() {
        out.push((
            format!("{full_path}/{}", f.name),
            String::from_utf8_lossy(&f.data).into_owned(),
        ));
    }
    for d in &chart.dependencies {
        crd_objects_into(d, &format!("{full_path}/charts/{}", d.name()), out);
    }
}

/// A template error as Helm's engine words it: `parse error at (FILE:LINE): WHY` for parse
/// errors (`cleanupParseError`), the indented trace of `reformatExecErrorMsg` for execution
/// errors whose every link is a template error, the engine's text otherwise.
fn helm_template_error(e: &ferroflux_gotemplate::Error) -> String {
    use ferroflux_gotemplate::Error;
    match e {
        Error::Parse {
            name,
            line,
            message,
            ..
        } => {
            let why = message.rsplit(": ").next().unwrap_or(message);
            format!("parse error at ({name}:{line}): {why}")
        }
        Error::Exec { .. } => exec_trace(&e.to_string()).unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}

/// Helm's `TraceableError` chain over the links of a flattened Go error: every suffix that
/// starts with `template: ` is one link. `None` when a link is not a template error (Helm then
/// prints the error as it is).
fn exec_trace(text: &str) -> Option<String> {
    const PREFIX: &str = "template: ";
    let mut starts = vec![0];
    let mut from = 0;
    while let Some(i) = text[from..].find(": template: ") {
        starts.push(from + i + 2);
        from += i + 2;
    }
    let mut out = String::new();
    let mut last: Option<(String, String, String)> = None;
    for (n, start) in starts.iter().enumerate() {
        let link = &text[*start..];
        let rest = link.strip_prefix(PREFIX)?;
        let traced = if rest.starts_with("no template ") {
            (String::new(), String::new(), link.to_string())
        } else if let Some((location, after)) = rest.split_once(": executing \"") {
            let (function, after) = after.split_once("\" at <")?;
            let (context, message) = after.split_once(">: ")?;
            let message = message.split(" template:").next().unwrap_or(message);
            // A function's own error is one more link Helm cannot trace.
            if n + 1 == starts.len() && message.starts_with("error calling ") {
                return None;
            }
            (
                location.to_string(),
                format!("executing \"{function}\" at <{context}>:"),
                message.to_string(),
            )
        } else {
            let (location, message) = rest.rsplit_once(": ")?;
            let message = message.split(" template:").next().unwrap_or(message);
            (location.to_string(), String::new(), message.to_string())
        };
        if last.as_ref() == Some(&traced) {
            continue;
        }
        let (location, function, message) = &traced;
        if !location.is_empty() {
            out.push_str(&format!("{location}\n  "));
        }
        if !function.is_empty() {
            out.push_str(&format!("{function}\n    "));
        }
        if !message.is_empty() {
            out.push_str(&format!("{message}\n"));
        }
        last = Some(traced);
    }
    Some(out.trim().to_string())
}
