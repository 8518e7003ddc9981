//! The flags every flux command that talks to a cluster has (`-n`, `--kubeconfig`, `--context`,
//! `--timeout`), the client they select and the runtime the command runs on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Where the cluster is and how long a command may take, as flux's root flags.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The namespace scope for this operation.
    #[arg(short, long, global = true, default_value = "flux-system")]
    pub namespace: String,
    /// Path to the kubeconfig (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Timeout for this operation, a Go duration.
    #[arg(long, global = true, default_value = "5m")]
    pub timeout: String,
}

impl ClusterArgs {
    /// `--timeout` as a duration.
    pub fn timeout(&self) -> anyhow::Result<Duration> {
        ferroflux_gocompat::duration::parse_std(&self.timeout)
            .map_err(|e| anyhow::anyhow!("--timeout {:?} is not a duration: {e}", self.timeout))
    }

    /// A client for `--kubeconfig` (or KUBECONFIG, ~/.kube/config, in-cluster) and `--context`.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("cannot load the kubeconfig")?,
            None => kube::Config::infer()
                .await
                .context("no kubeconfig found; pass --kubeconfig")?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}

/// Runs a command's future on a single-threaded runtime, failing with flux's words after
/// `timeout`.
pub fn block_on<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("context deadline exceeded"),
        }
    })
}

/// Whether a kube error says the kind is not served (flux's "no matches for kind").
pub fn is_not_served(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// flux's "distribution" of a cluster from the labels of its GitRepository CRD:
/// `<part-of>-<version>` (`flux-v2.9.5`), the version alone without `part-of`.
pub fn distribution(labels: &std::collections::BTreeMap<String, String>) -> String {
    let version = labels
        .get("app.kubernetes.io/version")
        .cloned()
        .unwrap_or_default();
    match labels.get("app.kubernetes.io/part-of") {
        Some(part_of) => format!("{part_of}-{version}"),
        None => version,
    }
}
