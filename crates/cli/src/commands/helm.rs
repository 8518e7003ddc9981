//! `ferroflux helm template [NAME] CHART`: renders a chart (directory or `.tgz`) locally and
//! prints what `helm template` prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ferroflux_helm::{Capabilities, ReleaseOptions};
use ferroflux_kustomize::fs::DiskFs;
use serde_json::Value;

/// Helm charts, like `helm`.
#[derive(Debug, Args)]
pub struct HelmArgs {
    #[command(subcommand)]
    command: HelmCommand,
}

#[derive(Debug, Subcommand)]
enum HelmCommand {
    /// Render a chart locally and print the manifests, like `helm template`.
    Template(TemplateArgs),
}

#[derive(Debug, Args)]
struct TemplateArgs {
    /// `[NAME] CHART`: the release name (default `release-name`) and the chart directory or
    /// `.tgz` file.
    #[arg(num_args = 1..=2, required = true)]
    args: Vec<String>,
    /// Values files, later ones winning.
    #[arg(short = 'f', long = "values")]
    values: Vec<PathBuf>,
    /// `key=value` values (Helm's `--set` syntax).
    #[arg(long = "set")]
    set: Vec<String>,
    /// `key=value` values forced to strings.
    #[arg(long = "set-string")]
    set_string: Vec<String>,
    /// The release namespace.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// The Kubernetes version for `.Capabilities.KubeVersion`.
    #[arg(long = "kube-version")]
    kube_version: Option<String>,
    /// Extra API versions for `.Capabilities.APIVersions`.
    #[arg(short = 'a', long = "api-versions")]
    api_versions: Vec<String>,
    /// Print the chart's CRDs too.
    #[arg(long = "include-crds")]
    include_crds: bool,
    /// Print only the manifests rendered from these template paths (globs).
    #[arg(short = 's', long = "show-only")]
    show_only: Vec<String>,
}

pub fn run(args: HelmArgs) -> anyhow::Result<ExitCode> {
    let HelmCommand::Template(t) = args.command;
    let (name, chart_path) = match t.args.as_slice() {
        [chart] => ("release-name".to_string(), chart.clone()),
        [name, chart] => (name.clone(), chart.clone()),
        _ => anyhow::bail!("expected at most two arguments, unexpected arguments"),
    };
    let path = PathBuf::from(&chart_path);
    let chart = if path.is_dir() {
        ferroflux_helm::load_dir(&DiskFs, &path)?
    } else {
        let bytes = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("path {chart_path:?} not found: {e}"))?;
        ferroflux_helm::load_archive(&bytes)?
    };
    let values = user_values(&t)?;
    let release = ReleaseOptions {
        name,
        namespace: t.namespace.clone(),
        revision: 1,
        is_install: true,
        is_upgrade: false,
    };
    let caps = Capabilities {
        kube_version: t.kube_version.clone().unwrap_or_default(),
        api_versions: t.api_versions.clone(),
    };
    let rendered = ferroflux_helm::render(&chart, &values, &release, &caps, None)?;
    let out = ferroflux_helm::template::template_output(&rendered, t.include_crds, &t.show_only)
        .map_err(anyhow::Error::msg)?;
    out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

/// The user's values: `-f` files, `--set`, `--set-string`, as Helm merges them.
fn user_values(t: &TemplateArgs) -> anyhow::Result<Value> {
    let mut files = Vec::new();
    for file in &t.values {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("open {}: {e}", file.display()))?;
        files.push((file.display().to_string(), text));
    }
    ferroflux_helm::template::user_values(&files, &t.set, &t.set_string).map_err(anyhow::Error::msg)
}
