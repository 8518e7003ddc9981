//! The policies and namespace labels admission decides with, kept current by watches on any
//! API server, and each policy's `Ready` condition written back as Kyverno writes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use futures::{StreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::watch;

use ferroflux_policy::PolicySet;

use crate::reports::Background;

/// What the watches have seen so far.
#[derive(Default)]
struct State {
    /// `None` until policies and namespaces were listed once.
    policies: Option<Arc<PolicySet>>,
    /// The policies with `spec.background` not `false`: what background scans apply.
    background: Arc<Background>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    /// RoleBindings and ClusterRoleBindings, for `roles`/`clusterRoles` in match and exclude.
    bindings: Vec<Value>,
}

/// The loaded policies and the namespaces' labels.
pub struct PolicyCache {
    state: RwLock<State>,
    synced: watch::Sender<bool>,
    /// Bumped on every reload of the policies, so background scans rerun on a policy change.
    generation: watch::Sender<u64>,
    /// Woken when a resource of a background kind was admitted (its report may change).
    admitted: tokio::sync::Notify,
}

impl Default for PolicyCache {
    fn default() -> Self {
        PolicyCache {
            state: RwLock::default(),
            synced: watch::Sender::new(false),
            generation: watch::Sender::new(0),
            admitted: tokio::sync::Notify::new(),
        }
    }
}

/// The kinds the cache watches, in the order of [`Listing`]s: the policies, the namespaces,
/// then the bindings that say which roles a requester has.
const WATCHED: [(&str, &str, &str, &str); 5] = [
    ("kyverno.io", "v1", "ClusterPolicy", "clusterpolicies"),
    ("kyverno.io", "v1", "Policy", "policies"),
    ("", "v1", "Namespace", "namespaces"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    ),
];
const NAMESPACES: usize = 2;
const BINDINGS: usize = 3;

/// One watched kind: its objects by `namespace/name`, and the list being received.
#[derive(Default)]
struct Listing {
    objects: BTreeMap<String, Value>,
    pending: Option<BTreeMap<String, Value>>,
    listed: bool,
}

impl Listing {
    /// Applies one watch event; whether the objects changed.
    fn apply(&mut self, event: Event<DynamicObject>) -> bool {
        match event {
            Event::Init => {
                self.pending = Some(BTreeMap::new());
                false
            }
            Event::InitApply(o) => {
                let (key, value) = entry(&o);
                self.pending.get_or_insert_default().insert(key, value);
                false
            }
            Event::InitDone => {
                self.objects = self.pending.take().unwrap_or_default();
                self.listed = true;
                true
            }
            Event::Apply(o) => {
                let (key, value) = entry(&o);
                self.objects.insert(key, value) != Some(entry(&o).1)
            }
            Event::Delete(o) => self.objects.remove(&entry(&o).0).is_some(),
        }
    }
}

impl Listing {
    /// The kind is not served: nothing to list; whether that changed anything.
    fn absent(&mut self) -> bool {
        let changed = !self.listed || !self.objects.is_empty();
        self.objects.clear();
        self.pending = None;
        self.listed = true;
        changed
    }
}

fn entry(object: &DynamicObject) -> (String, Value) {
    let key = format!(
        "{}/{}",
        object.metadata.namespace.as_deref().unwrap_or(""),
        object.metadata.name.as_deref().unwrap_or("")
    );
    (key, serde_json::to_value(object).unwrap_or(Value::Null))
}

fn api_resource((group, version, kind, plural): (&str, &str, &str, &str)) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

impl PolicyCache {
    /// The loaded policies; `None` until policies and namespaces were listed once.
    pub fn policies(&self) -> Option<Arc<PolicySet>> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .policies
            .clone()
    }

    /// The labels of a namespace, `None` when the cache does not know it.
    pub fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .namespaces
            .get(namespace)
            .cloned()
    }

    /// The policies background scans apply (`spec.background` not `false`).
    pub fn background(&self) -> Arc<Background> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .background
            .clone()
    }

    /// A receiver that sees every reload of the policies.
    pub fn generations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Says that a resource of `kind` passed admission: when background policies match the
    /// kind, the report task rescans (the admitted object lands in its report).
    pub fn admitted(&self, kind: &str) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        if state
            .background
            .kinds
            .iter()
            .any(|k| k == "*" || k.rsplit('/').next() == Some(kind))
        {
            self.admitted.notify_one();
        }
    }

    /// Resolves at the next [`PolicyCache::admitted`] of a background kind.
    pub async fn next_admitted(&self) {
        self.admitted.notified().await;
    }

    /// Kyverno's `roles` (`namespace:name` of Roles) and `clusterRoles` of a requester: the
    /// roles its bindings name, through its user name, its groups or, for a ServiceAccount
    /// (`system:serviceaccount:NS:NAME`), the account itself.
    pub fn roles_of(&self, username: &str, groups: &[String]) -> (Vec<String>, Vec<String>) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let (mut roles, mut cluster_roles) = (Vec::new(), Vec::new());
        for binding in &state.bindings {
            let names_requester = binding["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| subject_is(s, username, groups));
            if !names_requester {
                continue;
            }
            let name = binding["roleRef"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            match (
                binding["roleRef"]["kind"].as_str(),
                binding["metadata"]["namespace"].as_str(),
            ) {
                (Some("Role"), Some(ns)) => roles.push(format!("{ns}:{name}")),
                (Some("ClusterRole"), _) => cluster_roles.push(name),
                _ => {}
            }
        }
        roles.sort();
        roles.dedup();
        cluster_roles.sort();
        cluster_roles.dedup();
        (roles, cluster_roles)
    }

    /// Resolves once policies and namespaces were listed.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|synced| *synced).await;
    }

    /// Keeps the cache current through `client` until the task is dropped; the watches
    /// reconnect with backoff after an error. Runs the background scans that write the policy
    /// reports too ([`crate::reports::run`]), so every server that admits also reports.
    pub async fn run(self: Arc<Self>, client: kube::Client) {
        tokio::join!(
            self.clone().watch(client.clone()),
            crate::reports::run(client, self)
        );
    }

    /// The watches of [`PolicyCache::run`].
    async fn watch(self: Arc<Self>, client: kube::Client) {
        let streams = WATCHED.into_iter().enumerate().map(|(i, kind)| {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |event| (i, event))
                .boxed()
        });
        let mut events = stream::select_all(streams);
        let mut listings: [Listing; 5] = Default::default();
        while let Some((i, event)) = events.next().await {
            let listed_before = listings.iter().all(|l| l.listed);
            let changed = match event {
                Ok(event) => listings[i].apply(event),
                // Kyverno's kinds are not served yet (`up` installs their CRDs during its
                // bootstrap): no policies, and the watch lists them once they are served.
                Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                    if status.code == 404 =>
                {
                    listings[i].absent()
                }
                // Without the right to read bindings, roles are unknown: rules that match
                // roles then match nobody; said once, and the webhook still serves.
                Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                    if status.code == 403 && i >= BINDINGS =>
                {
                    tracing::warn!(
                        kind = WATCHED[i].2,
                        "cannot list; roles in policies are unknown"
                    );
                    listings[i].absent()
                }
                Err(error) => {
                    tracing::warn!(kind = WATCHED[i].2, %error, "policy cache watch failed");
                    false
                }
            };
            if !changed || !listings.iter().all(|l| l.listed) {
                continue;
            }
            if i >= BINDINGS && listed_before {
                // A binding changes who has which role, not the policies: no reload, no scan.
                self.state
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .bindings = bindings(&listings);
                continue;
            }
            let policies = self.load(&listings);
            // Only policies change a policy's status, except for the event that completes the
            // first listing: then every policy gets its status.
            if i < NAMESPACES || !listed_before {
                write_statuses(&client, &listings[..NAMESPACES], &policies).await;
            }
        }
    }

    /// Rebuilds the state from the listings; returns each policy's problems by key.
    fn load(&self, listings: &[Listing; 5]) -> BTreeMap<String, Vec<String>> {
        let objects: Vec<Value> = listings[..NAMESPACES]
            .iter()
            .flat_map(|l| l.objects.values().cloned())
            .collect();
        let (set, _) = PolicySet::from_objects(&objects);
        let background = Background::from_objects(&objects);
        let problems = listings[..NAMESPACES]
            .iter()
            .flat_map(|l| l.objects.iter())
            .map(|(key, object)| {
                let (_, errors) = PolicySet::from_objects(std::slice::from_ref(object));
                (
                    key.clone(),
                    errors.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        let namespaces = listings[NAMESPACES]
            .objects
            .iter()
            .map(|(key, ns)| (key.trim_start_matches('/').to_string(), crate::labels(ns)))
            .collect();
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = State {
            policies: Some(Arc::new(set)),
            background: Arc::new(background),
            namespaces,
            bindings: bindings(listings),
        };
        self.synced.send_replace(true);
        self.generation.send_modify(|g| *g += 1);
        problems
    }

    /// Sets the bindings directly (unit tests of the roles).
    #[cfg(test)]
    pub(crate) fn load_bindings_for_test(&self, bindings: &[Value]) {
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .bindings = bindings.to_vec();
    }

    /// Loads policies and namespaces directly (unit tests of the decision).
    #[cfg(test)]
    pub(crate) fn load_for_test(&self, policies: &[Value], namespaces: &[(&str, &[(&str, &str)])]) {
        let mut listings: [Listing; 5] = Default::default();
        for p in policies {
            listings[0].objects.insert(
                format!("/{}", p["metadata"]["name"].as_str().unwrap_or("")),
                p.clone(),
            );
        }
        for (name, labels) in namespaces {
            let labels: serde_json::Map<String, Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            listings[NAMESPACES].objects.insert(
                format!("/{name}"),
                json!({"metadata": {"name": name, "labels": labels}}),
            );
        }
        self.load(&listings);
    }
}

/// The RoleBindings and ClusterRoleBindings of the listings.
fn bindings(listings: &[Listing; 5]) -> Vec<Value> {
    listings[BINDINGS..]
        .iter()
        .flat_map(|l| l.objects.values().cloned())
        .collect()
}

/// Whether an RBAC subject names the requester, as kube's authorizer matches it.
fn subject_is(subject: &Value, username: &str, groups: &[String]) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str() {
        Some("User") => name == username,
        Some("Group") => groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let namespace = subject["namespace"].as_str().unwrap_or("");
            username == format!("system:serviceaccount:{namespace}:{name}")
        }
        _ => false,
    }
}

/// Kyverno's status of a policy: `Ready` when every rule loaded, else `False` with why.
fn desired_status(object: &Value, problems: &[String]) -> Value {
    let rules = object["spec"]["rules"].as_array().map_or(0, Vec::len);
    let (status, reason, message) = if problems.is_empty() {
        ("True", "Succeeded", "Ready".to_string())
    } else {
        ("False", "Failed", problems.join("; "))
    };
    json!({
        "ready": problems.is_empty(),
        "conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }],
        "rulecount": {"validate": rules, "mutate": 0, "generate": 0, "verifyimages": 0},
    })
}

/// Whether the stored status already says what `desired` says (the time aside).
fn same_status(current: &Value, desired: &Value) -> bool {
    let condition = |s: &Value| {
        let c = &s["conditions"][0];
        (
            c["status"].clone(),
            c["reason"].clone(),
            c["message"].clone(),
        )
    };
    current["ready"] == desired["ready"]
        && condition(current) == condition(desired)
        && current["rulecount"] == desired["rulecount"]
}

/// Writes the `Ready` condition of every policy whose stored status says otherwise, so that
/// a status write (which comes back as a watch event) never causes another.
async fn write_statuses(
    client: &kube::Client,
    listings: &[Listing],
    problems: &BTreeMap<String, Vec<String>>,
) {
    for (i, listing) in listings.iter().enumerate() {
        for (key, object) in &listing.objects {
            let desired = desired_status(object, problems.get(key).map_or(&[], Vec::as_slice));
            if same_status(&object["status"], &desired) {
                continue;
            }
            let (namespace, name) = key.split_once('/').unwrap_or(("", key));
            let resource = api_resource(WATCHED[i]);
            let api: Api<DynamicObject> = if namespace.is_empty() {
                Api::all_with(client.clone(), &resource)
            } else {
                Api::namespaced_with(client.clone(), namespace, &resource)
            };
            let patch = Patch::Merge(json!({"status": desired}));
            if let Err(error) = api
                .patch_status(name, &PatchParams::default(), &patch)
                .await
            {
                tracing::warn!(policy = key, %error, "writing the policy status failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_equal_but_for_its_time_is_not_written_again() {
        let policy = json!({"spec": {"rules": [{"name": "r"}]}});
        let first = desired_status(&policy, &[]);
        let mut later = desired_status(&policy, &[]);
        later["conditions"][0]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        assert!(same_status(&first, &later));
        let broken = desired_status(&policy, &["policy p rule r: mutate".into()]);
        assert!(!same_status(&first, &broken));
        assert_eq!(broken["conditions"][0]["status"], "False");
        assert_eq!(first["rulecount"]["validate"], 1);
    }
}
