//! `ferroflux build artifact --path DIR|FILE --output FILE.tgz`: packs manifests into the
//! tarball `push artifact` would push, as `flux build artifact` does (same ignore rules, same
//! bytes for the same files).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use ferroflux_source::artifact::{IgnoreRules, pack_path};

/// `build artifact` flags, as flux's.
#[derive(Debug, Args)]
pub struct BuildArtifactArgs {
    /// Path to the directory where the Kubernetes manifests are located.
    #[arg(short, long, default_value = "")]
    path: String,
    /// Path to where the artifact tgz file should be written.
    #[arg(short, long, default_value = "artifact.tgz")]
    output: PathBuf,
    /// Set paths to ignore in .gitignore format.
    #[arg(long, value_delimiter = ',', default_values_t = super::artifact::push::default_ignore_paths())]
    ignore_paths: Vec<String>,
    /// Additional paths to ignore in .gitignore format (appended to --ignore-paths).
    #[arg(long, value_delimiter = ',')]
    add_ignore_paths: Vec<String>,
}

pub fn run(args: &BuildArtifactArgs) -> anyhow::Result<ExitCode> {
    if args.path.is_empty() {
        bail!("invalid path {:?}", args.path);
    }
    let path = PathBuf::from(&args.path);
    if !path.exists() {
        bail!(
            "invalid path '{}', must point to an existing directory or file",
            args.path
        );
    }
    eprintln!("► building artifact from {}", args.path);
    let patterns: Vec<String> = args
        .ignore_paths
        .iter()
        .chain(&args.add_ignore_paths)
        .cloned()
        .collect();
    let rules = IgnoreRules::none().with_patterns(&patterns);
    let output = std::fs::File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut writer = std::io::BufWriter::new(output);
    pack_path(&path, &rules, &mut writer)
        .map_err(|e| anyhow::anyhow!("building artifact failed, error: {e}"))?;
    std::io::Write::flush(&mut writer)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!("✔ artifact created at {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
