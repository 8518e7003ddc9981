//! SSH pieces of `bootstrap git`: the deploy key flux generates (ECDSA, P-384 by default) or
//! reads from `--private-key-file`, and the `known_hosts` line flux scans from the server.

use std::cell::RefCell;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use p384::elliptic_curve::Generate as _;
use p384::pkcs8::DecodePrivateKey as _;

/// A deploy key: the private key (PEM) for the Secret's `identity`, the public key in
/// `authorized_keys` form for `identity.pub`.
pub(super) struct KeyPair {
    pub(super) private_key: String,
    pub(super) public_key: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A new key as flux's `--ssh-key-algorithm` / `--ssh-ecdsa-curve` ask for it. The private
/// key is SEC 1 PEM (`EC PRIVATE KEY`), as flux writes ECDSA keys.
pub(super) fn generate(algorithm: &str, curve: &str) -> anyhow::Result<KeyPair> {
    if algorithm != "ecdsa" {
        bail!(
            "ferroflux generates ecdsa deploy keys only (--ssh-key-algorithm={algorithm:?}); \
             pass --ssh-key-algorithm=ecdsa or --private-key-file"
        );
    }
    let line = p384::pkcs8::LineEnding::LF;
    match curve {
        "p384" => {
            let key = p384::SecretKey::try_generate()
                .map_err(|e| anyhow::anyhow!("failed to generate a key: {e}"))?;
            let public = key.public_key().to_sec1_bytes();
            Ok(KeyPair {
                private_key: key
                    .to_sec1_pem(line)
                    .map_err(|_| anyhow::anyhow!("failed to encode the private key"))?
                    .to_string(),
                public_key: ecdsa_public_key("nistp384", &public),
            })
        }
        "p256" => {
            let key = p256::SecretKey::try_generate()
                .map_err(|e| anyhow::anyhow!("failed to generate a key: {e}"))?;
            let public = key.public_key().to_sec1_bytes();
            Ok(KeyPair {
                private_key: key
                    .to_sec1_pem(line)
                    .map_err(|_| anyhow::anyhow!("failed to encode the private key"))?
                    .to_string(),
                public_key: ecdsa_public_key("nistp256", &public),
            })
        }
        other => bail!("unsupported ECDSA curve {other:?} (p256 or p384)"),
    }
}

/// The key of `--private-key-file`: ECDSA PEM (SEC 1 or PKCS #8) keys give their public key
/// here; any other key (OpenSSH format, RSA, Ed25519) needs its `FILE.pub` next to it.
pub(super) fn read_private_key_file(path: &std::path::Path) -> anyhow::Result<KeyPair> {
    /// A private key file is a few KiB; bound what is read.
    const MAX_KEY_FILE: u64 = 64 * 1024;
    let size = std::fs::metadata(path)
        .with_context(|| format!("unable to read private key file {}", path.display()))?
        .len();
    if size > MAX_KEY_FILE {
        bail!("private key file {} is too large", path.display());
    }
    let private_key = std::fs::read_to_string(path)
        .with_context(|| format!("unable to read private key file {}", path.display()))?;
    let public_key = if let Some(key) = p384::SecretKey::from_sec1_pem(&private_key)
        .ok()
        .or_else(|| p384::SecretKey::from_pkcs8_pem(&private_key).ok())
    {
        ecdsa_public_key("nistp384", &key.public_key().to_sec1_bytes())
    } else if let Some(key) = p256::SecretKey::from_sec1_pem(&private_key)
        .ok()
        .or_else(|| p256::SecretKey::from_pkcs8_pem(&private_key).ok())
    {
        ecdsa_public_key("nistp256", &key.public_key().to_sec1_bytes())
    } else {
        let mut public = path.as_os_str().to_owned();
        public.push(".pub");
        let public = std::path::PathBuf::from(public);
        let text = std::fs::read_to_string(&public).with_context(|| {
            format!(
                "cannot derive the public key of {}: no {}",
                path.display(),
                public.display()
            )
        })?;
        text.lines().next().unwrap_or_default().trim().to_string()
    };
    Ok(KeyPair {
        private_key,
        public_key,
    })
}

/// `ecdsa-sha2-<curve> <base64>` (RFC 5656 §3.1 public key blob).
fn ecdsa_public_key(curve: &str, point: &[u8]) -> String {
    let kind = format!("ecdsa-sha2-{curve}");
    let mut blob = Vec::new();
    for field in [kind.as_bytes(), curve.as_bytes(), point] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        blob.extend_from_slice(&len.to_be_bytes());
        blob.extend_from_slice(field);
    }
    format!(
        "{kind} {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// The host and port of an `ssh://` URL.
pub(super) fn host_and_port(url: &str) -> anyhow::Result<(String, u16)> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .with_context(|| format!("no host in URL {url:?}"))?;
    Ok((host.to_string(), parsed.port().unwrap_or(22)))
}

/// The user of an `ssh://` URL, `git` when it names none (as flux).
pub(super) fn user(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .map(|u| u.username().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "git".to_string())
}

/// `url` with its host (and port, when `hostname` names one) replaced, as flux's
/// `--ssh-hostname` does for the GitRepository URL.
pub(super) fn with_hostname(url: &str, hostname: &str) -> anyhow::Result<String> {
    if hostname.is_empty() {
        return Ok(url.to_string());
    }
    let mut parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    let (host, port) = match hostname.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (hostname, None),
    };
    parsed
        .set_host(Some(host))
        .map_err(|e| anyhow::anyhow!("invalid --ssh-hostname {hostname:?}: {e}"))?;
    if port.is_some() {
        parsed
            .set_port(port)
            .map_err(|()| anyhow::anyhow!("invalid --ssh-hostname {hostname:?}"))?;
    }
    Ok(parsed.to_string())
}

/// flux's `ssh.ScanHostKey`: connects to `host:port`, records the key the server presents
/// and returns it as a `known_hosts` line (`[host]:port` unless the port is 22).
pub(super) fn scan_host_key(host: &str, port: u16) -> anyhow::Result<String> {
    let scanned: RefCell<Option<(String, Vec<u8>)>> = RefCell::new(None);
    let url = format!("ssh://git@{host}:{port}/scan.git");
    let mut remote = git2::Remote::create_detached(url.as_str())?;
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.certificate_check(|cert, _| {
        if let Some(hostkey) = cert.as_hostkey()
            && let (Some(key), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type())
        {
            *scanned.borrow_mut() = Some((kind.name().to_string(), key.to_vec()));
        }
        // The key is all a scan needs: end the connection before authenticating.
        Err(git2::Error::from_str("host key scanned"))
    });
    let connected = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
        .map(|_| ());
    let Some((kind, key)) = scanned.into_inner() else {
        return Err(match connected {
            Err(e) => anyhow::anyhow!("failed to scan the host key of {host}:{port}: {e}"),
            Ok(()) => anyhow::anyhow!("{host}:{port} presented no SSH host key"),
        });
    };
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    Ok(format!(
        "{name} {kind} {}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_ecdsa_p384_by_default_and_read_back() {
        let key = generate("ecdsa", "p384").expect("key");
        assert!(
            key.private_key
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        assert!(
            key.public_key
                .starts_with("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ")
        );
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("identity");
        std::fs::write(&file, &key.private_key).expect("write");
        assert_eq!(
            read_private_key_file(&file).expect("read").public_key,
            key.public_key
        );
        assert!(generate("ed25519", "p384").is_err());
        assert!(generate("ecdsa", "p521").is_err());
    }

    #[test]
    fn ssh_hostname_replaces_the_host_of_the_sync_url() {
        assert_eq!(
            with_hostname("ssh://git@127.0.0.1:2222/org/repo.git", "git.internal").expect("url"),
            "ssh://git@git.internal:2222/org/repo.git"
        );
        assert_eq!(
            with_hostname("ssh://git@127.0.0.1:2222/repo.git", "gh.local:22").expect("url"),
            "ssh://git@gh.local:22/repo.git"
        );
        assert_eq!(user("ssh://127.0.0.1/r.git"), "git");
        assert_eq!(
            host_and_port("ssh://me@h.example/r.git").expect("host"),
            ("h.example".to_string(), 22)
        );
    }
}
