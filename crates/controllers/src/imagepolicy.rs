//! The ImagePolicy reconciler (part of `ferroflux controller image-reflector`): read the
//! scanned tags of the referenced ImageRepository from the [`TagStore`], select the latest
//! with `ferroflux_image::policy`, optionally reflect its digest, and report `latestRef`
//! (v1) and `latestImage` (v1beta2). No candidate is `Ready=False` with the reason; a
//! previous selection is never replaced by a guess.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use ferroflux_api::image::{
    ImagePolicy, ImagePolicySpec, ImagePolicyStatus, ImageRef, ImageRepository,
};
use ferroflux_api::meta::{Time, condition_type, reason};
use ferroflux_image::policy::{FilterTagsSpec, OrderSpec, PolicyError, PolicySpec, SemVerSpec};
use ferroflux_source::oci::{OciClient, OciOptions};

use crate::conditions;
use crate::imagerepository::{
    CanonicalImage, StoredTags, TagStore, access_allowed, ca_certs, registry_auth,
};
use crate::runtime::SUCCEEDED;
use crate::runtime::{self, Note, ReconcileError, Reconciler};

/// Reason: the spec's policy or filter is invalid.
pub const REASON_INVALID_POLICY: &str = "InvalidPolicy";
/// Reason: no scanned tag satisfies the policy.
pub const REASON_NO_MATCHING_TAG: &str = "NoMatchingTag";
/// Reason: the tag's digest could not be read from the registry.
pub const REASON_DIGEST_FAILED: &str = "DigestReflectionFailed";

/// How long to wait for an ImageRepository that is missing or not scanned yet (its watch
/// usually wakes the policy sooner).
const DEPENDENCY_WAIT: Duration = Duration::from_secs(30);

/// What the reconciler needs.
pub struct Context {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// Where the ImageRepository reconciler keeps scanned tags.
    pub store: Arc<TagStore>,
    /// `--no-cross-namespace-refs`: refuse ImageRepositories in other namespaces.
    pub no_cross_namespace_refs: bool,
}

impl Context {
    /// A context whose events are reported as `image-reflector-controller`.
    pub fn new(client: Client, store: Arc<TagStore>) -> Self {
        Context {
            runtime: runtime::Context::new(client, "image-reflector-controller"),
            store,
            no_cross_namespace_refs: false,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = ImagePolicy;
    type Done = ImageRef;
    type Failure = ReconcileError;
    type Status = ImagePolicyStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    /// A policy is reconciled again whenever the ImageRepository it references changes (a new
    /// scan).
    fn watches(&self, controller: Controller<ImagePolicy>) -> Controller<ImagePolicy> {
        let repos: Api<ImageRepository> = Api::all(self.runtime.client.clone());
        let policies = controller.store();
        controller.watches(repos, watcher::Config::default(), move |repo| {
            let namespace = repo.namespace().unwrap_or_default();
            let name = repo.name_any();
            policies
                .state()
                .into_iter()
                .filter(|p| {
                    let own = p.namespace().unwrap_or_default();
                    let r = &p.spec.image_repository_ref;
                    r.name == name && r.namespace.as_deref().unwrap_or(&own) == namespace
                })
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
    }

    fn retry_interval(&self, _policy: &ImagePolicy) -> Option<Duration> {
        Some(DEPENDENCY_WAIT)
    }

    /// Only `Always` needs a timer: new tags arrive through the ImageRepository watch.
    fn periodic(&self, policy: &ImagePolicy) -> bool {
        policy.spec.digest_reflection_policy.as_deref() == Some("Always")
    }

    async fn reconcile(&self, policy: &ImagePolicy) -> Result<ImageRef, ReconcileError> {
        reconcile_latest(policy, self).await
    }

    fn event(&self, policy: &ImagePolicy, latest: &ImageRef) -> Option<Note> {
        let previous = policy.status.as_ref().and_then(|s| s.latest_ref.as_ref());
        if previous == Some(latest) {
            return None;
        }
        let message = match previous {
            Some(old) => format!(
                "Latest image tag for {} updated from {} to {}",
                latest.name, old.tag, latest.tag
            ),
            None => format!(
                "Latest image tag for {} resolved to {}",
                latest.name, latest.tag
            ),
        };
        Some(Note {
            warning: false,
            reason: SUCCEEDED,
            message,
        })
    }

    fn summarize(
        &self,
        policy: &ImagePolicy,
        outcome: Result<ImageRef, ReconcileError>,
        at: Time,
    ) -> ImagePolicyStatus {
        summarize(policy, outcome, &at)
    }
}

/// Owns `Ready`: the reference check, the tags, the selection and the digest.
async fn reconcile_latest(policy: &ImagePolicy, ctx: &Context) -> Result<ImageRef, ReconcileError> {
    let (repo, namespace) = referred_repository(policy, ctx).await?;
    let name = &policy.spec.image_repository_ref.name;
    let stored = ctx.store.load(&namespace, name).ok().flatten();
    let tag = select(&policy.spec, &repo, stored.as_ref())?;
    let image = repo.spec.image.clone();
    let digest = reflect_digest(policy, &repo, &namespace, &tag, ctx).await?;
    Ok(ImageRef {
        name: image,
        tag,
        digest,
    })
}

/// The ImageRepository the policy refers to, and its namespace, when the policy may read it:
/// as image-reflector-controller, `--no-cross-namespace-refs` refuses another namespace before
/// anything is read, otherwise the repository's `spec.accessFrom` must select the policy's
/// namespace. A refusal is `AccessDenied` and retried (the namespace's labels may change).
async fn referred_repository(
    policy: &ImagePolicy,
    ctx: &Context,
) -> Result<(ImageRepository, String), ReconcileError> {
    let own_namespace = policy.namespace().unwrap_or_default();
    let repo_ref = &policy.spec.image_repository_ref;
    let namespace = repo_ref
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| own_namespace.clone());
    let failed = |why: String| format!("failed to get the referred ImageRepository: {why}");
    let denied = |why: String| ReconcileError::generic(reason::ACCESS_DENIED, failed(why));
    if ctx.no_cross_namespace_refs && namespace != own_namespace {
        return Err(denied(format!(
            "cannot access 'ImageRepository/{namespace}/{}', cross-namespace references have been blocked",
            repo_ref.name
        )));
    }
    let repos: Api<ImageRepository> = Api::namespaced(ctx.runtime.client.clone(), &namespace);
    let repo = repos.get_opt(&repo_ref.name).await.ok().flatten().ok_or_else(|| {
        ReconcileError::waiting(
            reason::DEPENDENCY_NOT_READY,
            failed(format!(
                "referenced ImageRepository does not exist: imagerepositories.image.toolkit.fluxcd.io \"{}\" not found",
                repo_ref.name
            )),
            DEPENDENCY_WAIT,
        )
    })?;
    if namespace != own_namespace {
        has_access(ctx, &repo, &namespace, &own_namespace)
            .await
            .map_err(|why| denied(format!("access denied: {why}")))?;
    }
    Ok((repo, namespace))
}

/// Flux's ACL check of a cross-namespace reference (`acl.HasAccessToRef`): the repository's
/// `spec.accessFrom.namespaceSelectors` must select the labels of the policy's namespace. The
/// error is Flux's `AccessDeniedError` text.
async fn has_access(
    ctx: &Context,
    repo: &ImageRepository,
    namespace: &str,
    own_namespace: &str,
) -> Result<(), String> {
    let name = repo.name_any();
    let Some(access_from) = repo.spec.access_from.as_ref() else {
        return Err(format!(
            "'{namespace}/{name}' can't be accessed due to missing ACL labels on 'accessFrom'"
        ));
    };
    let namespaces: Api<Namespace> = Api::all(ctx.runtime.client.clone());
    let labels = namespaces
        .get(own_namespace)
        .await
        .map_err(|e| e.to_string())?
        .labels()
        .clone();
    if access_allowed(Some(access_from), &labels) {
        Ok(())
    } else {
        Err(format!(
            "'{namespace}/{name}' can't be accessed due to ACL labels mismatch on namespace '{own_namespace}'"
        ))
    }
}

/// Reads the digest of the selected tag when `digestReflectionPolicy` asks for it; with
/// `IfNotPresent` a digest already reported for the same tag is kept.
async fn reflect_digest(
    policy: &ImagePolicy,
    repo: &ImageRepository,
    namespace: &str,
    tag: &str,
    ctx: &Context,
) -> Result<Option<String>, ReconcileError> {
    let mode = policy
        .spec
        .digest_reflection_policy
        .as_deref()
        .unwrap_or("Never");
    if mode == "Never" {
        return Ok(None);
    }
    if mode == "IfNotPresent"
        && let Some(previous) = policy.status.as_ref().and_then(|s| s.latest_ref.as_ref())
        && previous.tag == tag
        && previous.name == repo.spec.image
        && previous.digest.is_some()
    {
        return Ok(previous.digest.clone());
    }
    let image = CanonicalImage::parse(&repo.spec.image).map_err(|why| {
        ReconcileError::waiting(reason::DEPENDENCY_NOT_READY, why, DEPENDENCY_WAIT)
    })?;
    let options = OciOptions {
        auth: registry_auth(&ctx.runtime.client, namespace, &repo.spec, &image.registry).await?,
        insecure: repo.spec.insecure == Some(true),
        ca_certs: ca_certs(&ctx.runtime.client, namespace, &repo.spec).await?,
        ..OciOptions::default()
    };
    let client = OciClient::new(&options)
        .map_err(|e| ReconcileError::generic(REASON_DIGEST_FAILED, e.to_string()))?;
    let digest = client
        .digest(&format!("oci://{}:{tag}", image.name()))
        .await
        .map_err(|e| {
            ReconcileError::generic(
                REASON_DIGEST_FAILED,
                format!("cannot read the digest of tag {tag:?}: {e}"),
            )
        })?;
    Ok(Some(digest))
}

/// The policy in `ferroflux_image`'s terms.
pub fn policy_spec(spec: &ImagePolicySpec) -> (PolicySpec, Option<FilterTagsSpec>) {
    let order = |o: &ferroflux_api::image::OrderPolicy| OrderSpec {
        order: o.order.clone(),
    };
    let policy = PolicySpec {
        semver: spec.policy.semver.as_ref().map(|s| SemVerSpec {
            range: s.range.clone(),
        }),
        alphabetical: spec.policy.alphabetical.as_ref().map(order),
        numerical: spec.policy.numerical.as_ref().map(order),
    };
    let filter = spec.filter_tags.as_ref().map(|f| FilterTagsSpec {
        pattern: f.pattern.clone().unwrap_or_default(),
        extract: f.extract.clone().unwrap_or_default(),
    });
    (policy, filter)
}

/// Decides the latest tag from the repository's stored scan.
///
/// # Errors
/// `DependencyNotReady` (waiting) when the repository has not been scanned or its stored tags
/// belong to another image; `InvalidPolicy` (stalling) for a bad spec; `NoMatchingTag` when no
/// tag qualifies.
pub fn select(
    spec: &ImagePolicySpec,
    repo: &ImageRepository,
    stored: Option<&StoredTags>,
) -> Result<String, ReconcileError> {
    let repo_name = format!(
        "{}/{}",
        repo.namespace().unwrap_or_default(),
        repo.name_any()
    );
    let scanned = repo
        .status
        .as_ref()
        .is_some_and(|s| s.last_scan_result.is_some());
    let ready = repo.status.as_ref().is_some_and(|s| {
        conditions::is_true(
            s.conditions.as_deref().unwrap_or_default(),
            condition_type::READY,
        )
    });
    let canonical = CanonicalImage::parse(&repo.spec.image)
        .ok()
        .map(|c| c.name());
    let stored = stored.filter(|s| Some(&s.canonical_image_name) == canonical.as_ref());
    let Some(stored) = stored.filter(|_| scanned && ready) else {
        return Err(ReconcileError::waiting(
            reason::DEPENDENCY_NOT_READY,
            format!("ImageRepository '{repo_name}' has not been scanned successfully yet"),
            DEPENDENCY_WAIT,
        ));
    };
    let (policy, filter) = policy_spec(spec);
    ferroflux_image::policy::select_latest(&policy, filter.as_ref(), &stored.tags).map_err(|e| {
        let message = format!("cannot select the latest tag of ImageRepository '{repo_name}': {e}");
        match e {
            PolicyError::NoPolicy
            | PolicyError::InvalidRange { .. }
            | PolicyError::InvalidOrder { .. }
            | PolicyError::InvalidPattern { .. } => {
                ReconcileError::stalling(REASON_INVALID_POLICY, message)
            }
            _ => ReconcileError::waiting(REASON_NO_MATCHING_TAG, message, DEPENDENCY_WAIT),
        }
    })
}

fn summarize(
    policy: &ImagePolicy,
    result: Result<ImageRef, ReconcileError>,
    at: &Time,
) -> ImagePolicyStatus {
    let generation = policy.metadata.generation;
    runtime::next_status(policy, |status, conds| match result {
        Ok(latest) => {
            let image = image_string(&latest);
            let message = format!(
                "Latest image tag for {} resolved to {}",
                latest.name, latest.tag
            );
            conditions::set_outcome(conds, Ok((SUCCEEDED, &message)), generation, at);
            if status.latest_ref.as_ref() != Some(&latest) {
                status.observed_previous_ref = status.latest_ref.take();
                status.observed_previous_image = status.latest_image.take();
            }
            status.latest_ref = Some(latest);
            status.latest_image = Some(image);
        }
        Err(err) => conditions::set_outcome(conds, Err(&err), generation, at),
    })
}

/// `name:tag[@digest]`, v1beta2's `latestImage`.
fn image_string(r: &ImageRef) -> String {
    match &r.digest {
        Some(d) => format!("{}:{}@{d}", r.name, r.tag),
        None => format!("{}:{}", r.name, r.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::now;
    use ferroflux_api::image::{ImageRepositorySpec, ImageRepositoryStatus, ScanResult, TagFilter};

    fn repo(scanned: bool) -> ImageRepository {
        let mut repo = ImageRepository::new(
            "podinfo",
            ImageRepositorySpec {
                image: "127.0.0.1:5000/team-a/podinfo".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        repo.metadata.namespace = Some("team-a".into());
        if scanned {
            let mut conds = Vec::new();
            conditions::set_outcome(&mut conds, Ok(("Succeeded", "ok")), None, &now());
            repo.status = Some(ImageRepositoryStatus {
                conditions: Some(conds),
                last_scan_result: Some(ScanResult::default()),
                ..Default::default()
            });
        }
        repo
    }

    fn stored(tags: &[&str]) -> StoredTags {
        StoredTags {
            canonical_image_name: "127.0.0.1:5000/team-a/podinfo".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The spec as a user writes it.
    fn numerical_ts() -> ImagePolicySpec {
        serde_json::from_value(serde_json::json!({
            "imageRepositoryRef": {"name": "podinfo"},
            "policy": {"numerical": {"order": "asc"}},
            "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"},
        }))
        .expect("a valid spec")
    }

    #[test]
    fn numerical_on_extracted_timestamp_picks_the_newest_build() {
        let tags = stored(&[
            "main-abc123-1718000000",
            "main-def456-1718000100",
            "1.0.0",
            "latest",
        ]);
        let tag = select(&numerical_ts(), &repo(true), Some(&tags)).expect("selects");
        assert_eq!(tag, "main-def456-1718000100");
    }

    #[test]
    fn no_match_is_a_clear_failure_not_a_guess() {
        let tags = stored(&["1.0.0", "latest"]);
        let err = select(&numerical_ts(), &repo(true), Some(&tags)).expect_err("no match");
        assert_eq!(err.reason, REASON_NO_MATCHING_TAG);
        assert!(
            err.message.contains("filterTags.pattern"),
            "{}",
            err.message
        );

        let mut bad = numerical_ts();
        bad.filter_tags = Some(TagFilter {
            pattern: Some("(".into()),
            extract: None,
        });
        let err = select(&bad, &repo(true), Some(&tags)).expect_err("bad pattern");
        assert_eq!(err.reason, REASON_INVALID_POLICY);
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);
    }

    #[test]
    fn unscanned_or_foreign_store_waits_for_the_repository() {
        let tags = stored(&["main-abc123-1718000000"]);
        let err = select(&numerical_ts(), &repo(false), Some(&tags)).expect_err("unscanned");
        assert_eq!(err.reason, reason::DEPENDENCY_NOT_READY);
        let err = select(&numerical_ts(), &repo(true), None).expect_err("no store");
        assert_eq!(err.reason, reason::DEPENDENCY_NOT_READY);
        let mut foreign = tags.clone();
        foreign.canonical_image_name = "ghcr.io/other/app".into();
        let err = select(&numerical_ts(), &repo(true), Some(&foreign)).expect_err("other image");
        assert_eq!(err.reason, reason::DEPENDENCY_NOT_READY);
    }

    #[test]
    fn a_new_selection_moves_the_old_one_to_previous() {
        let mut policy = ImagePolicy::new("podinfo", numerical_ts());
        let first = ImageRef {
            name: "r/app".into(),
            tag: "1".into(),
            digest: None,
        };
        let status = summarize(&policy, Ok(first.clone()), &now());
        assert_eq!(status.latest_image.as_deref(), Some("r/app:1"));
        assert_eq!(status.observed_previous_ref, None);
        policy.status = Some(status);
        let second = ImageRef {
            tag: "2".into(),
            ..first.clone()
        };
        let status = summarize(&policy, Ok(second.clone()), &now());
        assert_eq!(status.latest_ref, Some(second));
        assert_eq!(status.observed_previous_ref, Some(first.clone()));
        assert_eq!(status.observed_previous_image.as_deref(), Some("r/app:1"));
        policy.status = Some(status);
        let failed = summarize(
            &policy,
            Err(ReconcileError::generic(REASON_NO_MATCHING_TAG, "none")),
            &now(),
        );
        assert_eq!(
            failed.latest_ref.map(|r| r.tag).as_deref(),
            Some("2"),
            "kept"
        );
        let ready = conditions::get(failed.conditions.as_deref().unwrap_or_default(), "Ready")
            .expect("ready set");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", REASON_NO_MATCHING_TAG)
        );
    }
}
