use serde_json::{Value, json};

use super::*;

fn deployment(replicas: i64, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "team-a", "generation": 2},
        "spec": {"replicas": replicas}, "status": status})
}

#[test]
fn a_rolled_out_deployment_is_current() {
    let d = deployment(
        2,
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
        "readyReplicas": 2, "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True"}]}),
    );
    assert_eq!(assess(&d).status, Status::Current);
}

#[test]
fn a_deployment_rolling_out_is_in_progress() {
    let stale = deployment(2, json!({"observedGeneration": 1}));
    assert_eq!(assess(&stale).status, Status::InProgress);
    assert!(
        assess(&stale)
            .message
            .contains("observed generation 1 of 2")
    );

    let updating = deployment(
        2,
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
        "readyReplicas": 2, "availableReplicas": 2}),
    );
    assert_eq!(
        assess(&updating),
        Health::new(Status::InProgress, "Updated: 1/2")
    );

    let old_pods = deployment(
        2,
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
        "readyReplicas": 3, "availableReplicas": 3}),
    );
    assert_eq!(
        assess(&old_pods),
        Health::new(Status::InProgress, "Pending termination: 1")
    );
}

#[test]
fn a_deployment_past_its_deadline_failed() {
    let d = deployment(
        1,
        json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"podinfo-6b\" has timed out progressing."}]}),
    );
    let health = assess(&d);
    assert_eq!(health.status, Status::Failed);
    assert!(
        health.message.contains("timed out progressing"),
        "{}",
        health.message
    );
}

#[test]
fn a_deployment_scaled_to_zero_is_current() {
    let d = deployment(0, json!({"observedGeneration": 2}));
    assert_eq!(assess(&d).status, Status::Current);
}

#[test]
fn flux_objects_are_judged_by_their_conditions() {
    let ks = |conditions: Value| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization", "metadata": {"name": "apps", "generation": 1},
        "status": {"observedGeneration": 1, "conditions": conditions}})
    };
    let ready = ks(
        json!([{"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:1"}]),
    );
    assert_eq!(
        assess(&ready),
        Health::new(Status::Current, "Applied revision: main@sha1:1")
    );
    let stalled = ks(json!([{"type": "Ready", "status": "False"},
        {"type": "Stalled", "status": "True", "message": "access denied"}]));
    assert_eq!(
        assess(&stalled),
        Health::new(Status::Failed, "access denied")
    );
    let reconciling = ks(
        json!([{"type": "Reconciling", "status": "True", "message": "building"},
        {"type": "Ready", "status": "Unknown"}]),
    );
    assert_eq!(assess(&reconciling).status, Status::InProgress);
    let failed = ks(json!([{"type": "Ready", "status": "False", "message": "build failed"}]));
    assert_eq!(assess(&failed).status, Status::Failed);
}

#[test]
fn other_kinds() {
    let job = |conditions: Value| {
        json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate"}, "status": {"conditions": conditions}})
    };
    assert_eq!(
        assess(&job(json!([{"type": "Complete", "status": "True"}]))).status,
        Status::Current
    );
    assert_eq!(
        assess(&job(json!([{"type": "Failed", "status": "True"}]))).status,
        Status::Failed
    );
    assert_eq!(assess(&job(json!([]))).status, Status::InProgress);

    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
        "status": {"phase": "Pending"}});
    assert_eq!(assess(&pvc).status, Status::InProgress);

    let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer"}, "status": {}});
    assert_eq!(assess(&lb).status, Status::InProgress);
    let cluster_ip = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "ClusterIP"}});
    assert_eq!(assess(&cluster_ip).status, Status::Current);

    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(assess(&config_map).status, Status::Current);

    let deleting = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "deletionTimestamp": "2026-11-28T12:00:00Z"}});
    assert_eq!(assess(&deleting).status, Status::Terminating);

    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "w.example.com"}, "status": {"conditions": [
            {"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}});
    assert_eq!(assess(&crd).status, Status::Current);

    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2}, "status": {"readyReplicas": 2, "currentRevision": "db-1",
        "updateRevision": "db-2", "updatedReplicas": 1}});
    assert_eq!(
        assess(&sts),
        Health::new(Status::InProgress, "Updated: 1/2")
    );

    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3,
        "updatedNumberScheduled": 3, "numberAvailable": 2, "numberReady": 3}});
    assert_eq!(
        assess(&ds),
        Health::new(Status::InProgress, "Available: 2/3")
    );
}
