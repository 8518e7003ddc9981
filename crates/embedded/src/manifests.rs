//! The objects Flux's installation creates, shared by the bootstrap of the embedded control
//! plane and `ferroflux install --export`, so both grant the same rights and describe the
//! controllers the same way: the applier's ServiceAccount and binding, and one Deployment per
//! controller.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector,
    PodSpec, PodTemplateSpec, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

/// The container image of the controllers (`ferroflux install --image`'s default).
pub const IMAGE: &str = concat!("ghcr.io/ferroflux/ferroflux:v", env!("CARGO_PKG_VERSION"));

/// A component installed as one Deployment (a controller, or the policy webhook), as Flux
/// names its Deployment.
#[derive(Debug)]
pub struct Controller {
    /// Flux's name: the Deployment, its ServiceAccount and `app.kubernetes.io/component`.
    pub name: &'static str,
    /// What its container runs.
    pub command: Command,
    /// The container's ports; those with a Service port are exposed by a Service of the
    /// component's name.
    pub ports: &'static [Port],
    /// The flags an installed Deployment adds to the defaults.
    pub extra_flags: &'static [&'static str],
}

impl Controller {
    /// Whether the component is a `ferroflux controller`, which `ferroflux up` runs as a task
    /// and records as a Deployment. The policy webhook is not: `up` decides admission inside
    /// its API server, and a Deployment running `ferroflux policy-webhook` would record a
    /// process that does not exist.
    pub fn is_controller(&self) -> bool {
        matches!(self.command, Command::Controller(_))
    }
}

/// The `ferroflux` command a component's container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `ferroflux controller SUBCOMMAND`, with the flags every controller shares.
    Controller(&'static str),
    /// `ferroflux policy-webhook`: Kyverno-style admission the cluster's API server calls; it
    /// has none of the controllers' flags (no leader election, no watched namespaces).
    PolicyWebhook,
}

impl Command {
    /// The container's `command`: the binary and its subcommand.
    pub fn program(self) -> Vec<String> {
        let subcommand = match self {
            Command::Controller(_) => "controller",
            Command::PolicyWebhook => "policy-webhook",
        };
        vec!["ferroflux".into(), subcommand.into()]
    }

    /// The container's `args`: the controller's name for `ferroflux controller`, then `flags`.
    pub fn args(self, flags: Vec<String>) -> Vec<String> {
        match self {
            Command::Controller(name) => std::iter::once(name.to_string()).chain(flags).collect(),
            Command::PolicyWebhook => flags,
        }
    }
}

/// A container port of a component.
#[derive(Debug)]
pub struct Port {
    /// The port's name, as Flux names it (`http`, `http-prom`).
    pub name: &'static str,
    /// The port the container listens on.
    pub container_port: i32,
    /// The port of the component's Service in front of it, if it has one.
    pub service_port: Option<i32>,
}

/// Every controller serves Prometheus metrics here, as Flux's do.
const METRICS: Port = Port {
    name: "http-prom",
    container_port: 8080,
    service_port: None,
};

/// The artifact server of the controllers that serve artifacts, behind their Service's port 80.
const ARTIFACTS: Port = Port {
    name: "http",
    container_port: 9090,
    service_port: Some(80),
};

/// The components ferroflux installs: only controllers that exist.
pub const CONTROLLERS: &[Controller] = &[
    Controller {
        name: "source-controller",
        command: Command::Controller("source"),
        ports: &[METRICS, ARTIFACTS],
        extra_flags: &[
            "--storage-path=/tmp/artifacts",
            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ],
    },
    Controller {
        name: "source-watcher",
        command: Command::Controller("source-watcher"),
        ports: &[METRICS, ARTIFACTS],
        extra_flags: &[
            "--storage-path=/tmp/artifacts",
            "--storage-adv-addr=source-watcher.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ],
    },
    Controller {
        name: "kustomize-controller",
        command: Command::Controller("kustomize"),
        ports: &[METRICS],
        extra_flags: &[],
    },
    Controller {
        name: "helm-controller",
        command: Command::Controller("helm"),
        ports: &[METRICS],
        extra_flags: &[],
    },
    Controller {
        name: NOTIFICATION_CONTROLLER,
        command: Command::Controller("notification"),
        // Events from the other controllers on 9090 behind the Service's port 80, and the
        // Receivers' webhooks on 9292, as Flux's.
        ports: &[
            METRICS,
            ARTIFACTS,
            Port {
                name: "http-webhook",
                container_port: 9292,
                service_port: None,
            },
        ],
        extra_flags: &[],
    },
    Controller {
        name: "image-reflector-controller",
        command: Command::Controller("image-reflector"),
        ports: &[METRICS],
        extra_flags: &[],
    },
    Controller {
        name: "image-automation-controller",
        command: Command::Controller("image-automation"),
        ports: &[METRICS],
        extra_flags: &[],
    },
    // Flagger's canary controller, named as Flagger's Deployment.
    Controller {
        name: "flagger",
        command: Command::Controller("canary"),
        ports: &[METRICS],
        extra_flags: &[],
    },
    Controller {
        name: POLICY_WEBHOOK,
        command: Command::PolicyWebhook,
        // kube-apiserver calls a webhook Service on 443 unless told otherwise.
        ports: &[Port {
            name: "https",
            container_port: 9443,
            service_port: Some(443),
        }],
        // The certificate names the Service's DNS name, which is what kube-apiserver checks
        // when it calls `clientConfig.service`; the registration names the same Service.
        extra_flags: &[
            "--listen=0.0.0.0:9443",
            "--tls-san=policy-webhook.$(RUNTIME_NAMESPACE).svc",
            "--register-service=$(RUNTIME_NAMESPACE)/policy-webhook",
        ],
    },
];

/// The component of Kyverno-style admission: the `policy-webhook` Deployment of `install`, and
/// the component of the Kyverno CRDs.
pub const POLICY_WEBHOOK: &str = "policy-webhook";

/// The controller Flux names `name`.
pub fn controller(name: &str) -> Option<&'static Controller> {
    CONTROLLERS.iter().find(|c| c.name == name)
}

/// The notification controller, where every other controller posts its events.
pub const NOTIFICATION_CONTROLLER: &str = "notification-controller";

/// The ServiceAccount the platform's own Kustomizations name in `spec.serviceAccountName`
/// under lockdown (`--default-service-account`): kustomize-controller's.
pub const APPLIER: &str = "kustomize-controller";

/// The controllers that apply manifests (and honour `--default-service-account`).
pub const APPLIERS: &[&str] = &[APPLIER, "helm-controller"];

/// Flux's `cluster-reconciler` binding of the `appliers` installed: like Flux, they are
/// cluster-admin and tenants are confined by impersonation.
pub fn cluster_reconciler(namespace: &str, appliers: &[&str]) -> ClusterRoleBinding {
    binding("cluster-reconciler", "cluster-admin", namespace, appliers)
}

/// A ClusterRoleBinding of `role` to the ServiceAccounts `service_accounts` of `namespace`.
pub fn binding(
    name: &str,
    role: &str,
    namespace: &str,
    service_accounts: &[&str],
) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(
            service_accounts
                .iter()
                .map(|sa| Subject {
                    kind: "ServiceAccount".into(),
                    name: sa.to_string(),
                    namespace: Some(namespace.to_string()),
                    ..Subject::default()
                })
                .collect(),
        ),
    }
}

/// A controller's ServiceAccount.
pub fn service_account(name: &str, namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(name, Some(namespace), name),
        ..ServiceAccount::default()
    }
}

/// The labels of every object ferroflux installs: Flux's own (`flux check`, `flux version`
/// and dashboards select `app.kubernetes.io/part-of=flux`), and which component.
pub fn labels(component: &str) -> BTreeMap<String, String> {
    let mut labels = ferroflux_api::crds::distribution_labels();
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        component.to_string(),
    );
    labels
}

/// The metadata of an installed object, with [`labels`].
pub fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(component)),
        ..ObjectMeta::default()
    }
}

/// The Deployment of `controller` in `namespace`: container `manager` running its
/// [`Command`] with `flags`.
pub fn deployment(
    controller: &Controller,
    namespace: &str,
    image: &str,
    flags: Vec<String>,
) -> Deployment {
    let selector = BTreeMap::from([("app".to_string(), controller.name.to_string())]);
    let mut pod_labels = labels(controller.name);
    pod_labels.extend(selector.clone());
    Deployment {
        metadata: meta(controller.name, Some(namespace), controller.name),
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
                    containers: vec![manager(controller, image, flags)],
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

/// The `manager` container of a controller's Deployment.
fn manager(controller: &Controller, image: &str, flags: Vec<String>) -> Container {
    let ports = controller
        .ports
        .iter()
        .map(|port| ContainerPort {
            name: Some(port.name.into()),
            container_port: port.container_port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        })
        .collect();
    Container {
        name: "manager".into(),
        image: Some(image.to_string()),
        command: Some(controller.command.program()),
        args: Some(controller.command.args(flags)),
        ports: Some(ports),
        env: Some(vec![EnvVar {
            name: "RUNTIME_NAMESPACE".into(),
            value_from: Some(EnvVarSource {
                // kube defaults the apiVersion of this atomic selector: written out, a second
                // field manager applying the same export co-owns it instead of conflicting.
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: "metadata.namespace".into(),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        }]),
        volume_mounts: Some(vec![VolumeMount {
            name: "temp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_webhook_runs_its_own_command_and_is_no_controller() {
        let webhook = controller(POLICY_WEBHOOK).expect("the policy webhook is installable");
        assert!(!webhook.is_controller());
        let deployment = deployment(
            webhook,
            "flux-system",
            IMAGE,
            vec!["--log-level=info".into()],
        );
        let container = deployment
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers[0].clone())
            .expect("a container");
        assert_eq!(
            container.command,
            Some(vec!["ferroflux".into(), "policy-webhook".into()])
        );
        assert_eq!(container.args, Some(vec!["--log-level=info".into()]));
        let source = controller("source-controller").expect("source-controller");
        assert!(source.is_controller());
        assert_eq!(
            source.command.args(vec!["--x".into()]),
            ["source".to_string(), "--x".to_string()]
        );
    }
}
