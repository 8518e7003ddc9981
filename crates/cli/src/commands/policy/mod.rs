//! `ferroflux policy`: Kyverno-compatible policy tooling on `ferroflux-policy`, the engine the
//! API server's admission and `policy-webhook` run.

mod load;
mod report;
mod test;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Work with Kyverno-compatible policies (ClusterPolicy, Policy).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run `kyverno-test.yaml` test cases found under directories, like `kyverno test`.
    Test(test::TestArgs),
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Test(args) => test::run(args),
    }
}
