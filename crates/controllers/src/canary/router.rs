//! Traffic routing of a Canary: provider `kubernetes` (no traffic shifting: the apex Service
//! selects the primary, `<service>-canary` the canary, as Flagger's blue/green) and Gateway
//! API (`gatewayapi:v1`: the weights of the primary and canary `backendRefs` of the HTTPRoute
//! named after the apex Service).

use ferroflux_api::flagger::Canary;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use super::workload::{MANAGER, owner, service_name};

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

fn http_route() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GATEWAY_GROUP, "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Whether the Canary routes through an HTTPRoute.
pub fn gateway_api(canary: &Canary) -> bool {
    canary
        .spec
        .provider
        .as_deref()
        .is_some_and(|p| p.starts_with("gatewayapi"))
}

/// The HTTPRoute of `canary` with these weights.
fn route_object(canary: &Canary, primary: i32, weight: i32) -> Value {
    let apex = service_name(canary);
    let port = canary.spec.service.port;
    json!({
        "apiVersion": format!("{GATEWAY_GROUP}/v1"),
        "kind": "HTTPRoute",
        "metadata": {
            "name": apex,
            "namespace": canary.namespace(),
            "ownerReferences": [owner(canary)],
        },
        "spec": {
            "parentRefs": canary.spec.service.gateway_refs.clone().unwrap_or_default(),
            "rules": [{
                "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
                "backendRefs": [
                    { "group": "", "kind": "Service", "name": format!("{apex}-primary"), "port": port, "weight": primary },
                    { "group": "", "kind": "Service", "name": format!("{apex}-canary"), "port": port, "weight": weight },
                ],
            }],
        },
    })
}

/// Creates the HTTPRoute with all traffic on the primary when it does not exist (Flagger's
/// router `Reconcile`); existing weights are left to the analysis.
pub async fn reconcile(client: &kube::Client, canary: &Canary) -> Result<(), kube::Error> {
    if !gateway_api(canary) {
        return Ok(());
    }
    let api = routes(client, canary);
    if api.get_opt(&service_name(canary)).await?.is_some() {
        return Ok(());
    }
    set_routes(client, canary, ferroflux_canary::TOTAL_WEIGHT, 0).await
}

fn routes(client: &kube::Client, canary: &Canary) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        &canary.namespace().unwrap_or_default(),
        &http_route(),
    )
}

/// The (primary, canary) weights routed now. `kubernetes`: the canary takes the traffic once
/// blue/green iterations run (Flagger's no-op router).
pub async fn get_routes(client: &kube::Client, canary: &Canary) -> Result<(i32, i32), kube::Error> {
    if !gateway_api(canary) {
        let iterations = canary
            .status
            .as_ref()
            .and_then(|s| s.iterations)
            .unwrap_or(0);
        return Ok(if iterations > 0 { (0, 100) } else { (100, 0) });
    }
    let apex = service_name(canary);
    let Some(route) = routes(client, canary).get_opt(&apex).await? else {
        return Ok((ferroflux_canary::TOTAL_WEIGHT, 0));
    };
    let refs = route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let weight = |name: String| {
        refs.iter()
            .find(|r| r["name"] == name.as_str())
            .and_then(|r| r["weight"].as_i64())
            .and_then(|w| i32::try_from(w).ok())
            .unwrap_or(0)
    };
    Ok((
        weight(format!("{apex}-primary")),
        weight(format!("{apex}-canary")),
    ))
}

/// Routes these weights (no-op for `kubernetes`).
pub async fn set_routes(
    client: &kube::Client,
    canary: &Canary,
    primary: i32,
    weight: i32,
) -> Result<(), kube::Error> {
    if !gateway_api(canary) {
        return Ok(());
    }
    let object = route_object(canary, primary, weight);
    routes(client, canary)
        .patch(
            &service_name(canary),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await?;
    Ok(())
}

/// The HTTPRoute CRD served with the canary controller when no Gateway API implementation
/// installed it: `gateway.networking.k8s.io/v1` HTTPRoute, namespaced, with the fields the
/// router writes (parentRefs, hostnames, rules with matches and weighted backendRefs) and the
/// rest preserved, so a Gateway API controller's own objects round-trip.
pub fn httproute_crd() -> Value {
    let preserve = json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true });
    let backend = json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "required": ["name"],
        "properties": {
            "group": { "type": "string" },
            "kind": { "type": "string" },
            "name": { "type": "string", "maxLength": 253, "minLength": 1 },
            "namespace": { "type": "string" },
            "port": { "type": "integer", "format": "int32", "minimum": 1, "maximum": 65535 },
            "weight": { "type": "integer", "format": "int32", "minimum": 0, "maximum": 1000000 },
        },
    });
    let rules = json!({
        "type": "array",
        "maxItems": 16,
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "matches": { "type": "array", "maxItems": 64, "items": preserve },
                "backendRefs": { "type": "array", "maxItems": 16, "items": backend },
            },
        },
    });
    let spec = json!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "parentRefs": { "type": "array", "maxItems": 32, "items": preserve },
            "hostnames": { "type": "array", "maxItems": 16, "items": { "type": "string" } },
            "rules": rules,
        },
    });
    let schema = json!({
        "type": "object",
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "type": "object" },
            "spec": spec,
            "status": preserve,
        },
    });
    let columns = json!([
        { "name": "Hostnames", "type": "string", "jsonPath": ".spec.hostnames" },
        { "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" },
    ]);
    let names = json!({
        "kind": "HTTPRoute",
        "listKind": "HTTPRouteList",
        "plural": "httproutes",
        "singular": "httproute",
        "categories": ["gateway-api"],
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("httproutes.{GATEWAY_GROUP}"),
            // *.k8s.io groups need an approved API review; the Gateway API's own.
            "annotations": {
                "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466",
                "gateway.networking.k8s.io/bundle-version": "v1.2.0",
            },
            "labels": { "app.kubernetes.io/component": "flagger" },
        },
        "spec": {
            "group": GATEWAY_GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "additionalPrinterColumns": columns,
                "schema": { "openAPIV3Schema": schema },
            }],
        },
    })
}
