//! The ImageRepository reconciler (part of `ferroflux controller image-reflector`): scan a
//! registry repository's tags, drop the excluded ones, keep the list in a [`TagStore`] that
//! survives restarts (ImagePolicies read it from there), and report `lastScanResult`.
//!
//! A scan happens when the interval since the last one has passed, or sooner when the spec
//! changed, a reconcile was requested, or the stored tags are gone ([`scan_due`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use tracing::warn;

use ferroflux_api::image::{
    DEFAULT_EXCLUSION_LIST, ImageRepository, ImageRepositorySpec, ImageRepositoryStatus, ScanResult,
};
use ferroflux_api::meta::{RECONCILE_REQUEST_ANNOTATION, Time, condition_type, reason};
use ferroflux_source::oci::{OciAuth, OciClient, OciError, OciOptions, auth_from_dockerconfigjson};

use crate::conditions;
use crate::runtime::SUCCEEDED;
use crate::runtime::{
    self, Note, ReconcileError, Reconciler, go_duration, now, optional_spec_duration, spec_duration,
};
use crate::source::STORAGE_FAILED;

/// How many tags `lastScanResult.latestTags` shows.
pub const LATEST_TAGS: usize = 10;

/// The registry Docker Hub names resolve to, as go-containerregistry spells it.
pub const DOCKER_HUB: &str = "index.docker.io";

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

    fn suspended(&self, repo: &ImageRepository) -> bool {
        repo.spec.suspend == Some(true)
    }

    fn interval(&self, repo: &ImageRepository) -> Result<Duration, ReconcileError> {
        spec_duration("spec.interval", &repo.spec.interval)
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
        .map_err(|why| ReconcileError::stalling(reason::INVALID, why))?;
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
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut names = Vec::new();
    if let Some(secret_ref) = &spec.secret_ref {
        names.push(secret_ref.name.clone());
    }
    if let Some(sa) = &spec.service_account_name {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let account = accounts.get_opt(sa).await.ok().flatten().ok_or_else(|| {
            ReconcileError::generic(
                reason::AUTHENTICATION_FAILED,
                format!(
                    "service account '{namespace}/{sa}' not found; check spec.serviceAccountName"
                ),
            )
        })?;
        names.extend(
            account
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.name),
        );
    }
    for name in names {
        let secret = secrets.get_opt(&name).await.ok().flatten().ok_or_else(|| {
            ReconcileError::generic(
                reason::AUTHENTICATION_FAILED,
                format!("secret '{namespace}/{name}' not found"),
            )
        })?;
        let data = secret.data.unwrap_or_default();
        let Some(config) = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"))
        else {
            return Err(ReconcileError::stalling(
                reason::AUTHENTICATION_FAILED,
                format!(
                    "secret '{namespace}/{name}' has no .dockerconfigjson key; create it with type kubernetes.io/dockerconfigjson"
                ),
            ));
        };
        let auth = auth_from_dockerconfigjson(&config.0, registry).map_err(|e| {
            ReconcileError::stalling(
                reason::AUTHENTICATION_FAILED,
                format!("secret '{namespace}/{name}': {e}"),
            )
        })?;
        if !matches!(auth, OciAuth::Anonymous) {
            return Ok(auth);
        }
    }
    Ok(OciAuth::Anonymous)
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
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(&cert_ref.name)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ReconcileError::generic(
                reason::AUTHENTICATION_FAILED,
                format!("secret '{namespace}/{}' not found", cert_ref.name),
            )
        })?;
    Ok(secret
        .data
        .unwrap_or_default()
        .get("ca.crt")
        .map(|b| vec![b.0.clone()])
        .unwrap_or_default())
}

fn summarize(
    repo: &ImageRepository,
    result: Result<Scanned, ReconcileError>,
    at: &Time,
) -> ImageRepositoryStatus {
    let mut status = repo.status.clone().unwrap_or_default();
    let generation = repo.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    match result {
        Ok(scan) => {
            let message = format!("successful scan: found {} tags", scan.result.tag_count);
            conditions::set_outcome(&mut conds, Ok((SUCCEEDED, &message)), generation, at);
            status.canonical_image_name = Some(scan.canonical);
            status.last_scan_result = Some(scan.result);
            status.observed_exclusion_list = Some(effective_exclusion_list(&repo.spec));
        }
        Err(err) => conditions::set_outcome(&mut conds, Err(&err), generation, at),
    }
    status.conditions = Some(conds);
    status
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

/// Compiled `spec.exclusionList`: a tag matching any pattern is dropped.
#[derive(Debug, Clone)]
pub struct Exclusions(Vec<regex::Regex>);

impl Exclusions {
    /// Compiles the patterns; the error names the bad one.
    ///
    /// # Errors
    /// A message naming the pattern that is not a valid regular expression.
    pub fn new(patterns: &[String]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p)
                    .map_err(|e| format!("invalid spec.exclusionList pattern {p:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Exclusions)
    }

    /// The tags no pattern matches, in their original order.
    pub fn apply(&self, tags: Vec<String>) -> Vec<String> {
        tags.into_iter()
            .filter(|t| !self.0.iter().any(|r| r.is_match(t)))
            .collect()
    }
}

/// The `LATEST_TAGS` tags Flux shows in `lastScanResult.latestTags`: reverse byte order.
pub fn latest_tags(tags: &[String]) -> Vec<String> {
    let mut sorted: Vec<String> = tags.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.truncate(LATEST_TAGS);
    sorted
}

/// `spec.image` split into registry host and repository path, Docker Hub names normalised
/// (`nginx` -> `index.docker.io/library/nginx`), as go-containerregistry does for Flux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalImage {
    /// Registry host (with port), e.g. `ghcr.io`, `index.docker.io`.
    pub registry: String,
    /// Repository path, e.g. `library/nginx`.
    pub repository: String,
}

impl CanonicalImage {
    /// Parses `spec.image`.
    ///
    /// # Errors
    /// A message saying what is wrong: a URL scheme, a tag or digest, an empty or upper-case
    /// path.
    pub fn parse(image: &str) -> Result<Self, String> {
        let image = image.trim();
        if image.contains("://") {
            return Err(format!(
                "spec.image {image:?} must not start with a URL scheme; use HOST/REPOSITORY"
            ));
        }
        if image.contains('@') {
            return Err(format!(
                "spec.image {image:?} must not contain a digest; name the repository only"
            ));
        }
        let (first, rest) = match image.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), rest)
            }
            _ => (None, image),
        };
        if rest
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            return Err(format!(
                "spec.image {image:?} must not contain a tag; name the repository only"
            ));
        }
        let valid = |segment: &str| {
            !segment.is_empty()
                && segment.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if !rest.split('/').all(valid) {
            return Err(format!(
                "spec.image {image:?} is not a valid repository name: path components are lower-case letters, digits and . _ -"
            ));
        }
        let registry = match first {
            None | Some("docker.io") | Some("index.docker.io") => DOCKER_HUB.to_string(),
            Some(host) => host.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !rest.contains('/') {
            format!("library/{rest}")
        } else {
            rest.to_string()
        };
        Ok(CanonicalImage {
            registry,
            repository,
        })
    }

    /// `REGISTRY/REPOSITORY`, Flux's `status.canonicalImageName`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
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

/// The tags of one ImageRepository, as stored after a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTags {
    /// The canonical image name scanned.
    pub canonical_image_name: String,
    /// The tags left after exclusions, in the registry's order.
    pub tags: Vec<String>,
}

impl StoredTags {
    /// `sha256:<hex>` of the sorted tag list: changes exactly when the set of tags does.
    pub fn revision(&self) -> String {
        let mut sorted: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        ferroflux_source::sha256_digest(sorted.join("\n").as_bytes())
    }
}

/// Scanned tags on disk: one JSON file per ImageRepository, `<dir>/<namespace>/<name>.json`,
/// written atomically (temporary file + rename) so a crash never leaves half a list.
#[derive(Debug, Clone)]
pub struct TagStore {
    dir: PathBuf,
}

impl TagStore {
    /// A store under `dir` (created when missing).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(TagStore { dir })
    }

    fn path(&self, namespace: &str, name: &str) -> PathBuf {
        // Kubernetes names cannot hold `/`, so the layout cannot collide or escape.
        self.dir.join(namespace).join(format!("{name}.json"))
    }

    /// Replaces the tags of `namespace/name`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, namespace: &str, name: &str, tags: &StoredTags) -> std::io::Result<()> {
        let path = self.path(namespace, name);
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let mut file = tempfile::NamedTempFile::new_in(parent)?;
        serde_json::to_writer(&mut file, tags)?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The tags of `namespace/name`, `None` when never stored.
    ///
    /// # Errors
    /// I/O errors, or a corrupt file (reported as `InvalidData`).
    pub fn load(&self, namespace: &str, name: &str) -> std::io::Result<Option<StoredTags>> {
        match std::fs::read(self.path(namespace, name)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets `namespace/name`.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn remove(&self, namespace: &str, name: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(namespace, name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
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
    fn docker_hub_names_are_normalised() {
        for (image, want) in [
            ("nginx", "index.docker.io/library/nginx"),
            ("docker.io/nginx", "index.docker.io/library/nginx"),
            (
                "stefanprodan/podinfo",
                "index.docker.io/stefanprodan/podinfo",
            ),
            ("ghcr.io/org/app", "ghcr.io/org/app"),
            (
                "127.0.0.1:5000/team-a/podinfo",
                "127.0.0.1:5000/team-a/podinfo",
            ),
            ("localhost/app", "localhost/app"),
        ] {
            assert_eq!(
                CanonicalImage::parse(image).map(|c| c.name()),
                Ok(want.to_string()),
                "{image}"
            );
        }
        for bad in [
            "https://ghcr.io/org/app",
            "ghcr.io/org/app:1.0",
            "ghcr.io/org/app@sha256:00",
            "Org/App",
            "ghcr.io//app",
        ] {
            assert!(CanonicalImage::parse(bad).is_err(), "{bad} is refused");
        }
        let err = CanonicalImage::parse("nginx:1.25").expect_err("tag refused");
        assert!(err.contains("must not contain a tag"), "{err}");
    }

    #[test]
    fn default_exclusion_drops_signature_tags() {
        let exclusions =
            Exclusions::new(&effective_exclusion_list(&ImageRepositorySpec::default()))
                .expect("default compiles");
        let tags = ["1.0.0", "sha256-abc.sig", "sig", "1.0.1"]
            .map(String::from)
            .to_vec();
        assert_eq!(exclusions.apply(tags), ["1.0.0", "sig", "1.0.1"]);
        let err = Exclusions::new(&["(".to_string()]).expect_err("bad regex");
        assert!(err.contains("spec.exclusionList"), "{err}");
    }

    #[test]
    fn latest_tags_are_the_ten_greatest_in_reverse_order() {
        let tags: Vec<String> = (0..15).map(|i| format!("v{i:02}")).collect();
        let latest = latest_tags(&tags);
        assert_eq!(latest.len(), LATEST_TAGS);
        assert_eq!(latest.first().map(String::as_str), Some("v14"));
        assert_eq!(latest.last().map(String::as_str), Some("v05"));
    }

    #[test]
    fn store_round_trips_and_revision_ignores_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = TagStore::new(dir.path().join("tags")).expect("store");
        assert_eq!(store.load("ns", "app").expect("load"), None);
        let tags = StoredTags {
            canonical_image_name: "ghcr.io/org/app".into(),
            tags: vec!["b".into(), "a".into()],
        };
        store.save("ns", "app", &tags).expect("save");
        let reopened = TagStore::new(dir.path().join("tags")).expect("store");
        assert_eq!(
            reopened.load("ns", "app").expect("load"),
            Some(tags.clone())
        );
        let reordered = StoredTags {
            tags: vec!["a".into(), "b".into()],
            ..tags.clone()
        };
        assert_eq!(tags.revision(), reordered.revision());
        let more = StoredTags {
            tags: vec!["a".into(), "b".into(), "c".into()],
            ..tags
        };
        assert_ne!(reordered.revision(), more.revision());
        reopened.remove("ns", "app").expect("remove");
        assert_eq!(reopened.load("ns", "app").expect("load"), None);
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
