//! `ferroflux push artifact oci://HOST/REPO:TAG --path DIR --source URL --revision REV`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use ferroflux_source::artifact::IgnoreRules;
use ferroflux_source::oci::PushMetadata;

use super::{RegistryFlags, action, display_url, runtime, success};

/// Push a local directory or file to an OCI registry as a Flux artifact.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(subcommand)]
    what: PushWhat,
}

#[derive(Debug, Subcommand)]
enum PushWhat {
    /// Pack a directory (or a single file) and push it as a Flux OCI artifact.
    Artifact(PushArtifactArgs),
}

#[derive(Debug, Args)]
struct PushArtifactArgs {
    /// Where to push: oci://HOST/REPOSITORY:TAG.
    url: String,
    /// The directory or file to pack.
    #[arg(long)]
    path: PathBuf,
    /// Where the content came from (annotation org.opencontainers.image.source), e.g. a Git URL.
    #[arg(long)]
    source: String,
    /// The source revision (annotation org.opencontainers.image.revision), e.g. main@sha1:<hash>.
    #[arg(long)]
    revision: String,
    /// More manifest annotations, KEY=VALUE (repeat or separate with commas).
    #[arg(long = "annotations", short = 'a', value_delimiter = ',')]
    annotations: Vec<String>,
    /// gitignore-style patterns of files to leave out (repeat or separate with commas).
    #[arg(long, value_delimiter = ',', default_values_t = default_ignore_paths())]
    ignore_paths: Vec<String>,
    /// Print the pushed artifact's URL, repository, tag and digest as json or yaml.
    #[arg(long, short = 'o', value_enum)]
    output: Option<Output>,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// flux's default `--ignore-paths`: version-control files and binary media and archives.
pub(crate) fn default_ignore_paths() -> Vec<String> {
    use ferroflux_source::artifact::{EXCLUDE_EXT, EXCLUDE_VCS};
    EXCLUDE_VCS
        .iter()
        .chain(EXCLUDE_EXT)
        .map(|p| p.to_string())
        .collect()
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Json,
    Yaml,
}

/// What `-o json|yaml` prints, in flux's field order.
#[derive(serde::Serialize)]
struct PushInfo {
    url: String,
    repository: String,
    tag: String,
    digest: String,
}

/// `KEY=VALUE` pairs as a map; an entry without `=` is an error naming it.
fn parse_annotations(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                out.insert(key.to_string(), value.to_string());
            }
            _ => bail!("invalid annotation {pair:?}: use the format KEY=VALUE"),
        }
    }
    Ok(out)
}

pub fn run(args: PushArgs) -> anyhow::Result<ExitCode> {
    let PushWhat::Artifact(args) = args.what;
    if !args.path.exists() {
        bail!(
            "invalid path {:?}: no such file or directory",
            args.path.display().to_string()
        );
    }
    let metadata = PushMetadata {
        source: args.source.clone(),
        revision: args.revision.clone(),
        created: None,
        annotations: parse_annotations(&args.annotations)?,
    };
    let rules = IgnoreRules::none().with_patterns(&args.ignore_paths);
    let reference = ferroflux_source::oci::parse_url(&args.url)?;
    if args.output.is_none() {
        action(format!("pushing artifact to {}", display_url(&args.url)));
    }
    let (client, bar) = args.registry.client("pushing")?;
    let pushed = runtime()?
        .block_on(client.push_dir(&args.url, &args.path, &rules, &metadata))
        .with_context(|| {
            format!(
                "pushing {} to {}",
                args.path.display(),
                display_url(&args.url)
            )
        })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let info = PushInfo {
        url: format!("oci://{}", pushed.reference),
        repository: format!("{}/{}", reference.registry(), reference.repository()),
        tag: reference.tag().unwrap_or("latest").to_string(),
        digest: pushed.digest.clone(),
    };
    match args.output {
        Some(Output::Json) => outln!("{}", serde_json::to_string_pretty(&info)?)?,
        Some(Output::Yaml) => out!("{}", serde_saphyr::to_string(&info)?)?,
        None => success(format!(
            "artifact successfully pushed to {}",
            pushed.reference
        )),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_need_a_key_and_an_equals_sign() {
        let parsed = parse_annotations(&["team=a".into(), "note=x=y".into()]).expect("valid");
        assert_eq!(parsed.get("team").map(String::as_str), Some("a"));
        assert_eq!(parsed.get("note").map(String::as_str), Some("x=y"));
        assert!(parse_annotations(&["novalue".into()]).is_err());
        assert!(parse_annotations(&["=v".into()]).is_err());
    }
}
