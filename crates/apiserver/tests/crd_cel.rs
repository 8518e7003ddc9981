//! CEL `x-kubernetes-validations` on the CRD write path, as kube-apiserver 1.36 answers (the
//! expected texts are its answers to the same requests): rules that do not compile refuse the
//! CRD, failing rules refuse the object, transition rules compare with the stored object.

mod common;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn crd(rules: Value) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.h2.example.com"},
        "spec": {"group": "h2.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-validations": rules, "properties": {
                        "a": {"type": "string", "default": "dflt"},
                        "num": {"type": "integer", "default": 1},
                        "items": {"type": "array", "items": {"type": "object",
                            "x-kubernetes-validations": [{"rule": "self.name != 'no'", "message": "item name no"}],
                            "properties": {"name": {"type": "string"}}}}}}}}}}]}
    }))
    .expect("valid CRD")
}

fn message(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "h2.example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec}))
    .expect("object")
}

#[tokio::test]
async fn cel_rules_refuse_bad_crds_and_objects_as_kube_does() {
    let (_dir, server, client) = common::start_with_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());

    let bad = crds
        .create(
            &PostParams::default(),
            &crd(json!([{"rule": "self.missing == 1 || true"}])),
        )
        .await
        .expect_err("a rule naming an undeclared field");
    assert_eq!(
        message(bad),
        (
            422,
            "CustomResourceDefinition.apiextensions.k8s.io \"widgets.h2.example.com\" is invalid: spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {\"Rule\":\"self.missing == 1 || true\",\"Message\":\"\",\"MessageExpression\":\"\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: compilation failed: ERROR: <input>:1:5: undefined field 'missing'\n | self.missing == 1 || true\n | ....^".to_string()
        )
    );

    crds.create(
        &PostParams::default(),
        &crd(json!([
            {"rule": "self.num < 10"},
            {"rule": "self.a == oldSelf.a", "message": "a is immutable"}
        ])),
    )
    .await
    .expect("a CRD with rules that compile");
    let gvk = GroupVersionKind::gvk("h2.example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);

    let refused = api
        .create(
            &PostParams::default(),
            &widget("w1", json!({"num": 12, "items": [{"name": "no"}]})),
        )
        .await
        .expect_err("failing rules");
    assert_eq!(
        message(refused),
        (
            422,
            "Widget.h2.example.com \"w1\" is invalid: [spec: Invalid value: failed rule: self.num < 10, spec.items[0]: Invalid value: item name no]".to_string()
        )
    );

    let created = api
        .create(&PostParams::default(), &widget("w1", json!({})))
        .await
        .expect("a valid widget (the transition rule has no stored value to compare)");
    assert_eq!(created.data["spec"], json!({"a": "dflt", "num": 1}));
    let changed = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"a": "changed"}})),
        )
        .await
        .expect_err("the transition rule");
    assert_eq!(
        message(changed),
        (
            422,
            "Widget.h2.example.com \"w1\" is invalid: spec: Invalid value: a is immutable"
                .to_string()
        )
    );
    api.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"num": 3}})),
    )
    .await
    .expect("an update that keeps a");
    server.shutdown().await;
}

#[tokio::test]
async fn defaults_added_to_a_crd_later_show_on_stored_objects() {
    let (_dir, server, client) = common::start_with_client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd(json!([])))
        .await
        .expect("CRD");
    let gvk = GroupVersionKind::gvk("h2.example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    api.create(&PostParams::default(), &widget("w1", json!({})))
        .await
        .expect("widget");
    // The schema gains a property with a default; the stored object has not been written since.
    crds.patch(
        "widgets.h2.example.com",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "add",
                "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/added",
                "value": {"type": "string", "default": "later"}}]))
            .expect("JSON patch"),
        ),
    )
    .await
    .expect("CRD update");
    let got = api.get("w1").await.expect("get");
    assert_eq!(got.data["spec"]["added"], "later");
    let listed = api.list(&Default::default()).await.expect("list");
    assert_eq!(listed.items[0].data["spec"]["added"], "later");
    server.shutdown().await;
}
