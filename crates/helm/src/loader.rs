//! Finding a chart before Helm's loader reads it: the chart directory of a HelmChart's
//! `spec.chart` in a source tree, and the check of a chart name pulled from a repository.

use std::path::{Component, Path, PathBuf};

use ferroflux_kustomize::fs::FileSystem;

use crate::chartutil::CHARTFILE_NAME;

/// `root/rel` when `rel` is a relative path that stays under `root` (no `..`, not absolute).
/// Flux clamps such paths with `securejoin`; refusing them says what is wrong instead.
pub fn join_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    plain.then(|| root.join(rel))
}

/// The chart directory at `path` (a HelmChart's `spec.chart`, `./` and a trailing `/`
/// allowed) under `root`: inside it, and holding a `Chart.yaml` file.
pub fn chart_dir(fs: &dyn FileSystem, root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    let dir = join_inside(root, path)?;
    let chartfile = dir.join(CHARTFILE_NAME);
    (fs.exists(&chartfile) && !fs.is_dir(&chartfile)).then_some(dir)
}

/// A chart name to pull from a repository that Flux's `RemoteReference.Validate` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid chart name '{0}': a valid name must be lower case letters and numbers and MAY be separated with dashes (-), slashes (/) or periods (.)"
)]
pub struct InvalidChartName(pub String);

/// Flux's check of a chart name pulled from a HelmRepository (`^([-a-z0-9]+/?\.?)+$`): runs
/// of lower-case letters, digits and dashes, separated by `/`, `.` or `/.`. It keeps `..`
/// out of the name, which becomes a path of the extracted archive.
///
/// # Errors
/// [`InvalidChartName`].
pub fn validate_chart_name(name: &str) -> Result<(), InvalidChartName> {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let valid = name.starts_with(word)
        && name
            .split(word)
            .filter(|separator| !separator.is_empty())
            .all(|separator| matches!(separator, "/" | "." | "/."));
    if valid {
        Ok(())
    } else {
        Err(InvalidChartName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_kustomize::fs::MemFs;

    #[test]
    fn paths_must_stay_inside_the_root() {
        let root = Path::new("/srv/chart");
        assert_eq!(
            join_inside(root, "values-prod.yaml"),
            Some(root.join("values-prod.yaml"))
        );
        assert_eq!(
            join_inside(root, "charts/podinfo"),
            Some(root.join("charts/podinfo"))
        );
        assert_eq!(join_inside(root, "../secrets.yaml"), None);
        assert_eq!(join_inside(root, "charts/../../x"), None);
        assert_eq!(join_inside(root, "/etc/passwd"), None);
    }

    #[test]
    fn chart_dir_needs_a_chartfile_inside_the_source() {
        let mut fs = MemFs::new();
        fs.add("src/charts/podinfo/Chart.yaml", "name: podinfo\n")
            .add_dir("src/charts/empty")
            .add_dir("src/charts/odd/Chart.yaml");
        let root = Path::new("/src");
        let want = Some(root.join("charts/podinfo"));
        assert_eq!(chart_dir(&fs, root, "charts/podinfo"), want);
        assert_eq!(chart_dir(&fs, root, "./charts/podinfo/"), want);
        assert_eq!(chart_dir(&fs, root, "charts/empty"), None);
        assert_eq!(chart_dir(&fs, root, "charts/odd"), None, "a directory");
        assert_eq!(chart_dir(&fs, root, "../src/charts/podinfo"), None);
    }

    #[test]
    fn chart_names_follow_flux() {
        for good in ["podinfo", "my-chart", "team/podinfo", "a/.b", "a.b", "0-9"] {
            assert_eq!(validate_chart_name(good), Ok(()), "{good}");
        }
        for bad in [
            "", "../evil", "a/../b", "a..b", "Podinfo", "/abs", ".x", "a//b", "a b",
        ] {
            assert!(validate_chart_name(bad).is_err(), "{bad}");
        }
        assert!(
            validate_chart_name("../x")
                .expect_err("refused")
                .to_string()
                .starts_with("invalid chart name '../x': ")
        );
    }
}
