//! `ferroflux policy-webhook`: Kyverno-style admission for a real cluster. Watches the
//! cluster's `ClusterPolicy`/`Policy` objects, serves Kyverno's two validating webhooks over
//! HTTPS and, given the URL or Service the API server reaches it at, registers them with its
//! CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use ferroflux_admission::{PolicyCache, webhook};

/// Serve Kyverno-compatible validating admission for the cluster of the current kubeconfig.
#[derive(Debug, Args)]
pub struct PolicyWebhookArgs {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:9443")]
    listen: SocketAddr,
    /// Directory of the webhook's CA and serving certificate (made on first start, kept).
    #[arg(long, default_value = "/tmp/ferroflux-policy-webhook")]
    cert_dir: PathBuf,
    /// A DNS name or IP address the certificate names besides localhost (repeatable), such
    /// as the Service's `policy-webhook.flux-system.svc`.
    #[arg(long = "tls-san")]
    tls_sans: Vec<String>,
    /// The `https://HOST:PORT` the API server reaches this webhook at; when set, the webhook
    /// registers its ValidatingWebhookConfiguration (with its CA) once it knows the policies.
    #[arg(long, conflicts_with = "register_service")]
    register_url: Option<String>,
    /// The `NAMESPACE/NAME` of the Service in front of this webhook (port 443), for a webhook
    /// running in the cluster; registers like --register-url, with the Service instead of a URL.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    register_service: Option<webhook::ServiceRef>,
    /// Log level.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// Runs the webhook until SIGINT or SIGTERM.
pub fn run(args: PolicyWebhookArgs) -> anyhow::Result<ExitCode> {
    let level = args.log_level.clone();
    super::controller::run_server("ferroflux_admission", &level, false, serve(args))
}

async fn serve(args: PolicyWebhookArgs) -> anyhow::Result<ExitCode> {
    let config = kube::Config::infer()
        .await
        .context("no kubeconfig or in-cluster config")?;
    let client = kube::Client::try_from(config)?;
    let registration = registration(&args);
    let cache = Arc::new(PolicyCache::default());
    let watching = tokio::spawn(cache.clone().run(client.clone()));
    let options = webhook::Options {
        listen: args.listen,
        cert_dir: args.cert_dir,
        hosts: args.tls_sans,
    };
    let running = webhook::serve(cache.clone(), &options).await?;
    eprintln!("policy webhook serving on https://{}", running.addr);
    if let Some((target, shown)) = registration {
        cache.wait_synced().await;
        webhook::register(&client, &webhook::configuration(&target, &running.ca_pem))
            .await
            .context("registering the ValidatingWebhookConfiguration")?;
        eprintln!(
            "registered ValidatingWebhookConfiguration {} for {shown}",
            webhook::CONFIGURATION_NAME
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    running.stop().await;
    watching.abort();
    Ok(ExitCode::SUCCESS)
}

/// How the API server is to reach this webhook, and how to name it in the log; `None` when
/// the webhook is not to register itself.
fn registration(args: &PolicyWebhookArgs) -> Option<(webhook::ClientConfig, String)> {
    if let Some(url) = &args.register_url {
        return Some((webhook::ClientConfig::Url(url.clone()), url.clone()));
    }
    args.register_service.as_ref().map(|service| {
        let shown = format!("service {}/{}", service.namespace, service.name);
        (webhook::ClientConfig::Service(service.clone()), shown)
    })
}
