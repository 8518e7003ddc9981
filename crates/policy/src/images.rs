//! Container images as Kyverno reads them (`pkg/utils/image`, `pkg/utils/api/image.go`): the
//! `image_normalize` function and the `images` context variable, which maps each container
//! of a Pod or a Pod controller to its registry, path, tag and digest.

use serde_json::{Map, Value, json};

/// The registry Kyverno puts in front of an image without one.
const DEFAULT_REGISTRY: &str = "docker.io";

/// One image reference, split as Kyverno's `ImageInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `docker.io`, `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// The repository path without the registry (`library/nginx`, `nginx`).
    pub path: String,
    /// The tag; `latest` when neither a tag nor a digest is given.
    pub tag: String,
    /// `sha256:...` or empty.
    pub digest: String,
}

impl ImageInfo {
    /// `GetImageInfo`: the default registry added when the first component is not a host
    /// (no `.` or `:`, not `localhost`, all lowercase), then the reference checked.
    ///
    /// # Errors
    /// `bad image: ...` when the text is not an image reference.
    pub fn parse(image: &str) -> Result<ImageInfo, String> {
        let bad = || format!("bad image: {image}");
        let first = image.split('/').next().unwrap_or_default();
        let full = if !image.contains('/')
            || (!first.contains(['.', ':'])
                && first != "localhost"
                && first.to_lowercase() == first)
        {
            format!("{DEFAULT_REGISTRY}/{image}")
        } else {
            image.to_string()
        };
        let (name, digest) = match full.split_once('@') {
            Some((name, digest)) => (name, digest),
            None => (full.as_str(), ""),
        };
        let slash = name.find('/').ok_or_else(bad)?;
        let last_slash = name.rfind('/').ok_or_else(bad)?;
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], &name[last_slash + i + 1..]),
            None => (name, ""),
        };
        let (registry, path) = (&repository[..slash], &repository[slash + 1..]);
        if !(valid_path(path) && valid_tag(tag) && valid_digest(digest)) || registry.is_empty() {
            return Err(bad());
        }
        let tag = if tag.is_empty() && digest.is_empty() {
            "latest"
        } else {
            tag
        };
        Ok(ImageInfo {
            registry: registry.to_string(),
            path: path.to_string(),
            tag: tag.to_string(),
            digest: digest.to_string(),
        })
    }

    /// `String()`: `registry/path@digest`, else `registry/path:tag`.
    pub fn reference(&self) -> String {
        if self.digest.is_empty() {
            format!("{}/{}:{}", self.registry, self.path, self.tag)
        } else {
            format!("{}/{}@{}", self.registry, self.path, self.digest)
        }
    }

    /// The JSON of the `images` variable for one container, `jsonPointer` its image field.
    fn to_json(&self, pointer: &str) -> Value {
        let mut out = Map::new();
        out.insert("registry".into(), json!(self.registry));
        let name = self.path.rsplit('/').next().unwrap_or_default();
        out.insert("name".into(), json!(name));
        out.insert("path".into(), json!(self.path));
        if !self.tag.is_empty() {
            out.insert("tag".into(), json!(self.tag));
        }
        if !self.digest.is_empty() {
            out.insert("digest".into(), json!(self.digest));
        }
        out.insert("reference".into(), json!(self.reference()));
        out.insert(
            "referenceWithTag".into(),
            json!(format!("{}/{}:{}", self.registry, self.path, self.tag)),
        );
        out.insert("jsonPointer".into(), json!(pointer));
        Value::Object(out)
    }
}

fn valid_path(path: &str) -> bool {
    path.split('/').all(|c| {
        !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
    })
}

fn valid_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn valid_digest(digest: &str) -> bool {
    digest.is_empty()
        || digest
            .split_once(':')
            .is_some_and(|(alg, hex)| !alg.is_empty() && hex.len() >= 32)
}

/// Where a kind keeps its Pod spec (Kyverno's standard image extractors).
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "DaemonSet"
        | "Deployment"
        | "Job"
        | "ReplicaSet"
        | "ReplicationController"
        | "StatefulSet" => Some(&["spec", "template", "spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// `AddImageInfos`: `{containers: {name: info}, initContainers: ..., ephemeralContainers: ...}`
/// of `resource`, `None` when it has no images (then `images` stays unset, as in Kyverno).
/// Images that do not parse are left out.
pub fn of(resource: &Value) -> Option<Value> {
    let path = pod_spec_path(resource.get("kind")?.as_str()?)?;
    let mut spec = resource;
    for key in path {
        spec = spec.get(key)?;
    }
    let mut out = Map::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get(list) else {
            continue;
        };
        let mut by_name = Map::new();
        for (i, container) in containers.iter().enumerate() {
            let (Some(name), Some(image)) = (
                container.get("name").and_then(Value::as_str),
                container.get("image").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Ok(info) = ImageInfo::parse(image) {
                let pointer = format!("/{}/{list}/{i}/image", path.join("/"));
                by_name.insert(name.to_string(), info.to_json(&pointer));
            }
        }
        if !by_name.is_empty() {
            out.insert(list.to_string(), Value::Object(by_name));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_of_pods_and_controllers() {
        let pod = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "web", "image": "foo.io/nginx:1.7.9"},
            {"name": "side", "image": "busybox"}]}});
        let images = of(&pod).expect("has images");
        assert_eq!(images["containers"]["web"]["registry"], "foo.io");
        assert_eq!(images["containers"]["web"]["tag"], "1.7.9");
        assert_eq!(
            images["containers"]["side"]["reference"],
            "docker.io/busybox:latest"
        );
        assert_eq!(
            images["containers"]["side"]["jsonPointer"],
            "/spec/containers/1/image"
        );
        let deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef"}]}}}});
        let images = of(&deployment).expect("has images");
        assert_eq!(images["initContainers"]["init"]["path"], "a/b");
        assert!(images["initContainers"]["init"].get("tag").is_none());
        assert_eq!(of(&json!({"kind": "ConfigMap", "data": {}})), None);
        assert_eq!(of(&json!({"kind": "Pod", "spec": {}})), None);
    }
}
