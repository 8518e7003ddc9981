use ferroflux_api::kustomize::{CrossNamespaceSourceReference, KustomizationSpec};
use ferroflux_api::meta::{Image, Patch, Selector};
use serde_json::json;

use super::*;
use crate::rootfs::RootedFs;

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

    let fs = RootedFs::new(root).expect("root exists");
    assert!(find_kustomization(&fs, root).is_none());
    let resources = discover_resources(&fs, root).expect("scans");
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
    let fs = RootedFs::new(dir.path()).expect("root exists");
    let err = discover_resources(&fs, dir.path()).expect_err("not a manifest");
    assert!(err.to_string().contains("values.yaml"), "{err}");
    std::fs::write(dir.path().join("values.yaml"), "a: [unclosed\n").expect("write");
    let err = discover_resources(&fs, dir.path()).expect_err("not YAML");
    assert!(
        err.to_string()
            .starts_with("failed to decode Kubernetes YAML from"),
        "{err}"
    );
}

#[test]
fn an_alias_bomb_in_a_discovered_file_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("bomb.yaml"),
        include_str!("../../../../gocompat/testdata/alias-bomb.yaml"),
    )
    .expect("write");
    let fs = RootedFs::new(dir.path()).expect("root exists");
    let start = std::time::Instant::now();
    let err = discover_resources(&fs, dir.path()).expect_err("bomb");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert!(err.to_string().contains("bomb.yaml"), "{err}");
    assert!(
        err.to_string()
            .ends_with("yaml: document contains excessive aliasing"),
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

#[test]
fn symlinks_out_of_the_root_are_neither_walked_nor_read() {
    // The pen test's chain: `a/up -> ..` and `a/b -> up/a/up/a/up/a/up/../../..` pass a
    // lexical check; followed, `a/b` is the directory above the artifact root.
    let host = tempfile::tempdir().expect("temp dir");
    let root = host.path().join("artifact");
    std::fs::create_dir_all(root.join("a")).expect("mkdir");
    std::fs::write(
        host.path().join("host-secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: host}\nstringData: {token: hunter2}\n",
    )
    .expect("write");
    std::fs::write(
        root.join("a/app.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("..", root.join("a/up")).expect("symlink");
    std::os::unix::fs::symlink("up/a/up/a/up/a/up/../../..", root.join("a/b")).expect("symlink");
    std::os::unix::fs::symlink(host.path().join("host-secret.yaml"), root.join("abs.yaml"))
        .expect("symlink");
    let fs = RootedFs::new(&root).expect("root exists");
    let resources = discover_resources(&fs, &root).expect("scans");
    assert_eq!(resources, ["./a/app.yaml"]);
    for path in ["a/b/host-secret.yaml", "abs.yaml", "a/up/a/app.yaml"] {
        assert!(fs.read(&root.join(path)).is_err(), "{path} was read");
    }
}

#[test]
fn a_symlinked_kustomization_file_is_not_used() {
    let host = tempfile::tempdir().expect("temp dir");
    let root = host.path().join("artifact");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(
        host.path().join("outside.yaml"),
        "resources: [/etc/passwd]\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(
        host.path().join("outside.yaml"),
        root.join("kustomization.yaml"),
    )
    .expect("symlink");
    let fs = RootedFs::new(&root).expect("root exists");
    assert!(find_kustomization(&fs, &root).is_none());
}
