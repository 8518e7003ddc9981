//! The layout of a fleet repository as kustomize and Flux read it: which files are
//! kustomization files, which are patches (checked as partial objects), and which files are
//! built together (where the same object twice is an error).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferroflux_kustomize::loader::{KUSTOMIZATION_FILE_NAMES, is_remote};
use serde_json::Value;

/// Largest manifest read; a fleet's biggest file (`gotk-components.yaml` with every CRD) is a
/// few megabytes.
const MAX_FILE_BYTES: u64 = 32 << 20;
/// Most files visited under the given paths.
const MAX_FILES: usize = 100_000;
/// Deepest chain of kustomizations listing each other under `resources:`, as a bound against
/// pathological trees (cycles are cut separately).
const MAX_DEPTH: usize = 64;

/// How a file listed as a patch is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `patches:` and `patchesStrategicMerge:`: kustomize reads a list as JSON 6902
    /// operations and anything else as strategic-merge patches.
    Auto,
    /// `patchesJson6902:`: always a list of operations.
    Json6902,
}

/// A file under the given paths.
pub struct File {
    /// The path as the user named it (printed in messages).
    pub shown: PathBuf,
    /// The canonical path (matched against kustomization entries).
    pub real: PathBuf,
}

/// One kustomization file's entries that matter to validation.
struct Kustomization {
    dir: PathBuf,
    namespace: Option<String>,
    resources: Vec<PathBuf>,
}

/// The files to check and their roles.
pub struct Tree {
    /// Every file found, sorted, kustomization files included.
    pub files: Vec<File>,
    /// Canonical paths of kustomization files.
    pub kustomization_files: BTreeSet<PathBuf>,
    /// Canonical paths of files listed as patches, with how kustomize reads them.
    pub patches: BTreeMap<PathBuf, PatchKind>,
    /// Groups of files built together, each file with the namespace kustomize forces on its
    /// objects (`namespace:` of the nearest kustomization that sets one).
    pub builds: Vec<Vec<(PathBuf, Option<String>)>>,
    /// Problems of kustomization files (unreadable, unknown fields), with the file.
    pub kustomization_problems: Vec<(PathBuf, String)>,
}

/// Reads a file of at most [`MAX_FILE_BYTES`].
pub fn read(path: &Path) -> anyhow::Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_FILE_BYTES,
        "{} is larger than {} MiB",
        path.display(),
        MAX_FILE_BYTES >> 20
    );
    Ok(text)
}

fn is_kustomization_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| KUSTOMIZATION_FILE_NAMES.contains(&n))
}

impl Tree {
    /// Finds the files under `paths` and reads their kustomization files.
    pub fn scan(paths: &[PathBuf]) -> anyhow::Result<Tree> {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files)?;
        }
        let mut tree = Tree {
            files: Vec::new(),
            kustomization_files: BTreeSet::new(),
            patches: BTreeMap::new(),
            builds: Vec::new(),
            kustomization_problems: Vec::new(),
        };
        for shown in files {
            let real = std::fs::canonicalize(&shown)
                .with_context(|| format!("cannot read {}", shown.display()))?;
            if !tree.files.iter().any(|f: &File| f.real == real) {
                tree.files.push(File { shown, real });
            }
        }
        let mut kustomizations = BTreeMap::new();
        for file in &tree.files {
            if !is_kustomization_file(&file.real) {
                continue;
            }
            tree.kustomization_files.insert(file.real.clone());
            let Some(dir) = file.real.parent() else {
                continue;
            };
            match read(&file.real).and_then(|text| parse(&text, dir, &mut tree.patches)) {
                Ok((k, unknown)) => {
                    kustomizations.insert(dir.to_path_buf(), k);
                    tree.kustomization_problems
                        .extend(unknown.into_iter().map(|key| {
                            // kustomize's words.
                            let problem =
                                format!("invalid Kustomization: json: unknown field \"{key}\"");
                            (file.shown.clone(), problem)
                        }));
                }
                Err(err) => tree.kustomization_problems.push((
                    file.shown.clone(),
                    format!("not a valid kustomization: {err:#}"),
                )),
            }
        }
        tree.builds = builds(&tree.files, &kustomizations, &tree.patches);
        Ok(tree)
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(
        out.len() < MAX_FILES,
        "more than {MAX_FILES} files under the given paths"
    );
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
            if entry.is_dir() || is_yaml || is_kustomization_file(&entry) {
                collect(&entry, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// A kustomization file's resources, namespace and patch files, and the top-level fields
/// kustomize does not know; patch files are added to `patches` (canonical paths; entries
/// naming missing files are left to kustomize).
fn parse(
    text: &str,
    dir: &Path,
    patches: &mut BTreeMap<PathBuf, PatchKind>,
) -> anyhow::Result<(Kustomization, Vec<String>)> {
    let docs: Vec<Value> =
        ferroflux_gocompat::yaml::from_multiple(text).context("not valid YAML")?;
    let doc = docs.into_iter().find(|d| !d.is_null()).unwrap_or_default();
    let unknown = doc
        .as_object()
        .into_iter()
        .flat_map(|fields| fields.keys())
        .filter(|key| {
            !ferroflux_kustomize::KUSTOMIZATION_FIELDS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(key))
        })
        .cloned()
        .collect();
    let local = |entry: &str| -> Option<PathBuf> {
        (!is_remote(entry))
            .then(|| std::fs::canonicalize(dir.join(entry)).ok())
            .flatten()
    };
    let strings = |key: &str| -> Vec<String> {
        doc[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut add_patch = |entry: &str, kind: PatchKind| {
        if let Some(path) = local(entry) {
            patches.insert(path, kind);
        }
    };
    for (key, kind) in [
        ("patches", PatchKind::Auto),
        ("patchesJson6902", PatchKind::Json6902),
    ] {
        for patch in doc[key].as_array().into_iter().flatten() {
            if let Some(path) = patch["path"].as_str() {
                add_patch(path, kind);
            }
        }
    }
    // Entries of patchesStrategicMerge are file names or inline patches; only a one-line
    // entry can name a file.
    for entry in strings("patchesStrategicMerge") {
        if !entry.contains('\n') {
            add_patch(&entry, PatchKind::Auto);
        }
    }
    let mut resources = Vec::new();
    for entry in strings("resources").into_iter().chain(strings("bases")) {
        resources.extend(local(&entry));
    }
    let kustomization = Kustomization {
        dir: dir.to_path_buf(),
        namespace: doc["namespace"]
            .as_str()
            .filter(|ns| !ns.is_empty())
            .map(str::to_string),
        resources,
    };
    Ok((kustomization, unknown))
}

/// Groups of files built together: one per kustomization (its resources, followed into the
/// kustomizations it lists) and one per directory without a kustomization file (its files, as
/// Flux generates a kustomization for such a path). A directory without one is not followed
/// into its subdirectories: a repository root or `clusters/` would otherwise join overlays
/// that are never built together (production and staging define the same objects).
fn builds(
    files: &[File],
    kustomizations: &BTreeMap<PathBuf, Kustomization>,
    patches: &BTreeMap<PathBuf, PatchKind>,
) -> Vec<Vec<(PathBuf, Option<String>)>> {
    let mut out = Vec::new();
    for k in kustomizations.values() {
        let mut members = Vec::new();
        let mut stack = Vec::new();
        members_of(k, kustomizations, None, &mut stack, &mut members);
        out.push(members);
    }
    let mut plain_dirs: BTreeMap<&Path, Vec<(PathBuf, Option<String>)>> = BTreeMap::new();
    for file in files {
        let Some(dir) = file.real.parent() else {
            continue;
        };
        if !kustomizations.contains_key(dir)
            && !is_kustomization_file(&file.real)
            && !patches.contains_key(&file.real)
        {
            plain_dirs
                .entry(dir)
                .or_default()
                .push((file.real.clone(), None));
        }
    }
    out.extend(plain_dirs.into_values());
    out
}

fn members_of(
    k: &Kustomization,
    all: &BTreeMap<PathBuf, Kustomization>,
    outer_namespace: Option<&str>,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<(PathBuf, Option<String>)>,
) {
    if stack.len() >= MAX_DEPTH || stack.contains(&k.dir) {
        return;
    }
    stack.push(k.dir.clone());
    // An outer kustomization's namespace overrides the one of the kustomizations it lists.
    let namespace = outer_namespace.or(k.namespace.as_deref());
    for resource in &k.resources {
        if let Some(inner) = all.get(resource) {
            members_of(inner, all, namespace, stack, out);
        } else if resource.is_file() {
            out.push((resource.clone(), namespace.map(str::to_string)));
        }
    }
    stack.pop();
}
