//! The `kustomization.yaml` Flux builds from: the one in the source path (or, when there is
//! none, a generated one listing every Kubernetes manifest below the path), with the
//! Kustomization's `targetNamespace`, `namePrefix`, `nameSuffix`, `patches`, `images`,
//! `components` and `buildMetadata` laid over it.

use std::path::{Path, PathBuf};

use ferroflux_api::kustomize::KustomizationSpec;
use ferroflux_kustomize::fs::FileSystem;
use serde_json::{Map, Value, json};

use crate::rootfs::RootedFs;

/// File names kustomize recognises as a kustomization, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: &[&str] =
    &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Why the overlay could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// A directory or file under the path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML file that is not a Kubernetes manifest stream.
    #[error("failed to decode Kubernetes YAML from {path}: {reason}")]
    NotKubernetesYaml {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The existing kustomization file is not a YAML map.
    #[error("{path} is not a valid kustomization: {reason}")]
    BadKustomization {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The kustomization file directly in `dir`, if any (a symlink never counts).
pub fn find_kustomization(fs: &RootedFs, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| fs.is_file(path))
}

/// Every resource below `dir` as kustomize paths (`./apps/deploy.yaml`), as Flux generates
/// them: YAML manifests in lexical walk order; a sub-directory that holds its own
/// kustomization is listed as a directory and not descended into. Symlinks are skipped, as
/// Flux drops them from artifacts.
pub fn discover_resources(fs: &RootedFs, dir: &Path) -> Result<Vec<String>, GeneratorError> {
    let mut found = Vec::new();
    walk(fs, dir, dir, 0, &mut found)?;
    Ok(found)
}

/// Deepest directory nesting walked; an artifact's directories are bounded by its entry
/// count, this keeps the recursion bounded too.
const MAX_DEPTH: usize = 256;

fn walk(
    fs: &RootedFs,
    root: &Path,
    dir: &Path,
    depth: usize,
    found: &mut Vec<String>,
) -> Result<(), GeneratorError> {
    let relative = |path: &Path| {
        let rel = path.strip_prefix(root).unwrap_or(path);
        format!("./{}", rel.to_string_lossy())
    };
    let read = |path: &Path, source| GeneratorError::Read {
        path: path.to_path_buf(),
        source,
    };
    if depth > MAX_DEPTH {
        return Err(read(
            dir,
            std::io::Error::other(format!("directories nest deeper than {MAX_DEPTH} levels")),
        ));
    }
    for (name, kind) in fs.read_dir(dir).map_err(|e| read(dir, e))? {
        let path = dir.join(name);
        if kind.is_dir() {
            if find_kustomization(fs, &path).is_some() {
                found.push(relative(&path));
            } else {
                walk(fs, root, &path, depth + 1, found)?;
            }
            continue;
        }
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if !kind.is_file() || !is_yaml {
            continue;
        }
        let bytes = fs.read(&path).map_err(|e| read(&path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| GeneratorError::NotKubernetesYaml {
            path: path.clone(),
            reason: "the file is not UTF-8".into(),
        })?;
        check_manifests(&path, &text)?;
        found.push(relative(&path));
    }
    Ok(())
}

fn check_manifests(path: &Path, text: &str) -> Result<(), GeneratorError> {
    let bad = |reason: String| GeneratorError::NotKubernetesYaml {
        path: path.to_path_buf(),
        reason,
    };
    let docs: Vec<Value> =
        ferroflux_gocompat::yaml::from_multiple(text).map_err(|e| bad(e.to_string()))?;
    for doc in docs.iter().filter(|d| !d.is_null()) {
        if doc["apiVersion"].as_str().is_none() || doc["kind"].as_str().is_none() {
            return Err(bad("a document has no apiVersion or kind".into()));
        }
    }
    Ok(())
}

/// Lays the Kustomization's build settings over `base` (the existing kustomization, or `None`
/// to generate one listing `discovered`).
pub fn overlay(
    base: Option<Value>,
    discovered: &[String],
    spec: &KustomizationSpec,
) -> Result<Value, String> {
    let mut kustomization = match base {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            let mut map = Map::new();
            map.insert("resources".into(), json!(discovered));
            map
        }
        Some(other) => return Err(format!("expected a YAML map, found {other}")),
    };
    kustomization
        .entry("apiVersion")
        .or_insert_with(|| json!("kustomize.config.k8s.io/v1beta1"));
    kustomization
        .entry("kind")
        .or_insert_with(|| json!("Kustomization"));
    if let Some(namespace) = &spec.target_namespace {
        kustomization.insert("namespace".into(), json!(namespace));
    }
    if let Some(prefix) = &spec.name_prefix {
        kustomization.insert("namePrefix".into(), json!(prefix));
    }
    if let Some(suffix) = &spec.name_suffix {
        kustomization.insert("nameSuffix".into(), json!(suffix));
    }
    // Flux's generator sets (not merges) the kustomization's buildMetadata from the spec.
    if let Some(options) = spec.build_metadata.as_ref().filter(|o| !o.is_empty()) {
        kustomization.insert("buildMetadata".into(), json!(options));
    }
    if let Some(components) = &spec.components {
        append(
            &mut kustomization,
            "components",
            components.iter().map(|c| json!(c)),
        );
    }
    if let Some(patches) = &spec.patches {
        let patches = patches
            .iter()
            .map(|p| serde_json::to_value(p).expect("patches are plain data and always serialise"));
        append(&mut kustomization, "patches", patches);
    }
    for image in spec.images.iter().flatten() {
        let value =
            serde_json::to_value(image).expect("images are plain data and always serialise");
        let images = kustomization.entry("images").or_insert_with(|| json!([]));
        if !images.is_array() {
            *images = json!([]);
        }
        let list = images.as_array_mut().expect("made an array just above");
        match list.iter_mut().find(|i| i["name"] == json!(image.name)) {
            Some(existing) => *existing = value,
            None => list.push(value),
        }
    }
    Ok(Value::Object(kustomization))
}

fn append(map: &mut Map<String, Value>, key: &str, items: impl Iterator<Item = Value>) {
    let entry = map.entry(key).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry
        .as_array_mut()
        .expect("made an array just above")
        .extend(items);
}

#[cfg(test)]
mod tests;
