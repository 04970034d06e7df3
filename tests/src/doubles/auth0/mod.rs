//! Auth0 double: the token endpoint (client credentials, a person's password-realm login and
//! refresh) and the Management API v2 user endpoints, answering with the statuses, bodies and
//! headers listed in docs/auth0.md.

mod access;
mod bulk;
mod control;
mod errors;
mod keys;
mod lucene;
mod management;
mod search;
mod state;
mod token;
mod users;
mod validation;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use bulk::{BulkUsers, bulk_db_user_id, bulk_db_user_id_sql, bulk_user_id, bulk_user_id_sql};

use super::faults::Fault;
use super::server::{self, Control, RunningServer, any_loopback_port, control_routes};
use state::{App, digest};
use token::PASSWORD_REALM_GRANT;

/// Operations that faults and call counters name.
pub const AUTH0_OPS: [&str; 10] = [
    "token",
    "create_user",
    "get_user",
    "update_user",
    "delete_user",
    "users_by_email",
    "search_users",
    // `DELETE /api/v2/users/{id}/sessions` and `…/refresh-tokens`.
    "revoke_sessions",
    "revoke_refresh_tokens",
    // The token endpoint's refresh-token grant (every other grant is `token`).
    "refresh_token",
];

#[derive(Clone, Debug)]
pub struct Auth0Config {
    pub client_id: String,
    pub client_secret: String,
    pub connection: String,
    /// `None` = unlimited.
    pub rate_limit_per_sec: Option<u32>,
    /// The Management API scopes the client is granted, space-separated: every token it gets
    /// carries them, and a call needing another is refused with 403 `insufficient_scope`.
    pub scope: String,
}

impl Default for Auth0Config {
    fn default() -> Self {
        Auth0Config {
            client_id: "test-client-id".into(),
            client_secret: "test-client-secret".into(),
            connection: "Username-Password-Authentication".into(),
            rate_limit_per_sec: None,
            scope: token::SCOPE.into(),
        }
    }
}

/// A running Auth0 tenant on loopback; stops when dropped.
pub struct Auth0Double {
    app: App,
    server: RunningServer,
}

impl Auth0Double {
    pub async fn start(cfg: Auth0Config) -> std::io::Result<Auth0Double> {
        Self::start_on(cfg, any_loopback_port()).await
    }

    pub async fn start_on(cfg: Auth0Config, addr: SocketAddr) -> std::io::Result<Auth0Double> {
        let listening = RunningServer::listen(addr).await?;
        let app = App::new(cfg, listening.base_url());
        let server = listening.serve(router(app.clone()));
        Ok(Auth0Double { app, server })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url().to_string()
    }

    pub fn audience(&self) -> String {
        self.app.tenant().audience()
    }

    /// Every user's profile (with users seeded in bulk, keep to small tenants: use
    /// [`Auth0Double::user`] and [`Auth0Double::user_count`] with a million).
    pub fn users(&self) -> Vec<Value> {
        self.app.tenant().profiles()
    }

    /// The user with this id, as `GET /api/v2/users/{id}` answers it.
    pub fn user(&self, user_id: &str) -> Option<Value> {
        self.app
            .tenant()
            .find(user_id)
            .map(|user| user.profile.clone())
    }

    pub fn user_count(&self) -> usize {
        self.app.tenant().users.len()
    }

    /// Seeds `users.count` users at once, bypassing validation (see [`BulkUsers`]): a million
    /// take a few megabytes and no time. One bulk range a tenant.
    pub fn insert_bulk(&self, users: BulkUsers) {
        self.app.tenant().seed_bulk(users);
    }

    /// Users whose email matches `email` ignoring case.
    pub fn users_with_email(&self, email: &str) -> Vec<Value> {
        let email = email.to_lowercase();
        let tenant = self.app.tenant();
        let matching = tenant.with_email(&email);
        matching.map(|user| user.profile.clone()).collect()
    }

    /// Whether `password` is the stored password of `user_id` (only its digest is kept).
    pub fn password_matches(&self, user_id: &str, password: &str) -> bool {
        let tenant = self.app.tenant();
        let user = tenant.find(user_id);
        user.and_then(|user| user.password_digest.as_deref()) == Some(&digest(password))
    }

    /// The password-realm token request a login form sends for `email`.
    pub fn login_request(&self, email: &str, password: &str) -> Value {
        let config = &self.app.tenant().config;
        json!({
            "grant_type": PASSWORD_REALM_GRANT,
            "client_id": config.client_id,
            "username": email,
            "password": password,
            "realm": config.connection,
            "scope": "openid",
        })
    }

    /// Logs `email` in with the password-realm grant asking for `scope` (`offline_access` in
    /// it also asks for a refresh token), as a login form would: the status and the body.
    pub async fn log_in(&self, email: &str, password: &str, scope: &str) -> (u16, Value) {
        let mut request = self.login_request(email, password);
        request["scope"] = scope.into();
        self.post_token(&request).await
    }

    /// As [`Auth0Double::log_in`], answered in-process: the same grant and the same answer,
    /// but neither counted nor open to an injected fault. For a harness that stands in for the
    /// person while faults are injected (the fault campaign): its logins must not use up the
    /// `token` faults meant for the app.
    pub async fn log_in_unfaulted(&self, email: &str, password: &str, scope: &str) -> (u16, Value) {
        let mut request = self.login_request(email, password);
        request["scope"] = scope.into();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        let body = request.to_string();
        let answer = self
            .app
            .tenant()
            .issue_token(&headers, body.as_bytes(), Utc::now());
        answered(answer).await
    }

    /// Sets `user_id`'s password as the set-password flow's `PATCH {password, connection}`
    /// does (its sessions end), in-process: not counted, no fault. False if there is no such
    /// user or the double refuses the password (too weak).
    pub async fn set_password_unfaulted(&self, user_id: &str, password: &str) -> bool {
        let connection = self.app.tenant().config.connection.clone();
        let body = json!({"password": password, "connection": connection}).to_string();
        let answer = self
            .app
            .tenant()
            .update_user(user_id, body.as_bytes(), Utc::now());
        answered(answer).await.0 == 200
    }

    /// Exchanges `refresh_token` for new tokens (the refresh-token grant): status and body.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let config = self.app.tenant().config.clone();
        let request = json!({
            "grant_type": "refresh_token",
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": refresh_token,
        });
        self.post_token(&request).await
    }

    async fn post_token(&self, request: &Value) -> (u16, Value) {
        let url = format!("{}/oauth/token", self.base_url());
        let sent = reqwest::Client::new().post(url).json(request).send().await;
        let response = sent.expect("the Auth0 double answers on loopback");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Whether `user_id` is blocked (`"blocked": true` in its profile); false for a user
    /// that does not exist.
    pub fn is_blocked(&self, user_id: &str) -> bool {
        let tenant = self.app.tenant();
        tenant
            .find(user_id)
            .is_some_and(|user| user.profile["blocked"] == json!(true))
    }

    /// How many refresh tokens of `user_id` are live (issued and not revoked).
    pub fn refresh_tokens_of(&self, user_id: &str) -> usize {
        self.app.tenant().access.refresh_tokens_of(user_id)
    }

    /// How many sessions `user_id` has open.
    pub fn sessions_of(&self, user_id: &str) -> usize {
        self.app.tenant().access.sessions_of(user_id)
    }

    pub fn token_requests(&self) -> usize {
        self.calls("token")
    }

    pub fn calls(&self, op: &str) -> usize {
        self.app.tenant().calls_to(op)
    }

    pub fn inject(&self, fault: Fault) {
        self.app.inject(fault);
    }

    /// Seeds a user directly, bypassing validation; returns its `user_id`.
    pub fn insert_user(&self, email: &str, app_metadata: Value) -> String {
        self.insert_user_at(email, app_metadata, Utc::now())
    }

    pub fn insert_user_at(
        &self,
        email: &str,
        app_metadata: Value,
        created_at: DateTime<Utc>,
    ) -> String {
        let user = self.app.tenant().seed(email, app_metadata, created_at);
        user["user_id"].as_str().unwrap_or_default().to_string()
    }

    /// `claims` as a token signed with the tenant's key (the one its JWKS publishes), for
    /// tests of a verifier: an expired token, another audience. The double does not accept it
    /// for its own Management API unless it issued it.
    pub fn sign_token(&self, claims: &Value) -> String {
        self.app.tenant().sign(claims)
    }

    /// Rotates the secret; tokens issued before stay valid, as in Auth0.
    pub fn set_client_secret(&self, secret: &str) {
        self.app.tenant().config.client_secret = secret.to_string();
    }

    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        self.app.tenant().config.rate_limit_per_sec = per_sec;
    }

    /// Changes the scopes the client is granted; tokens issued before keep theirs, as in Auth0.
    pub fn set_scope(&self, scope: &str) {
        self.app.tenant().config.scope = scope.to_string();
    }

    /// Makes every issued token expired, to exercise token refresh.
    pub fn expire_tokens(&self) {
        let past = Utc::now() - chrono::Duration::seconds(1);
        self.app
            .tenant()
            .tokens
            .values_mut()
            .for_each(|expiry| *expiry = past);
    }

    /// Clears users, faults and counters and restores the starting config.
    /// Issued tokens stay valid so a client's cached token keeps working.
    pub fn reset(&self) {
        self.app.reset();
    }
}

/// The status and JSON body of an answer the double made in-process.
async fn answered(answer: server::Answer) -> (u16, Value) {
    use axum::response::IntoResponse;
    let response = answer.into_response();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    let body = bytes
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

fn router(app: App) -> Router {
    use users::{create_user, delete_user, get_user, update_user, users_by_email};
    use users::{revoke_refresh_tokens, revoke_sessions};

    Router::new()
        .route("/oauth/token", post(token::token))
        .route("/.well-known/jwks.json", get(keys::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(keys::openid_configuration),
        )
        .route("/api/v2/users", post(create_user).get(search::search_users))
        .route(
            "/api/v2/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v2/users-by-email", get(users_by_email))
        .route("/api/v2/users/{id}/sessions", delete(revoke_sessions))
        .route(
            "/api/v2/users/{id}/refresh-tokens",
            delete(revoke_refresh_tokens),
        )
        .merge(control_routes::<App>())
        .fallback(errors::not_found)
        .with_state(app)
}
