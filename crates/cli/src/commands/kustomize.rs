//! `ferroflux kustomize build DIR`: kustomize's own build, printed as a YAML stream.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use ferroflux_kustomize::{LoadRestrictor, Options, Reorder, fs::DiskFs};

/// Build kustomization targets, like `kustomize`.
#[derive(Debug, Args)]
pub struct KustomizeArgs {
    #[command(subcommand)]
    command: KustomizeCommand,
}

#[derive(Debug, Subcommand)]
enum KustomizeCommand {
    /// Build a kustomization directory and print the resources as a YAML stream.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Output order: `legacy` sorts by kind, `none` keeps input order (a `sortOptions` field
    /// in the kustomization wins).
    #[arg(long, value_enum, default_value_t = ReorderArg::Legacy)]
    reorder: ReorderArg,
    /// Whether files outside a kustomization's directory may be read.
    #[arg(long = "load-restrictor", value_enum, default_value_t = RestrictorArg::LoadRestrictionsRootOnly)]
    load_restrictor: RestrictorArg,
    /// The kustomization directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReorderArg {
    Legacy,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "verbatim")]
enum RestrictorArg {
    LoadRestrictionsRootOnly,
    LoadRestrictionsNone,
}

pub fn run(args: KustomizeArgs) -> anyhow::Result<ExitCode> {
    let KustomizeCommand::Build(b) = args.command;
    let opts = Options {
        reorder: match b.reorder {
            ReorderArg::Legacy => Reorder::Legacy,
            ReorderArg::None => Reorder::None,
        },
        load_restrictor: match b.load_restrictor {
            RestrictorArg::LoadRestrictionsRootOnly => LoadRestrictor::RootOnly,
            RestrictorArg::LoadRestrictionsNone => LoadRestrictor::None,
        },
    };
    let out = ferroflux_kustomize::build(&DiskFs, &b.dir, opts)
        .map_err(|e| anyhow::anyhow!("kustomize build {}: {e}", b.dir.display()))?;
    out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}
