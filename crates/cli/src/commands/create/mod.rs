//! `ferroflux create`: generates objects like `flux create` does, and applies them (server-side
//! apply) or prints them with `--export`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

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
}

#[derive(Debug, Subcommand)]
enum What {
    /// Create or update a tenant: per namespace, the Namespace, the tenant's ServiceAccount and
    /// the RoleBinding that limits the reconcilers to that namespace.
    Tenant(tenant::TenantArgs),
}

pub fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    match &args.what {
        What::Tenant(tenant) => tenant::run(tenant, &args),
    }
}
