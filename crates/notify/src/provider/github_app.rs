//! GitHub App authentication of the GitHub providers, as Flux 2.9 does it (`fluxcd/pkg/git/github`):
//! a Provider Secret with `githubAppID`, `githubAppInstallationID` and `githubAppPrivateKey`
//! (and `githubAppBaseURL` for GitHub Enterprise) instead of a `token`. A JWT signed with the
//! App's RSA key (RS256) asks GitHub for an installation access token, which then authenticates
//! the provider's requests like a token would.

use std::fmt;

use serde_json::json;

use super::{Error, Method, Request, ResponseCheck};

/// The Secret key of the App's ID.
pub const KEY_APP_ID: &str = "githubAppID";
/// The Secret key of the installation's ID.
pub const KEY_INSTALLATION_ID: &str = "githubAppInstallationID";
/// The Secret key of the installation's owner (looked up instead of an ID; not built).
pub const KEY_INSTALLATION_OWNER: &str = "githubAppInstallationOwner";
/// The Secret key of the App's PEM private key.
pub const KEY_PRIVATE_KEY: &str = "githubAppPrivateKey";
/// The Secret key of the GitHub API's base URL (GitHub Enterprise).
pub const KEY_BASE_URL: &str = "githubAppBaseURL";

/// GitHub's API when the Secret names none.
const DEFAULT_API: &str = "https://api.github.com";
/// Longest private key taken from a Secret.
const MAX_PRIVATE_KEY: usize = 16 * 1024;
/// How far back the JWT's `iat` is set, for clock drift (as Flux).
const CLOCK_DRIFT: i64 = 30;
/// How long the JWT is valid from its `iat` (as Flux: it only buys the installation token).
const JWT_LIFETIME: i64 = 120;

/// The provider types that take GitHub App credentials (Flux's GitHub notifiers).
pub fn is_github_app_provider(provider_type: &str) -> bool {
    matches!(
        provider_type,
        "github" | "githubdispatch" | "githubpullrequestcomment"
    )
}

/// A GitHub App installation a Provider authenticates as.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitHubApp {
    /// `githubAppID`.
    pub app_id: i64,
    /// `githubAppInstallationID`.
    pub installation_id: i64,
    /// `githubAppPrivateKey`, PEM (PKCS#1 as GitHub issues it, or PKCS#8).
    pub private_key: String,
    /// `githubAppBaseURL`, or GitHub's API.
    pub base_url: String,
}

// The private key never reaches a log.
impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("private_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl GitHubApp {
    /// The App of a Secret whose values `value` reads; `None` without `githubAppID`.
    ///
    /// # Errors
    /// Flux's messages for a missing or invalid ID or key; an installation owner (looked up
    /// by Flux) is refused by name.
    pub fn from_secret(value: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let Some(app_id) = value(KEY_APP_ID) else {
            return Ok(None);
        };
        let number = |text: Option<String>| {
            text.and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|n| *n > 0)
        };
        let app_id = number(Some(app_id)).ok_or_else(|| {
            Error::Invalid("app ID must be provided to use github app authentication".into())
        })?;
        if value(KEY_INSTALLATION_OWNER).is_some_and(|o| !o.is_empty()) {
            return Err(Error::Invalid(format!(
                "{KEY_INSTALLATION_OWNER} is not supported by ferroflux: set {KEY_INSTALLATION_ID}"
            )));
        }
        let installation_id = number(value(KEY_INSTALLATION_ID)).ok_or_else(|| {
            Error::Invalid(
                "app installation owner or ID must be provided to use github app authentication"
                    .into(),
            )
        })?;
        let private_key = value(KEY_PRIVATE_KEY).unwrap_or_default();
        if private_key.is_empty() {
            return Err(Error::Invalid(
                "private key must be provided to use github app authentication".into(),
            ));
        }
        if private_key.len() > MAX_PRIVATE_KEY {
            return Err(Error::Invalid(format!(
                "could not parse private key: longer than {MAX_PRIVATE_KEY} bytes"
            )));
        }
        let base_url = value(KEY_BASE_URL)
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_API.to_string());
        Ok(Some(GitHubApp {
            app_id,
            installation_id,
            private_key,
            base_url,
        }))
    }

    /// The request for an installation access token at `now` (seconds since the epoch):
    /// `POST <base>/app/installations/<id>/access_tokens`, authenticated by the App's JWT.
    ///
    /// # Errors
    /// A private key that is not an RSA key in PEM.
    pub fn token_request(&self, now: i64) -> Result<Request, Error> {
        let issued = now - CLOCK_DRIFT;
        let claims =
            json!({"iat": issued, "exp": issued + JWT_LIFETIME, "iss": self.app_id.to_string()});
        let jwt = super::rs256_jwt(&self.private_key, None, &claims)
            .map_err(|why| Error::Invalid(format!("could not parse private key: {why}")))?;
        Ok(Request {
            method: Method::Post,
            url: format!(
                "{}/app/installations/{}/access_tokens",
                self.base_url, self.installation_id
            ),
            headers: vec![
                ("Accept".into(), "application/vnd.github+json".into()),
                ("Authorization".into(), format!("Bearer {jwt}")),
                ("X-GitHub-Api-Version".into(), "2022-11-28".into()),
            ],
            body: Vec::new(),
            check: ResponseCheck::Success,
        })
    }
}

/// The installation token of GitHub's answer to [`GitHubApp::token_request`].
///
/// # Errors
/// An answer without a `token`.
pub fn installation_token(answer: &[u8]) -> Result<String, Error> {
    serde_json::from_slice::<serde_json::Value>(answer)
        .ok()
        .and_then(|a| a.get("token")?.as_str().map(str::to_string))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Invalid("no installation token in GitHub's answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../testdata/test-service-account-key.pem");

    fn secret(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_app_s_jwt_asks_for_an_installation_token() {
        let app = GitHubApp::from_secret(secret(&[
            (KEY_APP_ID, "123"),
            (KEY_INSTALLATION_ID, "456"),
            (KEY_PRIVATE_KEY, KEY),
            (KEY_BASE_URL, "https://ghe.example/api/v3/"),
        ]))
        .expect("valid")
        .expect("an app");
        assert!(!format!("{app:?}").contains("PRIVATE KEY"), "{app:?}");
        let request = app.token_request(1_796_659_260).expect("signs");
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.url,
            "https://ghe.example/api/v3/app/installations/456/access_tokens"
        );
        let jwt = request
            .header_value("Authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .expect("bearer JWT");
        // Verified with the public half of the key, as GitHub does.
        let der = pem::parse(KEY).expect("pem");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.contents()).expect("rsa");
        let public = jsonwebtoken::DecodingKey::from_rsa_der(pair.public().as_ref());
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "iat", "exp"]);
        validation.set_issuer(&["123"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &public, &validation)
            .expect("a valid RS256 JWT")
            .claims;
        assert_eq!(claims["iat"], 1_796_659_230);
        assert_eq!(claims["exp"], 1_796_659_350);
        assert_eq!(
            installation_token(br#"{"token":"ghs_1","expires_at":"2026-12-07T17:00:00Z"}"#),
            Ok("ghs_1".into())
        );
        assert!(installation_token(b"{}").is_err());
    }

    #[test]
    fn incomplete_app_secrets_are_refused_with_flux_s_messages() {
        assert_eq!(GitHubApp::from_secret(secret(&[("token", "t")])), Ok(None));
        let missing =
            GitHubApp::from_secret(secret(&[(KEY_APP_ID, "123"), (KEY_PRIVATE_KEY, KEY)]))
                .expect_err("no installation");
        assert!(
            missing.to_string().contains("installation owner or ID"),
            "{missing}"
        );
        let owner = GitHubApp::from_secret(secret(&[
            (KEY_APP_ID, "123"),
            (KEY_INSTALLATION_OWNER, "org"),
            (KEY_PRIVATE_KEY, KEY),
        ]))
        .expect_err("owner lookup not built");
        assert!(
            owner.to_string().contains("not supported by ferroflux"),
            "{owner}"
        );
        let app = GitHubApp::from_secret(secret(&[
            (KEY_APP_ID, "123"),
            (KEY_INSTALLATION_ID, "456"),
            (KEY_PRIVATE_KEY, "not a key"),
        ]))
        .expect("read")
        .expect("an app");
        assert_eq!(app.base_url, "https://api.github.com");
        assert!(app.token_request(0).is_err());
    }
}
