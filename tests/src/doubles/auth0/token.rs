//! `POST /oauth/token` (client credentials, a person's password-realm login and the refresh
//! of its tokens) and the bearer-token and scope check of Management API calls.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::access::RefreshGrant;
use super::errors::{management_error, oauth_error, unauthorized};
use super::keys::signing_key;
use super::management::Quota;
use super::state::{App, Tenant, digest, random_hex};
use crate::doubles::faults;
use crate::doubles::server::{Answer, Rejection, json_response};

/// The Management API scopes the double's client is granted (by default), so every token it
/// gets carries them.
pub(super) const SCOPE: &str = "read:users update:users delete:users create:users \
                                 delete:sessions delete:refresh_tokens";
/// Auth0's default access-token lifetime, a day.
const TOKEN_TTL_SECS: i64 = 86_400;
/// The resource-owner password grant restricted to one connection.
pub(super) const PASSWORD_REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";
/// The scope that asks the password-realm grant for a refresh token.
const OFFLINE_ACCESS: &str = "offline_access";

/// Counted and faulted as `token`, except the refresh grant, which is `refresh_token`: only
/// tests refresh, and a fault meant for a refresh must not hit a Lambda's token request.
pub(super) async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let form = token_form(&headers, &body);
    let grant = form.as_ref().and_then(|form| form.get("grant_type"));
    let op = match grant.map(String::as_str) {
        Some("refresh_token") => "refresh_token",
        _ => "token",
    };
    let fault = app.tenant().begin(op);
    faults::respond(fault, faulted_token, || {
        let answer = app.tenant().issue_token(&headers, &body, Utc::now());
        answer.into_response()
    })
    .await
}

fn faulted_token(status: StatusCode) -> Response {
    let (error, description) = match status.as_u16() {
        400 => ("invalid_request", "Bad Request"),
        401 | 403 => ("access_denied", "Unauthorized"),
        429 => ("too_many_requests", "Global limit has been reached"),
        503 => ("temporarily_unavailable", "Service Unavailable"),
        _ => ("server_error", "An internal server error occurred"),
    };
    let mut response = oauth_error(status, error, description).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let limit = 30; // Auth0's free-plan /oauth/token limit.
        Quota::exhausted(limit, Utc::now()).stamp(&mut response);
    }
    response
}

impl Tenant {
    pub(super) fn issue_token(
        &mut self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Answer {
        let bad_request = |description: &str| {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
        };
        let form = token_form(headers, body).ok_or_else(|| bad_request("Invalid request body"))?;
        let field = |name: &str| form.get(name).map(String::as_str);
        match field("grant_type") {
            None => return Err(bad_request("Missing required parameter: grant_type")),
            Some("client_credentials") => {}
            Some(PASSWORD_REALM_GRANT) => return self.log_in(&form, now),
            Some("refresh_token") => return self.refresh(&form, now),
            Some(other) => {
                let description = format!("Unsupported grant type: {other}");
                let status = StatusCode::BAD_REQUEST;
                return Err(oauth_error(status, "unsupported_grant_type", &description));
            }
        }
        if field("client_id") != Some(&self.config.client_id)
            || field("client_secret") != Some(&self.config.client_secret)
        {
            let status = StatusCode::UNAUTHORIZED;
            return Err(oauth_error(status, "access_denied", "Unauthorized"));
        }
        let denied =
            |description: &str| oauth_error(StatusCode::FORBIDDEN, "access_denied", description);
        let Some(audience) = field("audience") else {
            return Err(denied(
                "No audience parameter was provided, and no default audience has been configured",
            ));
        };
        if !self.serves_audience(audience, headers) {
            return Err(denied(&format!(
                "Client is not authorized to access \"{audience}\". You need to create a \
                 \"client-grant\" associated to this API. See: \
                 https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
            )));
        }

        let expires = now + chrono::Duration::seconds(TOKEN_TTL_SECS);
        let access_token = self.mint_token(audience, now, expires);
        self.tokens.insert(access_token.clone(), expires);
        let body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECS,
            "scope": self.config.scope,
        });
        Ok(tokens_response(&body))
    }

    /// The resource-owner password grant against one connection (a "realm"): what a login
    /// form does. Answers as Auth0 does: a wrong address or password is one 403, never telling
    /// which; a blocked user is a 403 too, saying so. With `offline_access` in the scope it
    /// also answers a refresh token. Each login opens a session (the double's stand-in).
    fn log_in(&mut self, form: &HashMap<String, String>, now: DateTime<Utc>) -> Answer {
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let missing = |name: &str| {
            let description = format!("Missing required parameter: {name}");
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description)
        };
        self.check_client(form)?;
        let username = field("username").ok_or_else(|| missing("username"))?;
        let password = field("password").ok_or_else(|| missing("password"))?;
        let realm = field("realm").ok_or_else(|| missing("realm"))?;
        if realm != self.config.connection {
            let status = StatusCode::BAD_REQUEST;
            return Err(oauth_error(status, "invalid_request", "Unknown realm"));
        }
        let email = username.to_lowercase();
        let user = self.with_email(&email).next();
        let Some(user) = user.filter(|u| u.password_digest.as_deref() == Some(&digest(password)))
        else {
            let status = StatusCode::FORBIDDEN;
            return Err(oauth_error(
                status,
                "invalid_grant",
                "Wrong email or password.",
            ));
        };
        if user.profile["blocked"] == json!(true) {
            return Err(user_is_blocked());
        }
        let user_id = user.id().to_string();
        let scope = field("scope").unwrap_or("openid");
        let audience =
            field("audience").map_or_else(|| format!("{}/userinfo", self.base_url), str::to_string);
        let grant = RefreshGrant {
            user_id,
            scope: scope.to_string(),
            audience,
        };
        let mut body = self.user_tokens(&grant, &email, now);
        if scope.split(' ').any(|s| s == OFFLINE_ACCESS) {
            body["refresh_token"] = self.access.issue_refresh_token(grant.clone()).into();
        }
        self.access.open_session(&grant.user_id);
        Ok(tokens_response(&body))
    }

    /// The refresh-token grant: new tokens for the login the refresh token continues, while it
    /// is not revoked and its user not blocked. No rotation: the answer has no refresh token.
    /// A `scope` asked for here is ignored; the answer carries the login's scope.
    fn refresh(&mut self, form: &HashMap<String, String>, now: DateTime<Utc>) -> Answer {
        self.check_client(form)?;
        let token = form.get("refresh_token").filter(|token| !token.is_empty());
        let Some(token) = token else {
            let description = "Missing required parameter: refresh_token";
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                description,
            ));
        };
        let grant = self.access.refresh_grant(token).cloned();
        let user = grant.as_ref().and_then(|grant| self.find(&grant.user_id));
        let (Some(grant), Some(user)) = (grant, user) else {
            let description = "Unknown or invalid refresh token.";
            return Err(oauth_error(
                StatusCode::FORBIDDEN,
                "invalid_grant",
                description,
            ));
        };
        if user.profile["blocked"] == json!(true) {
            return Err(user_is_blocked());
        }
        let email = user.email().to_string();
        Ok(tokens_response(&self.user_tokens(&grant, &email, now)))
    }

    /// The client of an Authentication API grant: the double's own, with its secret when one
    /// is sent (a login form's request may leave it out, as a public client's would).
    fn check_client(&self, form: &HashMap<String, String>) -> Result<(), Rejection> {
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        if field("client_id") != Some(&self.config.client_id)
            || field("client_secret").is_some_and(|s| s != self.config.client_secret)
        {
            let status = StatusCode::UNAUTHORIZED;
            return Err(oauth_error(status, "access_denied", "Unauthorized"));
        }
        Ok(())
    }

    /// A person's access token (and an ID token when `openid` was asked for).
    fn user_tokens(&self, grant: &RefreshGrant, email: &str, now: DateTime<Utc>) -> Value {
        let expires = now + chrono::Duration::seconds(TOKEN_TTL_SECS);
        let claims = json!({
            "iss": format!("{}/", self.base_url),
            "sub": grant.user_id,
            "aud": grant.audience,
            "iat": now.timestamp(),
            "exp": expires.timestamp(),
            "scope": grant.scope,
            "azp": self.config.client_id,
            // Each issue its own token, also two within one second (RS256 is deterministic).
            "jti": random_hex(16),
        });
        let mut body = json!({
            "access_token": self.sign(&claims),
            "scope": grant.scope,
            "expires_in": TOKEN_TTL_SECS,
            "token_type": "Bearer",
        });
        if grant.scope.split(' ').any(|s| s == "openid") {
            let id_claims = json!({
                "iss": format!("{}/", self.base_url),
                "sub": grant.user_id,
                "aud": self.config.client_id,
                "iat": now.timestamp(),
                "exp": expires.timestamp(),
                "email": email,
            });
            body["id_token"] = self.sign(&id_claims).into();
        }
        body
    }

    /// The tenant's own audience, also when reached under another host name or as the
    /// `https://{domain}/api/v2/` an SDK builds from its domain (kept for SDK callers).
    fn serves_audience(&self, audience: &str, headers: &HeaderMap) -> bool {
        let host = headers.get(HOST).and_then(|host| host.to_str().ok());
        audience == self.audience()
            || host.is_some_and(|host| {
                ["http", "https"]
                    .iter()
                    .any(|scheme| audience == format!("{scheme}://{host}/api/v2/"))
            })
    }

    /// A JWT-shaped token with the usual Management API claims.
    fn mint_token(&self, audience: &str, now: DateTime<Utc>, expires: DateTime<Utc>) -> String {
        let claims = json!({
            "iss": format!("{}/", self.base_url),
            "sub": format!("{}@clients", self.config.client_id),
            "aud": audience,
            "iat": now.timestamp(),
            "exp": expires.timestamp(),
            "scope": self.config.scope,
            "gty": "client-credentials",
            "azp": self.config.client_id,
            "jti": random_hex(16),
        });
        self.sign(&claims)
    }

    /// An RS256 JWT signed with the tenant's key, which `/.well-known/jwks.json` publishes.
    pub(super) fn sign(&self, claims: &Value) -> String {
        signing_key().sign(claims)
    }

    /// A lookup of issued tokens: the double minted them, so it need not check a signature.
    pub(super) fn authorize(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        match bearer(headers).and_then(|token| self.tokens.get(token)) {
            None => Err(unauthorized("Invalid token")),
            Some(expiry) if *expiry <= now => Err(unauthorized(
                "Expired token received for JSON Web Token validation",
            )),
            Some(_) => Ok(()),
        }
    }

    /// `authorize`, then whether the token's `scope` claim holds `needed`: a 403
    /// `insufficient_scope` if not, as Auth0 answers a token its client grant lacks a scope for.
    pub(super) fn authorize_scope(
        &self,
        headers: &HeaderMap,
        now: DateTime<Utc>,
        needed: &str,
    ) -> Result<(), Rejection> {
        self.authorize(headers, now)?;
        let granted = bearer(headers).and_then(token_scope).unwrap_or_default();
        if granted.split(' ').any(|scope| scope == needed) {
            return Ok(());
        }
        let message = format!("Insufficient scope, expected any of: {needed}");
        let status = StatusCode::FORBIDDEN;
        Err(management_error(
            status,
            &message,
            Some("insufficient_scope"),
        ))
    }
}

/// `403 invalid_grant` "user is blocked": a blocked user's login or refresh.
fn user_is_blocked() -> Rejection {
    oauth_error(StatusCode::FORBIDDEN, "invalid_grant", "user is blocked")
}

/// Tokens as the token endpoint answers them, never to be cached.
fn tokens_response(body: &Value) -> Response {
    let mut response = json_response(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// The `scope` claim of a token the double minted (its claims are the JWT's middle part).
fn token_scope(token: &str) -> Option<String> {
    let claims = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
    claims["scope"].as_str().map(str::to_string)
}

/// The token request's fields, from a JSON body (the product) or a form (kept for SDK callers).
fn token_form(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Some(url::form_urlencoded::parse(body).into_owned().collect());
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice(body) else {
        return None;
    };
    let text = |value: Value| match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    // A `null` is a field left out: Auth0's SDKs send their unset parameters that way.
    Some(
        fields
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(name, value)| (name, text(value)))
            .collect(),
    )
}
