//! Auth0 double: the client-credentials token endpoint and the Management API v2 user
//! endpoints, answering with the statuses, bodies and headers listed in shared/AUTH0.md.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, PRAGMA, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faults::{self, Fault, FaultQueue};
use super::server::{
    Answer, Control, Rejection, RunningServer, any_loopback_port, control_error, control_routes,
    is_valid_email, json_response, lock,
};

/// Operations that faults and call counters name.
pub const AUTH0_OPS: [&str; 7] = [
    "token",
    "create_user",
    "get_user",
    "update_user",
    "delete_user",
    "users_by_email",
    "search_users",
];

const SCOPE: &str = "read:users update:users delete:users create:users";
/// Limit reported in the rate-limit headers when no limit is configured.
const NOMINAL_RATE_LIMIT: u32 = 1000;
/// v3 search never pages past this many results.
const SEARCH_WINDOW: u64 = 1000;

#[derive(Clone, Debug)]
pub struct Auth0Config {
    pub client_id: String,
    pub client_secret: String,
    pub connection: String,
    pub token_ttl_secs: u64,
    /// `None` = unlimited.
    pub rate_limit_per_sec: Option<u32>,
}

impl Default for Auth0Config {
    fn default() -> Self {
        Auth0Config {
            client_id: "test-client-id".into(),
            client_secret: "test-client-secret".into(),
            connection: "Username-Password-Authentication".into(),
            token_ttl_secs: 86_400,
            rate_limit_per_sec: None,
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
        let app = App(Arc::new(Mutex::new(Tenant::new(cfg, listening.base_url()))));
        let server = listening.serve(router(app.clone()));
        Ok(Auth0Double { app, server })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url().to_string()
    }

    pub fn audience(&self) -> String {
        self.app.tenant().audience()
    }

    pub fn users(&self) -> Vec<Value> {
        self.app
            .tenant()
            .users
            .iter()
            .map(StoredUser::to_json)
            .collect()
    }

    /// Users whose email matches `email` ignoring case.
    pub fn users_with_email(&self, email: &str) -> Vec<Value> {
        let email = email.to_lowercase();
        let tenant = self.app.tenant();
        let matching = tenant.users.iter().filter(|user| user.email() == email);
        matching.map(StoredUser::to_json).collect()
    }

    /// Whether `password` is the stored password of `user_id` (only its digest is kept).
    pub fn password_matches(&self, user_id: &str, password: &str) -> bool {
        let tenant = self.app.tenant();
        let user = tenant.users.iter().find(|user| user.id() == user_id);
        user.and_then(|user| user.password_digest.as_deref()) == Some(&digest(password))
    }

    pub fn token_requests(&self) -> usize {
        self.app.tenant().token_requests
    }

    pub fn calls(&self, op: &str) -> usize {
        self.app.tenant().calls.get(op).copied().unwrap_or(0)
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

    /// Rotates the secret; tokens issued before stay valid, as in Auth0.
    pub fn set_client_secret(&self, secret: &str) {
        self.app.tenant().config.client_secret = secret.to_string();
    }

    pub fn set_rate_limit(&self, per_sec: Option<u32>) {
        self.app.tenant().config.rate_limit_per_sec = per_sec;
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

fn router(app: App) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/users", post(create_user).get(search_users))
        .route(
            "/api/v2/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v2/users-by-email", get(users_by_email))
        .route("/__control/users", post(seed_user))
        .route("/__control/config", patch(configure))
        .merge(control_routes::<App>())
        .fallback(not_found)
        .with_state(app)
}

// ---------------------------------------------------------------------------------------------
// State

#[derive(Clone)]
struct App(Arc<Mutex<Tenant>>);

struct Tenant {
    base_url: String,
    initial: Auth0Config,
    config: Auth0Config,
    users: Vec<StoredUser>,
    /// Issued access tokens and when they expire.
    tokens: HashMap<String, DateTime<Utc>>,
    token_requests: usize,
    calls: BTreeMap<String, usize>,
    faults: FaultQueue,
    window: RateWindow,
}

struct StoredUser {
    /// Exactly what the API returns; always a JSON object.
    profile: Value,
    /// SHA-256 of the password, so no response or snapshot can leak it.
    password_digest: Option<String>,
}

impl StoredUser {
    fn id(&self) -> &str {
        self.profile["user_id"].as_str().unwrap_or_default()
    }

    fn email(&self) -> &str {
        self.profile["email"].as_str().unwrap_or_default()
    }

    fn to_json(&self) -> Value {
        self.profile.clone()
    }
}

impl App {
    fn tenant(&self) -> MutexGuard<'_, Tenant> {
        lock(&self.0)
    }

    /// Runs one Management API call: fault, then rate limit, bearer token and `work`.
    async fn management(
        &self,
        op: &str,
        headers: &HeaderMap,
        work: impl FnOnce(&mut Tenant, DateTime<Utc>) -> Answer,
    ) -> Response {
        let fault = self.tenant().begin(op);
        let faulted = |status| self.tenant().faulted_management(status);
        faults::respond(fault, faulted, || {
            let mut tenant = self.tenant();
            let now = Utc::now();
            let quota = tenant.admit(now);
            let answer = if quota.exceeded {
                let status = StatusCode::TOO_MANY_REQUESTS;
                Err(management_error(
                    status,
                    "Global limit has been reached",
                    None,
                ))
            } else {
                (tenant.authorize(headers, now)).and_then(|()| work(&mut tenant, now))
            };
            let mut response = answer.unwrap_or_else(IntoResponse::into_response);
            quota.stamp(&mut response);
            response
        })
        .await
    }
}

impl Control for App {
    fn snapshot(&self) -> Value {
        let tenant = self.tenant();
        let calls: Map<String, Value> = AUTH0_OPS
            .iter()
            .map(|op| {
                (
                    op.to_string(),
                    tenant.calls.get(*op).copied().unwrap_or(0).into(),
                )
            })
            .collect();
        json!({
            "users": tenant.users.iter().map(StoredUser::to_json).collect::<Vec<_>>(),
            "token_requests": tenant.token_requests,
            "calls": calls,
            "faults": tenant.faults.pending(),
        })
    }

    fn reset(&self) {
        let mut tenant = self.tenant();
        let tokens = std::mem::take(&mut tenant.tokens);
        *tenant = Tenant {
            tokens,
            ..Tenant::new(tenant.initial.clone(), &tenant.base_url)
        };
    }

    fn inject(&self, fault: Fault) {
        self.tenant().faults.push(fault);
    }

    fn clear_faults(&self) {
        self.tenant().faults.clear();
    }
}

impl Tenant {
    fn new(config: Auth0Config, base_url: &str) -> Tenant {
        Tenant {
            base_url: base_url.to_string(),
            initial: config.clone(),
            config,
            users: Vec::new(),
            tokens: HashMap::new(),
            token_requests: 0,
            calls: BTreeMap::new(),
            faults: FaultQueue::default(),
            window: RateWindow::default(),
        }
    }

    fn audience(&self) -> String {
        format!("{}/api/v2/", self.base_url)
    }

    /// Counts a call to `op` and hands out its fault, if one is pending.
    fn begin(&mut self, op: &str) -> Option<Fault> {
        *self.calls.entry(op.to_string()).or_default() += 1;
        if op == "token" {
            self.token_requests += 1;
        }
        self.faults.take(op)
    }

    fn admit(&mut self, now: DateTime<Utc>) -> Quota {
        self.window.admit(now, self.config.rate_limit_per_sec)
    }

    fn faulted_management(&self, status: StatusCode) -> Response {
        let now = Utc::now();
        let (mut response, quota) = if status == StatusCode::TOO_MANY_REQUESTS {
            let limit = self.config.rate_limit_per_sec.unwrap_or(NOMINAL_RATE_LIMIT);
            let body = management_error(status, "Global limit has been reached", None);
            (body.into_response(), Quota::exhausted(limit, now))
        } else {
            let body = management_error(status, &default_message(status), None);
            let quota = self.window.peek(now, self.config.rate_limit_per_sec);
            (body.into_response(), quota)
        };
        quota.stamp(&mut response);
        response
    }

    fn authorize(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Result<(), Rejection> {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match bearer.and_then(|token| self.tokens.get(token)) {
            None => Err(unauthorized("Invalid token")),
            Some(expiry) if *expiry <= now => Err(unauthorized(
                "Expired token received for JSON Web Token validation",
            )),
            Some(_) => Ok(()),
        }
    }

    fn find(&self, user_id: &str) -> Option<&StoredUser> {
        self.users.iter().find(|user| user.id() == user_id)
    }

    /// A fresh Auth0 profile for a database-connection user.
    fn new_profile(&self, email: &str, local_id: &str, created_at: DateTime<Utc>) -> Value {
        let stamp = timestamp(created_at);
        let nickname = email.split('@').next().unwrap_or_default();
        json!({
            "user_id": format!("auth0|{local_id}"),
            "email": email,
            "email_verified": false,
            "created_at": stamp,
            "updated_at": stamp,
            "identities": [{
                "connection": self.config.connection,
                "user_id": local_id,
                "provider": "auth0",
                "isSocial": false,
            }],
            "name": email,
            "nickname": nickname,
            "picture": picture_for(email),
            "user_metadata": {},
        })
    }

    fn seed(&mut self, email: &str, app_metadata: Value, created_at: DateTime<Utc>) -> Value {
        let mut profile = self.new_profile(&email.to_lowercase(), &random_hex(12), created_at);
        if !app_metadata.is_null() {
            profile["app_metadata"] = app_metadata;
        }
        self.users.push(StoredUser {
            profile: profile.clone(),
            password_digest: None,
        });
        profile
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limiting: a fixed one-second window.

#[derive(Default)]
struct RateWindow {
    epoch_second: i64,
    used: u32,
}

struct Quota {
    limit: u32,
    remaining: u32,
    /// Epoch second at which the window resets.
    reset: i64,
    exceeded: bool,
}

impl RateWindow {
    fn roll(&mut self, now: DateTime<Utc>) {
        if now.timestamp() != self.epoch_second {
            self.epoch_second = now.timestamp();
            self.used = 0;
        }
    }

    /// Takes one call from the window, unless the limit is already reached.
    fn admit(&mut self, now: DateTime<Utc>, per_sec: Option<u32>) -> Quota {
        self.roll(now);
        let exceeded = per_sec.is_some_and(|limit| self.used >= limit);
        if !exceeded {
            self.used += 1;
        }
        Quota {
            exceeded,
            ..self.quota(per_sec)
        }
    }

    /// The quota as it stands, without taking a call.
    fn peek(&self, now: DateTime<Utc>, per_sec: Option<u32>) -> Quota {
        let used = if now.timestamp() == self.epoch_second {
            self.used
        } else {
            0
        };
        RateWindow {
            epoch_second: now.timestamp(),
            used,
        }
        .quota(per_sec)
    }

    fn quota(&self, per_sec: Option<u32>) -> Quota {
        let limit = per_sec.unwrap_or(NOMINAL_RATE_LIMIT);
        Quota {
            limit,
            remaining: limit.saturating_sub(self.used),
            reset: self.epoch_second + 1,
            exceeded: false,
        }
    }
}

impl Quota {
    fn exhausted(limit: u32, now: DateTime<Utc>) -> Quota {
        Quota {
            limit,
            remaining: 0,
            reset: now.timestamp() + 1,
            exceeded: true,
        }
    }

    fn stamp(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", self.limit.into());
        headers.insert("x-ratelimit-remaining", self.remaining.into());
        headers.insert("x-ratelimit-reset", self.reset.into());
        if self.exceeded || response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait = (self.reset - Utc::now().timestamp()).max(1);
            response.headers_mut().insert(RETRY_AFTER, wait.into());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies

/// `{"statusCode","error","message"[,"errorCode"]}`, the Management API error shape.
fn management_error(status: StatusCode, message: &str, error_code: Option<&str>) -> Rejection {
    let mut body = json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    if let Some(code) = error_code {
        body["errorCode"] = code.into();
    }
    Rejection { status, body }
}

fn default_message(status: StatusCode) -> String {
    match status.as_u16() {
        500 => "An internal server error occurred".into(),
        _ => status.canonical_reason().unwrap_or("Error").into(),
    }
}

fn unauthorized(message: &str) -> Rejection {
    let body = json!({
        "statusCode": 401,
        "error": "Unauthorized",
        "message": message,
        "attributes": { "error": message },
    });
    let status = StatusCode::UNAUTHORIZED;
    Rejection { status, body }
}

fn bad_request(message: &str, error_code: Option<&str>) -> Rejection {
    management_error(StatusCode::BAD_REQUEST, message, error_code)
}

fn invalid_body(detail: &str, property: Option<&str>) -> Rejection {
    let message = match property {
        Some(property) => format!("Payload validation error: '{detail}' on property {property}."),
        None => format!("Payload validation error: '{detail}'."),
    };
    bad_request(&message, Some("invalid_body"))
}

fn invalid_query(detail: &str, property: Option<&str>) -> Rejection {
    let message = match property {
        Some(property) => format!("Query validation error: '{detail}' on property {property}."),
        None => format!("Query validation error: '{detail}'."),
    };
    bad_request(&message, Some("invalid_query_string"))
}

fn user_not_found() -> Rejection {
    let status = StatusCode::NOT_FOUND;
    management_error(status, "The user does not exist.", Some("inexistent_user"))
}

fn inexistent_connection() -> Rejection {
    let message = "The connection does not exist.";
    bad_request(message, Some("inexistent_connection"))
}

fn weak_password() -> Rejection {
    bad_request("PasswordStrengthError: Password is too weak", None)
}

/// `{"error","error_description"}`, the Authentication API error shape.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Rejection {
    let body = json!({ "error": error, "error_description": description });
    Rejection { status, body }
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

async fn not_found() -> Rejection {
    management_error(StatusCode::NOT_FOUND, "Not Found", None)
}

// ---------------------------------------------------------------------------------------------
// POST /oauth/token

async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = app.tenant().begin("token");
    faults::respond(fault, faulted_token, || {
        let answer = app.tenant().issue_token(&headers, &body, Utc::now());
        answer.unwrap_or_else(IntoResponse::into_response)
    })
    .await
}

impl Tenant {
    fn issue_token(&mut self, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Answer {
        let bad_request = |description: &str| {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
        };
        let form = token_form(headers, body).ok_or_else(|| bad_request("Invalid request body"))?;
        let field = |name: &str| form.get(name).map(String::as_str);
        match field("grant_type") {
            None => return Err(bad_request("Missing required parameter: grant_type")),
            Some("client_credentials") => {}
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

        let ttl = self.config.token_ttl_secs;
        let expires = now + chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX / 2));
        let access_token = self.mint_token(audience, now, expires);
        self.tokens.insert(access_token.clone(), expires);
        let body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": SCOPE,
        });
        let mut response = json_response(StatusCode::OK, &body);
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        Ok(response)
    }

    /// The tenant's own audience, also when reached under another host name (e.g. from Docker).
    fn serves_audience(&self, audience: &str, headers: &HeaderMap) -> bool {
        let host = headers.get(HOST).and_then(|host| host.to_str().ok());
        audience == self.audience()
            || host.is_some_and(|host| {
                ["http", "https"]
                    .iter()
                    .any(|scheme| audience == format!("{scheme}://{host}/api/v2/"))
            })
    }

    /// A JWT-shaped token with the usual Management API claims; its signature is random bytes.
    fn mint_token(&self, audience: &str, now: DateTime<Utc>, expires: DateTime<Utc>) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": "auth0-double" });
        let claims = json!({
            "iss": format!("{}/", self.base_url),
            "sub": format!("{}@clients", self.config.client_id),
            "aud": audience,
            "iat": now.timestamp(),
            "exp": expires.timestamp(),
            "scope": SCOPE,
            "gty": "client-credentials",
            "azp": self.config.client_id,
            "jti": random_hex(16),
        });
        let signature: [u8; 32] = rand::random();
        [
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes()),
            base64url(&signature),
        ]
        .join(".")
    }
}

/// The token request's fields, from a form or a JSON body.
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
    Some(
        fields
            .into_iter()
            .map(|(name, value)| (name, text(value)))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// /api/v2/users*

async fn create_user(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let work = |tenant: &mut Tenant, now| tenant.create_user(&body, now);
    app.management("create_user", &headers, work).await
}

async fn get_user(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let work = |tenant: &mut Tenant, _| {
        let user = tenant.find(&id).ok_or_else(user_not_found)?;
        Ok(json_response(StatusCode::OK, &user.profile))
    };
    app.management("get_user", &headers, work).await
}

async fn update_user(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let work = |tenant: &mut Tenant, now| tenant.update_user(&id, &body, now);
    app.management("update_user", &headers, work).await
}

async fn delete_user(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        tenant.users.retain(|user| user.id() != id);
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    app.management("delete_user", &headers, work).await
}

async fn users_by_email(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| {
        let params = query_params(query.as_deref());
        let Some(email) = params.get("email") else {
            return Err(invalid_query("Missing required property: email", None));
        };
        // Case-sensitive on purpose: Auth0 stores lower case and compares exactly.
        let found: Vec<&Value> = (tenant.users.iter())
            .filter(|user| user.email() == email)
            .map(|user| &user.profile)
            .collect();
        Ok(json_response(StatusCode::OK, &json!(found)))
    };
    app.management("users_by_email", &headers, work).await
}

async fn search_users(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let work = |tenant: &mut Tenant, _| tenant.search(&query_params(query.as_deref()));
    app.management("search_users", &headers, work).await
}

fn query_params(query: Option<&str>) -> HashMap<String, String> {
    let query = query.unwrap_or_default().as_bytes();
    url::form_urlencoded::parse(query).into_owned().collect()
}

/// JSON types the payload schemas use.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Flag,
    Object,
}

use Kind::{Flag, Object, Text};

const CREATE_FIELDS: &[(&str, Kind)] = &[
    ("connection", Text),
    ("email", Text),
    ("password", Text),
    ("email_verified", Flag),
    ("verify_email", Flag),
    ("app_metadata", Object),
    ("user_metadata", Object),
    ("name", Text),
    ("given_name", Text),
    ("family_name", Text),
    ("nickname", Text),
    ("blocked", Flag),
    ("picture", Text),
    ("user_id", Text),
    ("username", Text),
    ("phone_number", Text),
];
const CREATE_REQUIRED: &[&str] = &["connection", "email", "password"];

const UPDATE_FIELDS: &[(&str, Kind)] = &[
    ("blocked", Flag),
    ("email_verified", Flag),
    ("email", Text),
    ("phone_number", Text),
    ("phone_verified", Flag),
    ("user_metadata", Object),
    ("app_metadata", Object),
    ("given_name", Text),
    ("family_name", Text),
    ("name", Text),
    ("nickname", Text),
    ("picture", Text),
    ("verify_email", Flag),
    ("verify_phone_number", Flag),
    ("password", Text),
    ("connection", Text),
    ("client_id", Text),
    ("username", Text),
];

/// Profile fields a request may set directly.
const PROFILE_FIELDS: &[&str] = &[
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "blocked",
    "picture",
    "username",
    "phone_number",
    "phone_verified",
];
const METADATA_FIELDS: [&str; 2] = ["app_metadata", "user_metadata"];

impl Kind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Text => value.is_string(),
            Flag => value.is_boolean(),
            Object => value.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Text => "string",
            Flag => "boolean",
            Object => "object",
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Schema checks Auth0 runs before anything else: JSON, known fields, types, formats.
fn validate_payload(
    body: &[u8],
    fields: &[(&str, Kind)],
    required: &[&str],
) -> Result<Map<String, Value>, Rejection> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|_| bad_request("Invalid request payload JSON format", None))?;
    let Value::Object(payload) = payload else {
        let detail = format!(
            "Expected type object but found type {}",
            type_name(&payload)
        );
        return Err(invalid_body(&detail, None));
    };
    if let Some(unknown) = payload
        .keys()
        .find(|key| !fields.iter().any(|(name, _)| name == key))
    {
        let detail = format!("Additional properties not allowed: {unknown}");
        return Err(invalid_body(&detail, None));
    }
    for (name, kind) in fields {
        if let Some(value) = payload.get(*name).filter(|value| !kind.accepts(value)) {
            let found = type_name(value);
            let detail = format!("Expected type {} but found type {found}", kind.name());
            return Err(invalid_body(&detail, Some(name)));
        }
    }
    if let Some(missing) = required.iter().find(|name| !payload.contains_key(**name)) {
        let detail = format!("Missing required property: {missing}");
        return Err(invalid_body(&detail, None));
    }
    if let Some(email) = payload.get("email").and_then(Value::as_str)
        && !is_valid_email(email)
    {
        let detail = format!("Object didn't pass validation for format email: {email}");
        return Err(invalid_body(&detail, Some("email")));
    }
    for field in METADATA_FIELDS {
        if let Some(key) = payload.get(field).and_then(forbidden_metadata_key) {
            let detail = format!("Invalid key \"{key}\": keys must not contain \".\" or \"$\"");
            return Err(invalid_body(&detail, Some(field)));
        }
    }
    Ok(payload)
}

/// Auth0 rejects metadata keys (at any depth) containing `.` or `$`.
fn forbidden_metadata_key(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.contains(['.', '$']) {
                Some(key.clone())
            } else {
                forbidden_metadata_key(value)
            }
        }),
        Value::Array(items) => items.iter().find_map(forbidden_metadata_key),
        _ => None,
    }
}

/// Auth0's "good" policy: 8+ characters from at least three of four character classes.
fn is_strong_password(password: &str) -> bool {
    let has = |class: fn(&char) -> bool| password.chars().any(|c| class(&c));
    let classes = [
        has(char::is_ascii_lowercase),
        has(char::is_ascii_uppercase),
        has(char::is_ascii_digit),
        has(|c| c.is_ascii_punctuation() || *c == ' '),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|&&present| present).count() >= 3
}

impl Tenant {
    fn create_user(&mut self, body: &[u8], now: DateTime<Utc>) -> Answer {
        let payload = validate_payload(body, CREATE_FIELDS, CREATE_REQUIRED)?;
        let text = |name: &str| payload.get(name).and_then(Value::as_str);
        if text("connection") != Some(&self.config.connection) {
            return Err(inexistent_connection());
        }
        let password = text("password").unwrap_or_default();
        if !is_strong_password(password) {
            return Err(weak_password());
        }
        let email = text("email").unwrap_or_default().to_lowercase();
        let local_id = text("user_id").map_or_else(|| random_hex(12), str::to_string);
        let user_id = format!("auth0|{local_id}");
        if self
            .users
            .iter()
            .any(|user| user.email() == email || user.id() == user_id)
        {
            let status = StatusCode::CONFLICT;
            let message = "The user already exists.";
            return Err(management_error(status, message, Some("auth0_idp_error")));
        }

        let mut profile = self.new_profile(&email, &local_id, now);
        for field in PROFILE_FIELDS.iter().chain(&METADATA_FIELDS) {
            if let Some(value) = payload.get(*field) {
                profile[*field] = value.clone();
            }
        }
        self.users.push(StoredUser {
            profile: profile.clone(),
            password_digest: Some(digest(password)),
        });
        Ok(json_response(StatusCode::CREATED, &profile))
    }

    fn update_user(&mut self, user_id: &str, body: &[u8], now: DateTime<Utc>) -> Answer {
        let payload = validate_payload(body, UPDATE_FIELDS, &[])?;
        let text = |name: &str| payload.get(name).and_then(Value::as_str);
        let index = (self.users.iter())
            .position(|user| user.id() == user_id)
            .ok_or_else(user_not_found)?;
        if text("connection").is_some_and(|connection| connection != self.config.connection) {
            return Err(inexistent_connection());
        }
        if text("password").is_some_and(|password| !is_strong_password(password)) {
            return Err(weak_password());
        }
        let new_email = text("email").map(str::to_lowercase);
        if let Some(email) = &new_email
            && (self.users.iter()).any(|user| user.email() == email && user.id() != user_id)
        {
            let message = "The specified new email already exists";
            return Err(bad_request(message, Some("auth0_idp_error")));
        }

        let user = &mut self.users[index];
        let profile = &mut user.profile;
        for field in PROFILE_FIELDS {
            if let Some(value) = payload.get(*field) {
                profile[*field] = value.clone();
            }
        }
        for field in METADATA_FIELDS {
            if let Some(Value::Object(changes)) = payload.get(field) {
                merge_top_level(&mut profile[field], changes);
            }
        }
        if let Some(email) = new_email {
            profile["email"] = email.into();
        }
        if let Some(password) = text("password") {
            user.password_digest = Some(digest(password));
        }
        user.profile["updated_at"] = timestamp(now).into();
        Ok(json_response(StatusCode::OK, &user.profile))
    }

    fn search(&self, params: &HashMap<String, String>) -> Answer {
        let query = SearchQuery::parse(params)?;
        let mut found: Vec<&Value> = (self.users.iter())
            .map(|user| &user.profile)
            .filter(|profile| lucene::matches_all(&query.clauses, profile))
            .collect();
        let sort_key = |profile: &Value| {
            lucene::field_values(profile, &query.sort_field)
                .into_iter()
                .next()
        };
        found.sort_by_cached_key(|profile| sort_key(profile));
        if query.descending {
            found.reverse();
        }
        let total = found.len();
        let page: Vec<&Value> = found
            .into_iter()
            .skip(usize::try_from(query.page * query.per_page).unwrap_or(usize::MAX))
            .take(usize::try_from(query.per_page).unwrap_or(usize::MAX))
            .collect();
        let body = if query.include_totals {
            json!({
                "start": query.page * query.per_page,
                "limit": query.per_page,
                "length": page.len(),
                "users": page,
                "total": total,
            })
        } else {
            json!(page)
        };
        Ok(json_response(StatusCode::OK, &body))
    }
}

/// Top-level merge as Auth0 does for metadata: a `null` value removes the key.
fn merge_top_level(target: &mut Value, changes: &Map<String, Value>) {
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in changes {
        if value.is_null() {
            target.remove(key);
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// The parameters of `GET /api/v2/users`, validated as Auth0 does.
struct SearchQuery {
    clauses: Vec<lucene::Clause>,
    page: u64,
    per_page: u64,
    include_totals: bool,
    sort_field: String,
    descending: bool,
}

impl SearchQuery {
    fn parse(params: &HashMap<String, String>) -> Result<SearchQuery, Rejection> {
        if let Some(engine) = params.get("search_engine").filter(|engine| *engine != "v3") {
            let message = format!(
                "You are not allowed to use search_engine={engine}. Use search_engine=v3 instead."
            );
            return Err(bad_request(&message, Some("operation_not_supported")));
        }
        let number = |name: &str, default: u64| match params.get(name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                let detail = "Expected type integer but found type string";
                invalid_query(detail, Some(name))
            }),
        };
        let page = number("page", 0)?;
        let per_page = number("per_page", 50)?;
        if per_page > 100 {
            let detail = format!("Value {per_page} is greater than maximum 100");
            return Err(invalid_query(&detail, Some("per_page")));
        }
        if page.saturating_add(1).saturating_mul(per_page) > SEARCH_WINDOW {
            let message = "You can only page through the first 1000 records. See \
                 https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation";
            return Err(bad_request(message, Some("invalid_paging")));
        }
        let (sort_field, descending) = match params.get("sort").map(|sort| sort.rsplit_once(':')) {
            None => ("created_at".to_string(), false),
            Some(Some((field, "1"))) if !field.is_empty() => (field.to_string(), false),
            Some(Some((field, "-1"))) if !field.is_empty() => (field.to_string(), true),
            Some(_) => {
                let detail = "String does not match pattern ^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$";
                return Err(invalid_query(detail, Some("sort")));
            }
        };
        let query = params.get("q").map(|q| q.trim()).unwrap_or_default();
        let clauses = lucene::parse(query).map_err(|detail| {
            let message = format!("Invalid query: {detail}");
            bad_request(&message, Some("invalid_query"))
        })?;
        Ok(SearchQuery {
            clauses,
            page,
            per_page,
            include_totals: params
                .get("include_totals")
                .is_some_and(|flag| flag == "true"),
            sort_field,
            descending,
        })
    }
}

/// The Lucene subset user search needs: `field:value`, `field:"value"`, `field:prefix*`,
/// `field:[A TO B]` / `{A TO B}` (mixable, `*` open), joined by `AND`.
mod lucene {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    use serde_json::Value;

    #[derive(Debug, PartialEq)]
    pub(super) enum Clause {
        Matches {
            field: String,
            pattern: Pattern,
        },
        Range {
            field: String,
            lower: Bound,
            upper: Bound,
        },
    }

    #[derive(Debug, PartialEq)]
    pub(super) enum Pattern {
        Exact(String),
        Prefix(String),
    }

    /// One end of a range; `value: None` is `*`.
    #[derive(Debug, PartialEq)]
    pub(super) struct Bound {
        value: Option<String>,
        inclusive: bool,
    }

    pub(super) fn parse(query: &str) -> Result<Vec<Clause>, String> {
        let tokens = tokenize(query)?;
        let mut clauses = Vec::new();
        for (index, token) in tokens.iter().enumerate() {
            if index % 2 == 1 {
                if token != "AND" {
                    return Err(format!("expected AND before \"{token}\""));
                }
            } else {
                clauses.push(parse_clause(token)?);
            }
        }
        if tokens.len() % 2 == 0 && !tokens.is_empty() {
            return Err("query ends with AND".into());
        }
        Ok(clauses)
    }

    /// Splits on whitespace outside quotes and range brackets.
    fn tokenize(query: &str) -> Result<Vec<String>, String> {
        let mut tokens = Vec::new();
        let mut current = String::new();
        let (mut quoted, mut escaped, mut in_range) = (false, false, false);
        for c in query.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quoted {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if !quoted && (c == '[' || c == '{') {
                in_range = true;
            } else if !quoted && (c == ']' || c == '}') {
                in_range = false;
            } else if c.is_whitespace() && !quoted && !in_range {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                continue;
            }
            current.push(c);
        }
        if quoted || in_range {
            return Err("unbalanced quote or range".into());
        }
        if !current.is_empty() {
            tokens.push(current);
        }
        Ok(tokens)
    }

    fn parse_clause(token: &str) -> Result<Clause, String> {
        let Some((field, value)) = token.split_once(':') else {
            return Err(format!("expected field:value, got \"{token}\""));
        };
        let field_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if field.is_empty() || !field.chars().all(field_ok) {
            return Err(format!("unsupported field \"{field}\""));
        }
        let field = field.to_string();
        if let Some(inclusive_lower) = match value.chars().next() {
            Some('[') => Some(true),
            Some('{') => Some(false),
            _ => None,
        } {
            let inclusive_upper = match value.chars().last() {
                Some(']') => true,
                Some('}') => false,
                _ => return Err(format!("unterminated range in \"{token}\"")),
            };
            let inner = &value[1..value.len() - 1];
            let Some((lower, upper)) = inner.split_once(" TO ") else {
                return Err(format!("range without TO in \"{token}\""));
            };
            let bound = |text: &str, inclusive| Bound {
                value: Some(unquote(text.trim())).filter(|text| text != "*"),
                inclusive,
            };
            return Ok(Clause::Range {
                field,
                lower: bound(lower, inclusive_lower),
                upper: bound(upper, inclusive_upper),
            });
        }
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            let pattern = Pattern::Exact(unquote(value));
            return Ok(Clause::Matches { field, pattern });
        }
        let pattern = match value.strip_suffix('*') {
            _ if value.is_empty() => return Err(format!("empty value for \"{field}\"")),
            Some(prefix) if !prefix.contains(['*', '?']) => Pattern::Prefix(prefix.to_string()),
            None if !value.contains(['*', '?']) => Pattern::Exact(value.to_string()),
            _ => return Err(format!("unsupported wildcard in \"{token}\"")),
        };
        Ok(Clause::Matches { field, pattern })
    }

    fn unquote(text: &str) -> String {
        let Some(inner) = text
            .strip_prefix('"')
            .and_then(|text| text.strip_suffix('"'))
        else {
            return text.to_string();
        };
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' {
                chars.next().unwrap_or(c)
            } else {
                c
            });
        }
        out
    }

    pub(super) fn matches_all(clauses: &[Clause], doc: &Value) -> bool {
        clauses.iter().all(|clause| matches(clause, doc))
    }

    fn matches(clause: &Clause, doc: &Value) -> bool {
        match clause {
            Clause::Matches { field, pattern } => {
                field_values(doc, field).iter().any(|value| match pattern {
                    Pattern::Exact(expected) => value == expected,
                    Pattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
                })
            }
            Clause::Range {
                field,
                lower,
                upper,
            } => (field_values(doc, field).iter()).any(|value| in_range(value, lower, upper)),
        }
    }

    /// Dates compare as instants when both sides parse as dates, otherwise as text.
    fn in_range(value: &str, lower: &Bound, upper: &Bound) -> bool {
        let instant = parse_instant(value);
        let compare = |bound: &str| match (instant, parse_instant(bound)) {
            (Some(value), Some(bound)) => value.cmp(&bound),
            _ => value.cmp(bound),
        };
        let above = lower.value.as_deref().is_none_or(|bound| {
            let order = compare(bound);
            order.is_gt() || (lower.inclusive && order.is_eq())
        });
        let below = upper.value.as_deref().is_none_or(|bound| {
            let order = compare(bound);
            order.is_lt() || (upper.inclusive && order.is_eq())
        });
        above && below
    }

    fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
        if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
            return Some(instant.with_timezone(&Utc));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(naive.and_utc());
        }
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc())
    }

    /// The text values at a dotted path; arrays match if any element does.
    pub(super) fn field_values(doc: &Value, path: &str) -> Vec<String> {
        let mut values = vec![doc];
        for segment in path.split('.') {
            values = values
                .into_iter()
                .flat_map(|value| match value {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                })
                .filter_map(|value| value.get(segment))
                .collect();
        }
        let mut texts = Vec::new();
        for value in values {
            match value {
                Value::Array(items) => texts.extend(items.iter().filter_map(scalar_text)),
                other => texts.extend(scalar_text(other)),
            }
        }
        texts
    }

    fn scalar_text(value: &Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        #[test]
        fn clauses_joined_by_and_all_have_to_match() {
            let clauses = parse(r#"app_metadata.created_by:"signup api" AND email:a*"#).unwrap();
            let doc = json!({"email": "ann@x.io", "app_metadata": {"created_by": "signup api"}});
            assert!(matches_all(&clauses, &doc));
            let other = json!({"email": "bob@x.io", "app_metadata": {"created_by": "signup api"}});
            assert!(!matches_all(&clauses, &other));
        }

        #[test]
        fn date_ranges_honour_inclusive_and_exclusive_ends() {
            let doc = json!({"created_at": "2024-01-02T00:00:00.000Z"});
            let hit = |q: &str| matches_all(&parse(q).unwrap(), &doc);
            assert!(hit("created_at:[2024-01-02 TO *]"));
            assert!(!hit("created_at:{2024-01-02 TO *]"));
            assert!(hit(
                r#"created_at:["2024-01-01T00:00:00Z" TO 2024-01-02T00:00:00]"#
            ));
            assert!(!hit("created_at:[* TO 2024-01-02T00:00:00.000Z}"));
        }

        #[test]
        fn unsupported_syntax_is_rejected() {
            for query in [
                "a:1 OR b:2",
                "a:1 b:2",
                "a:1 AND",
                "(a:1)",
                "a:[1 TO 2",
                "a:b*c",
            ] {
                assert!(parse(query).is_err(), "{query}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Control API specific to Auth0

async fn seed_user(State(app): State<App>, body: Bytes) -> Answer {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return Err(control_error("expected a JSON object"));
    };
    let Some(email) = request.get("email").and_then(Value::as_str) else {
        return Err(control_error("email is required"));
    };
    let created_at = match request.get("created_at").and_then(Value::as_str) {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|error| control_error(&format!("created_at: {error}")))?
            .with_timezone(&Utc),
    };
    let app_metadata = request.get("app_metadata").cloned().unwrap_or(Value::Null);
    let user = app.tenant().seed(email, app_metadata, created_at);
    Ok(json_response(StatusCode::CREATED, &user))
}

/// `{"client_secret"?, "rate_limit_per_sec"?: n|null, "token_ttl_secs"?}` changes the config.
async fn configure(State(app): State<App>, body: Bytes) -> Answer {
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return Err(control_error("expected a JSON object"));
    };
    let mut tenant = app.tenant();
    for (key, value) in changes {
        match (key.as_str(), value) {
            ("client_secret", Value::String(secret)) => tenant.config.client_secret = secret,
            ("rate_limit_per_sec", Value::Null) => tenant.config.rate_limit_per_sec = None,
            ("rate_limit_per_sec", Value::Number(limit)) if limit.as_u64().is_some() => {
                let limit = limit.as_u64().unwrap_or_default();
                tenant.config.rate_limit_per_sec = Some(u32::try_from(limit).unwrap_or(u32::MAX));
            }
            ("token_ttl_secs", Value::Number(ttl)) if ttl.as_u64().is_some() => {
                tenant.config.token_ttl_secs = ttl.as_u64().unwrap_or_default();
            }
            (key, _) => return Err(control_error(&format!("cannot set {key} that way"))),
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// ISO 8601 with milliseconds and `Z`, as Auth0 writes dates.
fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn random_hex(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(random)
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Auth0's default picture: a Gravatar with the initials avatar as fallback.
fn picture_for(email: &str) -> String {
    let initials: String = email.chars().take(2).collect();
    format!(
        "https://s.gravatar.com/avatar/{}?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{initials}.png",
        digest(email)
    )
}

/// Unpadded base64url, for the JWT-shaped tokens.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let bits = (chunk.iter().enumerate()).fold(0u32, |bits, (i, byte)| {
            bits | u32::from(*byte) << (16 - 8 * i)
        });
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reqwest::Client;
    use serde_json::{Value, json};

    use super::*;

    const STRONG_PASSWORD: &str = "Str0ng-passw0rd";

    /// A running double, an HTTP client and a valid Management API token.
    struct Session {
        double: Auth0Double,
        http: Client,
        token: String,
    }

    async fn tenant_with(config: Auth0Config) -> Session {
        let double = Auth0Double::start(config).await.unwrap();
        let http = Client::new();
        let token = fetch_token(&double, &http).await;
        Session {
            double,
            http,
            token,
        }
    }

    async fn tenant() -> Session {
        tenant_with(Auth0Config::default()).await
    }

    fn token_request(double: &Auth0Double) -> Value {
        json!({
            "grant_type": "client_credentials",
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
            "audience": double.audience(),
        })
    }

    async fn post_token(double: &Auth0Double, http: &Client, body: &Value) -> (u16, Value) {
        let url = format!("{}/oauth/token", double.base_url());
        read(http.post(url).json(body).send().await.unwrap()).await
    }

    async fn fetch_token(double: &Auth0Double, http: &Client) -> String {
        let (status, body) = post_token(double, http, &token_request(double)).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn read(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn new_user(email: &str) -> Value {
        json!({
            "connection": "Username-Password-Authentication",
            "email": email,
            "password": STRONG_PASSWORD,
            "verify_email": false,
            "app_metadata": { "created_by": "signup-api" },
        })
    }

    impl Session {
        fn url(&self, path_and_query: &str) -> String {
            format!("{}{path_and_query}", self.double.base_url())
        }

        fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
            self.http
                .request(method, self.url(path))
                .bearer_auth(&self.token)
        }

        async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
            read(request.send().await.unwrap()).await
        }

        async fn create(&self, body: &Value) -> (u16, Value) {
            let request = self
                .request(reqwest::Method::POST, "/api/v2/users")
                .json(body);
            self.send(request).await
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            self.send(self.request(reqwest::Method::GET, path)).await
        }

        async fn search(&self, params: &[(&str, &str)]) -> (u16, Value) {
            let url = url::Url::parse_with_params(&self.url("/api/v2/users"), params).unwrap();
            let request = self.http.get(url).bearer_auth(&self.token);
            self.send(request).await
        }
    }

    fn user_path(user_id: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(user_id.as_bytes()).collect();
        format!("/api/v2/users/{encoded}")
    }

    // --- token ---

    #[tokio::test]
    async fn a_token_is_issued_for_the_right_client_and_audience() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let http = Client::new();
        let url = format!("{}/oauth/token", double.base_url());
        let response = http
            .post(url)
            .json(&token_request(&double))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, body) = read(response).await;
        assert_eq!(status, 200);
        assert!(body["access_token"].as_str().unwrap().starts_with("eyJ"));
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 86_400);
        assert_eq!(body["scope"], SCOPE);
        assert_eq!(double.token_requests(), 1);
    }

    #[tokio::test]
    async fn a_form_encoded_token_request_works_like_a_json_one() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let audience = double.audience();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "test-client-id"),
            ("client_secret", "test-client-secret"),
            ("audience", audience.as_str()),
        ];
        let url = format!("{}/oauth/token", double.base_url());
        let response = Client::new().post(url).form(&form).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn a_wrong_client_secret_is_refused_with_401_access_denied() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let mut request = token_request(&double);
        request["client_secret"] = "nope".into();
        let (status, body) = post_token(&double, &Client::new(), &request).await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            json!({"error": "access_denied", "error_description": "Unauthorized"})
        );
        assert_eq!(double.token_requests(), 1);
    }

    #[tokio::test]
    async fn a_foreign_audience_is_refused_with_403_and_the_client_grant_hint() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let mut request = token_request(&double);
        request["audience"] = "https://elsewhere.example/api/v2/".into();
        let (status, body) = post_token(&double, &Client::new(), &request).await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "access_denied");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.starts_with(
            "Client is not authorized to access \"https://elsewhere.example/api/v2/\". You need to create a \"client-grant\""
        ));
    }

    #[tokio::test]
    async fn a_grant_other_than_client_credentials_is_refused_with_400() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let mut request = token_request(&double);
        request["grant_type"] = "password".into();
        let (status, body) = post_token(&double, &Client::new(), &request).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "unsupported_grant_type");
    }

    #[tokio::test]
    async fn a_rotated_secret_refuses_the_old_one_but_keeps_issued_tokens_valid() {
        let tenant = tenant().await;
        tenant.double.set_client_secret("rotated");
        let (status, _) =
            post_token(&tenant.double, &tenant.http, &token_request(&tenant.double)).await;
        assert_eq!(status, 401);
        assert_eq!(
            tenant.get("/api/v2/users-by-email?email=a%40b.io").await.0,
            200
        );
    }

    // --- bearer tokens ---

    #[tokio::test]
    async fn management_calls_without_an_issued_token_get_401_invalid_token() {
        let tenant = tenant().await;
        let url = tenant.url("/api/v2/users/auth0%7Cabc");
        let expected = json!({
            "statusCode": 401,
            "error": "Unauthorized",
            "message": "Invalid token",
            "attributes": { "error": "Invalid token" },
        });
        let missing = read(tenant.http.get(&url).send().await.unwrap()).await;
        assert_eq!(missing, (401, expected.clone()));
        let forged = read(
            tenant
                .http
                .get(&url)
                .bearer_auth("eyJforged")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(forged, (401, expected));
    }

    #[tokio::test]
    async fn an_expired_token_gets_the_expired_token_message() {
        let tenant = tenant().await;
        tenant.double.expire_tokens();
        let (status, body) = tenant.get("/api/v2/users/auth0%7Cabc").await;
        assert_eq!(status, 401);
        let message = "Expired token received for JSON Web Token validation";
        assert_eq!(body["message"], message);
        assert_eq!(body["attributes"]["error"], message);
    }

    #[tokio::test]
    async fn a_zero_ttl_token_is_expired_at_once() {
        let tenant = tenant_with(Auth0Config {
            token_ttl_secs: 0,
            ..Auth0Config::default()
        })
        .await;
        let (status, body) = tenant.get("/api/v2/users/auth0%7Cabc").await;
        assert_eq!(
            (status, body["message"].as_str()),
            (
                401,
                Some("Expired token received for JSON Web Token validation")
            )
        );
    }

    // --- create ---

    #[tokio::test]
    async fn creating_a_user_answers_201_with_the_auth0_user_shape() {
        let tenant = tenant().await;
        let (status, user) = tenant.create(&new_user("Ann.Lee@Example.COM")).await;
        assert_eq!(status, 201, "{user}");
        let user_id = user["user_id"].as_str().unwrap();
        let local_id = user_id.strip_prefix("auth0|").unwrap();
        assert_eq!(local_id.len(), 24);
        assert!(
            local_id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_eq!(user["email"], "ann.lee@example.com");
        assert_eq!(user["email_verified"], false);
        assert_eq!(user["name"], "ann.lee@example.com");
        assert_eq!(user["nickname"], "ann.lee");
        assert_eq!(user["app_metadata"], json!({"created_by": "signup-api"}));
        assert_eq!(user["user_metadata"], json!({}));
        assert_eq!(
            user["identities"],
            json!([{
                "connection": "Username-Password-Authentication",
                "user_id": local_id,
                "provider": "auth0",
                "isSocial": false,
            }])
        );
        let created_at = user["created_at"].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(created_at).is_ok());
        assert!(created_at.ends_with('Z') && created_at.len() == "2024-01-01T00:00:00.000Z".len());
        assert_eq!(user["updated_at"], created_at);
        assert!(user["picture"].as_str().unwrap().starts_with("https://"));
        assert!(tenant.double.password_matches(user_id, STRONG_PASSWORD));
    }

    #[tokio::test]
    async fn the_password_never_appears_in_answers_or_control_state() {
        let tenant = tenant().await;
        let (_, user) = tenant.create(&new_user("ann@example.com")).await;
        let (_, found) = tenant
            .get(&user_path(user["user_id"].as_str().unwrap()))
            .await;
        let state = tenant.double.app.snapshot();
        for shown in [user, found, state, json!(tenant.double.users())] {
            assert!(!shown.to_string().contains(STRONG_PASSWORD));
            assert!(!shown.to_string().contains("password"));
        }
    }

    #[tokio::test]
    async fn creating_an_existing_email_in_another_case_conflicts_with_409() {
        let tenant = tenant().await;
        assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
        let (status, body) = tenant.create(&new_user("ANN@example.com")).await;
        assert_eq!(status, 409);
        assert_eq!(
            body,
            json!({
                "statusCode": 409,
                "error": "Conflict",
                "message": "The user already exists.",
                "errorCode": "auth0_idp_error",
            })
        );
        assert_eq!(tenant.double.users_with_email("Ann@Example.com").len(), 1);
    }

    #[tokio::test]
    async fn a_weak_password_is_refused_with_password_strength_error() {
        let tenant = tenant().await;
        for weak in ["Sh0rt!", "alllowercase1", "NoDigitsOrSymbols"] {
            let mut body = new_user("ann@example.com");
            body["password"] = weak.into();
            let (status, answer) = tenant.create(&body).await;
            assert_eq!(status, 400, "{weak}");
            assert_eq!(
                answer,
                json!({
                    "statusCode": 400,
                    "error": "Bad Request",
                    "message": "PasswordStrengthError: Password is too weak",
                })
            );
        }
        assert!(tenant.double.users().is_empty());
    }

    #[tokio::test]
    async fn malformed_create_payloads_are_refused_as_invalid_body() {
        let tenant = tenant().await;
        let with = |change: &dyn Fn(&mut Value)| {
            let mut body = new_user("ann@example.com");
            change(&mut body);
            body
        };
        let cases = [
            with(&|body| body["favourite_colour"] = "blue".into()),
            with(&|body| body["email_verified"] = "yes".into()),
            with(&|body| body["app_metadata"] = json!(["not", "an", "object"])),
            with(&|body| {
                body.as_object_mut()
                    .unwrap()
                    .remove("password")
                    .map(drop)
                    .unwrap_or(())
            }),
            with(&|body| body["email"] = "not-an-email".into()),
            with(&|body| body["app_metadata"] = json!({"created.by": "x"})),
            with(&|body| body["app_metadata"] = json!({"nested": {"$set": 1}})),
        ];
        for case in cases {
            let (status, body) = tenant.create(&case).await;
            assert_eq!(status, 400, "{case}");
            assert_eq!(body["errorCode"], "invalid_body", "{case}");
            assert_eq!(body["error"], "Bad Request");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Payload validation error: '")
            );
        }
        assert!(tenant.double.users().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_connection_is_refused_with_inexistent_connection() {
        let tenant = tenant().await;
        let mut body = new_user("ann@example.com");
        body["connection"] = "google-oauth2".into();
        let (status, answer) = tenant.create(&body).await;
        assert_eq!(status, 400);
        assert_eq!(answer["message"], "The connection does not exist.");
        assert_eq!(answer["errorCode"], "inexistent_connection");
    }

    // --- read, update, delete ---

    #[tokio::test]
    async fn users_by_email_matches_the_stored_lower_case_email_exactly() {
        let tenant = tenant().await;
        tenant.create(&new_user("Ann@Example.com")).await;
        let (status, found) = tenant
            .get("/api/v2/users-by-email?email=ann%40example.com")
            .await;
        assert_eq!(status, 200);
        assert_eq!(found.as_array().unwrap().len(), 1);
        let (_, mixed_case) = tenant
            .get("/api/v2/users-by-email?email=Ann%40Example.com")
            .await;
        assert_eq!(mixed_case, json!([]));
        let (status, missing) = tenant.get("/api/v2/users-by-email").await;
        assert_eq!(status, 400);
        assert_eq!(missing["errorCode"], "invalid_query_string");
    }

    #[tokio::test]
    async fn a_user_is_found_by_url_encoded_id_and_an_unknown_id_is_404() {
        let tenant = tenant().await;
        let (_, user) = tenant.create(&new_user("ann@example.com")).await;
        let (status, found) = tenant
            .get(&user_path(user["user_id"].as_str().unwrap()))
            .await;
        assert_eq!((status, &found), (200, &user));
        let (status, body) = tenant
            .get("/api/v2/users/auth0%7C000000000000000000000000")
            .await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({
                "statusCode": 404,
                "error": "Not Found",
                "message": "The user does not exist.",
                "errorCode": "inexistent_user",
            })
        );
    }

    #[tokio::test]
    async fn patch_merges_app_metadata_at_the_top_level_and_drops_null_keys() {
        let tenant = tenant().await;
        let mut body = new_user("ann@example.com");
        body["app_metadata"] =
            json!({"created_by": "signup-api", "tenant": "t1", "plan": {"tier": 1}});
        let (_, user) = tenant.create(&body).await;
        let path = user_path(user["user_id"].as_str().unwrap());
        let change = json!({"app_metadata": {"tenant": null, "plan": {"seats": 5}, "synced": true}, "blocked": true});
        let (status, updated) = tenant
            .send(tenant.request(reqwest::Method::PATCH, &path).json(&change))
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(
            updated["app_metadata"],
            json!({"created_by": "signup-api", "plan": {"seats": 5}, "synced": true})
        );
        assert_eq!(updated["blocked"], true);
        assert_eq!(tenant.get(&path).await.1, updated);
    }

    #[tokio::test]
    async fn patch_checks_a_new_password_against_the_policy() {
        let tenant = tenant().await;
        let (_, user) = tenant.create(&new_user("ann@example.com")).await;
        let user_id = user["user_id"].as_str().unwrap();
        let patch = |password: &str| {
            let body =
                json!({"password": password, "connection": "Username-Password-Authentication"});
            tenant
                .request(reqwest::Method::PATCH, &user_path(user_id))
                .json(&body)
        };
        let (status, body) = tenant.send(patch("weak")).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some("PasswordStrengthError: Password is too weak"))
        );
        assert_eq!(tenant.send(patch("N3w-Passw0rd")).await.0, 200);
        assert!(tenant.double.password_matches(user_id, "N3w-Passw0rd"));
    }

    #[tokio::test]
    async fn patching_an_unknown_user_is_404() {
        let tenant = tenant().await;
        let request = tenant
            .request(reqwest::Method::PATCH, "/api/v2/users/auth0%7Cmissing")
            .json(&json!({"blocked": true}));
        let (status, body) = tenant.send(request).await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (404, Some("inexistent_user"))
        );
    }

    #[tokio::test]
    async fn delete_answers_204_whether_or_not_the_user_exists() {
        let tenant = tenant().await;
        let (_, user) = tenant.create(&new_user("ann@example.com")).await;
        let path = user_path(user["user_id"].as_str().unwrap());
        for _ in 0..2 {
            let response = tenant
                .request(reqwest::Method::DELETE, &path)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
            assert!(response.text().await.unwrap().is_empty());
        }
        assert!(tenant.double.users().is_empty());
    }

    // --- search ---

    fn day(date: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{date}T12:00:00Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn search_filters_on_app_metadata_and_a_created_at_range() {
        let tenant = tenant().await;
        let ours = json!({"created_by": "signup-api"});
        let double = &tenant.double;
        double.insert_user_at("d1@example.com", ours.clone(), day("2024-01-01"));
        let wanted_late = double.insert_user_at("d3@example.com", ours.clone(), day("2024-01-03"));
        let wanted_early = double.insert_user_at("d2@example.com", ours.clone(), day("2024-01-02"));
        double.insert_user_at(
            "other@example.com",
            json!({"created_by": "Signup-API"}),
            day("2024-01-02"),
        );
        double.insert_user_at("d4@example.com", ours, day("2024-01-04"));

        let q = r#"app_metadata.created_by:"signup-api" AND created_at:[2024-01-02 TO 2024-01-04}"#;
        let (status, page) = tenant
            .search(&[
                ("q", q),
                ("search_engine", "v3"),
                ("include_totals", "true"),
            ])
            .await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<&str> = (page["users"].as_array().unwrap().iter())
            .map(|user| user["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [wanted_early.as_str(), wanted_late.as_str()]);
        assert_eq!(
            (page["start"].as_u64(), page["limit"].as_u64()),
            (Some(0), Some(50))
        );
        assert_eq!(
            (page["length"].as_u64(), page["total"].as_u64()),
            (Some(2), Some(2))
        );

        let (_, newest_first) = tenant.search(&[("q", q), ("sort", "created_at:-1")]).await;
        assert_eq!(newest_first[0]["user_id"], wanted_late.as_str());
    }

    #[tokio::test]
    async fn search_pages_are_zero_based() {
        let tenant = tenant().await;
        for n in 0..5 {
            let email = format!("u{n}@example.com");
            tenant
                .double
                .insert_user_at(&email, json!({}), day(&format!("2024-01-0{}", n + 1)));
        }
        let params = [("page", "1"), ("per_page", "2"), ("include_totals", "true")];
        let (_, page) = tenant.search(&params).await;
        let emails: Vec<&str> = (page["users"].as_array().unwrap().iter())
            .map(|user| user["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, ["u2@example.com", "u3@example.com"]);
        assert_eq!(
            (page["start"].as_u64(), page["total"].as_u64()),
            (Some(2), Some(5))
        );
    }

    #[tokio::test]
    async fn search_refuses_more_than_100_per_page_and_pages_past_1000_results() {
        let tenant = tenant().await;
        let (status, body) = tenant.search(&[("per_page", "101")]).await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (400, Some("invalid_query_string"))
        );
        let (status, body) = tenant.search(&[("page", "10"), ("per_page", "100")]).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({
                "statusCode": 400,
                "error": "Bad Request",
                "message": "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation",
                "errorCode": "invalid_paging",
            })
        );
        assert_eq!(
            tenant.search(&[("page", "9"), ("per_page", "100")]).await.0,
            200
        );
    }

    // --- rate limit ---

    #[tokio::test]
    async fn every_management_answer_carries_rate_limit_headers() {
        let tenant = tenant().await;
        let ok = tenant
            .request(reqwest::Method::GET, "/api/v2/users")
            .send()
            .await
            .unwrap();
        let unauthorized = tenant
            .http
            .get(tenant.url("/api/v2/users"))
            .send()
            .await
            .unwrap();
        for response in [ok, unauthorized] {
            for header in [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ] {
                assert!(response.headers().contains_key(header), "{header}");
            }
        }
    }

    #[tokio::test]
    async fn going_over_the_rate_limit_answers_429_with_the_headers_and_retry_after() {
        let tenant = tenant_with(Auth0Config {
            rate_limit_per_sec: Some(2),
            ..Auth0Config::default()
        })
        .await;
        // A window boundary between the calls resets the count; try again if that happened.
        for _ in 0..3 {
            let mut answers = Vec::new();
            for _ in 0..3 {
                answers.push(
                    tenant
                        .request(reqwest::Method::GET, "/api/v2/users")
                        .send()
                        .await
                        .unwrap(),
                );
            }
            let header = |response: &reqwest::Response, name: &str| {
                response.headers()[name].to_str().unwrap().to_string()
            };
            if answers.iter().any(|answer| {
                header(answer, "x-ratelimit-reset") != header(&answers[0], "x-ratelimit-reset")
            }) {
                continue;
            }
            let statuses: Vec<u16> = answers
                .iter()
                .map(|answer| answer.status().as_u16())
                .collect();
            assert_eq!(statuses, [200, 200, 429]);
            let remaining: Vec<String> = answers
                .iter()
                .map(|answer| header(answer, "x-ratelimit-remaining"))
                .collect();
            assert_eq!(remaining, ["1", "0", "0"]);
            let limited = answers.pop().unwrap();
            assert_eq!(header(&limited, "x-ratelimit-limit"), "2");
            assert_eq!(header(&limited, "retry-after"), "1");
            let reset: i64 = header(&limited, "x-ratelimit-reset").parse().unwrap();
            assert!(reset > Utc::now().timestamp() - 1);
            assert_eq!(
                read(limited).await.1,
                json!({"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached"})
            );
            return;
        }
        panic!("never got three calls into one rate-limit window");
    }

    // --- faults ---

    #[tokio::test]
    async fn a_status_fault_answers_the_auth0_error_shape_without_doing_the_work() {
        let tenant = tenant().await;
        tenant.double.inject(Fault::status("create_user", 503));
        let (status, body) = tenant.create(&new_user("ann@example.com")).await;
        assert_eq!(status, 503);
        assert_eq!(body["statusCode"], 503);
        assert_eq!(body["error"], "Service Unavailable");
        assert!(body["message"].is_string());
        assert!(tenant.double.users().is_empty());
        assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
        assert_eq!(tenant.double.calls("create_user"), 2);
    }

    #[tokio::test]
    async fn a_429_fault_carries_exhausted_rate_limit_headers() {
        let tenant = tenant().await;
        tenant.double.inject(Fault::status("get_user", 429));
        let response = tenant
            .request(reqwest::Method::GET, "/api/v2/users/auth0%7Cx")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        let headers = response.headers();
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["retry-after"], "1");
        let reset: i64 = headers["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset >= Utc::now().timestamp());
        assert_eq!(
            read(response).await.1["message"],
            "Global limit has been reached"
        );
    }

    #[tokio::test]
    async fn a_delay_fault_does_the_work_before_answering_late() {
        let tenant = tenant().await;
        tenant.double.inject(Fault::delay("create_user", 250));
        let request = tenant
            .request(reqwest::Method::POST, "/api/v2/users")
            .json(&new_user("ann@example.com"))
            .timeout(Duration::from_millis(50));
        let error = request.send().await.unwrap_err();
        assert!(error.is_timeout());
        assert_eq!(tenant.double.users_with_email("ann@example.com").len(), 1);
    }

    #[tokio::test]
    async fn a_dropped_connection_gives_the_client_an_error_and_the_server_keeps_serving() {
        let tenant = tenant().await;
        tenant.double.inject(Fault::drop_connection("create_user"));
        let request = tenant
            .request(reqwest::Method::POST, "/api/v2/users")
            .json(&new_user("ann@example.com"));
        let error = request.send().await.unwrap_err();
        assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
        assert!(tenant.double.users().is_empty());
        assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 201);
    }

    #[tokio::test]
    async fn a_fault_lasts_for_its_times_calls_then_the_real_answer_returns() {
        let tenant = tenant().await;
        tenant
            .double
            .inject(Fault::status("get_user", 500).times(2));
        let path = "/api/v2/users/auth0%7Cmissing";
        let statuses = [
            tenant.get(path).await.0,
            tenant.get(path).await.0,
            tenant.get(path).await.0,
        ];
        assert_eq!(statuses, [500, 500, 404]);
        assert_eq!(tenant.double.calls("get_user"), 3);
    }

    #[tokio::test]
    async fn a_fault_body_and_headers_replace_the_defaults() {
        let tenant = tenant().await;
        let fault = Fault::status("search_users", 502)
            .with_body(json!("<html>Bad Gateway</html>"))
            .with_header("x-amzn-errortype", "GatewayError");
        tenant.double.inject(fault);
        let response = tenant
            .request(reqwest::Method::GET, "/api/v2/users")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
        assert_eq!(response.headers()["x-amzn-errortype"], "GatewayError");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(response.text().await.unwrap(), "<html>Bad Gateway</html>");
    }

    #[tokio::test]
    async fn a_token_fault_answers_the_oauth_error_shape() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        double.inject(Fault::status("token", 429));
        let (status, body) = post_token(&double, &Client::new(), &token_request(&double)).await;
        assert_eq!(status, 429);
        assert_eq!(body["error"], "too_many_requests");
        assert_eq!(double.token_requests(), 1);
    }

    // --- control API and lifecycle ---

    #[tokio::test]
    async fn the_control_api_seeds_users_takes_faults_reports_state_and_resets() {
        let tenant = tenant().await;
        let http = &tenant.http;
        let seed = json!({"email": "Seed@Example.com", "app_metadata": {"created_by": "x"}, "created_at": "2024-01-02T03:04:05.000Z"});
        let (status, seeded) = read(
            http.post(tenant.url("/__control/users"))
                .json(&seed)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(
            (seeded["email"].as_str(), seeded["created_at"].as_str()),
            (Some("seed@example.com"), Some("2024-01-02T03:04:05.000Z"))
        );

        let faults = json!([{"op": "create_user", "status": 500}, {"op": "get_user", "drop": true, "times": 2}]);
        let response = http
            .post(tenant.url("/__control/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(tenant.create(&new_user("ann@example.com")).await.0, 500);

        let (_, state) = read(
            http.get(tenant.url("/__control/state"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(state["users"].as_array().unwrap().len(), 1);
        assert_eq!(state["token_requests"], 1);
        assert_eq!(state["calls"]["create_user"], 1);
        assert_eq!(state["calls"]["search_users"], 0);
        assert_eq!(
            state["faults"],
            json!([{"op": "get_user", "status": null, "delay_ms": 0, "drop": true, "times": 2, "body": null, "headers": null}])
        );

        let cleared = http
            .delete(tenant.url("/__control/faults"))
            .send()
            .await
            .unwrap();
        assert_eq!(cleared.status(), 204);
        assert_eq!(tenant.get("/api/v2/users/auth0%7Cx").await.0, 404);

        assert_eq!(
            http.post(tenant.url("/__control/reset"))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert!(tenant.double.users().is_empty());
        assert_eq!(
            (
                tenant.double.token_requests(),
                tenant.double.calls("get_user")
            ),
            (0, 0)
        );
        assert_eq!(
            tenant.get("/api/v2/users/auth0%7Cx").await.0,
            404,
            "tokens survive a reset"
        );
    }

    #[tokio::test]
    async fn the_control_api_changes_the_rate_limit_and_secret() {
        let tenant = tenant().await;
        let change = json!({"rate_limit_per_sec": 0, "client_secret": "rotated"});
        let response = tenant
            .http
            .patch(tenant.url("/__control/config"))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(tenant.get("/api/v2/users").await.0, 429);
        let (status, _) =
            post_token(&tenant.double, &tenant.http, &token_request(&tenant.double)).await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn dropping_the_double_stops_its_server() {
        let double = Auth0Double::start(Auth0Config::default()).await.unwrap();
        let url = format!("{}/__control/state", double.base_url());
        drop(double);
        for _ in 0..50 {
            if Client::new().get(&url).send().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("still serving after drop");
    }
}
