//! Message buses: NATS (a publish on the text protocol), Google Cloud Pub/Sub (REST publish,
//! with a service account's OAuth2 token) and Azure Event Hubs (REST send with a Shared Access
//! Signature or a bearer token). Each carries the event as it is, as Flux's notifiers do.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Error, Method, Request, ResponseCheck, Settings};
use crate::event::Event;

/// Google Cloud Pub/Sub's API.
pub const GOOGLE_PUBSUB_API: &str = "https://pubsub.googleapis.com";
/// The OAuth2 scope of a Pub/Sub publish.
const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
/// Google's token endpoint, when a credentials file names none.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// How long a signed assertion or SAS token is valid (seconds).
const TOKEN_LIFETIME: i64 = 3600;
/// Longest NATS subject taken (the server's default max control line is 4 KiB).
const MAX_SUBJECT: usize = 1024;

/// One NATS publish: where, what and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsPublish {
    /// `host:port` of each server to try, in order.
    pub servers: Vec<String>,
    /// The subject (`spec.channel`).
    pub subject: String,
    /// The event's JSON.
    pub payload: Vec<u8>,
    /// `user`/`pass` of the CONNECT, from the address or the Secret.
    pub user: Option<(String, String)>,
}

impl NatsPublish {
    /// The client's frames after the server's `INFO`: `CONNECT` (verbose off, so only errors
    /// answer), the `PUB` and a `PING` whose `PONG` confirms the server processed the publish.
    pub fn frames(&self) -> Vec<u8> {
        let mut connect = json!({
            "verbose": false, "pedantic": false, "tls_required": false,
            "name": "NATS Provider Publisher", "lang": "rust", "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1, "echo": true, "headers": false, "no_responders": false,
        });
        if let (Some((user, pass)), Some(object)) = (&self.user, connect.as_object_mut()) {
            object.insert("user".into(), user.clone().into());
            object.insert("pass".into(), pass.clone().into());
        }
        let mut out = format!("CONNECT {connect}\r\n").into_bytes();
        out.extend_from_slice(
            format!("PUB {} {}\r\n", self.subject, self.payload.len()).as_bytes(),
        );
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(b"\r\nPING\r\n");
        out
    }
}

/// NATS (Flux's `NewNATS`): the address is the server URL (`nats://host:port`, several
/// separated by commas), the channel the subject; username and password authenticate.
///
/// # Errors
/// An empty address or subject, a subject NATS does not take, or an address without host.
pub fn nats(settings: &Settings, event: &Event) -> Result<NatsPublish, Error> {
    if settings.address.is_empty() {
        return Err(Error::Invalid(
            "NATS server (address) cannot be empty".into(),
        ));
    }
    let subject = settings.channel.as_str();
    if subject.is_empty() {
        return Err(Error::Invalid(
            "NATS subject (channel) cannot be empty".into(),
        ));
    }
    if subject.len() > MAX_SUBJECT || subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Invalid(format!("invalid NATS subject {subject:?}")));
    }
    let mut servers = Vec::new();
    let mut user = None;
    for url in settings.address.split(',').map(str::trim) {
        let rest = match url.split_once("://") {
            Some(("nats", rest)) => rest,
            Some((scheme, _)) => {
                return Err(Error::Invalid(format!(
                    "NATS URL scheme {scheme:?} is not supported by ferroflux (nats:// only)"
                )));
            }
            None => url,
        };
        let hostport = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match hostport.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, hostport),
        };
        if let Some((u, p)) = userinfo.and_then(|i| i.split_once(':')) {
            user = Some((u.to_string(), p.to_string()));
        }
        if hostport.is_empty() {
            return Err(Error::Invalid("invalid NATS server address".into()));
        }
        // IPv6 literals keep their brackets; a port-less address takes NATS' 4222.
        let has_port = hostport
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.ends_with(':') && port.parse::<u16>().is_ok());
        servers.push(if has_port {
            hostport.to_string()
        } else {
            format!("{hostport}:4222")
        });
    }
    if !settings.username.is_empty() && !settings.password.is_empty() {
        user = Some((settings.username.clone(), settings.password.clone()));
    }
    Ok(NatsPublish {
        servers,
        subject: subject.to_string(),
        payload: event.to_json(),
        user,
    })
}

/// A Google service account key (the `token` of a `googlepubsub` Provider's Secret).
#[derive(Debug, serde::Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    token_uri: String,
}

/// The OAuth2 token request of a service account key (RFC 7523 JWT bearer grant, RS256),
/// made at `now` (seconds since the epoch), for Pub/Sub's scope.
///
/// # Errors
/// A key that is not a service account's JSON key with an RSA private key.
pub fn google_token_request(credentials: &str, now: i64) -> Result<Request, Error> {
    let invalid = |what: &str| {
        Error::Invalid(format!(
            "invalid GCP credentials JSON in the Secret's token: {what}"
        ))
    };
    let key: ServiceAccountKey =
        serde_json::from_str(credentials).map_err(|_| invalid("not a JSON key"))?;
    if key.kind != "service_account" || key.client_email.is_empty() {
        return Err(invalid(
            "only service_account keys are supported by ferroflux",
        ));
    }
    let token_uri = if key.token_uri.is_empty() {
        GOOGLE_TOKEN_URI.to_string()
    } else {
        key.token_uri.clone()
    };
    let claims = json!({
        "iss": key.client_email, "scope": PUBSUB_SCOPE, "aud": token_uri,
        "iat": now, "exp": now + TOKEN_LIFETIME,
    });
    let assertion = super::rs256_jwt(&key.private_key, Some(&key.private_key_id), &claims)
        .map_err(|why| invalid(&format!("private_key: {why}")))?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth2:grant-type:jwt-bearer")
        .append_pair("assertion", &assertion)
        .finish();
    Ok(Request {
        method: Method::Post,
        url: token_uri,
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.into_bytes(),
        check: ResponseCheck::Success,
    })
}

/// Google Cloud Pub/Sub (Flux's `NewGooglePubSub`): the address is the project ID, the channel
/// the topic ID; the event is the message's data, the Secret's headers its attributes. Sent
/// to [`GOOGLE_PUBSUB_API`] (or `settings.api_endpoint`) with the access token when there is one.
pub(super) fn google_pubsub(settings: &Settings, event: &Event) -> Result<Request, Error> {
    use base64::Engine as _;
    let project = settings.address.as_str();
    if project.is_empty() {
        return Err(Error::Invalid("GCP project ID cannot be empty".into()));
    }
    let topic = settings.channel.as_str();
    if topic.is_empty() {
        return Err(Error::Invalid(
            "GCP Pub/Sub topic ID cannot be empty".into(),
        ));
    }
    let id_char = |c: char| c.is_ascii_alphanumeric() || "-_.~+%".contains(c);
    if !project.chars().all(id_char) || !topic.chars().all(id_char) {
        return Err(Error::Invalid(
            "GCP project and topic IDs may hold letters, digits and -_.~+% only".into(),
        ));
    }
    let mut message = json!({
        "data": base64::engine::general_purpose::STANDARD.encode(event.to_json()),
    });
    if !settings.headers.is_empty()
        && let Some(m) = message.as_object_mut()
    {
        m.insert("attributes".into(), json!(settings.headers));
    }
    let endpoint = settings
        .api_endpoint
        .as_deref()
        .unwrap_or(GOOGLE_PUBSUB_API)
        .trim_end_matches('/');
    let mut request = Request::json(
        format!("{endpoint}/v1/projects/{project}/topics/{topic}:publish"),
        &json!({"messages": [message]}),
    );
    if let Some(token) = settings.access_token.as_deref() {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    Ok(request)
}

/// The parts of an Event Hubs connection string.
fn connection_string(address: &str) -> BTreeMap<String, String> {
    address
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Azure Event Hubs over REST (Flux sends over AMQP; the service takes the same event either
/// way): with a connection string holding `SharedAccessKey` as the address, a Shared Access
/// Signature valid for an hour from `settings.now`; otherwise the address is the hub, the
/// channel its namespace and the token a bearer token.
pub(super) fn azure_event_hub(settings: &Settings, event: &Event) -> Result<Request, Error> {
    let address = settings.address.as_str();
    if address.is_empty() {
        return Err(Error::Invalid(
            "invalid authentication options: endpoint URL cannot be empty".into(),
        ));
    }
    let token = settings.token.as_deref().unwrap_or_default();
    let (url, authorization) = if address.contains("SharedAccessKey") {
        if !token.is_empty() {
            return Err(Error::Invalid("invalid authentication options: jwt token and SAS authentication cannot be set at the same time".into()));
        }
        let parts = connection_string(address);
        let missing = |key: &str| {
            Error::Invalid(format!(
                "failed to create a eventhub using SAS: connection string has no {key}"
            ))
        };
        let endpoint = parts.get("Endpoint").ok_or_else(|| missing("Endpoint"))?;
        let hub = parts
            .get("EntityPath")
            .ok_or_else(|| missing("EntityPath"))?;
        let key_name = parts
            .get("SharedAccessKeyName")
            .ok_or_else(|| missing("SharedAccessKeyName"))?;
        let key = parts
            .get("SharedAccessKey")
            .ok_or_else(|| missing("SharedAccessKey"))?;
        // `sb://` is the AMQP namespace; its REST endpoint is the same host over HTTPS.
        let base = match endpoint.split_once("://") {
            Some(("sb", rest)) => format!("https://{rest}"),
            Some(("http" | "https", _)) => endpoint.clone(),
            _ => return Err(missing("valid Endpoint")),
        };
        let resource = format!("{}/{hub}", base.trim_end_matches('/'));
        let signature = sas_token(&resource, key_name, key, settings.now + TOKEN_LIFETIME);
        (format!("{resource}/messages"), signature)
    } else {
        if token.is_empty() {
            return Err(Error::Invalid("failed to create a eventhub using managed identity: workload identity is not supported by ferroflux, use a SAS connection string or a token".into()));
        }
        let namespace = settings.channel.as_str();
        if namespace.is_empty() || address.contains('/') {
            return Err(Error::Invalid(
                "azureeventhub: the address is the hub name and the channel its namespace".into(),
            ));
        }
        let host = if namespace.contains(".servicebus.") {
            namespace.to_string()
        } else {
            format!("{namespace}.servicebus.windows.net")
        };
        (
            format!("https://{host}/{address}/messages"),
            format!("Bearer {token}"),
        )
    };
    Ok(Request {
        method: Method::Post,
        url: format!("{url}?timeout=60&api-version=2014-01"),
        headers: vec![
            (
                "Content-Type".into(),
                "application/atom+xml;type=entry;charset=utf-8".into(),
            ),
            ("Authorization".into(), authorization),
        ],
        body: event.to_json(),
        check: ResponseCheck::Success,
    })
}

/// Service Bus' Shared Access Signature of `resource` until `expiry`: the HMAC-SHA256 of the
/// URL-encoded resource and the expiry under the key.
pub fn sas_token(resource: &str, key_name: &str, key: &str, expiry: i64) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let encoded: String = form_urlencoded::byte_serialize(resource.as_bytes()).collect();
    let signature = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .map(|mut mac| {
            mac.update(format!("{encoded}\n{expiry}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    let signature: String = form_urlencoded::byte_serialize(signature.as_bytes()).collect();
    let key_name: String = form_urlencoded::byte_serialize(key_name.as_bytes()).collect();
    format!("SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}&skn={key_name}")
}

#[cfg(test)]
mod tests {
    use super::super::{merged_event, requests, settings};
    use super::*;

    #[test]
    fn nats_publishes_the_event_on_the_subject() {
        let mut s = settings("nats", "nats://bot:pw@nats.example");
        assert!(nats(&s, &merged_event()).is_err(), "needs a subject");
        s.channel = "flux.events".into();
        let p = nats(&s, &merged_event()).expect("builds");
        assert_eq!(p.servers, ["nats.example:4222"]);
        assert_eq!(p.user, Some(("bot".into(), "pw".into())));
        assert_eq!(p.payload, merged_event().to_json());
        let frames = String::from_utf8(p.frames()).expect("text");
        let mut lines = frames.split("\r\n");
        let connect = lines.next().expect("connect");
        let connect: serde_json::Value =
            serde_json::from_str(connect.strip_prefix("CONNECT ").expect("CONNECT")).expect("json");
        assert_eq!(connect["user"], "bot");
        assert_eq!(connect["verbose"], false);
        assert_eq!(
            lines.next(),
            Some(format!("PUB flux.events {}", p.payload.len()).as_str())
        );
        assert!(frames.ends_with("\r\nPING\r\n"));
        s.channel = "two words".into();
        assert!(nats(&s, &merged_event()).is_err());
        s.channel = "x".into();
        s.address = "tls://nats.example:4443".into();
        assert!(nats(&s, &merged_event()).is_err());
        s.address = "nats://a:1,nats://[::1]:2".into();
        assert_eq!(
            nats(&s, &merged_event()).expect("ok").servers,
            ["a:1", "[::1]:2"]
        );
    }

    #[test]
    fn google_pubsub_publishes_the_event_as_base64_data_with_attributes() {
        use base64::Engine as _;
        let mut s = settings("googlepubsub", "my-project");
        assert!(requests(&s, &merged_event()).is_err(), "needs a topic");
        s.channel = "flux".into();
        s.headers = [("env".to_string(), "prod".to_string())].into();
        s.access_token = Some("ya29.token".into());
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(
            r.url,
            "https://pubsub.googleapis.com/v1/projects/my-project/topics/flux:publish"
        );
        assert_eq!(r.header_value("Authorization"), Some("Bearer ya29.token"));
        let body = r.json_body();
        let data = base64::engine::general_purpose::STANDARD
            .decode(body["messages"][0]["data"].as_str().expect("data"))
            .expect("base64");
        assert_eq!(data, merged_event().to_json());
        assert_eq!(body["messages"][0]["attributes"]["env"], "prod");
        s.address = "a/b".into();
        assert!(requests(&s, &merged_event()).is_err());
    }

    #[test]
    fn a_service_account_key_becomes_a_signed_jwt_bearer_grant() {
        use base64::Engine as _;
        let err = google_token_request(r#"{"type":"authorized_user"}"#, 0).expect_err("refused");
        assert!(err.to_string().contains("service_account"), "{err}");
        let bad = json!({"type": "service_account", "client_email": "a@b", "private_key": "x"});
        assert!(google_token_request(&bad.to_string(), 0).is_err());
        let pem = include_str!("../../testdata/test-service-account-key.pem");
        let key = json!({"type": "service_account", "client_email": "flux@p.iam.gserviceaccount.com",
            "private_key": pem, "private_key_id": "k1", "token_uri": "http://127.0.0.1:1/token"});
        let r = google_token_request(&key.to_string(), 1_796_659_200).expect("signs");
        assert_eq!(r.url, "http://127.0.0.1:1/token");
        let form: BTreeMap<String, String> = form_urlencoded::parse(&r.body).into_owned().collect();
        assert_eq!(
            form["grant_type"],
            "urn:ietf:params:oauth2:grant-type:jwt-bearer"
        );
        let parts: Vec<&str> = form["assertion"].split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["iss"], "flux@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(claims["scope"], "https://www.googleapis.com/auth/pubsub");
        assert_eq!(claims["exp"], 1_796_662_800);
        let der = pem::parse(pem).expect("pem");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.contents()).expect("key");
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public().as_ref(),
        );
        public
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &b64.decode(parts[2]).expect("b64"),
            )
            .expect("the assertion is signed with the key");
    }

    #[test]
    fn azure_event_hub_sends_with_a_shared_access_signature() {
        let mut s = settings(
            "azureeventhub",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0;EntityPath=flux",
        );
        s.now = 1_796_659_200;
        let r = &requests(&s, &merged_event()).expect("builds")[0];
        assert_eq!(
            r.url,
            "https://ns.servicebus.windows.net/flux/messages?timeout=60&api-version=2014-01"
        );
        assert_eq!(r.body, merged_event().to_json());
        let auth = r.header_value("Authorization").expect("signed");
        assert_eq!(
            auth,
            sas_token(
                "https://ns.servicebus.windows.net/flux",
                "send",
                "c2VjcmV0",
                1_796_662_800
            )
        );
        assert!(auth.starts_with(
            "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2Fflux&sig="
        ));
        assert!(auth.ends_with("&se=1796662800&skn=send"));
        s.token = Some("jwt".into());
        assert!(requests(&s, &merged_event()).is_err(), "SAS and token both");
        let mut jwt = settings("azureeventhub", "flux");
        jwt.channel = "ns".into();
        assert!(requests(&jwt, &merged_event()).is_err(), "needs a token");
        jwt.token = Some("jwt".into());
        let r = &requests(&jwt, &merged_event()).expect("builds")[0];
        assert!(
            r.url
                .starts_with("https://ns.servicebus.windows.net/flux/messages")
        );
        assert_eq!(r.header_value("Authorization"), Some("Bearer jwt"));
    }
}
