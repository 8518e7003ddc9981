//! Hard multi-tenancy end to end: a tenant Kustomization applies as its ServiceAccount, so a
//! source that tries to make the tenant cluster-admin fails with the API server's 403 and
//! nothing of it is applied; with `--default-service-account` a Kustomization without
//! serviceAccountName applies as that (unprivileged) account, never as the controller. An
//! ImagePolicy reads an ImageRepository of another namespace only when the repository's
//! `accessFrom` selects the policy's namespace, and never under `--no-cross-namespace-refs`.

mod common;

use std::sync::Arc;

use ferroflux_api::image::ImagePolicy;
use ferroflux_api::kustomize::{CrossNamespaceSourceReference, Kustomization, KustomizationSpec};
use ferroflux_controllers::kustomization::reconciler::{self, Context, Options};
use ferroflux_testpeers::require;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, PostParams};

const ESCALATION: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: team-a-is-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: team-a
    namespace: team-a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: innocent
  namespace: team-a
data: {a: b}
";

async fn apply_yaml(client: &kube::Client, yaml: &str) {
    for doc in serde_saphyr::from_multiple::<serde_json::Value>(yaml).expect("YAML") {
        let manager = ferroflux_apply::manager::ResourceManager::new(client.clone(), "test");
        manager
            .apply_all(&[doc], &Default::default())
            .await
            .expect("setup applies");
    }
}

async fn publish(
    cluster: &common::Cluster,
    namespace: &str,
    tree: &std::path::Path,
    revision: &str,
) {
    common::publish_git_artifact(cluster, namespace, "tenant", tree, revision).await;
}

/// The message of the Ready=False condition the Kustomization `name` comes to.
async fn ready_false(api: &Api<Kustomization>, name: &str) -> String {
    let ks = common::wait_until(api, name, "Ready=False", |ks| {
        common::condition(ks, "Ready").is_some_and(|c| c.status == "False")
    })
    .await;
    common::condition(&ks, "Ready").expect("Ready").message
}

const TENANT: &str = include_str!("testdata/tenant.yaml");

fn tenant_kustomization(service_account: Option<&str>) -> Kustomization {
    let mut ks = Kustomization::new(
        "tenant",
        KustomizationSpec {
            interval: "1m".into(),
            prune: true,
            service_account_name: service_account.map(str::to_string),
            source_ref: CrossNamespaceSourceReference {
                kind: "GitRepository".into(),
                name: "tenant".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    ks.metadata.namespace = Some("team-a".into());
    ks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_make_itself_cluster_admin() {
    let cluster = require!(common::cluster().await);
    apply_yaml(&cluster.client, TENANT).await;
    let tree = cluster.dir.path().join("tenant-repo");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("all.yaml"), ESCALATION).expect("write");
    publish(
        &cluster,
        "team-a",
        &tree,
        "main@sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    )
    .await;
    let context = Arc::new(Context::new(
        cluster.client.clone(),
        cluster.config.clone(),
        Options::default(),
    ));
    tokio::spawn(reconciler::run(context, std::future::pending()));

    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "team-a");
    api.create(
        &PostParams::default(),
        &tenant_kustomization(Some("team-a")),
    )
    .await
    .expect("created");
    let message = ready_false(&api, "tenant").await;
    assert!(
        message.contains("is forbidden: User \"system:serviceaccount:team-a:team-a\""),
        "{message}"
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(cluster.client.clone());
    assert!(
        bindings
            .get_opt("team-a-is-admin")
            .await
            .expect("reads")
            .is_none(),
        "no ClusterRoleBinding is created"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team-a");
    assert!(
        config_maps
            .get_opt("innocent")
            .await
            .expect("reads")
            .is_none(),
        "nothing of that revision is applied"
    );
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_service_account_replaces_the_controller_identity() {
    let cluster = require!(common::cluster().await);
    apply_yaml(&cluster.client, TENANT).await;
    let tree = cluster.dir.path().join("tenant-repo");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(
        tree.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: innocent, namespace: team-a}\n",
    )
    .expect("write");
    publish(
        &cluster,
        "team-a",
        &tree,
        "main@sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    )
    .await;
    let options = Options {
        default_service_account: Some("fluxcd-restricted".into()),
        ..Options::default()
    };
    let context = Arc::new(Context::new(
        cluster.client.clone(),
        cluster.config.clone(),
        options,
    ));
    tokio::spawn(reconciler::run(context, std::future::pending()));

    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "team-a");
    api.create(&PostParams::default(), &tenant_kustomization(None))
        .await
        .expect("created");
    let message = ready_false(&api, "tenant").await;
    assert!(
        message.contains("User \"system:serviceaccount:team-a:fluxcd-restricted\" cannot"),
        "{message}"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team-a");
    assert!(
        config_maps
            .get_opt("innocent")
            .await
            .expect("reads")
            .is_none()
    );
    cluster.server.shutdown().await;
}

/// Runs the ImagePolicy reconciler (`--no-cross-namespace-refs` as given) over a policy in
/// team-a (labelled `team_a_labels`) that refers to `flux-system/shared`, an ImageRepository
/// whose `accessFrom` selects namespaces labelled `tenant: a`; returns the policy's Ready
/// condition once it is False.
async fn cross_namespace_policy(
    cluster: &common::Cluster,
    team_a_labels: &str,
    no_cross_namespace_refs: bool,
) -> ferroflux_api::meta::Condition {
    apply_yaml(
        &cluster.client,
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: team-a, labels: {team_a_labels}}}\n"
        ),
    )
    .await;
    apply_yaml(
        &cluster.client,
        "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: shared, namespace: flux-system}
spec:
  image: registry.example/platform/shared
  interval: 1h
  accessFrom:
    namespaceSelectors:
    - matchLabels: {tenant: a}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: shared, namespace: team-a}
spec:
  imageRepositoryRef: {name: shared, namespace: flux-system}
  policy:
    semver: {range: '>=1.0.0'}
",
    )
    .await;
    let tags =
        ferroflux_controllers::imagerepository::TagStore::new(cluster.dir.path().join("tags"))
            .expect("tag store");
    let mut context =
        ferroflux_controllers::imagepolicy::Context::new(cluster.client.clone(), Arc::new(tags));
    context.no_cross_namespace_refs = no_cross_namespace_refs;
    tokio::spawn(ferroflux_controllers::imagepolicy::run(
        Arc::new(context),
        std::future::pending(),
    ));
    let api: Api<ImagePolicy> = Api::namespaced(cluster.client.clone(), "team-a");
    let policy = common::wait_until(&api, "shared", "Ready=False", |p| {
        common::condition(p, "Ready").is_some_and(|c| c.status == "False")
    })
    .await;
    assert!(
        common::condition(&policy, "Stalled").is_none(),
        "a refusal is retried, as image-reflector-controller does"
    );
    common::condition(&policy, "Ready").expect("Ready")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_policy_outside_the_access_from_selection_is_denied() {
    let cluster = require!(common::cluster().await);
    let ready = cross_namespace_policy(&cluster, "{tenant: b}", false).await;
    assert_eq!(ready.reason, "AccessDenied");
    assert_eq!(
        ready.message,
        "failed to get the referred ImageRepository: access denied: 'flux-system/shared' can't be accessed due to ACL labels mismatch on namespace 'team-a'"
    );
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cross_namespace_refs_an_image_policy_is_refused_whatever_access_from_says() {
    let cluster = require!(common::cluster().await);
    // The repository's accessFrom selects team-a: only the flag refuses.
    let ready = cross_namespace_policy(&cluster, "{tenant: a}", true).await;
    assert_eq!(ready.reason, "AccessDenied");
    assert_eq!(
        ready.message,
        "failed to get the referred ImageRepository: cannot access 'ImageRepository/flux-system/shared', cross-namespace references have been blocked"
    );
    cluster.server.shutdown().await;
}
