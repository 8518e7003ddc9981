//! One way out to the network over HTTP: every client that fetches artifacts, Helm indexes
//! and charts, or calls webhooks is built here, so none goes without a connect timeout and an
//! overall timeout.
//!
//! Expected flow: [`HttpOptions::default`] (or with a `spec.timeout` and CA bundle) ->
//! [`HttpOptions::client`] -> requests. Guarantees: a server that accepts the connection and
//! never answers fails the request within `timeout`; one that does not accept it, within
//! `connect_timeout`. Errors: [`HttpError`] when the CA bundle is not PEM or TLS cannot be set up.

use std::time::Duration;

/// The connect timeout unless told otherwise (Go's `net.Dialer` default in Flux is 30 s;
/// a loopback or in-cluster peer answers far sooner).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The overall timeout of one request unless told otherwise (Flux's fetchers: 60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a client is built.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Longest wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole request, body included.
    pub timeout: Duration,
    /// Extra root certificates (PEM bundles) trusted besides the system's.
    pub ca_pem: Vec<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            ca_pem: Vec::new(),
        }
    }
}

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A CA bundle holds no valid PEM certificate.
    #[error("CA bundle {index} holds no valid PEM certificate")]
    CaBundle {
        /// Which bundle of [`HttpOptions::ca_pem`].
        index: usize,
    },
    /// The TLS stack could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl HttpOptions {
    /// These options with the overall timeout `timeout` (e.g. a `spec.timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`HttpError`] when a CA bundle is not PEM or TLS cannot be set up.
    pub fn client(&self) -> Result<reqwest::Client, HttpError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout);
        for (index, pem) in self.ca_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or(HttpError::CaBundle { index })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().map_err(HttpError::Build)
    }
}

/// The client with [`HttpOptions::default`]: for artifact downloads and other plain fetches.
pub fn default_client() -> reqwest::Client {
    HttpOptions::default()
        .client()
        .expect("a client without extra certificates always builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_never_answers_fails_the_request_within_the_timeout() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        // Accepts every connection and holds it open without a byte of answer.
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = HttpOptions::default()
            .with_timeout(Duration::from_millis(500))
            .client()
            .expect("builds");
        let started = std::time::Instant::now();
        let err = client
            .get(format!("http://{addr}/artifact.tar.gz"))
            .send()
            .await
            .expect_err("never answered");
        assert!(err.is_timeout(), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gave up after {:?}",
            started.elapsed()
        );
        server.abort();
    }

    #[test]
    fn a_ca_bundle_that_is_not_pem_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = HttpOptions {
            ca_pem: vec![b"not a certificate".to_vec()],
            ..HttpOptions::default()
        };
        let err = options.client().expect_err("not PEM");
        assert!(err.to_string().starts_with("CA bundle 0"), "{err}");
    }
}
