//! `ferroflux reconcile`: asks a controller to reconcile now, like `flux reconcile`, by setting
//! `reconcile.fluxcd.io/requestedAt` and waiting until the controller has handled it. Progress
//! goes to standard error as flux's does, so standard output stays empty for scripts.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Subcommand};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use ferroflux_api::meta::RECONCILE_REQUEST_ANNOTATION;

use super::get::{self, Shown};

/// Reconcile a Flux object now.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    cluster: super::cluster::ClusterArgs,
}

#[derive(Debug, Subcommand)]
enum What {
    /// A Kustomization.
    #[command(visible_aliases = ["ks", "kustomizations"])]
    Kustomization {
        /// Its name.
        name: String,
        /// Reconcile its source first.
        #[arg(long)]
        with_source: bool,
    },
    /// A source.
    Source {
        #[command(subcommand)]
        kind: SourceKind,
    },
}

#[derive(Debug, Subcommand)]
enum SourceKind {
    /// A GitRepository.
    Git {
        /// Its name.
        name: String,
    },
    /// An OCIRepository.
    Oci {
        /// Its name.
        name: String,
    },
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = args.cluster.timeout()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let namespace = args.cluster.namespace.clone();
    runtime.block_on(async {
        let client = args.cluster.client().await?;
        let reconciled = match &args.what {
            What::Kustomization { name, with_source } => {
                if *with_source {
                    let ks = fetch(&client, get::KUSTOMIZATIONS, &namespace, name).await?;
                    let source_ref = &ks.data["spec"]["sourceRef"];
                    let kind = source_ref["kind"].as_str().unwrap_or("GitRepository");
                    let shown = match kind {
                        "OCIRepository" => get::source("OCIRepository", "ocirepositories"),
                        "Bucket" => get::source("Bucket", "buckets"),
                        _ => get::source("GitRepository", "gitrepositories"),
                    };
                    let namespace = source_ref["namespace"]
                        .as_str()
                        .unwrap_or(&namespace)
                        .to_string();
                    let source_name = source_ref["name"].as_str().unwrap_or_default().to_string();
                    reconcile(
                        &client,
                        shown,
                        &namespace,
                        &source_name,
                        timeout,
                        Quote::Yes,
                    )
                    .await?;
                }
                // flux quotes the Ready message of a failure, except after `--with-source`.
                let quote = if *with_source { Quote::No } else { Quote::Yes };
                reconcile(
                    &client,
                    get::KUSTOMIZATIONS,
                    &namespace,
                    name,
                    timeout,
                    quote,
                )
                .await
            }
            What::Source { kind } => {
                let (shown, name) = match kind {
                    SourceKind::Git { name } => {
                        (get::source("GitRepository", "gitrepositories"), name)
                    }
                    SourceKind::Oci { name } => {
                        (get::source("OCIRepository", "ocirepositories"), name)
                    }
                };
                reconcile(&client, shown, &namespace, name, timeout, Quote::Yes).await
            }
        };
        reconciled.map(|()| ExitCode::SUCCESS)
    })
}

async fn fetch(
    client: &kube::Client,
    shown: Shown,
    namespace: &str,
    name: &str,
) -> anyhow::Result<DynamicObject> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &shown.resource());
    match api.get_opt(name).await? {
        Some(object) => Ok(object),
        None => bail!("{} '{namespace}/{name}' not found", shown.kind),
    }
}

/// Whether a failed reconciliation's message is shown in quotes, as flux words it.
#[derive(Debug, Clone, Copy)]
enum Quote {
    Yes,
    No,
}

async fn reconcile(
    client: &kube::Client,
    shown: Shown,
    namespace: &str,
    name: &str,
    timeout: Duration,
    quote: Quote,
) -> anyhow::Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &shown.resource());
    let object = fetch(client, shown, namespace, name).await?;
    if object.data["spec"]["suspend"] == true {
        bail!("resource is suspended");
    }
    eprintln!(
        "► annotating {} {name} in {namespace} namespace",
        shown.kind
    );
    let requested = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: requested}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    eprintln!("✔ {} annotated", shown.kind);
    eprintln!("◎ waiting for {} reconciliation", shown.kind);
    let started = Instant::now();
    loop {
        let object = serde_json::to_value(api.get(name).await?)?;
        if object["status"]["lastHandledReconcileAt"] == requested.as_str() {
            let ready = get::ready(&object);
            if ready.is_some_and(|c| c["status"] == "True") {
                let verb = if shown.kind == "Kustomization" {
                    "applied"
                } else {
                    "fetched"
                };
                eprintln!("✔ {verb} revision {}", shown.revision_of(&object));
                return Ok(());
            }
            if let Some(ready) = ready.filter(|c| c["status"] == "False") {
                let message = ready["message"].as_str().unwrap_or_default();
                match quote {
                    Quote::Yes => bail!("{} reconciliation failed: '{message}'", shown.kind),
                    Quote::No => bail!("{} reconciliation failed: {message}", shown.kind),
                }
            }
        }
        if started.elapsed() > timeout {
            bail!(
                "timeout waiting for {} {namespace}/{name} to be reconciled",
                shown.kind
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
