//! Receivers as Flux's notification controller serves them: the webhook path of a Receiver,
//! the signature and token checks of each sender type, the event allowlist and the default API
//! versions of the resources a webhook reconciles.

use hmac::{KeyInit, Mac};

pub mod oidc;

/// Where every Receiver's webhook lives.
pub const WEBHOOK_PREFIX: &str = "/hook/";

/// The Receiver types this build verifies; the others of Flux's enum are refused.
pub const SUPPORTED: &[&str] = &[
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "nexus",
    "quay",
    "dockerhub",
    "acr",
    "cdevents",
    "gcr",
    "generic-oidc",
];

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
type HmacSha1 = hmac::Hmac<sha1::Sha1>;
type HmacSha512 = hmac::Hmac<sha2::Sha512>;

/// `/hook/<hex SHA-256 of token + name + namespace>`, as Flux's `GetWebhookPath`.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!(
        "{WEBHOOK_PREFIX}{}",
        data_encoding::HEXLOWER.encode(&digest)
    )
}

/// The hex HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(data);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

/// Why a webhook call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature header is missing or malformed.
    #[error("missing or malformed signature header")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("payload signature check failed")]
    BadSignature,
    /// The token header does not match.
    #[error("the token header value does not match the receiver token")]
    BadToken,
    /// The event type is not in `spec.events`.
    #[error("the {sender} event {event:?} is not authorised")]
    EventNotAllowed {
        /// GitHub or GitLab.
        sender: &'static str,
        /// The event type of the call.
        event: String,
    },
    /// The body is not the sender's payload.
    #[error("cannot decode {0} webhook payload")]
    Payload(&'static str),
    /// The caller's token does not authenticate it (OIDC receivers), with the reason.
    #[error("{0}")]
    Unauthenticated(String),
    /// The Receiver type is not built.
    #[error("receiver type '{0}' is not supported by ferroflux")]
    Unsupported(String),
}

impl Refusal {
    /// Whether the call failed to authenticate (a missing or wrong signature, token or OIDC
    /// token): answered 401 Unauthorized, where a malformed call (a body that is not the
    /// sender's payload, an event outside `spec.events`, a type not built) is answered 400.
    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            Refusal::MalformedSignature
                | Refusal::BadSignature
                | Refusal::BadToken
                | Refusal::Unauthenticated(_)
        )
    }
}

/// Whether `body` decodes as the JSON object `T` (the registries' payloads, which Flux decodes
/// before accepting a call).
fn decodes<T: serde::de::DeserializeOwned>(
    body: &[u8],
    sender: &'static str,
) -> Result<(), Refusal> {
    serde_json::from_slice::<T>(body)
        .map(|_| ())
        .map_err(|_| Refusal::Payload(sender))
}

// The registries' payloads are decoded only to check their shape, as Flux does before it
// accepts a call; their fields are not read.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct QuayPayload {
    docker_url: Option<String>,
    updated_tags: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct DockerHubPayload {
    push_data: Option<DockerHubPush>,
    repository: Option<DockerHubRepository>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct DockerHubPush {
    tag: Option<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct DockerHubRepository {
    repo_url: Option<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct NexusPayload {
    action: Option<String>,
    repository_name: Option<String>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct AcrPayload {
    action: Option<String>,
    target: Option<AcrTarget>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct AcrTarget {
    repository: Option<String>,
    tag: Option<String>,
}

/// Checks `<algo>=<hex>` (`sha1`, `sha256` or `sha512`) against the HMAC of `body` under `key`
/// in constant time, as go-github's `ValidateSignature` (used by Flux for `generic-hmac` and
/// `github`).
///
/// # Errors
/// [`Refusal::MalformedSignature`] or [`Refusal::BadSignature`].
pub fn verify_signature(header: &str, body: &[u8], key: &[u8]) -> Result<(), Refusal> {
    let (algorithm, hex) = header.split_once('=').ok_or(Refusal::MalformedSignature)?;
    let expected = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| Refusal::MalformedSignature)?;
    let verified = match algorithm {
        "sha256" => <HmacSha256 as KeyInit>::new_from_slice(key).map(|mut m| {
            m.update(body);
            m.verify_slice(&expected).is_ok()
        }),
        "sha1" => <HmacSha1 as KeyInit>::new_from_slice(key).map(|mut m| {
            m.update(body);
            m.verify_slice(&expected).is_ok()
        }),
        "sha512" => <HmacSha512 as KeyInit>::new_from_slice(key).map(|mut m| {
            m.update(body);
            m.verify_slice(&expected).is_ok()
        }),
        _ => return Err(Refusal::MalformedSignature),
    };
    match verified {
        Ok(true) => Ok(()),
        _ => Err(Refusal::BadSignature),
    }
}

/// Headers as `(name, value)` pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a>(pub &'a [(&'a str, &'a str)]);

impl<'a> Headers<'a> {
    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Validates a call to a Receiver of `receiver_type` with `token` and `spec.events` (Flux's
/// `validate`): `generic` takes any call; `generic-hmac` checks `X-Signature`; `github`
/// checks `X-Hub-Signature-256` (or the SHA-1 `X-Hub-Signature`) and `X-GitHub-Event`;
/// `gitlab` checks `X-Gitlab-Token` and `X-Gitlab-Event`.
///
/// # Errors
/// The [`Refusal`]: 401 when [`Refusal::is_authentication`], 400 otherwise.
pub fn validate(
    receiver_type: &str,
    token: &str,
    events: &[String],
    headers: Headers<'_>,
    body: &[u8],
) -> Result<(), Refusal> {
    let allowed = |sender: &'static str, event: &str| {
        if events.is_empty() || events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
            Ok(())
        } else {
            Err(Refusal::EventNotAllowed {
                sender,
                event: event.to_string(),
            })
        }
    };
    match receiver_type {
        "generic" => Ok(()),
        "generic-hmac" => verify_signature(
            headers.get("X-Signature").unwrap_or_default(),
            body,
            token.as_bytes(),
        ),
        "github" => {
            let signature = headers
                .get("X-Hub-Signature-256")
                .or_else(|| headers.get("X-Hub-Signature"))
                .ok_or(Refusal::MalformedSignature)?;
            verify_signature(signature, body, token.as_bytes())?;
            allowed("GitHub", headers.get("X-GitHub-Event").unwrap_or_default())
        }
        "gitlab" => {
            let given = headers.get("X-Gitlab-Token").unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return Err(Refusal::BadToken);
            }
            allowed("GitLab", headers.get("X-Gitlab-Event").unwrap_or_default())
        }
        "bitbucket" => {
            let signature = headers
                .get("X-Hub-Signature")
                .ok_or(Refusal::MalformedSignature)?;
            verify_signature(signature, body, token.as_bytes())?;
            allowed(
                "Bitbucket server",
                headers.get("X-Event-Key").unwrap_or_default(),
            )
        }
        "harbor" => {
            let given = headers.get("Authorization").unwrap_or_default();
            if constant_time_eq(given.as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(Refusal::BadToken)
            }
        }
        "nexus" => {
            use hmac::Mac as _;
            let signature = headers
                .get("X-Nexus-Webhook-Signature")
                .filter(|s| !s.is_empty())
                .ok_or(Refusal::MalformedSignature)?;
            let expected = data_encoding::HEXLOWER_PERMISSIVE
                .decode(signature.as_bytes())
                .map_err(|_| Refusal::BadSignature)?;
            let mut mac = <HmacSha1 as KeyInit>::new_from_slice(token.as_bytes())
                .map_err(|_| Refusal::BadSignature)?;
            mac.update(body);
            mac.verify_slice(&expected)
                .map_err(|_| Refusal::BadSignature)?;
            decodes::<NexusPayload>(body, "Nexus")
        }
        "quay" => decodes::<QuayPayload>(body, "Quay"),
        "dockerhub" => decodes::<DockerHubPayload>(body, "DockerHub"),
        "acr" => decodes::<AcrPayload>(body, "ACR"),
        "cdevents" => {
            check_cdevent(body)?;
            allowed("CDEvent", headers.get("Ce-Type").unwrap_or_default())
        }
        // Their tokens are verified with the issuer's keys, which the controller fetches.
        "gcr" | "generic-oidc" => Err(Refusal::Unauthenticated(format!(
            "{receiver_type} calls are verified with the issuer's keys"
        ))),
        other => Err(Refusal::Unsupported(other.to_string())),
    }
}

/// A CDEvent (spec v0.4) as the CDEvents SDK checks it before Flux takes the call: a
/// `context` with `version`, `id`, `source`, a `dev.cdevents.*` `type` and an RFC 3339
/// `timestamp`, and a `subject` with an `id` and a `content` object.
fn check_cdevent(body: &[u8]) -> Result<(), Refusal> {
    let event: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Refusal::Payload("CDEvent"))?;
    let text = |pointer: &str| {
        event
            .pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let complete = [
        "/context/version",
        "/context/id",
        "/context/source",
        "/subject/id",
    ]
    .iter()
    .all(|p| text(p).is_some())
        && text("/context/type").is_some_and(|t| t.starts_with("dev.cdevents."))
        && text("/context/timestamp").is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok())
        && event
            .pointer("/subject/content")
            .is_some_and(serde_json::Value::is_object);
    if complete {
        Ok(())
    } else {
        Err(Refusal::Payload("CDEvent"))
    }
}

/// Equality that takes the same time wherever the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API version Flux assumes for a resource kind without `apiVersion` (only these kinds
/// have one; others must name theirs).
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Bucket" | "HelmChart" | "HelmRepository" | "GitRepository" | "OCIRepository" => {
            "source.toolkit.fluxcd.io/v1"
        }
        "ImageRepository" => "image.toolkit.fluxcd.io/v1",
        "ArtifactGenerator" => "source.extensions.fluxcd.io/v1beta1",
        _ => return None,
    })
}

/// The value of `reconcile.fluxcd.io/requestedAt` a webhook writes: Go's `time.Time.String()`
/// of now in UTC (`2006-01-02 15:04:05.999999999 +0000 UTC`).
pub fn requested_at(now: jiff::Timestamp) -> String {
    let seconds = now.strftime("%Y-%m-%d %H:%M:%S");
    let nanos = now.subsec_nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{seconds}{fraction} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_path_is_flux_s() {
        use sha2::Digest;
        let expected = data_encoding::HEXLOWER
            .encode(&sha2::Sha256::digest(b"s3cretgithub-receiverflux-system"));
        assert_eq!(
            webhook_path("s3cret", "github-receiver", "flux-system"),
            format!("/hook/{expected}")
        );
    }

    #[test]
    fn signatures_are_checked_per_sender() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = format!("sha256={}", hmac_sha256_hex(b"tok", body));
        let github = [
            ("X-Hub-Signature-256", good.as_str()),
            ("X-GitHub-Event", "push"),
        ];
        assert_eq!(
            validate("github", "tok", &[], Headers(&github), body),
            Ok(())
        );
        assert_eq!(
            validate("github", "other", &[], Headers(&github), body),
            Err(Refusal::BadSignature)
        );
        assert!(matches!(
            validate("github", "tok", &["ping".into()], Headers(&github), body),
            Err(Refusal::EventNotAllowed { .. })
        ));
        assert_eq!(
            validate("github", "tok", &[], Headers(&[]), body),
            Err(Refusal::MalformedSignature)
        );
        for refusal in [
            validate("github", "other", &[], Headers(&github), body),
            validate("github", "tok", &[], Headers(&[]), body),
            validate("harbor", "tok", &[], Headers(&[]), b""),
        ] {
            assert!(refusal.is_err_and(|r| r.is_authentication()));
        }
        for refusal in [
            validate("github", "tok", &["ping".into()], Headers(&github), body),
            validate("quay", "", &[], Headers(&[]), b"not json"),
            validate("azure", "tok", &[], Headers(&[]), b""),
        ] {
            assert!(refusal.is_err_and(|r| !r.is_authentication()));
        }
        let hmac = [("X-Signature", good.as_str())];
        assert_eq!(
            validate("generic-hmac", "tok", &[], Headers(&hmac), body),
            Ok(())
        );
        assert!(validate("generic-hmac", "tok", &[], Headers(&hmac), b"tampered").is_err());
        let gitlab = [("X-Gitlab-Token", "tok"), ("X-Gitlab-Event", "Push Hook")];
        assert_eq!(
            validate(
                "gitlab",
                "tok",
                &["push hook".into()],
                Headers(&gitlab),
                b""
            ),
            Ok(())
        );
        assert_eq!(
            validate("gitlab", "tik", &[], Headers(&gitlab), b""),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            validate("azure", "tok", &[], Headers(&[]), b""),
            Err(Refusal::Unsupported("azure".into()))
        );
        let sha1 = {
            let mut mac = <HmacSha1 as KeyInit>::new_from_slice(b"tok").expect("key");
            mac.update(body);
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
        };
        let nexus = [("X-Nexus-Webhook-Signature", sha1.as_str())];
        assert_eq!(validate("nexus", "tok", &[], Headers(&nexus), body), Ok(()));
        assert_eq!(
            validate("nexus", "tik", &[], Headers(&nexus), body),
            Err(Refusal::BadSignature)
        );
        let bitbucket = [
            ("X-Hub-Signature", good.as_str()),
            ("X-Event-Key", "repo:push"),
        ];
        assert_eq!(
            validate(
                "bitbucket",
                "tok",
                &["repo:push".into()],
                Headers(&bitbucket),
                body
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                "harbor",
                "tok",
                &[],
                Headers(&[("Authorization", "tok")]),
                b""
            ),
            Ok(())
        );
        assert_eq!(
            validate("harbor", "tok", &[], Headers(&[]), b""),
            Err(Refusal::BadToken)
        );
        assert_eq!(
            validate(
                "quay",
                "",
                &[],
                Headers(&[]),
                br#"{"docker_url":"q/x","updated_tags":["v1"]}"#
            ),
            Ok(())
        );
        assert_eq!(
            validate("quay", "", &[], Headers(&[]), br#"{"updated_tags":"v1"}"#),
            Err(Refusal::Payload("Quay"))
        );
        assert_eq!(validate("dockerhub", "", &[], Headers(&[]), b"{}"), Ok(()));
        assert!(validate("acr", "", &[], Headers(&[]), b"not json").is_err());
    }

    #[test]
    fn cdevents_are_checked_and_filtered_by_ce_type() {
        let event = serde_json::json!({
            "context": {"version": "0.4.1", "id": "271069a8", "source": "/tekton/pipelines",
                "type": "dev.cdevents.artifact.published.0.2.0",
                "timestamp": "2026-12-07T16:00:00Z"},
            "subject": {"id": "pkg:oci/app@sha256:1", "content": {}}
        })
        .to_string();
        let headers = [("Ce-Type", "dev.cdevents.artifact.published.0.2.0")];
        let allowed = ["dev.cdevents.artifact.published.0.2.0".to_string()];
        assert_eq!(
            validate(
                "cdevents",
                "",
                &allowed,
                Headers(&headers),
                event.as_bytes()
            ),
            Ok(())
        );
        let other = [("Ce-Type", "dev.cdevents.pipelinerun.queued.0.2.0")];
        assert!(matches!(
            validate("cdevents", "", &allowed, Headers(&other), event.as_bytes()),
            Err(Refusal::EventNotAllowed { .. })
        ));
        let incomplete = event.replace("2026-12-07T16:00:00Z", "yesterday");
        assert_eq!(
            validate(
                "cdevents",
                "",
                &[],
                Headers(&headers),
                incomplete.as_bytes()
            ),
            Err(Refusal::Payload("CDEvent"))
        );
        assert_eq!(
            validate("cdevents", "", &[], Headers(&headers), b"{}"),
            Err(Refusal::Payload("CDEvent"))
        );
    }

    #[test]
    fn requested_at_is_go_s_time_string() {
        let t: jiff::Timestamp = "2026-12-07T16:42:10.120Z".parse().expect("time");
        assert_eq!(requested_at(t), "2026-12-07 16:42:10.12 +0000 UTC");
        let whole: jiff::Timestamp = "2026-12-07T16:42:10Z".parse().expect("time");
        assert_eq!(requested_at(whole), "2026-12-07 16:42:10 +0000 UTC");
    }
}
