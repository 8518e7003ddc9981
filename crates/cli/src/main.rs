//! `ferroflux`: a Flux-compatible GitOps toolkit. The binary holds clap definitions, tables and
//! glue; every capability lives in a library crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// Command line utility for assembling and running ferroflux, a Flux-compatible GitOps toolkit.
#[derive(Debug, Parser)]
#[command(name = "ferroflux", version, about, long_about = None, disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install or upgrade ferroflux (print the manifests with --export).
    Install(Box<commands::install::InstallArgs>),
    /// Validate Flux manifests strictly: unknown fields and wrong types are errors.
    Validate(commands::validate::ValidateArgs),
    /// Print the client version information.
    Version(commands::version::VersionArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Install(args) => commands::install::run(*args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Version(args) => commands::version::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("✗ {err:#}");
            ExitCode::FAILURE
        }
    }
}
