//! The JWT authorizer of an HTTP API, as API Gateway documents it ("Controlling access to HTTP
//! APIs with JWT authorizers"): the token from the identity source (with or without `Bearer`),
//! its signature checked with the issuer's key (found through
//! `{issuer}.well-known/openid-configuration` and its `jwks_uri`, by the token's `kid`; RSA
//! algorithms only), then `iss`, `aud` (or `client_id` when there is no `aud`), `exp`, `nbf`,
//! `iat`, and the route's scopes against `scope`/`scp`. The claims it passes on are the
//! event's `requestContext.authorizer.jwt.claims`, every value a string, as API Gateway sends
//! them.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    RsaParameters, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::template::JwtAuthorizer;

/// Why a request was refused, with the `www-authenticate` description API Gateway gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token in the identity source: 401, nothing more said.
    NoToken,
    /// 401 `invalid_token`.
    Invalid(String),
    /// 403 `insufficient_scope`: a valid token without any of the route's scopes.
    Scope(Vec<String>),
}

impl Denied {
    fn invalid(description: impl Into<String>) -> Denied {
        Denied::Invalid(description.into())
    }
}

/// An RSA public key: modulus and exponent, big-endian.
type RsaKey = (Vec<u8>, Vec<u8>);
/// An issuer's keys by `kid`.
type KeySet = HashMap<String, RsaKey>;

/// The verified claims, as strings.
pub type Claims = Map<String, Value>;

/// Verifies tokens for every authorizer of the template, caching each issuer's keys.
pub struct Verifier {
    http: reqwest::Client,
    /// Issuer → its keys by `kid` (modulus, exponent).
    keys: Mutex<HashMap<String, KeySet>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
            keys: Mutex::new(HashMap::new()),
        }
    }
}

impl Verifier {
    /// Checks the token in `header_value` (the identity source's value) for `authorizer` and a
    /// route that asks for `scopes` (any one of them), at `now` (seconds since the epoch).
    pub async fn verify(
        &self,
        authorizer: &JwtAuthorizer,
        header_value: Option<&str>,
        scopes: &[String],
        now: i64,
    ) -> Result<Claims, Denied> {
        let token = header_value.map(str::trim).unwrap_or_default();
        let token = match token.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => token,
        };
        if token.is_empty() || token.eq_ignore_ascii_case("bearer") {
            return Err(Denied::NoToken);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err(Denied::invalid(
                "the token is not a JWT (three dot-separated parts)",
            ));
        };
        let decode_json = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let (Some(header_json), Some(claims_json)) = (decode_json(header), decode_json(claims))
        else {
            return Err(Denied::invalid("the token could not be decoded"));
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return Err(Denied::invalid(
                "the token's signature could not be decoded",
            ));
        };

        let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or("");
        let parameters: &RsaParameters = match alg {
            "RS256" => &RSA_PKCS1_2048_8192_SHA256,
            "RS384" => &RSA_PKCS1_2048_8192_SHA384,
            "RS512" => &RSA_PKCS1_2048_8192_SHA512,
            other => {
                return Err(Denied::invalid(format!(
                    "signing method {other} is invalid"
                )));
            }
        };
        let Some(kid) = header_json.get("kid").and_then(Value::as_str) else {
            return Err(Denied::invalid("the token has no kid"));
        };
        let (n, e) = self.key(&authorizer.issuer, kid).await?;
        let signing_input = &token[..header.len() + 1 + claims.len()];
        RsaPublicKeyComponents { n, e }
            .verify(parameters, signing_input.as_bytes(), &signature)
            .map_err(|_| Denied::invalid("the token's signature is invalid"))?;

        check_claims(authorizer, &claims_json, now)?;
        if !scopes.is_empty() && !has_any_scope(&claims_json, scopes) {
            return Err(Denied::Scope(scopes.to_vec()));
        }
        Ok(as_strings(claims_json))
    }

    /// The key `kid` of `issuer`: from the cache, else fetched again (keys rotate).
    async fn key(&self, issuer: &str, kid: &str) -> Result<RsaKey, Denied> {
        let cached = |verifier: &Verifier| {
            let keys = lock(&verifier.keys);
            keys.get(issuer).and_then(|keys| keys.get(kid)).cloned()
        };
        if let Some(key) = cached(self) {
            return Ok(key);
        }
        let fetched = self.fetch_keys(issuer).await.map_err(|reason| {
            eprintln!("gateway: the keys of issuer {issuer} could not be fetched: {reason}");
            Denied::invalid("the issuer's signing keys could not be fetched")
        })?;
        lock(&self.keys).insert(issuer.to_string(), fetched);
        cached(self).ok_or_else(|| Denied::invalid("the token's kid is not in the issuer's jwks"))
    }

    async fn fetch_keys(&self, issuer: &str) -> Result<KeySet, String> {
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let get = |url: String| async move {
            let response = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("{url}: {}", response.status()));
            }
            response.json::<Value>().await.map_err(|e| e.to_string())
        };
        let configuration = get(discovery).await?;
        let jwks_uri = configuration["jwks_uri"]
            .as_str()
            .ok_or("the discovery document has no jwks_uri")?
            .to_string();
        let jwks = get(jwks_uri).await?;
        let decode = |key: &Value, field: &str| {
            key[field]
                .as_str()
                .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        };
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        Ok(keys
            .iter()
            .filter(|key| key["kty"] == "RSA")
            .filter_map(|key| {
                let kid = key["kid"].as_str()?.to_string();
                Some((kid, (decode(key, "n")?, decode(key, "e")?)))
            })
            .collect())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn check_claims(
    authorizer: &JwtAuthorizer,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<(), Denied> {
    if claims.get("iss").and_then(Value::as_str) != Some(authorizer.issuer.as_str()) {
        return Err(Denied::invalid("the token does not have a valid issuer"));
    }
    // `aud` (a string or a list) when present; `client_id` only without it.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => claims
            .get("client_id")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    if !audiences
        .iter()
        .any(|aud| authorizer.audience.iter().any(|want| want == aud))
    {
        return Err(Denied::invalid("the token does not have a valid audience"));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    match time("exp") {
        Some(exp) if exp > now => {}
        Some(_) => return Err(Denied::invalid("the token has expired")),
        None => return Err(Denied::invalid("the token has no exp claim")),
    }
    if time("nbf").is_some_and(|nbf| nbf > now) {
        return Err(Denied::invalid("the token is not valid yet (nbf)"));
    }
    if time("iat").is_some_and(|iat| iat > now) {
        return Err(Denied::invalid("the token was issued in the future (iat)"));
    }
    Ok(())
}

/// Whether `scope` (space-separated) or `scp` (a list or a string) holds one of `wanted`.
fn has_any_scope(claims: &Map<String, Value>, wanted: &[String]) -> bool {
    let mut granted: Vec<&str> = Vec::new();
    if let Some(scope) = claims.get("scope").and_then(Value::as_str) {
        granted.extend(scope.split(' '));
    }
    match claims.get("scp") {
        Some(Value::String(scp)) => granted.extend(scp.split(' ')),
        Some(Value::Array(scp)) => granted.extend(scp.iter().filter_map(Value::as_str)),
        _ => {}
    }
    wanted.iter().any(|want| granted.contains(&want.as_str()))
}

/// Claims as API Gateway passes them: numbers and booleans written out, a list as
/// `[a b]`, an object as JSON.
fn as_strings(claims: Map<String, Value>) -> Claims {
    claims
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text,
                Value::Array(items) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|item| match item {
                            Value::String(text) => text.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    format!("[{}]", items.join(" "))
                }
                other => other.to_string(),
            };
            (name, Value::String(text))
        })
        .collect()
}

/// The `www-authenticate` value of a refusal, in API Gateway's form.
pub fn www_authenticate(denied: &Denied) -> Option<String> {
    match denied {
        Denied::NoToken => None,
        Denied::Invalid(description) => Some(format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{description}\""
        )),
        Denied::Scope(scopes) => Some(format!(
            "Bearer scope=\"{}\" error=\"insufficient_scope\" error_description=\"expected scopes: [{}]\"",
            scopes.join(" "),
            scopes.join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn authorizer() -> JwtAuthorizer {
        JwtAuthorizer {
            name: "Auth0Jwt".into(),
            header: "authorization".into(),
            issuer: "https://tenant.test/".into(),
            audience: vec!["https://api.test".into()],
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn checks_issuer_audience_and_times_as_api_gateway_does() {
        let now = 1_000;
        let good = json!({"iss": "https://tenant.test/", "aud": "https://api.test", "exp": 2_000});
        assert_eq!(
            check_claims(&authorizer(), &claims(good.clone()), now),
            Ok(())
        );

        let with = |field: &str, value: Value| {
            let mut claims = claims(good.clone());
            claims.insert(field.into(), value);
            check_claims(&authorizer(), &claims, now)
        };
        let invalid = |text: &str| Err(Denied::invalid(text));
        assert_eq!(
            with("iss", json!("https://tenant.test")),
            invalid("the token does not have a valid issuer")
        );
        assert_eq!(
            with("aud", json!("https://other.test")),
            invalid("the token does not have a valid audience")
        );
        assert_eq!(
            with("aud", json!(["https://other.test", "https://api.test"])),
            Ok(())
        );
        assert_eq!(with("exp", json!(1_000)), invalid("the token has expired"));
        assert_eq!(
            with("nbf", json!(1_001)),
            invalid("the token is not valid yet (nbf)")
        );
        assert_eq!(
            with("iat", json!(1_001)),
            invalid("the token was issued in the future (iat)")
        );

        // Without `aud`, `client_id` is the audience.
        let by_client =
            json!({"iss": "https://tenant.test/", "client_id": "https://api.test", "exp": 2_000});
        assert_eq!(check_claims(&authorizer(), &claims(by_client), now), Ok(()));
    }

    #[test]
    fn claims_become_strings_and_scopes_are_read_from_scope_or_scp() {
        let strings = as_strings(claims(
            json!({"exp": 5, "aud": ["a", "b"], "sub": "x", "flag": true}),
        ));
        assert_eq!(
            Value::Object(strings),
            json!({"exp": "5", "aud": "[a b]", "sub": "x", "flag": "true"})
        );
        let wanted = ["write:users".to_string()];
        assert!(has_any_scope(
            &claims(json!({"scope": "openid write:users"})),
            &wanted
        ));
        assert!(has_any_scope(
            &claims(json!({"scp": ["write:users"]})),
            &wanted
        ));
        assert!(!has_any_scope(&claims(json!({"scope": "openid"})), &wanted));
    }
}
