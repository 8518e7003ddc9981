//! Git credentials and SSH host key checking; [`crate::redact`] scrubs them from messages.

use base64::Engine as _;

/// Credentials for a Git remote, from a GitRepository's `secretRef`.
#[derive(Clone, Default)]
pub struct GitAuth {
    /// HTTPS basic auth: `username` and `password` keys of the Secret.
    pub basic: Option<(String, String)>,
    /// HTTPS bearer token: the `bearerToken` key of the Secret.
    pub bearer_token: Option<String>,
    /// SSH identity and known hosts.
    pub ssh: Option<SshAuth>,
}

/// An SSH identity: the `identity`, optional `password` and `known_hosts` keys of the Secret.
#[derive(Clone)]
pub struct SshAuth {
    /// SSH user (`git` unless the URL names one).
    pub user: String,
    /// The private key in OpenSSH or PEM format.
    pub private_key: String,
    /// The key's passphrase.
    pub passphrase: Option<String>,
    /// `known_hosts` lines; the server's key must match one of them.
    pub known_hosts: String,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field(
                "basic",
                &self.basic.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ssh", &self.ssh.as_ref().map(|s| &s.user))
            .finish()
    }
}

impl GitAuth {
    /// HTTPS basic auth.
    pub fn basic(username: &str, password: &str) -> Self {
        GitAuth {
            basic: Some((username.into(), password.into())),
            ..GitAuth::default()
        }
    }

    /// HTTPS bearer token.
    pub fn bearer(token: &str) -> Self {
        GitAuth {
            bearer_token: Some(token.into()),
            ..GitAuth::default()
        }
    }

    /// Every secret value, for redaction.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, p)) = &self.basic {
            out.push(p.clone());
        }
        if let Some(t) = &self.bearer_token {
            out.push(t.clone());
        }
        if let Some(s) = &self.ssh {
            out.push(s.private_key.clone());
            out.extend(s.passphrase.clone());
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

/// Whether the SSH host key (`key_type` as in known_hosts, raw `key` blob) of `host`
/// (with `port`) is listed in `known_hosts`. Hashed (`|1|`) entries are not supported and
/// never match; `@revoked`/`@cert-authority` lines are ignored.
pub fn known_host_matches(
    known_hosts: &str,
    host: &str,
    port: Option<u16>,
    key_type: &str,
    key: &[u8],
) -> bool {
    let bracketed = port.filter(|p| *p != 22).map(|p| format!("[{host}]:{p}"));
    let wanted = bracketed.as_deref().unwrap_or(host);
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(kind), Some(blob)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if kind != key_type || !hosts.split(',').any(|h| h == wanted) {
            continue;
        }
        if base64::engine::general_purpose::STANDARD
            .decode(blob)
            .is_ok_and(|b| b == key)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_match_host_port_type_and_key() {
        let key = b"raw-key-blob";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let kh = format!("# comment\n[git.example]:2222,other ssh-ed25519 {b64}\n");
        assert!(known_host_matches(
            &kh,
            "git.example",
            Some(2222),
            "ssh-ed25519",
            key
        ));
        assert!(!known_host_matches(
            &kh,
            "git.example",
            Some(22),
            "ssh-ed25519",
            key
        ));
        assert!(!known_host_matches(
            &kh,
            "git.example",
            Some(2222),
            "ssh-rsa",
            key
        ));
        assert!(!known_host_matches(
            &kh,
            "git.example",
            Some(2222),
            "ssh-ed25519",
            b"x"
        ));
        assert!(known_host_matches(&kh, "other", None, "ssh-ed25519", key));
    }
}
