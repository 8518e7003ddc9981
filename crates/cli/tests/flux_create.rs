//! `ferroflux create alert|alert-provider|receiver|helmrelease` and `ferroflux get` of those
//! kinds: `--export` prints what the real flux CLI prints (`scripts/peers.sh build flux`), byte
//! for byte and refusal for refusal; without `--export` the objects are applied to
//! `ferroflux apiserver` and read back as exported; `get` shows them in flux's columns.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::process::{ferroflux, shown};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--values` files the shapes name as `@NAME`.
const VALUES: &[(&str, &str)] = &[
    (
        "v1.yaml",
        "replicaCount: 2\nimage:\n  tag: \"1.0\"\n  pull: null\nlist: [a, 1, true, 1.5]\n",
    ),
    ("v2.yaml", "image:\n  repo: x\nz: 10000000000\n"),
    (
        "v3.yaml",
        "small: 0.0000001\ntenth: 0.1\nbig: 123456789012345678\nhuge: 1e22\nneg: -3\n\
         nul: ~\nnulStr: \"null\"\nmulti: |\n  line one\n  line two\n\"key with: colon\": v\n\
         unicode: \"héllo ☃\"\nempty: \"\"\nemptyMap: {}\nemptyList: []\n\
         image:\n  tag: \"2.0\"\n  nested: {a: 1}\ndate: 2024-01-01\nhex: 0x1F\ntime: \"12:30\"\n",
    ),
    ("list.yaml", "- a\n- b\n"),
    ("empty.yaml", ""),
];

/// The command lines compared with flux (after `create`; `@v1.yaml` is a file of [`VALUES`]).
const SHAPES: &[&[&str]] = &[
    &[
        "alert",
        "my-alert",
        "--provider-ref=slack",
        "--event-source=Kustomization/podinfo,GitRepository/podinfo",
        "--event-severity=info",
    ],
    &[
        "alert",
        "my-alert",
        "--provider-ref=slack",
        "--event-source=Kustomization/*",
        "-n",
        "apps",
        "--label=a=b",
    ],
    &[
        "-n",
        "apps",
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/x.ns",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/",
        "--event-source=kustomization/y",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/*.apps",
        "--event-severity=error",
        "--label=app.kubernetes.io/name=x",
    ],
    &[
        "alert-provider",
        "slack",
        "--type=slack",
        "--channel=general",
        "--address=https://hooks.slack.com/x",
        "--secret-ref=webhook-url",
        "--username=bot",
    ],
    &["alert-provider", "slack", "--type=slack"],
    &[
        "alert-provider",
        "gh",
        "--type=github",
        "--address=https://github.com/org/repo",
        "--secret-ref=tok",
        "-n",
        "apps",
        "--label=team=a,env=b",
    ],
    &[
        "alert-provider",
        "p1",
        "--type=generic",
        "--address=http://x:8080/a b?c=d#e",
    ],
    &[
        "receiver",
        "github-receiver",
        "--type=github",
        "--event=ping",
        "--event=push",
        "--secret-ref=webhook-token",
        "--resource=GitRepository/webapp",
        "--resource=HelmRepository/webapp",
    ],
    &[
        "receiver",
        "r1",
        "--type=github",
        "--secret-ref=s",
        "--resource=GitRepository/x.ns",
        "--event=a,b",
    ],
    &[
        "receiver",
        "r1",
        "--type=generic-hmac",
        "--secret-ref=s",
        "--resource=Kustomization/apps,GitRepository/flux-system",
    ],
    &[
        "receiver",
        "r1",
        "--type=cdevents",
        "--secret-ref=s",
        "--resource=Kustomization/*",
        "--event=a: b",
    ],
    &[
        "helmrelease",
        "podinfo",
        "--source=HelmRepository/podinfo",
        "--chart=podinfo",
        "--chart-version=>4.0.0",
        "--target-namespace=default",
    ],
    &[
        "hr",
        "podinfo",
        "--source=HelmRepository/podinfo.other",
        "--chart=podinfo",
        "--values=@v1.yaml,@v2.yaml",
        "--interval=10m",
        "-n",
        "apps",
    ],
    &[
        "hr",
        "podinfo",
        "--source=HelmRepository/bar",
        "--chart=c",
        "--values=@v3.yaml",
        "--values=@v1.yaml",
        "--values=@empty.yaml",
    ],
    &["hr", "podinfo", "--chart=podinfo"],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=helmrepository/bar",
        "--target-namespace=t",
        "--storage-namespace=s",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=GitRepository/bar",
        "--chart-version=1.0",
        "--interval=90s",
        "--chart-interval=5m",
        "--release-name=r",
        "--service-account=sa",
        "--create-target-namespace",
    ],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=Bucket/bar",
        "--interval=0s",
        "--label=x=y",
        "--reconcile-strategy=Revision",
    ],
    &[
        "hr",
        "p1",
        "--chart=c",
        "--source=HelmRepository/r",
        "--depends-on=a,ns/b,x/y/z,/q,r/",
        "--values-from=Secret/s,configmap/c",
    ],
    // Refusals: the same message, the same exit.
    &["alert"],
    &["alert", "a1"],
    &["alert", "a1", "--provider-ref=p"],
    &["alert", "a1", "--provider-ref=p", "--event-source=foo"],
    &[
        "alert",
        "x",
        "--provider-ref=p",
        "--event-source=Kustomization/a",
    ],
    &[
        "alert",
        "a1",
        "--provider-ref=p",
        "--event-source=Kustomization/a",
        "--label=bad",
    ],
    &["alert-provider", "p1"],
    &["receiver", "r1"],
    &["receiver", "r1", "--type=github"],
    &["receiver", "r1", "--type=github", "--secret-ref=s"],
    &[
        "receiver",
        "r1",
        "--type=github",
        "--secret-ref=s",
        "--resource=x",
    ],
    &["receiver", "r1", "--type=foo"],
    &["hr", "podinfo", "--chart=c", "--source=Foo/bar"],
    &["hr", "podinfo", "--chart=c", "--source=bar"],
    &["hr", "podinfo", "--chart=c", "--source=HelmRepository/"],
    &["hr", "pod", "--source=GitRepository/bar"],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--values=@missing.yaml",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--values=@list.yaml",
    ],
    &[
        "hr",
        "pod",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--reconcile-strategy=Foo",
    ],
    &[
        "hr",
        "podinfo",
        "--chart=c",
        "--source=HelmRepository/bar",
        "--interval=soon",
    ],
];

#[test]
fn export_prints_what_flux_prints() {
    let flux = ferroflux_testpeers::require!(ferroflux_testpeers::peer_binary("flux"));
    let dir = common::dir_with(VALUES);
    let mut different = Vec::new();
    for shape in SHAPES {
        let mut args = vec!["create".to_string()];
        for arg in *shape {
            let file = |name: &str| dir.path().join(name).display().to_string();
            args.push(match arg.strip_prefix("--values=") {
                Some(files) => format!(
                    "--values={}",
                    files
                        .split(',')
                        .map(|f| file(f.trim_start_matches('@')))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                None => (*arg).to_string(),
            });
        }
        args.push("--export".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = Command::new(&flux)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("flux runs");
        let (theirs, ours) = (shown(&theirs), shown(&ferroflux(&args)));
        if theirs != ours {
            different.push(format!(
                "{shape:?}\n  flux:      {theirs:?}\n  ferroflux: {ours:?}"
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

/// Serves the CRDs of HelmRelease and the notification kinds, as ferroflux defines them.
fn install_crds(kubeconfig: &Path) {
    let crds: Vec<Value> = [
        ("helm.toolkit.fluxcd.io", "HelmRelease"),
        ("notification.toolkit.fluxcd.io", "Alert"),
        ("notification.toolkit.fluxcd.io", "Provider"),
        ("notification.toolkit.fluxcd.io", "Receiver"),
    ]
    .iter()
    .map(|(group, kind)| {
        let served = ferroflux_api::crds::find(group, kind).expect("ferroflux serves the kind");
        serde_json::to_value(served.definition()).expect("CRD serialises")
    })
    .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": crds});
    common::kubectl_ok(
        kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(list.to_string().as_bytes()),
    );
    common::kubectl_ok(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
        None,
    );
}

/// The fields an export writes, of an object read back with kubectl.
fn read_back(kubeconfig: &Path, resource: &str, name: &str, namespace: &str) -> Value {
    let object = common::kubectl_json(kubeconfig, &["get", resource, name, "-n", namespace]);
    let mut metadata = serde_json::json!({"name": object["metadata"]["name"],
        "namespace": object["metadata"]["namespace"]});
    if !object["metadata"]["labels"].is_null() {
        metadata["labels"] = object["metadata"]["labels"].clone();
    }
    let mut spec = object["spec"].clone();
    // The Receiver CRD defaults the interval flux leaves out.
    if object["kind"] == "Receiver" && spec["interval"] == "10m" {
        spec.as_object_mut().map(|s| s.remove("interval"));
    }
    serde_json::json!({"apiVersion": object["apiVersion"], "kind": object["kind"],
        "metadata": metadata, "spec": spec})
}

/// The real flux CLI, pointed at the same server, prints the same tables and refusals, byte
/// for byte.
fn same_tables_as_flux(kc: &str) {
    match ferroflux_testpeers::peer_binary("flux") {
        Ok(flux) => {
            for args in [
                &["hr", "-n", "apps"][..],
                &["helmreleases", "-A"],
                &["alerts"],
                &["alert-providers", "-A"],
                &["alert-providers", "-n", "apps"],
                &["receivers", "-A"],
                &["alert-providers"],
            ] {
                let args = [&["get"], args, &["--kubeconfig", kc]].concat();
                let theirs = Command::new(&flux)
                    .args(&args)
                    .stdin(Stdio::null())
                    .output()
                    .expect("flux runs");
                assert_eq!(shown(&ferroflux(&args)), shown(&theirs), "{args:?}");
            }
        }
        Err(err) => ferroflux_testpeers::skip(format!("flux: {err}")),
    }
}

#[test]
fn created_objects_read_back_and_get_shows_them_like_flux() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, kubeconfig) = common::start_apiserver(dir.path());
    install_crds(&kubeconfig);
    let kc = kubeconfig.display().to_string();
    common::kubectl_ok(&kubeconfig, &["create", "namespace", "flux-system"], None);
    common::kubectl_ok(&kubeconfig, &["create", "namespace", "apps"], None);

    let created: &[(&[&str], &str)] = &[
        (
            &[
                "alert",
                "slack",
                "--provider-ref=slack",
                "--event-source=Kustomization/*",
                "--event-severity=info",
            ],
            "alert",
        ),
        (
            &[
                "alert-provider",
                "slack",
                "--type=slack",
                "--channel=general",
                "-n",
                "apps",
            ],
            "provider",
        ),
        (
            &[
                "receiver",
                "github",
                "--type=github",
                "--event=push",
                "--secret-ref=token",
                "--resource=GitRepository/app",
            ],
            "receiver",
        ),
        (
            &[
                "hr",
                "podinfo",
                "--source=HelmRepository/podinfo",
                "--chart=podinfo",
                "--chart-version=6.x",
                "-n",
                "apps",
            ],
            "helmrelease",
        ),
    ];
    for (shape, resource) in created {
        let mut args = vec!["create"];
        args.extend_from_slice(shape);
        let exported = ferroflux(&[&args[..], &["--export"]].concat());
        let wanted: Value =
            ferroflux_gocompat::yaml::from_str(&text(&exported.stdout)).expect("export is YAML");
        let applied = ferroflux(&[&args[..], &["--kubeconfig", &kc]].concat());
        assert!(
            applied.status.success(),
            "{args:?}: {}",
            text(&applied.stderr)
        );
        let kind = wanted["kind"].as_str().expect("kind");
        assert_eq!(
            text(&applied.stderr),
            format!("✚ generating {kind}\n► applying {kind}\n✔ {kind} created\n")
        );
        let name = wanted["metadata"]["name"].as_str().expect("name");
        let namespace = wanted["metadata"]["namespace"].as_str().expect("namespace");
        assert_eq!(
            read_back(&kubeconfig, resource, name, namespace),
            wanted,
            "{args:?}"
        );
        let again = ferroflux(&[&args[..], &["--kubeconfig", &kc]].concat());
        assert!(text(&again.stderr).ends_with(&format!("✔ {kind} updated\n")));
    }

    // A reconciled HelmRelease: flux shows the newest release's chart version.
    common::kubectl_ok(
        &kubeconfig,
        &[
            "patch",
            "helmrelease",
            "podinfo",
            "-n",
            "apps",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status": {"history": [{"chartVersion": "6.5.4", "chartName": "podinfo", "name": "podinfo", "namespace": "apps", "version": 1, "digest": "sha256:0", "configDigest": "sha256:1", "firstDeployed": "2024-01-01T00:00:00Z", "lastDeployed": "2024-01-01T00:00:00Z", "status": "deployed"}], "conditions": [{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "Helm install succeeded for release apps/podinfo.v1 with chart podinfo@6.5.4", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}"#,
        ],
        None,
    );
    let get = |args: &[&str]| {
        let output = ferroflux(&[&["get"], args, &["--kubeconfig", &kc]].concat());
        // The header's last cell is padded to the widest message (the table machinery's
        // unit tests hold that); the cells are what is compared here.
        let table: String = text(&output.stdout)
            .lines()
            .map(|line| format!("{}\n", line.trim_end_matches(' ')))
            .collect();
        (output.status.success(), table, shown(&output).2)
    };
    assert_eq!(
        get(&["hr", "-n", "apps"]),
        (true, "NAME   \tREVISION\tSUSPENDED\tREADY\tMESSAGE\n\
                podinfo\t6.5.4   \tFalse    \tTrue \tHelm install succeeded for release apps/podinfo.v1 with chart podinfo@6.5.4\t\n".into(), String::new())
    );
    assert_eq!(
        get(&["alerts"]),
        (
            true,
            "NAME \tSUSPENDED\tREADY\tMESSAGE\nslack\tFalse    \tTrue \tAlert is Ready\t\n".into(),
            String::new()
        )
    );
    assert_eq!(
        get(&["alert-providers", "-A"]),
        (
            true,
            "NAMESPACE\tNAME \tREADY\tMESSAGE\napps     \tslack\tTrue \tProvider is Ready\t\n"
                .into(),
            String::new()
        )
    );
    assert_eq!(
        get(&["receivers"]),
        (true, "NAME  \tSUSPENDED\tREADY\tMESSAGE\ngithub\tFalse    \tFalse\twaiting to be reconciled\t\n".into(), String::new())
    );
    same_tables_as_flux(&kc);
    assert_eq!(
        get(&["alert-providers"]),
        (
            false,
            String::new(),
            "✗ no Provider objects found in \"flux-system\" namespace".into()
        )
    );
}
