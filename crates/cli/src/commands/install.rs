//! `ferroflux install`: the manifests that run ferroflux on a Kubernetes cluster, in the same
//! topology as Flux (one Deployment per controller in `flux-system`), and optionally the
//! `policy-webhook` component: Kyverno-style admission as a validating webhook.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use ferroflux_embedded::manifests::{
    APPLIERS, CONTROLLERS, Command, Controller, IMAGE, NOTIFICATION_CONTROLLER, POLICY_WEBHOOK,
    binding, cluster_reconciler, deployment, meta, service_account,
};

/// Install ferroflux on a cluster: the CRDs, RBAC and one Deployment per controller.
#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// Print the manifests to stdout instead of applying them.
    #[arg(long)]
    export: bool,
    /// Namespace to install into.
    #[arg(long, default_value = "flux-system")]
    namespace: String,
    /// Container image of the controllers.
    #[arg(long, default_value = IMAGE)]
    image: String,
    /// Controllers to install.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "source-controller,kustomize-controller,helm-controller,notification-controller"
    )]
    components: Vec<String>,
    /// Controllers to install besides --components; `policy-webhook` adds Kyverno-style
    /// admission (its CRDs, RBAC, Service and Deployment).
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
    /// Extra flags of helm-controller, e.g. `--default-service-account=default`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    helm_controller_extra_args: Vec<String>,
    /// Extra flags of notification-controller, e.g. `--no-cross-namespace-refs=true`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    notification_controller_extra_args: Vec<String>,
    /// Extra flags of source-watcher, e.g. `--no-cross-namespace-refs=true`.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    source_watcher_extra_args: Vec<String>,
    /// Extra flags of image-reflector-controller.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    image_reflector_controller_extra_args: Vec<String>,
    /// Extra flags of image-automation-controller.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    image_automation_controller_extra_args: Vec<String>,
    /// Path to the kubeconfig to apply with (without --export).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    context: Option<String>,
    /// Timeout for applying and verifying, a Go duration.
    #[arg(long, default_value = "5m")]
    timeout: String,
}

impl InstallArgs {
    /// The namespace installed into.
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The manifests, one YAML document each.
    pub(crate) fn manifests(&self) -> anyhow::Result<Vec<String>> {
        manifests(self)
    }

    /// The names of the selected components, in install order.
    pub(crate) fn component_names(&self) -> Vec<&'static str> {
        selected_controllers(self)
            .map(|selected| selected.iter().map(|c| c.name).collect())
            .unwrap_or_default()
    }

    /// The cluster flags (`--namespace` is the install's).
    pub(crate) fn cluster_args(&self) -> super::cluster::ClusterArgs {
        super::cluster::ClusterArgs {
            namespace: self.namespace.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            timeout: self.timeout.clone(),
        }
    }
}

impl InstallArgs {
    fn extra_args(&self, controller: &str) -> &[String] {
        match controller {
            "source-controller" => &self.source_controller_extra_args,
            "source-watcher" => &self.source_watcher_extra_args,
            "kustomize-controller" => &self.kustomize_controller_extra_args,
            "helm-controller" => &self.helm_controller_extra_args,
            "notification-controller" => &self.notification_controller_extra_args,
            "image-reflector-controller" => &self.image_reflector_controller_extra_args,
            "image-automation-controller" => &self.image_automation_controller_extra_args,
            _ => &[],
        }
    }
}

pub fn run(args: InstallArgs) -> anyhow::Result<ExitCode> {
    if !args.export {
        return apply(&args);
    }
    out!("{}", manifests(&args)?.join("---\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Applies the manifests as `flux install` does: server-side, CRDs first, the change set
/// printed, then waits until every controller's Deployment is ready.
fn apply(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    eprintln!("✚ generating manifests");
    let documents = manifests(args)?;
    let objects = documents
        .iter()
        .map(|d| ferroflux_gocompat::yaml::from_str::<serde_json::Value>(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("install failed: {e}"))?;
    eprintln!("✔ manifests build completed");
    eprintln!("► installing components in {} namespace", args.namespace);
    let selected = selected_controllers(args)?;
    let cluster = args.cluster_args();
    super::cluster::block_on(cluster.timeout()?, async {
        let client = cluster.client().await?;
        let manager = ferroflux_apply::manager::ResourceManager::new(client.clone(), "flux");
        let changes = manager
            .apply_all(&objects, &ferroflux_apply::manager::ApplyOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!("install failed: {e}"))?;
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        eprintln!("{}", lines.join("\n"));
        eprintln!("◎ verifying installation");
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, &args.namespace);
        for controller in &selected {
            loop {
                let deployment = deployments.get_opt(controller.name).await?;
                let object = serde_json::to_value(&deployment)?;
                let health = ferroflux_apply::health::assess(&object);
                match health.status {
                    ferroflux_apply::health::Status::Current => break,
                    ferroflux_apply::health::Status::Failed => bail!("install failed"),
                    _ => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                }
            }
            eprintln!("✔ {}: deployment ready", controller.name);
        }
        eprintln!("✔ install finished");
        Ok(ExitCode::SUCCESS)
    })
}

/// The manifests of the install, one YAML document each.
fn manifests(args: &InstallArgs) -> anyhow::Result<Vec<String>> {
    let args = args.clone();
    let selected = selected_controllers(&args)?;
    let mut docs: Vec<String> = Vec::new();
    docs.push(to_yaml(&namespace(&args.namespace))?);
    let components: Vec<&str> = selected.iter().map(|c| c.name).collect();
    // Like `flux install --components`, the CRDs of the installed components only: a kind
    // nothing reconciles (HelmRelease, Alert, ...) is refused by the cluster instead of waiting
    // for ever.
    for kind in ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|kind| components.contains(&kind.component))
    {
        docs.push(to_yaml(&kind.definition())?);
    }
    // The controllers share Flux's `crd-controller` rights; the webhook has its own, narrower.
    let controllers: Vec<&str> = selected
        .iter()
        .filter(|c| c.is_controller())
        .map(|c| c.name)
        .collect();
    if !controllers.is_empty() {
        docs.push(to_yaml(&crd_controller_role())?);
        docs.push(to_yaml(&binding(
            "crd-controller",
            "crd-controller",
            &args.namespace,
            &controllers,
        ))?);
    }
    let appliers: Vec<&str> = controllers
        .iter()
        .copied()
        .filter(|c| APPLIERS.contains(c))
        .collect();
    if !appliers.is_empty() {
        docs.push(to_yaml(&cluster_reconciler(&args.namespace, &appliers))?);
    }
    if components.contains(&POLICY_WEBHOOK) {
        docs.push(to_yaml(&policy_webhook_role())?);
        docs.push(to_yaml(&binding(
            POLICY_WEBHOOK,
            POLICY_WEBHOOK,
            &args.namespace,
            &[POLICY_WEBHOOK],
        ))?);
    }
    for controller in &selected {
        docs.push(to_yaml(&service_account(controller.name, &args.namespace))?);
        if let Some(service) = service(controller, &args.namespace) {
            docs.push(to_yaml(&service)?);
        }
        docs.push(to_yaml(&deployment(
            controller,
            &args.namespace,
            &args.image,
            controller_args(controller, &args, &components),
        ))?);
    }
    Ok(docs)
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

/// A ClusterRole rule: `verbs` on `resources` of `groups`.
fn rule<G: AsRef<str>>(groups: &[G], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(groups.iter().map(|g| g.as_ref().to_string()).collect()),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

/// The API groups of the Flux kinds. Kyverno's kinds and the policy reports are the
/// webhook's, not the controllers'.
fn flux_groups() -> Vec<String> {
    ferroflux_api::crds::SERVED_KINDS
        .iter()
        .filter(|k| k.component != POLICY_WEBHOOK)
        .map(|k| k.group())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn crd_controller_role() -> ClusterRole {
    let flux_groups = flux_groups();
    ClusterRole {
        metadata: meta("crd-controller", None, "rbac"),
        rules: Some(vec![
            rule(&flux_groups, &["*"], &["*"]),
            rule(
                &[""],
                &["namespaces", "secrets", "configmaps", "serviceaccounts"],
                &["get", "list", "watch"],
            ),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(&["coordination.k8s.io"], &["leases"], &["*"]),
        ]),
        ..ClusterRole::default()
    }
}

/// What `ferroflux policy-webhook` does with the API, nothing more: the policy cache lists and
/// watches the policies and the namespaces (their labels feed `namespaceSelector`) and patches
/// each policy's `Ready` condition; the registration server-side applies its
/// ValidatingWebhookConfiguration (apply creates it the first time); background scans list
/// the Flux kinds (what ferroflux's policies match; a policy on other kinds needs its own
/// binding, else the scan skips the kind) and write the PolicyReports/ClusterPolicyReports.
fn policy_webhook_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(POLICY_WEBHOOK, None, "rbac"),
        rules: Some(vec![
            rule(
                &["kyverno.io"],
                &["clusterpolicies", "policies"],
                &["list", "watch"],
            ),
            rule(
                &["kyverno.io"],
                &["clusterpolicies/status", "policies/status"],
                &["patch"],
            ),
            rule(&[""], &["namespaces"], &["list", "watch"]),
            // Kyverno's `roles`/`clusterRoles` of a requester come from its bindings.
            rule(
                &["rbac.authorization.k8s.io"],
                &["rolebindings", "clusterrolebindings"],
                &["list", "watch"],
            ),
            rule(
                &["admissionregistration.k8s.io"],
                &["validatingwebhookconfigurations"],
                &["get", "create", "patch", "update"],
            ),
            rule(&flux_groups(), &["*"], &["list"]),
            rule(
                &["wgpolicyk8s.io"],
                &["policyreports", "clusterpolicyreports"],
                &["list", "create", "update", "delete"],
            ),
        ]),
        ..ClusterRole::default()
    }
}

/// The Service in front of the component's ports that have a Service port, if any.
fn service(controller: &Controller, namespace: &str) -> Option<Service> {
    let ports: Vec<ServicePort> = controller
        .ports
        .iter()
        .filter_map(|port| {
            Some(ServicePort {
                name: Some(port.name.into()),
                port: port.service_port?,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(port.container_port)),
                ..ServicePort::default()
            })
        })
        .collect();
    if ports.is_empty() {
        return None;
    }
    let name = controller.name;
    Some(Service {
        metadata: meta(name, Some(namespace), name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(BTreeMap::from([("app".to_string(), name.to_string())])),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// The container's flags (its [`Command`] adds the subcommand): the defaults, then the user's
/// extra args, a later `--flag=...` replacing an earlier one of the same name.
fn controller_args(controller: &Controller, args: &InstallArgs, installed: &[&str]) -> Vec<String> {
    let log_level = format!("--log-level={}", args.log_level);
    let mut flags: Vec<String> = match controller.command {
        Command::Controller(_) => vec![
            format!("--watch-all-namespaces={}", args.watch_all_namespaces),
            log_level,
            "--log-encoding=json".into(),
            "--enable-leader-election".into(),
        ],
        Command::PolicyWebhook => vec![log_level],
    };
    // As Flux's manifests: every controller posts its events to the notification controller
    // when it is installed.
    let posts_events = matches!(controller.command, Command::Controller(_))
        && controller.name != NOTIFICATION_CONTROLLER
        && installed.contains(&NOTIFICATION_CONTROLLER);
    if posts_events {
        flags.insert(
            0,
            format!("--events-addr=http://{NOTIFICATION_CONTROLLER}.$(RUNTIME_NAMESPACE).svc.cluster.local./"),
        );
    }
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
            "--components-extra=image-reflector-controller,image-automation-controller,policy-webhook",
            "--kustomize-controller-extra-args=--no-cross-namespace-refs=true,--default-service-account=default",
        ])
        .expect("install flags parse");
        let crate::Command::Install(args) = args.command else {
            panic!("parsed as another command")
        };
        let selected = selected_controllers(&args).expect("known components");
        assert_eq!(selected.len(), 7);
        let installed: Vec<&str> = selected.iter().map(|c| c.name).collect();
        for controller in &selected {
            let flags = controller_args(controller, &args, &installed);
            let mut line = controller.command.program();
            line.extend(controller.command.args(flags));
            match crate::Cli::try_parse_from(&line) {
                Err(err) => panic!("{}: {line:?} does not parse: {err}", controller.name),
                Ok(cli) => assert_eq!(
                    matches!(cli.command, crate::Command::PolicyWebhook(_)),
                    controller.name == POLICY_WEBHOOK,
                    "{line:?}"
                ),
            }
        }
    }
}
