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

/// A file system holding `files` (path, content); a path ending in `/` is an empty directory.
fn fs_of(files: &[(&str, &str)]) -> MemFs {
    let mut fs = MemFs::new();
    for (path, content) in files {
        match path.strip_suffix('/') {
            Some(dir) => fs.add_dir(dir),
            None => fs.add(path, content),
        };
    }
    fs
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";

/// A build that must fail: what it shows, the files, the directory built and what the error
/// must contain.
struct Case {
    what: &'static str,
    files: &'static [(&'static str, &'static str)],
    root: &'static str,
    wants: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "invalid YAML names the file and line",
        files: &[
            ("app/kustomization.yaml", "resources:\n- bad.yaml\n"),
            (
                "app/bad.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
            ),
        ],
        root: "/app",
        wants: &["/app/bad.yaml", "line"],
    },
    Case {
        what: "an invalid kustomization.yaml is reported",
        files: &[("app/kustomization.yaml", "resources: [a\n")],
        root: "/app",
        wants: &["kustomization.yaml"],
    },
    Case {
        what: "cycles are detected",
        files: &[
            ("a/kustomization.yaml", "resources:\n- ../b\n"),
            ("b/kustomization.yaml", "resources:\n- ../a\n"),
        ],
        root: "/a",
        wants: &["cycle detected"],
    },
    Case {
        what: "a missing resource file",
        files: &[("app/kustomization.yaml", "resources:\n- nothere.yaml\n")],
        root: "/app",
        wants: &["accumulating resources"],
    },
    Case {
        what: "a directory without a kustomization",
        files: &[("empty/", "")],
        root: "/empty",
        wants: &["unable to find one of 'kustomization.yaml'"],
    },
    Case {
        what: "files outside the root need LoadRestrictionsNone",
        files: &[
            (
                "app/kustomization.yaml",
                "resources:\n- ../shared/cm.yaml\n",
            ),
            ("shared/cm.yaml", CM),
        ],
        root: "/app",
        wants: &["security; file '/shared/cm.yaml' is not in or below '/app'"],
    },
    Case {
        what: "remote bases are refused clearly",
        files: &[(
            "app/kustomization.yaml",
            "resources:\n- github.com/example/repo//deploy?ref=v1\n",
        )],
        root: "/app",
        wants: &["remote"],
    },
    Case {
        what: "Helm charts are refused clearly",
        files: &[(
            "app/kustomization.yaml",
            "helmCharts:\n- name: nginx\n  repo: https://charts.example.com\n",
        )],
        root: "/app",
        wants: &["not supported yet"],
    },
    Case {
        what: "duplicate ids",
        files: &[
            ("app/kustomization.yaml", "resources:\n- a.yaml\n- b.yaml\n"),
            ("app/a.yaml", CM),
            ("app/b.yaml", CM),
        ],
        root: "/app",
        wants: &["already registered id: ConfigMap.v1.[noGrp]/c.[noNs]"],
    },
    Case {
        what: "an unmatched strategic merge patch",
        files: &[
            (
                "app/kustomization.yaml",
                "resources:\n- a.yaml\npatchesStrategicMerge:\n- |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: other\n",
            ),
            ("app/a.yaml", CM),
        ],
        root: "/app",
        wants: &["failed to find unique target for patch"],
    },
    Case {
        what: "a JSON patch without a target",
        files: &[
            (
                "app/kustomization.yaml",
                "resources:\n- a.yaml\npatches:\n- patch: '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\n",
            ),
            ("app/a.yaml", CM),
        ],
        root: "/app",
        wants: &["must specify a target for JSON patch"],
    },
    Case {
        what: "components must be Components",
        files: &[
            ("app/kustomization.yaml", "components:\n- ../base\n"),
            ("base/kustomization.yaml", "resources: []\n"),
        ],
        root: "/app",
        wants: &["expected kind 'Component'"],
    },
    Case {
        what: "unknown kustomization fields",
        files: &[("app/kustomization.yaml", "namePrefx: a-\n")],
        root: "/app",
        wants: &["json: unknown field \"namePrefx\""],
    },
    Case {
        what: "a Component's apiVersion",
        files: &[(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\n",
        )],
        root: "/app",
        wants: &["apiVersion for Component should be kustomize.config.k8s.io/v1alpha1"],
    },
    Case {
        what: "replicas for an unknown name",
        files: &[
            (
                "app/kustomization.yaml",
                "resources:\n- cm.yaml\nreplicas:\n- name: nothere\n  count: 2\n",
            ),
            ("app/cm.yaml", CM),
        ],
        root: "/app",
        wants: &["resource with name nothere does not match"],
    },
    Case {
        what: "non-string data keys",
        files: &[
            ("app/kustomization.yaml", "resources:\n- cm.yaml\n"),
            (
                "app/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  1: a\n",
            ),
        ],
        root: "/app",
        wants: &["not a string"],
    },
    Case {
        // `(?x)` is a flag of the regex crate only: kustomize (Go's regexp) refuses the selector.
        what: "a target selector regex is read with Go's syntax",
        files: &[
            (
                "app/kustomization.yaml",
                "resources:\n- cm.yaml\npatches:\n- target:\n    name: \"(?x) c\"\n  patch: |-\n    - op: add\n      path: /data\n      value: {}\n",
            ),
            ("app/cm.yaml", CM),
        ],
        root: "/app",
        wants: &[
            "invalid name selector '(?x) c': error parsing regexp: invalid or unsupported Perl syntax: `(?x`",
        ],
    },
];

#[test]
fn bad_input_fails_with_upstreams_errors() {
    let mut failed = Vec::new();
    for case in CASES {
        let e = err_of(&fs_of(case.files), case.root);
        for want in case.wants {
            if !e.contains(want) {
                failed.push(format!("{}: want {want:?} in: {e}", case.what));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn files_outside_the_root_build_with_load_restrictions_none() {
    let fs = fs_of(&[
        (
            "app/kustomization.yaml",
            "resources:\n- ../shared/cm.yaml\n",
        ),
        ("shared/cm.yaml", CM),
    ]);
    let relaxed = Options {
        load_restrictor: LoadRestrictor::None,
        ..opts()
    };
    let out = build(&fs, Path::new("/app"), relaxed).expect("allowed without restrictions");
    assert!(out.contains("name: c"));
}

#[test]
fn kustomization_field_names_match_case_insensitively() {
    let fs = fs_of(&[
        (
            "app/kustomization.yaml",
            "nameprefix: a-\nresources:\n- cm.yaml\n",
        ),
        ("app/cm.yaml", CM),
    ]);
    let out = build(&fs, Path::new("/app"), opts()).expect("builds");
    assert!(out.contains("name: a-c"), "{out}");
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
