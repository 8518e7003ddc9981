//! Server-side apply merges as kube-apiserver's structured-merge-diff does: lists and maps of
//! built-in kinds by the list types and keys of kube's own OpenAPI schema, custom resources by
//! their CRD schema, and conflicts only on the fields an apply would change.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

/// The `fieldsV1` of `manager`'s entry.
fn fields_of(
    managed: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry>>,
    manager: &str,
) -> Value {
    managed
        .into_iter()
        .flatten()
        .find(|m| m.manager.as_deref() == Some(manager))
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
        .unwrap_or_else(|| panic!("no managedFields entry for {manager}"))
}

/// The message of an apply conflict (409).
fn conflict(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict" => s.message,
        other => panic!("expected a 409 Conflict, got {other}"),
    }
}

fn web(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}
    })
}

/// Only the containers (and what the caller adds), as a second manager applies them.
/// The pod template's spec of `d`.
fn pod_spec(d: &Deployment) -> &k8s_openapi::api::core::v1::PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
}

fn partial(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": containers}}}
    })
}

#[tokio::test]
async fn a_second_manager_adds_env_to_an_existing_container_and_both_merge() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let mut base =
        web(json!([{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]));
    base["metadata"]["finalizers"] = json!(["example.com/base"]);
    api.patch("web", &PatchParams::apply("base"), &Patch::Apply(base))
        .await
        .expect("base applies");
    let mut env =
        partial(json!([{"name": "web", "env": [{"name": "LOG_LEVEL", "value": "debug"}]}]));
    env["metadata"]["finalizers"] = json!(["example.com/env"]);
    let merged = api
        .patch("web", &PatchParams::apply("env-adder"), &Patch::Apply(env))
        .await
        .expect("env merges into containers[name=web], as in kube");

    let spec = pod_spec(&merged);
    assert_eq!(spec.containers.len(), 1);
    let c = &spec.containers[0];
    assert_eq!(c.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(
        c.env.as_ref().map(|e| e[0].name.as_str()),
        Some("LOG_LEVEL")
    );
    // finalizers is a set: both members stay.
    assert_eq!(
        merged.metadata.finalizers.as_deref(),
        Some(
            &[
                "example.com/base".to_string(),
                "example.com/env".to_string()
            ][..]
        )
    );
    let mf = merged.metadata.managed_fields.as_ref();
    let base_fields = fields_of(mf, "base");
    let base_web =
        &base_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert!(
        base_web["f:image"].is_object(),
        "base keeps the image: {base_fields}"
    );
    assert!(
        base_web["."].is_object(),
        "base keeps the container: {base_fields}"
    );
    let env_fields = fields_of(mf, "env-adder");
    let env_web =
        &env_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
    assert!(
        env_web["f:env"]["k:{\"name\":\"LOG_LEVEL\"}"]["f:value"].is_object(),
        "env-adder owns its env var: {env_fields}"
    );
    assert!(env_web.get("f:image").is_none(), "{env_fields}");
    assert!(
        env_fields["f:metadata"]["f:finalizers"]["v:\"example.com/env\""].is_object(),
        "{env_fields}"
    );

    // The first manager reapplying without env neither conflicts nor removes it.
    let mut again =
        web(json!([{"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}]));
    again["metadata"]["finalizers"] = json!(["example.com/base"]);
    let out = api
        .patch("web", &PatchParams::apply("base"), &Patch::Apply(again))
        .await
        .expect("base reapplies");
    let c = &out
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec")
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("nginx:1.26"));
    assert!(
        c.env.as_ref().is_some_and(|e| e.len() == 1),
        "env-adder's env stays"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn container_ports_are_keyed_by_container_port_and_protocol() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let udp = web(
        json!([{"name": "web", "image": "dns", "ports": [{"containerPort": 53, "protocol": "UDP", "name": "dns-udp"}]}]),
    );
    api.patch("web", &PatchParams::apply("udp"), &Patch::Apply(udp))
        .await
        .expect("udp applies");
    let tcp = partial(
        json!([{"name": "web", "ports": [{"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"}, {"containerPort": 8080}]}]),
    );
    let out = api
        .patch("web", &PatchParams::apply("tcp"), &Patch::Apply(tcp))
        .await
        .expect("another protocol on the same port is another item");
    let ports = pod_spec(&out).containers[0]
        .ports
        .clone()
        .unwrap_or_default();
    let names: Vec<_> = ports
        .iter()
        .map(|p| p.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["dns-udp", "dns-tcp", ""]);
    // A missing protocol takes the key field's default, TCP, as in kube's managedFields.
    let tcp_fields = fields_of(out.metadata.managed_fields.as_ref(), "tcp");
    let web_ports = &tcp_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
        ["f:ports"];
    assert!(
        web_ports["k:{\"containerPort\":8080,\"protocol\":\"TCP\"}"]["."].is_object(),
        "{tcp_fields}"
    );
    assert!(
        web_ports["k:{\"containerPort\":53,\"protocol\":\"TCP\"}"]["f:name"].is_object(),
        "{tcp_fields}"
    );

    // Service ports: by port and protocol.
    let svcs: Api<Service> = Api::namespaced(client, "default");
    let svc = |port_name: &str, protocol: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns"},
               "spec": {"ports": [{"name": port_name, "port": 53, "protocol": protocol}]}})
    };
    svcs.patch(
        "dns",
        &PatchParams::apply("udp"),
        &Patch::Apply(svc("udp", "UDP")),
    )
    .await
    .expect("udp applies");
    let out = svcs
        .patch(
            "dns",
            &PatchParams::apply("tcp"),
            &Patch::Apply(svc("tcp", "TCP")),
        )
        .await
        .expect("tcp adds its own item");
    assert_eq!(out.spec.and_then(|s| s.ports).map(|p| p.len()), Some(2));
    server.shutdown().await;
}

#[tokio::test]
async fn atomic_lists_and_maps_conflict_and_are_owned_as_a_whole() {
    let (_dir, server, client) = common::start_with_client().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let mut base = web(json!([{"name": "web", "image": "app", "args": ["--a", "--b"]}]));
    base["spec"]["template"]["spec"]["nodeSelector"] = json!({"disk": "ssd"});
    let created = api
        .patch("web", &PatchParams::apply("base"), &Patch::Apply(base))
        .await
        .expect("base applies");
    let f = fields_of(created.metadata.managed_fields.as_ref(), "base");
    // LabelSelector and nodeSelector are atomic maps: owned as one leaf, as kube shows them.
    assert_eq!(f["f:spec"]["f:selector"], json!({}), "{f}");
    assert_eq!(
        f["f:spec"]["f:template"]["f:spec"]["f:nodeSelector"],
        json!({}),
        "{f}"
    );

    let args = partial(json!([{"name": "web", "args": ["--a", "--b", "--c"]}]));
    let msg = conflict(
        api.patch(
            "web",
            &PatchParams::apply("other"),
            &Patch::Apply(args.clone()),
        )
        .await
        .expect_err("args is an atomic list"),
    );
    assert_eq!(
        msg,
        "Apply failed with 1 conflict: conflict with \"base\": .spec.template.spec.containers[name=\"web\"].args"
    );
    let mut zone = partial(json!([{"name": "web"}]));
    zone["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    let msg = conflict(
        api.patch(
            "web",
            &PatchParams::apply("other"),
            &Patch::Apply(zone.clone()),
        )
        .await
        .expect_err("nodeSelector is an atomic map"),
    );
    assert!(msg.ends_with(": .spec.template.spec.nodeSelector"), "{msg}");
    let forced = api
        .patch(
            "web",
            &PatchParams::apply("other").force(),
            &Patch::Apply(zone),
        )
        .await
        .expect("force");
    let spec = forced.spec.and_then(|s| s.template.spec).expect("pod spec");
    let selector: Vec<_> = spec.node_selector.unwrap_or_default().into_keys().collect();
    assert_eq!(selector, ["zone"], "an atomic map is replaced, not merged");
    server.shutdown().await;
}

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.ferroflux.io"},
        "spec": {"group": "test.ferroflux.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string"}, "size": {"type": "integer"}, "color": {"type": "string"}}}},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "steps": {"type": "array", "items": {"type": "string"}}}}}}}}]}
    }))
    .expect("valid CRD")
}

#[tokio::test]
async fn custom_resources_merge_by_their_crd_list_types() {
    let (_dir, server, client) = common::start_with_client().await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd())
        .await
        .expect("create CRD");
    let gvk = GroupVersionKind::gvk("test.ferroflux.io", "v1", "Widget");
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, "default", &ApiResource::from_gvk(&gvk));
    let widget = |spec: Value| -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "test.ferroflux.io/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": spec}),
        )
        .expect("object")
    };
    let a = widget(json!({"items": [{"name": "x", "size": 1}], "tags": ["a"], "steps": ["one"]}));
    api.patch("w", &PatchParams::apply("a"), &Patch::Apply(a))
        .await
        .expect("a applies");
    let b = widget(json!({"items": [{"name": "x", "color": "red"}], "tags": ["b"]}));
    let out = api
        .patch("w", &PatchParams::apply("b"), &Patch::Apply(b))
        .await
        .expect("b adds a field to a's item and a member to the set");
    assert_eq!(
        out.data["spec"]["items"],
        json!([{"name": "x", "size": 1, "color": "red"}])
    );
    assert_eq!(out.data["spec"]["tags"], json!(["a", "b"]));
    // A list without x-kubernetes-list-type is atomic.
    let msg = conflict(
        api.patch(
            "w",
            &PatchParams::apply("b"),
            &Patch::Apply(widget(json!({"steps": ["two"]}))),
        )
        .await
        .expect_err("steps is atomic"),
    );
    assert!(msg.ends_with("conflict with \"a\": .spec.steps"), "{msg}");
    server.shutdown().await;
}
