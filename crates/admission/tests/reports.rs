//! Policy reports on ferroflux's API server (loopback), admission plugged in as `up` does: an
//! Audit policy lets a violating ConfigMap through and its PolicyReport says `fail`; fixing the
//! ConfigMap turns it to `pass`; deleting the ConfigMap removes the report.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_admission::PolicyCache;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

use common::{client, install_crds, resource};

fn audit_policy() -> Value {
    json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "require-team-label",
            "annotations": {"policies.kyverno.io/category": "Multi-Tenancy",
                "policies.kyverno.io/severity": "medium"}},
        "spec": {"validationFailureAction": "Audit", "background": true, "rules": [{
            "name": "check-team",
            "match": {"any": [{"resources": {"kinds": ["ConfigMap"], "names": ["settings"]}}]},
            "validate": {"message": "label team is required",
                "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}})
}

/// Polls `check` until it gives a value or 20 seconds passed.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The report of the object with this UID once its first result says `wanted`.
async fn report_saying(reports: &Api<DynamicObject>, uid: &str, wanted: &str) -> Value {
    eventually(&format!("a report saying {wanted}"), || async {
        let report = reports.get_opt(uid).await.expect("get report")?;
        let report = serde_json::to_value(&report).expect("json");
        (report["results"][0]["result"] == wanted).then_some(report)
    })
    .await
}

#[tokio::test]
async fn an_audited_violation_is_reported_then_passes_then_disappears_with_its_resource() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Arc::new(PolicyCache::default());
    let server = common::server(dir.path(), |config| {
        config.validators = ferroflux_admission::validators(&cache);
    })
    .await;
    let client = client(&server.kubeconfig).await;
    let watch = tokio::spawn(cache.clone().run(client.clone()));
    cache.wait_synced().await;
    install_crds(&client).await;

    let policies: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("kyverno.io", "v1", "ClusterPolicy", "clusterpolicies"),
    );
    let policy: DynamicObject = serde_json::from_value(audit_policy()).expect("object");
    eventually("the policy stored", || async {
        policies.create(&PostParams::default(), &policy).await.ok()
    })
    .await;
    eventually("the policy loaded", || async {
        (!cache.background().kinds.is_empty()).then_some(())
    })
    .await;
    // `PolicyCache::run` runs the background scans as well.

    // Allowed (Audit) but failing: the report in its namespace says fail, naming policy/rule.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"}})).expect("cm"),
        )
        .await
        .expect("an Audit policy lets the ConfigMap through");
    let uid = created.metadata.uid.clone().expect("uid");
    let reports: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource(
            "wgpolicyk8s.io",
            "v1alpha2",
            "PolicyReport",
            "policyreports",
        ),
    );
    let failed = report_saying(&reports, &uid, "fail").await;
    let result = &failed["results"][0];
    assert_eq!(result["policy"], "require-team-label", "{failed}");
    assert_eq!(result["rule"], "check-team", "{failed}");
    assert_eq!(result["source"], "kyverno", "{failed}");
    assert_eq!(result["category"], "Multi-Tenancy", "{failed}");
    assert_eq!(result["severity"], "medium", "{failed}");
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| m.contains("label team is required")),
        "{failed}"
    );
    assert_eq!(failed["summary"]["fail"], 1, "{failed}");
    assert_eq!(failed["summary"]["pass"], 0, "{failed}");
    assert_eq!(failed["scope"]["kind"], "ConfigMap", "{failed}");
    assert_eq!(failed["scope"]["name"], "settings", "{failed}");
    assert_eq!(
        failed["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );

    // Fixed: the same report now passes.
    let mut fixed = created.clone();
    fixed
        .metadata
        .labels
        .get_or_insert_default()
        .insert("team".into(), "a".into());
    configmaps
        .replace("settings", &PostParams::default(), &fixed)
        .await
        .expect("update");
    let passed = report_saying(&reports, &uid, "pass").await;
    assert_eq!(passed["summary"]["pass"], 1, "{passed}");
    assert_eq!(passed["summary"]["fail"], 0, "{passed}");

    // Deleted: the report goes with it.
    configmaps
        .delete("settings", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the report gone", || async {
        reports
            .get_opt(&uid)
            .await
            .expect("get report")
            .is_none()
            .then_some(())
    })
    .await;

    watch.abort();
    server.shutdown().await;
}
