//! `ferroflux create tenant`: `--export` prints what the real flux CLI prints (built by
//! `scripts/peers.sh build flux`), byte for byte, for every shape of the command; without it
//! the objects are applied to `ferroflux apiserver` and read back as exported, a second run
//! changes nothing and a new `--cluster-role` replaces the binding's immutable roleRef.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::process::{ferroflux, shown};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The command lines compared with flux (after `create tenant`).
const SHAPES: &[&[&str]] = &[
    &["dev-team", "--with-namespace=apps"],
    &[
        "dev-team",
        "--with-namespace=apps",
        "--with-namespace=backend",
    ],
    &[
        "dev-team",
        "--with-namespace=apps,backend",
        "--cluster-role=custom-role",
    ],
    &[
        "dev-team",
        "--with-namespace=apps",
        "--with-service-account=flux-tenant",
    ],
    &["dev-team", "--with-namespace=apps", "--skip-namespace"],
    &[
        "dev-team",
        "--with-namespace=apps",
        "--label=env=dev,tier=1",
    ],
    // Refusals: the same message, the same exit.
    &["dev-team"],
    &["x", "--with-namespace=apps"],
    &["dev-team", "--with-namespace=Bad_ns-"],
    &["dev-team", "--with-namespace=apps", "--label=env"],
    &["dev-team", "--with-namespace=apps", "--label=env=-bad"],
    &[
        "dev-team",
        "--with-namespace=apps",
        "--with-service-account=a/b/c",
    ],
];

#[test]
fn export_prints_what_flux_prints() {
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let mut different = Vec::new();
    for shape in SHAPES {
        let mut args = vec!["create", "tenant"];
        args.extend_from_slice(shape);
        args.push("--export");
        let theirs = Command::new(&flux)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("flux runs");
        let (theirs, ours) = (shown(&theirs), shown(&ferroflux(&args)));
        if theirs != ours {
            different.push(format!(
                "{args:?}\n  flux:      {theirs:?}\n  ferroflux: {ours:?}"
            ));
        }
    }
    assert!(
        different.is_empty(),
        "{} of {} differ:\n{}",
        different.len(),
        SHAPES.len(),
        different.join("\n")
    );
}

/// An object read back with kubectl, as the export writes it: the fields the command sets.
fn read_back(kubeconfig: &Path, resource: &str, name: &str, namespace: &str) -> Value {
    let json = common::kubectl_ok(
        kubeconfig,
        &["get", resource, name, "-n", namespace, "-o", "json"],
        None,
    );
    let object: Value = serde_json::from_str(&json).expect("kubectl prints JSON");
    let mut kept = serde_json::json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": {"name": object["metadata"]["name"], "labels": object["metadata"]["labels"]},
    });
    if object["kind"] != "Namespace" {
        kept["metadata"]["namespace"] = object["metadata"]["namespace"].clone();
    }
    for field in ["roleRef", "subjects"] {
        if !object[field].is_null() {
            kept[field] = object[field].clone();
        }
    }
    // kube-apiserver labels every namespace with its name.
    if let Some(labels) = kept["metadata"]["labels"].as_object_mut() {
        labels.remove("kubernetes.io/metadata.name");
    }
    kept
}

#[test]
fn applied_tenants_read_back_as_exported() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, kubeconfig) = common::start_apiserver(dir.path());
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    let tenant = |extra: &[&str]| {
        let mut args = vec![
            "create",
            "tenant",
            "dev-team",
            "--with-namespace=apps",
            "--with-namespace=backend",
            "--kubeconfig",
            &kubeconfig_arg,
        ];
        args.extend_from_slice(extra);
        ferroflux(&args)
    };
    let applied = tenant(&[]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(
        text(&applied.stdout),
        "",
        "progress goes to stderr, as flux's"
    );
    assert_eq!(
        text(&applied.stderr),
        "► applying namespace apps\n► applying service account dev-team\n► applying role binding dev-team-reconciler\n\
         ► applying namespace backend\n► applying service account dev-team\n► applying role binding dev-team-reconciler\n\
         ✔ tenant setup completed\n"
    );
    let exported = tenant(&["--export"]);
    let wanted: Vec<Value> = ferroflux_gocompat::yaml::from_multiple(&text(&exported.stdout))
        .expect("the export is YAML");
    assert_eq!(wanted.len(), 6);
    for object in &wanted {
        let meta = &object["metadata"];
        let resource = object["kind"].as_str().expect("kind").to_lowercase();
        let namespace = meta["namespace"].as_str().unwrap_or_default();
        let name = meta["name"].as_str().expect("name");
        assert_eq!(
            &read_back(&kubeconfig, &resource, name, namespace),
            object,
            "{resource} {namespace}/{name}"
        );
    }

    let version = |ns: &str| {
        common::kubectl_ok(
            &kubeconfig,
            &[
                "get",
                "rolebinding",
                "dev-team-reconciler",
                "-n",
                ns,
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
            None,
        )
    };
    let before = version("apps");
    assert!(tenant(&[]).status.success());
    assert_eq!(version("apps"), before, "a second run rewrites the binding");

    // roleRef is immutable: a new role replaces the binding.
    let changed = tenant(&["--cluster-role=view"]);
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let role = common::kubectl_ok(
        &kubeconfig,
        &[
            "get",
            "rolebinding",
            "dev-team-reconciler",
            "-n",
            "backend",
            "-o",
            "jsonpath={.roleRef.name}",
        ],
        None,
    );
    assert_eq!(role, "view");
}
