//! The image automation loop end to end (issue 8's seed scenario): Debian's `docker-registry` holds
//! `team-a/podinfo` images, `git http-backend` holds the fleet repository, the API server (embedded
//! or kube-apiserver, see `common`) holds the objects, and the image-reflector (ImageRepository,
//! ImagePolicy) and image-automation reconcilers turn a registry push into a commit on
//! `flux-image-updates`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ferroflux_api::image::{
    CommitSpec, CommitUser, CrossNamespaceSourceReference, GitCheckoutSpec, GitSpec, ImagePolicy,
    ImagePolicyChoice, ImagePolicySpec, ImageRef, ImageRepository, ImageRepositorySpec,
    ImageUpdateAutomation, ImageUpdateAutomationSpec, OrderPolicy, PushSpec, SemVerPolicy,
    TagFilter, UpdateStrategy,
};
use ferroflux_api::meta::{
    Condition, LocalObjectReference, NamespacedObjectReference, RECONCILE_REQUEST_ANNOTATION,
};
use ferroflux_api::source::{GitRepository, GitRepositoryRef, GitRepositorySpec};
use ferroflux_controllers::imagerepository::TagStore;
use ferroflux_controllers::{imagepolicy, imagerepository, imageupdateautomation};
use ferroflux_source::oci::{OciAuth, OciClient};
use ferroflux_testpeers::{Credentials, GitHttp, GitWork, PeerError, Registry, require};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::json;

const TEAM: &str = "team-a";

const MESSAGE_TEMPLATE: &str = "Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end }}
Changes:
{{- range .Changed.Changes }}
- {{ .OldValue }} -> {{ .NewValue }}
{{- end }}
";

struct Env {
    cluster: common::Cluster,
    client: Client,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// The API server, a `team-a` namespace, and the three image reconcilers sharing a tag store.
async fn env() -> Result<Env, PeerError> {
    let cluster = common::cluster().await?;
    let client = cluster.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::from_value(json!({"metadata": {"name": TEAM}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace created");
    let store = Arc::new(TagStore::new(cluster.dir.path().join("image-tags")).expect("store"));
    let mut stops = Vec::new();
    let (stop, stopped) = common::shutdown();
    stops.push(stop);
    let context = Arc::new(imagerepository::Context::new(client.clone(), store.clone()));
    tokio::spawn(imagerepository::run(context, stopped));
    let (stop, stopped) = common::shutdown();
    stops.push(stop);
    let context = Arc::new(imagepolicy::Context::new(client.clone(), store));
    tokio::spawn(imagepolicy::run(context, stopped));
    let (stop, stopped) = common::shutdown();
    stops.push(stop);
    let context = Arc::new(imageupdateautomation::Context::new(client.clone()));
    tokio::spawn(imageupdateautomation::run(context, stopped));
    Ok(Env {
        cluster,
        client,
        _stops: stops,
    })
}

/// Pushes a small image (config + one layer) under `tag`.
async fn push_image(client: &OciClient, repository: &str, tag: &str) {
    client
        .push_layers(
            &format!("oci://{repository}:{tag}"),
            "application/vnd.oci.image.config.v1+json",
            json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"tag": tag}}})
                .to_string()
                .into_bytes(),
            vec![(
                "application/vnd.oci.image.layer.v1.tar".to_string(),
                format!("layer of {tag}").into_bytes(),
            )],
            BTreeMap::new(),
        )
        .await
        .expect("image pushed");
}

fn condition<'a>(conditions: Option<&'a Vec<Condition>>, type_: &str) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == type_)
}

/// Polls until `done` holds (up to 60 s) and returns the object.
async fn wait_until<K>(api: &Api<K>, name: &str, what: &str, done: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    common::wait_within(Duration::from_secs(60), api, name, what, done).await
}

async fn request_reconcile<K>(api: &Api<K>, name: &str, token: &str)
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotated");
}

fn image_repository(image: &str, secret: Option<&str>) -> ImageRepositorySpec {
    ImageRepositorySpec {
        image: image.into(),
        interval: "10m".into(),
        insecure: Some(true),
        secret_ref: secret.map(|name| LocalObjectReference { name: name.into() }),
        ..Default::default()
    }
}

fn seed_objects(
    registry_host: &str,
    git_url: &str,
) -> (
    GitRepository,
    ImageRepository,
    ImagePolicy,
    ImageUpdateAutomation,
) {
    let mut git = GitRepository::new(
        "fleet",
        GitRepositorySpec {
            url: git_url.into(),
            interval: "10m".into(),
            reference: Some(GitRepositoryRef {
                branch: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    git.metadata.namespace = Some(TEAM.into());
    let mut repo = ImageRepository::new(
        "podinfo",
        image_repository(&format!("{registry_host}/team-a/podinfo"), None),
    );
    repo.metadata.namespace = Some(TEAM.into());
    let mut policy = ImagePolicy::new(
        "podinfo",
        ImagePolicySpec {
            image_repository_ref: NamespacedObjectReference {
                name: "podinfo".into(),
                namespace: None,
            },
            policy: ImagePolicyChoice {
                numerical: Some(OrderPolicy {
                    order: Some("asc".into()),
                }),
                ..Default::default()
            },
            filter_tags: Some(TagFilter {
                pattern: Some("^main-[a-fA-F0-9]+-(?P<ts>.*)".into()),
                extract: Some("$ts".into()),
            }),
            ..Default::default()
        },
    );
    policy.metadata.namespace = Some(TEAM.into());
    let mut automation = ImageUpdateAutomation::new(
        "podinfo-auto",
        ImageUpdateAutomationSpec {
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "fleet".into(),
                ..Default::default()
            },
            git: Some(GitSpec {
                checkout: Some(GitCheckoutSpec {
                    reference: GitRepositoryRef {
                        branch: Some("main".into()),
                        ..Default::default()
                    },
                }),
                commit: CommitSpec {
                    author: CommitUser {
                        name: Some("fluxcdbot".into()),
                        email: "fluxcdbot@users.noreply.github.com".into(),
                    },
                    message_template: Some(MESSAGE_TEMPLATE.into()),
                    ..Default::default()
                },
                push: Some(PushSpec {
                    branch: Some("flux-image-updates".into()),
                    ..Default::default()
                }),
            }),
            interval: "10m".into(),
            update: Some(UpdateStrategy {
                path: Some("./apps/team-a".into()),
                strategy: "Setters".into(),
            }),
            ..Default::default()
        },
    );
    automation.metadata.namespace = Some(TEAM.into());
    (git, repo, policy, automation)
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: team-a
spec:
  template:
    spec:
      containers:
        - name: podinfod
          # the line below is managed by the image automation
          image: {image} # {{\"$imagepolicy\": \"team-a:podinfo\"}}
          ports:
            - containerPort: 9898
"
    )
}

/// The message the template gives for one change in `deployment.yaml`.
fn expected_message(old: &str, new: &str) -> String {
    format!(
        "Automated image update\n\nAutomation name: team-a/podinfo-auto\n\nFiles:\n- deployment.yaml\n\nChanges:\n- {old} -> {new}\n"
    )
}

/// The raw message of a commit (the bytes after the header).
fn commit_message(work: &GitWork, rev: &str) -> String {
    let raw = work.git(&["cat-file", "commit", rev]).expect("cat-file");
    raw.split_once("\n\n")
        .map(|(_, m)| m.to_string())
        .unwrap_or_default()
}

fn rev(work: &GitWork, name: &str) -> String {
    work.git(&["rev-parse", name])
        .expect("rev-parse")
        .trim()
        .to_string()
}

/// The fleet repository: `apps/team-a` and `apps/team-b` deploy `old`, pushed as `main`.
struct Fleet {
    work: GitWork,
    main: String,
    image: String,
    old: String,
    original: String,
}

/// Creates the repository `fleet` whose deployments use `{image}:main-abc123-1718000000`.
fn seed_fleet(git_server: &GitHttp, image: &str) -> Fleet {
    let bare = git_server.repos().create("fleet").expect("repo");
    let work = GitWork::new(&bare).expect("work tree");
    let old = format!("{image}:main-abc123-1718000000");
    let original = deployment(&old);
    work.write("apps/team-a/deployment.yaml", &original)
        .expect("write");
    work.write("apps/team-b/deployment.yaml", deployment(&old))
        .expect("write");
    work.write("README.md", "fleet\n").expect("write");
    let main = work.commit("initial").expect("commit");
    work.push().expect("push");
    Fleet {
        work,
        main,
        image: image.to_string(),
        old,
        original,
    }
}

/// The scan: four tags, the signature excluded, the canonical name reported.
async fn the_scan_lists_the_tags(repos: &Api<ImageRepository>, image: &str) {
    let scanned = wait_until(repos, "podinfo", "a scan", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.last_scan_result.is_some())
    })
    .await;
    let status = scanned.status.clone().expect("status");
    let scan = status.last_scan_result.clone().expect("scan");
    assert_eq!(scan.tag_count, 4);
    let mut latest = scan.latest_tags.clone().unwrap_or_default();
    latest.sort();
    assert_eq!(
        latest,
        [
            "1.0.0",
            "latest",
            "main-abc123-1718000000",
            "main-def456-1718000100"
        ]
    );
    assert_eq!(status.canonical_image_name.as_deref(), Some(image));
    let ready = condition(status.conditions.as_ref(), "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.message.as_str()),
        ("True", "successful scan: found 4 tags")
    );
}

/// Waits until the policy `name` selected an image and returns its `latestRef`.
async fn latest_ref(policies: &Api<ImagePolicy>, name: &str) -> ImageRef {
    let selected = wait_until(policies, name, "a latest image", |p| {
        p.status.as_ref().is_some_and(|s| s.latest_ref.is_some())
    })
    .await;
    selected
        .status
        .and_then(|s| s.latest_ref)
        .expect("latestRef")
}

/// Semver with digest reflection: the digest is the registry's for the chosen tag.
async fn digest_reflection_records_the_registry_digest(
    policies: &Api<ImagePolicy>,
    oci: &OciClient,
    image: &str,
) {
    let mut release = ImagePolicy::new(
        "podinfo-release",
        ImagePolicySpec {
            image_repository_ref: NamespacedObjectReference {
                name: "podinfo".into(),
                namespace: None,
            },
            policy: ImagePolicyChoice {
                semver: Some(SemVerPolicy {
                    range: ">=1.0.0".into(),
                }),
                ..Default::default()
            },
            digest_reflection_policy: Some("IfNotPresent".into()),
            ..Default::default()
        },
    );
    release.metadata.namespace = Some(TEAM.into());
    policies
        .create(&PostParams::default(), &release)
        .await
        .expect("ImagePolicy");
    let release_ref = latest_ref(policies, "podinfo-release").await;
    let digest = oci
        .digest(&format!("oci://{image}:1.0.0"))
        .await
        .expect("digest");
    assert_eq!(release_ref.tag, "1.0.0");
    assert_eq!(release_ref.digest.as_deref(), Some(digest.as_str()));
}

/// The automation: one commit on flux-image-updates that changes only the tag under
/// `update.path`; returns it.
async fn the_automation_commits_the_new_tag(
    automations: &Api<ImageUpdateAutomation>,
    fleet: &Fleet,
) -> String {
    let pushed = wait_until(automations, "podinfo-auto", "a push", |a| {
        a.status
            .as_ref()
            .is_some_and(|s| s.last_push_commit.is_some())
    })
    .await;
    let status = pushed.status.clone().expect("status");
    let first = status.last_push_commit.clone().expect("commit");
    assert!(status.last_push_time.is_some() && status.last_automation_run_time.is_some());
    assert_eq!(
        status
            .observed_policies
            .as_ref()
            .and_then(|p| p.get("podinfo"))
            .map(|r| r.tag.as_str()),
        Some("main-def456-1718000100")
    );
    let work = &fleet.work;
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(rev(work, "origin/flux-image-updates"), first);
    assert_eq!(rev(work, "origin/main"), fleet.main, "main is unchanged");
    assert_eq!(
        rev(work, "origin/flux-image-updates^"),
        fleet.main,
        "one commit on top of main"
    );
    let new = format!("{}:main-def456-1718000100", fleet.image);
    assert_eq!(
        work.git(&[
            "diff",
            "--name-only",
            "origin/main",
            "origin/flux-image-updates"
        ])
        .expect("diff"),
        "apps/team-a/deployment.yaml\n",
        "only the file under update.path changes"
    );
    assert_eq!(
        work.git(&[
            "show",
            "origin/flux-image-updates:apps/team-a/deployment.yaml"
        ])
        .expect("show"),
        fleet.original.replacen(&fleet.old, &new, 1),
        "only the tag changes, every other byte stays"
    );
    assert_eq!(
        work.git(&[
            "log",
            "-1",
            "--format=%an <%ae>",
            "origin/flux-image-updates"
        ])
        .expect("log")
        .trim(),
        "fluxcdbot <fluxcdbot@users.noreply.github.com>"
    );
    assert_eq!(
        commit_message(work, &first),
        expected_message(&fleet.old, &new)
    );
    first
}

/// Nothing changed: another run makes no commit.
async fn a_run_without_a_change_makes_no_commit(
    automations: &Api<ImageUpdateAutomation>,
    fleet: &Fleet,
    first: &str,
) {
    request_reconcile(automations, "podinfo-auto", "again-1").await;
    wait_until(automations, "podinfo-auto", "the requested run", |a| {
        a.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("again-1")
    })
    .await;
    fleet.work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(
        rev(&fleet.work, "origin/flux-image-updates"),
        first,
        "no commit without a change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_push_becomes_a_commit_on_the_update_branch() {
    let registry = require!(Registry::start(None));
    let git_server = require!(GitHttp::start(None));
    let env = require!(env().await);
    let host = registry.host();
    let image = format!("{host}/team-a/podinfo");
    let oci = common::registry_client(OciAuth::Anonymous);
    for tag in [
        "main-abc123-1718000000",
        "main-def456-1718000100",
        "1.0.0",
        "latest",
    ] {
        push_image(&oci, &image, tag).await;
    }
    // A cosign signature tag, excluded by the default exclusion list.
    push_image(&oci, &image, "sha256-0123.sig").await;
    let fleet = seed_fleet(&git_server, &image);

    let (git, repo, policy, automation) = seed_objects(&host, &git_server.url("fleet"));
    let client = &env.client;
    let post = PostParams::default();
    Api::<GitRepository>::namespaced(client.clone(), TEAM)
        .create(&post, &git)
        .await
        .expect("GitRepository");
    let repos: Api<ImageRepository> = Api::namespaced(client.clone(), TEAM);
    repos.create(&post, &repo).await.expect("ImageRepository");
    let policies: Api<ImagePolicy> = Api::namespaced(client.clone(), TEAM);
    policies.create(&post, &policy).await.expect("ImagePolicy");
    let automations: Api<ImageUpdateAutomation> = Api::namespaced(client.clone(), TEAM);
    automations
        .create(&post, &automation)
        .await
        .expect("ImageUpdateAutomation");

    the_scan_lists_the_tags(&repos, &image).await;
    // The policy: numerical asc on the extracted timestamp.
    let selected = latest_ref(&policies, "podinfo").await;
    assert_eq!(
        (selected.name.as_str(), selected.tag.as_str()),
        (image.as_str(), "main-def456-1718000100")
    );
    digest_reflection_records_the_registry_digest(&policies, &oci, &image).await;
    let first = the_automation_commits_the_new_tag(&automations, &fleet).await;
    a_run_without_a_change_makes_no_commit(&automations, &fleet, &first).await;

    // A new build in the registry: the next scan and run commit again, on top of the first.
    push_image(&oci, &image, "main-0a1b2c-1718000200").await;
    request_reconcile(&repos, "podinfo", "rescan-1").await;
    let second_status = wait_until(&automations, "podinfo-auto", "a second push", |a| {
        a.status
            .as_ref()
            .and_then(|s| s.last_push_commit.as_deref())
            .is_some_and(|c| c != first)
    })
    .await
    .status
    .expect("status");
    let second = second_status.last_push_commit.expect("commit");
    let work = &fleet.work;
    work.git(&["fetch", "-q", "origin"]).expect("fetch");
    assert_eq!(rev(work, "origin/flux-image-updates"), second);
    assert_eq!(rev(work, "origin/flux-image-updates^"), first);
    assert_eq!(
        rev(work, "origin/main"),
        fleet.main,
        "main is still unchanged"
    );
    let new = format!("{image}:main-def456-1718000100");
    let newest = format!("{image}:main-0a1b2c-1718000200");
    assert_eq!(
        work.git(&[
            "show",
            "origin/flux-image-updates:apps/team-a/deployment.yaml"
        ])
        .expect("show"),
        fleet.original.replacen(&fleet.old, &newest, 1)
    );
    assert_eq!(
        commit_message(work, &second),
        expected_message(&new, &newest)
    );
    let policy = policies.get("podinfo").await.expect("policy");
    let status = policy.status.expect("status");
    assert_eq!(
        status.observed_previous_ref.map(|r| r.tag).as_deref(),
        Some("main-def456-1718000100")
    );
    assert_eq!(status.latest_image.as_deref(), Some(newest.as_str()));
    drop(env.cluster);
}

fn dockerconfigjson(host: &str, username: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    json!({"auths": {host: {"username": username, "password": password, "auth": auth}}}).to_string()
}

async fn create_docker_secret(client: &Client, name: &str, config: String) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), TEAM);
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        string_data: Some(
            [(".dockerconfigjson".to_string(), config)]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_with_registry_credentials_and_a_wrong_password_is_a_readable_condition() {
    let credentials = Credentials::generate();
    let registry = require!(Registry::start(Some(credentials.clone())));
    let env = require!(env().await);
    let host = registry.host();
    let image = format!("{host}/team-a/private");
    let oci = common::registry_client(OciAuth::Basic {
        username: credentials.username.clone(),
        password: credentials.password.clone(),
    });
    push_image(&oci, &image, "1.0.0").await;
    let wrong = "not-the-password-42";
    create_docker_secret(
        &env.client,
        "good",
        dockerconfigjson(&host, &credentials.username, &credentials.password),
    )
    .await;
    create_docker_secret(
        &env.client,
        "bad",
        dockerconfigjson(&host, &credentials.username, wrong),
    )
    .await;

    let repos: Api<ImageRepository> = Api::namespaced(env.client.clone(), TEAM);
    for (name, secret) in [("good", "good"), ("bad", "bad")] {
        let mut repo = ImageRepository::new(name, image_repository(&image, Some(secret)));
        repo.metadata.namespace = Some(TEAM.into());
        repos
            .create(&PostParams::default(), &repo)
            .await
            .expect("created");
    }
    let good = wait_until(&repos, "good", "a scan", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.last_scan_result.is_some())
    })
    .await;
    assert_eq!(
        good.status
            .and_then(|s| s.last_scan_result)
            .map(|r| r.tag_count),
        Some(1)
    );

    let bad = wait_until(&repos, "bad", "Ready=False", |r| {
        r.status
            .as_ref()
            .and_then(|s| condition(s.conditions.as_ref(), "Ready"))
            .is_some_and(|c| c.status == "False")
    })
    .await;
    let status = bad.status.expect("status");
    assert!(
        status.last_scan_result.is_none(),
        "no tags from a refused scan"
    );
    let ready = condition(status.conditions.as_ref(), "Ready").expect("Ready");
    eprintln!("Ready condition of the refused scan: {}", ready.message);
    assert_eq!(ready.reason, "AuthenticationFailed");
    assert!(
        ready.message.contains(&host),
        "names the registry: {}",
        ready.message
    );
    assert!(
        ready.message.contains("credentials"),
        "says what to check: {}",
        ready.message
    );
    for secret in [wrong, credentials.password.as_str()] {
        assert!(
            !ready.message.contains(secret),
            "leaks a password: {}",
            ready.message
        );
    }
    drop(env.cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_in_another_namespace_needs_the_repositorys_access_from() {
    let registry = require!(Registry::start(None));
    let env = require!(env().await);
    let image = format!("{}/platform/shared", registry.host());
    push_image(
        &common::registry_client(OciAuth::Anonymous),
        &image,
        "1.0.0",
    )
    .await;
    let post = PostParams::default();
    let repos: Api<ImageRepository> = Api::namespaced(env.client.clone(), common::NS);
    let mut repo = ImageRepository::new("shared", image_repository(&image, None));
    repo.metadata.namespace = Some(common::NS.into());
    repos.create(&post, &repo).await.expect("created");
    let policies: Api<ImagePolicy> = Api::namespaced(env.client.clone(), TEAM);
    let mut policy = ImagePolicy::new(
        "shared",
        ImagePolicySpec {
            image_repository_ref: NamespacedObjectReference {
                name: "shared".into(),
                namespace: Some(common::NS.into()),
            },
            policy: ImagePolicyChoice {
                semver: Some(SemVerPolicy {
                    range: ">=1.0.0".into(),
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    policy.metadata.namespace = Some(TEAM.into());
    policies.create(&post, &policy).await.expect("created");
    let denied = wait_until(&policies, "shared", "AccessDenied", |p| {
        p.status
            .as_ref()
            .and_then(|s| condition(s.conditions.as_ref(), "Ready"))
            .is_some_and(|c| c.reason == "AccessDenied")
    })
    .await;
    let status = denied.status.expect("status");
    assert!(status.latest_ref.is_none(), "no tag without access");
    let ready = condition(status.conditions.as_ref(), "Ready").expect("Ready");
    assert_eq!(
        ready.message,
        "failed to get the referred ImageRepository: access denied: 'flux-system/shared' can't be accessed due to missing ACL labels on 'accessFrom'"
    );
    // As image-reflector-controller: retried, not stalled (the namespace's labels may change).
    assert!(condition(status.conditions.as_ref(), "Stalled").is_none());

    // The platform team allows namespaces labelled tenant=a; team-a carries the label.
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .patch(
            TEAM,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"tenant": "a"}}})),
        )
        .await
        .expect("labelled");
    repos
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"accessFrom": {
                "namespaceSelectors": [{"matchLabels": {"tenant": "a"}}]
            }}})),
        )
        .await
        .expect("access granted");
    let allowed = wait_until(&policies, "shared", "a latest image", |p| {
        p.status.as_ref().is_some_and(|s| s.latest_ref.is_some())
    })
    .await;
    assert_eq!(
        allowed.status.and_then(|s| s.latest_ref).map(|r| r.tag),
        Some("1.0.0".to_string())
    );
    drop(env.cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_in_another_namespace_is_refused_without_cross_namespace_refs() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object = serde_json::from_value(json!({"metadata": {"name": TEAM}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace created");
    let mut context = imageupdateautomation::Context::new(client.clone());
    context.no_cross_namespace_refs = true;
    let (_stop, stopped) = common::shutdown();
    tokio::spawn(imageupdateautomation::run(Arc::new(context), stopped));

    let (git, _, _, mut automation) = seed_objects("127.0.0.1:1", "http://127.0.0.1:1/fleet");
    let mut git = git;
    git.metadata.namespace = Some(common::NS.into());
    Api::<GitRepository>::namespaced(client.clone(), common::NS)
        .create(&PostParams::default(), &git)
        .await
        .expect("created");
    automation.spec.source_ref.namespace = Some(common::NS.into());
    let automations: Api<ImageUpdateAutomation> = Api::namespaced(client.clone(), TEAM);
    automations
        .create(&PostParams::default(), &automation)
        .await
        .expect("created");
    let refused = wait_until(&automations, "podinfo-auto", "Stalled", |a| {
        condition(
            a.status.as_ref().and_then(|s| s.conditions.as_ref()),
            "Stalled",
        )
        .is_some()
    })
    .await;
    let conditions = refused.status.as_ref().and_then(|s| s.conditions.as_ref());
    let stalled = condition(conditions, "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "AccessDenied")
    );
    assert_eq!(
        stalled.message,
        "can't access 'GitRepository/flux-system/fleet', cross-namespace references have been blocked"
    );
    assert_eq!(
        condition(conditions, "Ready").map(|c| c.status.as_str()),
        Some("False")
    );
    cluster.server.shutdown().await;
}
