//! The HelmChart reconciler (part of `ferroflux controller source`): from a HelmRepository,
//! pick the semver-highest chart version within `spec.version` in the repository's index
//! artifact and pull it; from a GitRepository or Bucket, package the chart directory at
//! `spec.chart` out of the source's artifact. `valuesFiles` are merged, in order, into the
//! chart's `values.yaml`. The packaged chart is the artifact, revision the chart version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tracing::info;

use ferroflux_api::meta::{Artifact, Time, condition_type, reason};
use ferroflux_api::source::{Bucket, GitRepository, HelmChart, HelmChartStatus, HelmRepository};
use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::helm_index::{self, HelmAuth};
use ferroflux_source::storage::Storage;

use crate::conditions;
use crate::ocirepository::referenced_secret;
use crate::runtime::SUCCEEDED;
use crate::runtime::{Note, ReconcileError, Reconciler, set_source_conditions, spec_duration};
use crate::source::STORAGE_FAILED;
use crate::source::new_artifact;

const CHART_PULL_ERROR: &str = "ChartPullError";
const CHART_PACKAGE_ERROR: &str = "ChartPackageError";
const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
const SOURCE_UNAVAILABLE: &str = "SourceUnavailable";

/// What the reconciler needs.
pub struct Context {
    /// The source controller's context (the HelmRepository indexes are in its storage).
    pub source: crate::source::Context<HelmChart>,
    /// Downloads charts and source artifacts.
    pub http: reqwest::Client,
}

impl Context {
    /// A context whose events are reported as `source-controller`.
    pub fn new(client: Client, storage: Arc<Storage>, http: reqwest::Client) -> Self {
        Context {
            source: crate::source::Context::new(client, storage),
            http,
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub use crate::runtime::run;

impl Reconciler for Context {
    type Kind = HelmChart;
    type Done = Built;
    type Failure = ReconcileError;
    type Status = HelmChartStatus;

    fn runtime(&self) -> &crate::runtime::Context {
        &self.source.runtime
    }

    /// A chart is rebuilt as soon as its source changes, not only on its interval.
    fn watches(&self, controller: Controller<HelmChart>) -> Controller<HelmChart> {
        let (for_index, for_git, for_bucket) =
            (controller.store(), controller.store(), controller.store());
        let client = self.source.client();
        controller
            .watches(
                Api::<HelmRepository>::all(client.clone()),
                watcher::Config::default(),
                move |source| charts_of(&for_index, "HelmRepository", &source),
            )
            .watches(
                Api::<GitRepository>::all(client.clone()),
                watcher::Config::default(),
                move |source| charts_of(&for_git, "GitRepository", &source),
            )
            .watches(
                Api::<Bucket>::all(client.clone()),
                watcher::Config::default(),
                move |source| charts_of(&for_bucket, "Bucket", &source),
            )
    }

    fn suspended(&self, chart: &HelmChart) -> bool {
        chart.spec.suspend == Some(true)
    }

    fn interval(&self, chart: &HelmChart) -> Result<Duration, ReconcileError> {
        spec_duration("spec.interval", &chart.spec.interval)
    }

    async fn reconcile(&self, chart: &HelmChart) -> Result<Built, ReconcileError> {
        reconcile_chart(chart, self).await
    }

    fn event(&self, chart: &HelmChart, built: &Built) -> Option<Note> {
        let previous = chart.status.as_ref().and_then(|s| s.artifact.as_ref());
        new_artifact(previous, &built.artifact, || success_message(built))
    }

    fn summarize(
        &self,
        chart: &HelmChart,
        outcome: Result<Built, ReconcileError>,
        at: Time,
    ) -> HelmChartStatus {
        summarize(chart, outcome, at)
    }

    async fn cleanup(&self, chart: &HelmChart) {
        self.source.remove_artifacts(chart);
    }
}

/// The charts in `store` whose `sourceRef` is `source` (of `kind`, same namespace).
fn charts_of<S: ResourceExt>(
    store: &kube::runtime::reflector::Store<HelmChart>,
    kind: &str,
    source: &S,
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    let namespace = source.namespace().unwrap_or_default();
    let name = source.name_any();
    store
        .state()
        .into_iter()
        .filter(|c| {
            c.spec.source_ref.kind == kind
                && c.spec.source_ref.name == name
                && c.namespace().unwrap_or_default() == namespace
        })
        .map(|c| kube::runtime::reflector::ObjectRef::from_obj(&*c))
        .collect()
}

/// A chart built: the artifact, and what it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    artifact: Artifact,
    chart_name: String,
    source_revision: String,
    /// Pulled from a repository (`ChartPullSucceeded`) or packaged (`ChartPackageSucceeded`).
    pulled: bool,
    /// A cosign signature of the chart verified (`spec.verify`, OCI repositories only).
    verified: bool,
}

fn success_message(built: &Built) -> String {
    let verb = if built.pulled { "pulled" } else { "packaged" };
    format!(
        "{verb} '{}' chart with version '{}'",
        built.chart_name, built.artifact.revision
    )
}

/// The artifact revision: the chart version, plus the source revision's hash (12 characters)
/// with `reconcileStrategy: Revision` on Git and bucket sources, as Flux does.
fn chart_revision(version: &str, strategy: Option<&str>, source_revision: &str) -> String {
    if strategy != Some("Revision") {
        return version.to_string();
    }
    let hash = source_revision
        .rsplit(':')
        .next()
        .unwrap_or(source_revision);
    let short: String = hash.chars().take(12).collect();
    format!("{version}+{short}")
}

/// Helm's values merge: maps merge key by key, anything else in `overlay` replaces.
pub(crate) fn merge_values(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_values(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The source object's artifact, or a waiting error while it has none.
async fn source_artifact(
    chart: &HelmChart,
    ctx: &Context,
) -> Result<(Option<Artifact>, Option<HelmRepository>), ReconcileError> {
    let namespace = chart.namespace().unwrap_or_default();
    let source = &chart.spec.source_ref;
    let unavailable =
        |why: String| ReconcileError::waiting(SOURCE_UNAVAILABLE, why, Duration::from_secs(10));
    let not_found = |e: kube::Error| {
        unavailable(format!(
            "failed to get source {}/{namespace}/{}: {e}",
            source.kind, source.name
        ))
    };
    let (artifact, repository) = match source.kind.as_str() {
        "HelmRepository" => {
            let api: Api<HelmRepository> = Api::namespaced(ctx.source.client().clone(), &namespace);
            let repo = api.get(&source.name).await.map_err(not_found)?;
            // An OCI repository has no index artifact: charts come from the registry.
            if repo.spec.repository_type.as_deref() == Some("oci") {
                return Ok((None, Some(repo)));
            }
            (
                repo.status.as_ref().and_then(|s| s.artifact.clone()),
                Some(repo),
            )
        }
        "GitRepository" => {
            let api: Api<GitRepository> = Api::namespaced(ctx.source.client().clone(), &namespace);
            let repo = api.get(&source.name).await.map_err(not_found)?;
            (repo.status.and_then(|s| s.artifact), None)
        }
        "Bucket" => {
            let api: Api<Bucket> = Api::namespaced(ctx.source.client().clone(), &namespace);
            let bucket = api.get(&source.name).await.map_err(not_found)?;
            (bucket.status.and_then(|s| s.artifact), None)
        }
        other => {
            return Err(ReconcileError::stalling(
                reason::INVALID,
                format!(
                    "unsupported source kind '{other}'; use HelmRepository, GitRepository or Bucket"
                ),
            ));
        }
    };
    let artifact = artifact.ok_or_else(|| {
        unavailable(format!(
            "no artifact available for {} source '{}'",
            source.kind, source.name
        ))
    })?;
    Ok((Some(artifact), repository))
}

fn is_current(
    chart: &HelmChart,
    revision: &str,
    name: &str,
    storage: &Storage,
) -> Option<Artifact> {
    let status = chart.status.as_ref()?;
    let current = status.artifact.as_ref()?;
    (current.revision == revision
        && status.observed_chart_name.as_deref() == Some(name)
        && status.observed_values_files == chart.spec.values_files)
        .then(|| storage.stored_url(&current.path))
        .flatten()
        .map(|url| Artifact {
            url,
            ..current.clone()
        })
}

/// Owns `FetchFailed` and the artifact.
async fn reconcile_chart(chart: &HelmChart, ctx: &Context) -> Result<Built, ReconcileError> {
    let mut verified = false;
    let (source, repository) = source_artifact(chart, ctx).await?;
    let key = ctx.source.key(chart);
    let workdir = tempfile::tempdir().map_err(|e| {
        ReconcileError::generic(STORAGE_FAILED, format!("temporary directory: {e}"))
    })?;
    let (chart_dir, name, version, pulled, source_revision) = match repository {
        Some(repo) => {
            let (name, version, tgz, source_revision) = match &source {
                Some(index) => {
                    let (name, version, tgz) =
                        pull_from_repository(chart, ctx, &repo, index).await?;
                    (name, version, tgz, index.revision.clone())
                }
                None => {
                    verified = chart.spec.verify.is_some();
                    pull_from_registry(chart, ctx, &repo).await?
                }
            };
            let revision = version.clone();
            if let Some(artifact) = is_current(chart, &revision, &name, &ctx.source.storage) {
                return Ok(Built {
                    artifact,
                    chart_name: name,
                    source_revision,
                    pulled: true,
                    verified,
                });
            }
            if chart.spec.values_files.is_none() {
                let stored = ctx
                    .source
                    .storage
                    .store_bytes(&key, &revision, &tgz)
                    .map_err(store_error)?;
                return Ok(built(stored, name, source_revision, true, verified));
            }
            let dest = workdir.path().join("chart");
            ferroflux_source::artifact::extract_tar_gz(&tgz[..], &dest, &ExtractOptions::default())
                .map_err(|e| {
                    ReconcileError::generic(
                        CHART_PULL_ERROR,
                        format!("chart {name} {version}: {e}"),
                    )
                })?;
            (dest.join(&name), name, version, true, source_revision)
        }
        None => {
            let source = source.expect("Git and bucket sources are only returned with an artifact");
            let dest = workdir.path().join("source");
            let digest = source.digest.clone().unwrap_or_default();
            ferroflux_source::storage::fetch_artifact(
                &ctx.http,
                &source.url,
                &digest,
                &dest,
                &ExtractOptions::default(),
            )
            .await
            .map_err(|e| {
                ReconcileError::generic(
                    SOURCE_UNAVAILABLE,
                    format!("failed to fetch source artifact: {e}"),
                )
            })?;
            let path = chart
                .spec
                .chart
                .trim_start_matches("./")
                .trim_end_matches('/');
            let dir = match inside(&dest, path) {
                Some(dir) if dir.join("Chart.yaml").is_file() => dir,
                _ => {
                    return Err(ReconcileError::stalling(
                        CHART_PACKAGE_ERROR,
                        format!(
                            "no chart (Chart.yaml) at path '{}' in {} '{}'",
                            chart.spec.chart,
                            chart.spec.source_ref.kind,
                            chart.spec.source_ref.name
                        ),
                    ));
                }
            };
            let (name, version) = chart_metadata(&dir)?;
            (dir, name, version, false, source.revision)
        }
    };
    let revision = if pulled {
        version.clone()
    } else {
        chart_revision(
            &version,
            chart.spec.reconcile_strategy.as_deref(),
            &source_revision,
        )
    };
    if let Some(artifact) = is_current(chart, &revision, &name, &ctx.source.storage)
        && (pulled
            || chart
                .status
                .as_ref()
                .and_then(|s| s.observed_source_artifact_revision.as_deref())
                == Some(source_revision.as_str()))
    {
        return Ok(Built {
            artifact,
            chart_name: name,
            source_revision,
            pulled,
            verified,
        });
    }
    if let Some(files) = &chart.spec.values_files {
        merge_values_files(
            &chart_dir,
            files,
            chart.spec.ignore_missing_values_files == Some(true),
        )?;
    }
    // Helm archives hold the chart under a top directory named after it.
    let package_root = workdir.path().join("package");
    copy_tree(&chart_dir, &package_root.join(&name)).map_err(|e| {
        ReconcileError::generic(CHART_PACKAGE_ERROR, format!("copying chart {name}: {e}"))
    })?;
    let stored = ctx
        .source
        .storage
        .store_dir(&key, &revision, &package_root, &IgnoreRules::none())
        .map_err(store_error)?;
    info!(chart = %name, %revision, "stored chart");
    Ok(built(stored, name, source_revision, pulled, verified))
}

fn store_error(e: ferroflux_source::storage::StorageError) -> ReconcileError {
    ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
}

fn built(
    stored: ferroflux_source::Artifact,
    chart_name: String,
    source_revision: String,
    pulled: bool,
    verified: bool,
) -> Built {
    Built {
        artifact: crate::source::status_artifact(stored),
        chart_name,
        source_revision,
        pulled,
        verified,
    }
}

/// Selects the version in the repository's stored index and downloads the chart archive.
async fn pull_from_repository(
    chart: &HelmChart,
    ctx: &Context,
    repo: &HelmRepository,
    index_artifact: &Artifact,
) -> Result<(String, String, Vec<u8>), ReconcileError> {
    let url = repo.spec.url.trim_end_matches('/');
    let local = ctx.source.storage.root().join(&index_artifact.path);
    let bytes = std::fs::read(&local).map_err(|e| {
        ReconcileError::waiting(
            SOURCE_UNAVAILABLE,
            format!(
                "index of HelmRepository '{}' is not in storage: {e}",
                repo.name_any()
            ),
            Duration::from_secs(10),
        )
    })?;
    let index = helm_index::parse_index(&bytes, url)
        .map_err(|e| ReconcileError::generic(CHART_PULL_ERROR, e.to_string()))?;
    let range = chart.spec.version.as_deref().unwrap_or("*");
    let version = index.select(&chart.spec.chart, range, url).map_err(|e| {
        let retry = matches!(e, helm_index::HelmIndexError::Range(_));
        let message = format!("invalid chart reference: {e}");
        if retry {
            ReconcileError::stalling(CHART_PULL_ERROR, message)
        } else {
            ReconcileError::generic(CHART_PULL_ERROR, message)
        }
    })?;
    let secret = repository_secret(ctx, repo).await?;
    let auth = secret
        .as_ref()
        .and_then(basic_auth)
        .map(|(username, password)| HelmAuth { username, password });
    let tgz = helm_index::fetch_chart(
        &ctx.http,
        url,
        version,
        auth.as_ref(),
        repo.spec.pass_credentials == Some(true),
    )
    .await
    .map_err(|e| {
        ReconcileError::generic(
            CHART_PULL_ERROR,
            format!(
                "failed to pull chart {} {}: {e}",
                chart.spec.chart, version.version
            ),
        )
    })?;
    Ok((chart.spec.chart.clone(), version.version.clone(), tgz))
}

/// The data of the HelmRepository's `secretRef` Secret, if it names one.
async fn repository_secret(
    ctx: &Context,
    repo: &HelmRepository,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, ReconcileError> {
    let namespace = repo.namespace().unwrap_or_default();
    let secret_ref = repo.spec.secret_ref.as_ref();
    let found = referenced_secret(ctx.source.client(), &namespace, secret_ref).await?;
    Ok(found.map(|(_, data)| data))
}

/// `username` and `password` of a Secret, when it has both.
fn basic_auth(data: &BTreeMap<String, Vec<u8>>) -> Option<(String, String)> {
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    Some((text("username")?, text("password")?))
}

/// Pulls `<spec.url>/<chart>` at the highest tag within `spec.version` from an OCI
/// HelmRepository; the source revision is the chart manifest's digest.
async fn pull_from_registry(
    chart: &HelmChart,
    ctx: &Context,
    repo: &HelmRepository,
) -> Result<(String, String, Vec<u8>, String), ReconcileError> {
    let url = format!(
        "{}/{}",
        repo.spec.url.trim_end_matches('/'),
        chart.spec.chart
    );
    let registry = ferroflux_source::oci::parse_url(&url)
        .map_err(|e| ReconcileError::stalling(CHART_PULL_ERROR, format!("invalid chart URL: {e}")))?
        .registry()
        .to_string();
    let mut auth = ferroflux_source::oci::OciAuth::Anonymous;
    if let Some(data) = repository_secret(ctx, repo).await? {
        if let Some(config) = data.get(".dockerconfigjson") {
            auth = ferroflux_source::oci::auth_from_dockerconfigjson(config, &registry).map_err(
                |e| ReconcileError::stalling(reason::AUTHENTICATION_FAILED, e.to_string()),
            )?;
        } else if let Some((username, password)) = basic_auth(&data) {
            auth = ferroflux_source::oci::OciAuth::Basic { username, password };
        }
    }
    let options = ferroflux_source::oci::OciOptions {
        auth,
        insecure: repo.spec.insecure == Some(true),
        ..Default::default()
    };
    let client = ferroflux_source::oci::OciClient::new(&options)
        .map_err(|e| ReconcileError::generic(CHART_PULL_ERROR, e.to_string()))?;
    let range = chart.spec.version.as_deref().unwrap_or("*");
    let (version, pulled) = client.pull_helm_chart(&url, range).await.map_err(|e| {
        let why = if matches!(e, ferroflux_source::oci::OciError::Auth { .. }) {
            reason::AUTHENTICATION_FAILED
        } else {
            CHART_PULL_ERROR
        };
        ReconcileError::generic(why, format!("failed to pull chart from '{url}': {e}"))
    })?;
    if let Some(verify) = &chart.spec.verify {
        verify_chart(chart, ctx, verify, &client, &url, &pulled.digest).await?;
    }
    Ok((
        chart.spec.chart.clone(),
        version,
        pulled.layer,
        pulled.digest,
    ))
}

/// Checks the cosign signature of the chart manifest `digest` with the `*.pub` keys of the
/// verify `secretRef`.
async fn verify_chart(
    chart: &HelmChart,
    ctx: &Context,
    verify: &ferroflux_api::source::OCIRepositoryVerification,
    client: &ferroflux_source::oci::OciClient,
    url: &str,
    digest: &str,
) -> Result<(), ReconcileError> {
    use ferroflux_source::oci::cosign;
    let namespace = chart.namespace().unwrap_or_default();
    let keys = crate::ocirepository::cosign_keys(ctx.source.client(), &namespace, verify).await?;
    cosign::verify(client, url, digest, &keys)
        .await
        .map(|_| ())
        .map_err(|e| {
            ReconcileError::generic(
                reason::VERIFICATION_ERROR,
                format!("failed to verify the signature using provider 'cosign': {e}"),
            )
        })
}

#[derive(serde::Deserialize)]
struct ChartYaml {
    name: String,
    version: String,
}

fn chart_metadata(dir: &Path) -> Result<(String, String), ReconcileError> {
    // Named relative to the chart: the directory is a temp dir, and a message must not change
    // from one reconcile to the next.
    let bad =
        |why: String| ReconcileError::stalling(CHART_PACKAGE_ERROR, format!("Chart.yaml: {why}"));
    // Chart content is untrusted: read without following any symlink.
    let fs = crate::rootfs::RootedFs::new(dir).map_err(|e| bad(e.to_string()))?;
    let text = ferroflux_kustomize::fs::FileSystem::read(&fs, Path::new("Chart.yaml"))
        .and_then(|bytes| String::from_utf8(bytes).map_err(std::io::Error::other))
        .map_err(|e| bad(e.to_string()))?;
    let meta: ChartYaml =
        ferroflux_gocompat::yaml::from_str(&text).map_err(|e| bad(format!("not a chart: {e}")))?;
    if meta.name.is_empty() || meta.name.contains(['/', '\\']) || meta.name.starts_with('.') {
        return Err(bad(format!("invalid chart name '{}'", meta.name)));
    }
    Ok((meta.name, meta.version))
}

fn merge_values_files(
    chart_dir: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<(), ReconcileError> {
    let fail = |why: String| ReconcileError::stalling(CHART_PACKAGE_ERROR, why);
    // Values files are artifact content: read without following any symlink.
    let fs = crate::rootfs::RootedFs::new(chart_dir)
        .map_err(|e| fail(format!("chart directory: {e}")))?;
    let mut merged = Value::Object(Default::default());
    for file in files {
        let Some(path) = inside(chart_dir, file.trim_start_matches("./")) else {
            return Err(fail(format!(
                "values file '{file}' is not a path inside the chart"
            )));
        };
        let read = ferroflux_kustomize::fs::FileSystem::read(&fs, &path)
            .and_then(|bytes| String::from_utf8(bytes).map_err(std::io::Error::other));
        let text = match read {
            Ok(text) => text,
            Err(_) if ignore_missing => continue,
            Err(e) => {
                return Err(fail(format!(
                    "values file '{file}': {e}; set ignoreMissingValuesFiles to skip it"
                )));
            }
        };
        let values: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            ferroflux_gocompat::yaml::from_str(&text)
                .map_err(|e| fail(format!("values file '{file}' is not YAML: {e}")))?
        };
        merge_values(&mut merged, values);
    }
    let yaml = serde_saphyr::to_string(&merged).map_err(|e| fail(format!("merged values: {e}")))?;
    fs.write(&chart_dir.join("values.yaml"), yaml.as_bytes())
        .map_err(|e| fail(format!("writing values.yaml: {e}")))
}

/// `root/rel` when `rel` is a relative path that stays under `root` (no `..`, not absolute).
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    use std::path::Component;
    let rel = Path::new(rel);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    plain.then(|| root.join(rel))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target: PathBuf = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn summarize(
    chart: &HelmChart,
    result: Result<Built, ReconcileError>,
    at: Time,
) -> HelmChartStatus {
    let mut status = chart.status.clone().unwrap_or_default();
    let generation = chart.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    let set = |conds: &mut Vec<_>, type_, state, reason, message: &str| {
        conditions::mark(conds, type_, state, reason, message, generation, &at);
    };
    match result {
        Ok(built) => {
            let message = success_message(&built);
            let why = if built.pulled {
                CHART_PULL_SUCCEEDED
            } else {
                CHART_PACKAGE_SUCCEEDED
            };
            set_source_conditions(&mut conds, Ok((why, &message)), generation, &at);
            if built.verified {
                let verified = format!("verified signature of version {}", built.artifact.revision);
                set(
                    &mut conds,
                    condition_type::SOURCE_VERIFIED,
                    "True",
                    SUCCEEDED,
                    &verified,
                );
            } else {
                conditions::delete(&mut conds, condition_type::SOURCE_VERIFIED);
            }
            status.url = Some(built.artifact.url.clone());
            status.artifact = Some(built.artifact);
            status.observed_chart_name = Some(built.chart_name);
            status.observed_source_artifact_revision = Some(built.source_revision);
            status.observed_values_files = chart.spec.values_files.clone();
        }
        Err(err) => {
            set_source_conditions(&mut conds, Err(&err), generation, &at);
            if err.reason == reason::VERIFICATION_ERROR {
                // The chart was fetched; its signature is what failed.
                conditions::delete(&mut conds, condition_type::FETCH_FAILED);
                set(
                    &mut conds,
                    condition_type::SOURCE_VERIFIED,
                    "False",
                    err.reason,
                    &err.message,
                );
            }
        }
    }
    status.conditions = Some(conds);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn revision_strategy_appends_the_source_hash() {
        let source = "main@sha1:0123456789abcdef0123456789abcdef01234567";
        assert_eq!(chart_revision("6.5.0", None, source), "6.5.0");
        assert_eq!(
            chart_revision("6.5.0", Some("ChartVersion"), source),
            "6.5.0"
        );
        assert_eq!(
            chart_revision("6.5.0", Some("Revision"), source),
            "6.5.0+0123456789ab"
        );
    }

    #[test]
    fn values_merge_maps_deeply_and_replace_the_rest() {
        let mut base =
            json!({"image": {"tag": "1", "pullPolicy": "Always"}, "ports": [80], "replicas": 1});
        merge_values(
            &mut base,
            json!({"image": {"tag": "2"}, "ports": [443], "extra": true}),
        );
        assert_eq!(
            base,
            json!({"image": {"tag": "2", "pullPolicy": "Always"}, "ports": [443], "replicas": 1, "extra": true})
        );
    }

    #[test]
    fn paths_must_stay_inside_the_root() {
        let root = Path::new("/srv/chart");
        assert_eq!(
            inside(root, "values-prod.yaml"),
            Some(root.join("values-prod.yaml"))
        );
        assert_eq!(
            inside(root, "charts/podinfo"),
            Some(root.join("charts/podinfo"))
        );
        assert_eq!(inside(root, "../secrets.yaml"), None);
        assert_eq!(inside(root, "/etc/passwd"), None);
    }

    #[test]
    fn an_alias_bomb_values_file_stalls_quickly() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("values-bomb.yaml"),
            include_str!("../../gocompat/testdata/alias-bomb.yaml"),
        )
        .expect("write");
        let start = std::time::Instant::now();
        let err =
            merge_values_files(dir.path(), &["values-bomb.yaml".into()], false).expect_err("bomb");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);
        assert_eq!(
            err.message,
            "values file 'values-bomb.yaml' is not YAML: yaml: document contains excessive aliasing"
        );
    }

    #[test]
    fn values_files_behind_symlinks_are_neither_read_nor_written_through() {
        let host = tempfile::tempdir().expect("temp dir");
        let chart = host.path().join("chart");
        std::fs::create_dir(&chart).expect("mkdir");
        let secret = host.path().join("host-secret.yaml");
        std::fs::write(&secret, "token: hunter2\n").expect("write");
        std::os::unix::fs::symlink(&secret, chart.join("values-prod.yaml")).expect("symlink");
        let err = merge_values_files(&chart, &["values-prod.yaml".into()], false)
            .expect_err("symlink refused");
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        std::os::unix::fs::symlink(&secret, chart.join("values.yaml")).expect("symlink");
        std::fs::write(chart.join("extra.yaml"), "replicas: 2\n").expect("write");
        merge_values_files(&chart, &["extra.yaml".into()], false).expect_err("no write-through");
        assert_eq!(
            std::fs::read_to_string(&secret).expect("read"),
            "token: hunter2\n"
        );
    }

    #[test]
    fn chart_metadata_refuses_names_that_leave_the_package() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "apiVersion: v2\nname: ../evil\nversion: 1.0.0\n",
        )
        .expect("write");
        assert!(chart_metadata(dir.path()).is_err());
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
        )
        .expect("write");
        assert_eq!(
            chart_metadata(dir.path()).expect("valid"),
            ("podinfo".into(), "1.0.0".into())
        );
    }
}
