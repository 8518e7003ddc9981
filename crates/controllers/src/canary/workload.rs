//! The workloads of a Canary, as Flagger's Deployment controller handles them: the
//! `<target>-primary` copy, the three Services, scaling the target, readiness and the hash of
//! the target's pod template.

use std::collections::BTreeMap;

use ferroflux_api::flagger::Canary;
use ferroflux_canary::Readiness;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::runtime::ReconcileError;

/// The field manager of every write (Flagger's name).
pub const MANAGER: &str = "flagger";

/// Flagger's `-selector-labels` default: the first of these in the target's selector names
/// the workload.
const SELECTOR_LABELS: &[&str] = &["app", "name", "app.kubernetes.io/name"];

/// The name of the primary of `target`.
pub fn primary_name(target: &str) -> String {
    format!("{target}-primary")
}

/// The selector label of `target` (Flagger's `-selector-labels`), or the refusal naming it.
pub fn selector_label(target: &Deployment) -> Result<String, ReconcileError> {
    let labels = target
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    SELECTOR_LABELS
        .iter()
        .find(|key| labels.contains_key(**key))
        .map(|key| key.to_string())
        .ok_or_else(|| {
            ReconcileError::stalling(
                "InvalidSpec",
                format!(
                    "deployment {} spec.selector.matchLabels must contain one of {SELECTOR_LABELS:?}",
                    target.name_any()
                ),
            )
        })
}

/// The hash of the target's pod template and of its tracked configs (the Canary's
/// `lastAppliedSpec`); without tracked configs, of the template alone.
pub fn template_hash(target: &Deployment, tracked: &BTreeMap<String, String>) -> String {
    let template = target
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if tracked.is_empty() {
        return ferroflux_canary::spec_hash(&template);
    }
    ferroflux_canary::spec_hash(&json!({ "template": template, "configs": tracked }))
}

/// The target's pod spec, for the config tracker.
pub fn pod_spec(target: &Deployment) -> Value {
    target
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

/// The owner reference that makes the Canary own what it creates (garbage collected with it).
pub fn owner(canary: &Canary) -> OwnerReference {
    OwnerReference {
        api_version: Canary::api_version(&()).into_owned(),
        kind: Canary::kind(&()).into_owned(),
        name: canary.name_any(),
        uid: canary.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The target's spec as the primary's: the selector and the pod labels say `<target>-primary`,
/// tracked configs are their `-primary` copies.
fn primary_spec(
    target: &Deployment,
    label: &str,
    primary: &str,
    tracked: &BTreeMap<String, String>,
) -> Value {
    let mut spec = serde_json::to_value(target.spec.clone()).unwrap_or(Value::Null);
    super::configs::rename(&mut spec["template"]["spec"], tracked);
    spec["selector"] = json!({ "matchLabels": { label: primary } });
    spec["template"]["metadata"]["labels"][label] = json!(primary);
    if let Some(fields) = spec.as_object_mut() {
        fields.remove("paused");
    }
    spec
}

/// Creates the primary Deployment from the target when it does not exist (Flagger's
/// `Initialize`); its replicas are the target's (1 when the target has none).
pub async fn ensure_primary(
    api: &Api<Deployment>,
    canary: &Canary,
    target: &Deployment,
    label: &str,
    tracked: &BTreeMap<String, String>,
) -> Result<Deployment, kube::Error> {
    let name = primary_name(&target.name_any());
    if let Some(primary) = api.get_opt(&name).await? {
        return Ok(primary);
    }
    let mut spec = primary_spec(target, label, &name, tracked);
    if spec["replicas"].as_i64().unwrap_or(0) < 1 {
        spec["replicas"] = json!(1);
    }
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": canary.namespace(),
            "labels": { label: name },
            "ownerReferences": [owner(canary)],
        },
        "spec": spec,
    });
    let primary: Deployment = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &primary).await
}

/// Copies the target's pod template (and rollout settings) to the primary (Flagger's
/// `Promote`), keeping the primary's replicas.
pub async fn promote(
    api: &Api<Deployment>,
    target: &Deployment,
    label: &str,
    tracked: &BTreeMap<String, String>,
) -> Result<(), kube::Error> {
    let name = primary_name(&target.name_any());
    let mut primary = api.get(&name).await?;
    let spec = primary_spec(target, label, &name, tracked);
    let mut current = serde_json::to_value(primary.spec.take()).unwrap_or(Value::Null);
    for field in [
        "template",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
    ] {
        current[field] = spec[field].clone();
    }
    primary.spec = serde_json::from_value(current).map_err(kube::Error::SerdeError)?;
    api.replace(&name, &PostParams::default(), &primary).await?;
    Ok(())
}

/// Sets the replicas of `name`.
pub async fn scale(api: &Api<Deployment>, name: &str, replicas: i32) -> Result<(), kube::Error> {
    let patch = json!({ "spec": { "replicas": replicas } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The replicas the target gets back when the analysis starts: the primary's, at least one.
pub fn scale_up_replicas(primary: &Deployment) -> i32 {
    primary
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(1)
}

/// Flagger's `isDeploymentReady`: the rollout observed and finished, or why not; a rollout
/// past its progress deadline (the Deployment's `ProgressDeadlineExceeded`, or minimum
/// replicas unavailable for longer than the Canary's `progressDeadlineSeconds`) is not worth
/// waiting for.
pub fn readiness(deployment: &Deployment, deadline_seconds: i32) -> Readiness {
    let name = deployment.name_any();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return Readiness::NotReady(
            "waiting for rollout to finish: observed deployment generation less than desired generation"
                .into(),
        );
    }
    let conditions = status.conditions.unwrap_or_default();
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing");
    if progressing.and_then(|c| c.reason.as_deref()) == Some("ProgressDeadlineExceeded") {
        return Readiness::DeadlineExceeded(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let stuck = conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .filter(|c| {
            c.status == "False" && c.reason.as_deref() == Some("MinimumReplicasUnavailable")
        })
        .and_then(|c| c.last_update_time.as_ref())
        .is_some_and(|since| {
            let deadline = jiff::SignedDuration::from_secs(i64::from(deadline_seconds.max(0)));
            since
                .0
                .checked_add(deadline)
                .is_ok_and(|at| at < jiff::Timestamp::now())
        });
    let waiting = |why: String| {
        if stuck {
            Readiness::DeadlineExceeded(format!(
                "deployment {name:?} exceeded its progress deadline"
            ))
        } else {
            Readiness::NotReady(why)
        }
    };
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return waiting(format!(
            "waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "waiting for rollout to finish: {} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "waiting for rollout to finish: {available} of {updated} (readyThreshold 100%) updated replicas are available"
        ));
    }
    Readiness::Ready
}

/// Applies the Services `<service>` (apex) and `<service>-primary` selecting the primary and
/// `<service>-canary` selecting the target, on the port of `spec.service` (Flagger's
/// Kubernetes router).
pub async fn ensure_services(
    client: &kube::Client,
    canary: &Canary,
    label: &str,
) -> Result<(), kube::Error> {
    let namespace = canary.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let target = &canary.spec.target_ref.name;
    let apex = service_name(canary);
    let primary = primary_name(target);
    let service = &canary.spec.service;
    let port_name = service.port_name.clone().unwrap_or_else(|| "http".into());
    let target_port = service
        .target_port
        .clone()
        .unwrap_or_else(|| json!(service.port));
    for (name, selected, headless) in [
        (apex.clone(), primary.clone(), false),
        (
            format!("{apex}-primary"),
            primary.clone(),
            service.headless == Some(true),
        ),
        (
            format!("{apex}-canary"),
            target.clone(),
            service.headless == Some(true),
        ),
    ] {
        let mut object = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { label: name },
                "ownerReferences": [owner(canary)],
            },
            "spec": {
                "type": "ClusterIP",
                "selector": BTreeMap::from([(label.to_string(), selected)]),
                "ports": [{
                    "name": port_name,
                    "protocol": "TCP",
                    "port": service.port,
                    "targetPort": target_port,
                }],
            },
        });
        if let Some(protocol) = &service.app_protocol {
            object["spec"]["ports"][0]["appProtocol"] = json!(protocol);
        }
        if let Some(distribution) = &service.traffic_distribution {
            object["spec"]["trafficDistribution"] = json!(distribution);
        }
        if headless {
            object["spec"]["clusterIP"] = json!("None");
        }
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    }
    Ok(())
}

/// The apex Service's name: `spec.service.name`, else the target's.
pub fn service_name(canary: &Canary) -> String {
    canary
        .spec
        .service
        .name
        .clone()
        .unwrap_or_else(|| canary.spec.target_ref.name.clone())
}
