//! Where a HelmRelease's chart comes from: the HelmChart made from `spec.chart` (created and
//! owned as helm-controller does: `<namespace>-<name>` in the source's namespace, labelled with
//! the HelmRelease) or the source of `spec.chartRef`; then the artifact, downloaded within a
//! size budget, checked against its digest and loaded.

use std::time::Duration;

use ferroflux_api::helm::HelmRelease;
use ferroflux_api::meta::{Artifact, reason};
use ferroflux_apply::manager::{ApplyOptions, ResourceManager, api_message};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::{Value, json};

use super::{Context, FIELD_MANAGER, NAME_LABEL, NAMESPACE_LABEL};
use crate::runtime::ReconcileError;
use crate::source::source_resource;

/// How long to wait before looking at a source that is not ready again.
const SOURCE_WAIT: Duration = Duration::from_secs(10);

/// `namespace/name` of the HelmChart made for `hr` (helm-controller's `GetHelmChartName`).
pub fn helm_chart_ref(hr: &HelmRelease) -> Option<(String, String)> {
    let chart = hr.spec.chart.as_ref()?;
    let own = hr.namespace().unwrap_or_default();
    let namespace = chart
        .spec
        .source_ref
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| own.clone());
    Some((namespace, format!("{own}-{}", hr.name_any())))
}

/// The HelmChart helm-controller builds from `spec.chart`.
fn helm_chart_object(hr: &HelmRelease, namespace: &str, name: &str) -> Option<Value> {
    let template = hr.spec.chart.as_ref()?;
    let spec = &template.spec;
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(NAME_LABEL.into(), hr.name_any());
    labels.insert(NAMESPACE_LABEL.into(), hr.namespace().unwrap_or_default());
    let annotations = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    let mut chart_spec = json!({
        "chart": spec.chart,
        "version": spec.version.clone().unwrap_or_else(|| "*".into()),
        "sourceRef": {"kind": spec.source_ref.kind, "name": spec.source_ref.name},
        "interval": spec.interval.clone().unwrap_or_else(|| hr.spec.interval.clone()),
    });
    if let Some(strategy) = &spec.reconcile_strategy {
        chart_spec["reconcileStrategy"] = json!(strategy);
    }
    if let Some(files) = &spec.values_files {
        chart_spec["valuesFiles"] = json!(files);
    }
    if let Some(ignore) = spec.ignore_missing_values_files {
        chart_spec["ignoreMissingValuesFiles"] = json!(ignore);
    }
    // The HelmChart verifies the cosign signature of OCI charts and says so (SourceVerified).
    if let Some(verify) = spec
        .verify
        .as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
    {
        chart_spec["verify"] = verify;
    }
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
    if !annotations.is_empty() {
        metadata["annotations"] = json!(annotations);
    }
    Some(json!({
        "apiVersion": format!("{}/v1", ferroflux_api::source::GROUP),
        "kind": "HelmChart",
        "metadata": metadata,
        "spec": chart_spec,
    }))
}

/// The artifact of the chart: applies the HelmChart of `spec.chart` (as the controller, as
/// Flux does) and reads its artifact once it is ready at its generation, or reads the
/// `chartRef` source's. Owns `ArtifactFailed`, waiting while the source is not ready.
pub async fn artifact(
    hr: &HelmRelease,
    ctx: &Context,
) -> Result<(Artifact, String), ReconcileError> {
    let own = hr.namespace().unwrap_or_default();
    let (kind, namespace, name) = match (&hr.spec.chart, &hr.spec.chart_ref) {
        (Some(_), _) => {
            let (namespace, name) = helm_chart_ref(hr).unwrap_or_default();
            cross_namespace(ctx, &own, "HelmChart", &namespace, &name)?;
            let object = helm_chart_object(hr, &namespace, &name).unwrap_or_default();
            ResourceManager::new(ctx.client().clone(), FIELD_MANAGER)
                .apply_all(&[object], &ApplyOptions::default())
                .await
                .map_err(|e| {
                    ReconcileError::generic(
                        reason::ARTIFACT_FAILED,
                        format!("failed to apply HelmChart '{namespace}/{name}': {e}"),
                    )
                })?;
            ("HelmChart".to_string(), namespace, name)
        }
        (None, Some(source)) => {
            let namespace = source.namespace.clone().unwrap_or_else(|| own.clone());
            cross_namespace(ctx, &own, &source.kind, &namespace, &source.name)?;
            (source.kind.clone(), namespace, source.name.clone())
        }
        (None, None) => {
            return Err(ReconcileError::stalling(
                reason::INVALID,
                "either chart or chartRef must be set",
            ));
        }
    };
    let id = format!("{kind}/{namespace}/{name}");
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client().clone(), &namespace, &source_resource(&kind));
    let waiting =
        |message: String| ReconcileError::waiting(reason::ARTIFACT_FAILED, message, SOURCE_WAIT);
    let object = api
        .get_opt(&name)
        .await
        .map_err(|e| waiting(format!("could not get Source object: {}", api_message(&e))))?
        .ok_or_else(|| waiting(format!("could not get Source object: {id} not found")))?;
    let status = &object.data["status"];
    let observed = status["observedGeneration"].as_i64();
    if kind == "HelmChart" && observed != object.metadata.generation {
        return Err(waiting(format!(
            "HelmChart '{namespace}/{name}' is not ready: latest generation of object has not been reconciled"
        )));
    }
    if status["artifact"].is_null() {
        let message = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["message"].as_str())
            .unwrap_or("artifact not found");
        return Err(waiting(format!(
            "{kind} '{namespace}/{name}' is not ready: {message}"
        )));
    }
    let artifact: Artifact = serde_json::from_value(status["artifact"].clone())
        .map_err(|e| waiting(format!("{id} has an invalid artifact: {e}")))?;
    Ok((artifact, format!("{namespace}/{name}")))
}

fn cross_namespace(
    ctx: &Context,
    own: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), ReconcileError> {
    if ctx.options.no_cross_namespace_refs && namespace != own {
        return Err(ReconcileError::stalling(
            reason::ACCESS_DENIED,
            format!(
                "can't access '{kind}/{namespace}/{name}', cross-namespace references have been blocked"
            ),
        ));
    }
    Ok(())
}

/// Downloads the chart archive, at most `max` bytes, and checks its digest.
pub async fn download(
    ctx: &Context,
    artifact: &Artifact,
    max: u64,
) -> Result<Vec<u8>, ReconcileError> {
    let failed = |message: String| {
        ReconcileError::generic(
            reason::ARTIFACT_FAILED,
            format!("failed to download artifact: {message}"),
        )
    };
    let mut resp = ctx
        .http
        .get(&artifact.url)
        .send()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > max {
            return Err(failed(format!("artifact exceeds {max} bytes")));
        }
    }
    let actual = ferroflux_source::sha256_digest(&body);
    if let Some(expected) = artifact.digest.as_deref().filter(|d| !d.is_empty())
        && actual != expected
    {
        return Err(failed(format!(
            "digest {actual} is not the expected {expected}"
        )));
    }
    Ok(body)
}

/// Deletes the HelmChart made for `hr` (on deletion, or when it moved to `chartRef`).
pub async fn delete_helm_chart(ctx: &Context, reference: &str) {
    let Some((namespace, name)) = reference.split_once('/') else {
        return;
    };
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client().clone(),
        namespace,
        &source_resource("HelmChart"),
    );
    if let Err(err) = api.delete(name, &DeleteParams::background()).await
        && !matches!(&err, kube::Error::Api(s) if s.code == 404)
    {
        tracing::warn!(helmchart = reference, error = %api_message(&err), "failed to delete HelmChart");
    }
}
