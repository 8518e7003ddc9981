//! What each Provider type sends for an event: the HTTP requests (address, headers, body) in
//! the service's documented shape, as Flux's notifiers build them. The controller resolves the
//! [`Settings`] from the Provider and its Secrets and sends the requests; a type not built
//! here is [`Error::Unsupported`], never accepted silently.

use std::collections::BTreeMap;

use crate::event::{Event, GROUP, META_COMMIT, META_COMMIT_STATUS, META_COMMIT_STATUS_UPDATE};

pub mod bus;
mod chat;
mod comment;
mod git;
pub mod github_app;
mod ops;
pub mod otel;

pub use bus::{NatsPublish, google_token_request, nats};
pub use chat::markdown_post;
pub use comment::{CommentPlan, comment_plan, is_change_request_provider};
pub use git::bitbucket_server_commits;
pub use github_app::{GitHubApp, is_github_app_provider};
pub use ops::SentryDsn;

/// The provider types this build sends to; every other type of Flux's enum is refused.
pub const SUPPORTED: &[&str] = &[
    "generic",
    "generic-hmac",
    "slack",
    "discord",
    "rocket",
    "msteams",
    "googlechat",
    "webex",
    "telegram",
    "matrix",
    "lark",
    "pagerduty",
    "opsgenie",
    "datadog",
    "grafana",
    "alertmanager",
    "github",
    "gitlab",
    "gitea",
    "bitbucket",
    "githubdispatch",
    "zoom",
    "incident.io",
    "bitbucketserver",
    "azuredevops",
    "sentry",
    "zulip",
    "nats",
    "googlepubsub",
    "azureeventhub",
    "githubpullrequestcomment",
    "gitlabmergerequestcomment",
    "giteapullrequestcomment",
    "otel",
];

/// Flux's header naming the emitting controller on generic payloads.
pub const NOTIFICATION_HEADER: &str = "gotk-component";

/// Flux's reason of an event in progress, which commit status and incident providers skip.
const PROGRESSING: &str = "Progressing";

/// Everything a Provider resolves to before sending (from its spec and Secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `spec.type`.
    pub provider_type: String,
    /// `spec.address`, or the Secret's `address`.
    pub address: String,
    /// The Secret's `token`.
    pub token: Option<String>,
    /// `spec.username`, or the Secret's `username`.
    pub username: String,
    /// The Secret's `password`.
    pub password: String,
    /// `spec.channel`.
    pub channel: String,
    /// The Secret's `headers` (YAML map).
    pub headers: BTreeMap<String, String>,
    /// The Provider's UID (Opsgenie aliases, default commit status keys).
    pub provider_uid: String,
    /// The commit status key, for the commit status providers.
    pub commit_status: Option<String>,
    /// When the requests are built, in seconds since the epoch (expiry of signed tokens).
    pub now: i64,
    /// An OAuth2 access token the controller obtained for the Provider (`googlepubsub`).
    pub access_token: Option<String>,
    /// The service's API instead of its public one (`googlepubsub`: an emulator).
    pub api_endpoint: Option<String>,
    /// The namespace of the Alert the event goes through (`otel`: the traced service).
    pub alert_namespace: String,
    /// The name of that Alert.
    pub alert_name: String,
    /// The UID of that Alert (`otel`: the trace ID's seed).
    pub alert_uid: String,
    /// The GitHub App the GitHub providers authenticate as without a `token`: the controller
    /// exchanges it for an installation token ([`GitHubApp::token_request`]) and sets `token`.
    pub github_app: Option<GitHubApp>,
}

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET (reads before a comment is written).
    Get,
    /// POST.
    Post,
    /// PUT (Matrix, GitLab note edits).
    Put,
    /// PATCH (GitHub and Gitea comment edits).
    Patch,
}

/// How the answer is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCheck {
    /// Any 2xx status.
    Success,
    /// A 2xx status and a JSON body with `"ok": true` (Slack's Web API).
    SlackOk,
}

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Address.
    pub url: String,
    /// Headers, `Content-Type` included.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// How the answer is judged.
    pub check: ResponseCheck,
}

impl Request {
    /// A JSON POST of `body` to `url`.
    fn json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Request {
            method: Method::Post,
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
            check: ResponseCheck::Success,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The value of header `name`.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (tests and logs of shapes).
    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// Why a Provider cannot send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The type is not built.
    #[error("provider type '{0}' is not supported by ferroflux")]
    Unsupported(String),
    /// The Provider's settings or the event do not allow a request (never holds a secret).
    #[error("{0}")]
    Invalid(String),
}

/// Whether `provider_type` sends Git commit statuses.
pub fn is_commit_status_provider(provider_type: &str) -> bool {
    matches!(
        provider_type,
        "github" | "gitlab" | "gitea" | "bitbucketserver" | "bitbucket" | "azuredevops"
    )
}

/// Whether `provider_type` is `generic` or `generic-hmac`.
pub fn is_generic_provider(provider_type: &str) -> bool {
    matches!(provider_type, "generic" | "generic-hmac")
}

/// Whether an event is skipped for `provider_type` before anything is resolved (Flux's
/// dispatch rules): commit status updates go only to Git and generic providers; Git providers
/// take only commit status updates, events naming a commit, and errors. `Some(reason)` says
/// why it is dropped.
pub fn skip(provider_type: &str, event: &Event) -> Option<&'static str> {
    let update = event.metadata.get(&event.object_key(META_COMMIT_STATUS))
        == Some(&META_COMMIT_STATUS_UPDATE.to_string());
    let commit = event
        .metadata
        .get(&format!("{GROUP}/{META_COMMIT}"))
        .is_some_and(|c| !c.is_empty());
    let commit_status = is_commit_status_provider(provider_type);
    if !commit_status && !is_generic_provider(provider_type) && update {
        return Some("commit status updates go to Git providers only");
    }
    if commit_status && !commit && !update && event.severity != crate::event::SEVERITY_ERROR {
        return Some("missing commit metadata key");
    }
    let change_request = event
        .metadata
        .get(&format!("{GROUP}/{}", crate::event::META_CHANGE_REQUEST))
        .is_some_and(|c| !c.is_empty());
    if is_change_request_provider(provider_type) && !change_request {
        return Some("missing change request metadata key");
    }
    None
}

/// Flux's default commit status key: `kind/name/<first part of the Provider UID>`, in lower
/// case.
pub fn default_commit_status(provider_uid: &str, event: &Event) -> String {
    let uid = provider_uid.split('-').next().unwrap_or_default();
    format!(
        "{}/{}/{uid}",
        event.involved_object.kind, event.involved_object.name
    )
    .to_lowercase()
}

/// The requests `settings` sends for `event` (already merged with the Alert's metadata).
/// Empty when the type sends nothing for this event (e.g. `Progressing` to a commit status).
///
/// # Errors
/// [`Error::Unsupported`] for a type not built, [`Error::Invalid`] when the settings lack
/// what the type needs.
pub fn requests(settings: &Settings, event: &Event) -> Result<Vec<Request>, Error> {
    let one = |r: Result<Request, Error>| r.map(|r| vec![r]);
    match settings.provider_type.as_str() {
        "generic" => one(generic(settings, event, false)),
        "generic-hmac" => one(generic(settings, event, true)),
        "slack" => one(chat::slack(settings, event)),
        "discord" => one(chat::discord(settings, event)),
        "rocket" => one(chat::rocket(settings, event)),
        "msteams" => one(chat::msteams(settings, event)),
        "googlechat" => one(chat::google_chat(settings, event)),
        "webex" => one(chat::webex(settings, event)),
        "telegram" => one(chat::telegram(settings, event)),
        "matrix" => one(chat::matrix(settings, event)),
        "lark" => one(chat::lark(settings, event)),
        "pagerduty" => ops::pagerduty(settings, event),
        "opsgenie" => one(ops::opsgenie(settings, event)),
        "datadog" => one(ops::datadog(settings, event)),
        "grafana" => one(ops::grafana(settings, event)),
        "alertmanager" => one(ops::alertmanager(settings, event)),
        "github" | "gitlab" | "gitea" | "bitbucket" => git::commit_status(settings, event),
        "bitbucketserver" => git::bitbucket_server(settings, event),
        "azuredevops" => git::azure_devops(settings, event),
        "sentry" => ops::sentry(settings, event),
        "zulip" => one(chat::zulip(settings, event)),
        "googlepubsub" => one(bus::google_pubsub(settings, event)),
        "azureeventhub" => one(bus::azure_event_hub(settings, event)),
        "otel" => otel::otel(settings, event),
        // Three steps (who, list, write): see [`comment_plan`].
        kind if is_change_request_provider(kind) => Err(Error::Invalid(format!(
            "{kind} reads before it writes: see comment_plan"
        ))),
        // A publish on NATS' own protocol, not HTTP: see [`nats`].
        "nats" => Err(Error::Invalid(
            "nats publishes over the NATS protocol, not HTTP".into(),
        )),
        "githubdispatch" => one(git::github_dispatch(settings, event)),
        "zoom" => one(chat::zoom(settings, event)),
        "incident.io" => ops::incidentio(settings, event),
        other => Err(Error::Unsupported(other.to_string())),
    }
}

/// An address Go's `url.ParseRequestURI` takes: absolute with a scheme, or an absolute path.
fn request_uri(address: &str, what: &str) -> Result<String, Error> {
    let valid = match address.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        }
        None => address.starts_with('/'),
    };
    if valid && !address.chars().any(char::is_whitespace) {
        Ok(address.to_string())
    } else {
        Err(Error::Invalid(format!("invalid {what} URL {address}")))
    }
}

/// `generic` and `generic-hmac`: the event as it is, with `gotk-component`, the Secret's
/// headers and, for HMAC, `X-Signature: sha256=<hex HMAC of the body with the token>`.
fn generic(settings: &Settings, event: &Event, hmac: bool) -> Result<Request, Error> {
    let url = request_uri(&settings.address, "hook")?;
    let body = event.to_json();
    let mut request = Request {
        method: Method::Post,
        url,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
        check: ResponseCheck::Success,
    }
    .header(NOTIFICATION_HEADER, event.reporting_controller.clone());
    for (name, value) in &settings.headers {
        request = request.header(name, value.clone());
    }
    if hmac {
        let key = settings.token.as_deref().unwrap_or_default();
        if key.is_empty() {
            return Err(Error::Invalid("HMAC key is empty".into()));
        }
        let signature = crate::receiver::hmac_sha256_hex(key.as_bytes(), &request.body);
        request = request.header("X-Signature", format!("sha256={signature}"));
    }
    Ok(request)
}

/// A JWT of `claims` signed RS256 with the RSA key of `pem_text` (PKCS#1 or PKCS#8), its
/// header naming `kid` when given (Google's service account keys, GitHub Apps).
fn rs256_jwt(
    pem_text: &str,
    kid: Option<&str>,
    claims: &serde_json::Value,
) -> Result<String, String> {
    use base64::Engine as _;
    let der = pem::parse(pem_text.as_bytes()).map_err(|_| "not a PEM key".to_string())?;
    let pair = match der.tag() {
        "RSA PRIVATE KEY" => ring::signature::RsaKeyPair::from_der(der.contents()),
        "PRIVATE KEY" => ring::signature::RsaKeyPair::from_pkcs8(der.contents()),
        other => return Err(format!("a {other} is not an RSA private key")),
    }
    .map_err(|_| "not a valid RSA private key".to_string())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let (Some(kid), Some(fields)) = (kid, header.as_object_mut()) {
        fields.insert("kid".into(), kid.into());
    }
    let signed = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing failed".to_string())?;
    Ok(format!("{signed}.{}", b64.encode(signature)))
}

/// Metadata as `(key, value)` pairs, in key order.
fn fields(event: &Event) -> impl Iterator<Item = (&String, &String)> {
    event.metadata.iter()
}

/// Flux's `formatNameAndDescription`: `kind/name` in lower case, and the reason split at its
/// capitals, in lower case (`ReconciliationFailed` -> `reconciliation failed`).
pub fn name_and_description(event: &Event) -> (String, String) {
    let name = format!(
        "{}/{}",
        event.involved_object.kind, event.involved_object.name
    )
    .to_lowercase();
    let description = split_camel_case(&event.reason).join(" ").to_lowercase();
    (name, description)
}

/// Splits `ThisIsHTTPText2` as Go's camelcase package does: `This Is HTTP Text 2`.
fn split_camel_case(src: &str) -> Vec<String> {
    let class = |c: char| {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    };
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in src.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if k == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = k;
    }
    // An upper-case run followed by a lower-case one gives its last letter to the next word.
    for i in 0..runs.len().saturating_sub(1) {
        let upper = runs[i].first().is_some_and(|c| c.is_uppercase());
        let lower = runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper
            && lower
            && let Some(moved) = runs[i].pop()
        {
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

#[cfg(test)]
pub(crate) use tests::{merged_event, settings};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::kustomization_event;

    pub(crate) fn settings(provider_type: &str, address: &str) -> Settings {
        Settings {
            provider_type: provider_type.into(),
            address: address.into(),
            provider_uid: "4f1c7e2a-8b3d-4e5f-9a6b-7c8d9e0f1a2b".into(),
            ..Settings::default()
        }
    }

    /// The test event after an Alert's metadata merge (keys without prefix).
    pub(crate) fn merged_event() -> Event {
        let mut event = kustomization_event();
        event.metadata = [
            ("revision".to_string(), "main@sha1:8a7b1c".to_string()),
            ("summary".to_string(), "Cluster eu-1".to_string()),
        ]
        .into();
        event
    }

    #[test]
    fn generic_hmac_signs_the_body_with_the_token() {
        let mut s = settings("generic-hmac", "https://hooks.example.com/flux");
        s.token = Some("s3cret".into());
        s.headers = [("X-Env".to_string(), "prod".to_string())].into();
        let event = kustomization_event();
        let [request] = requests(&s, &event)
            .expect("builds")
            .try_into()
            .expect("one");
        assert_eq!(request.url, "https://hooks.example.com/flux");
        assert_eq!(request.body, event.to_json());
        assert_eq!(
            request.header_value("gotk-component"),
            Some("kustomize-controller")
        );
        assert_eq!(request.header_value("X-Env"), Some("prod"));
        let signature = request.header_value("X-Signature").expect("signed");
        assert_eq!(
            signature,
            format!(
                "sha256={}",
                crate::receiver::hmac_sha256_hex(b"s3cret", &request.body)
            )
        );
        assert!(crate::receiver::verify_signature(signature, &request.body, b"s3cret").is_ok());
        s.token = None;
        assert!(matches!(requests(&s, &event), Err(Error::Invalid(_))));
        let plain = requests(&settings("generic", "https://h.example/x"), &event).expect("ok");
        assert_eq!(plain[0].header_value("X-Signature"), None);
    }

    #[test]
    fn types_not_built_are_refused_by_name() {
        let err = requests(&settings("unknown", "https://x"), &kustomization_event())
            .expect_err("not built");
        assert_eq!(
            err.to_string(),
            "provider type 'unknown' is not supported by ferroflux"
        );
        assert!(matches!(
            requests(&settings("slack", "not a url"), &kustomization_event()),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn reasons_split_as_flux_describes_them() {
        assert_eq!(
            split_camel_case("ReconciliationFailed"),
            ["Reconciliation", "Failed"]
        );
        assert_eq!(
            split_camel_case("HTTPServerError2"),
            ["HTTP", "Server", "Error", "2"]
        );
        let (name, desc) = name_and_description(&kustomization_event());
        assert_eq!(name, "kustomization/podinfo");
        assert_eq!(desc, "reconciliation failed");
    }

    #[test]
    fn commit_status_dispatch_rules_hold() {
        let mut event = kustomization_event();
        event.severity = "info".into();
        assert_eq!(skip("github", &event), Some("missing commit metadata key"));
        assert_eq!(skip("slack", &event), None);
        event.metadata.insert(
            "kustomize.toolkit.fluxcd.io/commit_status".into(),
            "update".into(),
        );
        assert_eq!(skip("github", &event), None);
        assert_eq!(skip("generic", &event), None);
        assert!(skip("slack", &event).is_some());
        assert_eq!(skip("gitlab", &kustomization_event()), None);
        assert_eq!(
            default_commit_status("4F1C7E2A-8b3d", &event),
            "kustomization/podinfo/4f1c7e2a"
        );
    }
}
