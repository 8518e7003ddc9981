//! `ferroflux list artifacts oci://HOST/REPO [--filter-semver RANGE]`: a table like
//! `flux list artifacts` (artifact, digest, source, revision).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferroflux_source::oci::{ANNOTATION_REVISION, ANNOTATION_SOURCE, matching_tags, parse_url};

use super::{RegistryFlags, runtime};

/// List the artifacts of an OCI repository.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(subcommand)]
    what: ListWhat,
}

#[derive(Debug, Subcommand)]
enum ListWhat {
    /// List the tags of an OCI repository with their digest, source and revision.
    Artifacts(ListArtifactsArgs),
}

#[derive(Debug, Args)]
struct ListArtifactsArgs {
    /// The repository: oci://HOST/REPOSITORY.
    url: String,
    /// Only tags within this semver range, highest first (e.g. ">=1.0.0").
    #[arg(long)]
    filter_semver: Option<String>,
    #[command(flatten)]
    registry: RegistryFlags,
}

/// Cosign keeps signatures, attestations and SBOMs as tags `sha256-<hex>.sig|.att|.sbom`;
/// they are not artifacts.
fn is_cosign_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-").is_some_and(|rest| {
        rest.rsplit_once('.').is_some_and(|(hex, kind)| {
            hex.len() == 64
                && hex.chars().all(|c| c.is_ascii_hexdigit())
                && ["sig", "att", "sbom"].contains(&kind)
        })
    })
}

/// The tags to show: cosign tags dropped; with a range, only matching ones, highest first.
fn select(tags: Vec<String>, range: Option<&str>) -> anyhow::Result<Vec<String>> {
    let tags: Vec<String> = tags.into_iter().filter(|t| !is_cosign_tag(t)).collect();
    match range {
        Some(range) => Ok(matching_tags(&tags, range, None)?),
        None => Ok(tags),
    }
}

pub fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let ListWhat::Artifacts(args) = args.what;
    let reference = parse_url(&args.url)?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    let (client, _) = args.registry.client("listing")?;
    let runtime = runtime()?;
    let tags = runtime
        .block_on(client.list_tags(&args.url))
        .with_context(|| format!("listing the tags of {repository}"))?;
    let mut rows = Vec::new();
    for tag in select(tags, args.filter_semver.as_deref())? {
        // Source and revision live in the manifest annotations, which only a pull returns.
        let pulled = runtime
            .block_on(client.pull(&format!("oci://{repository}:{tag}"), None))
            .with_context(|| format!("reading {repository}:{tag}"))?;
        let annotation = |key: &str| pulled.annotations.get(key).cloned().unwrap_or_default();
        rows.push(vec![
            format!("{repository}:{tag}"),
            pulled.digest.clone(),
            annotation(ANNOTATION_SOURCE),
            annotation(ANNOTATION_REVISION),
        ]);
    }
    out!(
        "{}",
        crate::table::render(&["ARTIFACT", "DIGEST", "SOURCE", "REVISION"], &rows)
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_are_not_listed_and_ranges_sort_highest_first() {
        let sig = format!("sha256-{}.sig", "a".repeat(64));
        let tags = vec![
            "1.0.0".to_string(),
            sig.clone(),
            "latest".to_string(),
            "1.2.0".to_string(),
        ];
        assert_eq!(
            select(tags.clone(), None).expect("no range"),
            ["1.0.0", "latest", "1.2.0"]
        );
        assert_eq!(
            select(tags, Some(">=1.0.0")).expect("range"),
            ["1.2.0", "1.0.0"]
        );
        assert!(!is_cosign_tag("sha256-abc.sig"), "only full digests");
        assert!(select(vec![], Some("not-a-range")).is_err());
    }
}
