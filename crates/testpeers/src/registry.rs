//! Debian's `docker-registry` (CNCF distribution) with a generated config.

use std::process::Command;

use crate::process::{Proc, with_port_retries};
use crate::{Credentials, PeerError, find_program, http_status};

/// A running `docker-registry` on 127.0.0.1 with filesystem storage in a temporary directory.
pub struct Registry {
    // Field order matters: the process stops before its directory is deleted.
    _proc: Proc,
    port: u16,
    credentials: Option<Credentials>,
    ca_pem: Option<String>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `Some(credentials)` every request needs basic auth
    /// (htpasswd with a bcrypt hash), otherwise it is open.
    pub fn start(credentials: Option<Credentials>) -> Result<Registry, PeerError> {
        Registry::start_with(credentials, false)
    }

    /// Starts a registry that serves HTTPS only, with a fresh self-signed certificate for
    /// `127.0.0.1` (see [`Registry::ca_pem`]); needs the `openssl` program.
    pub fn start_tls(credentials: Option<Credentials>) -> Result<Registry, PeerError> {
        Registry::start_with(credentials, true)
    }

    fn start_with(credentials: Option<Credentials>, tls: bool) -> Result<Registry, PeerError> {
        let program = find_program("docker-registry", "docker-registry")?;
        let openssl = if tls {
            Some(find_program("openssl", "openssl")?)
        } else {
            None
        };
        with_port_retries(|port| {
            let dir = tempfile::Builder::new()
                .prefix("ferroflux-registry-")
                .tempdir()
                .map_err(PeerError::io("create a temporary directory"))?;
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).map_err(PeerError::io("create the storage dir"))?;
            let mut config = format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: \"{}\"}}\n  delete: {{enabled: true}}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: ferroflux-test-{port}\n",
                data.display()
            );
            if let Some(creds) = &credentials {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, creds.htpasswd_line()?)
                    .map_err(PeerError::io("write htpasswd"))?;
                config.push_str(&format!(
                    "auth:\n  htpasswd: {{realm: ferroflux-test, path: \"{}\"}}\n",
                    htpasswd.display()
                ));
            }
            let mut ca_pem = None;
            if let Some(openssl) = &openssl {
                let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                let out = Command::new(openssl)
                    .args([
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-nodes",
                        "-days",
                        "1",
                        "-subj",
                        "/CN=127.0.0.1",
                        "-addext",
                        "subjectAltName=IP:127.0.0.1",
                        // A leaf, not a CA: rustls refuses a CA certificate as the server's.
                        "-addext",
                        "basicConstraints=critical,CA:FALSE",
                        "-addext",
                        "extendedKeyUsage=serverAuth",
                        "-keyout",
                    ])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert)
                    .output()
                    .map_err(PeerError::io("run openssl"))?;
                if !out.status.success() {
                    return Err(PeerError::Io {
                        what: "openssl req (self-signed certificate)".into(),
                        source: std::io::Error::other(
                            String::from_utf8_lossy(&out.stderr).into_owned(),
                        ),
                    });
                }
                // The tls block belongs under `http:`, right after its `secret:` line.
                let secret_line = format!("  secret: ferroflux-test-{port}\n");
                config = config.replace(
                    &secret_line,
                    &format!(
                        "{secret_line}  tls:\n    certificate: \"{}\"\n    key: \"{}\"\n",
                        cert.display(),
                        key.display()
                    ),
                );
                ca_pem =
                    Some(std::fs::read_to_string(&cert).map_err(PeerError::io("read cert.pem"))?);
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).map_err(PeerError::io("write config.yml"))?;
            let mut cmd = Command::new(&program);
            cmd.arg("serve").arg(&config_path);
            let mut proc = Proc::spawn("docker-registry", cmd, &dir.path().join("registry.log"))?;
            if tls {
                // A TLS port answers a plain HTTP request with 400; that is enough to know it
                // is serving.
                proc.wait_ready(port, || http_status(port, "/v2/").is_some())?;
            } else {
                let want = if credentials.is_some() { 401 } else { 200 };
                proc.wait_ready(port, || http_status(port, "/v2/") == Some(want))?;
            }
            Ok(Registry {
                _proc: proc,
                port,
                credentials: credentials.clone(),
                ca_pem,
                _dir: dir,
            })
        })
    }

    /// `127.0.0.1:PORT`, the registry host part of references such as
    /// `127.0.0.1:PORT/team-a/app:1.0.0`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate to trust for a [`Registry::start_tls`] registry.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The credentials the registry requires, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}
