//! The workload status simulator of the embedded control plane. No pods run there, so this
//! controller writes the status a healthy cluster would report for Deployments, StatefulSets,
//! DaemonSets, ReplicaSets and Jobs once a delay has passed — or, for workloads whose image
//! matches a failure glob, the status of a rollout that never becomes available and, after the
//! progress deadline, `Progressing=False` with `ProgressDeadlineExceeded`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use globset::{Glob, GlobMatcher};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tracing::warn;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time between a new generation and its simulated availability.
    pub delay: Duration,
    /// Workloads with a container image matching this glob never become available.
    pub failure: Option<GlobMatcher>,
}

impl Options {
    /// Options with `--simulate-failure IMAGE_GLOB`.
    pub fn new(delay: Duration, failure_glob: Option<&str>) -> Result<Self, globset::Error> {
        let failure = failure_glob
            .map(|g| Glob::new(g).map(|g| g.compile_matcher()))
            .transpose()?;
        Ok(Options { delay, failure })
    }
}

/// What a workload's status should say now.
pub fn simulated_status(object: &Value, failing: bool, elapsed: Duration) -> Value {
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let revision = format!("{name}-{}", template_hash(object));
    let ready = if failing { 0 } else { replicas };
    let time = "1970-01-01T00:00:00Z";
    match object["kind"].as_str().unwrap_or_default() {
        "Deployment" => {
            let deadline = object["spec"]["progressDeadlineSeconds"]
                .as_u64()
                .unwrap_or(600);
            let timed_out = failing && elapsed >= Duration::from_secs(deadline);
            let progressing = if timed_out {
                json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": format!("ReplicaSet \"{revision}\" has timed out progressing."),
                    "lastUpdateTime": time, "lastTransitionTime": time})
            } else if failing {
                json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                    "message": format!("ReplicaSet \"{revision}\" is progressing."),
                    "lastUpdateTime": time, "lastTransitionTime": time})
            } else {
                json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                    "message": format!("ReplicaSet \"{revision}\" has successfully progressed."),
                    "lastUpdateTime": time, "lastTransitionTime": time})
            };
            let available = if failing && replicas > 0 {
                json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.",
                    "lastUpdateTime": time, "lastTransitionTime": time})
            } else {
                json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                    "lastUpdateTime": time, "lastTransitionTime": time})
            };
            let mut status = json!({"observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                "conditions": [available, progressing]});
            if replicas > ready {
                status["unavailableReplicas"] = json!(replicas - ready);
            }
            status
        }
        "StatefulSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": ready, "currentReplicas": replicas, "updatedReplicas": replicas,
            "availableReplicas": ready, "currentRevision": revision, "updateRevision": revision}),
        "DaemonSet" => {
            let available = i64::from(!failing);
            json!({"observedGeneration": generation, "desiredNumberScheduled": 1,
                "currentNumberScheduled": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0,
                "numberReady": available, "numberAvailable": available})
        }
        "ReplicaSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "fullyLabeledReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready}),
        "Job" if failing => json!({"active": 1, "startTime": time}),
        "Job" => json!({"succeeded": object["spec"]["completions"].as_i64().unwrap_or(1),
            "startTime": time, "completionTime": time,
            "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": time, "lastTransitionTime": time}]}),
        _ => Value::Null,
    }
}

/// Whether `have` already holds every field of `want` (the server may add its own fields, which
/// must not make the simulator write again and again).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|h| contains(h, v))),
        _ => have == want,
    }
}

/// A short, stable hash of the pod template (the `pod-template-hash` of a real cluster).
fn template_hash(object: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object["spec"]["template"].to_string().hash(&mut hasher);
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

/// Whether any container image of the pod template matches the failure glob.
pub fn is_failing(object: &Value, options: &Options) -> bool {
    let Some(matcher) = &options.failure else {
        return false;
    };
    let spec = &object["spec"]["template"]["spec"];
    ["containers", "initContainers"]
        .iter()
        .flat_map(|field| spec[field].as_array().into_iter().flatten())
        .filter_map(|c| c["image"].as_str())
        .any(|image| matcher.is_match(image))
}

struct Context {
    client: Client,
    options: Options,
    /// When each (uid, generation) was first seen: the rollout's start.
    seen: Mutex<HashMap<(String, i64), Instant>>,
}

/// Runs the simulator for every workload kind until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let context = Arc::new(Context {
        client: client.clone(),
        options,
        seen: Mutex::new(HashMap::new()),
    });
    let kinds = [
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
    ];
    let runs = kinds.into_iter().map(|(group, kind)| {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1", kind));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        Controller::new_with(api, watcher::Config::default(), resource.clone())
            .graceful_shutdown_on(shutdown.clone())
            .run(
                move |object, ctx| reconcile(object, ctx, resource.clone()),
                |_, error, _| {
                    warn!(%error, "simulator could not write a status");
                    Action::requeue(Duration::from_secs(5))
                },
                context.clone(),
            )
            .for_each(|_| async {})
    });
    futures::future::join_all(runs).await;
}

async fn reconcile(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
    resource: ApiResource,
) -> Result<Action, kube::Error> {
    let value = serde_json::to_value(&*object).expect("objects serialise");
    let uid = object.uid().unwrap_or_default();
    let generation = object.metadata.generation.unwrap_or(1);
    let elapsed = {
        let mut seen = ctx
            .seen
            .lock()
            .expect("the map is never poisoned: no panics while held");
        seen.entry((uid, generation))
            .or_insert_with(Instant::now)
            .elapsed()
    };
    if elapsed < ctx.options.delay {
        return Ok(Action::requeue(ctx.options.delay - elapsed));
    }
    let failing = is_failing(&value, &ctx.options);
    let wanted = simulated_status(&value, failing, elapsed);
    if wanted.is_null() || contains(&value["status"], &wanted) {
        return Ok(if failing {
            Action::requeue(Duration::from_secs(1))
        } else {
            Action::await_change()
        });
    }
    let api: Api<DynamicObject> = match object.namespace() {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), &ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    };
    let patch = json!({"status": wanted});
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(if failing {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::await_change()
    })
}

#[cfg(test)]
mod tests {
    use ferroflux_apply::health::{Status, assess};

    use super::*;

    fn deployment(image: &str, deadline: u64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "team-a", "generation": 3},
            "spec": {"replicas": 2, "progressDeadlineSeconds": deadline, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    }

    fn with_status(mut object: Value, status: Value) -> Value {
        object["status"] = status;
        object
    }

    #[test]
    fn a_healthy_rollout_is_current_for_kstatus() {
        let d = deployment("ghcr.io/stefanprodan/podinfo:6.5.0", 600);
        let live = with_status(
            d.clone(),
            simulated_status(&d, false, Duration::from_secs(1)),
        );
        assert_eq!(assess(&live).status, Status::Current, "{live:#}");
    }

    #[test]
    fn a_failing_rollout_progresses_then_exceeds_its_deadline() {
        let options = Options::new(Duration::ZERO, Some("*podinfo:6.5.0")).expect("glob");
        let d = deployment("ghcr.io/stefanprodan/podinfo:6.5.0", 5);
        assert!(is_failing(&d, &options));
        assert!(!is_failing(
            &deployment("ghcr.io/stefanprodan/podinfo:6.5.1", 5),
            &options
        ));
        let early = with_status(
            d.clone(),
            simulated_status(&d, true, Duration::from_secs(1)),
        );
        assert_eq!(assess(&early).status, Status::InProgress);
        let late = with_status(
            d.clone(),
            simulated_status(&d, true, Duration::from_secs(6)),
        );
        let health = assess(&late);
        assert_eq!(health.status, Status::Failed);
        assert!(
            health.message.contains("has timed out progressing"),
            "{}",
            health.message
        );
    }

    #[test]
    fn other_workloads_become_current() {
        for kind in ["StatefulSet", "DaemonSet", "ReplicaSet", "Job"] {
            let group = if kind == "Job" { "batch/v1" } else { "apps/v1" };
            let object = json!({"apiVersion": group, "kind": kind, "metadata": {"name": "w", "generation": 1},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
            let live = with_status(
                object.clone(),
                simulated_status(&object, false, Duration::ZERO),
            );
            assert_eq!(assess(&live).status, Status::Current, "{kind}: {live:#}");
            let failing = with_status(
                object.clone(),
                simulated_status(&object, true, Duration::ZERO),
            );
            assert_ne!(assess(&failing).status, Status::Current, "{kind} failing");
        }
    }
}
