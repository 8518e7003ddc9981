//! `ferroflux`: a Flux-compatible GitOps toolkit. The binary holds clap definitions, tables and
//! glue; every capability lives in a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `print!` that returns the write's error instead of panicking on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns the write's error instead of panicking on a closed pipe.
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod commands;
mod table;

/// Standard output could not be written, e.g. `ferroflux install --export | head` closed it.
#[derive(Debug)]
pub(crate) struct StdoutError(std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Writes to standard output and flushes, so that a closed pipe is reported by this write
/// (as an error every command returns, see `main`) rather than lost at exit.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), StdoutError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .map_err(StdoutError)
}

/// Whether the command failed only because its reader went away: like ripgrep (and a Go
/// program killed by SIGPIPE, silently), that ends the command quietly.
fn reader_went_away(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<StdoutError>()
            .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Command line utility for assembling and running ferroflux, a Flux-compatible GitOps toolkit.
#[derive(Debug, Parser)]
#[command(name = "ferroflux", version, about, long_about = None, disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the embedded Kubernetes-API-compatible server (`--data-dir DIR`).
    Apiserver(commands::apiserver::ApiserverArgs),
    /// Check requirements and installation, like `flux check` (`--pre`).
    Check(commands::check::CheckArgs),
    /// Run one controller against a cluster (as the installed Deployments do).
    Controller(Box<commands::controller::ControllerArgs>),
    /// Create or update objects like `flux create` (`create tenant NAME --with-namespace NS`).
    Create(commands::create::CreateArgs),
    /// Get the status of Flux objects, like `flux get`.
    Get(commands::get::GetArgs),
    /// Render Helm charts locally (`helm template [NAME] CHART`), as the real `helm` does.
    Helm(commands::helm::HelmArgs),
    /// Install or upgrade ferroflux (print the manifests with --export).
    Install(Box<commands::install::InstallArgs>),
    /// Build kustomizations (`kustomize build DIR`), byte-compatible with upstream kustomize.
    Kustomize(commands::kustomize::KustomizeArgs),
    /// Validate manifests as the API server and kustomize would: schemas, names, kinds, duplicates, patches.
    Validate(commands::validate::ValidateArgs),
    /// Reconcile a Flux object now, like `flux reconcile`.
    Reconcile(commands::reconcile::ReconcileArgs),
    /// Suspend the reconciliation of Flux objects, like `flux suspend`.
    Suspend(commands::suspend::SuspendArgs),
    /// Resume suspended Flux objects and wait for them, like `flux resume`.
    Resume(commands::suspend::ResumeArgs),
    /// Export Flux objects as YAML, like `flux export`.
    Export(commands::export::ExportArgs),
    /// Delete a Flux object, like `flux delete` (`--silent` skips the confirmation).
    Delete(commands::export::DeleteArgs),
    /// Display the Kubernetes events of Flux objects, like `flux events`.
    Events(commands::events::EventsArgs),
    /// Print the inventory of a Kustomization as a tree, like `flux tree`.
    Tree(commands::tree::TreeArgs),
    /// Print how many Flux objects run, fail and are suspended, like `flux stats`.
    Stats(commands::stats::StatsArgs),
    /// Build a Kustomization's objects from a local directory, like `flux build kustomization`.
    Build(commands::build::BuildArgs),
    /// Test Kyverno-compatible policies (`policy test DIR`, like `kyverno test`).
    Policy(commands::policy::PolicyArgs),
    /// Serve Kyverno-compatible validating admission for a real cluster (ClusterPolicy, Policy).
    PolicyWebhook(commands::policy_webhook::PolicyWebhookArgs),
    /// Run the embedded control plane: API server, controllers and the fleet, on one machine.
    Up(Box<commands::up::UpArgs>),
    /// Print the client version information.
    Version(commands::version::VersionArgs),
    /// Push artifacts to an OCI registry (`push artifact oci://HOST/REPO:TAG --path DIR`).
    Push(commands::artifact::push::PushArgs),
    /// Pull artifacts from an OCI registry (`pull artifact oci://... --output DIR`).
    Pull(commands::artifact::pull::PullArgs),
    /// Tag artifacts in an OCI registry (`tag artifact oci://...:TAG --tag T`).
    Tag(commands::artifact::tag::TagArgs),
    /// List artifacts of an OCI repository (`list artifacts oci://HOST/REPO`).
    List(commands::artifact::list::ListArgs),
    /// Compare an OCI artifact with a local path (`diff artifact oci://... --path DIR`).
    Diff(commands::artifact::diff::DiffArgs),
    /// Show which Flux object manages an in-cluster object, like `flux trace`.
    Trace(commands::trace::TraceArgs),
    /// Substitute environment variables in standard input, like `flux envsubst`.
    Envsubst(commands::envsubst::EnvsubstArgs),
    /// Generate the completion script for a shell, like `flux completion`.
    Completion(commands::completion::CompletionArgs),
    /// Display the Flux controllers' logs, like `flux logs`.
    Logs(commands::logs::LogsArgs),
    /// Uninstall Flux and its custom resource definitions, like `flux uninstall`.
    Uninstall(commands::uninstall::UninstallArgs),
    /// Deploy Flux on a cluster the GitOps way, like `flux bootstrap git`.
    Bootstrap(commands::bootstrap::BootstrapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Apiserver(args) => commands::apiserver::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Controller(args) => commands::controller::run(*args),
        Command::Create(args) => commands::create::run(args),
        Command::Get(args) => commands::get::run(args),
        Command::Helm(args) => commands::helm::run(args),
        Command::Install(args) => commands::install::run(*args),
        Command::Kustomize(args) => commands::kustomize::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Reconcile(args) => commands::reconcile::run(args),
        Command::Suspend(args) => commands::suspend::suspend(args),
        Command::Resume(args) => commands::suspend::resume(args),
        Command::Export(args) => commands::export::export(args),
        Command::Delete(args) => commands::export::delete(args),
        Command::Events(args) => commands::events::run(args),
        Command::Tree(args) => commands::tree::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Policy(args) => commands::policy::run(args),
        Command::PolicyWebhook(args) => commands::policy_webhook::run(args),
        Command::Up(args) => commands::up::run(*args),
        Command::Version(args) => commands::version::run(args),
        Command::Push(args) => commands::artifact::push::run(args),
        Command::Pull(args) => commands::artifact::pull::run(args),
        Command::Tag(args) => commands::artifact::tag::run(args),
        Command::List(args) => commands::artifact::list::run(args),
        Command::Diff(args) => commands::artifact::diff::run(args),
        Command::Trace(args) => commands::trace::run(args),
        Command::Envsubst(args) => commands::envsubst::run(args),
        Command::Completion(args) => commands::completion::run(args),
        Command::Logs(args) => commands::logs::run(args),
        Command::Uninstall(args) => commands::uninstall::run(args),
        Command::Bootstrap(args) => commands::bootstrap::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if reader_went_away(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("✗ {err:#}");
            ExitCode::FAILURE
        }
    }
}
