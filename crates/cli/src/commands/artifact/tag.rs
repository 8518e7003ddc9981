//! `ferroflux tag artifact oci://HOST/REPO:TAG --tag NEW`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferroflux_source::oci::parse_url;

use super::{RegistryFlags, action, display_url, runtime, success};

/// Tag an existing Flux OCI artifact.
#[derive(Debug, Args)]
pub struct TagArgs {
    #[command(subcommand)]
    what: TagWhat,
}

#[derive(Debug, Subcommand)]
enum TagWhat {
    /// Point more tags at the manifest an artifact URL refers to.
    Artifact(TagArtifactArgs),
}

#[derive(Debug, Args)]
struct TagArtifactArgs {
    /// The artifact: oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:<hex>.
    url: String,
    /// The new tag (repeat for several).
    #[arg(long = "tag", required = true)]
    tags: Vec<String>,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: TagArgs) -> anyhow::Result<ExitCode> {
    let TagWhat::Artifact(args) = args.what;
    let reference = parse_url(&args.url)?;
    let (client, _) = args.registry.client("tagging")?;
    let runtime = runtime()?;
    action("tagging artifact");
    for tag in &args.tags {
        runtime
            .block_on(client.tag(&args.url, tag))
            .with_context(|| format!("tagging {} as {tag}", display_url(&args.url)))?;
        success(format!(
            "artifact tagged as {}/{}:{tag}",
            reference.registry(),
            reference.repository()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
