use ferroflux_api::kustomize::{CrossNamespaceSourceReference, KustomizationSpec};
use ferroflux_api::meta::{Image, Patch, Selector};
use serde_json::json;

use super::*;

fn spec() -> KustomizationSpec {
    KustomizationSpec {
        interval: "10m".into(),
        prune: true,
        source_ref: CrossNamespaceSourceReference {
            kind: "GitRepository".into(),
            name: "flux-system".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn a_missing_kustomization_is_generated_from_the_discovered_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("apps/base")).expect("mkdir");
    std::fs::create_dir_all(root.join("infra")).expect("mkdir");
    std::fs::write(root.join("apps/base/kustomization.yaml"), "resources: []\n").expect("write");
    std::fs::write(
        root.join("apps/base/deploy.yaml"),
        "kind: ignored-by-walk\n",
    )
    .expect("write");
    std::fs::write(root.join("infra/ns.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n").expect("write");
    std::fs::write(root.join("README.md"), "# not a manifest").expect("write");
    std::fs::write(
        root.join("a.yml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .expect("write");

    assert!(find_kustomization(root).is_none());
    let resources = discover_resources(root).expect("scans");
    assert_eq!(resources, ["./a.yml", "./apps/base", "./infra/ns.yaml"]);

    let generated = overlay(None, &resources, &spec()).expect("overlays");
    assert_eq!(
        generated,
        json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": ["./a.yml", "./apps/base", "./infra/ns.yaml"]})
    );
}

#[test]
fn a_yaml_file_that_is_not_a_manifest_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("values.yaml"), "replicas: 3\n").expect("write");
    let err = discover_resources(dir.path()).expect_err("not a manifest");
    assert!(err.to_string().contains("values.yaml"), "{err}");
    std::fs::write(dir.path().join("values.yaml"), "a: [unclosed\n").expect("write");
    let err = discover_resources(dir.path()).expect_err("not YAML");
    assert!(
        err.to_string()
            .starts_with("failed to decode Kubernetes YAML from"),
        "{err}"
    );
}

#[test]
fn spec_settings_are_laid_over_an_existing_kustomization() {
    let existing = json!({"resources": ["deploy.yaml"], "namespace": "default",
        "images": [{"name": "podinfo", "newTag": "1.0.0"}, {"name": "redis", "newTag": "7"}],
        "patches": [{"path": "patch.yaml"}]});
    let mut spec = spec();
    spec.target_namespace = Some("team-a".into());
    spec.name_prefix = Some("a-".into());
    spec.components = Some(vec!["../components/monitoring".into()]);
    spec.images = Some(vec![Image {
        name: "podinfo".into(),
        new_tag: Some("6.5.0".into()),
        ..Default::default()
    }]);
    spec.patches = Some(vec![Patch {
        patch: "- op: replace\n  path: /spec/replicas\n  value: 2\n".into(),
        target: Some(Selector {
            kind: Some("Deployment".into()),
            ..Default::default()
        }),
    }]);
    let result = overlay(Some(existing), &[], &spec).expect("overlays");
    assert_eq!(result["namespace"], "team-a");
    assert_eq!(result["namePrefix"], "a-");
    assert_eq!(result["resources"], json!(["deploy.yaml"]));
    assert_eq!(result["components"], json!(["../components/monitoring"]));
    assert_eq!(
        result["images"],
        json!([{"name": "podinfo", "newTag": "6.5.0"}, {"name": "redis", "newTag": "7"}])
    );
    assert_eq!(result["patches"][0], json!({"path": "patch.yaml"}));
    assert_eq!(
        result["patches"][1]["target"],
        json!({"kind": "Deployment"})
    );
    assert_eq!(result["kind"], "Kustomization");
}

#[test]
fn a_kustomization_that_is_not_a_map_is_refused() {
    assert!(overlay(Some(json!(["a"])), &[], &spec()).is_err());
}
