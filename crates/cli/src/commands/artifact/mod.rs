//! The OCI artifact commands, shaped like flux's: `push artifact`, `pull artifact`,
//! `tag artifact`, `list artifacts` and `diff artifact`. Status lines (`►`, `✔`) go to stderr
//! as flux's logger writes them; data (tables) go to stdout.

pub mod diff;
pub mod list;
pub mod pull;
pub mod push;
pub mod tag;

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use ferroflux_source::oci::{OciAuth, OciClient, OciOptions};

/// Registry flags every artifact command takes.
#[derive(Debug, Args)]
pub struct RegistryFlags {
    /// Credentials for the registry: USERNAME:PASSWORD, or a bare token.
    #[arg(long, env = "FERROFLUX_OCI_CREDS", hide_env_values = true)]
    creds: Option<String>,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    insecure_registry: bool,
}

impl RegistryFlags {
    /// A registry client for these flags, reporting progress when stderr is a terminal.
    fn client(&self, what: &str) -> anyhow::Result<(OciClient, Option<indicatif::ProgressBar>)> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = OciOptions {
            auth: parse_creds(self.creds.as_deref()),
            insecure: self.insecure_registry,
            ..OciOptions::default()
        };
        let client = OciClient::new(&options).context("configuring the registry client")?;
        if !std::io::stderr().is_terminal() {
            return Ok((client, None));
        }
        let bar = indicatif::ProgressBar::new(0).with_message(what.to_string());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        let shown = bar.clone();
        let client = client.with_progress(Arc::new(
            move |_blob: &str, done: u64, total: Option<u64>| {
                if let Some(total) = total {
                    shown.set_length(total);
                }
                shown.set_position(done);
            },
        ));
        Ok((client, Some(bar)))
    }
}

/// `--creds`: `user:password` is basic auth; without a colon it is a bearer token.
fn parse_creds(creds: Option<&str>) -> OciAuth {
    match creds.filter(|c| !c.is_empty()) {
        None => OciAuth::Anonymous,
        Some(c) => match c.split_once(':') {
            Some((user, password)) => OciAuth::Basic {
                username: user.to_string(),
                password: password.to_string(),
            },
            None => OciAuth::Bearer(c.to_string()),
        },
    }
}

/// The artifact URL as flux prints it: without the `oci://` scheme.
fn display_url(url: &str) -> &str {
    url.strip_prefix("oci://").unwrap_or(url)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn action(message: impl std::fmt::Display) {
    eprintln!("► {message}");
}

fn success(message: impl std::fmt::Display) {
    eprintln!("✔ {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_are_basic_with_a_colon_and_a_token_without() {
        assert!(matches!(parse_creds(None), OciAuth::Anonymous));
        assert!(matches!(parse_creds(Some("")), OciAuth::Anonymous));
        match parse_creds(Some("bot:s3cr:et")) {
            OciAuth::Basic { username, password } => {
                assert_eq!((username.as_str(), password.as_str()), ("bot", "s3cr:et"))
            }
            other => panic!("expected basic auth, got {other:?}"),
        }
        assert!(matches!(parse_creds(Some("ghp_token")), OciAuth::Bearer(_)));
    }

    #[test]
    fn urls_are_shown_without_the_scheme() {
        assert_eq!(
            display_url("oci://127.0.0.1:5000/app:1.0.0"),
            "127.0.0.1:5000/app:1.0.0"
        );
        assert_eq!(display_url("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
    }
}
