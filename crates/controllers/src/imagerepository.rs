//! The ImageRepository reconciler (part of `ferroflux controller image-reflector`): scan a
//! registry repository's tags, drop the excluded ones, keep the list in a [`TagStore`] that
//! survives restarts (ImagePolicies read it from there), and report `lastScanResult`.
//!
//! A scan happens when the interval since the last one has passed, or sooner when the spec
//! changed, a reconcile was requested, or the stored tags are gone ([`scan_due`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::{Client, ResourceExt};
use tracing::warn;

use ferroflux_api::image::{
    DEFAULT_EXCLUSION_LIST, ImageRepository, ImageRepositorySpec, ImageRepositoryStatus, ScanResult,
};
use ferroflux_api::meta::{RECONCILE_REQUEST_ANNOTATION, Time, condition_type, reason};
use ferroflux_image::scan::{Exclusions, latest_tags};
use ferroflux_source::oci::{OciAuth, OciClient, OciError, OciOptions};

use crate::conditions;
use crate::ocirepository::{dockerconfig_auth, pull_secret_names, secret_data};
use crate::runtime::SUCCEEDED;
use crate::runtime::{
    self, Note, ReconcileError, Reconciler, go_duration, now, optional_spec_duration, spec_duration,
};
use crate::source::STORAGE_FAILED;

// The scan's decisions and the tag store live in `ferroflux_image`; they are named here too
// because the ImagePolicy and ImageUpdateAutomation controllers and the binaries that build
// this controller's `Context` know them as the ImageRepository's.
pub use ferroflux_image::scan::{CanonicalImage, DOCKER_HUB, StoredTags};
pub use ferroflux_image::store::TagStore;

/// What the reconciler needs.
pub struct Context {
    /// The runtime's shared context.
    pub runtime: runtime::Context,
    /// Where scanned tags are kept.
    pub store: Arc<TagStore>,
}

impl Context {
    /// A context whose events are reported as `image-reflector-controller`.
    pub fn new(client: Client, store: Arc<TagStore>) -> Self {
        Context {
            runtime: runtime::Context::new(client, "image-reflector-controller"),
            store,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = ImageRepository;
    type Done = Scanned;
    type Failure = ReconcileError;
    type Status = ImageRepositoryStatus;

    fn runtime(&self) -> &runtime::Context {
        &self.runtime
    }

    async fn not_due(&self, repo: &ImageRepository, interval: Duration) -> Option<Duration> {
        let namespace = repo.namespace().unwrap_or_default();
        let stored = self.store.load(&namespace, &repo.name_any()).ok().flatten();
        scan_due(repo, stored.as_ref(), jiff::Timestamp::now(), interval).wait
    }

    async fn reconcile(&self, repo: &ImageRepository) -> Result<Scanned, ReconcileError> {
        reconcile_scan(repo, self).await
    }

    fn event(&self, repo: &ImageRepository, scan: &Scanned) -> Option<Note> {
        let previous = repo
            .status
            .as_ref()
            .and_then(|s| s.last_scan_result.as_ref())
            .and_then(|r| r.revision.clone());
        (previous != scan.result.revision).then(|| Note {
            warning: false,
            reason: SUCCEEDED,
            message: format!(
                "successful scan: found {} tags",
                scan.result.tag_count.max(0)
            ),
        })
    }

    fn summarize(
        &self,
        repo: &ImageRepository,
        outcome: Result<Scanned, ReconcileError>,
        at: Time,
    ) -> ImageRepositoryStatus {
        summarize(repo, outcome, &at)
    }

    async fn cleanup(&self, repo: &ImageRepository) {
        let namespace = repo.namespace().unwrap_or_default();
        if let Err(err) = self.store.remove(&namespace, &repo.name_any()) {
            warn!(%err, "could not remove the tags of a deleted ImageRepository");
        }
    }
}

/// A successful scan.
#[derive(Debug, Clone)]
pub struct Scanned {
    canonical: String,
    result: ScanResult,
}

/// Owns `Ready` for the scan: credentials, the registry call, exclusions, the store write.
async fn reconcile_scan(repo: &ImageRepository, ctx: &Context) -> Result<Scanned, ReconcileError> {
    let image = CanonicalImage::parse(&repo.spec.image)
        .map_err(|why| ReconcileError::stalling(reason::INVALID, why))?;
    let provider = repo.spec.provider.as_deref().unwrap_or("generic");
    if provider != "generic" {
        // Cloud providers need their metadata services for tokens, which are not here.
        return Err(ReconcileError::stalling(
            reason::AUTHENTICATION_FAILED,
            format!(
                "provider '{provider}' is not supported; use provider 'generic' with a dockerconfigjson secretRef"
            ),
        ));
    }
    let exclusions = Exclusions::new(&effective_exclusion_list(&repo.spec))
        .map_err(|e| ReconcileError::stalling(reason::INVALID, e.to_string()))?;
    let namespace = repo.namespace().unwrap_or_default();
    let options = OciOptions {
        auth: registry_auth(&ctx.runtime.client, &namespace, &repo.spec, &image.registry).await?,
        insecure: repo.spec.insecure == Some(true),
        ca_certs: ca_certs(&ctx.runtime.client, &namespace, &repo.spec).await?,
        ..OciOptions::default()
    };
    let client = OciClient::new(&options)
        .map_err(|e| ReconcileError::stalling(reason::INVALID, e.to_string()))?;
    let timeout = optional_spec_duration(
        "spec.timeout",
        repo.spec.timeout.as_deref(),
        spec_duration("spec.interval", &repo.spec.interval)?,
    )?;
    let url = format!("oci://{}", image.name());
    let tags = tokio::time::timeout(timeout, client.list_tags(&url))
        .await
        .map_err(|_| {
            ReconcileError::generic(
                "ReadOperationFailed",
                format!(
                    "listing the tags of {} timed out after {}; raise spec.timeout",
                    image.name(),
                    go_duration(timeout)
                ),
            )
        })?
        .map_err(scan_failed)?;
    let tags = exclusions.apply(tags);
    let scan_time = now();
    let stored = StoredTags {
        canonical_image_name: image.name(),
        tags,
    };
    ctx.store
        .save(&namespace, &repo.name_any(), &stored)
        .map_err(|e| {
            ReconcileError::generic(
                STORAGE_FAILED,
                format!("could not store the scanned tags: {e}"),
            )
        })?;
    Ok(Scanned {
        canonical: image.name(),
        result: ScanResult {
            revision: Some(stored.revision()),
            tag_count: i64::try_from(stored.tags.len()).unwrap_or(i64::MAX),
            scan_time: Some(scan_time.0.to_string()),
            latest_tags: Some(latest_tags(&stored.tags)),
        },
    })
}

fn scan_failed(err: OciError) -> ReconcileError {
    let why = match err {
        OciError::Auth { .. } => reason::AUTHENTICATION_FAILED,
        _ => "ReadOperationFailed",
    };
    ReconcileError::generic(why, err.to_string())
}

/// Credentials for `registry`: `spec.secretRef` first, then the imagePullSecrets of
/// `spec.serviceAccountName`; anonymous when neither names the registry.
pub(crate) async fn registry_auth(
    client: &Client,
    namespace: &str,
    spec: &ImageRepositorySpec,
    registry: &str,
) -> Result<OciAuth, ReconcileError> {
    let mut names: Vec<String> = spec.secret_ref.iter().map(|r| r.name.clone()).collect();
    if let Some(account) = &spec.service_account_name {
        names.extend(pull_secret_names(client, namespace, account).await?);
    }
    dockerconfig_auth(client, namespace, &names, registry).await
}

/// `ca.crt` of `spec.certSecretRef`.
pub(crate) async fn ca_certs(
    client: &Client,
    namespace: &str,
    spec: &ImageRepositorySpec,
) -> Result<Vec<Vec<u8>>, ReconcileError> {
    let Some(cert_ref) = &spec.cert_secret_ref else {
        return Ok(Vec::new());
    };
    let why = reason::AUTHENTICATION_FAILED;
    let data = secret_data(client, namespace, &cert_ref.name, why).await?;
    Ok(data.get("ca.crt").cloned().into_iter().collect())
}

fn summarize(
    repo: &ImageRepository,
    result: Result<Scanned, ReconcileError>,
    at: &Time,
) -> ImageRepositoryStatus {
    let generation = repo.metadata.generation;
    runtime::next_status(repo, |status, conds| match result {
        Ok(scan) => {
            let message = format!("successful scan: found {} tags", scan.result.tag_count);
            conditions::set_outcome(conds, Ok((SUCCEEDED, &message)), generation, at);
            status.canonical_image_name = Some(scan.canonical);
            status.last_scan_result = Some(scan.result);
            status.observed_exclusion_list = Some(effective_exclusion_list(&repo.spec));
        }
        Err(err) => conditions::set_outcome(conds, Err(&err), generation, at),
    })
}

/// `spec.exclusionList`, or Flux's default when unset.
pub fn effective_exclusion_list(spec: &ImageRepositorySpec) -> Vec<String> {
    match &spec.exclusion_list {
        Some(list) => list.clone(),
        None => DEFAULT_EXCLUSION_LIST
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// Whether to scan now, or how long until the next scan is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanDue {
    /// `None`: scan now.
    pub wait: Option<Duration>,
}

/// Decides whether a reconcile scans: yes when never scanned, when the stored tags are missing
/// or belong to another image, when the exclusion list or generation changed, when a
/// reconcile was requested, or when `interval` has passed since the last scan.
pub fn scan_due(
    repo: &ImageRepository,
    stored: Option<&StoredTags>,
    now: jiff::Timestamp,
    interval: Duration,
) -> ScanDue {
    let scan = ScanDue { wait: None };
    let Some(status) = &repo.status else {
        return scan;
    };
    let Some(last) = &status.last_scan_result else {
        return scan;
    };
    let canonical = CanonicalImage::parse(&repo.spec.image)
        .ok()
        .map(|c| c.name());
    let stale_store = stored.is_none_or(|s| Some(&s.canonical_image_name) != canonical.as_ref());
    let spec_changed = status.observed_generation != repo.metadata.generation
        || status.observed_exclusion_list.as_ref() != Some(&effective_exclusion_list(&repo.spec))
        || status.canonical_image_name != canonical;
    let requested = repo
        .annotations()
        .get(RECONCILE_REQUEST_ANNOTATION)
        .is_some_and(|r| status.last_handled_reconcile_at.as_ref() != Some(r));
    let not_ready = !conditions::is_true(
        status.conditions.as_deref().unwrap_or_default(),
        condition_type::READY,
    );
    if stale_store || spec_changed || requested || not_ready {
        return scan;
    }
    let Some(scanned) = last
        .scan_time
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return scan;
    };
    let next = scanned
        .checked_add(jiff::SignedDuration::try_from(interval).unwrap_or_default())
        .unwrap_or(scanned);
    match next.duration_since(now).try_into() {
        Ok(wait) if wait > Duration::ZERO => ScanDue { wait: Some(wait) },
        _ => scan,
    }
}

/// Labels of namespaces, to check `accessFrom` selectors.
pub(crate) fn access_allowed(
    access_from: Option<&ferroflux_api::meta::AccessFrom>,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    let Some(access) = access_from else {
        return false;
    };
    access.namespace_selectors.iter().any(|selector| {
        selector.match_labels.as_ref().is_none_or(|wanted| {
            wanted
                .iter()
                .all(|(k, v)| namespace_labels.get(k) == Some(v))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_exclusion_list_drops_signature_tags() {
        let list = effective_exclusion_list(&ImageRepositorySpec::default());
        let exclusions = Exclusions::new(&list).expect("Flux's default compiles");
        let tags = ["1.0.0", "sha256-abc.sig", "1.0.1"]
            .map(String::from)
            .to_vec();
        assert_eq!(exclusions.apply(tags), ["1.0.0", "1.0.1"]);
    }

    fn scanned_repo(scan_time: &str) -> ImageRepository {
        let mut repo = ImageRepository::new(
            "app",
            ImageRepositorySpec {
                image: "ghcr.io/org/app".into(),
                interval: "5m".into(),
                ..Default::default()
            },
        );
        repo.metadata.generation = Some(1);
        let mut conds = Vec::new();
        conditions::set_outcome(&mut conds, Ok(("Succeeded", "ok")), Some(1), &now());
        repo.status = Some(ImageRepositoryStatus {
            observed_generation: Some(1),
            conditions: Some(conds),
            canonical_image_name: Some("ghcr.io/org/app".into()),
            last_scan_result: Some(ScanResult {
                scan_time: Some(scan_time.into()),
                ..Default::default()
            }),
            observed_exclusion_list: Some(effective_exclusion_list(&repo.spec)),
            last_handled_reconcile_at: None,
        });
        repo
    }

    #[test]
    fn scans_wait_for_the_interval_unless_something_changed() {
        let repo = scanned_repo("2026-01-01T00:00:00Z");
        let stored = StoredTags {
            canonical_image_name: "ghcr.io/org/app".into(),
            tags: vec![],
        };
        let interval = Duration::from_secs(300);
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        let due = scan_due(&repo, Some(&stored), at("2026-01-01T00:01:00Z"), interval);
        assert_eq!(due.wait, Some(Duration::from_secs(240)));
        let due = scan_due(&repo, Some(&stored), at("2026-01-01T00:06:00Z"), interval);
        assert_eq!(due.wait, None, "interval passed");
        let due = scan_due(&repo, None, at("2026-01-01T00:01:00Z"), interval);
        assert_eq!(due.wait, None, "store lost");
        let mut changed = repo.clone();
        changed.spec.exclusion_list = Some(vec!["^dev-".into()]);
        let due = scan_due(
            &changed,
            Some(&stored),
            at("2026-01-01T00:01:00Z"),
            interval,
        );
        assert_eq!(due.wait, None, "exclusions changed");
        let mut requested = repo;
        requested
            .annotations_mut()
            .insert(RECONCILE_REQUEST_ANNOTATION.into(), "now".into());
        let due = scan_due(
            &requested,
            Some(&stored),
            at("2026-01-01T00:01:00Z"),
            interval,
        );
        assert_eq!(due.wait, None, "reconcile requested");
    }

    #[test]
    fn access_from_selectors_match_namespace_labels() {
        use ferroflux_api::meta::{AccessFrom, NamespaceSelector};
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())]
            .into_iter()
            .collect();
        assert!(!access_allowed(None, &labels));
        let allow = |pairs: &[(&str, &str)]| AccessFrom {
            namespace_selectors: vec![NamespaceSelector {
                match_labels: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }],
        };
        assert!(access_allowed(Some(&allow(&[("team", "a")])), &labels));
        assert!(!access_allowed(Some(&allow(&[("team", "b")])), &labels));
        assert!(
            access_allowed(Some(&allow(&[])), &labels),
            "empty selector matches all"
        );
    }
}
