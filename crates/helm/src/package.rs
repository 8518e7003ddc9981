//! What a HelmChart artifact holds and how it is named, as Flux's chart builder decides.

/// Whether the chart has to be (re)packaged: always for a chart directory of a Git or bucket
/// source; for an archive pulled from a repository only when `valuesFiles` are to be merged
/// into it, otherwise the archive is stored as downloaded.
pub fn needs_packaging(pulled: bool, values_files: Option<&[String]>) -> bool {
    !pulled || values_files.is_some()
}

/// The artifact revision: the chart version, plus the source revision's hash (12 characters)
/// as SemVer build metadata with `reconcileStrategy: Revision` on Git and bucket sources.
pub fn chart_revision(version: &str, strategy: Option<&str>, source_revision: &str) -> String {
    if strategy != Some("Revision") {
        return version.to_string();
    }
    // `main@sha1:<hex>` and `sha256:<hex>` alike: the hash is after the last `:`.
    let hash = source_revision
        .rsplit(':')
        .next()
        .unwrap_or(source_revision);
    let short: String = hash.chars().take(12).collect();
    format!("{version}+{short}")
}

/// Flux's build summary, the HelmChart's `Ready` message: `pulled 'NAME' chart with version
/// 'VERSION'`, or `packaged ...` when the chart was built from a source.
pub fn summary(packaged: bool, name: &str, version: &str) -> String {
    let verb = if packaged { "packaged" } else { "pulled" };
    format!("{verb} '{name}' chart with version '{version}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_strategy_appends_the_source_hash() {
        let source = "main@sha1:0123456789abcdef0123456789abcdef01234567";
        assert_eq!(chart_revision("6.5.0", None, source), "6.5.0");
        assert_eq!(
            chart_revision("6.5.0", Some("ChartVersion"), source),
            "6.5.0"
        );
        assert_eq!(
            chart_revision("6.5.0", Some("Revision"), source),
            "6.5.0+0123456789ab"
        );
        assert_eq!(
            chart_revision("1.0.0", Some("Revision"), "sha256:abcdef0123456789ff"),
            "1.0.0+abcdef012345"
        );
    }

    #[test]
    fn pulled_archives_are_repackaged_only_for_values_files() {
        let files = vec!["values-prod.yaml".to_string()];
        assert!(!needs_packaging(true, None));
        assert!(needs_packaging(true, Some(&files)));
        assert!(needs_packaging(false, None));
        assert_eq!(
            summary(false, "podinfo", "6.5.0"),
            "pulled 'podinfo' chart with version '6.5.0'"
        );
        assert_eq!(
            summary(true, "podinfo", "6.5.0+0123456789ab"),
            "packaged 'podinfo' chart with version '6.5.0+0123456789ab'"
        );
    }
}
