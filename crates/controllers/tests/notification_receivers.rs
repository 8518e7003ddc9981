//! The Receiver types of issue 18's second round against the API server, with a small OIDC
//! issuer on loopback (discovery document and JWKS, ES256 tokens): `generic-oidc` (the
//! token's signature, audience and the provider's CEL validations), `gcr` (Google's push
//! token: issuer, audience, verified email) and `cdevents` (the event's shape and the
//! `Ce-Type` filter). A call that does not authenticate is answered 401, a malformed one 400;
//! refused calls annotate nothing; accepted ones request a reconcile.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use ferroflux_api::meta::{LocalObjectReference, RECONCILE_REQUEST_ANNOTATION};
use ferroflux_api::notification::{
    CrossNamespaceObjectReference, OIDCProvider, OIDCValidation, Receiver, ReceiverSpec,
};
use ferroflux_api::source::{GitRepository, GitRepositorySpec};
use ferroflux_controllers::notification;
use ferroflux_testpeers::require;
use kube::api::Api;
use p256::ecdsa::SigningKey;
use serde_json::json;

use common::NS;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An OIDC issuer on loopback: its URL and signing key. Its JWKS is also served at `/certs`
/// (standing in for Google's keys).
async fn issuer() -> (String, SigningKey) {
    let key = SigningKey::from_slice(&[7; 32]).expect("a valid scalar");
    let point = key.verifying_key().to_sec1_bytes();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
        "use": "sig", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get({
                let jwks = jwks.clone();
                move || async move { axum::Json(jwks) }
            }),
        )
        .route(
            "/certs",
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, key)
}

/// An ES256 JWT of `claims`, valid for ten minutes.
fn token(key: &SigningKey, mut claims: serde_json::Value) -> String {
    use p256::ecdsa::signature::Signer;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    claims["iat"] = now.into();
    claims["exp"] = (now + 600).into();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
    let signed = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature: p256::ecdsa::Signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", B64.encode(signature.to_bytes()))
}

/// A GitRepository `name` and a Receiver `name` of `spec` reconciling it; the Receiver's
/// webhook URL once it is Ready.
async fn receiver_for(
    client: &kube::Client,
    receivers_url: &str,
    name: &str,
    token: &str,
    spec: ReceiverSpec,
) -> String {
    let repo = GitRepository::new(
        name,
        GitRepositorySpec {
            url: "https://example.invalid/fleet.git".into(),
            interval: "1h".into(),
            ..GitRepositorySpec::default()
        },
    );
    common::create(client, repo).await;
    let spec = ReceiverSpec {
        resources: vec![CrossNamespaceObjectReference {
            kind: "GitRepository".into(),
            name: name.into(),
            ..CrossNamespaceObjectReference::default()
        }],
        ..spec
    };
    common::create(client, Receiver::new(name, spec)).await;
    let path = ferroflux_notify::receiver::webhook_path(token, name, NS);
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), NS);
    common::wait_until(&receivers, name, "Ready with its path", |r| {
        common::ready_is(r, "True")
            && r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path.as_str())
    })
    .await;
    format!("{receivers_url}{path}")
}

async fn requested(client: &kube::Client, name: &str) -> Option<String> {
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    repos
        .get(name)
        .await
        .expect("reads")
        .metadata
        .annotations
        .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION).cloned())
}

async fn call(url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http")
        .post(url)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answer").status().as_u16()
}

#[tokio::test]
async fn oidc_gcr_and_cdevents_calls_are_verified_before_a_reconcile_is_requested() {
    let cluster = require!(common::cluster().await);
    let client = cluster.client.clone();
    let (issuer, key) = issuer().await;
    let mut context = notification::Context::new(client.clone());
    context.google_certs_url = format!("{issuer}/certs");
    let context = Arc::new(context);
    let (_stop_reconciler, stopped) = common::shutdown();
    tokio::spawn(notification::run(context.clone(), stopped));
    let events = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receivers = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receivers_url = format!("http://{}", receivers.local_addr().expect("address"));
    let (_stop_servers, stopped) = common::shutdown();
    tokio::spawn(notification::serve(context, events, receivers, stopped));

    // generic-oidc: no Secret, the path is of name and namespace only.
    let oidc = receiver_for(
        &client,
        &receivers_url,
        "oidc",
        "",
        ReceiverSpec {
            receiver_type: "generic-oidc".into(),
            oidc_providers: Some(vec![OIDCProvider {
                issuer_url: issuer.clone(),
                audience: Some("flux-webhooks".into()),
                variables: None,
                validations: vec![OIDCValidation {
                    expression: "claims.repository == 'org/fleet'".into(),
                    message: "only the fleet repository may call".into(),
                }],
            }]),
            ..ReceiverSpec::default()
        },
    )
    .await;
    let claims = json!({"iss": issuer, "aud": "flux-webhooks", "sub": "repo:org/fleet",
        "repository": "org/fleet"});
    let mut other_repo = claims.clone();
    other_repo["repository"] = "org/other".into();
    let mut other_audience = claims.clone();
    other_audience["aud"] = "someone-else".into();
    let forged = SigningKey::from_slice(&[9; 32]).expect("a valid scalar");
    for (refused, why) in [
        (token(&key, other_repo), "a failing validation"),
        (token(&key, other_audience), "another audience"),
        (
            token(&forged, claims.clone()),
            "a key the issuer does not hold",
        ),
    ] {
        let bearer = format!("Bearer {refused}");
        assert_eq!(
            call(&oidc, &[("Authorization", &bearer)], "{}").await,
            401,
            "{why} does not authenticate"
        );
    }
    assert_eq!(call(&oidc, &[], "{}").await, 401, "no token");
    assert_eq!(
        requested(&client, "oidc").await,
        None,
        "refused calls annotate nothing"
    );
    let bearer = format!("Bearer {}", token(&key, claims));
    assert_eq!(call(&oidc, &[("Authorization", &bearer)], "{}").await, 200);
    assert!(requested(&client, "oidc").await.is_some());

    // gcr: Google's push token for the Secret's audience and email.
    common::create_secret(
        &client,
        "gcr-webhook",
        [
            ("token".to_string(), "gcr-token".to_string()),
            (
                "email".to_string(),
                "push@proj.iam.gserviceaccount.com".to_string(),
            ),
            (
                "audience".to_string(),
                "https://flux.example/hook".to_string(),
            ),
        ]
        .into(),
    )
    .await;
    let gcr = receiver_for(
        &client,
        &receivers_url,
        "gcr",
        "gcr-token",
        ReceiverSpec {
            receiver_type: "gcr".into(),
            secret_ref: Some(LocalObjectReference {
                name: "gcr-webhook".into(),
            }),
            ..ReceiverSpec::default()
        },
    )
    .await;
    let data = base64::engine::general_purpose::STANDARD.encode(
        r#"{"action":"INSERT","digest":"gcr.io/proj/app@sha256:1","tag":"gcr.io/proj/app:v1"}"#,
    );
    let push = json!({"message": {"data": data, "messageId": "1",
        "publishTime": "2026-12-07T16:00:00Z"}, "subscription": "projects/proj/subscriptions/flux"})
    .to_string();
    let google = json!({"iss": "https://accounts.google.com", "aud": "https://flux.example/hook",
        "email": "push@proj.iam.gserviceaccount.com", "email_verified": true});
    let mut stranger = google.clone();
    stranger["email"] = "someone@proj.iam.gserviceaccount.com".into();
    let bearer = format!("Bearer {}", token(&key, stranger));
    assert_eq!(call(&gcr, &[("Authorization", &bearer)], &push).await, 401);
    assert_eq!(requested(&client, "gcr").await, None);
    // Authenticated, but the Pub/Sub message holds no GCR event: malformed, 400.
    let google_bearer = format!("Bearer {}", token(&key, google.clone()));
    let empty = json!({"message": {"data": "", "messageId": "2"}}).to_string();
    assert_eq!(
        call(&gcr, &[("Authorization", &google_bearer)], &empty).await,
        400
    );
    assert_eq!(requested(&client, "gcr").await, None);
    let bearer = format!("Bearer {}", token(&key, google));
    assert_eq!(call(&gcr, &[("Authorization", &bearer)], &push).await, 200);
    assert!(requested(&client, "gcr").await.is_some());

    // cdevents: a complete CDEvent whose Ce-Type is in spec.events.
    common::create_secret(
        &client,
        "cdevents-webhook",
        [("token".to_string(), "cd-token".to_string())].into(),
    )
    .await;
    let published = "dev.cdevents.artifact.published.0.2.0";
    let cdevents = receiver_for(
        &client,
        &receivers_url,
        "cdevents",
        "cd-token",
        ReceiverSpec {
            receiver_type: "cdevents".into(),
            events: Some(vec![published.into()]),
            secret_ref: Some(LocalObjectReference {
                name: "cdevents-webhook".into(),
            }),
            ..ReceiverSpec::default()
        },
    )
    .await;
    let event = json!({
        "context": {"version": "0.4.1", "id": "271069a8", "source": "/ci/pipelines",
            "type": published, "timestamp": "2026-12-07T16:00:00Z"},
        "subject": {"id": "pkg:oci/app@sha256:1", "content": {}}
    })
    .to_string();
    let queued = [("Ce-Type", "dev.cdevents.pipelinerun.queued.0.2.0")];
    // Not an authentication failure (cdevents has none): a malformed or unwanted call, 400.
    assert_eq!(call(&cdevents, &queued, &event).await, 400);
    assert_eq!(call(&cdevents, &[("Ce-Type", published)], "{}").await, 400);
    assert_eq!(requested(&client, "cdevents").await, None);
    assert_eq!(
        call(&cdevents, &[("Ce-Type", published)], &event).await,
        200
    );
    assert!(requested(&client, "cdevents").await.is_some());
    drop(cluster);
}
