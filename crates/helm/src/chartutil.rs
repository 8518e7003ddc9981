//! What Helm's `chartutil` and `chart.Metadata` do for a chart directory: read and check
//! `Chart.yaml`, read values files and merge them the way Flux composes a HelmChart's
//! `valuesFiles` into the chart's `values.yaml`.

use std::io;
use std::path::Path;

use ferroflux_kustomize::fs::FileSystem;
use serde_json::Value;

use crate::loader::join_inside;

/// The chart's metadata file (Helm's `chartutil.ChartfileName`).
pub const CHARTFILE_NAME: &str = "Chart.yaml";

/// The chart's default values file (Helm's `chartutil.ValuesfileName`).
pub const VALUESFILE_NAME: &str = "values.yaml";

/// The `apiVersion` Helm's loader assumes when `Chart.yaml` has none.
pub const API_VERSION_V1: &str = "v1";

/// The fields of `Chart.yaml` ferroflux reads (Helm's `chart.Metadata`, in part); the others
/// stay in the file and in the packaged chart untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// `apiVersion`: `v1` or `v2`.
    #[serde(default)]
    pub api_version: String,
    /// The chart name; also the top directory of its archive.
    #[serde(default)]
    pub name: String,
    /// The chart version, SemVer 2.
    #[serde(default)]
    pub version: String,
    /// `type`: empty, `application` or `library`.
    #[serde(default, rename = "type")]
    pub chart_type: String,
    /// `home`: the project's URL.
    #[serde(default)]
    pub home: String,
    /// `sources`: URLs of the chart's source code.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `description`: one sentence about the chart.
    #[serde(default)]
    pub description: String,
    /// `keywords`.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// `maintainers`.
    #[serde(default)]
    pub maintainers: Vec<Maintainer>,
    /// `icon`: an SVG or PNG URL.
    #[serde(default)]
    pub icon: String,
    /// `condition` (v1 charts): the values path that enables the chart.
    #[serde(default)]
    pub condition: String,
    /// `tags` (v1 charts).
    #[serde(default)]
    pub tags: String,
    /// `appVersion`: the version of the packaged application.
    #[serde(default)]
    pub app_version: String,
    /// `deprecated`.
    #[serde(default)]
    pub deprecated: bool,
    /// `annotations`.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `kubeVersion`: the SemVer range of Kubernetes versions the chart supports.
    #[serde(default)]
    pub kube_version: String,
    /// `dependencies` (in `requirements.yaml` for v1 charts).
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
}

/// One of a chart's `maintainers` (Helm's `chart.Maintainer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Maintainer {
    /// `name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `email`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// `url`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// One of a chart's `dependencies` (Helm's `chart.Dependency`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// `name`: the subchart's chart name.
    #[serde(default)]
    pub name: String,
    /// `version`: a SemVer range.
    #[serde(default)]
    pub version: String,
    /// `repository`: where the subchart comes from.
    #[serde(default)]
    pub repository: String,
    /// `condition`: comma-separated values paths; the first boolean found decides.
    #[serde(default)]
    pub condition: String,
    /// `tags`: the subchart is enabled when any of these `tags` values is true.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `enabled`: set while processing dependencies.
    #[serde(default)]
    pub enabled: bool,
    /// `import-values`: child values imported into the parent.
    #[serde(default, rename = "import-values")]
    pub import_values: Vec<Value>,
    /// `alias`: the name the subchart renders under.
    #[serde(default)]
    pub alias: String,
}

/// `Chart.yaml` breaks one of Helm's rules; the text is Helm's (`validation: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("validation: {0}")]
pub struct ValidationError(String);

impl Metadata {
    /// Helm's `Metadata.Validate`: a name that is one plain path element, a SemVer version and
    /// a known chart type. Names starting with `.` or holding `\` are refused as well: the
    /// name becomes the archive's top directory, which must be a plain, visible one.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let fail = |why: String| Err(ValidationError(why));
        if self.api_version.is_empty() {
            return fail("chart.metadata.apiVersion is required".into());
        }
        let name = &self.name;
        if name.is_empty() {
            return fail("chart.metadata.name is required".into());
        }
        if name == "." || name == ".." {
            return fail(format!("chart.metadata.name {name:?} is not allowed"));
        }
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return fail(format!("chart.metadata.name {name:?} is invalid"));
        }
        if self.version.is_empty() {
            return fail("chart.metadata.version is required".into());
        }
        if ferroflux_semver::Version::parse(&self.version).is_err() {
            return fail(format!(
                "chart.metadata.version {:?} is invalid",
                self.version
            ));
        }
        if !matches!(self.chart_type.as_str(), "" | "application" | "library") {
            return fail("chart.metadata.type must be application or library".into());
        }
        Ok(())
    }
}

/// `Chart.yaml` cannot be used. Messages name the file relative to the chart, never a
/// temporary path, so they do not change from one reconcile to the next.
#[derive(Debug, thiserror::Error)]
pub enum ChartfileError {
    /// The file cannot be read (missing, behind a symlink, not UTF-8).
    #[error("Chart.yaml: {0}")]
    Read(#[source] io::Error),
    /// The file is not YAML of a chart's shape.
    #[error("Chart.yaml: not a chart: {0}")]
    Parse(String),
    /// The metadata breaks one of Helm's rules.
    #[error("Chart.yaml: {0}")]
    Invalid(#[from] ValidationError),
}

/// Helm's `chartutil.LoadChartfile` followed by the loader's defaulting (`apiVersion: v1`
/// when absent) and `Metadata.Validate`.
///
/// # Errors
/// [`ChartfileError`].
pub fn load_chartfile(fs: &dyn FileSystem, path: &Path) -> Result<Metadata, ChartfileError> {
    let text = read_text(fs, path).map_err(ChartfileError::Read)?;
    let mut metadata: Metadata = ferroflux_gocompat::yaml::from_str(&text)
        .map_err(|e| ChartfileError::Parse(e.to_string()))?;
    if metadata.api_version.is_empty() {
        metadata.api_version = API_VERSION_V1.to_string();
    }
    metadata.validate()?;
    Ok(metadata)
}

/// A values file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// The path is absolute or climbs out of the chart.
    #[error("values file '{0}' is not a path inside the chart")]
    OutsideChart(String),
    /// The file cannot be read and missing files are not to be ignored.
    #[error("values file '{file}': {source}; set ignoreMissingValuesFiles to skip it")]
    Unreadable {
        /// The path as the spec gives it.
        file: String,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// The file is not YAML (or breaks the YAML budget).
    #[error("values file '{file}' is not YAML: {message}")]
    Parse {
        /// The path as the spec gives it.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The merged values cannot be written as YAML.
    #[error("merged values: {0}")]
    Serialize(String),
}

/// Helm's `chartutil.ReadValues`: a YAML document, empty text being no values.
///
/// # Errors
/// The YAML reader's error (syntax, or the alias and size budget of untrusted YAML).
pub fn read_values(text: &str) -> Result<Value, ferroflux_gocompat::yaml::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    ferroflux_gocompat::yaml::from_str(text)
}

/// Flux's `transform.MergeMaps`, the merge of a HelmChart's `valuesFiles` (and of
/// source-watcher's values): maps merge key by key, anything else in `overlay` replaces what
/// `base` holds. Unlike Helm's `CoalesceTables`, a `null` in `overlay` is kept, not a deletion.
pub fn merge_maps(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_maps(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The HelmChart `valuesFiles` merged in order (later files win), as Flux composes the
/// chart's new default values. `files` are relative to `chart_dir`; with `ignore_missing`
/// an unreadable file is skipped.
///
/// # Errors
/// [`ValuesError`] naming the file.
pub fn merge_values_files(
    fs: &dyn FileSystem,
    chart_dir: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<Value, ValuesError> {
    let mut merged = Value::Object(Default::default());
    for file in files {
        let path = join_inside(chart_dir, file.trim_start_matches("./"))
            .ok_or_else(|| ValuesError::OutsideChart(file.clone()))?;
        let text = match read_text(fs, &path) {
            Ok(text) => text,
            Err(_) if ignore_missing => continue,
            Err(source) => {
                return Err(ValuesError::Unreadable {
                    file: file.clone(),
                    source,
                });
            }
        };
        let values = read_values(&text).map_err(|e| ValuesError::Parse {
            file: file.clone(),
            message: e.to_string(),
        })?;
        merge_maps(&mut merged, values);
    }
    Ok(merged)
}

/// `values` as the text of a `values.yaml`.
///
/// # Errors
/// [`ValuesError::Serialize`].
pub fn values_yaml(values: &Value) -> Result<String, ValuesError> {
    serde_saphyr::to_string(values).map_err(|e| ValuesError::Serialize(e.to_string()))
}

fn read_text(fs: &dyn FileSystem, path: &Path) -> io::Result<String> {
    let bytes = fs.read(path)?;
    String::from_utf8(bytes).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_kustomize::fs::MemFs;
    use serde_json::json;

    fn chart(body: &str) -> Result<Metadata, ChartfileError> {
        let mut fs = MemFs::new();
        fs.add("chart/Chart.yaml", body);
        load_chartfile(&fs, Path::new("/chart/Chart.yaml"))
    }

    #[test]
    fn chartfile_refuses_names_that_leave_the_package() {
        for name in ["../evil", "a/b", "..", ".hidden", "a\\b", ""] {
            let err = chart(&format!("apiVersion: v2\nname: {name:?}\nversion: 1.0.0\n"))
                .expect_err(name);
            assert!(
                err.to_string().starts_with("Chart.yaml: validation: "),
                "{err}"
            );
        }
        assert_eq!(
            chart("apiVersion: v2\nname: podinfo\nversion: 1.0.0\n").expect("valid"),
            Metadata {
                api_version: "v2".into(),
                name: "podinfo".into(),
                version: "1.0.0".into(),
                ..Metadata::default()
            }
        );
    }

    #[test]
    fn chartfile_versions_and_types_follow_helm() {
        let err = chart("apiVersion: v2\nname: podinfo\nversion: one\n").expect_err("not semver");
        assert_eq!(
            err.to_string(),
            "Chart.yaml: validation: chart.metadata.version \"one\" is invalid"
        );
        let err = chart("apiVersion: v2\nname: podinfo\n").expect_err("no version");
        assert_eq!(
            err.to_string(),
            "Chart.yaml: validation: chart.metadata.version is required"
        );
        let err = chart("apiVersion: v2\nname: podinfo\nversion: 1.0.0\ntype: plugin\n")
            .expect_err("bad type");
        assert!(err.to_string().contains("application or library"), "{err}");
        // Helm's loader takes a chart without apiVersion as v1; Masterminds takes `v1.2`.
        let old = chart("name: podinfo\nversion: v1.2\ntype: library\n").expect("loose");
        assert_eq!(old.api_version, API_VERSION_V1);
        let err = chart("- not\n- a chart\n").expect_err("a list");
        assert!(
            err.to_string().starts_with("Chart.yaml: not a chart"),
            "{err}"
        );
        let missing = load_chartfile(&MemFs::new(), Path::new("/Chart.yaml")).expect_err("none");
        assert!(matches!(missing, ChartfileError::Read(_)), "{missing}");
    }

    #[test]
    fn merge_maps_merges_maps_deeply_and_replaces_the_rest() {
        let mut base =
            json!({"image": {"tag": "1", "pullPolicy": "Always"}, "ports": [80], "replicas": 1});
        merge_maps(
            &mut base,
            json!({"image": {"tag": "2"}, "ports": [443], "extra": true, "replicas": null}),
        );
        assert_eq!(
            base,
            json!({"image": {"tag": "2", "pullPolicy": "Always"}, "ports": [443], "replicas": null, "extra": true})
        );
    }

    #[test]
    fn values_files_merge_in_order_and_name_the_bad_one() {
        let mut fs = MemFs::new();
        fs.add(
            "c/values.yaml",
            "image:\n  tag: '1'\n  pullPolicy: Always\n",
        )
        .add("c/values-prod.yaml", "image:\n  tag: '2'\n")
        .add("c/empty.yaml", "\n")
        .add("c/broken.yaml", "a: [\n");
        let dir = Path::new("/c");
        let files = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let merged = merge_values_files(
            &fs,
            dir,
            &files(&["values.yaml", "./values-prod.yaml", "empty.yaml"]),
            false,
        )
        .expect("merged");
        assert_eq!(
            merged,
            json!({"image": {"tag": "2", "pullPolicy": "Always"}})
        );
        assert_eq!(
            values_yaml(&merged).expect("yaml"),
            "image:\n  pullPolicy: Always\n  tag: \"2\"\n"
        );
        let err =
            merge_values_files(&fs, dir, &files(&["missing.yaml"]), false).expect_err("missing");
        assert!(
            err.to_string()
                .ends_with("; set ignoreMissingValuesFiles to skip it"),
            "{err}"
        );
        let skipped = merge_values_files(&fs, dir, &files(&["missing.yaml"]), true);
        assert_eq!(skipped.expect("ignored"), json!({}));
        let err =
            merge_values_files(&fs, dir, &files(&["../values.yaml"]), true).expect_err("outside");
        assert_eq!(
            err.to_string(),
            "values file '../values.yaml' is not a path inside the chart"
        );
        let err = merge_values_files(&fs, dir, &files(&["broken.yaml"]), true).expect_err("broken");
        assert!(matches!(err, ValuesError::Parse { .. }), "{err}");
    }

    #[test]
    fn an_alias_bomb_values_file_is_refused_quickly() {
        let mut fs = MemFs::new();
        fs.add(
            "c/values-bomb.yaml",
            include_str!("../../gocompat/testdata/alias-bomb.yaml"),
        );
        let start = std::time::Instant::now();
        let err = merge_values_files(&fs, Path::new("/c"), &["values-bomb.yaml".into()], false)
            .expect_err("bomb");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            "values file 'values-bomb.yaml' is not YAML: yaml: document contains excessive aliasing"
        );
    }
}
