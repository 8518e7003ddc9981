//! Health of applied objects, following kstatus (sigs.k8s.io/cli-utils) as Flux uses it:
//! each object is Current, InProgress, Failed, Terminating or Unknown, with a message that says
//! why. Workloads are judged by their rollout fields; other objects by `observedGeneration`
//! and their `Ready`/`Reconciling`/`Stalled` conditions; objects without status are Current.

use serde_json::Value;

/// kstatus' verdict on an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Reconciled and healthy.
    Current,
    /// Still rolling out or reconciling.
    InProgress,
    /// Will not become healthy without a change.
    Failed,
    /// Being deleted.
    Terminating,
    /// The object could not be judged.
    Unknown,
}

/// A verdict with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The verdict.
    pub status: Status,
    /// Why, in kstatus' words (e.g. `Deployment is available. Replicas: 1`).
    pub message: String,
}

impl Health {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Health {
            status,
            message: message.into(),
        }
    }
}

/// Judges one object, as read back from the API server.
pub fn assess(object: &Value) -> Health {
    if !object["metadata"]["deletionTimestamp"].is_null() {
        return Health::new(Status::Terminating, "Resource scheduled for deletion");
    }
    let generation = object["metadata"]["generation"].as_i64();
    let observed = object["status"]["observedGeneration"].as_i64();
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Health::new(
            Status::InProgress,
            format!("Resource is being processed: observed generation {observed} of {generation}"),
        );
    }
    let group = object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    match (group, object["kind"].as_str().unwrap_or_default()) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object),
        ("batch", "Job") => job(object),
        ("", "Pod") => pod(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Service") => service(object),
        ("", "Namespace") => namespace(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        _ => generic(object),
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn is_true(condition: Option<&Value>) -> bool {
    condition.is_some_and(|c| c["status"] == "True")
}

fn message_of(condition: &Value) -> String {
    condition["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// Objects judged by conditions alone: Flux's kinds and any custom resource.
fn generic(object: &Value) -> Health {
    if let Some(stalled) = condition(object, "Stalled").filter(|c| c["status"] == "True") {
        return Health::new(Status::Failed, message_of(stalled));
    }
    if let Some(reconciling) = condition(object, "Reconciling").filter(|c| c["status"] == "True") {
        return Health::new(Status::InProgress, message_of(reconciling));
    }
    match condition(object, "Ready") {
        Some(ready) if ready["status"] == "True" => Health::new(Status::Current, message_of(ready)),
        Some(ready) if ready["status"] == "False" => Health::new(Status::Failed, message_of(ready)),
        Some(ready) => Health::new(Status::InProgress, message_of(ready)),
        None => Health::new(Status::Current, "Resource is current"),
    }
}

fn deployment(object: &Value) -> Health {
    let spec_replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &object["status"];
    if let Some(progressing) = condition(object, "Progressing")
        && progressing["reason"] == "ProgressDeadlineExceeded"
    {
        return Health::new(
            Status::Failed,
            format!("Progress deadline exceeded: {}", message_of(progressing)),
        );
    }
    let (replicas, updated, ready, available) = (
        int(&status["replicas"]),
        int(&status["updatedReplicas"]),
        int(&status["readyReplicas"]),
        int(&status["availableReplicas"]),
    );
    if updated < spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Updated: {updated}/{spec_replicas}"),
        );
    }
    if replicas > spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Pending termination: {}", replicas - spec_replicas),
        );
    }
    if available < spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Available: {available}/{spec_replicas}"),
        );
    }
    if ready < spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Ready: {ready}/{spec_replicas}"),
        );
    }
    if spec_replicas > 0 && !is_true(condition(object, "Available")) {
        return Health::new(Status::InProgress, "Deployment not Available");
    }
    Health::new(
        Status::Current,
        format!("Deployment is available. Replicas: {replicas}"),
    )
}

fn stateful_set(object: &Value) -> Health {
    let spec_replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &object["status"];
    let ready = int(&status["readyReplicas"]);
    if ready < spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Ready: {ready}/{spec_replicas}"),
        );
    }
    let rolling = object["spec"]["updateStrategy"]["type"]
        .as_str()
        .is_none_or(|t| t == "RollingUpdate");
    if rolling && status["currentRevision"] != status["updateRevision"] {
        return Health::new(
            Status::InProgress,
            format!(
                "Updated: {}/{spec_replicas}",
                int(&status["updatedReplicas"])
            ),
        );
    }
    Health::new(
        Status::Current,
        format!("All replicas scheduled as expected. Replicas: {ready}"),
    )
}

fn daemon_set(object: &Value) -> Health {
    let status = &object["status"];
    let desired = int(&status["desiredNumberScheduled"]);
    for (field, label) in [
        ("currentNumberScheduled", "Current"),
        ("updatedNumberScheduled", "Updated"),
        ("numberAvailable", "Available"),
        ("numberReady", "Ready"),
    ] {
        let have = int(&status[field]);
        if have < desired {
            return Health::new(Status::InProgress, format!("{label}: {have}/{desired}"));
        }
    }
    Health::new(
        Status::Current,
        format!("All replicas scheduled as expected. Replicas: {desired}"),
    )
}

fn replica_set(object: &Value) -> Health {
    let spec_replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let available = int(&object["status"]["availableReplicas"]);
    if available < spec_replicas {
        return Health::new(
            Status::InProgress,
            format!("Available: {available}/{spec_replicas}"),
        );
    }
    Health::new(
        Status::Current,
        format!("ReplicaSet is available. Replicas: {available}"),
    )
}

fn job(object: &Value) -> Health {
    if let Some(failed) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        return Health::new(
            Status::Failed,
            format!("Job Failed. {}", message_of(failed)),
        );
    }
    if is_true(condition(object, "Complete")) {
        return Health::new(Status::Current, "Job Completed");
    }
    Health::new(Status::InProgress, "Job in progress")
}

fn pod(object: &Value) -> Health {
    match object["status"]["phase"].as_str() {
        Some("Succeeded") => Health::new(Status::Current, "Pod has completed successfully"),
        Some("Failed") => Health::new(Status::Failed, "Pod has completed, but not successfully"),
        Some("Running") if is_true(condition(object, "Ready")) => {
            Health::new(Status::Current, "Pod is Ready")
        }
        _ => Health::new(Status::InProgress, "Pod is not Ready"),
    }
}

fn pvc(object: &Value) -> Health {
    if object["status"]["phase"] == "Bound" {
        Health::new(Status::Current, "PVC is Bound")
    } else {
        Health::new(Status::InProgress, "PVC is not Bound")
    }
}

fn service(object: &Value) -> Health {
    let load_balancer = object["spec"]["type"] == "LoadBalancer";
    let has_ingress = object["status"]["loadBalancer"]["ingress"]
        .as_array()
        .is_some_and(|i| !i.is_empty());
    if load_balancer && !has_ingress {
        return Health::new(Status::InProgress, "Pending LoadBalancer ingress");
    }
    Health::new(Status::Current, "Service is ready")
}

fn namespace(object: &Value) -> Health {
    match object["status"]["phase"].as_str() {
        Some("Terminating") => Health::new(Status::Terminating, "Namespace is terminating"),
        _ => Health::new(Status::Current, "Namespace is active"),
    }
}

fn crd(object: &Value) -> Health {
    if is_true(condition(object, "Established")) {
        Health::new(Status::Current, "CRD is established")
    } else if let Some(names) =
        condition(object, "NamesAccepted").filter(|c| c["status"] == "False")
    {
        Health::new(Status::Failed, message_of(names))
    } else {
        Health::new(Status::InProgress, "CRD is not established yet")
    }
}

#[cfg(test)]
mod tests;
