//! The HelmChart reconciler (part of `ferroflux controller source`): from a HelmRepository,
//! pick the semver-highest chart version within `spec.version` in the repository's index
//! artifact and pull it; from a GitRepository or Bucket, package the chart directory at
//! `spec.chart` out of the source's artifact. `valuesFiles` are merged, in order, into the
//! chart's `values.yaml`. The packaged chart is the artifact, revision the chart version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_helm::{chartutil, loader, package};
use kube::api::Api;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tracing::info;

use ferroflux_api::meta::{Artifact, Time, condition_type, reason};
use ferroflux_api::source::{Bucket, GitRepository, HelmChart, HelmChartStatus, HelmRepository};
use ferroflux_source::artifact::{ExtractOptions, IgnoreRules};
use ferroflux_source::helm_index::{self, HelmAuth};
use ferroflux_source::storage::Storage;

use crate::conditions;
use crate::ocirepository::referenced_secret;
use crate::rootfs::RootedFs;
use crate::runtime::SUCCEEDED;
use crate::runtime::{Note, ReconcileError, Reconciler, set_source_conditions};
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
    package::summary(!built.pulled, &built.chart_name, &built.artifact.revision)
}

/// Where the chart comes from.
enum Origin {
    /// An HTTP HelmRepository and its index artifact.
    Index(HelmRepository, Artifact),
    /// An OCI HelmRepository: charts come from the registry, there is no index.
    Registry(HelmRepository),
    /// The artifact of a GitRepository or Bucket holding the chart directory.
    Tree(Artifact),
}

/// A chart fetched, before it is stored.
struct Fetched {
    name: String,
    version: String,
    source_revision: String,
    verified: bool,
    content: Content,
}

enum Content {
    /// A chart archive pulled from a repository.
    Archive(Vec<u8>),
    /// A chart directory in an extracted source artifact.
    Dir(PathBuf),
}

/// The source object's artifact, or a waiting error while it has none.
async fn source_artifact(chart: &HelmChart, ctx: &Context) -> Result<Origin, ReconcileError> {
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
    let client = ctx.source.client().clone();
    let (artifact, repository) = match source.kind.as_str() {
        "HelmRepository" => {
            let api: Api<HelmRepository> = Api::namespaced(client, &namespace);
            let repo = api.get(&source.name).await.map_err(not_found)?;
            if repo.spec.repository_type.as_deref() == Some("oci") {
                return Ok(Origin::Registry(repo));
            }
            (
                repo.status.as_ref().and_then(|s| s.artifact.clone()),
                Some(repo),
            )
        }
        "GitRepository" => {
            let api: Api<GitRepository> = Api::namespaced(client, &namespace);
            let repo = api.get(&source.name).await.map_err(not_found)?;
            (repo.status.and_then(|s| s.artifact), None)
        }
        "Bucket" => {
            let api: Api<Bucket> = Api::namespaced(client, &namespace);
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
    Ok(match repository {
        Some(repo) => Origin::Index(repo, artifact),
        None => Origin::Tree(artifact),
    })
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

/// Owns `FetchFailed` and the artifact: fetch, skip when current, package, store.
async fn reconcile_chart(chart: &HelmChart, ctx: &Context) -> Result<Built, ReconcileError> {
    let workdir = tempfile::tempdir().map_err(|e| {
        ReconcileError::generic(STORAGE_FAILED, format!("temporary directory: {e}"))
    })?;
    let fetched = match source_artifact(chart, ctx).await? {
        Origin::Index(repo, index) => pull_from_repository(chart, ctx, &repo, &index).await?,
        Origin::Registry(repo) => pull_from_registry(chart, ctx, &repo).await?,
        Origin::Tree(artifact) => unpack_source(chart, ctx, &artifact, workdir.path()).await?,
    };
    let pulled = matches!(fetched.content, Content::Archive(_));
    let revision = if pulled {
        fetched.version.clone()
    } else {
        package::chart_revision(
            &fetched.version,
            chart.spec.reconcile_strategy.as_deref(),
            &fetched.source_revision,
        )
    };
    let built = |artifact| Built {
        artifact,
        chart_name: fetched.name.clone(),
        source_revision: fetched.source_revision.clone(),
        pulled,
        verified: fetched.verified,
    };
    // A packaged chart is current only while it was built from the same source revision.
    let observed_source = chart
        .status
        .as_ref()
        .and_then(|s| s.observed_source_artifact_revision.as_deref());
    if let Some(artifact) = is_current(chart, &revision, &fetched.name, &ctx.source.storage)
        && (pulled || observed_source == Some(fetched.source_revision.as_str()))
    {
        return Ok(built(artifact));
    }
    let key = ctx.source.key(chart);
    let values_files = chart.spec.values_files.as_deref();
    let chart_dir = match &fetched.content {
        Content::Archive(tgz) if !package::needs_packaging(pulled, values_files) => {
            let stored = ctx
                .source
                .storage
                .store_bytes(&key, &revision, tgz)
                .map_err(store_error)?;
            return Ok(built(crate::source::status_artifact(stored)));
        }
        Content::Archive(tgz) => extract_archive(tgz, &fetched, workdir.path())?,
        Content::Dir(dir) => dir.clone(),
    };
    if let Some(files) = values_files {
        write_values_files(
            &chart_dir,
            files,
            chart.spec.ignore_missing_values_files == Some(true),
        )?;
    }
    // Helm archives hold the chart under a top directory named after it. The tree came out of
    // `extract_tar_gz`, which drops symlinks, so moving it carries none into the package.
    let package_root = workdir.path().join("package");
    std::fs::create_dir_all(&package_root)
        .and_then(|()| std::fs::rename(&chart_dir, package_root.join(&fetched.name)))
        .map_err(|e| {
            ReconcileError::generic(
                CHART_PACKAGE_ERROR,
                format!("packaging chart {}: {e}", fetched.name),
            )
        })?;
    let stored = ctx
        .source
        .storage
        .store_dir(&key, &revision, &package_root, &IgnoreRules::none())
        .map_err(store_error)?;
    info!(chart = %fetched.name, %revision, "stored chart");
    Ok(built(crate::source::status_artifact(stored)))
}

fn store_error(e: ferroflux_source::storage::StorageError) -> ReconcileError {
    ReconcileError::generic(STORAGE_FAILED, format!("failed to store artifact: {e}"))
}

/// Extracts a pulled chart archive under `workdir`; the chart is its top directory.
fn extract_archive(
    tgz: &[u8],
    fetched: &Fetched,
    workdir: &Path,
) -> Result<PathBuf, ReconcileError> {
    let dest = workdir.join("chart");
    ferroflux_source::artifact::extract_tar_gz(tgz, &dest, &ExtractOptions::default()).map_err(
        |e| {
            ReconcileError::generic(
                CHART_PULL_ERROR,
                format!("chart {} {}: {e}", fetched.name, fetched.version),
            )
        },
    )?;
    Ok(dest.join(&fetched.name))
}

/// Downloads the Git or bucket artifact under `workdir` and finds the chart at `spec.chart`.
async fn unpack_source(
    chart: &HelmChart,
    ctx: &Context,
    source: &Artifact,
    workdir: &Path,
) -> Result<Fetched, ReconcileError> {
    let dest = workdir.join("source");
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
    let package_error = |why: String| ReconcileError::stalling(CHART_PACKAGE_ERROR, why);
    // Chart content is untrusted: read without following any symlink.
    let fs = RootedFs::new(&dest).map_err(|e| package_error(format!("source artifact: {e}")))?;
    let dir = loader::chart_dir(&fs, &dest, &chart.spec.chart).ok_or_else(|| {
        package_error(format!(
            "no chart (Chart.yaml) at path '{}' in {} '{}'",
            chart.spec.chart, chart.spec.source_ref.kind, chart.spec.source_ref.name
        ))
    })?;
    let metadata = chartutil::load_chartfile(&fs, &dir.join(chartutil::CHARTFILE_NAME))
        .map_err(|e| package_error(e.to_string()))?;
    Ok(Fetched {
        name: metadata.name,
        version: metadata.version,
        source_revision: source.revision.clone(),
        verified: false,
        content: Content::Dir(dir),
    })
}

/// Selects the version in the repository's stored index and downloads the chart archive.
async fn pull_from_repository(
    chart: &HelmChart,
    ctx: &Context,
    repo: &HelmRepository,
    index_artifact: &Artifact,
) -> Result<Fetched, ReconcileError> {
    checked_chart_name(chart)?;
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
    Ok(Fetched {
        name: chart.spec.chart.clone(),
        version: version.version.clone(),
        source_revision: index_artifact.revision.clone(),
        verified: false,
        content: Content::Archive(tgz),
    })
}

/// `spec.chart` of a repository chart, checked as Flux does: it names a path of the pulled
/// archive and a part of the registry URL, so `..` and the like are refused.
fn checked_chart_name(chart: &HelmChart) -> Result<(), ReconcileError> {
    loader::validate_chart_name(&chart.spec.chart)
        .map_err(|e| ReconcileError::stalling(CHART_PULL_ERROR, e.to_string()))
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
) -> Result<Fetched, ReconcileError> {
    checked_chart_name(chart)?;
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
    Ok(Fetched {
        name: chart.spec.chart.clone(),
        version,
        source_revision: pulled.digest,
        verified: chart.spec.verify.is_some(),
        content: Content::Archive(pulled.layer),
    })
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

/// Merges `valuesFiles` into the chart's `values.yaml`. Values files are artifact content:
/// read and written without following any symlink.
fn write_values_files(
    chart_dir: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<(), ReconcileError> {
    let fail = |why: String| ReconcileError::stalling(CHART_PACKAGE_ERROR, why);
    let fs = RootedFs::new(chart_dir).map_err(|e| fail(format!("chart directory: {e}")))?;
    let merged = chartutil::merge_values_files(&fs, chart_dir, files, ignore_missing)
        .map_err(|e| fail(e.to_string()))?;
    let yaml = chartutil::values_yaml(&merged).map_err(|e| fail(e.to_string()))?;
    fs.write(&chart_dir.join(chartutil::VALUESFILE_NAME), yaml.as_bytes())
        .map_err(|e| fail(format!("writing values.yaml: {e}")))
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

    #[test]
    fn values_files_behind_symlinks_are_neither_read_nor_written_through() {
        let host = tempfile::tempdir().expect("temp dir");
        let chart = host.path().join("chart");
        std::fs::create_dir(&chart).expect("mkdir");
        let secret = host.path().join("host-secret.yaml");
        std::fs::write(&secret, "token: hunter2\n").expect("write");
        std::os::unix::fs::symlink(&secret, chart.join("values-prod.yaml")).expect("symlink");
        let err = write_values_files(&chart, &["values-prod.yaml".into()], false)
            .expect_err("symlink refused");
        assert_eq!(err.retry, crate::runtime::Retry::Stalling);
        assert!(!err.message.contains("hunter2"), "{}", err.message);
        std::os::unix::fs::symlink(&secret, chart.join("values.yaml")).expect("symlink");
        std::fs::write(chart.join("extra.yaml"), "replicas: 2\n").expect("write");
        write_values_files(&chart, &["extra.yaml".into()], false).expect_err("no write-through");
        assert_eq!(
            std::fs::read_to_string(&secret).expect("read"),
            "token: hunter2\n"
        );
    }

    #[test]
    fn merged_values_replace_the_charts_values_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("values.yaml"), "replicas: 1\nport: 80\n").expect("write");
        std::fs::write(dir.path().join("prod.yaml"), "replicas: 3\n").expect("write");
        let files = ["values.yaml".to_string(), "prod.yaml".to_string()];
        write_values_files(dir.path(), &files, false).expect("merged");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("values.yaml")).expect("read"),
            "port: 80\nreplicas: 3\n"
        );
    }
}
