//! The server's PKI (a CA and a serving certificate, made on first start and kept in the data
//! dir), the admin token and the kubeconfig.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Errors preparing TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a file of the data dir failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// A stored PEM file could not be used; delete it to have it generated again.
    #[error("{path} is not a usable PEM file ({why}); delete it to generate a new one")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// PEM material of the server.
#[derive(Debug, Clone)]
pub struct Pki {
    /// CA certificate (PEM), trusted by clients.
    pub ca_pem: String,
    /// Serving certificate (PEM).
    pub cert_pem: String,
    /// Serving key (PEM).
    pub key_pem: String,
}

fn read(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// Writes a file readable by its owner only (keys, tokens).
pub fn write_private(path: &Path, data: &str) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let io = |source| TlsError::Io {
        path: path.into(),
        source,
    };
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(data.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::CommonName, "ferroflux-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2125, 1, 1);
    Ok(p)
}

/// Loads the PKI of `dir`, generating what is missing. The CA is kept across restarts.
///
/// `extra_sans` (DNS names or IP addresses) are added to the serving certificate besides
/// localhost; a change of them makes a new serving certificate from the same CA.
pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> Result<Pki, TlsError> {
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (srv_crt, srv_key) = (dir.join("server.crt"), dir.join("server.key"));
    let (ca_pem, ca_key_pem) = match (read(&ca_crt)?, read(&ca_key)?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_private(&ca_key, &key.serialize_pem())?;
            write_private(&ca_crt, &cert.pem())?;
            // A new CA invalidates any old serving certificate.
            let _ = std::fs::remove_file(&srv_crt);
            (cert.pem(), key.serialize_pem())
        }
    };
    let sans_file = dir.join("server.sans");
    let mut sans: Vec<String> = extra_sans.to_vec();
    sans.sort();
    sans.dedup();
    let sans_text = sans.join("\n");
    let same_sans = read(&sans_file)?.unwrap_or_default() == sans_text;
    if let (Some(cert_pem), Some(key_pem), true) = (read(&srv_crt)?, read(&srv_key)?, same_sans) {
        return Ok(Pki {
            ca_pem,
            cert_pem,
            key_pem,
        });
    }
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| TlsError::Pem {
        path: ca_key.clone(),
        why: e.to_string(),
    })?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut p = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default.svc".into(),
    ])?;
    p.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    p.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from(
            std::net::Ipv6Addr::LOCALHOST,
        )));
    for san in &sans {
        match san.parse::<std::net::IpAddr>() {
            Ok(ip) => p.subject_alt_names.push(SanType::IpAddress(ip)),
            Err(_) => p.subject_alt_names.push(SanType::DnsName(
                san.clone()
                    .try_into()
                    .map_err(|e: rcgen::Error| TlsError::Generate(e))?,
            )),
        }
    }
    p.distinguished_name
        .push(DnType::CommonName, "ferroflux-apiserver");
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2125, 1, 1);
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    write_private(&srv_key, &key.serialize_pem())?;
    write_private(&srv_crt, &cert.pem())?;
    write_private(&sans_file, &sans_text)?;
    Ok(Pki {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The rustls server configuration (ring provider, h2 and http/1.1).
pub fn server_config(pki: &Pki) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Pem {
                path: "server.crt".into(),
                why: e.to_string(),
            })?;
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: "server.key".into(),
        why: e.to_string(),
    })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The admin token of `dir` (made on first start).
pub fn token(dir: &Path) -> Result<String, TlsError> {
    let path = dir.join("admin.token");
    if let Some(t) = read(&path)?
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    {
        return Ok(t);
    }
    let t = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &t)?;
    Ok(t)
}

/// A kubeconfig for `server` trusting `ca_pem` (if any) with the bearer `token`.
pub fn kubeconfig(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let ca = match ca_pem {
        Some(ca) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(ca)
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ferroflux\n  cluster:\n    server: {server}\n{ca}users:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: ferroflux\n  context:\n    cluster: ferroflux\n    user: admin\n    namespace: default\ncurrent-context: ferroflux\npreferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_kept_across_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path(), &[]).expect("first");
        let b = load_or_create(dir.path(), &[]).expect("second");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.cert_pem, b.cert_pem);
        std::fs::remove_file(dir.path().join("server.crt")).expect("rm");
        let c = load_or_create(dir.path(), &[]).expect("third");
        assert_eq!(a.ca_pem, c.ca_pem, "same CA");
        assert_ne!(a.cert_pem, c.cert_pem, "new serving cert");
        server_config(&c).expect("rustls accepts it");
        let d = load_or_create(dir.path(), &["10.1.2.3".into(), "api.example.test".into()])
            .expect("sans");
        assert_eq!(a.ca_pem, d.ca_pem, "same CA");
        assert_ne!(c.cert_pem, d.cert_pem, "new SANs, new serving cert");
        let e = load_or_create(dir.path(), &["api.example.test".into(), "10.1.2.3".into()])
            .expect("same sans");
        assert_eq!(d.cert_pem, e.cert_pem, "same SANs keep the certificate");
        assert_eq!(
            token(dir.path()).expect("t1"),
            token(dir.path()).expect("t2")
        );
    }
}
