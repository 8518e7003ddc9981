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
    /// Static users: a CSV file of `token,user,uid[,"group1,group2"]` lines, as
    /// kube-apiserver's `--token-auth-file`.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Workloads whose pod template uses an image matching this glob never become available
    /// (Progressing=False, ProgressDeadlineExceeded), to test health gating and rollbacks.
    #[arg(long, value_name = "IMAGE_GLOB")]
    simulate_failure: Option<String>,
    /// Time before a simulated rollout becomes available.
    #[arg(long, default_value = "1s")]
    simulator_delay: String,
    /// Do not simulate workload status (Deployments then never become available).
    #[arg(long)]
    no_simulator: bool,
    /// `normal`: an acknowledged write survives the process being killed; `strict`: it is
    /// synced to disk first (SQLite `synchronous=FULL`), so it also survives a power cut.
    #[arg(long, default_value = "normal", value_name = "normal|strict")]
    durability: ferroflux_apiserver::store::Durability,
}

pub fn run(args: ApiserverArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use ferroflux_controllers::simulator;
    let delay =
        ferroflux_gocompat::duration::parse_std(&args.simulator_delay).with_context(|| {
            format!(
                "--simulator-delay {:?} is not a duration",
                args.simulator_delay
            )
        })?;
    let options =
        simulator::Options::new(delay, args.simulate_failure.as_deref()).with_context(|| {
            format!(
                "--simulate-failure {:?} is not a glob",
                args.simulate_failure
            )
        })?;
    let simulate = !args.no_simulator;
    let mut config = ferroflux_apiserver::Config::new(args.data_dir);
    config.listen = args.listen;
    config.kubeconfig_out = args.kubeconfig_out;
    config.tls_sans = args.tls_sans;
    config.token_file = args.token_file;
    config.durability = args.durability;
    ferroflux_apiserver::run_until_signal(config, |s| {
        // A closed stdout must not stop the server: these lines are only informative.
        let _ = outln!("► serving the Kubernetes API on {}", s.url);
        let _ = outln!("✔ kubeconfig written to {}", s.kubeconfig_path.display());
        if simulate {
            let kubeconfig = s.kubeconfig.clone();
            tokio::spawn(async move {
                match admin_client(&kubeconfig).await {
                    Ok(client) => {
                        simulator::run(client, options, std::future::pending::<()>()).await;
                    }
                    Err(e) => eprintln!("✗ workload simulator not started: {e:#}"),
                }
            });
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A client with the server's own admin kubeconfig, for the in-process simulator.
async fn admin_client(kubeconfig: &str) -> anyhow::Result<kube::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}
