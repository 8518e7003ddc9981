//! The ArtifactGenerator (Flux's source-watcher) end to end against the API server (embedded or
//! kube-apiserver, see `common`): two GitRepositories served by git http-backend are composed
//! into an ExternalArtifact served by the artifact server, a Kustomization applies it, an
//! artifact dropped from the spec is garbage collected, and a copy that tries to leave the
//! source gives a stable failure. The generated CRD matches upstream's.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::artifactgenerator::{
    ArtifactGenerator, ArtifactGeneratorSpec, CopyOperation, GENERATOR_LABEL, OutputArtifact,
    SourceReference,
};
use ferroflux_api::kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec};
use ferroflux_api::meta::Artifact;
use ferroflux_api::source::{ExternalArtifact, GitRepository, GitRepositoryRef, GitRepositorySpec};
use ferroflux_controllers::kustomization::reconciler;
use ferroflux_controllers::{artifactgenerator, gitrepository};
use ferroflux_source::artifact::{ExtractOptions, extract_tar_gz};
use ferroflux_testpeers::{GitHttp, GitWork, require};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn copy(from: &str, to: &str, exclude: &[&str]) -> CopyOperation {
    CopyOperation {
        from: from.into(),
        to: to.into(),
        exclude: (!exclude.is_empty()).then(|| exclude.iter().map(|s| s.to_string()).collect()),
        strategy: None,
    }
}

fn source(alias: &str, name: &str) -> SourceReference {
    SourceReference {
        alias: alias.into(),
        kind: "GitRepository".into(),
        name: name.into(),
        namespace: None,
    }
}

fn generator(artifacts: Vec<OutputArtifact>) -> ArtifactGenerator {
    let mut object = ArtifactGenerator::new(
        "composite",
        ArtifactGeneratorSpec {
            sources: vec![source("app", "app"), source("config", "config")],
            artifacts,
            ..Default::default()
        },
    );
    object.metadata.namespace = Some(common::NS.into());
    object
}

/// Starts the GitRepository and ArtifactGenerator reconcilers (and the Kustomization one with
/// `kustomizations`) for the rest of the test.
fn start(cluster: &common::Cluster, kustomizations: bool) {
    let client = &cluster.client;
    tokio::spawn(gitrepository::run(
        Arc::new(gitrepository::Context::new(
            client.clone(),
            cluster.storage.clone(),
        )),
        std::future::pending(),
    ));
    tokio::spawn(artifactgenerator::run(
        Arc::new(artifactgenerator::Context::new(
            client.clone(),
            cluster.storage.clone(),
        )),
        std::future::pending(),
    ));
    if kustomizations {
        tokio::spawn(reconciler::run(
            Arc::new(reconciler::Context::new(
                client.clone(),
                cluster.config.clone(),
                reconciler::Options::default(),
            )),
            std::future::pending(),
        ));
    }
}

/// Polls the ArtifactGenerator `composite` until `done` holds.
async fn wait_generator(
    generators: &Api<ArtifactGenerator>,
    what: &str,
    done: impl Fn(&ArtifactGenerator) -> bool,
) -> ArtifactGenerator {
    wait(
        what,
        || async { generators.get("composite").await.expect("reads") },
        done,
    )
    .await
}

/// Polls `get` until `done` holds (30 s at most), returning the last value.
async fn wait<T, F, Fut>(what: &str, mut get: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
    T: std::fmt::Debug,
{
    let mut last = get().await;
    for _ in 0..300 {
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = get().await;
    }
    panic!("timed out waiting for {what}: {last:#?}");
}

/// A Git repository on the test server with `files`, and a GitRepository for it in [`common::NS`].
async fn git_source(server: &GitHttp, client: &kube::Client, name: &str, files: &[(&str, &str)]) {
    let bare = server.repos().create(name).expect("bare repository");
    let work = GitWork::new(&bare).expect("work tree");
    for (path, text) in files {
        work.write(path, text).expect("write");
    }
    work.commit("init").expect("commit");
    work.push().expect("push");
    let api: Api<GitRepository> = Api::namespaced(client.clone(), common::NS);
    let repo = GitRepository::new(
        name,
        GitRepositorySpec {
            url: server.url(name),
            interval: "10m".into(),
            reference: Some(GitRepositoryRef {
                branch: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    api.create(&PostParams::default(), &repo)
        .await
        .expect("GitRepository created");
}

/// Downloads and unpacks an ExternalArtifact's artifact; returns its files, sorted.
async fn artifact_files(ea: &ExternalArtifact, into: &Path) -> Vec<String> {
    let artifact = ea
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("the ExternalArtifact has an artifact");
    let body = reqwest::get(&artifact.url)
        .await
        .expect("the artifact server answers")
        .bytes()
        .await
        .expect("body");
    assert_eq!(
        Some(ferroflux_source::sha256_digest(&body)),
        artifact.digest,
        "the served file has the published digest"
    );
    extract_tar_gz(&body[..], into, &ExtractOptions::default()).expect("a valid tarball");
    let mut files = Vec::new();
    list(into, Path::new(""), &mut files);
    files.sort();
    files
}

fn list(root: &Path, rel: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(root.join(rel)).expect("list") {
        let entry = entry.expect("entry");
        let path = rel.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            list(root, &path, out);
        } else {
            out.push(path.display().to_string());
        }
    }
}

fn configmap(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: flux-system}}\ndata: {{from: {name}}}\n"
    )
}

/// The ExternalArtifact `my-app`: labelled with and owned by the generator `uid`, its
/// artifact the copies with their excludes; returns the artifact.
async fn my_app_is_labelled_owned_and_holds_the_copies(
    artifacts: &Api<ExternalArtifact>,
    uid: &str,
) -> Artifact {
    let ea = artifacts
        .get("my-app")
        .await
        .expect("the ExternalArtifact exists");
    assert_eq!(
        ea.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(GENERATOR_LABEL)),
        Some(&uid.to_string())
    );
    let owner = ea
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("owned by the generator");
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ArtifactGenerator", uid)
    );
    let source_ref = ea.spec.source_ref.clone().expect("sourceRef");
    assert_eq!(
        (source_ref.kind.as_str(), source_ref.name.as_str()),
        ("ArtifactGenerator", "composite")
    );
    let artifact = ea
        .status
        .as_ref()
        .and_then(|s| s.artifact.clone())
        .expect("artifact");
    let digest = artifact.digest.clone().expect("digest");
    assert_eq!(artifact.revision, format!("latest@{digest}"));
    assert!(common::condition(&ea, "Ready").is_some_and(|c| c.status == "True"));
    let unpacked = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        artifact_files(&ea, unpacked.path()).await,
        ["app/app.yaml", "app/settings.yaml", "app/sub/db.yaml"]
    );

    artifact
}

/// `revision: '@config'` takes the source's revision; the artifact holds the copied tree.
async fn config_only_takes_the_revision_of_its_source(
    client: &kube::Client,
    artifacts: &Api<ExternalArtifact>,
) {
    let config_only = artifacts.get("config-only").await.expect("exists");
    let config_revision = config_only
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| a.revision.clone());
    let repo: GitRepository = Api::namespaced(client.clone(), common::NS)
        .get("config")
        .await
        .expect("reads");
    assert_eq!(
        config_revision,
        repo.status.and_then(|s| s.artifact).map(|a| a.revision),
        "revision: '@config' takes the source's revision"
    );
    let unpacked = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        artifact_files(&config_only, unpacked.path()).await,
        ["envs/prod/settings.yaml"]
    );
}

/// A Kustomization whose source is the ExternalArtifact `my-app` applies `revision`.
async fn a_kustomization_applies_the_external_artifact(client: &kube::Client, revision: &str) {
    let kustomizations: Api<Kustomization> = Api::namespaced(client.clone(), common::NS);
    let mut ks = Kustomization::new(
        "my-app",
        KustomizationSpec {
            interval: "10m".into(),
            path: Some("./app".into()),
            prune: true,
            source_ref: CrossNamespaceSourceReference {
                kind: "ExternalArtifact".into(),
                name: "my-app".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    ks.metadata.namespace = Some(common::NS.into());
    kustomizations
        .create(&PostParams::default(), &ks)
        .await
        .expect("Kustomization created");
    let applied = wait(
        "the Kustomization to apply the ExternalArtifact",
        || async { kustomizations.get("my-app").await.expect("reads") },
        |k: &Kustomization| common::condition(k, "Ready").is_some_and(|c| c.status == "True"),
    )
    .await;
    assert_eq!(
        applied.status.and_then(|s| s.last_applied_revision),
        Some(revision.to_string())
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), common::NS);
    for name in ["app", "db", "settings"] {
        configmaps
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("ConfigMap {name} applied from the ExternalArtifact: {e}"));
    }
}

/// An artifact dropped from the spec is garbage collected with its files; the one kept has
/// the same `digest`.
async fn a_dropped_artifact_is_garbage_collected(
    cluster: &common::Cluster,
    generators: &Api<ArtifactGenerator>,
    object: &ArtifactGenerator,
    uid: &str,
    digest: String,
) {
    let artifacts: Api<ExternalArtifact> = Api::namespaced(cluster.client.clone(), common::NS);
    let stored_dir = cluster
        .storage
        .root()
        .join(format!("externalartifact/{}/config-only", common::NS));
    assert!(stored_dir.is_dir());
    let patch = json!({"spec": {"artifacts": [serde_json::to_value(&object.spec.artifacts[0]).expect("json")]}});
    generators
        .patch("composite", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    wait(
        "the dropped ExternalArtifact to be deleted",
        || async {
            artifacts
                .list(&ListParams::default().labels(&format!("{GENERATOR_LABEL}={uid}")))
                .await
                .expect("lists")
                .items
                .into_iter()
                .map(|ea| ea.metadata.name.unwrap_or_default())
                .collect::<Vec<_>>()
        },
        |names: &Vec<String>| names == &["my-app".to_string()],
    )
    .await;
    assert!(!stored_dir.exists(), "its files are removed");
    let generated = wait_generator(
        generators,
        "the inventory to drop the artifact",
        |g: &ArtifactGenerator| {
            g.status
                .as_ref()
                .and_then(|s| s.inventory.as_ref())
                .is_some_and(|i| i.len() == 1)
        },
    )
    .await;
    assert_eq!(
        generated
            .status
            .and_then(|s| s.inventory)
            .map(|i| i[0].digest.clone()),
        Some(digest),
        "the same content gives the same digest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sources_with_copy_and_exclude_make_an_external_artifact_a_kustomization_applies() {
    let server = require!(GitHttp::start(None));
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    git_source(
        &server,
        &client,
        "app",
        &[
            ("deploy/app.yaml", &configmap("app")),
            ("deploy/sub/db.yaml", &configmap("db")),
            ("deploy/README.md", "not a manifest"),
            ("deploy/testdata/broken.yaml", "{{ not yaml"),
        ],
    )
    .await;
    git_source(
        &server,
        &client,
        "config",
        &[("envs/prod/settings.yaml", &configmap("settings"))],
    )
    .await;
    start(&cluster, true);

    let generators: Api<ArtifactGenerator> = Api::namespaced(client.clone(), common::NS);
    let object = generator(vec![
        OutputArtifact {
            name: "my-app".into(),
            copy: vec![
                copy(
                    "@app/deploy/**",
                    "@artifact/app/",
                    &["*.md", "**/testdata/**"],
                ),
                copy(
                    "@config/envs/prod/settings.yaml",
                    "@artifact/app/settings.yaml",
                    &[],
                ),
            ],
            ..Default::default()
        },
        OutputArtifact {
            name: "config-only".into(),
            revision: Some("@config".into()),
            copy: vec![copy("@config/envs/", "@artifact/", &[])],
            ..Default::default()
        },
    ]);
    generators
        .create(&PostParams::default(), &object)
        .await
        .expect("ArtifactGenerator created");
    let generated = wait_generator(
        &generators,
        "the generator to be Ready",
        |g: &ArtifactGenerator| common::condition(g, "Ready").is_some_and(|c| c.status == "True"),
    )
    .await;
    let status = generated.status.clone().expect("status");
    let ready_condition = common::condition(&generated, "Ready").expect("Ready");
    assert_eq!(ready_condition.reason, "Succeeded");
    assert_eq!(
        ready_condition.message,
        "reconciliation succeeded, generated 2 artifact(s)"
    );
    assert!(
        status
            .observed_sources_digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{status:?}"
    );
    let inventory = status.inventory.clone().unwrap_or_default();
    let names: Vec<&str> = inventory.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["my-app", "config-only"]);

    let artifacts: Api<ExternalArtifact> = Api::namespaced(client.clone(), common::NS);
    let uid = generated.metadata.uid.clone().expect("uid");
    let artifact = my_app_is_labelled_owned_and_holds_the_copies(&artifacts, &uid).await;
    let digest = artifact.digest.clone().expect("digest");
    assert_eq!(inventory[0].digest, digest);
    config_only_takes_the_revision_of_its_source(&client, &artifacts).await;
    a_kustomization_applies_the_external_artifact(&client, &artifact.revision).await;
    a_dropped_artifact_is_garbage_collected(&cluster, &generators, &object, &uid, digest).await;
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_leaves_the_source_fails_with_a_stable_condition_and_writes_nothing() {
    let server = require!(GitHttp::start(None));
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    git_source(
        &server,
        &client,
        "app",
        &[("deploy/app.yaml", &configmap("app"))],
    )
    .await;
    git_source(
        &server,
        &client,
        "config",
        &[("settings.yaml", &configmap("s"))],
    )
    .await;
    start(&cluster, false);
    let generators: Api<ArtifactGenerator> = Api::namespaced(client.clone(), common::NS);
    let object = generator(vec![OutputArtifact {
        name: "escape".into(),
        copy: vec![
            copy("@app/deploy/app.yaml", "@artifact/", &[]),
            copy("@config/../../../../etc/passwd", "@artifact/", &[]),
        ],
        ..Default::default()
    }]);
    generators
        .create(&PostParams::default(), &object)
        .await
        .expect("created");
    let failed = |g: &ArtifactGenerator| {
        common::condition(g, "Ready")
            .is_some_and(|c| c.status == "False" && c.reason == "BuildFailed")
    };
    let first = wait_generator(&generators, "the generator to fail", failed).await;
    let condition = common::condition(&first, "Ready").expect("Ready");
    assert_eq!(condition.reason, "BuildFailed");
    assert_eq!(
        condition.message,
        "escape build failed: failed to apply copy operations: failed to apply copy operation \
         from '@config/../../../../etc/passwd' to '@artifact/': path ../../../../etc/passwd is \
         outside the source artifact"
    );
    let artifacts: Api<ExternalArtifact> = Api::namespaced(client.clone(), common::NS);
    assert!(artifacts.get_opt("escape").await.expect("reads").is_none());
    assert!(
        !cluster
            .storage
            .root()
            .join(format!("externalartifact/{}/escape", common::NS))
            .exists()
    );

    // A requested reconciliation fails the same way: the condition does not change.
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}});
    generators
        .patch("composite", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotated");
    let again = wait_generator(
        &generators,
        "the requested reconciliation",
        |g: &ArtifactGenerator| {
            g.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some("now")
        },
    )
    .await;
    assert_eq!(
        common::condition(&again, "Ready"),
        Some(condition),
        "same reason, message and transition time"
    );

    // A destination that climbs out of the artifact is refused as well.
    let patch = json!({"spec": {"artifacts": [{"name": "escape", "copy": [
        {"from": "@app/deploy/app.yaml", "to": "@artifact/../../outside.yaml"}]}]}});
    generators
        .patch("composite", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let moved = wait_generator(
        &generators,
        "the new generation to fail",
        |g: &ArtifactGenerator| {
            common::condition(g, "Ready").is_some_and(|c| {
                c.status == "False" && c.observed_generation == g.metadata.generation
            })
        },
    )
    .await;
    let message = common::condition(&moved, "Ready")
        .map(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.ends_with("invalid copy destination '@artifact/../../outside.yaml': the path leaves the artifact root"),
        "{message}"
    );
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_pattern_generates_one_labelled_external_artifact_per_matched_directory() {
    let server = require!(GitHttp::start(None));
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    git_source(
        &server,
        &client,
        "app",
        &[
            ("apps/Frontend/deploy.yaml", &configmap("frontend")),
            ("apps/backend/deploy.yaml", &configmap("backend")),
        ],
    )
    .await;
    git_source(&server, &client, "config", &[("x.yaml", &configmap("x"))]).await;
    start(&cluster, false);
    let generators: Api<ArtifactGenerator> = Api::namespaced(client.clone(), common::NS);
    let mut object = generator(vec![OutputArtifact {
        name: "{app}-manifests".into(),
        copy: vec![copy("@app/apps/{app}/**", "@artifact/", &[])],
        ..Default::default()
    }]);
    object.spec.path_pattern = Some("@app/apps/{app}".into());
    generators
        .create(&PostParams::default(), &object)
        .await
        .expect("created");
    let generated = wait_generator(
        &generators,
        "the generator to be Ready",
        |g: &ArtifactGenerator| common::condition(g, "Ready").is_some_and(|c| c.status == "True"),
    )
    .await;
    let names: Vec<String> = generated
        .status
        .and_then(|s| s.inventory)
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["frontend-manifests", "backend-manifests"]);
    let artifacts: Api<ExternalArtifact> = Api::namespaced(client.clone(), common::NS);
    let frontend = artifacts
        .get("frontend-manifests")
        .await
        .expect("generated");
    assert_eq!(
        frontend.metadata.labels.as_ref().and_then(|l| l.get("app")),
        Some(&"frontend".to_string()),
        "the lower-cased capture is a label"
    );
    let unpacked = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        artifact_files(&frontend, unpacked.path()).await,
        ["deploy.yaml"],
        "copies read the directory as written (Frontend)"
    );
    cluster.server.shutdown().await;
}

fn upstream_crds() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/upstream-crds")
}

#[test]
fn the_generated_crd_matches_upstream_field_for_field_with_its_cel_rule() {
    let dir = upstream_crds();
    let upstream = dir.join("source.extensions.fluxcd.io_artifactgenerators.yaml");
    if !upstream.is_file() {
        return ferroflux_testpeers::skip(format!("{} is absent", upstream.display()));
    }
    let served = ferroflux_api::crds::find("source.extensions.fluxcd.io", "ArtifactGenerator")
        .expect("ArtifactGenerator is served");
    assert_eq!(served.component, "source-watcher");
    let ours = serde_json::to_value(served.definition()).expect("json");
    let theirs: serde_json::Value =
        ferroflux_gocompat::yaml::from_str(&std::fs::read_to_string(&upstream).expect("reads"))
            .expect("yaml");
    let spec = |crd: &serde_json::Value| {
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    };
    assert_eq!(
        spec(&ours)["x-kubernetes-validations"],
        spec(&theirs)["x-kubernetes-validations"]
    );
    for field in ["names", "scope", "group"] {
        let mut ours = ours["spec"][field].clone();
        let theirs = theirs["spec"][field].clone();
        if field == "names" {
            // Kubernetes fills in the singular and the list kind when they are left out.
            for defaulted in ["singular", "listKind"] {
                if ours.get(defaulted).is_none() {
                    ours[defaulted] = theirs[defaulted].clone();
                }
            }
        }
        assert_eq!(ours, theirs, "spec.{field}");
    }

    match std::process::Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        _ => return ferroflux_testpeers::skip("python3 with PyYAML is needed for compare.py"),
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let file = temp.path().join("ours.yaml");
    std::fs::write(
        &file,
        serde_saphyr::to_string(&served.definition()).expect("yaml"),
    )
    .expect("write");
    let out = std::process::Command::new("python3")
        .arg(dir.join("compare.py"))
        .arg(&file)
        .args(["--kinds", "ArtifactGenerator"])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );
}
