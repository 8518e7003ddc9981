//! ID tokens of the Receivers that authenticate callers with OIDC: `generic-oidc` (a token of
//! one of `spec.oidcProviders`, its audience, then the provider's CEL variables and
//! validations over the claims) and `gcr` (Google's push token: Google's issuer, the Secret's
//! audience and a verified service account email). The controller fetches the issuer's JWKS;
//! everything else is decided here.

use ferroflux_api::notification::OIDCProvider;
use serde_json::{Map, Value};

use super::Refusal;

/// Flux's audience of a `generic-oidc` token when `audience` is not set.
pub const DEFAULT_AUDIENCE: &str = "notification-controller";
/// Google's issuers of the ID tokens of Pub/Sub push subscriptions.
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];
/// Google's keys of those tokens.
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// Longest CEL expression of an OIDC provider taken.
const MAX_EXPRESSION: usize = 4096;
/// Most variables or validations of one OIDC provider taken.
const MAX_EXPRESSIONS: usize = 64;
/// Longest bearer token taken.
const MAX_TOKEN: usize = 16 * 1024;

/// The bearer token of an `Authorization` header.
///
/// # Errors
/// [`Refusal::Unauthenticated`] without one.
pub fn bearer(authorization: Option<&str>) -> Result<&str, Refusal> {
    let token = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or_else(|| refused("the Authorization header is missing or malformed"))?
        .trim();
    if token.is_empty() {
        return Err(refused(
            "the Authorization header is missing a bearer token",
        ));
    }
    if token.len() > MAX_TOKEN {
        return Err(refused("the bearer token is too long"));
    }
    Ok(token)
}

fn refused(message: impl Into<String>) -> Refusal {
    Refusal::Unauthenticated(message.into())
}

/// The `iss` claim of a JWT, read without verifying it: only to pick the provider whose keys
/// then verify the token.
///
/// # Errors
/// [`Refusal::Unauthenticated`] for something that is not a JWT with an issuer.
pub fn unverified_issuer(token: &str) -> Result<String, Refusal> {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(refused("failed to parse bearer token: token is not a JWT"));
    };
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| refused("failed to parse bearer token: failed to decode token payload"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload)
        .map_err(|_| refused("failed to parse bearer token: failed to parse token payload"))?;
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if !iss.is_empty() => Ok(iss.to_string()),
        _ => Err(refused(
            "failed to parse bearer token: token is missing the 'iss' claim",
        )),
    }
}

/// The provider of `providers` for tokens of `issuer`.
///
/// # Errors
/// [`Refusal::Unauthenticated`] when none is configured for it.
pub fn provider_for<'a>(
    providers: &'a [OIDCProvider],
    issuer: &str,
) -> Result<&'a OIDCProvider, Refusal> {
    providers
        .iter()
        .find(|p| p.issuer_url == issuer)
        .ok_or_else(|| refused(format!("no oidcProvider configured for issuer {issuer:?}")))
}

/// Verifies `token` with the keys of `jwks` (a JWK Set document): signature (asymmetric
/// algorithms only), expiry, one of `issuers` and `audience`. Returns its claims.
///
/// # Errors
/// [`Refusal::Unauthenticated`] with the reason.
pub fn verify(
    token: &str,
    jwks: &[u8],
    issuers: &[&str],
    audience: &str,
) -> Result<Map<String, Value>, Refusal> {
    use jsonwebtoken::Algorithm;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| refused(format!("failed to verify OIDC token: {e}")))?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(refused(
            "failed to verify OIDC token: symmetric signing algorithms are not accepted",
        ));
    }
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(jwks)
        .map_err(|_| refused("failed to verify OIDC token: the issuer's JWKS does not parse"))?;
    let jwk = match header.kid.as_deref() {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or_else(|| refused("failed to verify OIDC token: no key of the issuer signed it"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
        .map_err(|e| refused(format!("failed to verify OIDC token: {e}")))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(issuers);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| refused(format!("failed to verify OIDC token: {e}")))
}

/// The audience a `generic-oidc` provider expects.
pub fn audience(provider: &OIDCProvider) -> &str {
    provider
        .audience
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_AUDIENCE)
}

/// Flux's `ValidateOIDCProvidersSpec` and `CompileOIDCProviders`: issuer URLs present, `http(s)`
/// and unique, at least one validation, names, expressions and messages set, every CEL
/// expression compiling.
///
/// # Errors
/// The first problem, in Flux's words.
pub fn check_providers(providers: &[OIDCProvider]) -> Result<(), String> {
    if providers.len() > MAX_EXPRESSIONS {
        return Err(format!("at most {MAX_EXPRESSIONS} oidcProviders"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in providers.iter().enumerate() {
        let issuer = &p.issuer_url;
        if issuer.is_empty() {
            return Err(format!("oidcProviders[{i}]: issuerURL is required"));
        }
        if !issuer.starts_with("http://") && !issuer.starts_with("https://") {
            return Err(format!(
                "oidcProviders[{i}]: issuerURL {issuer:?} must start with http:// or https://"
            ));
        }
        if !seen.insert(issuer.as_str()) {
            return Err(format!(
                "oidcProviders[{i}]: duplicate issuerURL {issuer:?}"
            ));
        }
        if p.validations.is_empty() {
            return Err(format!(
                "oidcProviders[{i}] (issuerURL={issuer:?}): at least one validation is required; without validations any caller able to obtain a token from this issuer can trigger the Receiver"
            ));
        }
        let variables = p.variables.as_deref().unwrap_or_default();
        if variables.len() > MAX_EXPRESSIONS || p.validations.len() > MAX_EXPRESSIONS {
            return Err(format!(
                "oidcProviders[{i}] (issuerURL={issuer:?}): at most {MAX_EXPRESSIONS} variables and validations"
            ));
        }
        for (j, v) in variables.iter().enumerate() {
            if v.name.is_empty() {
                return Err(format!(
                    "oidcProviders[{i}] (issuerURL={issuer:?}): variables[{j}]: name is required"
                ));
            }
            compile(&v.expression).map_err(|e| {
                format!(
                    "oidcProviders[{i}] (issuerURL={issuer:?}): invalid expression for variable {:?}: {e}",
                    v.name
                )
            })?;
        }
        for (j, v) in p.validations.iter().enumerate() {
            if v.message.is_empty() {
                return Err(format!(
                    "oidcProviders[{i}] (issuerURL={issuer:?}): validations[{j}]: message is required"
                ));
            }
            compile(&v.expression).map_err(|e| {
                format!(
                    "oidcProviders[{i}] (issuerURL={issuer:?}): invalid expression for validation {:?}: {e}",
                    v.message
                )
            })?;
        }
    }
    Ok(())
}

fn compile(expression: &str) -> Result<cel::Program, String> {
    if expression.is_empty() {
        return Err("expression is required".into());
    }
    if expression.len() > MAX_EXPRESSION {
        return Err(format!("expression is longer than {MAX_EXPRESSION} bytes"));
    }
    cel::Program::compile(expression).map_err(|e| e.to_string())
}

/// Binds `value` as the CEL variable `name`.
fn bind(context: &mut cel::Context, name: &str, value: cel::Value) -> Result<(), String> {
    let value: Box<dyn cel::common::value::Val> = value
        .try_into()
        .map_err(|e: cel::ExecutionError| e.to_string())?;
    context.add_variable_as_val(name, value);
    Ok(())
}

/// Evaluates the provider's variables (in order, as `vars.<name>`) and validations over
/// `claims`; every failing validation's message is in the refusal.
///
/// # Errors
/// [`Refusal::Unauthenticated`] when a validation is false or an expression fails.
pub fn evaluate(provider: &OIDCProvider, claims: &Map<String, Value>) -> Result<(), Refusal> {
    let claims = cel::to_value(claims)
        .map_err(|e| refused(format!("failed to read the token claims: {e}")))?;
    let mut vars: std::collections::HashMap<String, cel::Value> = Default::default();
    let context_with = |vars: &std::collections::HashMap<String, cel::Value>| {
        let mut context = cel::Context::default();
        bind(&mut context, "claims", claims.clone())?;
        bind(&mut context, "vars", cel::Value::from(vars.clone()))?;
        Ok::<_, String>(context)
    };
    for v in provider.variables.as_deref().unwrap_or_default() {
        let context = context_with(&vars).map_err(refused)?;
        let value = compile(&v.expression)
            .map_err(refused)?
            .execute(&context)
            .map_err(|e| refused(format!("failed to evaluate variable {:?}: {e}", v.name)))?;
        vars.insert(v.name.clone(), value);
    }
    let context = context_with(&vars).map_err(refused)?;
    let mut failures = Vec::new();
    for v in &provider.validations {
        match compile(&v.expression).map_err(refused)?.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => failures.push(v.message.as_str()),
            Ok(_) => {
                return Err(refused(
                    "failed to evaluate validation: the expression is not a bool",
                ));
            }
            Err(e) => return Err(refused(format!("failed to evaluate validation: {e}"))),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "token validation failed: {}",
            failures.join("; ")
        )))
    }
}

/// Google's checks of a verified push token after its signature and audience: the issuer is
/// Google's and the token was issued to `email`, verified.
///
/// # Errors
/// [`Refusal::Unauthenticated`] with Flux's reason.
pub fn check_google_push(claims: &Map<String, Value>, email: &str) -> Result<(), Refusal> {
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !GOOGLE_ISSUERS.contains(&issuer) {
        return Err(refused(format!(
            "token issuer is '{issuer}', want 'accounts.google.com' or 'https://accounts.google.com'"
        )));
    }
    let got = claims
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got != email {
        return Err(refused(format!("token email is '{got}', want '{email}'")));
    }
    if claims.get("email_verified") != Some(&Value::Bool(true)) {
        return Err(refused(format!("token email '{got}' is not verified")));
    }
    Ok(())
}

/// The GCR event inside a Pub/Sub push body (`message.data`, base64 JSON), as Flux unwraps it.
///
/// # Errors
/// [`Refusal::Payload`] when the body or the data is not GCR's.
pub fn gcr_event(body: &[u8]) -> Result<Value, Refusal> {
    use base64::Engine as _;
    let push: Value = serde_json::from_slice(body).map_err(|_| Refusal::Payload("GCR"))?;
    let data = push
        .pointer("/message/data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_default();
    let event: Value = serde_json::from_slice(&raw).map_err(|_| Refusal::Payload("GCR"))?;
    if !event.is_object() {
        return Err(Refusal::Payload("GCR"));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::notification::{OIDCValidation, OIDCVariable};

    fn provider() -> OIDCProvider {
        OIDCProvider {
            issuer_url: "https://token.actions.githubusercontent.com".into(),
            audience: None,
            variables: Some(vec![OIDCVariable {
                name: "repo".into(),
                expression: "claims.repository".into(),
            }]),
            validations: vec![
                OIDCValidation {
                    expression: "vars.repo == 'org/fleet'".into(),
                    message: "wrong repository".into(),
                },
                OIDCValidation {
                    expression: "claims.ref.startsWith('refs/heads/')".into(),
                    message: "not a branch".into(),
                },
            ],
        }
    }

    fn claims(pairs: Value) -> Map<String, Value> {
        pairs.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn claims_pass_the_provider_s_cel_validations() {
        let p = provider();
        assert_eq!(check_providers(std::slice::from_ref(&p)), Ok(()));
        assert_eq!(audience(&p), "notification-controller");
        let good = claims(serde_json::json!({"repository": "org/fleet", "ref": "refs/heads/main"}));
        assert_eq!(evaluate(&p, &good), Ok(()));
        let bad = claims(serde_json::json!({"repository": "org/other", "ref": "refs/tags/v1"}));
        assert_eq!(
            evaluate(&p, &bad),
            Err(Refusal::Unauthenticated(
                "token validation failed: wrong repository; not a branch".into()
            ))
        );
        let mut broken = p.clone();
        broken.validations[0].expression = "vars.repo ==".into();
        assert!(check_providers(&[broken]).is_err());
        let mut open = p.clone();
        open.validations.clear();
        assert!(
            check_providers(&[open])
                .is_err_and(|e| e.contains("at least one validation is required"))
        );
        assert!(check_providers(&[p.clone(), p]).is_err_and(|e| e.contains("duplicate")));
    }

    #[test]
    fn bearer_tokens_and_issuers_are_read_before_verification() {
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic x")).is_err());
        assert_eq!(bearer(Some("Bearer a.b.c")), Ok("a.b.c"));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            b64.encode("{}"),
            b64.encode(r#"{"iss":"https://i"}"#)
        );
        assert_eq!(unverified_issuer(&token), Ok("https://i".into()));
        assert!(unverified_issuer("a.b").is_err());
        let p = provider();
        assert!(provider_for(std::slice::from_ref(&p), "https://i").is_err());
        assert!(provider_for(std::slice::from_ref(&p), &p.issuer_url).is_ok());
        assert!(verify(&token, b"{\"keys\":[]}", &["https://i"], "a").is_err());
    }

    #[test]
    fn google_push_tokens_need_google_s_issuer_and_the_verified_email() {
        let ok = claims(serde_json::json!({"iss": "https://accounts.google.com",
            "email": "push@p.iam.gserviceaccount.com", "email_verified": true}));
        assert_eq!(
            check_google_push(&ok, "push@p.iam.gserviceaccount.com"),
            Ok(())
        );
        assert!(check_google_push(&ok, "other@p.iam.gserviceaccount.com").is_err());
        let mut unverified = ok.clone();
        unverified.insert("email_verified".into(), Value::Bool(false));
        assert!(check_google_push(&unverified, "push@p.iam.gserviceaccount.com").is_err());
        let mut foreign = ok;
        foreign.insert("iss".into(), "https://evil.example".into());
        assert!(check_google_push(&foreign, "push@p.iam.gserviceaccount.com").is_err());
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(
            r#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:1","tag":"gcr.io/p/app:v1"}"#,
        );
        let body = serde_json::json!({"message": {"data": data, "messageId": "1"}}).to_string();
        assert_eq!(
            gcr_event(body.as_bytes()).expect("event")["tag"],
            "gcr.io/p/app:v1"
        );
        assert!(gcr_event(b"{\"message\":{\"data\":\"!!\"}}").is_err());
    }
}
