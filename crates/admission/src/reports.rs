//! Kyverno's policy reports: background scans of existing resources, written as one
//! `PolicyReport` (namespaced resources) or `ClusterPolicyReport` (cluster-scoped ones) of
//! `wgpolicyk8s.io/v1alpha2` per resource, named by the resource's UID, as Kyverno 1.10+ does.
//!
//! A scan applies every policy whose `spec.background` is not `false` to the resources of the
//! kinds its rules match (kinds resolved through discovery), as a CREATE without user
//! information, the way Kyverno's background controller evaluates. It runs when the policies
//! (or namespace labels) change, every [`BACKGROUND_SCAN_INTERVAL`], and shortly after
//! admission let a resource of a matched kind through, so Audit results of admitted writes land
//! in the resource's report. A report is written only when its results changed, and deleted
//! when its resource or its results are gone (the report's ownerReference also lets the
//! garbage collector remove it with its resource).
//!
//! Bounded: at most [`MAX_RESOURCES_PER_KIND`] objects of each kind are scanned (one list
//! page); reports of a kind listed only in part are kept, never deleted as stale. Kinds written
//! with wildcards are not scanned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use serde_json::{Value, json};

use ferroflux_policy::{Operation, POD_CONTROLLERS, PolicySet, Request, RuleResponse, RuleStatus};

use crate::PolicyCache;

/// How often every resource is scanned again (Kyverno's default `--backgroundScanInterval`).
pub const BACKGROUND_SCAN_INTERVAL: Duration = Duration::from_secs(3600);

/// The most objects of one kind a scan reads (one list page).
pub const MAX_RESOURCES_PER_KIND: u32 = 500;

/// How long a scan waits after an admitted write, so the write is stored and a burst of
/// writes makes one scan.
const ADMISSION_DELAY: Duration = Duration::from_millis(500);

/// The label Kyverno puts on the reports it owns; only reports with it are deleted.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kyverno");

/// Kyverno's label with the UID of the report's resource.
const RESOURCE_UID: &str = "audit.kyverno.io/resource.uid";

/// What background scans apply: the policies with `spec.background` not `false`.
#[derive(Debug, Default)]
pub struct Background {
    /// The policies.
    pub policies: PolicySet,
    /// The kinds their rules match, as written (`Kind`, `version/Kind`, `group/version/Kind`).
    pub kinds: Vec<String>,
    /// `category`, `severity` and `scored` of each policy by `namespace/name`.
    annotations: BTreeMap<String, PolicyAnnotations>,
}

/// What a policy's annotations add to its results.
#[derive(Debug, Clone, Default)]
struct PolicyAnnotations {
    category: Option<String>,
    severity: Option<String>,
    scored: bool,
}

impl Background {
    /// The background policies of `objects` (ClusterPolicy/Policy objects).
    pub fn from_objects(objects: &[Value]) -> Background {
        let objects: Vec<Value> = objects
            .iter()
            .filter(|o| o["spec"]["background"] != Value::Bool(false))
            .cloned()
            .collect();
        let (policies, _) = PolicySet::from_objects(&objects);
        let annotations = objects
            .iter()
            .map(|o| {
                let meta = &o["metadata"];
                let annotation = |key: &str| meta["annotations"][key].as_str().map(String::from);
                let key = format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or("")
                );
                let values = PolicyAnnotations {
                    category: annotation("policies.kyverno.io/category"),
                    severity: annotation("policies.kyverno.io/severity"),
                    scored: annotation("policies.kyverno.io/scored").as_deref() != Some("false"),
                };
                (key, values)
            })
            .collect();
        Background {
            policies,
            kinds: matched_kinds(&objects),
            annotations,
        }
    }
}

/// The kinds the rules of `policies` match, autogen's Pod controllers included.
fn matched_kinds(policies: &[Value]) -> Vec<String> {
    let mut kinds = BTreeSet::new();
    for rule in policies
        .iter()
        .filter_map(|p| p["spec"]["rules"].as_array())
        .flatten()
    {
        let matching = &rule["match"];
        let filters = ["any", "all"]
            .iter()
            .filter_map(|k| matching[*k].as_array())
            .flatten()
            .chain(std::iter::once(matching));
        for filter in filters {
            for kind in filter["resources"]["kinds"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(kind) = kind.as_str() {
                    kinds.insert(kind.to_string());
                }
            }
        }
    }
    if kinds.iter().any(|k| k.rsplit('/').next() == Some("Pod")) {
        kinds.extend(POD_CONTROLLERS.iter().map(|k| k.to_string()));
    }
    kinds.into_iter().collect()
}

/// Whether the policy kind `written` (`Kind`, `version/Kind`, `group/version/Kind`) names the
/// discovered resource. Wildcards are not resolved (see the module's doc).
fn names(written: &str, resource: &ApiResource) -> bool {
    let parts: Vec<&str> = written.split('/').collect();
    let (group, version, kind) = match parts.as_slice() {
        [kind] => (None, None, *kind),
        [version, kind] => (None, Some(*version), *kind),
        [group, version, kind] => (Some(*group), Some(*version), *kind),
        _ => return false,
    };
    kind == resource.kind
        && group.is_none_or(|g| g == resource.group)
        && version.is_none_or(|v| v == resource.version)
}

/// Keeps the reports current through `client` until the task is dropped: a scan once the
/// cache has listed the policies, on every policy change, after admitted writes of matched
/// kinds and every [`BACKGROUND_SCAN_INTERVAL`]. [`PolicyCache::run`] runs it.
pub async fn run(client: kube::Client, cache: Arc<PolicyCache>) {
    cache.wait_synced().await;
    let mut generations = cache.generations();
    loop {
        generations.mark_unchanged();
        if let Err(error) = scan(&client, &cache).await {
            tracing::warn!(%error, "background scan failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(BACKGROUND_SCAN_INTERVAL) => {}
            _ = generations.changed() => {}
            _ = cache.next_admitted() => tokio::time::sleep(ADMISSION_DELAY).await,
        }
    }
}

/// What one scan found: the reports wanted by UID, and the kinds listed only in part.
#[derive(Default)]
struct Scan {
    reports: BTreeMap<String, Value>,
    incomplete: BTreeSet<(String, String)>,
}

/// Scans every background kind once and brings the stored reports in line.
async fn scan(client: &kube::Client, cache: &PolicyCache) -> Result<(), kube::Error> {
    let background = cache.background();
    let mut found = Scan::default();
    if !background.kinds.is_empty() {
        let discovery = Discovery::new(client.clone()).run().await?;
        for (resource, caps) in resources(&discovery, &background.kinds) {
            scan_kind(client, cache, &background, &resource, &caps, &mut found).await;
        }
    }
    write_reports(client, found).await
}

/// The listable resources of the preferred versions that `kinds` name.
fn resources(discovery: &Discovery, kinds: &[String]) -> Vec<(ApiResource, ApiCapabilities)> {
    discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(resource, caps)| {
            caps.supports_operation(verbs::LIST) && kinds.iter().any(|k| names(k, resource))
        })
        .collect()
}

/// Lists one kind (one page) and evaluates each object.
async fn scan_kind(
    client: &kube::Client,
    cache: &PolicyCache,
    background: &Background,
    resource: &ApiResource,
    caps: &ApiCapabilities,
    found: &mut Scan,
) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let params = ListParams::default().limit(MAX_RESOURCES_PER_KIND);
    let kind = (resource.api_version.clone(), resource.kind.clone());
    let list = match api.list(&params).await {
        Ok(list) => list,
        Err(error) => {
            tracing::warn!(kind = %resource.kind, %error, "background scan cannot list");
            found.incomplete.insert(kind);
            return;
        }
    };
    if list
        .metadata
        .continue_
        .as_deref()
        .is_some_and(|c| !c.is_empty())
    {
        tracing::info!(kind = %resource.kind, max = MAX_RESOURCES_PER_KIND,
            "background scan read only the first objects of the kind");
        found.incomplete.insert(kind);
    }
    for object in list.items {
        let mut object = serde_json::to_value(&object).unwrap_or(Value::Null);
        // List items carry no type; the engine matches on it.
        object["apiVersion"] = json!(resource.api_version);
        object["kind"] = json!(resource.kind);
        let results = evaluate(cache, background, &object, caps.scope == Scope::Namespaced);
        if let Some(report) = report(&object, &results, &background.annotations) {
            let uid = report["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            found.reports.insert(uid, report);
        }
    }
}

/// The background policies' results for one stored object.
fn evaluate(
    cache: &PolicyCache,
    background: &Background,
    object: &Value,
    namespaced: bool,
) -> Vec<RuleResponse> {
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
    let namespace_labels = if object["kind"] == "Namespace" && object["apiVersion"] == "v1" {
        Some(crate::labels(object))
    } else if namespaced {
        cache.namespace_labels(namespace)
    } else {
        None
    };
    background.policies.evaluate(&Request {
        operation: Operation::Create,
        object: object.clone(),
        namespace_labels,
        ..Request::default()
    })
}

/// The report of one object, `None` when no rule selected it (or it has no UID).
fn report(
    object: &Value,
    results: &[RuleResponse],
    annotations: &BTreeMap<String, PolicyAnnotations>,
) -> Option<Value> {
    let meta = &object["metadata"];
    let uid = meta["uid"].as_str().filter(|u| !u.is_empty())?;
    if results.is_empty() {
        return None;
    }
    let namespace = meta["namespace"].as_str().filter(|n| !n.is_empty());
    let mut entries: Vec<Value> = results.iter().map(|r| result(r, annotations)).collect();
    entries.sort_by_key(|e| (e["policy"].to_string(), e["rule"].to_string()));
    let count = |status: RuleStatus| results.iter().filter(|r| r.status == status).count();
    let mut report = json!({
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": if namespace.is_some() { "PolicyReport" } else { "ClusterPolicyReport" },
        "metadata": {
            "name": uid,
            "labels": {MANAGED_BY.0: MANAGED_BY.1, RESOURCE_UID: uid},
            "ownerReferences": [{"apiVersion": object["apiVersion"], "kind": object["kind"],
                "name": meta["name"], "uid": uid}],
        },
        "scope": {"apiVersion": object["apiVersion"], "kind": object["kind"],
            "name": meta["name"], "uid": uid},
        "summary": {
            "pass": count(RuleStatus::Pass), "fail": count(RuleStatus::Fail),
            "warn": count(RuleStatus::Warn), "error": count(RuleStatus::Error),
            "skip": count(RuleStatus::Skip),
        },
        "results": entries,
    });
    if let Some(namespace) = namespace {
        report["metadata"]["namespace"] = json!(namespace);
        report["scope"]["namespace"] = json!(namespace);
    }
    Some(report)
}

/// One result entry in Kyverno's words.
fn result(response: &RuleResponse, annotations: &BTreeMap<String, PolicyAnnotations>) -> Value {
    let key = format!("{}/{}", response.namespace, response.policy);
    let policy = if response.namespace.is_empty() {
        response.policy.clone()
    } else {
        key.clone()
    };
    let extra = annotations.get(&key).cloned().unwrap_or_default();
    let mut entry = json!({
        "source": "kyverno",
        "policy": policy,
        "rule": response.rule,
        "result": response.status.as_str(),
        "message": response.message,
        "scored": extra.scored,
        "timestamp": {"seconds": jiff::Timestamp::now().as_second(), "nanos": 0},
    });
    if let Some(category) = extra.category {
        entry["category"] = json!(category);
    }
    if let Some(severity) = extra.severity {
        entry["severity"] = json!(severity);
    }
    entry
}

/// The two report kinds: namespaced first.
fn report_resources() -> [ApiResource; 2] {
    let resource = |kind, plural| {
        ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", kind),
            plural,
        )
    };
    [
        resource("PolicyReport", "policyreports"),
        resource("ClusterPolicyReport", "clusterpolicyreports"),
    ]
}

/// Creates, replaces and deletes reports so that the stored ones are the scan's, writing only
/// those whose content changed.
async fn write_reports(client: &kube::Client, mut found: Scan) -> Result<(), kube::Error> {
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    for resource in report_resources() {
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let stored = match all.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list.items,
            // The report CRDs are not installed: nothing to read, nothing to write.
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(error) => return Err(error),
        };
        for existing in stored {
            let existing = serde_json::to_value(&existing).unwrap_or(Value::Null);
            let uid = existing["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let api = namespaced(client, &resource, &existing);
            match found.reports.remove(&uid) {
                Some(desired) if desired["kind"] == resource.kind => {
                    if !same_report(&existing, &desired) {
                        replace(&api, &existing, desired).await;
                    }
                }
                desired => {
                    // Kept when its kind was listed only in part: the resource may still exist.
                    let scope = &existing["scope"];
                    let kind = (str_of(&scope["apiVersion"]), str_of(&scope["kind"]));
                    if desired.is_none() && found.incomplete.contains(&kind) {
                        continue;
                    }
                    if let Err(error) = api.delete(&uid, &DeleteParams::default()).await {
                        tracing::warn!(report = uid, %error, "deleting a stale report failed");
                    }
                    if let Some(desired) = desired {
                        found.reports.insert(uid, desired);
                    }
                }
            }
        }
    }
    for desired in found.reports.into_values() {
        create(client, desired).await;
    }
    Ok(())
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or("").to_string()
}

/// The API of a report's namespace (or the cluster's).
fn namespaced(client: &kube::Client, resource: &ApiResource, report: &Value) -> Api<DynamicObject> {
    match report["metadata"]["namespace"].as_str() {
        Some(namespace) if !namespace.is_empty() => {
            Api::namespaced_with(client.clone(), namespace, resource)
        }
        _ => Api::all_with(client.clone(), resource),
    }
}

/// Whether the stored report says what `desired` says, the results' timestamps aside.
fn same_report(existing: &Value, desired: &Value) -> bool {
    let without_time = |report: &Value| -> Vec<Value> {
        let mut results = report["results"].as_array().cloned().unwrap_or_default();
        for entry in &mut results {
            if let Some(entry) = entry.as_object_mut() {
                entry.remove("timestamp");
            }
        }
        results
    };
    let meta = |report: &Value, key: &str| report["metadata"][key].clone();
    existing["scope"] == desired["scope"]
        && existing["summary"] == desired["summary"]
        && without_time(existing) == without_time(desired)
        && meta(existing, "labels") == meta(desired, "labels")
        && meta(existing, "ownerReferences") == meta(desired, "ownerReferences")
}

/// Replaces a stored report with `desired` at the stored resourceVersion.
async fn replace(api: &Api<DynamicObject>, existing: &Value, mut desired: Value) {
    desired["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"].clone();
    let name = str_of(&desired["metadata"]["name"]);
    let result = match serde_json::from_value::<DynamicObject>(desired) {
        Ok(object) => api
            .replace(&name, &PostParams::default(), &object)
            .await
            .map(drop),
        Err(error) => Err(kube::Error::SerdeError(error)),
    };
    if let Err(error) = result {
        tracing::warn!(report = name, %error, "updating a policy report failed");
    }
}

/// Creates a report that does not exist yet.
async fn create(client: &kube::Client, desired: Value) {
    let [namespaced_kind, cluster_kind] = report_resources();
    let resource = if desired["kind"] == "PolicyReport" {
        namespaced_kind
    } else {
        cluster_kind
    };
    let api = namespaced(client, &resource, &desired);
    let name = str_of(&desired["metadata"]["name"]);
    let result = match serde_json::from_value::<DynamicObject>(desired) {
        Ok(object) => api.create(&PostParams::default(), &object).await.map(drop),
        Err(error) => Err(kube::Error::SerdeError(error)),
    };
    if let Err(error) = result {
        tracing::warn!(report = name, %error, "creating a policy report failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_every_filter_and_pod_brings_its_controllers() {
        let policy = json!({"spec": {"rules": [
            {"match": {"any": [{"resources": {"kinds": ["OCIRepository"]}}]}},
            {"match": {"all": [{"resources": {"kinds": ["v1/ConfigMap"]}}]}},
            {"match": {"resources": {"kinds": ["Pod"]}}},
        ]}});
        let kinds = matched_kinds(&[policy]);
        for kind in [
            "OCIRepository",
            "v1/ConfigMap",
            "Pod",
            "Deployment",
            "CronJob",
        ] {
            assert!(kinds.contains(&kind.to_string()), "{kind} in {kinds:?}");
        }
    }

    #[test]
    fn a_kind_names_a_resource_by_kind_version_and_group() {
        let cm = ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap"),
            "configmaps",
        );
        assert!(names("ConfigMap", &cm));
        assert!(names("v1/ConfigMap", &cm));
        assert!(!names("v2/ConfigMap", &cm));
        assert!(!names("apps/v1/ConfigMap", &cm));
        assert!(!names("Secret", &cm));
    }

    #[test]
    fn a_report_changed_only_in_its_timestamps_is_not_written_again() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "team-a", "uid": "u-1"}});
        let fail = RuleResponse {
            policy: "p".into(),
            namespace: String::new(),
            rule: "r".into(),
            status: RuleStatus::Fail,
            message: "no".into(),
            enforce: false,
        };
        let first = report(&object, std::slice::from_ref(&fail), &BTreeMap::new()).expect("report");
        let mut later = first.clone();
        later["results"][0]["timestamp"]["seconds"] = json!(1);
        assert!(same_report(&first, &later));
        assert_eq!(first["kind"], "PolicyReport");
        assert_eq!(first["summary"]["fail"], 1);
        let pass = RuleResponse {
            status: RuleStatus::Pass,
            ..fail
        };
        let fixed = report(&object, &[pass], &BTreeMap::new()).expect("report");
        assert!(!same_report(&first, &fixed));
        assert!(report(&object, &[], &BTreeMap::new()).is_none());
    }
}
