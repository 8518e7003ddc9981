//! `ferroflux validate`: strict decoding of Flux manifests, so a typo such as `spec.intervall`
//! is caught before it reaches a cluster (where it would be pruned away silently).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

/// Validate manifests of the kinds ferroflux serves; other kinds are skipped.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// YAML files, or directories searched for `*.yaml`/`*.yml`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect_yaml_files(path, &mut files)?;
    }
    let (mut checked, mut problems) = (0usize, 0usize);
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let docs: Vec<Value> = match ferroflux_gocompat::yaml::from_multiple(&text) {
            Ok(docs) => docs,
            Err(err) => {
                problems += 1;
                outln!("✗ {}: not valid YAML: {err}", file.display())?;
                continue;
            }
        };
        for (index, doc) in docs.iter().enumerate() {
            let (Some(api_version), Some(kind)) =
                (doc["apiVersion"].as_str(), doc["kind"].as_str())
            else {
                continue;
            };
            let (group, _) = ferroflux_api::convert::split_api_version(api_version);
            if ferroflux_api::crds::find(group, kind).is_none() {
                continue;
            }
            checked += 1;
            let name = doc["metadata"]["name"].as_str().unwrap_or("<unnamed>");
            if let Err(errors) = ferroflux_api::strict::check(doc) {
                for error in errors {
                    problems += 1;
                    outln!(
                        "✗ {} (document {}, {kind} {name}): {error}",
                        file.display(),
                        index + 1
                    )?;
                }
            }
        }
    }
    if problems > 0 {
        outln!("✗ {problems} problem(s) in {checked} object(s)")?;
        return Ok(ExitCode::FAILURE);
    }
    outln!("✔ {checked} object(s) valid")?;
    Ok(ExitCode::SUCCESS)
}

fn collect_yaml_files(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_yaml = entry
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if entry.is_dir() || is_yaml {
                collect_yaml_files(&entry, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}
