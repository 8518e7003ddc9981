//! `ferroflux create tenant NAME --with-namespace=NS`: what `flux create tenant` generates for
//! multi-tenancy lockdown. Per namespace, a Namespace labelled `toolkit.fluxcd.io/tenant: NAME`,
//! the tenant's ServiceAccount and the RoleBinding `NAME-reconciler` that grants ROLE to the
//! namespace's reconciler identity (`gotk:NS:reconciler`) and to that ServiceAccount. Names are
//! checked and refused in flux's words; `--export` prints what flux prints, byte for byte.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

use ferroflux_apply::manager::{ApplyOptions, ResourceManager};
use ferroflux_gocompat::yaml::emit::{self, Flavor, Node};
use ferroflux_schema::names::{label_value_errors, qualified_name_errors};

use super::CreateArgs;

/// The label flux puts on every object of a tenant.
pub const TENANT_LABEL: &str = "toolkit.fluxcd.io/tenant";

/// Create or update a tenant.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// The tenant's name.
    name: Option<String>,
    /// Namespace belonging to this tenant (repeat the flag or separate with commas).
    #[arg(long = "with-namespace", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Cluster role of the tenant role binding.
    #[arg(long, default_value = "cluster-admin")]
    cluster_role: String,
    /// Service account belonging to this tenant (default: the tenant's name).
    #[arg(long = "with-service-account", default_value = "")]
    service_account: String,
    /// Skip namespace creation (the namespace must exist already).
    #[arg(long)]
    skip_namespace: bool,
}

/// One namespace's objects, in the order flux writes them.
struct TenantObjects {
    namespace: Value,
    account: Value,
    binding: Value,
}

pub fn run(args: &TenantArgs, create: &CreateArgs) -> anyhow::Result<ExitCode> {
    let objects = generate(args, &create.labels)?;
    if create.export {
        out!("{}", export(&objects, args.skip_namespace))?;
        return Ok(ExitCode::SUCCESS);
    }
    let timeout = ferroflux_gocompat::duration::parse_std(&create.timeout)
        .with_context(|| format!("--timeout {:?} is not a duration", create.timeout))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = crate::commands::get::client(create.kubeconfig.as_deref()).await?;
        tokio::time::timeout(timeout, apply(&client, &objects, args.skip_namespace))
            .await
            .map_err(|_| anyhow::anyhow!("context deadline exceeded"))??;
        eprintln!("✔ tenant setup completed");
        Ok(ExitCode::SUCCESS)
    })
}

/// The tenant's objects per namespace, after flux's checks in flux's order and words.
fn generate(args: &TenantArgs, labels: &[String]) -> anyhow::Result<Vec<TenantObjects>> {
    let Some(tenant) = args.name.as_deref() else {
        bail!("name is required");
    };
    // `flux create`'s check of every NAME, then the tenant's own.
    if !is_object_name(tenant) {
        bail!(
            "name '{tenant}' is invalid, it should adhere to standard defined in RFC 1123, the name can only contain alphanumeric characters or '-'"
        );
    }
    check_qualified("invalid tenant name", tenant)?;
    if args.cluster_role.is_empty() {
        bail!("cluster-role is required");
    }
    if args.namespaces.is_empty() {
        bail!("with-namespace is required");
    }
    let mut objects = Vec::new();
    for ns in &args.namespaces {
        check_qualified("invalid namespace", ns)?;
        let mut labels = parse_labels(labels)?;
        labels.insert(TENANT_LABEL.to_string(), tenant.to_string());
        let account = if args.service_account.is_empty() {
            tenant
        } else {
            &args.service_account
        };
        check_qualified("invalid service-account name", account)?;
        objects.push(TenantObjects {
            namespace: json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": labels}}),
            account: json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": account, "namespace": ns, "labels": labels}}),
            binding: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": format!("{tenant}-reconciler"), "namespace": ns, "labels": labels},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                        "name": format!("gotk:{ns}:reconciler")},
                    {"kind": "ServiceAccount", "name": account, "namespace": ns},
                ],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": args.cluster_role}}),
        });
    }
    Ok(objects)
}

/// `flux create`'s NAME rule: 2 to 63 lowercase alphanumerics or `-`, alphanumeric at both ends.
pub(super) fn is_object_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (2..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// apimachinery's `IsQualifiedName`, failing as flux does: `<what> '<value>': [<faults>]`
/// (Go's `%v` of the list).
fn check_qualified(what: &str, value: &str) -> anyhow::Result<()> {
    let faults = qualified_name_errors(value);
    if faults.is_empty() {
        Ok(())
    } else {
        bail!("{what} '{value}': [{}]", faults.join(" "))
    }
}

/// `--label key=value` as flux reads them (exactly one `=`, key and value checked like kube).
pub(super) fn parse_labels(labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut parsed = BTreeMap::new();
    for label in labels {
        let parts: Vec<&str> = label.split('=').collect();
        let [key, value] = parts.as_slice() else {
            bail!("invalid label format '{label}', must be key=value");
        };
        let faults = qualified_name_errors(key);
        if !faults.is_empty() {
            bail!("invalid label '{key}': [{}]", faults.join(" "));
        }
        let faults = label_value_errors(value);
        if !faults.is_empty() {
            bail!("invalid label value '{value}': [{}]", faults.join(" "));
        }
        parsed.insert((*key).to_string(), (*value).to_string());
    }
    Ok(parsed)
}

/// What `flux create tenant --export` prints: every document after a `---` line, as
/// `sigs.k8s.io/yaml` writes it, trimmed.
fn export(objects: &[TenantObjects], skip_namespace: bool) -> String {
    let mut out = String::new();
    for tenant in objects {
        let mut docs = vec![&tenant.account, &tenant.binding];
        if !skip_namespace {
            docs.insert(0, &tenant.namespace);
        }
        for doc in docs {
            out.push_str("---\n");
            out.push_str(emit::to_string(&node(doc), Flavor::Sigs).trim());
            out.push('\n');
        }
    }
    out
}

/// The YAML writer's view of a generated object (strings, maps and lists only).
pub(super) fn node(value: &Value) -> Node<'_> {
    match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Node::Float(n.as_f64().unwrap_or_default()), Node::Int),
        Value::String(s) => Node::Str(Cow::Borrowed(s)),
        Value::Array(items) => Node::Seq(items.iter().map(node).collect()),
        Value::Object(map) => Node::Map(
            map.iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), node(v)))
                .collect(),
        ),
    }
}

/// Applies each namespace's objects in flux's order with its progress lines (on stderr, as
/// flux's), by server-side apply. A RoleBinding's roleRef cannot change: one bound to another
/// role is deleted first, as flux deletes and creates it.
async fn apply(
    client: &kube::Client,
    objects: &[TenantObjects],
    skip_namespace: bool,
) -> anyhow::Result<()> {
    let manager = ResourceManager::new(client.clone(), "ferroflux");
    let options = ApplyOptions::default();
    for tenant in objects {
        let mut steps = vec![
            ("service account", &tenant.account),
            ("role binding", &tenant.binding),
        ];
        if !skip_namespace {
            steps.insert(0, ("namespace", &tenant.namespace));
        }
        for (what, object) in steps {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            eprintln!("► applying {what} {name}");
            if what == "role binding" {
                delete_if_bound_elsewhere(client, object).await?;
            }
            manager
                .apply_all(std::slice::from_ref(object), &options)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the stored RoleBinding of `binding`'s name when its roleRef is another.
async fn delete_if_bound_elsewhere(client: &kube::Client, binding: &Value) -> anyhow::Result<()> {
    let namespace = binding["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = binding["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
    let Some(stored) = api.get_opt(name).await? else {
        return Ok(());
    };
    if serde_json::to_value(&stored.role_ref)? != binding["roleRef"] {
        api.delete(name, &DeleteParams::default()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, namespaces: &[&str]) -> TenantArgs {
        TenantArgs {
            name: Some(name.to_string()),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            cluster_role: "cluster-admin".into(),
            service_account: String::new(),
            skip_namespace: false,
        }
    }

    #[test]
    fn names_are_refused_in_flux_words() {
        for (name, namespaces, want) in [
            (
                "a",
                vec!["apps"],
                "name 'a' is invalid, it should adhere to standard defined in RFC 1123, the name can only contain alphanumeric characters or '-'",
            ),
            ("dev-team", vec![], "with-namespace is required"),
            (
                "dev-team",
                vec!["-apps"],
                "invalid namespace '-apps': [name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]",
            ),
        ] {
            let err = generate(&args(name, &namespaces), &[])
                .err()
                .map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some(want), "{name} {namespaces:?}");
        }
        let err = generate(&args("dev-team", &["apps"]), &["a=b=c".into()]).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("invalid label format 'a=b=c', must be key=value")
        );
    }

    #[test]
    fn export_writes_flux_golden_tenant() {
        // flux2's cmd/flux/testdata/create_tenant/tenant-basic.yaml, by content.
        let objects = generate(&args("dev-team", &["apps"]), &[]).expect("valid");
        let text = export(&objects, false);
        assert!(text.starts_with("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  labels:\n    toolkit.fluxcd.io/tenant: dev-team\n  name: apps\n---\n"), "{text}");
        assert!(text.ends_with("subjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: gotk:apps:reconciler\n- kind: ServiceAccount\n  name: dev-team\n  namespace: apps\n"), "{text}");
    }
}
