//! `ferroflux install --export` prints a YAML stream a cluster accepts: structural CRDs,
//! RBAC and one Deployment per controller, with the user's extra flags.

use assert_cmd::Command;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

mod common;

/// The export's documents.
fn export(args: &[&str]) -> Vec<Value> {
    serde_saphyr::from_multiple(&export_text(args)).expect("the export is a YAML stream")
}

fn assert_structural(schema: &JSONSchemaProps, path: &str) {
    assert!(
        schema.type_.is_some() || schema.x_kubernetes_preserve_unknown_fields == Some(true),
        "{path}: neither a type nor x-kubernetes-preserve-unknown-fields"
    );
    for (name, child) in schema.properties.iter().flatten() {
        assert_structural(child, &format!("{path}.{name}"));
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        assert_structural(items, &format!("{path}[]"));
    }
    if let Some(JSONSchemaPropsOrBool::Schema(additional)) = &schema.additional_properties {
        assert_structural(additional, &format!("{path}{{}}"));
    }
}

#[test]
fn every_crd_parses_and_every_schema_is_structural() {
    let docs =
        export(&["--components-extra=image-reflector-controller,image-automation-controller"]);
    let crds: Vec<CustomResourceDefinition> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| serde_json::from_value(d.clone()).expect("a CustomResourceDefinition"))
        .collect();
    assert_eq!(
        crds.len(),
        14,
        "one CRD per kind of an installed controller"
    );
    for crd in &crds {
        for version in &crd.spec.versions {
            let schema = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every version has a schema");
            for (name, child) in schema.properties.iter().flatten() {
                if name != "metadata" {
                    assert_structural(
                        child,
                        &format!("{}/{}.{name}", crd.spec.names.kind, version.name),
                    );
                }
            }
        }
    }
    let names: Vec<&str> = crds
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    for wanted in [
        "gitrepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "imagepolicies.image.toolkit.fluxcd.io",
        "imageupdateautomations.image.toolkit.fluxcd.io",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    assert_eq!(docs[0]["kind"], "Namespace");
    assert_eq!(docs[0]["metadata"]["name"], "flux-system");
}

/// The components `flux install` installs by default.
const FLUX_DEFAULTS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

fn deployments(docs: &[Value]) -> Vec<Deployment> {
    docs.iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| serde_json::from_value(d.clone()).expect("a Deployment"))
        .collect()
}

fn container_args(deployment: &Deployment) -> Vec<String> {
    let spec = deployment.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let container = &pod.containers[0];
    let mut argv = container.command.clone().expect("command");
    argv.extend(container.args.clone().unwrap_or_default());
    argv
}

#[test]
fn one_deployment_per_controller_runs_ferroflux_controller() {
    let docs =
        export(&["--components-extra=image-reflector-controller,image-automation-controller"]);
    let deployments = deployments(&docs);
    let names: Vec<String> = deployments
        .iter()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            &FLUX_DEFAULTS[..],
            &["image-reflector-controller", "image-automation-controller"]
        ]
        .concat()
    );
    for deployment in &deployments {
        let argv = container_args(deployment);
        assert_eq!(&argv[..2], ["ferroflux", "controller"], "{argv:?}");
    }
    let source = &deployments[0];
    assert_eq!(container_args(source)[2], "source");
}

#[test]
fn extra_args_reach_the_controller_and_replace_defaults() {
    let docs = export(&[
        "--image=registry.example/ferroflux:dev",
        "--kustomize-controller-extra-args=--no-cross-namespace-refs=true,--default-service-account=default,--log-level=debug",
    ]);
    let kustomize = deployments(&docs)
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some("kustomize-controller"))
        .expect("kustomize-controller is installed");
    let argv = container_args(&kustomize);
    assert!(
        argv.contains(&"--no-cross-namespace-refs=true".to_string()),
        "{argv:?}"
    );
    assert!(
        argv.contains(&"--default-service-account=default".to_string()),
        "{argv:?}"
    );
    let log_levels: Vec<&String> = argv
        .iter()
        .filter(|a| a.starts_with("--log-level"))
        .collect();
    assert_eq!(
        log_levels,
        ["--log-level=debug"],
        "the extra flag replaces the default"
    );
    let image = kustomize.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("registry.example/ferroflux:dev"));
}

#[test]
fn an_unknown_component_is_refused_with_the_known_ones() {
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["install", "--export", "--components-extra=argo"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown component \"argo\""), "{stderr}");
    assert!(stderr.contains("image-automation-controller"), "{stderr}");
}

#[test]
fn only_controllers_that_exist_are_installed_or_runnable() {
    let docs = export(&[]);
    let names: Vec<String> = deployments(&docs)
        .iter()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    // Flux's default components, every one of which runs.
    assert_eq!(names, FLUX_DEFAULTS);
    let text = serde_json::to_string(&docs).expect("JSON");
    for absent in ["canaries", "canary-controller"] {
        assert!(!text.contains(absent), "{absent} is advertised");
    }
    let reconciler = docs
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "cluster-reconciler"
        })
        .expect("the appliers are bound to cluster-admin");
    assert_eq!(reconciler["roleRef"]["name"], "cluster-admin");
    assert_eq!(
        reconciler["subjects"],
        serde_json::json!([
            {"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": "flux-system"},
            {"kind": "ServiceAccount", "name": "helm-controller", "namespace": "flux-system"}
        ])
    );
    // Every controller but the notification controller posts its events to it.
    for deployment in deployments(&docs) {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let args = deployment
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|s| s.containers[0].args.clone())
            .unwrap_or_default();
        let posts = args.iter().any(|a| {
            a == "--events-addr=http://notification-controller.$(RUNTIME_NAMESPACE).svc.cluster.local./"
        });
        assert_eq!(posts, name != "notification-controller", "{name}: {args:?}");
    }
    let missing = "tf-controller";
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args([
            "install",
            "--export",
            &format!("--components-extra={missing}"),
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success(), "{missing} is installable");
    let controller = missing.trim_end_matches("-controller");
    let output = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args(["controller", controller])
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "`controller {controller}` is offered"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value"), "{stderr}");
}

#[test]
fn the_export_reapplies_server_side_over_up_without_conflicts() {
    if !common::require("git", &["--version"]) || !common::require_kubectl() {
        return;
    }
    // `ferroflux up` installs the CRDs as its own field manager, like `flux install`; the
    // user then applies the export with kubectl's, twice, and with yet another manager.
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let _up = common::Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args(["up", "--no-simulator", "--receiver-listen=127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ferroflux up starts"),
    );
    let kubeconfig = data_dir.join("apiserver/kubeconfig");
    let bootstrapped = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        kubeconfig.is_file()
            && common::kubectl(
                &kubeconfig,
                &["get", "kustomization", "flux-system", "-n", "flux-system"],
                None,
            )
            .status
            .success()
    });
    assert!(bootstrapped, "ferroflux up did not bootstrap within 60s");
    let text =
        export_text(&["--components-extra=image-reflector-controller,image-automation-controller"]);
    // `up` records its controllers as Deployments whose args are the flags they run with
    // there; the export's Deployments name other flags (in-cluster paths), a conflict on
    // exactly those args, by design: applying them would not change what runs.
    let (deployments, rest): (Vec<&str>, Vec<&str>) = text
        .split("---\n")
        .partition(|doc| doc.starts_with("apiVersion: apps/v1\nkind: Deployment\n"));
    assert_eq!(deployments.len(), 6, "{text}");
    let conflict = common::kubectl(
        &kubeconfig,
        &["apply", "--server-side", "-f", "-"],
        Some(deployments.join("---\n").as_bytes()),
    );
    let stderr = String::from_utf8_lossy(&conflict.stderr);
    assert!(!conflict.status.success());
    assert_eq!(
        stderr.matches("Apply failed with 1 conflict: conflict with \"ferroflux\": .spec.template.spec.containers[name=\"manager\"].args").count(),
        6,
        "{stderr}"
    );
    let manifests = rest.join("---\n");
    for manager in ["kubectl", "kubectl", "platform-team"] {
        // Fails the test, naming the field manager, unless kubectl accepts the apply.
        common::kubectl_ok(
            &kubeconfig,
            &[
                "apply",
                "--server-side",
                &format!("--field-manager={manager}"),
                "-f",
                "-",
            ],
            Some(manifests.as_bytes()),
        );
    }
}

#[test]
fn source_watcher_is_an_extra_component_with_its_crd() {
    let crd_names = |docs: &[Value]| -> Vec<String> {
        docs.iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .filter_map(|d| d["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    let default = export(&[]);
    assert!(
        !crd_names(&default).contains(&"artifactgenerators.source.extensions.fluxcd.io".into()),
        "ArtifactGenerator is served only with its controller"
    );
    let docs = export(&[
        "--components-extra=source-watcher",
        "--source-watcher-extra-args=--no-cross-namespace-refs=true",
    ]);
    assert!(crd_names(&docs).contains(&"artifactgenerators.source.extensions.fluxcd.io".into()));
    let watcher = deployments(&docs)
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some("source-watcher"))
        .expect("source-watcher is installed");
    let argv = container_args(&watcher);
    assert_eq!(&argv[..3], ["ferroflux", "controller", "source-watcher"]);
    assert!(
        argv.contains(&"--no-cross-namespace-refs=true".to_string()),
        "{argv:?}"
    );
}

/// The export, as text.
fn export_text(args: &[&str]) -> String {
    let output = Command::cargo_bin("ferroflux")
        .expect("the ferroflux binary is built")
        .args(["install", "--export"])
        .args(args)
        .output()
        .expect("install --export");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Applies `manifests` server-side twice as kubectl's field manager: the second apply of the
/// same objects must be accepted too (no conflict with what the first wrote or the server
/// defaulted).
fn apply_twice(kubeconfig: &std::path::Path, manifests: &str) {
    for _round in 1..=2 {
        // Fails the test unless kubectl accepts the apply.
        common::kubectl_ok(
            kubeconfig,
            &["apply", "--server-side", "-f", "-"],
            Some(manifests.as_bytes()),
        );
    }
}

#[test]
fn the_policy_webhook_component_is_kyvernos_crds_its_own_rbac_a_service_and_a_deployment() {
    let docs = export(&["--components-extra=policy-webhook"]);
    let of = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    for crd in ["clusterpolicies.kyverno.io", "policies.kyverno.io"] {
        let crd = of("CustomResourceDefinition", crd);
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/component"],
            "policy-webhook"
        );
    }
    let role = of("ClusterRole", "policy-webhook");
    let rights: Vec<(String, String, String)> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .flat_map(|rule| {
            let strings = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .expect("a list")
                    .iter()
                    .map(|v| v.as_str().expect("a string").to_string())
                    .collect()
            };
            let (groups, resources, verbs) =
                (strings("apiGroups"), strings("resources"), strings("verbs"));
            let mut out = Vec::new();
            for g in &groups {
                for r in &resources {
                    for v in &verbs {
                        out.push((g.clone(), r.clone(), v.clone()));
                    }
                }
            }
            out
        })
        .collect();
    // Exactly what `ferroflux policy-webhook` does: watch policies, namespaces and bindings, write the
    // policies' status, apply its registration, list the Flux kinds in background scans and
    // write the policy reports.
    let scanned = [
        "flagger.app",
        "helm.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
        "kustomize.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "source.extensions.fluxcd.io",
        "source.toolkit.fluxcd.io",
    ];
    let reports = ["policyreports", "clusterpolicyreports"]
        .into_iter()
        .flat_map(|r| {
            ["list", "create", "update", "delete"]
                .map(|v| ("wgpolicyk8s.io".to_string(), r.to_string(), v.to_string()))
        });
    let wanted: Vec<(String, String, String)> = [
        ("kyverno.io", "clusterpolicies", "list"),
        ("kyverno.io", "clusterpolicies", "watch"),
        ("kyverno.io", "policies", "list"),
        ("kyverno.io", "policies", "watch"),
        ("kyverno.io", "clusterpolicies/status", "patch"),
        ("kyverno.io", "policies/status", "patch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
        ("rbac.authorization.k8s.io", "rolebindings", "list"),
        ("rbac.authorization.k8s.io", "rolebindings", "watch"),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "list"),
        ("rbac.authorization.k8s.io", "clusterrolebindings", "watch"),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "get",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "create",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "patch",
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "update",
        ),
    ]
    .iter()
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
    .chain(
        scanned
            .iter()
            .map(|g| (g.to_string(), "*".to_string(), "list".to_string())),
    )
    .chain(reports)
    .collect();
    assert_eq!(rights, wanted);
    let binding = of("ClusterRoleBinding", "policy-webhook");
    assert_eq!(binding["roleRef"]["name"], "policy-webhook");
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "policy-webhook", "namespace": "flux-system"}])
    );
    // The controllers' role grants nothing on Kyverno's kinds, nor is the webhook bound to it.
    let crd_controller = of("ClusterRole", "crd-controller");
    assert!(
        !crd_controller.to_string().contains("kyverno.io"),
        "{crd_controller}"
    );
    let controllers = of("ClusterRoleBinding", "crd-controller");
    assert!(
        !controllers.to_string().contains("policy-webhook"),
        "{controllers}"
    );
    let service = of("Service", "policy-webhook");
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 9443}])
    );
    assert_eq!(service["spec"]["selector"]["app"], "policy-webhook");
    let webhook: Deployment =
        serde_json::from_value(of("Deployment", "policy-webhook")).expect("a Deployment");
    let pod = webhook.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    assert_eq!(
        pod.and_then(|p| p.service_account_name.as_deref()),
        Some("policy-webhook")
    );
    assert_eq!(pod.map(|p| p.containers[0].name.as_str()), Some("manager"));
    assert_eq!(
        container_args(&webhook),
        [
            "ferroflux",
            "policy-webhook",
            "--log-level=info",
            "--listen=0.0.0.0:9443",
            "--tls-san=policy-webhook.$(RUNTIME_NAMESPACE).svc",
            "--register-service=$(RUNTIME_NAMESPACE)/policy-webhook",
        ]
    );
    // Without the component, none of it.
    let text = serde_json::to_string(&export(&[])).expect("JSON");
    assert!(!text.contains("kyverno.io"), "{text}");
    assert!(!text.contains("policy-webhook"), "{text}");
}

#[test]
fn the_policy_webhook_export_applies_on_ferroflux_apiserver() {
    if !common::require_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, kubeconfig) = common::start_apiserver(dir.path());
    apply_twice(
        &kubeconfig,
        &export_text(&["--components-extra=policy-webhook"]),
    );
    let ports = common::kubectl_ok(
        &kubeconfig,
        &[
            "get",
            "service",
            "policy-webhook",
            "-n",
            "flux-system",
            "-o",
            "jsonpath={.spec.ports[0].port}/{.spec.ports[0].targetPort}",
        ],
        None,
    );
    assert_eq!(ports, "443/9443");
}

const POLICIES: &str = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team-label
spec:
  validationFailureAction: Enforce
  rules:
  - name: check-team
    match:
      any:
      - resources:
          kinds: [ConfigMap]
    validate:
      message: "label 'team' is required"
      pattern:
        metadata:
          labels:
            team: "?*"
---
apiVersion: kyverno.io/v1
kind: Policy
metadata:
  name: no-latest
  namespace: default
spec:
  validationFailureAction: Audit
  rules:
  - name: check-tag
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: "no latest tag"
      pattern:
        spec:
          containers:
          - image: "!*:latest"
"#;

/// On the real kube-apiserver: the export applies, its role grants what the webhook does
/// (kube-apiserver's own `auth can-i`), and `ferroflux policy-webhook` run with exactly its
/// ServiceAccount's rights (a token of `policy-webhook`) loads the policies and registers
/// itself by Service; kube-apiserver then calls that Service, except for the webhook's own
/// namespace.
#[test]
fn the_policy_webhook_export_applies_on_kube_apiserver_and_its_account_can_register() {
    if !common::require_kubectl() {
        return;
    }
    let cluster = ferroflux_testpeers::require!(ferroflux_testpeers::KubeApiserver::start());
    let admin = cluster.kubeconfig();
    apply_twice(admin, &export_text(&["--components-extra=policy-webhook"]));
    common::kubectl_ok(
        admin,
        &["apply", "--server-side", "-f", "-"],
        Some(POLICIES.as_bytes()),
    );
    let as_webhook = "--as=system:serviceaccount:flux-system:policy-webhook";
    for (verb, resource, subresource, allowed) in [
        ("watch", "clusterpolicies.kyverno.io", "", "yes"),
        (
            "patch",
            "policies.kyverno.io",
            "--subresource=status",
            "yes",
        ),
        ("patch", "policies.kyverno.io", "", "no"),
        ("delete", "clusterpolicies.kyverno.io", "", "no"),
        ("get", "secrets", "", "no"),
    ] {
        let mut args = vec!["auth", "can-i", verb, resource, as_webhook];
        args.extend([subresource].into_iter().filter(|s| !s.is_empty()));
        let output = common::kubectl(admin, &args, None);
        let answer = String::from_utf8_lossy(&output.stdout);
        assert_eq!(answer.trim(), allowed, "{verb} {resource} {subresource}");
    }

    // The webhook's own credentials: a token of its ServiceAccount, as in its Pod.
    let token = common::kubectl_ok(
        admin,
        &["create", "token", "policy-webhook", "-n", "flux-system"],
        None,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::copy(admin, &kubeconfig).expect("copy the kubeconfig");
    common::kubectl_ok(
        &kubeconfig,
        &[
            "config",
            "set-credentials",
            "webhook",
            &format!("--token={}", token.trim()),
        ],
        None,
    );
    common::kubectl_ok(
        &kubeconfig,
        &["config", "set-context", "peer", "--user=webhook"],
        None,
    );
    let log = dir.path().join("webhook.log");
    let _webhook = common::Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_ferroflux"))
            .args([
                "policy-webhook",
                &format!("--listen=127.0.0.1:{}", common::free_port()),
                "--tls-san=policy-webhook.flux-system.svc",
                "--register-service=flux-system/policy-webhook",
            ])
            .arg("--cert-dir")
            .arg(dir.path().join("certs"))
            .env("KUBECONFIG", &kubeconfig)
            .stdout(std::fs::File::create(dir.path().join("webhook.out")).expect("log file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("ferroflux policy-webhook starts"),
    );
    // The webhook registers once its cache listed the policies and namespaces: with its
    // token's rights, the watches and the registration went through.
    let registered = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("registered"))
    });
    assert!(
        registered,
        "not registered within 60s: {}{}",
        std::fs::read_to_string(&log).unwrap_or_default(),
        std::fs::read_to_string(dir.path().join("webhook.out")).unwrap_or_default(),
    );

    let configuration: Value = serde_json::from_str(&common::kubectl_ok(
        admin,
        &[
            "get",
            "validatingwebhookconfiguration",
            "ferroflux-policy",
            "-o",
            "json",
        ],
        None,
    ))
    .expect("JSON");
    for (i, path) in [(0, "/policyvalidate"), (1, "/validate")] {
        let client = &configuration["webhooks"][i]["clientConfig"];
        assert_eq!(
            client["service"],
            serde_json::json!({"namespace": "flux-system", "name": "policy-webhook", "path": path, "port": 443}),
        );
        assert!(client["caBundle"].as_str().is_some_and(|b| !b.is_empty()));
    }
    // The Service has no endpoints (no nodes here): kube-apiserver tries it and, failing
    // closed, refuses the write; in flux-system, left out, the write goes through.
    let refused = common::kubectl(
        admin,
        &[
            "create",
            "configmap",
            "c",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("policy-webhook.flux-system.svc"),
        "{stderr}"
    );
    common::kubectl_ok(
        admin,
        &[
            "create",
            "configmap",
            "c",
            "-n",
            "flux-system",
            "--from-literal=a=b",
        ],
        None,
    );
}
