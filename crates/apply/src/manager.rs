//! Carries out apply, prune and wait against an API server, with server-side apply under one
//! field manager. Every write is preceded by a dry run so unchanged objects are not written
//! again and the change set is known.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::Value;
use tokio::sync::Mutex;

use ferroflux_api::kustomize::annotation;

use crate::drift::{self, Pointer};
use crate::health::{self, Status};
use crate::object::{ObjectError, ObjectRef};
use crate::stage::{Stage, sort_for_apply, stage_of};

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and was changed.
    Configured,
    /// It already matched.
    Unchanged,
    /// It was deleted.
    Deleted,
    /// It was left alone (reconcile or prune disabled, `ssa: Ignore`/`IfNotPresent`).
    Skipped,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
        })
    }
}

/// One line of a change set: `Deployment/team-a/podinfo configured`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub object: ObjectRef,
    /// What happened to it.
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.object, self.action)
    }
}

/// Why apply, prune or wait failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An object of the stream cannot be identified.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The API server does not serve the object's kind.
    #[error(
        "{object}: no matches for kind {kind:?} in version {api_version:?}: {}",
        api_message(source)
    )]
    UnknownKind {
        /// The object.
        object: ObjectRef,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
        /// The discovery error.
        #[source]
        source: kube::Error,
    },
    /// The API server refused a request about an object; its message (e.g. a 403 naming the
    /// missing permission) is kept whole.
    #[error("{object} {verb} failed: {}", api_message(source))]
    Api {
        /// The object.
        object: ObjectRef,
        /// `dry-run`, `apply`, `delete` or `get`.
        verb: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Objects did not become healthy in time.
    #[error("timeout waiting for: [{}]", .pending.join(", "))]
    HealthTimeout {
        /// `Kind/namespace/name status: 'InProgress': message` per object.
        pending: Vec<String>,
    },
    /// An object failed, so waiting longer cannot help.
    #[error("{object} status: 'Failed': {message}")]
    HealthFailed {
        /// The object.
        object: ObjectRef,
        /// kstatus' message.
        message: String,
    },
}

impl ApplyError {
    /// Turns the API server's refusal of `verb` on `object` into [`ApplyError::Api`].
    fn api(object: &ObjectRef, verb: &'static str) -> impl FnOnce(kube::Error) -> ApplyError {
        let object = object.clone();
        move |source| ApplyError::Api {
            object,
            verb,
            source,
        }
    }
}

/// What applying one object will do, decided by a dry run.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Skip,
    Unchanged,
    /// Apply the object, or `payload` instead when drift ignore rules changed it.
    Write {
        created: bool,
        payload: Option<Value>,
    },
    Recreate,
}

/// How objects are applied.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Recreate objects whose immutable fields changed (`spec.force`).
    pub force: bool,
    /// JSON pointers left out of drift detection, per object (`spec.ignore`); see [`drift`].
    pub ignore: BTreeMap<ObjectRef, Vec<Pointer>>,
}

/// How objects are deleted (prune and garbage collection on deletion).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Labels an object must carry, all of them, to be deleted (Flux's inclusions: the
    /// `kustomize.toolkit.fluxcd.io/name` and `/namespace` of the deleting Kustomization), so
    /// an object another owner has taken over is left alone. Empty: no label is required.
    pub owner: BTreeMap<String, String>,
}

/// The resource manager: one client (one identity) and one field manager.
pub struct ResourceManager {
    client: Client,
    field_manager: String,
    resources: Mutex<HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>>,
}

impl ResourceManager {
    /// A manager that writes as `client` under `field_manager` (e.g. `kustomize-controller`).
    pub fn new(client: Client, field_manager: impl Into<String>) -> Self {
        ResourceManager {
            client,
            field_manager: field_manager.into(),
            resources: Mutex::new(HashMap::new()),
        }
    }

    async fn api_for(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, ApplyError> {
        let gvk = GroupVersionKind::gvk(&object.group, &object.version, &object.kind);
        let mut cache = self.resources.lock().await;
        let (resource, capabilities) = match cache.get(&gvk) {
            Some(found) => found.clone(),
            None => {
                let found = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(|source| ApplyError::UnknownKind {
                        object: object.clone(),
                        kind: object.kind.clone(),
                        api_version: object.api_version(),
                        source,
                    })?;
                cache.insert(gvk, found.clone());
                found
            }
        };
        Ok(match capabilities.scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &object.namespace, &resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Reads an object, `None` when it does not exist.
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ApplyError> {
        let api = self.api_for(object).await?;
        let found = api
            .get_opt(&object.name)
            .await
            .map_err(ApplyError::api(object, "get"))?;
        Ok(found.map(|o| serde_json::to_value(o).expect("API objects serialise")))
    }

    /// Applies `objects` stage by stage (cluster definitions first, waiting for CRDs to be
    /// Established before the rest) and returns what happened to each. Within a stage every
    /// object is dry-run first, so one refused object (its error names it and carries the API
    /// server's message, e.g. a 403) means nothing of that stage is written.
    pub async fn apply_all(
        &self,
        objects: &[Value],
        options: &ApplyOptions,
    ) -> Result<Vec<Change>, ApplyError> {
        let mut keyed: Vec<(ObjectRef, &Value)> = objects
            .iter()
            .enumerate()
            .map(|(index, object)| Ok((ObjectRef::of(object, index)?, object)))
            .collect::<Result<_, ObjectError>>()?;
        let mut order: Vec<ObjectRef> = keyed.iter().map(|(r, _)| r.clone()).collect();
        sort_for_apply(&mut order);
        keyed.sort_by_key(|(r, _)| order.iter().position(|o| o == r));
        let mut changes = Vec::with_capacity(keyed.len());
        let mut rest = keyed.as_slice();
        while let Some((first, _)) = rest.first() {
            let stage = stage_of(first);
            let len = rest
                .iter()
                .take_while(|(r, _)| stage_of(r) == stage)
                .count();
            let (batch, after) = rest.split_at(len);
            rest = after;
            let mut plans = Vec::with_capacity(batch.len());
            for (object_ref, object) in batch {
                plans.push(self.plan(object_ref, object, options).await?);
            }
            for ((object_ref, object), plan) in batch.iter().zip(plans) {
                let action = self.execute(object_ref, object, plan).await?;
                changes.push(Change {
                    object: object_ref.clone(),
                    action,
                });
            }
            if stage == Stage::ClusterDefinitions {
                let crds: Vec<ObjectRef> = batch
                    .iter()
                    .filter(|(r, _)| r.kind == "CustomResourceDefinition")
                    .map(|(r, _)| r.clone())
                    .collect();
                self.wait_established(&crds).await?;
            }
        }
        Ok(changes)
    }

    /// What [`ResourceManager::apply_all`] would do to each object, found with dry runs
    /// only: nothing is written (helm-controller's drift detection in `warn` mode).
    pub async fn diff_all(
        &self,
        objects: &[Value],
        options: &ApplyOptions,
    ) -> Result<Vec<Change>, ApplyError> {
        let mut changes = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let object_ref = ObjectRef::of(object, index)?;
            let action = match self.plan(&object_ref, object, options).await? {
                Plan::Skip => Action::Skipped,
                Plan::Unchanged => Action::Unchanged,
                Plan::Write { created: true, .. } => Action::Created,
                Plan::Write { .. } | Plan::Recreate => Action::Configured,
            };
            changes.push(Change {
                object: object_ref,
                action,
            });
        }
        Ok(changes)
    }

    /// Decides what applying one object means, with a dry run: nothing is written.
    async fn plan(
        &self,
        object_ref: &ObjectRef,
        object: &Value,
        options: &ApplyOptions,
    ) -> Result<Plan, ApplyError> {
        let annotations = &object["metadata"]["annotations"];
        if annotations[annotation::RECONCILE] == "disabled"
            || annotations[annotation::SSA] == "Ignore"
        {
            return Ok(Plan::Skip);
        }
        let api = self.api_for(object_ref).await?;
        let existing = api
            .get_opt(&object_ref.name)
            .await
            .map_err(ApplyError::api(object_ref, "get"))?;
        if existing.is_some() && annotations[annotation::SSA] == "IfNotPresent" {
            return Ok(Plan::Skip);
        }
        let params = PatchParams::apply(&self.field_manager).force().dry_run();
        match api
            .patch(&object_ref.name, &params, &Patch::Apply(object))
            .await
        {
            Ok(would_be) => {
                let Some(existing) = &existing else {
                    return Ok(Plan::Write {
                        created: true,
                        payload: None,
                    });
                };
                let ignored = options
                    .ignore
                    .get(object_ref)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let would_be = comparable(&would_be);
                if drift::without_ignored(would_be.clone(), ignored)
                    == drift::without_ignored(comparable(existing), ignored)
                {
                    return Ok(Plan::Unchanged);
                }
                let payload = (!ignored.is_empty()).then(|| {
                    // The live object with its managedFields: they say who owns what.
                    let live = serde_json::to_value(existing).expect("API objects serialise");
                    drift::resolve_ignored(object, &live, &would_be, ignored, &self.field_manager)
                });
                Ok(Plan::Write {
                    created: false,
                    payload,
                })
            }
            // Flux's force selector: `spec.force` for all objects, the annotation for one.
            Err(source)
                if (options.force || annotations[annotation::FORCE] == "enabled")
                    && existing.is_some()
                    && is_immutable_field_error(&source) =>
            {
                Ok(Plan::Recreate)
            }
            Err(source) => Err(ApplyError::api(object_ref, "dry-run")(source)),
        }
    }

    /// Carries out a plan.
    async fn execute(
        &self,
        object_ref: &ObjectRef,
        object: &Value,
        plan: Plan,
    ) -> Result<Action, ApplyError> {
        match plan {
            Plan::Skip => Ok(Action::Skipped),
            Plan::Unchanged => Ok(Action::Unchanged),
            Plan::Recreate => {
                let api = self.api_for(object_ref).await?;
                self.recreate(&api, object_ref, object).await
            }
            Plan::Write { created, payload } => {
                let api = self.api_for(object_ref).await?;
                let params = PatchParams::apply(&self.field_manager).force();
                let object = payload.as_ref().unwrap_or(object);
                api.patch(&object_ref.name, &params, &Patch::Apply(object))
                    .await
                    .map_err(ApplyError::api(object_ref, "apply"))?;
                Ok(if created {
                    Action::Created
                } else {
                    Action::Configured
                })
            }
        }
    }

    async fn recreate(
        &self,
        api: &Api<DynamicObject>,
        object_ref: &ObjectRef,
        object: &Value,
    ) -> Result<Action, ApplyError> {
        api.delete(&object_ref.name, &DeleteParams::foreground())
            .await
            .map_err(ApplyError::api(object_ref, "delete"))?;
        for _ in 0..60 {
            if api
                .get_opt(&object_ref.name)
                .await
                .map_err(ApplyError::api(object_ref, "get"))?
                .is_none()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let fresh: DynamicObject = serde_json::from_value(object.clone())
            .expect("an object that identified itself decodes as a DynamicObject");
        api.create(
            &PostParams {
                field_manager: Some(self.field_manager.clone()),
                ..Default::default()
            },
            &fresh,
        )
        .await
        .map_err(ApplyError::api(object_ref, "apply"))?;
        Ok(Action::Configured)
    }

    async fn wait_established(&self, crds: &[ObjectRef]) -> Result<(), ApplyError> {
        if crds.is_empty() {
            return Ok(());
        }
        self.wait_healthy(crds, Duration::from_secs(30), true).await
    }

    /// Deletes `objects` in the given order, skipping those annotated
    /// `kustomize.toolkit.fluxcd.io/prune: disabled`, those without every label of
    /// `options.owner`, and those already gone.
    pub async fn delete_all(
        &self,
        objects: &[ObjectRef],
        options: &DeleteOptions,
    ) -> Result<Vec<Change>, ApplyError> {
        self.delete_all_propagating(objects, options, PropagationPolicy::Background)
            .await
    }

    /// [`ResourceManager::delete_all`] with the deletion `propagation` policy of each delete
    /// (Helm's uninstall `--cascade`: background, foreground or orphan).
    pub async fn delete_all_propagating(
        &self,
        objects: &[ObjectRef],
        options: &DeleteOptions,
        propagation: PropagationPolicy,
    ) -> Result<Vec<Change>, ApplyError> {
        let params = DeleteParams {
            propagation_policy: Some(propagation),
            ..DeleteParams::default()
        };
        let mut changes = Vec::with_capacity(objects.len());
        for object in objects {
            let api = match self.api_for(object).await {
                Ok(api) => api,
                // The kind itself is gone (its CRD was pruned): so is the object.
                Err(ApplyError::UnknownKind { .. }) => continue,
                Err(other) => return Err(other),
            };
            let existing = api
                .get_opt(&object.name)
                .await
                .map_err(ApplyError::api(object, "get"))?;
            let Some(existing) = existing else { continue };
            let labels = existing.metadata.labels.as_ref();
            let owned = options
                .owner
                .iter()
                .all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value));
            if !owned
                || existing
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(annotation::PRUNE))
                    .map(String::as_str)
                    == Some("disabled")
            {
                changes.push(Change {
                    object: object.clone(),
                    action: Action::Skipped,
                });
                continue;
            }
            match api.delete(&object.name, &params).await {
                Ok(_) => changes.push(Change {
                    object: object.clone(),
                    action: Action::Deleted,
                }),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(ApplyError::api(object, "delete")(source)),
            }
        }
        Ok(changes)
    }

    /// Polls until every object is Current. With `fail_fast`, an object that Failed ends the
    /// wait at once; otherwise it counts as pending until `timeout`.
    pub async fn wait_healthy(
        &self,
        objects: &[ObjectRef],
        timeout: Duration,
        fail_fast: bool,
    ) -> Result<(), ApplyError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Duration::from_millis(100);
        loop {
            let mut pending = Vec::new();
            for object in objects {
                let verdict = match self.get(object).await? {
                    Some(live) => health::assess(&live),
                    None => health::Health {
                        status: Status::Unknown,
                        message: "object not found".into(),
                    },
                };
                match verdict.status {
                    Status::Current => {}
                    Status::Failed if fail_fast => {
                        return Err(ApplyError::HealthFailed {
                            object: object.clone(),
                            message: verdict.message,
                        });
                    }
                    status => pending.push(format!(
                        "{object} status: '{status:?}': {}",
                        verdict.message
                    )),
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApplyError::HealthTimeout { pending });
            }
            tokio::time::sleep(interval.min(deadline - tokio::time::Instant::now())).await;
            interval = (interval * 2).min(Duration::from_secs(2));
        }
    }
}

/// The parts of an object that a change would alter: bookkeeping fields the server maintains
/// on every write are left out.
fn comparable(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).expect("API objects serialise");
    if let Some(meta) = value["metadata"].as_object_mut() {
        for field in ["managedFields", "resourceVersion", "generation"] {
            meta.remove(field);
        }
    }
    value
}

/// A client error as a person reads it: the API server's own message for a refused request
/// (kube's `Display` of it appends a Rust `Debug` dump of the whole `Status`), else the error.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("{} ({})", status.reason, status.code),
        other => other.to_string(),
    }
}

fn is_immutable_field_error(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 422 && status.message.contains("immutable"))
}
