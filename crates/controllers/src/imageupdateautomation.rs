//! The ImageUpdateAutomation reconciler (`ferroflux controller image-automation`): check
//! out the GitRepository, rewrite the image setters under `update.path` with the latest
//! images of the selected ImagePolicies, commit with the rendered message and push to
//! `git.push.branch` (created from the checkout ref when missing; a rejected push starts over
//! on a fresh checkout). Nothing to change: no commit.

mod message;
mod update;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use ferroflux_api::image::{
    ImagePolicy, ImageRef, ImageUpdateAutomation, ImageUpdateAutomationSpec,
    ImageUpdateAutomationStatus,
};
use ferroflux_api::meta::{RECONCILE_REQUEST_ANNOTATION, Time, reason};
use ferroflux_api::source::GitRepository;
use ferroflux_image::setters::{LatestImage, Setters};
use ferroflux_source::git::push::{
    Author, CommitRequest, PushError, UpdateOutcome, UpdateRequest, update_branch,
};
use ferroflux_source::git::{self, CloneOptions, GitError, GitRef};

pub use message::{DEFAULT_MESSAGE_TEMPLATE, MessageData, PolicyImage, render};
pub use update::{UpdateError, apply_setters};

use crate::conditions;
use crate::runtime::SUCCEEDED;
use crate::runtime::{self, Note, ReconcileError, Reconciler, optional_spec_duration};

/// How long to wait for a GitRepository that does not exist yet.
const DEPENDENCY_WAIT: Duration = Duration::from_secs(30);

/// What the reconciler needs.
pub struct Context {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// `--no-cross-namespace-refs`: refuse a sourceRef in another namespace.
    pub no_cross_namespace_refs: bool,
    /// How many times a rejected push is retried on a fresh checkout (at least 1).
    pub push_attempts: usize,
}

impl Context {
    /// A context whose events are reported as `image-automation-controller`.
    pub fn new(client: Client) -> Self {
        Context {
            runtime: runtime::Context::new(client, "image-automation-controller"),
            no_cross_namespace_refs: false,
            push_attempts: 3,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = ImageUpdateAutomation;
    type Done = Run;
    type Failure = ReconcileError;
    type Status = ImageUpdateAutomationStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    /// Besides its interval, an automation runs again whenever an ImagePolicy of its namespace
    /// changes (a new latest image).
    fn watches(
        &self,
        controller: Controller<ImageUpdateAutomation>,
    ) -> Controller<ImageUpdateAutomation> {
        let policies: Api<ImagePolicy> = Api::all(self.runtime.client.clone());
        let automations = controller.store();
        controller.watches(policies, watcher::Config::default(), move |policy| {
            let namespace = policy.namespace().unwrap_or_default();
            automations
                .state()
                .into_iter()
                .filter(|a| a.namespace().unwrap_or_default() == namespace)
                .map(|a| ObjectRef::from_obj(&*a))
                .collect::<Vec<_>>()
        })
    }

    /// A policy watch wakes every automation of the namespace: without a reason to run, wait.
    async fn not_due(&self, auto: &ImageUpdateAutomation, interval: Duration) -> Option<Duration> {
        let (current, _) = policies(auto, self).await.ok()?;
        run_due(auto, &current, jiff::Timestamp::now(), interval)
    }

    async fn reconcile(&self, auto: &ImageUpdateAutomation) -> Result<Run, ReconcileError> {
        reconcile_update(auto, self).await
    }

    fn event(&self, _auto: &ImageUpdateAutomation, run: &Run) -> Option<Note> {
        run.pushed.as_ref().map(|p| Note {
            warning: false,
            reason: SUCCEEDED,
            message: format!(
                "pushed commit '{}' to branch '{}'\n{}",
                p.commit, p.branch, p.message
            ),
        })
    }

    fn summarize(
        &self,
        auto: &ImageUpdateAutomation,
        outcome: Result<Run, ReconcileError>,
        at: Time,
    ) -> ImageUpdateAutomationStatus {
        summarize(auto, outcome, &at)
    }
}

/// The outcome of one run: the policies applied, the source revision and any push.
#[derive(Debug, Clone)]
pub struct Run {
    observed_policies: BTreeMap<String, ImageRef>,
    source_revision: String,
    pushed: Option<Pushed>,
}

/// A commit pushed by a run.
#[derive(Debug, Clone)]
pub struct Pushed {
    commit: String,
    branch: String,
    message: String,
}

/// How long until the next run, or `None` to run now: a run is due when the interval since
/// the last one passed, the spec changed, a reconcile was requested, the last run failed, or
/// the selected policies' images differ from the ones last observed.
pub fn run_due(
    auto: &ImageUpdateAutomation,
    current_policies: &BTreeMap<String, ImageRef>,
    now: jiff::Timestamp,
    interval: Duration,
) -> Option<Duration> {
    let status = auto.status.as_ref()?;
    let ready = crate::conditions::is_true(
        status.conditions.as_deref().unwrap_or_default(),
        ferroflux_api::meta::condition_type::READY,
    );
    let requested = auto
        .annotations()
        .get(RECONCILE_REQUEST_ANNOTATION)
        .is_some_and(|r| status.last_handled_reconcile_at.as_ref() != Some(r));
    if !ready
        || requested
        || status.observed_generation != auto.metadata.generation
        || status.observed_policies.as_ref() != Some(current_policies)
    {
        return None;
    }
    let last: jiff::Timestamp = status.last_automation_run_time.as_deref()?.parse().ok()?;
    let next = last
        .checked_add(jiff::SignedDuration::try_from(interval).ok()?)
        .ok()?;
    let wait: Duration = next.duration_since(now).try_into().ok()?;
    (wait > Duration::ZERO).then_some(wait)
}

/// Why the edit inside the checkout failed.
#[derive(Debug, thiserror::Error)]
enum EditError {
    #[error(transparent)]
    Update(#[from] UpdateError),
    #[error("cannot render spec.git.commit.messageTemplate: {0}")]
    Template(String),
}

/// The validated spec, in the terms the Git update needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The reference to check out.
    pub checkout: GitRef,
    /// The branch to push to.
    pub push_branch: String,
    /// `git.push.refspec`.
    pub refspec: Option<String>,
    /// `git.push.options` as `key=value` / `key`.
    pub push_options: Vec<String>,
    /// Commit author.
    pub author: Author,
    /// `update.path`.
    pub path: Option<String>,
}

/// Validates the spec against the GitRepository's ref: signing keys are refused until
/// supported, the strategy must be `Setters`, a push branch must be known.
///
/// # Errors
/// A stalling `InvalidSpec` error naming the field.
pub fn plan(
    spec: &ImageUpdateAutomationSpec,
    source_ref: Option<&ferroflux_api::source::GitRepositoryRef>,
) -> Result<Plan, ReconcileError> {
    let invalid = |m: &str| ReconcileError::stalling(reason::INVALID, m.to_string());
    let Some(git_spec) = &spec.git else {
        return Err(invalid("spec.git is required: set git.commit.author"));
    };
    if let Some(key) = &git_spec.commit.signing_key {
        let signing = match key.key_type.as_deref() {
            Some("ssh") => "SSH",
            _ => "OpenPGP",
        };
        return Err(invalid(&format!(
            "spec.git.commit.signingKey ({signing} commit signing) is not supported by ferroflux yet; remove it to commit unsigned"
        )));
    }
    if git_spec.commit.author.email.trim().is_empty() {
        return Err(invalid("spec.git.commit.author.email is required"));
    }
    if let Some(update) = &spec.update
        && !update.strategy.is_empty()
        && update.strategy != "Setters"
    {
        return Err(invalid(&format!(
            "spec.update.strategy {:?} is not supported: use Setters",
            update.strategy
        )));
    }
    let checkout_ref = git_spec.checkout.as_ref().map(|c| &c.reference);
    let checkout = crate::gitrepository::git_ref(checkout_ref.or(source_ref));
    let push = git_spec.push.clone().unwrap_or_default();
    let push_branch = push
        .branch
        .filter(|b| !b.is_empty())
        .or_else(|| checkout.branch.clone())
        .ok_or_else(|| {
            invalid("spec.git.push.branch is required when the checkout ref is not a branch")
        })?;
    let push_options = push
        .options
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") })
        .collect();
    Ok(Plan {
        checkout,
        push_branch,
        refspec: push.refspec.filter(|r| !r.is_empty()),
        push_options,
        author: Author {
            name: git_spec.commit.author.name.clone().unwrap_or_default(),
            email: git_spec.commit.author.email.clone(),
        },
        path: spec.update.as_ref().and_then(|u| u.path.clone()),
    })
}

/// Owns `Ready`: the source, the policies, and the Git update.
async fn reconcile_update(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
) -> Result<Run, ReconcileError> {
    let namespace = auto.namespace().unwrap_or_default();
    let source = &auto.spec.source_ref;
    if source.kind != "GitRepository" {
        return Err(ReconcileError::stalling(
            reason::INVALID,
            format!(
                "spec.sourceRef.kind {:?} is not supported: use GitRepository",
                source.kind
            ),
        ));
    }
    let source_ns = source
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    if source_ns != namespace && ctx.no_cross_namespace_refs {
        return Err(ReconcileError::stalling(
            reason::ACCESS_DENIED,
            format!(
                "can't access 'GitRepository/{source_ns}/{}', cross-namespace references have been blocked",
                source.name
            ),
        ));
    }
    let repos: Api<GitRepository> = Api::namespaced(ctx.runtime.client.clone(), &source_ns);
    let repo = repos
        .get_opt(&source.name)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ReconcileError::waiting(
                reason::DEPENDENCY_NOT_READY,
                format!("GitRepository '{source_ns}/{}' not found", source.name),
                DEPENDENCY_WAIT,
            )
        })?;
    let plan = plan(&auto.spec, repo.spec.reference.as_ref())?;
    let options = CloneOptions {
        auth: crate::gitrepository::auth(&ctx.runtime.client, &repo).await?,
        timeout: Some(optional_spec_duration(
            "spec.timeout",
            repo.spec.timeout.as_deref(),
            Duration::from_secs(60),
        )?),
        ..CloneOptions::default()
    };
    let (observed_policies, images) = policies(auto, ctx).await?;
    let latest: BTreeMap<String, LatestImage> = images
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                LatestImage {
                    name: p.image.clone(),
                    tag: p.tag.clone(),
                    digest: p.digest.clone(),
                },
            )
        })
        .collect();
    let setters = Setters::from_policies(latest.iter().map(|(k, v)| (k.as_str(), v)));
    let message_data = MessageData {
        namespace: namespace.clone(),
        name: auto.name_any(),
        changes: Vec::new(),
        policies: images,
        values: auto
            .spec
            .git
            .as_ref()
            .and_then(|g| g.commit.message_template_values.clone())
            .unwrap_or_default(),
    };
    let template = auto
        .spec
        .git
        .as_ref()
        .and_then(|g| g.commit.message_template.clone());
    let url = repo.spec.url.clone();
    let attempts = ctx.push_attempts;
    let outcome = tokio::task::spawn_blocking(move || {
        let request = UpdateRequest {
            url: &url,
            checkout: &plan.checkout,
            push_branch: &plan.push_branch,
            refspec: plan.refspec.as_deref(),
            push_options: &plan.push_options,
            options: &options,
            attempts,
        };
        let outcome = update_branch(&request, |tree| {
            let changes = apply_setters(tree.dir, plan.path.as_deref(), &setters)?;
            if changes.is_empty() {
                return Ok((String::new(), None));
            }
            let base = std::path::Path::new(plan.path.as_deref().unwrap_or("."));
            let mut paths: Vec<std::path::PathBuf> = if tree.dir.join(base).is_file() {
                vec![base.to_path_buf()]
            } else {
                changes.iter().map(|c| base.join(&c.file)).collect()
            };
            paths.dedup();
            let data = MessageData {
                changes,
                ..message_data.clone()
            };
            let message = render(template.as_deref(), &data).map_err(EditError::Template)?;
            Ok::<_, EditError>((
                message.clone(),
                Some(CommitRequest {
                    message,
                    author: plan.author.clone(),
                    paths,
                }),
            ))
        });
        (outcome, plan.push_branch, plan.checkout)
    })
    .await
    .map_err(|e| ReconcileError::generic(reason::GIT_OPERATION_FAILED, e.to_string()))?;
    let (outcome, branch, checkout) = outcome;
    let label = checkout.branch.clone().or(checkout.tag.clone());
    match outcome.map_err(update_failed)? {
        UpdateOutcome::Unchanged { base, .. } => Ok(Run {
            observed_policies,
            source_revision: git::revision(label.as_deref(), &base),
            pushed: None,
        }),
        UpdateOutcome::Pushed {
            commit,
            base,
            edit: message,
        } => Ok(Run {
            observed_policies,
            source_revision: git::revision(label.as_deref(), &base),
            pushed: Some(Pushed {
                commit,
                branch,
                message,
            }),
        }),
    }
}

fn update_failed(err: PushError<EditError>) -> ReconcileError {
    match err {
        PushError::Git(GitError::Auth { .. }) => {
            ReconcileError::generic(reason::AUTHENTICATION_FAILED, err.to_string())
        }
        PushError::Edit(EditError::Update(UpdateError::Path { .. }))
        | PushError::Edit(EditError::Template(_)) => {
            ReconcileError::stalling(reason::INVALID, err.to_string())
        }
        PushError::Edit(_) => ReconcileError::generic("UpdateFailed", err.to_string()),
        PushError::Git(_) | PushError::Rejected { .. } => {
            ReconcileError::generic(reason::GIT_OPERATION_FAILED, err.to_string())
        }
    }
}

/// The ImagePolicies of the automation's namespace selected by `policySelector` that have a
/// latest image: `observedPolicies` (by name) and the images by setter key `NS:NAME`.
async fn policies(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
) -> Result<(BTreeMap<String, ImageRef>, BTreeMap<String, PolicyImage>), ReconcileError> {
    let namespace = auto.namespace().unwrap_or_default();
    let api: Api<ImagePolicy> = Api::namespaced(ctx.runtime.client.clone(), &namespace);
    let mut params = ListParams::default();
    if let Some(selector) = &auto.spec.policy_selector {
        let selector = kube::core::Selector::try_from(selector.clone()).map_err(|e| {
            ReconcileError::stalling(reason::INVALID, format!("invalid spec.policySelector: {e}"))
        })?;
        params = params.labels_from(&selector);
    }
    let list = api.list(&params).await.map_err(|e| {
        ReconcileError::generic(
            reason::RECONCILIATION_FAILED,
            format!(
                "cannot list ImagePolicies in '{namespace}': {}",
                ferroflux_apply::manager::api_message(&e)
            ),
        )
    })?;
    let mut observed = BTreeMap::new();
    let mut images = BTreeMap::new();
    for policy in list {
        let Some(latest) = policy.status.as_ref().and_then(|s| s.latest_ref.clone()) else {
            continue;
        };
        let name = policy.name_any();
        images.insert(
            format!("{namespace}:{name}"),
            PolicyImage {
                namespace: namespace.clone(),
                name: name.clone(),
                image: latest.name.clone(),
                tag: latest.tag.clone(),
                digest: latest.digest.clone(),
            },
        );
        observed.insert(name, latest);
    }
    Ok((observed, images))
}

fn summarize(
    auto: &ImageUpdateAutomation,
    result: Result<Run, ReconcileError>,
    at: &Time,
) -> ImageUpdateAutomationStatus {
    let generation = auto.metadata.generation;
    runtime::next_status(auto, |status, conds| {
        let run_time = at.0.to_string();
        status.last_automation_run_time = Some(run_time.clone());
        match result {
            Ok(run) => {
                let message = match &run.pushed {
                    Some(p) => format!("pushed commit '{}' to branch '{}'", p.commit, p.branch),
                    None => "repository up-to-date".to_string(),
                };
                conditions::set_outcome(conds, Ok((SUCCEEDED, &message)), generation, at);
                if let Some(p) = run.pushed {
                    status.last_push_commit = Some(p.commit);
                    status.last_push_time = Some(run_time);
                }
                status.observed_policies = Some(run.observed_policies);
                status.observed_source_revision = Some(run.source_revision);
            }
            Err(err) => conditions::set_outcome(conds, Err(&err), generation, at),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::image::{SigningKey, UpdateStrategy};
    use ferroflux_api::meta::LocalObjectReference;

    /// The spec as a user writes it.
    fn spec() -> ImageUpdateAutomationSpec {
        serde_json::from_value(serde_json::json!({
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "git": {
                "commit": {"author": {"name": "fluxbot", "email": "flux@example.com"}},
                "push": {"branch": "flux-image-updates"},
            },
            "interval": "1m",
            "update": {"path": "./apps", "strategy": "Setters"},
        }))
        .expect("a valid spec")
    }

    #[test]
    fn plan_takes_the_source_ref_and_push_branch() {
        let source_ref = ferroflux_api::source::GitRepositoryRef {
            branch: Some("main".into()),
            ..Default::default()
        };
        let planned = plan(&spec(), Some(&source_ref)).expect("valid");
        assert_eq!(planned.checkout.branch.as_deref(), Some("main"));
        assert_eq!(planned.push_branch, "flux-image-updates");
        assert_eq!(planned.author.name, "fluxbot");
        assert_eq!(planned.path.as_deref(), Some("./apps"));

        let mut no_push = spec();
        if let Some(g) = no_push.git.as_mut() {
            g.push = None;
        }
        let plan_same = plan(&no_push, Some(&source_ref)).expect("valid");
        assert_eq!(
            plan_same.push_branch, "main",
            "pushes to the checkout branch"
        );
        let tag_ref = ferroflux_api::source::GitRepositoryRef {
            tag: Some("v1".into()),
            ..Default::default()
        };
        let err = plan(&no_push, Some(&tag_ref)).expect_err("no branch to push to");
        assert!(err.message.contains("push.branch"), "{}", err.message);
    }

    #[test]
    fn runs_wait_for_the_interval_unless_policies_or_spec_changed() {
        let mut auto = ImageUpdateAutomation::new("auto", spec());
        auto.metadata.generation = Some(1);
        let policies: BTreeMap<String, ImageRef> = [(
            "app".to_string(),
            ImageRef {
                name: "r/app".into(),
                tag: "1".into(),
                digest: None,
            },
        )]
        .into_iter()
        .collect();
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        let interval = Duration::from_secs(60);
        assert_eq!(
            run_due(&auto, &policies, at("2026-01-01T00:00:10Z"), interval),
            None
        );
        let mut conds = Vec::new();
        crate::conditions::set_outcome(
            &mut conds,
            Ok(("Succeeded", "ok")),
            Some(1),
            &crate::runtime::now(),
        );
        auto.status = Some(ImageUpdateAutomationStatus {
            last_automation_run_time: Some("2026-01-01T00:00:00Z".into()),
            observed_generation: Some(1),
            observed_policies: Some(policies.clone()),
            conditions: Some(conds),
            ..Default::default()
        });
        assert_eq!(
            run_due(&auto, &policies, at("2026-01-01T00:00:10Z"), interval),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            run_due(&auto, &policies, at("2026-01-01T00:01:10Z"), interval),
            None
        );
        let mut newer = policies.clone();
        if let Some(r) = newer.get_mut("app") {
            r.tag = "2".into();
        }
        assert_eq!(
            run_due(&auto, &newer, at("2026-01-01T00:00:10Z"), interval),
            None
        );
        auto.metadata.generation = Some(2);
        assert_eq!(
            run_due(&auto, &policies, at("2026-01-01T00:00:10Z"), interval),
            None
        );
    }

    #[test]
    fn unsupported_settings_are_refused_clearly() {
        let mut signed = spec();
        if let Some(g) = signed.git.as_mut() {
            g.commit.signing_key = Some(SigningKey {
                secret_ref: LocalObjectReference { name: "gpg".into() },
                key_type: None,
            });
        }
        let err = plan(&signed, None).expect_err("signing refused");
        assert!(
            err.message.contains("signingKey (OpenPGP"),
            "{}",
            err.message
        );
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);
        if let Some(key) = signed
            .git
            .as_mut()
            .and_then(|g| g.commit.signing_key.as_mut())
        {
            key.key_type = Some("ssh".into());
        }
        let err = plan(&signed, None).expect_err("SSH signing refused too");
        assert!(err.message.contains("signingKey (SSH"), "{}", err.message);
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);

        let mut strategy = spec();
        strategy.update = Some(UpdateStrategy {
            path: None,
            strategy: "Other".into(),
        });
        assert!(plan(&strategy, None).is_err());
        let mut no_git = spec();
        no_git.git = None;
        assert!(plan(&no_git, None).is_err());
    }
}
