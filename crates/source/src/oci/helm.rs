//! Helm charts in OCI registries (HelmRepository `type: oci`, HelmChart from it).
//!
//! Helm stores a chart as an OCI manifest with config [`HELM_CONFIG_MEDIA_TYPE`] (the
//! Chart.yaml as JSON) and one layer [`HELM_CHART_MEDIA_TYPE`] (the packaged chart); tags
//! are versions with `+` written as `_`, since OCI tags cannot hold `+`.

use super::{OciClient, OciError, Pulled, parse_url};
use crate::version::{parse_range, pick_highest};

/// Config media type of a Helm chart.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Layer media type of a packaged Helm chart.
pub const HELM_CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The chart version a tag stands for (`1.0.0_build.1` -> `1.0.0+build.1`).
pub fn tag_to_version(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The tag for a chart version (`1.0.0+build.1` -> `1.0.0_build.1`).
pub fn version_to_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// The tag of the highest chart version within `range` (`*` or empty: latest stable).
///
/// # Errors
/// [`OciError::Range`] for an invalid range; `Ok(None)` when nothing matches.
pub fn select_chart_tag(tags: &[String], range: &str) -> Result<Option<String>, OciError> {
    let range = if range.trim().is_empty() { "*" } else { range };
    let constraints = parse_range(range)?;
    let versions: Vec<String> = tags.iter().map(|t| tag_to_version(t)).collect();
    Ok(
        pick_highest(versions.iter().map(String::as_str), &constraints)
            .map(|(v, _)| version_to_tag(v)),
    )
}

impl OciClient {
    /// Pulls chart `oci://HOST/PATH/NAME` at the highest version within `range`; returns
    /// the chosen version and the chart archive (digest-verified).
    ///
    /// # Errors
    /// [`OciError::NoSemverMatch`] and the errors of [`OciClient::pull`].
    pub async fn pull_helm_chart(
        &self,
        url: &str,
        range: &str,
    ) -> Result<(String, Pulled), OciError> {
        let base = parse_url(url)?;
        let repo = format!("oci://{}/{}", base.registry(), base.repository());
        let tags = self.list_tags(&repo).await?;
        let tag = select_chart_tag(&tags, range)?.ok_or_else(|| OciError::NoSemverMatch {
            range: range.to_string(),
            repository: format!("{}/{}", base.registry(), base.repository()),
        })?;
        let pulled = self
            .pull(&format!("{repo}:{tag}"), Some(HELM_CHART_MEDIA_TYPE))
            .await?;
        Ok((tag_to_version(&tag), pulled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_map_plus_to_underscore_and_pick_highest() {
        let tags: Vec<String> = ["0.9.0", "1.0.0_build.1", "1.2.0", "2.0.0-rc.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            select_chart_tag(&tags, "").expect("valid"),
            Some("1.2.0".into())
        );
        assert_eq!(
            select_chart_tag(&tags, "~1.0").expect("valid"),
            Some("1.0.0_build.1".into())
        );
        assert_eq!(tag_to_version("1.0.0_build.1"), "1.0.0+build.1");
    }
}
