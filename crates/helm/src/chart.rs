//! A chart in memory, as Helm's `loader` builds it: from a directory (through a
//! [`FileSystem`]) or from the bytes of a `.tgz`. Chart content is untrusted: one
//! decompressed-size budget, a file count limit and a subchart depth limit hold for the whole
//! chart, subcharts included, and no path may leave the chart.

use std::io::Read;
use std::path::Path;

use ferroflux_kustomize::fs::FileSystem;
use serde_json::Value;

use crate::chartutil::{Metadata, ValidationError};

/// Helm's `MaxDecompressedChartSize`: the most bytes a chart may hold once decompressed.
pub const MAX_CHART_SIZE: u64 = 100 * 1024 * 1024;

/// The most files one chart (subcharts included) may hold.
pub const MAX_CHART_FILES: usize = 10_000;

/// How deep subcharts may nest.
pub const MAX_SUBCHART_DEPTH: usize = 16;

/// How deep directories may nest inside a chart directory.
const MAX_DIR_DEPTH: usize = 32;

/// One file of a chart, by its path relative to the chart root (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The path inside the chart, e.g. `templates/deployment.yaml`.
    pub name: String,
    /// The content, a leading UTF-8 byte order mark removed.
    pub data: Vec<u8>,
}

/// A loaded chart (Helm's `chart.Chart`).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// `Chart.yaml` (with `requirements.yaml`'s dependencies for v1 charts).
    pub metadata: Metadata,
    /// `Chart.lock` (or `requirements.lock`), as parsed YAML.
    pub lock: Option<Value>,
    /// `templates/**`.
    pub templates: Vec<File>,
    /// `values.yaml`, every document merged.
    pub values: serde_json::Map<String, Value>,
    /// `values.schema.json`.
    pub schema: Option<Vec<u8>>,
    /// Every other file (what `.Files` sees), `crds/` included.
    pub files: Vec<File>,
    /// The subcharts under `charts/`, directories and archives.
    pub dependencies: Vec<Chart>,
}

impl Chart {
    /// The chart's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether the chart is a library chart (no rendered output of its own).
    pub fn is_library(&self) -> bool {
        self.metadata.chart_type == "library"
    }

    /// The chart's CRD files (`crds/*.yaml|yml|json`, Helm's `CRDObjects`), its own only.
    pub fn crd_files(&self) -> impl Iterator<Item = &File> {
        self.files.iter().filter(|f| {
            f.name.starts_with("crds/")
                && [".yaml", ".yml", ".json"]
                    .iter()
                    .any(|ext| f.name.ends_with(ext))
        })
    }
}

/// A chart cannot be loaded; messages are Helm's where Helm has one.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a gzip'd tar, or a broken one.
    #[error("{0}")]
    Archive(String),
    /// A path that leaves the chart, or another illegal name.
    #[error("{0}")]
    IllegalPath(String),
    /// The chart breaks a size, count or depth budget.
    #[error("{0}")]
    TooLarge(String),
    /// A file cannot be read from the file system.
    #[error("error reading {path}: {cause}")]
    Read {
        /// The path inside the chart.
        path: String,
        /// Why (part of the message, as Helm words it, so not a separate error source).
        cause: std::io::Error,
    },
    /// A file of the chart is not what Helm expects.
    #[error("cannot load {file}: {message}")]
    Parse {
        /// `Chart.yaml`, `values.yaml`, ...
        file: String,
        /// The parser's message.
        message: String,
    },
    /// There is no `Chart.yaml`.
    #[error("Chart.yaml file is missing")]
    NoChartfile,
    /// `Chart.yaml` breaks one of Helm's rules.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A subchart cannot be loaded.
    #[error("error unpacking subchart {name} in {parent}: {cause}")]
    Subchart {
        /// The subchart's name under `charts/`.
        name: String,
        /// The parent chart's name.
        parent: String,
        /// Why (part of the message, as Helm words it, so not a separate error source).
        cause: Box<LoadError>,
    },
}

/// The budget one chart load shares across its files and subcharts.
struct Budget {
    bytes: u64,
    files: usize,
}

impl Budget {
    fn new() -> Self {
        Budget {
            bytes: MAX_CHART_SIZE,
            files: MAX_CHART_FILES,
        }
    }

    fn take(&mut self, size: u64) -> Result<(), LoadError> {
        if self.files == 0 {
            return Err(LoadError::TooLarge(format!(
                "chart holds more than {MAX_CHART_FILES} files"
            )));
        }
        self.files -= 1;
        if size > self.bytes {
            return Err(too_large());
        }
        self.bytes -= size;
        Ok(())
    }
}

fn too_large() -> LoadError {
    LoadError::TooLarge(format!(
        "decompressed chart is larger than the maximum size {MAX_CHART_SIZE}"
    ))
}

fn strip_bom(mut data: Vec<u8>) -> Vec<u8> {
    if data.starts_with(&[0xef, 0xbb, 0xbf]) {
        data.drain(..3);
    }
    data
}

/// Helm's `LoadArchive`: a chart from the bytes of a `.tgz`.
///
/// # Errors
/// [`LoadError`].
pub fn load_archive(bytes: &[u8]) -> Result<Chart, LoadError> {
    let mut budget = Budget::new();
    load_archive_within(bytes, &mut budget, 0)
}

fn load_archive_within(
    bytes: &[u8],
    budget: &mut Budget,
    depth: usize,
) -> Result<Chart, LoadError> {
    let files = archive_files(bytes, budget)?;
    load_files(files, budget, depth)
}

/// Helm's `LoadArchiveFiles`: the files of a chart archive, the top directory removed.
fn archive_files(bytes: &[u8], budget: &mut Budget) -> Result<Vec<File>, LoadError> {
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| LoadError::Archive(e.to_string()))?;
    let mut files = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| LoadError::Archive(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            // Links and devices have no place in a chart; Helm reads them as empty files.
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = archive_name(&raw)?;
        let size = entry.header().size().unwrap_or(0);
        budget.take(size)?;
        let mut data = Vec::new();
        let read = (&mut entry)
            .take(size.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| LoadError::Archive(e.to_string()))?;
        if read as u64 > size {
            return Err(too_large());
        }
        files.push(File {
            name,
            data: strip_bom(data),
        });
    }
    if files.is_empty() {
        return Err(LoadError::Archive("no files in chart archive".into()));
    }
    Ok(files)
}

/// An archive entry's path without its top directory, checked as Helm checks it.
fn archive_name(raw: &str) -> Result<String, LoadError> {
    let delimiter = if raw.contains('\\') { '\\' } else { '/' };
    let parts: Vec<&str> = raw.split(delimiter).collect();
    if parts.first() == Some(&"Chart.yaml") {
        return Err(LoadError::IllegalPath(
            "chart yaml not in base directory".into(),
        ));
    }
    let joined = parts.get(1..).unwrap_or_default().join("/");
    if joined.starts_with('/') {
        return Err(LoadError::IllegalPath(
            "chart illegally contains absolute paths".into(),
        ));
    }
    let name = ferroflux_gocompat::path::clean(&joined);
    if name == "." {
        return Err(LoadError::IllegalPath(format!(
            "chart illegally contains content outside the base directory: {raw:?}"
        )));
    }
    if name.starts_with("..") {
        return Err(LoadError::IllegalPath(
            "chart illegally references parent directory".into(),
        ));
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(LoadError::IllegalPath(
            "chart contains illegally named files".into(),
        ));
    }
    Ok(name)
}

/// Helm's `LoadDir`: a chart from a directory, `.helmignore` applied.
///
/// # Errors
/// [`LoadError`].
pub fn load_dir(fs: &dyn FileSystem, path: &Path) -> Result<Chart, LoadError> {
    let mut budget = Budget::new();
    let rules = helmignore(fs, path)?;
    let mut files = Vec::new();
    walk(fs, path, "", &rules, &mut budget, &mut files, 0)?;
    load_files(files, &mut budget, 0)
}

/// `.helmignore` as gitignore rules, plus Helm's default (`templates/.?*`).
fn helmignore(fs: &dyn FileSystem, path: &Path) -> Result<ignore::gitignore::Gitignore, LoadError> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new("/");
    let file = path.join(".helmignore");
    if fs.exists(&file) && !fs.is_dir(&file) {
        let data = fs.read(&file).map_err(|cause| LoadError::Read {
            path: ".helmignore".into(),
            cause,
        })?;
        for line in String::from_utf8_lossy(&data).lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // A rule the gitignore syntax refuses is one Helm would not match either.
            let _ = builder.add_line(None, line);
        }
    }
    let _ = builder.add_line(None, "/templates/.?*");
    builder.build().map_err(|e| LoadError::Parse {
        file: ".helmignore".into(),
        message: e.to_string(),
    })
}

fn walk(
    fs: &dyn FileSystem,
    dir: &Path,
    rel: &str,
    rules: &ignore::gitignore::Gitignore,
    budget: &mut Budget,
    out: &mut Vec<File>,
    depth: usize,
) -> Result<(), LoadError> {
    if depth > MAX_DIR_DEPTH {
        return Err(LoadError::TooLarge(format!(
            "chart directories nest deeper than {MAX_DIR_DEPTH}"
        )));
    }
    let names = fs.read_dir(dir).map_err(|cause| LoadError::Read {
        path: if rel.is_empty() {
            ".".into()
        } else {
            rel.into()
        },
        cause,
    })?;
    for name in names {
        let path = dir.join(&name);
        let n = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = fs.is_dir(&path);
        if rules
            .matched_path_or_any_parents(Path::new("/").join(&n), is_dir)
            .is_ignore()
        {
            continue;
        }
        if is_dir {
            walk(fs, &path, &n, rules, budget, out, depth + 1)?;
            continue;
        }
        let data = fs.read(&path).map_err(|cause| LoadError::Read {
            path: n.clone(),
            cause,
        })?;
        budget.take(data.len() as u64)?;
        out.push(File {
            name: n,
            data: strip_bom(data),
        });
    }
    Ok(())
}

fn parse_yaml<T: serde::de::DeserializeOwned>(file: &str, data: &[u8]) -> Result<T, LoadError> {
    let text = String::from_utf8_lossy(data);
    lenient_yaml(&text).map_err(|message| LoadError::Parse {
        file: file.into(),
        message,
    })
}

/// YAML as `sigs.k8s.io/yaml` (go-yaml v2) reads it for Helm: under the one YAML budget, and a
/// key given twice keeps its last value instead of failing the document.
///
/// # Errors
/// The budget's or the parser's message.
pub fn lenient_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    ferroflux_gocompat::yaml::check(text).map_err(|e| e.to_string())?;
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    options.budget = None;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
}

/// [`lenient_yaml`] for every document of a stream.
///
/// # Errors
/// As [`lenient_yaml`].
pub fn lenient_yaml_documents<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<Vec<T>, String> {
    ferroflux_gocompat::yaml::check(text).map_err(|e| e.to_string())?;
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    options.budget = None;
    serde_saphyr::from_multiple_with_options(text, options).map_err(|e| e.to_string())
}

/// Helm's `LoadValues`: every YAML document of the file merged, later ones winning.
///
/// # Errors
/// The YAML reader's message.
pub fn load_values(data: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    let text = String::from_utf8_lossy(data);
    let docs: Vec<Value> = lenient_yaml_documents(&text)?;
    let mut out = Value::Object(serde_json::Map::new());
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(_) => crate::chartutil::merge_maps(&mut out, doc),
            other => {
                return Err(format!(
                    "cannot unmarshal yaml document: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_type(&other)
                ));
            }
        }
    }
    float_numbers(&mut out);
    match out {
        Value::Object(m) => Ok(m),
        _ => Ok(serde_json::Map::new()),
    }
}

/// `sigs.k8s.io/yaml` hands every number of a values file to Helm as a `float64`: so do we
/// (`--set` values, typed by `strvals`, stay integers).
pub fn float_numbers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_f64() => {
            if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = f;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(float_numbers),
        Value::Object(m) => m.values_mut().for_each(float_numbers),
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Helm's `LoadFiles`: sorts a chart's files into their roles and loads subcharts.
fn load_files(files: Vec<File>, budget: &mut Budget, depth: usize) -> Result<Chart, LoadError> {
    let mut c = Chart::default();
    let chartfile = files.iter().find(|f| f.name == "Chart.yaml");
    let Some(chartfile) = chartfile else {
        return Err(LoadError::NoChartfile);
    };
    c.metadata = parse_yaml("Chart.yaml", &chartfile.data)?;
    if c.metadata.api_version.is_empty() {
        c.metadata.api_version = crate::chartutil::API_VERSION_V1.into();
    }
    let v1 = c.metadata.api_version == crate::chartutil::API_VERSION_V1;
    let mut subcharts: std::collections::BTreeMap<String, Vec<File>> = Default::default();
    for f in files {
        match f.name.as_str() {
            "Chart.yaml" => {}
            "Chart.lock" | "requirements.lock" => {
                c.lock = Some(parse_yaml(&f.name, &f.data)?);
                if f.name == "requirements.lock" && v1 {
                    c.files.push(f);
                }
            }
            "values.yaml" => {
                c.values = load_values(&f.data).map_err(|message| LoadError::Parse {
                    file: "values.yaml".into(),
                    message,
                })?;
            }
            "values.schema.json" => c.schema = Some(f.data),
            "requirements.yaml" => {
                #[derive(serde::Deserialize)]
                struct Requirements {
                    #[serde(default)]
                    dependencies: Vec<crate::chartutil::Dependency>,
                }
                let req: Requirements = parse_yaml("requirements.yaml", &f.data)?;
                c.metadata.dependencies = req.dependencies;
                if v1 {
                    c.files.push(f);
                }
            }
            n if n.starts_with("templates/") => c.templates.push(f),
            n if n.starts_with("charts/") && !n.ends_with(".prov") => {
                let rest = &n["charts/".len()..];
                let (cname, _) = rest.split_once('/').unwrap_or((rest, ""));
                let cname = cname.to_string();
                let inner = File {
                    name: rest.to_string(),
                    data: f.data,
                };
                subcharts.entry(cname).or_default().push(inner);
            }
            _ => c.files.push(f),
        }
    }
    c.metadata.validate()?;
    for (n, files) in subcharts {
        if n.starts_with(['_', '.']) {
            continue;
        }
        let sub = load_subchart(&n, files, budget, depth + 1).map_err(|e| LoadError::Subchart {
            name: n.clone(),
            parent: c.metadata.name.clone(),
            cause: Box::new(e),
        })?;
        if let Some(sub) = sub {
            c.dependencies.push(sub);
        }
    }
    Ok(c)
}

fn load_subchart(
    n: &str,
    files: Vec<File>,
    budget: &mut Budget,
    depth: usize,
) -> Result<Option<Chart>, LoadError> {
    if depth > MAX_SUBCHART_DEPTH {
        return Err(LoadError::TooLarge(format!(
            "subcharts nest deeper than {MAX_SUBCHART_DEPTH}"
        )));
    }
    if n.ends_with(".tgz") {
        let Some(file) = files.into_iter().next() else {
            return Ok(None);
        };
        if file.name != n {
            return Err(LoadError::Archive(format!(
                "error unpacking subchart tar: expected {n}, got {}",
                file.name
            )));
        }
        return load_archive_within(&file.data, budget, depth).map(Some);
    }
    let inner: Vec<File> = files
        .into_iter()
        .filter_map(|f| {
            let (_, rest) = f.name.split_once('/')?;
            Some(File {
                name: rest.to_string(),
                data: f.data,
            })
        })
        .collect();
    load_files(inner, budget, depth).map(Some)
}
