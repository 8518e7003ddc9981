//! `ferroflux version`, shaped like `flux version --client`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// Print the version of the ferroflux client.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print only the client version (the only one there is until a cluster is queried).
    #[arg(long)]
    client: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Yaml,
    Json,
}

pub fn run(args: VersionArgs) -> anyhow::Result<ExitCode> {
    let _ = args.client;
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    match args.output {
        Output::Text => outln!("ferroflux: {version}")?,
        Output::Yaml => outln!("ferroflux: {version}")?,
        Output::Json => outln!("{}", serde_json::json!({ "ferroflux": version }))?,
    }
    Ok(ExitCode::SUCCESS)
}
