//! `ferroflux pull artifact oci://HOST/REPO:TAG --output DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ferroflux_source::artifact::ExtractOptions;
use ferroflux_source::oci::{ANNOTATION_REVISION, ANNOTATION_SOURCE};

use super::{RegistryFlags, action, display_url, runtime, success};

/// Pull a Flux OCI artifact and extract its content.
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(subcommand)]
    what: PullWhat,
}

#[derive(Debug, Subcommand)]
enum PullWhat {
    /// Download a Flux OCI artifact and extract its content into a directory.
    Artifact(PullArtifactArgs),
}

#[derive(Debug, Args)]
struct PullArtifactArgs {
    /// What to pull: oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:<hex>.
    url: String,
    /// An existing directory to extract the content into.
    #[arg(long, short = 'o')]
    output: PathBuf,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: PullArgs) -> anyhow::Result<ExitCode> {
    let PullWhat::Artifact(args) = args.what;
    if !args.output.is_dir() {
        bail!(
            "invalid output path {:?}: it must be an existing directory",
            args.output.display().to_string()
        );
    }
    action(format!("pulling artifact from {}", display_url(&args.url)));
    let (client, bar) = args.registry.client("pulling")?;
    let (pulled, _) = runtime()?
        .block_on(client.pull_to_dir(&args.url, &args.output, &ExtractOptions::default()))
        .with_context(|| format!("pulling {}", display_url(&args.url)))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let annotation = |key: &str| pulled.annotations.get(key).cloned().unwrap_or_default();
    success(format!("source {}", annotation(ANNOTATION_SOURCE)));
    success(format!("revision {}", annotation(ANNOTATION_REVISION)));
    success(format!("digest {}", pulled.digest));
    success(format!(
        "artifact content extracted to {}",
        args.output.display()
    ));
    Ok(ExitCode::SUCCESS)
}
