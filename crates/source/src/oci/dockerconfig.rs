//! Registry credentials from a `kubernetes.io/dockerconfigjson` Secret.

use base64::Engine as _;

use super::{OciAuth, OciError};

/// The credentials for `registry` (e.g. `127.0.0.1:5000`, `ghcr.io`) in the
/// `.dockerconfigjson` data; [`OciAuth::Anonymous`] when the file has no entry for it.
///
/// Entries are matched on their host, so `https://ghcr.io/v1/` matches `ghcr.io`; an entry's
/// `auth` (base64 `user:password`) is used when `username`/`password` are absent;
/// `registrytoken` gives a bearer token.
///
/// # Errors
/// [`OciError::DockerConfig`] when the JSON or an `auth` value is malformed (the message never
/// contains the credentials).
pub fn auth_from_dockerconfigjson(data: &[u8], registry: &str) -> Result<OciAuth, OciError> {
    let doc: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| OciError::DockerConfig(format!("not JSON (line {})", e.line())))?;
    let auths = doc
        .get("auths")
        .and_then(|a| a.as_object())
        .ok_or_else(|| OciError::DockerConfig("no \"auths\" object".into()))?;
    let wanted = host_of(registry);
    let Some(entry) = auths
        .iter()
        .find(|(k, _)| host_of(k) == wanted)
        .map(|(_, v)| v)
    else {
        return Ok(OciAuth::Anonymous);
    };
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(token) = field("registrytoken") {
        return Ok(OciAuth::Bearer(token));
    }
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(OciAuth::Basic { username, password });
    }
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| {
                OciError::DockerConfig(format!("the \"auth\" of {wanted} is not base64"))
            })?;
        let text = String::from_utf8(decoded).map_err(|_| {
            OciError::DockerConfig(format!("the \"auth\" of {wanted} is not UTF-8"))
        })?;
        let (username, password) = text.split_once(':').ok_or_else(|| {
            OciError::DockerConfig(format!("the \"auth\" of {wanted} is not user:password"))
        })?;
        return Ok(OciAuth::Basic {
            username: username.into(),
            password: password.into(),
        });
    }
    Ok(OciAuth::Anonymous)
}

fn host_of(key: &str) -> &str {
    let rest = key.split_once("://").map(|(_, r)| r).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_entry_by_host_and_decodes_auth() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw:with:colons");
        let json = format!(
            r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#
        );
        match auth_from_dockerconfigjson(json.as_bytes(), "127.0.0.1:5000").expect("valid") {
            OciAuth::Basic { username, password } => {
                assert_eq!(username, "bob");
                assert_eq!(password, "pw:with:colons");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            auth_from_dockerconfigjson(json.as_bytes(), "ghcr.io").expect("valid"),
            OciAuth::Basic { .. }
        ));
        assert!(matches!(
            auth_from_dockerconfigjson(json.as_bytes(), "quay.io").expect("valid"),
            OciAuth::Anonymous
        ));
    }

    #[test]
    fn malformed_auth_is_reported_without_the_secret() {
        let json = br#"{"auths":{"r.io":{"auth":"%%%secret%%%"}}}"#;
        let err = auth_from_dockerconfigjson(json, "r.io").expect_err("bad base64");
        assert!(!err.to_string().contains("secret%"), "{err}");
    }
}
