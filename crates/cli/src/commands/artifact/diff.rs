//! `ferroflux diff artifact oci://HOST/REPO:TAG --path DIR`: exit 0 when the artifact holds
//! what `push artifact` would pack from DIR, 1 with the differing files otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::DiffEntry;

use super::{RegistryFlags, action, display_url, runtime, success};

/// Compare a Flux OCI artifact with a local directory, or a Kustomization with the cluster.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(subcommand)]
    what: DiffWhat,
}

#[derive(Debug, Subcommand)]
enum DiffWhat {
    /// Compare the content of a Flux OCI artifact with a local directory or file.
    Artifact(DiffArtifactArgs),
    /// Diff a Kustomization built from a local directory against the cluster.
    #[command(visible_alias = "ks")]
    Kustomization(crate::commands::diff_kustomization::DiffKustomizationArgs),
}

#[derive(Debug, Args)]
struct DiffArtifactArgs {
    /// The artifact: oci://HOST/REPOSITORY:TAG.
    url: String,
    /// The local directory or file.
    #[arg(long)]
    path: PathBuf,
    /// gitignore-style patterns of local files to leave out, as given to `push artifact`.
    #[arg(long, value_delimiter = ',', default_values_t = super::push::default_ignore_paths())]
    ignore_paths: Vec<String>,
    #[command(flatten)]
    registry: RegistryFlags,
}

fn line(entry: &DiffEntry) -> String {
    match entry {
        DiffEntry::Added(path) => format!("+ {path} (only in the local path)"),
        DiffEntry::Removed(path) => format!("- {path} (only in the artifact)"),
        DiffEntry::Changed(path) => format!("~ {path} (content differs)"),
    }
}

pub fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let args = match args.what {
        DiffWhat::Artifact(args) => args,
        DiffWhat::Kustomization(args) => return crate::commands::diff_kustomization::run(args),
    };
    action(format!(
        "comparing artifact {} with {}",
        display_url(&args.url),
        args.path.display()
    ));
    let (client, _) = args.registry.client("diffing")?;
    let rules = IgnoreRules::none().with_patterns(&args.ignore_paths);
    let entries = runtime()?
        .block_on(client.diff(&args.url, &args.path, &rules))
        .with_context(|| {
            format!(
                "comparing {} with {}",
                display_url(&args.url),
                args.path.display()
            )
        })?;
    if entries.is_empty() {
        success("no changes detected");
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &entries {
        outln!("{}", line(entry))?;
    }
    eprintln!("✗ the remote artifact contents differs from the local one");
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_marked_by_side() {
        assert_eq!(
            line(&DiffEntry::Added("a.yaml".into())),
            "+ a.yaml (only in the local path)"
        );
        assert_eq!(
            line(&DiffEntry::Removed("b.yaml".into())),
            "- b.yaml (only in the artifact)"
        );
        assert_eq!(
            line(&DiffEntry::Changed("c.yaml".into())),
            "~ c.yaml (content differs)"
        );
    }
}
