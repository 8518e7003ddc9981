//! `ferroflux create`: generates objects like `flux create` does, and applies them (server-side
//! apply) or prints them with `--export`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub mod helmrelease;
pub mod image;
pub mod kustomization;
pub mod notification;
mod object;
pub mod secret;
pub mod source;
pub mod tenant;

/// Create or update objects, like `flux create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    what: What,
    /// Export in YAML format to stdout.
    #[arg(long, global = true)]
    export: bool,
    /// Set labels on the objects (`key=value`; repeat the flag or separate with commas).
    #[arg(long = "label", global = true, value_delimiter = ',')]
    labels: Vec<String>,
    /// Path to the kubeconfig (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// How long the command may take.
    #[arg(long, global = true, default_value = "5m0s")]
    timeout: String,
    /// The namespace of the generated objects (not of a tenant's).
    #[arg(short, long, global = true, default_value = "flux-system")]
    namespace: String,
    /// The objects' reconcile interval (a Go duration; 1m0s unless given).
    #[arg(long, global = true)]
    interval: Option<String>,
}

impl CreateArgs {
    /// `--interval`, or flux's default; an ImagePolicy reads the flag as its own.
    fn interval(&self) -> &str {
        self.interval.as_deref().unwrap_or("1m0s")
    }
}

#[derive(Debug, Subcommand)]
enum What {
    /// Create or update a tenant: per namespace, the Namespace, the tenant's ServiceAccount and
    /// the RoleBinding that limits the reconcilers to that namespace.
    Tenant(tenant::TenantArgs),
    /// Create or update an Alert (notification.toolkit.fluxcd.io/v1beta3).
    Alert(notification::AlertArgs),
    /// Create or update a Provider for Alerts (notification.toolkit.fluxcd.io/v1beta3).
    AlertProvider(notification::ProviderArgs),
    /// Create or update a Receiver (notification.toolkit.fluxcd.io/v1).
    Receiver(notification::ReceiverArgs),
    /// Create or update a HelmRelease (helm.toolkit.fluxcd.io/v2).
    #[command(visible_alias = "hr")]
    Helmrelease(Box<helmrelease::HelmReleaseArgs>),
    /// Create or update a Kustomization (kustomize.toolkit.fluxcd.io/v1).
    #[command(visible_alias = "ks")]
    Kustomization(Box<kustomization::KustomizationArgs>),
    /// Create or update image automation objects (image.toolkit.fluxcd.io/v1).
    Image(Box<image::ImageArgs>),
    /// Create or update Secrets with source credentials.
    Secret(Box<secret::SecretArgs>),
    /// Create or update sources (source.toolkit.fluxcd.io/v1).
    Source(Box<source::SourceArgs>),
}

pub fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Tenant(tenant) => tenant::run(tenant, &args),
        What::Alert(alert) => notification::run_alert(alert, &args),
        What::AlertProvider(provider) => notification::run_provider(provider, &args),
        What::Receiver(receiver) => notification::run_receiver(receiver, &args),
        What::Helmrelease(release) => helmrelease::run(release, &args),
        What::Kustomization(ks) => kustomization::run(ks, &args),
        What::Image(image) => image::run(image, &args),
        What::Secret(secret) => secret::run(secret, &args),
        What::Source(source) => source::run(source, &args),
    }
}
