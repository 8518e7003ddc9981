//! helm-controller's post-renderers, run on the rendered manifest (not on hooks) before it is
//! stored and applied, in Flux's order: each `spec.postRenderers[].kustomize` (patches and
//! images, through our kustomize engine on an in-memory tree, as Flux's own renderer builds a
//! kustomization over `helm-output.yaml`), then `spec.commonMetadata` (labels and annotations
//! on every object's `metadata`). The digests Flux records in `status` are here too: a change
//! of either triggers an upgrade.
//!
//! The patches are the tenant's: their count and size are bounded before anything runs, and
//! the engine reads nothing but the two files written for it.

use std::path::Path;

use ferroflux_api::helm::{HelmRelease, PostRenderer};
use ferroflux_api::meta::CommonMetadata;
use ferroflux_kustomize::fieldspec::FieldSpec;
use ferroflux_kustomize::fs::MemFs;
use ferroflux_kustomize::resource::{Gvk, ResMap};
use ferroflux_kustomize::yaml::Value as KValue;
use serde_json::json;

use crate::runtime::ReconcileError;

/// Post-renderers of one HelmRelease at most.
pub const MAX_POST_RENDERERS: usize = 32;
/// Kustomize patches and images, over all post-renderers, at most.
pub const MAX_ENTRIES: usize = 512;
/// Bytes of patches, image fields, common labels and annotations together at most.
pub const MAX_BYTES: usize = 1 << 20;

/// Where the in-memory kustomization lives, and Flux's name of the rendered input.
const ROOT: &str = "/helm";
const INPUT: &str = "helm-output.yaml";

/// Refuses post-renderers and common metadata past the bounds, Stalled with `InvalidSpec`:
/// only a change of the spec can fix them.
pub fn check_bounds(hr: &HelmRelease) -> Result<(), ReconcileError> {
    let renderers = hr.spec.post_renderers.as_deref().unwrap_or_default();
    let invalid =
        |message: String| ReconcileError::stalling(ferroflux_api::meta::reason::INVALID, message);
    if renderers.len() > MAX_POST_RENDERERS {
        return Err(invalid(format!(
            "spec.postRenderers: {} post-renderers, at most {MAX_POST_RENDERERS} are accepted",
            renderers.len()
        )));
    }
    let mut entries = 0usize;
    let mut bytes = 0usize;
    for kustomize in renderers.iter().filter_map(|r| r.kustomize.as_ref()) {
        for patch in kustomize.patches.iter().flatten() {
            entries += 1;
            bytes += patch.patch.len();
            if let Some(target) = &patch.target {
                bytes += [
                    &target.group,
                    &target.version,
                    &target.kind,
                    &target.namespace,
                    &target.name,
                    &target.annotation_selector,
                    &target.label_selector,
                ]
                .iter()
                .map(|s| s.as_deref().map_or(0, str::len))
                .sum::<usize>();
            }
        }
        for image in kustomize.images.iter().flatten() {
            entries += 1;
            bytes += image.name.len()
                + [&image.new_name, &image.new_tag, &image.digest]
                    .iter()
                    .map(|s| s.as_deref().map_or(0, str::len))
                    .sum::<usize>();
        }
    }
    if let Some(common) = &hr.spec.common_metadata {
        for map in [&common.labels, &common.annotations].into_iter().flatten() {
            entries += map.len();
            bytes += map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        }
    }
    if entries > MAX_ENTRIES {
        return Err(invalid(format!(
            "spec.postRenderers and spec.commonMetadata: {entries} patches, images and entries, at most {MAX_ENTRIES} are accepted"
        )));
    }
    if bytes > MAX_BYTES {
        return Err(invalid(format!(
            "spec.postRenderers and spec.commonMetadata: {bytes} bytes, at most {MAX_BYTES} are accepted"
        )));
    }
    Ok(())
}

/// Whether `hr` has anything to post-render (Flux's origin labels are added at apply time).
pub fn any(hr: &HelmRelease) -> bool {
    hr.spec
        .post_renderers
        .as_ref()
        .is_some_and(|p| p.iter().any(|r| r.kustomize.is_some()))
        || hr.spec.common_metadata.is_some()
}

/// Runs the post-renderers of `hr` on `manifest` (Helm's rendered manifest, hooks apart) and
/// returns the manifest to store and apply; the manifest itself when there is nothing to do.
/// CPU work: call it off the async threads.
pub fn run(
    manifest: &str,
    renderers: &[PostRenderer],
    common: Option<&CommonMetadata>,
) -> Result<String, String> {
    let mut out = manifest.to_string();
    for kustomize in renderers.iter().filter_map(|r| r.kustomize.as_ref()) {
        let kustomization = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [INPUT],
            "patches": kustomize.patches.clone().unwrap_or_default(),
            "images": kustomize.images.clone().unwrap_or_default(),
        });
        let mut fs = MemFs::new();
        fs.add(
            format!("{ROOT}/kustomization.yaml"),
            kustomization.to_string(),
        )
        .add(format!("{ROOT}/{INPUT}"), out.as_bytes());
        // Flux's kustomizer keeps the input order (no legacy sort) and loads nothing else.
        let options = ferroflux_kustomize::Options {
            reorder: ferroflux_kustomize::Reorder::None,
            load_restrictor: ferroflux_kustomize::LoadRestrictor::RootOnly,
        };
        out = ferroflux_kustomize::build(&fs, Path::new(ROOT), options)
            .map_err(|e| format!("error while running post render on files: {e}"))?;
    }
    if let Some(common) = common {
        out = common_metadata(&out, common)
            .map_err(|e| format!("error while running post render on files: {e}"))?;
    }
    Ok(out)
}

/// Flux's common-metadata renderer: labels on `metadata/labels`, annotations on
/// `metadata/annotations` of every object, created when missing (kustomize's transformers
/// with only those field specs).
fn common_metadata(manifest: &str, common: &CommonMetadata) -> Result<String, String> {
    let list = ferroflux_kustomize::resources_from_text(manifest, Path::new(INPUT))
        .map_err(|e| e.to_string())?;
    let mut resources = ResMap { list };
    for (entries, path) in [
        (&common.labels, "metadata/labels"),
        (&common.annotations, "metadata/annotations"),
    ] {
        let pairs: Vec<(String, String)> = entries
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let specs = [FieldSpec::new(Gvk::default(), path, true)];
        ferroflux_kustomize::transform::add_map_entries(&mut resources, &pairs, &specs)
            .map_err(|e| e.to_string())?;
    }
    let docs: Vec<KValue> = resources
        .list
        .into_iter()
        .map(|r| KValue::Map(r.obj))
        .collect();
    Ok(ferroflux_kustomize::yaml::to_yaml_stream(docs.iter()))
}

/// Flux's `postrender.Digest`: SHA-256 of the Go JSON encoding (with its newline) of
/// `spec.postRenderers`; `None` when unset.
pub fn post_renderers_digest(hr: &HelmRelease) -> Option<String> {
    hr.spec.post_renderers.as_ref().map(go_json_digest)
}

/// Flux's `postrender.CommonMetadataDigest` of `spec.commonMetadata`; `None` when unset.
pub fn common_metadata_digest(hr: &HelmRelease) -> Option<String> {
    hr.spec.common_metadata.as_ref().map(go_json_digest)
}

/// The digest of what Go's `json.Encoder` writes for `value`: the fields in declaration
/// order (as serde writes a struct), HTML characters escaped, a trailing newline.
fn go_json_digest<T: serde::Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut go = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => go.push_str("\\u003c"),
            '>' => go.push_str("\\u003e"),
            '&' => go.push_str("\\u0026"),
            '\u{2028}' => go.push_str("\\u2028"),
            '\u{2029}' => go.push_str("\\u2029"),
            c => go.push(c),
        }
    }
    go.push('\n');
    ferroflux_helm::release::sha256_digest(go.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::helm::Kustomize;
    use ferroflux_api::meta::{Image, Patch, Selector};

    const MANIFEST: &str = "---\n# Source: demo/templates/a.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0\n---\n# Source: demo/templates/b.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  a: b\n";

    #[test]
    fn kustomize_patches_images_then_common_metadata() {
        let renderers = vec![PostRenderer {
            kustomize: Some(Kustomize {
                patches: Some(vec![
                    Patch {
                        patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  patched: \"yes\"\n".into(),
                        target: None,
                    },
                    Patch {
                        patch: "- op: add\n  path: /metadata/labels\n  value: {tier: web}\n"
                            .into(),
                        target: Some(Selector {
                            kind: Some("Deployment".into()),
                            ..Selector::default()
                        }),
                    },
                ]),
                images: Some(vec![Image {
                    name: "nginx".into(),
                    new_tag: Some("2.0".into()),
                    ..Image::default()
                }]),
            }),
        }];
        let common = CommonMetadata {
            labels: Some([("team".to_string(), "a".to_string())].into()),
            annotations: Some([("note".to_string(), "x".to_string())].into()),
        };
        let out = run(MANIFEST, &renderers, Some(&common)).expect("post-renders");
        let docs: Vec<serde_json::Value> =
            ferroflux_gocompat::yaml::from_multiple(&out).expect("YAML");
        assert_eq!(docs[0]["kind"], "Deployment", "input order kept");
        assert_eq!(
            docs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2.0"
        );
        assert_eq!(docs[0]["metadata"]["labels"]["tier"], "web");
        assert_eq!(docs[0]["metadata"]["labels"]["team"], "a");
        assert!(
            docs[0]["spec"]["template"]["metadata"].is_null(),
            "only metadata, as Flux's renderer"
        );
        assert_eq!(docs[1]["data"]["patched"], "yes");
        assert_eq!(docs[1]["metadata"]["annotations"]["note"], "x");
    }

    #[test]
    fn a_patch_cannot_read_files() {
        let renderers = vec![PostRenderer {
            kustomize: Some(Kustomize {
                patches: Some(vec![Patch {
                    patch: "/etc/passwd".into(),
                    target: Some(Selector::default()),
                }]),
                images: None,
            }),
        }];
        assert!(run(MANIFEST, &renderers, None).is_err());
    }

    #[test]
    fn digests_are_flux_go_json() {
        let mut hr = HelmRelease::new("a", Default::default());
        assert_eq!(post_renderers_digest(&hr), None);
        hr.spec.post_renderers = Some(Vec::new());
        // Go's json.Encoder writes an empty slice as "[]" and a newline.
        assert_eq!(
            post_renderers_digest(&hr),
            Some(ferroflux_helm::release::sha256_digest(b"[]\n"))
        );
        hr.spec.common_metadata = Some(CommonMetadata {
            labels: Some([("a".to_string(), "<b>".to_string())].into()),
            annotations: None,
        });
        assert_eq!(
            common_metadata_digest(&hr),
            Some(ferroflux_helm::release::sha256_digest(
                b"{\"labels\":{\"a\":\"\\u003cb\\u003e\"}}\n"
            ))
        );
    }

    #[test]
    fn bounds_are_enforced() {
        let mut hr = HelmRelease::new("a", Default::default());
        hr.spec.post_renderers = Some(vec![PostRenderer::default(); MAX_POST_RENDERERS + 1]);
        assert!(check_bounds(&hr).is_err());
        hr.spec.post_renderers = Some(vec![PostRenderer {
            kustomize: Some(Kustomize {
                patches: Some(vec![Patch {
                    patch: "x".repeat(MAX_BYTES + 1),
                    target: None,
                }]),
                images: None,
            }),
        }]);
        let err = check_bounds(&hr).expect_err("too large");
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);
    }
}
