//! Bad input gives upstream's errors, never a panic.

use std::path::Path;

use ferroflux_kustomize::fs::MemFs;
use ferroflux_kustomize::{LoadRestrictor, Options, Reorder, build};

fn opts() -> Options {
    Options {
        reorder: Reorder::None,
        load_restrictor: LoadRestrictor::RootOnly,
    }
}

fn err_of(fs: &MemFs, dir: &str) -> String {
    build(fs, Path::new(dir), opts())
        .expect_err("the build must fail")
        .to_string()
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

#[test]
fn invalid_yaml_names_the_file_and_line() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources:\n- bad.yaml\n")
        .add(
            "app/bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
        );
    let e = err_of(&fs, "/app");
    assert!(e.contains("/app/bad.yaml"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn alias_bomb_fails_fast_with_go_yamls_message() {
    let bomb = include_str!("../../gocompat/testdata/alias-bomb.yaml");
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources:\n- bomb.yaml\n")
        .add("app/bomb.yaml", bomb);
    let start = std::time::Instant::now();
    let e = err_of(&fs, "/app");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(e.contains("/app/bomb.yaml"), "{e}");
    assert!(
        e.contains("yaml: document contains excessive aliasing"),
        "{e}"
    );

    // The same bomb as the kustomization file itself.
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", bomb);
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("yaml: document contains excessive aliasing"),
        "{e}"
    );
}

#[test]
fn invalid_kustomization_yaml_is_reported() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources: [a\n");
    let e = err_of(&fs, "/app");
    assert!(e.contains("kustomization.yaml"), "{e}");
}

#[test]
fn cycles_are_detected() {
    let mut fs = MemFs::new();
    fs.add("a/kustomization.yaml", "resources:\n- ../b\n")
        .add("b/kustomization.yaml", "resources:\n- ../a\n");
    let e = err_of(&fs, "/a");
    assert!(e.contains("cycle detected"), "{e}");
}

#[test]
fn missing_files_and_kustomizations() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources:\n- nothere.yaml\n");
    assert!(err_of(&fs, "/app").contains("accumulating resources"));
    let mut fs = MemFs::new();
    fs.add_dir("empty");
    assert!(err_of(&fs, "/empty").contains("unable to find one of 'kustomization.yaml'"));
}

#[test]
fn files_outside_the_root_need_load_restrictions_none() {
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- ../shared/cm.yaml\n",
    )
    .add("shared/cm.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("security; file '/shared/cm.yaml' is not in or below '/app'"),
        "{e}"
    );
    let relaxed = Options {
        load_restrictor: LoadRestrictor::None,
        ..opts()
    };
    let out = build(&fs, Path::new("/app"), relaxed).expect("allowed without restrictions");
    assert!(out.contains("name: c"));
}

#[test]
fn remote_bases_and_helm_charts_are_refused_clearly() {
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- github.com/example/repo//deploy?ref=v1\n",
    );
    let e = err_of(&fs, "/app");
    assert!(e.contains("remote"), "{e}");
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "helmCharts:\n- name: nginx\n  repo: https://charts.example.com\n",
    );
    let e = err_of(&fs, "/app");
    assert!(e.contains("not supported yet"), "{e}");
}

#[test]
fn duplicate_ids_and_unmatched_patches() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n")
        .add("app/a.yaml", CM)
        .add("app/b.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("already registered id: ConfigMap.v1.[noGrp]/c.[noNs]"),
        "{e}"
    );

    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- a.yaml\npatchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: other\n",
    )
    .add("app/a.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(e.contains("failed to find unique target for patch"), "{e}");

    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- a.yaml\npatches:\n- patch: '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\n",
    )
    .add("app/a.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(e.contains("must specify a target for JSON patch"), "{e}");
}

#[test]
fn components_must_be_components() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "components:\n- ../base\n")
        .add("base/kustomization.yaml", "resources: []\n");
    let e = err_of(&fs, "/app");
    assert!(e.contains("expected kind 'Component'"), "{e}");
}

#[test]
fn kustomization_fields_are_checked_like_upstream() {
    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "namePrefx: a-\n");
    let e = err_of(&fs, "/app");
    assert!(e.contains("json: unknown field \"namePrefx\""), "{e}");

    // Field names match case-insensitively.
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "nameprefix: a-\nresources:\n- cm.yaml\n",
    )
    .add("app/cm.yaml", CM);
    let out = build(&fs, Path::new("/app"), opts()).expect("builds");
    assert!(out.contains("name: a-c"), "{out}");

    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\n",
    );
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("apiVersion for Component should be kustomize.config.k8s.io/v1alpha1"),
        "{e}"
    );
}

#[test]
fn replicas_for_an_unknown_name_and_non_string_keys_fail() {
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\nreplicas:\n- name: nothere\n  count: 2\n",
    )
    .add("app/cm.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("resource with name nothere does not match"),
        "{e}"
    );

    let mut fs = MemFs::new();
    fs.add("app/kustomization.yaml", "resources:\n- cm.yaml\n")
        .add("app/cm.yaml", format!("{CM}data:\n  1: a\n"));
    let e = err_of(&fs, "/app");
    assert!(e.contains("not a string"), "{e}");
}

#[test]
fn target_selector_regex_is_read_with_gos_syntax() {
    // `(?x)` is a flag of the regex crate only: kustomize (Go's regexp) refuses the selector.
    let mut fs = MemFs::new();
    fs.add(
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\npatches:\n- target:\n    name: \"(?x) c\"\n  patch: |-\n    - op: add\n      path: /data\n      value: {}\n",
    )
    .add("app/cm.yaml", CM);
    let e = err_of(&fs, "/app");
    assert!(
        e.contains("invalid name selector '(?x) c': error parsing regexp: invalid or unsupported Perl syntax: `(?x`"),
        "{e}"
    );
}
