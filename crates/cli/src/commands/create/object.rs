//! What every `flux create KIND` shares: flux's NAME check, the object's metadata, the
//! `<kind>/<name>[.<namespace>]` references, the `--interval` as Go prints it, and the last step:
//! print the object as `--export` does, or apply it (server-side) with flux's progress lines.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Map, Value, json};

use ferroflux_apply::manager::{ApplyOptions, ResourceManager};
use ferroflux_gocompat::yaml::emit::{self, Flavor};

use super::CreateArgs;
use super::tenant::{is_object_name, node, parse_labels};

/// The NAME argument after flux's check of every `create` NAME.
pub(super) fn checked_name(name: Option<&str>) -> anyhow::Result<&str> {
    let Some(name) = name else {
        bail!("name is required");
    };
    if !is_object_name(name) {
        bail!(
            "name '{name}' is invalid, it should adhere to standard defined in RFC 1123, the name can only contain alphanumeric characters or '-'"
        );
    }
    Ok(name)
}

/// `metadata` of a generated object: name, the `--namespace` and the `--label`s (left out
/// when none, as Go leaves a nil map out).
pub(super) fn metadata(name: &str, create: &CreateArgs) -> anyhow::Result<Value> {
    let labels = parse_labels(&create.labels)?;
    let mut metadata = json!({"name": name, "namespace": create.namespace});
    if !labels.is_empty() {
        metadata["labels"] = json!(labels);
    }
    Ok(metadata)
}

/// flux's `ParseObjectKindName`: `kind/name` split at its one `/`; anything else is a name
/// without a kind.
pub(super) fn kind_name(input: &str) -> (&str, &str) {
    let mut parts = input.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(kind), Some(name), None) => (kind, name),
        _ => ("", input),
    }
}

/// flux's `ParseObjectKindNameNamespace`: as [`kind_name`], then `name.namespace` split at
/// the last `.`.
pub(super) fn kind_name_namespace(input: &str) -> (&str, &str, &str) {
    let (kind, name) = kind_name(input);
    match name.rsplit_once('.') {
        Some((name, namespace)) => (kind, name, namespace),
        None => (kind, name, ""),
    }
}

/// A cross-namespace reference as Go writes it: `kind` and `namespace` left out when empty,
/// `name` always there.
pub(super) fn reference(kind: &str, name: &str, namespace: &str) -> Value {
    let mut reference = Map::new();
    if !kind.is_empty() {
        reference.insert("kind".into(), json!(kind));
    }
    reference.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        reference.insert("namespace".into(), json!(namespace));
    }
    Value::Object(reference)
}

/// flux's `meta.MakeDependsOn`: `[<namespace>/]<name>` references. pflag reads an empty
/// flag value as no entry, but keeps an empty item of a comma-separated list.
pub(super) fn depends_on(values: &[String]) -> Vec<Value> {
    if let [only] = values
        && only.is_empty()
    {
        return Vec::new();
    }
    values
        .iter()
        .map(|d| match d.split_once('/') {
            Some((namespace, name)) => reference("", name, namespace),
            None => reference("", d, ""),
        })
        .collect()
}

/// A Go duration flag's value as Go prints it back (`10m` is `10m0s`); a bad one fails as
/// cobra does.
pub(super) fn duration(flag: &str, value: &str) -> anyhow::Result<String> {
    let nanos = ferroflux_gocompat::duration::parse(value).map_err(|err| {
        anyhow::anyhow!("invalid argument {value:?} for \"--{flag}\" flag: {err}")
    })?;
    Ok(ferroflux_gocompat::duration::format(nanos))
}

/// What `flux create ... --export` prints for one object: a `---` line, then the object as
/// `sigs.k8s.io/yaml` writes it, trimmed.
pub(super) fn export(object: &Value) -> String {
    format!(
        "---\n{}\n",
        emit::to_string(&node(object), Flavor::Sigs).trim()
    )
}

/// The kind of a generated object, for the API and flux's progress lines.
#[derive(Debug, Clone, Copy)]
pub(super) struct Generated {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

/// Prints `object` with `--export`; otherwise applies it by server-side apply with flux's
/// progress lines on stderr (`✚ generating`, `► applying`, `✔ <Kind> created|updated`).
/// flux then waits for the object's Ready condition; that wait is left to `ferroflux get`.
pub(super) fn finish(
    generated: Generated,
    object: &Value,
    create: &CreateArgs,
) -> anyhow::Result<ExitCode> {
    if create.export {
        out!("{}", export(object))?;
        return Ok(ExitCode::SUCCESS);
    }
    let existed = apply_to_cluster(
        generated,
        object,
        create,
        || eprintln!("✚ generating {}", generated.kind),
        || eprintln!("► applying {}", generated.kind),
    )?;
    let done = if existed { "updated" } else { "created" };
    eprintln!("✔ {} {done}", generated.kind);
    Ok(ExitCode::SUCCESS)
}

/// Applies `object` to the cluster of `--kubeconfig` within `--timeout`; whether it existed
/// before. `generating` runs before the connection, `applying` once connected.
pub(super) fn apply_to_cluster(
    generated: Generated,
    object: &Value,
    create: &CreateArgs,
    generating: impl FnOnce(),
    applying: impl FnOnce(),
) -> anyhow::Result<bool> {
    let timeout = ferroflux_gocompat::duration::parse_std(&create.timeout)
        .with_context(|| format!("--timeout {:?} is not a duration", create.timeout))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    generating();
    runtime.block_on(async {
        let client = crate::commands::get::client(create.kubeconfig.as_deref()).await?;
        applying();
        tokio::time::timeout(timeout, apply(&client, generated, object))
            .await
            .map_err(|_| anyhow::anyhow!("context deadline exceeded"))?
    })
}

/// Applies `object`; whether it existed before.
async fn apply(
    client: &kube::Client,
    generated: Generated,
    object: &Value,
) -> anyhow::Result<bool> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(generated.group, generated.version, generated.kind),
        generated.plural,
    );
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let existed = api.get_opt(name).await?.is_some();
    ResourceManager::new(client.clone(), "ferroflux")
        .apply_all(std::slice::from_ref(object), &ApplyOptions::default())
        .await?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_flux() {
        assert_eq!(kind_name("GitRepository/app"), ("GitRepository", "app"));
        assert_eq!(kind_name("a/b/c"), ("", "a/b/c"));
        assert_eq!(kind_name("app"), ("", "app"));
        assert_eq!(
            kind_name_namespace("HelmRepository/bar.ns.x"),
            ("HelmRepository", "bar.ns", "x")
        );
        assert_eq!(
            reference("", "", ""),
            json!({"name": ""}),
            "flux writes an empty name"
        );
    }

    #[test]
    fn durations_print_as_go() {
        assert_eq!(duration("interval", "10m").ok().as_deref(), Some("10m0s"));
        assert_eq!(duration("interval", "90s").ok().as_deref(), Some("1m30s"));
        assert!(duration("interval", "soon").is_err());
    }
}
