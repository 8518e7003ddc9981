//! Authentication: the admin token, static users of a `--token-file`, and ServiceAccount
//! tokens (JWTs signed with a key kept in the data dir, so they verify after a restart).
//!
//! Expected flow: [`Authenticator::new`] at start; [`Authenticator::authenticate`] on every
//! request with a lookup of the ServiceAccount's current UID, so that the token of a deleted
//! (or deleted and re-created) ServiceAccount stops working.

use std::collections::HashMap;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::rbac::{AUTHENTICATED, MASTERS, UserInfo, service_account_groups};

/// The admin user of the kubeconfig.
pub const ADMIN_USER: &str = "ferroflux:admin";
/// Issuer of ServiceAccount tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The audience the API server accepts (and the default of a TokenRequest).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Errors loading authentication material.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The signing key could not be read or written.
    #[error("ServiceAccount signing key {path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The token file could not be read.
    #[error("token file {path}: {source}")]
    TokenFileRead {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A line of the token file is malformed.
    #[error("token file {path} line {line}: {why} (expected token,user,uid[,\"group1,group2\"])")]
    TokenFileLine {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct ServiceAccountRef {
    name: String,
    uid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct KubernetesClaims {
    namespace: String,
    serviceaccount: ServiceAccountRef,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    nbf: i64,
    #[serde(rename = "kubernetes.io")]
    k8s: KubernetesClaims,
}

/// Who may call the server.
pub struct Authenticator {
    admin_token: String,
    static_users: HashMap<String, UserInfo>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Reads (or creates, 32 random bytes) the ServiceAccount token signing key in `dir`.
///
/// Errors: the file cannot be read or written.
pub fn load_or_create_key(dir: &Path) -> Result<Vec<u8>, AuthError> {
    let path = dir.join("sa-signing.key");
    let err = |source| AuthError::Key {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => Ok(s.trim().as_bytes().to_vec()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
        _ => {
            let key = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            crate::tls::write_private(&path, &key)
                .map_err(|e| err(std::io::Error::other(e.to_string())))?;
            Ok(key.into_bytes())
        }
    }
}

/// Parses a kube-apiserver static token file: `token,user,uid[,"group1,group2"]` per line
/// (blank lines and `#` comments skipped).
///
/// Errors: a line with fewer than three fields or an empty token or user.
pub fn parse_token_file(path: &str, text: &str) -> Result<HashMap<String, UserInfo>, AuthError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_csv(line);
        let bad = |why: &str| AuthError::TokenFileLine {
            path: path.to_string(),
            line: i + 1,
            why: why.to_string(),
        };
        if fields.len() < 3 {
            return Err(bad("fewer than 3 fields"));
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(bad("empty token or user name"));
        }
        let mut groups: Vec<String> = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        out.insert(
            fields[0].clone(),
            UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                ..UserInfo::default()
            },
        );
    }
    Ok(out)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    fields.push(cur.trim().to_string());
    fields
}

/// A ServiceAccount token just issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Expiry (RFC 3339), if any.
    pub expiration: Option<String>,
}

impl Authenticator {
    /// An authenticator for the admin token, static users and the signing key.
    pub fn new(
        admin_token: String,
        static_users: HashMap<String, UserInfo>,
        key: &[u8],
    ) -> Authenticator {
        Authenticator {
            admin_token,
            static_users,
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        }
    }

    /// Signs a token for ServiceAccount `namespace/name` (UID `uid`), valid for
    /// `expiration_seconds` (none: a legacy, non-expiring Secret token).
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> IssuedToken {
        let now = jiff::Timestamp::now().as_second();
        let exp = expiration_seconds.map(|s| now + s);
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: crate::rbac::service_account_user(namespace, name),
            aud: if audiences.is_empty() {
                vec![API_AUDIENCE.to_string()]
            } else {
                audiences.to_vec()
            },
            exp,
            iat: now,
            nbf: now,
            k8s: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: ServiceAccountRef {
                    name: name.to_string(),
                    uid: uid.to_string(),
                },
            },
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of serializable claims cannot fail");
        let expiration = exp.and_then(|e| {
            jiff::Timestamp::from_second(e)
                .ok()
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        });
        IssuedToken { token, expiration }
    }

    /// The user a bearer token names. `sa_uid(namespace, name)` gives the UID of a live
    /// ServiceAccount. `None`: not authenticated.
    pub fn authenticate(
        &self,
        token: &str,
        sa_uid: impl Fn(&str, &str) -> Option<String>,
    ) -> Option<UserInfo> {
        if !self.admin_token.is_empty() && token == self.admin_token {
            return Some(UserInfo::new(ADMIN_USER, &[MASTERS, AUTHENTICATED]));
        }
        if let Some(u) = self.static_users.get(token) {
            return Some(u.clone());
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[API_AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.required_spec_claims.clear();
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).ok()?;
        let c = data.claims;
        if let Some(exp) = c.exp
            && exp <= jiff::Timestamp::now().as_second()
        {
            return None;
        }
        let ns = &c.k8s.namespace;
        let sa = &c.k8s.serviceaccount;
        if sa_uid(ns, &sa.name)? != sa.uid {
            return None;
        }
        Some(UserInfo {
            name: crate::rbac::service_account_user(ns, &sa.name),
            uid: sa.uid.clone(),
            groups: service_account_groups(ns),
            ..UserInfo::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let users = parse_token_file(
            "t.csv",
            "# comment\nsecret1,alice,u1,\"devs,ops\"\nsecret2,bob,u2\n",
        )
        .expect("parses");
        Authenticator::new(
            "admin-token".into(),
            users,
            b"0123456789abcdef0123456789abcdef",
        )
    }

    #[test]
    fn admin_and_static_users() {
        let a = auth();
        let admin = a.authenticate("admin-token", |_, _| None).expect("admin");
        assert_eq!(admin.name, ADMIN_USER);
        assert!(admin.groups.contains(&MASTERS.to_string()));
        let alice = a.authenticate("secret1", |_, _| None).expect("alice");
        assert_eq!(alice.groups, vec!["devs", "ops", AUTHENTICATED]);
        assert_eq!(alice.uid, "u1");
        assert!(a.authenticate("nope", |_, _| None).is_none());
        assert!(a.authenticate("", |_, _| None).is_none());
    }

    #[test]
    fn token_file_errors_name_the_line() {
        let e = parse_token_file("t.csv", "ok,u,1\nbroken\n").expect_err("bad line");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn service_account_tokens_die_with_their_account() {
        let a = auth();
        let t = a.issue("team-a", "team-a", "uid-1", &[], Some(3600));
        assert!(t.expiration.is_some());
        let u = a
            .authenticate(&t.token, |ns, n| {
                (ns == "team-a" && n == "team-a").then(|| "uid-1".to_string())
            })
            .expect("valid");
        assert_eq!(u.name, "system:serviceaccount:team-a:team-a");
        assert_eq!(u.groups, service_account_groups("team-a"));
        // Deleted, or re-created with a new UID.
        assert!(a.authenticate(&t.token, |_, _| None).is_none());
        assert!(
            a.authenticate(&t.token, |_, _| Some("uid-2".into()))
                .is_none()
        );
        // Another key, another audience, or an expired token.
        let other = Authenticator::new(
            String::new(),
            HashMap::new(),
            b"another key another key another!!",
        );
        assert!(
            other
                .authenticate(&t.token, |_, _| Some("uid-1".into()))
                .is_none()
        );
        let aud = a.issue("team-a", "team-a", "uid-1", &["vault".into()], Some(3600));
        assert!(
            a.authenticate(&aud.token, |_, _| Some("uid-1".into()))
                .is_none()
        );
        let old = a.issue("team-a", "team-a", "uid-1", &[], Some(-10));
        assert!(
            a.authenticate(&old.token, |_, _| Some("uid-1".into()))
                .is_none()
        );
    }
}
