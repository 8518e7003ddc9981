//! `ferroflux install`: the manifests that run ferroflux on a Kubernetes cluster, in the same
//! topology as Flux (one Deployment per controller in `flux-system`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, Namespace, PodSpec, PodTemplateSpec, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use ferroflux_embedded::manifests::{
    APPLIER, binding, cluster_reconciler, labels, meta, service_account,
};

/// The controllers `ferroflux controller NAME` runs, with the flags each gets by default. Only
/// controllers that exist are offered: Flux's helm-controller and notification-controller have
/// no ferroflux counterpart yet, and a Deployment for them would advertise what does not run.
const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "source-controller",
        command: "source",
        http_port: Some(9090),
        extra_flags: &[
            "--storage-path=/tmp/artifacts",
            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ],
    },
    Controller {
        name: "source-watcher",
        command: "source-watcher",
        http_port: Some(9090),
        extra_flags: &[
            "--storage-path=/tmp/artifacts",
            "--storage-adv-addr=source-watcher.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ],
    },
    Controller {
        name: "kustomize-controller",
        command: "kustomize",
        http_port: None,
        extra_flags: &[],
    },
    Controller {
        name: "image-reflector-controller",
        command: "image-reflector",
        http_port: None,
        extra_flags: &[],
    },
    Controller {
        name: "image-automation-controller",
        command: "image-automation",
        http_port: None,
        extra_flags: &[],
    },
];

struct Controller {
    name: &'static str,
    command: &'static str,
    http_port: Option<i32>,
    extra_flags: &'static [&'static str],
}

/// Install ferroflux on a cluster: the CRDs, RBAC and one Deployment per controller.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests to stdout instead of applying them.
    #[arg(long)]
    export: bool,
    /// Namespace to install into.
    #[arg(long, default_value = "flux-system")]
    namespace: String,
    /// Container image of the controllers.
    #[arg(long, default_value = concat!("ghcr.io/ferroflux/ferroflux:v", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// Controllers to install.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "source-controller,kustomize-controller"
    )]
    components: Vec<String>,
    /// Controllers to install besides --components.
    #[arg(long, value_delimiter = ',')]
    components_extra: Vec<String>,
    /// Log level of the controllers.
    #[arg(long, default_value = "info", value_parser = ["debug", "info", "error"])]
    log_level: String,
    /// Let the controllers watch every namespace (false: only their own).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    watch_all_namespaces: bool,
    /// Extra flags of source-controller, e.g. `--artifact-max-size=100000000`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    source_controller_extra_args: Vec<String>,
    /// Extra flags of kustomize-controller, e.g. `--no-cross-namespace-refs=true`.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        visible_alias = "kustomization-controller-extra-args"
    )]
    kustomize_controller_extra_args: Vec<String>,
    /// Extra flags of source-watcher, e.g. `--no-cross-namespace-refs=true`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    source_watcher_extra_args: Vec<String>,
    /// Extra flags of image-reflector-controller.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    image_reflector_controller_extra_args: Vec<String>,
    /// Extra flags of image-automation-controller.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    image_automation_controller_extra_args: Vec<String>,
}

impl InstallArgs {
    fn extra_args(&self, controller: &str) -> &[String] {
        match controller {
            "source-controller" => &self.source_controller_extra_args,
            "source-watcher" => &self.source_watcher_extra_args,
            "kustomize-controller" => &self.kustomize_controller_extra_args,
            "image-reflector-controller" => &self.image_reflector_controller_extra_args,
            _ => &self.image_automation_controller_extra_args,
        }
    }
}

pub fn run(args: InstallArgs) -> anyhow::Result<ExitCode> {
    if !args.export {
        bail!(
            "installing straight into a cluster is not available yet; \
             run `ferroflux install --export | kubectl apply --server-side -f -`"
        );
    }
    let selected = selected_controllers(&args)?;
    let mut docs: Vec<String> = Vec::new();
    docs.push(to_yaml(&namespace(&args.namespace))?);
    let service_accounts: Vec<&str> = selected.iter().map(|c| c.name).collect();
    // Like `flux install --components`, the CRDs of the installed controllers only: a kind
    // nothing reconciles (HelmRelease, Alert, ...) is refused by the cluster instead of waiting
    // for ever.
    for kind in ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|kind| service_accounts.contains(&kind.component))
    {
        docs.push(to_yaml(&kind.definition())?);
    }
    docs.push(to_yaml(&crd_controller_role())?);
    docs.push(to_yaml(&binding(
        "crd-controller",
        "crd-controller",
        &args.namespace,
        &service_accounts,
    ))?);
    if service_accounts.contains(&APPLIER) {
        docs.push(to_yaml(&cluster_reconciler(&args.namespace))?);
    }
    for controller in &selected {
        docs.push(to_yaml(&service_account(controller.name, &args.namespace))?);
        if let Some(port) = controller.http_port {
            docs.push(to_yaml(&service(
                controller.name,
                &args.namespace,
                80,
                port,
            ))?);
        }
        docs.push(to_yaml(&deployment(controller, &args))?);
    }
    out!("{}", docs.join("---\n"))?;
    Ok(ExitCode::SUCCESS)
}

fn selected_controllers(args: &InstallArgs) -> anyhow::Result<Vec<&'static Controller>> {
    let wanted: Vec<&str> = args
        .components
        .iter()
        .chain(&args.components_extra)
        .map(String::as_str)
        .collect();
    for name in &wanted {
        if !CONTROLLERS.iter().any(|c| c.name == *name) {
            let known: Vec<&str> = CONTROLLERS.iter().map(|c| c.name).collect();
            bail!(
                "unknown component {name:?}; known components: {}",
                known.join(", ")
            );
        }
    }
    Ok(CONTROLLERS
        .iter()
        .filter(|c| wanted.contains(&c.name))
        .collect())
}

fn to_yaml<T: Serialize>(object: &T) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(object)?)
}

fn namespace(name: &str) -> Namespace {
    let mut meta = meta(name, None, "namespace");
    meta.labels.get_or_insert_with(BTreeMap::new).insert(
        "pod-security.kubernetes.io/warn".into(),
        "restricted".into(),
    );
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

fn crd_controller_role() -> ClusterRole {
    let flux_groups: Vec<String> = ferroflux_api::crds::SERVED_KINDS
        .iter()
        .map(|k| k.group())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rule = |groups: Vec<String>, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..PolicyRule::default()
    };
    ClusterRole {
        metadata: meta("crd-controller", None, "rbac"),
        rules: Some(vec![
            rule(flux_groups, &["*"], &["*"]),
            rule(
                vec![String::new()],
                &["namespaces", "secrets", "configmaps", "serviceaccounts"],
                &["get", "list", "watch"],
            ),
            rule(vec![String::new()], &["events"], &["create", "patch"]),
            rule(vec!["coordination.k8s.io".into()], &["leases"], &["*"]),
        ]),
        ..ClusterRole::default()
    }
}

fn service(name: &str, namespace: &str, port: i32, target: i32) -> Service {
    Service {
        metadata: meta(name, Some(namespace), name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(target)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The container arguments: the defaults, then the user's extra args, a later `--flag=...`
/// replacing an earlier one of the same name.
fn controller_args(controller: &Controller, args: &InstallArgs) -> Vec<String> {
    let mut flags: Vec<String> = vec![
        "controller".into(),
        controller.command.into(),
        format!("--watch-all-namespaces={}", args.watch_all_namespaces),
        format!("--log-level={}", args.log_level),
        "--log-encoding=json".into(),
        "--enable-leader-election".into(),
    ];
    flags.extend(controller.extra_flags.iter().map(|f| f.to_string()));
    for extra in args.extra_args(controller.name) {
        let name = flag_name(extra);
        flags.retain(|existing| !existing.starts_with("--") || flag_name(existing) != name);
        flags.push(extra.clone());
    }
    flags
}

fn flag_name(flag: &str) -> &str {
    flag.split_once('=').map_or(flag, |(name, _)| name)
}

fn deployment(controller: &Controller, args: &InstallArgs) -> Deployment {
    let selector = BTreeMap::from([("app".to_string(), controller.name.to_string())]);
    let mut pod_labels = labels(controller.name);
    pod_labels.extend(selector.clone());
    let mut ports = vec![ContainerPort {
        name: Some("http-prom".into()),
        container_port: 8080,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }];
    if let Some(port) = controller.http_port {
        ports.push(ContainerPort {
            name: Some("http".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }
    let mut argv = controller_args(controller, args);
    let command = vec!["ferroflux".to_string(), argv.remove(0)];
    Deployment {
        metadata: meta(controller.name, Some(&args.namespace), controller.name),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(controller.name.to_string()),
                    termination_grace_period_seconds: Some(10),
                    containers: vec![Container {
                        name: "manager".into(),
                        image: Some(args.image.clone()),
                        command: Some(command),
                        args: Some(argv),
                        ports: Some(ports),
                        env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
                            name: "RUNTIME_NAMESPACE".into(),
                            value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                                // kube defaults the apiVersion of this atomic selector:
                                // written out, a second field manager applying the same
                                // export co-owns it instead of conflicting on it.
                                field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                                    api_version: Some("v1".into()),
                                    field_path: "metadata.namespace".into(),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "temp".into(),
                            mount_path: "/tmp".into(),
                            ..VolumeMount::default()
                        }]),
                        ..Container::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "temp".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_installed_deployment_runs_a_command_line_the_cli_accepts() {
        let args = crate::Cli::try_parse_from([
            "ferroflux",
            "install",
            "--export",
            "--components-extra=image-reflector-controller,image-automation-controller",
            "--kustomize-controller-extra-args=--no-cross-namespace-refs=true,--default-service-account=default",
        ])
        .expect("install flags parse");
        let crate::Command::Install(args) = args.command else {
            panic!("parsed as another command")
        };
        for controller in selected_controllers(&args).expect("known components") {
            let argv = controller_args(controller, &args);
            let mut line = vec!["ferroflux".to_string()];
            line.extend(argv);
            if let Err(err) = crate::Cli::try_parse_from(&line) {
                panic!("{}: {line:?} does not parse: {err}", controller.name);
            }
        }
    }
}
