//! `ferroflux install --export` prints a YAML stream a cluster accepts: structural CRDs,
//! RBAC and one Deployment per controller, with the user's extra flags.

use assert_cmd::Command;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

mod common;

fn export(args: &[&str]) -> Vec<Value> {
    let output = Command::cargo_bin("ferroflux")
        .expect("the ferroflux binary is built")
        .args(["install", "--export"])
        .args(args)
        .output()
        .expect("ferroflux runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 output");
    serde_saphyr::from_multiple(&text).expect("the export is a YAML stream")
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
        10,
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
            "source-controller",
            "kustomize-controller",
            "image-reflector-controller",
            "image-automation-controller"
        ]
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
        .args(["install", "--export", "--components-extra=flagger"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown component \"flagger\""), "{stderr}");
    assert!(stderr.contains("image-automation-controller"), "{stderr}");
}

#[test]
fn only_controllers_that_exist_are_installed_or_runnable() {
    let docs = export(&[]);
    let names: Vec<String> = deployments(&docs)
        .iter()
        .filter_map(|d| d.metadata.name.clone())
        .collect();
    assert_eq!(names, ["source-controller", "kustomize-controller"]);
    let text = serde_json::to_string(&docs).expect("JSON");
    for absent in [
        "helm-controller",
        "notification-controller",
        "webhook-receiver",
        "helmreleases",
        "canaries",
    ] {
        assert!(!text.contains(absent), "{absent} is advertised");
    }
    let reconciler = docs
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "cluster-reconciler"
        })
        .expect("the applier is bound to cluster-admin");
    assert_eq!(reconciler["roleRef"]["name"], "cluster-admin");
    assert_eq!(
        reconciler["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": "flux-system"}])
    );
    for missing in [
        "helm-controller",
        "notification-controller",
        "canary-controller",
    ] {
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
            .args(["up", "--no-simulator", "--data-dir"])
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
    let manifests = Command::cargo_bin("ferroflux")
        .expect("binary")
        .args([
            "install",
            "--export",
            "--components-extra=image-reflector-controller,image-automation-controller",
        ])
        .output()
        .expect("install --export");
    assert!(manifests.status.success());
    for manager in ["kubectl", "kubectl", "platform-team"] {
        let output = common::kubectl(
            &kubeconfig,
            &[
                "apply",
                "--server-side",
                &format!("--field-manager={manager}"),
                "-f",
                "-",
            ],
            Some(&manifests.stdout),
        );
        assert!(
            output.status.success(),
            "apply as {manager}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
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
