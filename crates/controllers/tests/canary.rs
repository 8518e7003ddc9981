//! The canary controller end to end: the embedded API server (or kube-apiserver), the
//! workload simulator making Deployments Available, a real Prometheus (Debian's
//! `prometheus`) scraping the metrics app of `ferroflux-testpeers` whose error rate the test
//! sets, and the Canary of the seed: a new image progresses in 10 % steps to 50 % and is
//! promoted; with errors it is rolled back after `threshold` failed checks. Every wait is on
//! a condition, none is timed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::flagger::{
    Canary, CanaryAnalysis, CanaryMetric, CanaryService, CanarySpec, CanaryWebhook,
    CrossNamespaceObjectReference, LocalObjectReference, MetricTemplate, MetricTemplateProvider,
    MetricTemplateSpec, ThresholdRange,
};
use ferroflux_controllers::canary;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;

use common::NS;

/// Waits until Prometheus answers the builtin success-rate query with a value.
async fn wait_for_samples(prometheus: &str) {
    let query = "sum(rate(http_request_duration_seconds_count[10s]))";
    let url =
        reqwest::Url::parse_with_params(&format!("{prometheus}/api/v1/query"), [("query", query)])
            .expect("url");
    for _ in 0..600 {
        let answer = reqwest::get(url.clone()).await.expect("prometheus answers");
        let body: serde_json::Value = answer.json().await.expect("json");
        if body["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus never scraped the app");
}

fn deployment(image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": "podinfo", "namespace": NS },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "podinfo" } },
            "template": {
                "metadata": { "labels": { "app": "podinfo" } },
                "spec": { "containers": [{ "name": "podinfod", "image": image,
                    "ports": [{ "containerPort": 9898, "name": "http" }] }] },
            },
        },
    }))
    .expect("deployment")
}

fn the_canary(webhook: Option<String>) -> Canary {
    let mut canary = Canary::new(
        "podinfo",
        CanarySpec {
            provider: Some("gatewayapi:v1".into()),
            target_ref: LocalObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("Deployment".into()),
                name: "podinfo".into(),
            },
            service: CanaryService {
                port: 9898,
                gateway_refs: Some(vec![json!({ "name": "public", "namespace": NS })]),
                ..CanaryService::default()
            },
            analysis: Some(CanaryAnalysis {
                interval: Some("1s".into()),
                threshold: Some(2),
                max_weight: Some(50),
                step_weight: Some(10),
                metrics: Some(vec![
                    CanaryMetric {
                        name: "request-success-rate".into(),
                        interval: Some("10s".into()),
                        threshold_range: Some(ThresholdRange {
                            min: Some(99.0),
                            max: None,
                        }),
                        ..CanaryMetric::default()
                    },
                    // The same signal through a MetricTemplate, its query templated.
                    CanaryMetric {
                        name: "error-rate".into(),
                        interval: Some("10s".into()),
                        template_ref: Some(CrossNamespaceObjectReference {
                            name: "error-rate".into(),
                            ..CrossNamespaceObjectReference::default()
                        }),
                        template_variables: Some(
                            [("failed".to_string(), "5.*".to_string())].into(),
                        ),
                        threshold_range: Some(ThresholdRange {
                            min: None,
                            max: Some(1.0),
                        }),
                        ..CanaryMetric::default()
                    },
                ]),
                webhooks: webhook.map(|url| {
                    vec![CanaryWebhook {
                        name: "load-test".into(),
                        hook_type: Some("rollout".into()),
                        url,
                        ..CanaryWebhook::default()
                    }]
                }),
                ..CanaryAnalysis::default()
            }),
            ..CanarySpec::default()
        },
    );
    canary.metadata.namespace = Some(NS.into());
    canary
}

fn phase(canary: &Canary) -> &str {
    canary
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or_default()
}

/// The (primary, canary) weights of the HTTPRoute.
async fn route_weights(routes: &Api<DynamicObject>) -> (i64, i64) {
    let route = routes.get("podinfo").await.expect("the HTTPRoute exists");
    let refs = route.data["spec"]["rules"][0]["backendRefs"].clone();
    (
        refs[0]["weight"].as_i64().unwrap_or(-1),
        refs[1]["weight"].as_i64().unwrap_or(-1),
    )
}

/// Watches the Canary from `since` until `done`, returning every version seen.
async fn watch_until(
    api: &Api<Canary>,
    since: &str,
    what: &str,
    done: impl Fn(&Canary) -> bool,
) -> Vec<Canary> {
    let mut seen = Vec::new();
    let mut version = since.to_string();
    // A watch ends after its timeout; a long analysis takes several.
    for _ in 0..20 {
        let params = kube::api::WatchParams::default()
            .fields("metadata.name=podinfo")
            .timeout(30);
        let events = api.watch(&params, &version).await.expect("watches");
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            if let kube::api::WatchEvent::Added(c) | kube::api::WatchEvent::Modified(c) =
                event.expect("a watch event")
            {
                version = c.metadata.resource_version.clone().unwrap_or_default();
                let finished = done(&c);
                seen.push(c);
                if finished {
                    return seen;
                }
            }
        }
    }
    let last = seen.last().map(|c| json!(c.status)).unwrap_or_default();
    panic!("the Canary never got {what}: {last:#}");
}

async fn set_image(deployments: &Api<Deployment>, image: &str) {
    let patch = json!({ "spec": { "template": { "spec": { "containers": [
        { "name": "podinfod", "image": image }
    ] } } } });
    deployments
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .expect("image set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_image_progresses_to_max_weight_and_errors_roll_it_back() {
    let app = ferroflux_testpeers::MetricsApp::start(NS, "podinfo").expect("metrics app");
    let prometheus = match ferroflux_testpeers::Prometheus::start(app.address()) {
        Ok(prometheus) => prometheus,
        Err(err) if err.is_skip() => return ferroflux_testpeers::skip(err),
        Err(err) => panic!("prometheus: {err}"),
    };
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let client = cluster.client.clone();
    // The HTTPRoute CRD the canary component serves.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = serde_json::from_value(canary::router::httproute_crd()).expect("CRD");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("HTTPRoute CRD created");
    let route_resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &route_resource);
    while routes.list(&Default::default()).await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A rollout webhook that records the payloads Flagger sends.
    let bodies = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let hook = {
        let bodies = bodies.clone();
        common::serve(axum::Router::new().route(
            "/",
            axum::routing::post(move |body: axum::Json<serde_json::Value>| {
                let bodies = bodies.clone();
                async move {
                    bodies.lock().expect("not poisoned").push(body.0);
                    axum::http::StatusCode::OK
                }
            }),
        ))
        .await
    };

    let (stop_sim, sim_stopped) = tokio::sync::watch::channel(false);
    let sim_shutdown = async move {
        let mut stopped = sim_stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn(ferroflux_controllers::simulator::run(
        client.clone(),
        ferroflux_controllers::simulator::Options::new(Duration::from_millis(200), None)
            .expect("options"),
        futures::FutureExt::shared(Box::pin(sim_shutdown)),
    ));
    let mut context = canary::Context::new(client.clone());
    context.min_interval = Duration::from_secs(1);
    context.metrics_server = Some(prometheus.url());
    let (_stop, shutdown) = common::shutdown();
    tokio::spawn(canary::run(Arc::new(context), shutdown));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(
            &PostParams::default(),
            &deployment("ghcr.io/stefanprodan/podinfo:6.0.0"),
        )
        .await
        .expect("target created");
    let templates: Api<MetricTemplate> = Api::namespaced(client.clone(), NS);
    let query = "100 - sum(rate(http_request_duration_seconds_count{\
        kubernetes_namespace=\"{{ namespace }}\",status!~\"{{ variables.failed }}\"}[{{ interval }}])) \
        / sum(rate(http_request_duration_seconds_count{\
        kubernetes_namespace=\"{{ namespace }}\"}[{{ interval }}])) * 100";
    let template = MetricTemplate::new(
        "error-rate",
        MetricTemplateSpec {
            provider: MetricTemplateProvider {
                provider_type: "prometheus".into(),
                address: Some(prometheus.url()),
                ..MetricTemplateProvider::default()
            },
            query: query.into(),
        },
    );
    templates
        .create(&PostParams::default(), &template)
        .await
        .expect("metric template created");
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    let created = canaries
        .create(&PostParams::default(), &the_canary(Some(hook)))
        .await
        .expect("canary created");
    let since = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();

    // Initialization: the primary, the Services, the route, the target scaled to zero.
    let seen = watch_until(&canaries, &since, "Initialized", |c| {
        phase(c) == "Initialized"
    })
    .await;
    assert!(seen.iter().any(|c| phase(c) == "Initializing"));
    let primary = deployments.get("podinfo-primary").await.expect("primary");
    assert_eq!(image(&primary), "ghcr.io/stefanprodan/podinfo:6.0.0");
    assert_eq!(replicas(&primary), 2);
    assert_eq!(
        replicas(&deployments.get("podinfo").await.expect("target")),
        0
    );
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    for (name, selected) in [
        ("podinfo", "podinfo-primary"),
        ("podinfo-primary", "podinfo-primary"),
        ("podinfo-canary", "podinfo"),
    ] {
        let service = services.get(name).await.expect("service");
        let spec = service.spec.expect("spec");
        assert_eq!(spec.selector.expect("selector")["app"], selected, "{name}");
        assert_eq!(spec.ports.expect("ports")[0].port, 9898);
    }
    assert_eq!(route_weights(&routes).await, (100, 0));
    let initialized = seen.last().expect("seen").clone();
    let condition = &initialized
        .status
        .clone()
        .unwrap_or_default()
        .conditions
        .unwrap_or_default()[0];
    assert_eq!(
        (condition.reason.as_deref(), condition.status.as_str()),
        (Some("Initialized"), "True")
    );

    // A new image progresses 10, 20, ... 50, is promoted and the target scaled down.
    wait_for_samples(&prometheus.url()).await;
    let since = initialized
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    set_image(&deployments, "ghcr.io/stefanprodan/podinfo:6.0.1").await;
    let seen = watch_until(&canaries, &since, "Succeeded", |c| phase(c) == "Succeeded").await;
    let mut weights: Vec<i32> = seen
        .iter()
        .filter(|c| phase(c) == "Progressing")
        .filter_map(|c| c.status.as_ref().and_then(|s| s.canary_weight))
        .collect();
    weights.dedup();
    assert_eq!(weights, vec![0, 10, 20, 30, 40, 50]);
    let phases: Vec<&str> = seen.iter().map(phase).collect::<Vec<_>>();
    let mut order = phases.clone();
    order.dedup();
    assert_eq!(
        order,
        vec!["Progressing", "Promoting", "Finalising", "Succeeded"],
        "{phases:?}"
    );
    let primary = deployments.get("podinfo-primary").await.expect("primary");
    assert_eq!(image(&primary), "ghcr.io/stefanprodan/podinfo:6.0.1");
    assert_eq!(
        replicas(&deployments.get("podinfo").await.expect("target")),
        0
    );
    assert_eq!(route_weights(&routes).await, (100, 0));
    let payload = bodies.lock().expect("not poisoned").first().cloned();
    let payload = payload.expect("the rollout webhook was called");
    assert_eq!(payload["name"], "podinfo");
    assert_eq!(payload["namespace"], NS);
    assert_eq!(payload["phase"], "Progressing");
    assert!(payload["checksum"].as_str().is_some_and(|c| !c.is_empty()));
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let messages: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("Canary"))
        .inspect(|e| assert_eq!(e.reason.as_deref(), Some("Synced")))
        .filter_map(|e| e.message)
        .collect();
    for expected in [
        "Initialization done! podinfo.flux-system",
        "New revision detected! Scaling up podinfo.flux-system",
        "Starting canary analysis for podinfo.flux-system",
        "Advance podinfo.flux-system canary weight 10",
        "Advance podinfo.flux-system canary weight 50",
        "Copying podinfo.flux-system template spec to podinfo-primary.flux-system",
        "Promotion completed! Scaling down podinfo.flux-system",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} in {messages:#?}"
        );
    }

    // Errors above 1 % roll the next image back after `threshold` failed checks.
    app.set_errors(50);
    let succeeded = seen.last().expect("seen").clone();
    let since = succeeded
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    set_image(&deployments, "ghcr.io/stefanprodan/podinfo:6.0.2").await;
    let seen = watch_until(&canaries, &since, "Failed", |c| phase(c) == "Failed").await;
    let failed_checks: Vec<i32> = seen
        .iter()
        .filter_map(|c| c.status.as_ref().and_then(|s| s.failed_checks))
        .collect();
    assert!(failed_checks.contains(&2), "{failed_checks:?}");
    let failed = seen.last().expect("seen");
    let status = failed.status.clone().unwrap_or_default();
    assert_eq!(status.canary_weight, Some(0));
    let condition = &status.conditions.unwrap_or_default()[0];
    assert_eq!(condition.status, "False");
    assert_eq!(
        condition.message.as_deref(),
        Some("Canary analysis failed, Deployment scaled to zero.")
    );
    let primary = deployments.get("podinfo-primary").await.expect("primary");
    assert_eq!(image(&primary), "ghcr.io/stefanprodan/podinfo:6.0.1");
    assert_eq!(
        replicas(&deployments.get("podinfo").await.expect("target")),
        0
    );
    assert_eq!(route_weights(&routes).await, (100, 0));
    let messages: Vec<String> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    let halted = "Halt podinfo.flux-system advancement success rate ";
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(halted) && m.ends_with("% < 99%")),
        "{halted:?} in {messages:#?}"
    );
    for expected in [
        "Rolling back podinfo.flux-system failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.flux-system",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected:?} in {messages:#?}"
        );
    }
    let _ = stop_sim.send(true);
    drop(prometheus);
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_canary_is_refused_by_name_and_nothing_is_created() {
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let client = cluster.client.clone();
    let mut context = canary::Context::new(client.clone());
    context.min_interval = Duration::from_secs(1);
    let (_stop, shutdown) = common::shutdown();
    tokio::spawn(canary::run(Arc::new(context), shutdown));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(
            &PostParams::default(),
            &deployment("ghcr.io/stefanprodan/podinfo:6.0.0"),
        )
        .await
        .expect("target created");
    let mut refused = the_canary(None);
    refused.spec.provider = Some("istio".into());
    if let Some(analysis) = refused.spec.analysis.as_mut() {
        analysis.mirror = Some(true);
    }
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    canaries
        .create(&PostParams::default(), &refused)
        .await
        .expect("canary created");
    let canary = common::wait_until(&canaries, "podinfo", "Failed", |c| phase(c) == "Failed").await;
    let condition = &canary
        .status
        .unwrap_or_default()
        .conditions
        .unwrap_or_default()[0];
    let message = condition.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("Canary refused: spec.provider \"istio\" is not supported"),
        "{message}"
    );
    assert!(
        message.contains("spec.analysis.mirror is not supported"),
        "{message}"
    );
    assert!(
        deployments
            .get_opt("podinfo-primary")
            .await
            .expect("reads")
            .is_none()
    );
    assert_eq!(
        replicas(&deployments.get("podinfo").await.expect("target")),
        2
    );
    cluster.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_configmap_is_a_new_revision_and_the_primary_gets_its_copy() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let cluster = ferroflux_testpeers::require!(common::cluster().await);
    let client = cluster.client.clone();
    let (stop_sim, sim_stopped) = tokio::sync::watch::channel(false);
    let sim_shutdown = async move {
        let mut stopped = sim_stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn(ferroflux_controllers::simulator::run(
        client.clone(),
        ferroflux_controllers::simulator::Options::new(Duration::from_millis(200), None)
            .expect("options"),
        futures::FutureExt::shared(Box::pin(sim_shutdown)),
    ));
    let mut context = canary::Context::new(client.clone());
    context.min_interval = Duration::from_secs(1);
    let (_stop, shutdown) = common::shutdown();
    tokio::spawn(canary::run(Arc::new(context), shutdown));

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let config = |greeting: &str| -> ConfigMap {
        serde_json::from_value(json!({
            "metadata": { "name": "podinfo-config", "namespace": NS },
            "data": { "GREETING": greeting },
        }))
        .expect("configmap")
    };
    configmaps
        .create(&PostParams::default(), &config("hello"))
        .await
        .expect("configmap created");
    let mut target = deployment("ghcr.io/stefanprodan/podinfo:6.0.0");
    if let Some(spec) = target.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        spec.containers[0].env_from = Some(vec![
            serde_json::from_value(json!({ "configMapRef": { "name": "podinfo-config" } }))
                .expect("envFrom"),
        ]);
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(&PostParams::default(), &target)
        .await
        .expect("target created");
    let mut the = the_canary(None);
    the.spec.provider = Some("kubernetes".into());
    the.spec.service.gateway_refs = None;
    the.spec.skip_analysis = Some(true);
    let canaries: Api<Canary> = Api::namespaced(client.clone(), NS);
    canaries
        .create(&PostParams::default(), &the)
        .await
        .expect("canary created");
    let initialized = common::wait_until(&canaries, "podinfo", "Initialized", |c| {
        phase(c) == "Initialized"
    })
    .await;
    let tracked = initialized
        .status
        .and_then(|s| s.tracked_configs)
        .unwrap_or_default();
    assert!(
        tracked.contains_key("configmap/podinfo-config"),
        "{tracked:?}"
    );
    let copy = configmaps
        .get("podinfo-config-primary")
        .await
        .expect("copy");
    assert_eq!(copy.data.unwrap_or_default()["GREETING"], "hello");
    let primary = deployments.get("podinfo-primary").await.expect("primary");
    let env_from =
        serde_json::to_value(&primary).expect("json")["spec"]["template"]["spec"]["containers"][0]
            ["envFrom"][0]["configMapRef"]["name"]
            .clone();
    assert_eq!(env_from, "podinfo-config-primary");

    configmaps
        .replace("podinfo-config", &PostParams::default(), &{
            let mut changed = configmaps.get("podinfo-config").await.expect("reads");
            changed.data = config("bonjour").data;
            changed
        })
        .await
        .expect("configmap changed");
    common::wait_within(
        Duration::from_secs(60),
        &canaries,
        "podinfo",
        "Succeeded",
        |c| phase(c) == "Succeeded",
    )
    .await;
    let copy = configmaps
        .get("podinfo-config-primary")
        .await
        .expect("copy");
    assert_eq!(copy.data.unwrap_or_default()["GREETING"], "bonjour");
    let _ = stop_sim.send(true);
    cluster.server.shutdown().await;
}
