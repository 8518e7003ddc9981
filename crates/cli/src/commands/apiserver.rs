//! `ferroflux apiserver`: the embedded Kubernetes-API-compatible server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Run the embedded Kubernetes-API-compatible server (SQLite store, HTTPS, admin kubeconfig).
#[derive(Debug, Args)]
pub struct ApiserverArgs {
    /// Directory holding the database, the CA and serving certificates and the admin token.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write the kubeconfig [default: DATA_DIR/kubeconfig].
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Extra DNS name or IP address for the serving certificate (repeatable), for clients that
    /// connect other than through localhost.
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
}

pub fn run(args: ApiserverArgs) -> anyhow::Result<ExitCode> {
    let mut config = ferroflux_apiserver::Config::new(args.data_dir);
    config.listen = args.listen;
    config.kubeconfig_out = args.kubeconfig_out;
    config.tls_sans = args.tls_sans;
    ferroflux_apiserver::run_until_signal(config, |s| {
        println!("► serving the Kubernetes API on {}", s.url);
        println!("✔ kubeconfig written to {}", s.kubeconfig_path.display());
    })?;
    Ok(ExitCode::SUCCESS)
}
