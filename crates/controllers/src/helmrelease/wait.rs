//! `waitStrategy: {name: legacy}`: Helm v3's readiness checks (Helm's `ReadyChecker`), in
//! place of kstatus (`poller`, the default). Pods, Jobs (with `WaitForJobs`), Deployments,
//! StatefulSets, DaemonSets, ReplicaSets, PersistentVolumeClaims, Services and CRDs are
//! checked; every other kind is ready once it exists.

use std::time::Duration;

use ferroflux_apply::manager::ResourceManager;
use ferroflux_apply::object::ObjectRef;
use serde_json::Value;

/// Helm's legacy waiter: polls every two seconds until every object is ready, a Job failed,
/// or `timeout` passes (Go's `context deadline exceeded`).
pub async fn legacy(
    manager: &ResourceManager,
    objects: &[ObjectRef],
    timeout: Duration,
    check_jobs: bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut ready = true;
        for object in objects {
            let live = manager.get(object).await.map_err(|e| e.to_string())?;
            let Some(live) = live else {
                ready = false;
                break;
            };
            if !is_ready(&live, check_jobs)? {
                ready = false;
                break;
            }
        }
        if ready {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err("context deadline exceeded".into());
        }
        tokio::time::sleep(Duration::from_secs(2).min(deadline - now)).await;
    }
}

/// Helm's `ReadyChecker.IsReady` on an object as the API server holds it; an error is a
/// failure no wait can mend (a Job past its backoff limit).
pub fn is_ready(object: &Value, check_jobs: bool) -> Result<bool, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = object["kind"].as_str().unwrap_or_default();
    let status = &object["status"];
    let spec = &object["spec"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let observed = int(&status["observedGeneration"]) == int(&object["metadata"]["generation"]);
    Ok(match (group, kind) {
        ("", "Pod") => condition_true(object, "Ready"),
        ("batch", "Job") if check_jobs => {
            let backoff = spec["backoffLimit"].as_i64().unwrap_or(6);
            if int(&status["failed"]) > backoff {
                let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                return Err(format!("job is failed: {ns}/{name}"));
            }
            spec["completions"]
                .as_i64()
                .is_none_or(|c| int(&status["succeeded"]) >= c)
        }
        ("apps", "Deployment") => {
            if spec["paused"].as_bool() == Some(true) {
                return Ok(true);
            }
            let replicas = spec["replicas"].as_i64().unwrap_or(1);
            let expected = replicas - max_unavailable(object, replicas);
            observed
                && int(&status["updatedReplicas"]) >= replicas
                && int(&status["readyReplicas"]) >= expected
        }
        ("", "PersistentVolumeClaim") => status["phase"] == "Bound",
        ("", "Service") => service_ready(spec, status),
        ("apps", "DaemonSet") => {
            let desired = int(&status["desiredNumberScheduled"]);
            let rolling = spec["updateStrategy"]["type"]
                .as_str()
                .is_none_or(|t| t == "RollingUpdate");
            let unavailable = scaled(
                &spec["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
                desired,
                true,
            )
            .unwrap_or(desired);
            observed
                && (!rolling
                    || (int(&status["updatedNumberScheduled"]) == desired
                        && int(&status["numberReady"]) >= desired - unavailable))
        }
        ("apps", "StatefulSet") => observed && stateful_set_ready(spec, status),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => observed,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            condition_true(object, "Established")
                || condition_status(object, "NamesAccepted") == Some("False")
        }
        _ => true,
    })
}

fn condition_status<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

fn condition_true(object: &Value, kind: &str) -> bool {
    condition_status(object, kind) == Some("True")
}

/// Helm's `serviceReady`: ExternalName always; otherwise a cluster IP, and for a
/// LoadBalancer external IPs or an ingress.
fn service_ready(spec: &Value, status: &Value) -> bool {
    if spec["type"] == "ExternalName" {
        return true;
    }
    if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        return false;
    }
    if spec["type"] == "LoadBalancer" {
        let external = spec["externalIPs"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        return external || !status["loadBalancer"]["ingress"].is_null();
    }
    true
}

fn stateful_set_ready(spec: &Value, status: &Value) -> bool {
    let rolling = spec["updateStrategy"]["type"]
        .as_str()
        .is_none_or(|t| t == "RollingUpdate");
    if !rolling {
        return true;
    }
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let partition = int(&spec["updateStrategy"]["rollingUpdate"]["partition"]);
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    int(&status["updatedReplicas"]) >= replicas - partition
        && int(&status["readyReplicas"]) == replicas
        && (partition != 0 || status["currentRevision"] == status["updateRevision"])
}

/// A Deployment's `maxUnavailable` (25 % rounded down by default; none for `Recreate`),
/// never more than its replicas.
fn max_unavailable(deployment: &Value, replicas: i64) -> i64 {
    let strategy = &deployment["spec"]["strategy"];
    if strategy["type"] == "Recreate" {
        return 0;
    }
    let value = &strategy["rollingUpdate"]["maxUnavailable"];
    let unavailable = if value.is_null() {
        replicas / 4
    } else {
        scaled(value, replicas, false).unwrap_or(0)
    };
    unavailable.clamp(0, replicas.max(0))
}

/// `intstr.GetScaledValueFromIntOrPercent`: an integer, or a percentage of `total`.
fn scaled(value: &Value, total: i64, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let percent: i64 = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    let product = percent.checked_mul(total)?;
    Some(if round_up {
        (product + 99) / 100
    } else {
        product / 100
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_load_balancer_with_external_ips_is_ready_without_ingress() {
        let service = |spec: Value| json!({"apiVersion": "v1", "kind": "Service", "spec": spec});
        let lb = service(json!({"type": "LoadBalancer", "clusterIP": "10.0.0.9"}));
        assert_eq!(is_ready(&lb, true), Ok(false));
        let external = service(json!({"type": "LoadBalancer", "clusterIP": "10.0.0.9",
            "externalIPs": ["192.0.2.1"]}));
        assert_eq!(is_ready(&external, true), Ok(true));
        let name = service(json!({"type": "ExternalName"}));
        assert_eq!(is_ready(&name, true), Ok(true));
    }

    #[test]
    fn jobs_count_only_when_checked_and_fail_past_their_backoff() {
        let job = |status: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"namespace": "ns", "name": "j"},
                "spec": {"completions": 1, "backoffLimit": 1}, "status": status})
        };
        assert_eq!(is_ready(&job(json!({})), true), Ok(false));
        assert_eq!(is_ready(&job(json!({})), false), Ok(true));
        assert_eq!(is_ready(&job(json!({"succeeded": 1})), true), Ok(true));
        assert_eq!(
            is_ready(&job(json!({"failed": 2})), true),
            Err("job is failed: ns/j".into())
        );
    }

    #[test]
    fn a_deployment_is_ready_within_max_unavailable() {
        let deployment = |ready: i64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"generation": 2}, "spec": {"replicas": 4},
                "status": {"observedGeneration": 2, "updatedReplicas": 4, "readyReplicas": ready}})
        };
        assert_eq!(is_ready(&deployment(3), true), Ok(true));
        assert_eq!(is_ready(&deployment(2), true), Ok(false));
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "status": {"phase": "Pending"}});
        assert_eq!(is_ready(&pvc, true), Ok(false));
    }
}
