//! Auth0 Management API client: cached M2M token, bounded retries on 429, errors that keep
//! the status and Auth0's message. The Auth0 behaviour it relies on: docs/auth0.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use crate::deadline::{Deadline, DeadlineExceeded};
use crate::domain::{Auth0UserId, Email, Role, TenantId, UserId};
use crate::metrics::{self, Metric};
use crate::secrets::{AppSecret, CachedSecret, SecretsError};

/// The `app_metadata.created_by` value that marks a user as ours; cleanup trusts nothing else.
pub const CREATED_BY_MARKER: &str = "atomic-user-provisioning";

/// Refresh the cached token this long before Auth0 would expire it.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);
const MAX_RATE_LIMIT_RETRIES: u32 = 2;
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

/// v3 search answers at most this many users a page.
pub const SEARCH_PAGE_SIZE: usize = 100;

/// The tags every Auth0 user we create carries in `app_metadata`, so orphans can be recognised
/// later: `{"created_by": CREATED_BY_MARKER, "tenant_id", "role", "db_user_id"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnershipTags {
    pub tenant_id: TenantId,
    pub role: Role,
    /// The `users` row this Auth0 user was made for.
    pub db_user_id: UserId,
}

impl Serialize for OwnershipTags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "created_by": CREATED_BY_MARKER,
            "tenant_id": self.tenant_id.to_string(),
            "role": self.role.as_str(),
            "db_user_id": self.db_user_id.to_string(),
        })
        .serialize(serializer)
    }
}

impl OwnershipTags {
    /// The tags in `app_metadata`, if it carries our marker and all of them parse.
    fn read(app_metadata: &serde_json::Value) -> Option<Self> {
        let text = |key: &str| app_metadata.get(key).and_then(serde_json::Value::as_str);
        (text("created_by")? == CREATED_BY_MARKER).then_some(())?;
        Some(Self {
            tenant_id: TenantId::parse(text("tenant_id")?).ok()?,
            role: Role::parse(text("role")?).ok()?,
            db_user_id: UserId::parse(text("db_user_id")?).ok()?,
        })
    }
}

/// A user as the Management API answers it, parsed once here: everything past the client
/// works on checked types.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth0User {
    pub id: Auth0UserId,
    pub email: Option<String>,
    /// As Auth0 holds it; cleanup compares it whole to see whether a user changed.
    pub app_metadata: serde_json::Value,
    /// `None` when Auth0 sent none we can read: such a user is never old enough to delete.
    pub created_at: Option<DateTime<Utc>>,
}

impl<'de> Deserialize<'de> for Auth0User {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            user_id: String,
            #[serde(default)]
            email: Option<String>,
            #[serde(default)]
            app_metadata: serde_json::Value,
            #[serde(default)]
            created_at: Option<String>,
        }
        let raw = Raw::deserialize(deserializer)?;
        Ok(Self {
            id: Auth0UserId::parse(&raw.user_id).map_err(serde::de::Error::custom)?,
            email: raw.email,
            created_at: raw
                .created_at
                .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
                .map(|at| at.with_timezone(&Utc)),
            app_metadata: raw.app_metadata,
        })
    }
}

impl Auth0User {
    /// True when this system created the user (it carries our marker).
    pub fn is_ours(&self) -> bool {
        self.app_metadata
            .get("created_by")
            .and_then(serde_json::Value::as_str)
            == Some(CREATED_BY_MARKER)
    }

    /// Our tags, when the user is ours and they all parse.
    pub fn tags(&self) -> Option<OwnershipTags> {
        OwnershipTags::read(&self.app_metadata)
    }

    /// The `users` row a user of ours was made for (read alone: the other tags may be old).
    pub fn db_user_id(&self) -> Option<UserId> {
        self.is_ours().then_some(())?;
        let id = self.app_metadata.get("db_user_id")?.as_str()?;
        UserId::parse(id).ok()
    }

    /// Created before `cutoff`, as far as Auth0 says.
    pub fn created_before(&self, cutoff: DateTime<Utc>) -> bool {
        self.created_at.is_some_and(|at| at < cutoff)
    }
}

pub struct NewAuth0User<'a> {
    pub email: &'a Email,
    pub password: &'a SecretString,
    pub tags: &'a OwnershipTags,
}

#[derive(Debug, thiserror::Error)]
pub enum Auth0Error {
    #[error("Auth0 refused our client credentials ({status}: {description})")]
    Credentials { status: u16, description: String },
    #[error("Auth0 answered {status} to {op}: {message}")]
    Api {
        op: &'static str,
        status: u16,
        message: String,
        error_code: Option<String>,
    },
    #[error("Auth0 kept rate-limiting {op} (429)")]
    RateLimited { op: &'static str },
    #[error("Auth0 did not answer {op} in time or at all")]
    Unreachable {
        op: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Auth0 sent an unexpected answer to {op}: {detail}")]
    Malformed { op: &'static str, detail: String },
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    #[error("the Auth0 credentials could not be read: {0}")]
    Secret(#[from] SecretsError),
}

impl Auth0Error {
    /// Without the request URL: `users-by-email` carries the address in its query string,
    /// and this error is logged and reported.
    fn unreachable(op: &'static str, source: reqwest::Error) -> Self {
        Self::Unreachable {
            op,
            source: source.without_url(),
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { status: 409, .. })
    }

    /// Whether Auth0 may have carried out the request although we got no usable answer
    /// (a timeout, a dropped connection, a 5xx). A refused token, a 4xx or a 429 means it did not.
    pub fn may_have_acted(&self) -> bool {
        match self {
            // The token request failed: the call itself was never sent.
            Self::Unreachable { op: "token", .. }
            | Self::Malformed { op: "token", .. }
            | Self::Api { op: "token", .. } => false,
            Self::Unreachable { .. } | Self::Malformed { .. } => true,
            Self::Api { status, .. } => *status >= 500,
            Self::Credentials { .. }
            | Self::RateLimited { .. }
            | Self::Deadline(_)
            | Self::Secret(_) => false,
        }
    }

    /// Auth0's message when it refused a password by its policy: a 400 whose message starts
    /// with the rule, `PasswordStrengthError: …`, `PasswordHistoryError: …`,
    /// `PasswordDictionaryError: …`, `PasswordNoUserInfoError: …`.
    pub fn password_policy_message(&self) -> Option<&str> {
        let Self::Api {
            status: 400,
            message,
            ..
        } = self
        else {
            return None;
        };
        let (rule, _) = message.split_once(':')?;
        (rule.starts_with("Password") && rule.ends_with("Error")).then_some(message.as_str())
    }

    /// Auth0 could not be reached or would not serve us now; as opposed to answering "no".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::RateLimited { .. }
                | Self::Deadline(_)
                | Self::Secret(_)
        )
    }
}

struct CachedToken {
    value: SecretString,
    refresh_after: Instant,
}

/// How much of the deadline a call may use.
#[derive(Clone, Copy)]
enum Budget {
    /// Normal work: keeps the compensation reserve untouched.
    Work,
    /// Compensation: may spend the reserve.
    Cleanup,
}

pub struct Auth0Client {
    http: reqwest::Client,
    /// Domain and credentials; re-read when Auth0 says the client secret was rotated.
    secret: Arc<CachedSecret<AppSecret>>,
    max_timeout: Duration,
    token: Mutex<Option<CachedToken>>,
    /// The last `x-ratelimit-remaining` and `x-ratelimit-reset` Auth0 sent (u64::MAX: none yet).
    quota: (AtomicU64, AtomicU64),
}

/// What the last Management API answer said about the tenant's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitQuota {
    pub remaining: u64,
    /// Epoch second at which the window resets.
    pub reset: u64,
}

impl Auth0Client {
    pub fn new(
        http: reqwest::Client,
        secret: Arc<CachedSecret<AppSecret>>,
        max_timeout: Duration,
    ) -> Self {
        Self {
            http,
            secret,
            max_timeout,
            token: Mutex::new(None),
            quota: (AtomicU64::new(u64::MAX), AtomicU64::new(0)),
        }
    }

    /// The rate-limit quota of the last answer, for callers that pace themselves (cleanup).
    pub fn last_quota(&self) -> Option<RateLimitQuota> {
        let remaining = self.quota.0.load(Ordering::Relaxed);
        (remaining != u64::MAX).then(|| RateLimitQuota {
            remaining,
            reset: self.quota.1.load(Ordering::Relaxed),
        })
    }

    fn note_quota(&self, response: &Response) {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(remaining), Some(reset)) =
            (header("x-ratelimit-remaining"), header("x-ratelimit-reset"))
        {
            self.quota.1.store(reset, Ordering::Relaxed);
            self.quota.0.store(remaining, Ordering::Relaxed);
        }
    }

    #[tracing::instrument(skip_all, fields(op = "create_user"))]
    pub async fn create_user(
        &self,
        user: &NewAuth0User<'_>,
        deadline: &Deadline,
    ) -> Result<Auth0UserId, Auth0Error> {
        /// `POST /api/v2/users`, written straight from the borrowed fields.
        #[derive(Serialize)]
        struct Body<'a> {
            connection: &'a str,
            email: &'a str,
            password: &'a str,
            email_verified: bool,
            // We send our own password-setup email; Auth0's would confuse the user.
            verify_email: bool,
            app_metadata: &'a OwnershipTags,
        }
        /// Of the user Auth0 answers, create-user needs the id alone; the rest is skipped
        /// unread.
        #[derive(Deserialize)]
        struct Created {
            user_id: String,
        }
        let secret = self.secret.get().await?;
        let body = Body {
            connection: &secret.auth0.connection,
            email: user.email.as_str(),
            password: user.password.expose_secret(),
            email_verified: true,
            verify_email: false,
            app_metadata: user.tags,
        };
        let response = self
            .call("create_user", deadline, Budget::Work, |http, base| {
                http.post(endpoint(base, &["api", "v2", "users"]))
                    .json(&body)
            })
            .await?;
        let created: Created = expect_json("create_user", StatusCode::CREATED, response).await?;
        Auth0UserId::parse(&created.user_id).map_err(|err| Auth0Error::Malformed {
            op: "create_user",
            detail: err.to_string(),
        })
    }

    /// Immediately consistent (unlike search): the way to read our own write.
    #[tracing::instrument(skip_all, fields(op = "users_by_email"))]
    pub async fn users_by_email(
        &self,
        email: &Email,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        let response = self
            .call("users_by_email", deadline, Budget::Cleanup, |http, base| {
                http.get(endpoint(base, &["api", "v2", "users-by-email"]))
                    .query(&[("email", email.as_str())])
            })
            .await?;
        expect_json("users_by_email", StatusCode::OK, response).await
    }

    #[tracing::instrument(skip_all, fields(op = "update_user"))]
    pub async fn set_tags(
        &self,
        id: &Auth0UserId,
        tags: &OwnershipTags,
        deadline: &Deadline,
    ) -> Result<Auth0User, Auth0Error> {
        let body = serde_json::json!({ "app_metadata": tags });
        let response = self
            .call("update_user", deadline, Budget::Work, |http, base| {
                http.patch(endpoint(base, &["api", "v2", "users", id.as_str()]))
                    .json(&body)
            })
            .await?;
        expect_json("update_user", StatusCode::OK, response).await
    }

    /// Idempotent: Auth0 answers 204 whether or not the user exists.
    #[tracing::instrument(skip_all, fields(op = "delete_user"))]
    pub async fn delete_user(
        &self,
        id: &Auth0UserId,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        let response = self
            .call("delete_user", deadline, Budget::Cleanup, |http, base| {
                http.delete(endpoint(base, &["api", "v2", "users", id.as_str()]))
            })
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(api_error("delete_user", response).await),
        }
    }

    /// Sets the password of a database-connection user. A password Auth0's policy refuses
    /// is a 400 whose message names the rule ([`Auth0Error::password_policy_message`]).
    #[tracing::instrument(skip_all, fields(op = "set_password"))]
    pub async fn set_password(
        &self,
        id: &Auth0UserId,
        password: &SecretString,
        deadline: &Deadline,
    ) -> Result<(), Auth0Error> {
        let connection = self.secret.get().await?.auth0.connection.clone();
        let body = serde_json::json!({
            "password": password.expose_secret(),
            "connection": connection,
        });
        let response = self
            .call("update_user", deadline, Budget::Work, |http, base| {
                http.patch(endpoint(base, &["api", "v2", "users", id.as_str()]))
                    .json(&body)
            })
            .await?;
        expect_json::<Auth0User>("update_user", StatusCode::OK, response)
            .await
            .map(|_| ())
    }

    /// Sends with a cached token; waits out 429s (bounded) and renews a rejected token once.
    /// `build` gets the Auth0 base URL, which comes from the (rotatable) app secret.
    async fn call(
        &self,
        op: &'static str,
        deadline: &Deadline,
        budget: Budget,
        build: impl Fn(&reqwest::Client, &Url) -> RequestBuilder,
    ) -> Result<Response, Auth0Error> {
        let mut rate_limited = 0;
        let mut token_renewed = false;
        loop {
            let timeout = match budget {
                Budget::Work => deadline.call_budget(self.max_timeout)?,
                Budget::Cleanup => deadline.cleanup_budget(self.max_timeout),
            };
            let token = self.token(deadline).await?;
            let base = self.secret.get().await?.auth0.base_url.clone();
            let response = build(&self.http, &base)
                .bearer_auth(token.expose_secret())
                .timeout(timeout)
                .send()
                .await
                .map_err(|source| Auth0Error::unreachable(op, source))?;
            self.note_quota(&response);
            match response.status() {
                StatusCode::TOO_MANY_REQUESTS => {
                    let wait = rate_limit_wait(&response, rate_limited);
                    tracing::warn!(op, wait_ms = wait.as_millis() as u64, "auth0 rate limited");
                    metrics::count(Metric::Auth0RateLimited, 1, None);
                    let affordable = deadline
                        .call_budget(self.max_timeout)
                        .is_ok_and(|b| b > wait);
                    if rate_limited >= MAX_RATE_LIMIT_RETRIES || !affordable {
                        return Err(Auth0Error::RateLimited { op });
                    }
                    rate_limited += 1;
                    tokio::time::sleep(wait).await;
                }
                StatusCode::UNAUTHORIZED if !token_renewed => {
                    tracing::warn!(op, "auth0 rejected the cached token; fetching a new one");
                    *self.token.lock().await = None;
                    token_renewed = true;
                }
                _ => return Ok(response),
            }
        }
    }

    /// One token per instance, shared by concurrent callers, renewed shortly before expiry.
    async fn token(&self, deadline: &Deadline) -> Result<SecretString, Auth0Error> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_after) {
            return Ok(token.value.clone());
        }
        let secret = self.secret.get().await?;
        let fresh = match self.fetch_token(&secret, deadline).await {
            // The client secret was rotated since we cached it: read it again, once.
            Err(Auth0Error::Credentials { status: 401, .. }) => {
                tracing::warn!("auth0 refused the cached client secret; re-reading the app secret");
                let secret = self.secret.refresh().await?;
                self.fetch_token(&secret, deadline).await?
            }
            other => other?,
        };
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    #[tracing::instrument(skip_all, fields(op = "token"))]
    async fn fetch_token(
        &self,
        secret: &AppSecret,
        deadline: &Deadline,
    ) -> Result<CachedToken, Auth0Error> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: String,
            expires_in: u64,
        }
        #[derive(Deserialize, Default)]
        struct TokenError {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let op = "token";
        let credentials = &secret.auth0;
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret.expose_secret(),
            "audience": credentials.audience,
        });
        let response = self
            .http
            .post(endpoint(&credentials.base_url, &["oauth", "token"]))
            .json(&body)
            .timeout(deadline.cleanup_budget(self.max_timeout))
            .send()
            .await
            .map_err(|source| Auth0Error::unreachable(op, source))?;
        let status = response.status();
        if status == StatusCode::OK {
            let token: TokenResponse = read_json(op, response).await?;
            tracing::info!(
                expires_in = token.expires_in,
                "auth0 management token fetched"
            );
            let lifetime =
                Duration::from_secs(token.expires_in).saturating_sub(TOKEN_REFRESH_MARGIN);
            return Ok(CachedToken {
                value: SecretString::from(token.access_token),
                refresh_after: Instant::now() + lifetime,
            });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            metrics::count(Metric::Auth0RateLimited, 1, None);
            return Err(Auth0Error::RateLimited { op });
        }
        let detail: TokenError = response.json().await.unwrap_or_default();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Auth0Error::Credentials {
                status: status.as_u16(),
                description: format!("{}: {}", detail.error, detail.error_description),
            });
        }
        Err(Auth0Error::Api {
            op,
            status: status.as_u16(),
            message: detail.error_description,
            error_code: Some(detail.error).filter(|e| !e.is_empty()),
        })
    }

    // --- used by the cleanup reconciler ---

    /// One page (at most [`SEARCH_PAGE_SIZE`]) of users carrying `app_metadata.created_by == created_by`,
    /// created in `[from, before)`, oldest first, via v3 search. Search is eventually
    /// consistent and never pages past 1,000 results: callers narrow `from` instead of paging.
    /// `from: None` is open.
    #[tracing::instrument(skip_all, fields(op = "search_users", page = page))]
    pub async fn search_users_created_between(
        &self,
        created_by: &str,
        from: Option<DateTime<Utc>>,
        before: DateTime<Utc>,
        page: u32,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        // Auth0 writes its timestamps with milliseconds and `Z`; the range uses the same form.
        let stamp = |at: DateTime<Utc>| quoted(&at.to_rfc3339_opts(SecondsFormat::Millis, true));
        let query = format!(
            "app_metadata.created_by:{} AND created_at:[{} TO {}}}",
            quoted(created_by),
            from.map_or_else(|| "*".to_string(), stamp),
            stamp(before),
        );
        self.search(&query, page, Some("created_at:1"), deadline)
            .await
    }

    /// One page (at most [`SEARCH_PAGE_SIZE`]) of the users with any of `emails`, through v3
    /// search: one call for many addresses where `users-by-email` takes one each. Search is
    /// eventually consistent, so callers ask only about users old enough to be indexed and
    /// re-read a user before they change it.
    #[tracing::instrument(skip_all, fields(op = "search_users", emails = emails.len(), page = page))]
    pub async fn search_users_with_emails(
        &self,
        emails: &[&str],
        page: u32,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        let any_of: Vec<String> = emails
            .iter()
            .map(|email| format!("email:{}", quoted(email)))
            .collect();
        let query = format!("({})", any_of.join(" OR "));
        self.search(&query, page, None, deadline).await
    }

    /// One page of a v3 search (`q` in Lucene syntax), at most [`SEARCH_PAGE_SIZE`] users.
    async fn search(
        &self,
        query: &str,
        page: u32,
        sort: Option<&str>,
        deadline: &Deadline,
    ) -> Result<Vec<Auth0User>, Auth0Error> {
        #[derive(Deserialize)]
        struct SearchPage {
            users: Vec<Auth0User>,
        }
        let page = page.to_string();
        let per_page = SEARCH_PAGE_SIZE.to_string();
        let response = self
            .call("search_users", deadline, Budget::Cleanup, |http, base| {
                let request = http.get(endpoint(base, &["api", "v2", "users"])).query(&[
                    ("q", query),
                    ("search_engine", "v3"),
                    ("per_page", per_page.as_str()),
                    ("page", page.as_str()),
                    ("include_totals", "true"),
                ]);
                match sort {
                    Some(sort) => request.query(&[("sort", sort)]),
                    None => request,
                }
            })
            .await?;
        let found: SearchPage = expect_json("search_users", StatusCode::OK, response).await?;
        Ok(found.users)
    }

    /// The user as it is now (unlike search, immediately consistent); `None` if there is none.
    #[tracing::instrument(skip_all, fields(op = "get_user"))]
    pub async fn get_user(
        &self,
        id: &Auth0UserId,
        deadline: &Deadline,
    ) -> Result<Option<Auth0User>, Auth0Error> {
        let response = self
            .call("get_user", deadline, Budget::Cleanup, |http, base| {
                http.get(endpoint(base, &["api", "v2", "users", id.as_str()]))
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_json("get_user", StatusCode::OK, response)
            .await
            .map(Some)
    }
}

/// A Lucene phrase: quoted, with `\` and `"` escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `base` + path segments, each percent-encoded (user ids hold a `|`).
fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("an http(s) base URL has path segments")
        .pop_if_empty()
        .extend(segments);
    url
}

/// Retry-After if given, else the x-ratelimit-reset epoch, else exponential backoff; capped, jittered.
fn rate_limit_wait(response: &Response, attempt: u32) -> Duration {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let base = header("retry-after")
        .map(Duration::from_secs)
        .or_else(|| {
            header("x-ratelimit-reset").map(|reset| Duration::from_secs(reset.saturating_sub(now)))
        })
        .unwrap_or(Duration::from_millis(250 * 2u64.pow(attempt)));
    let jitter = Duration::from_millis(rand::rng().random_range(0..100));
    base.min(MAX_RATE_LIMIT_WAIT) + jitter
}

async fn expect_json<T: serde::de::DeserializeOwned>(
    op: &'static str,
    expected: StatusCode,
    response: Response,
) -> Result<T, Auth0Error> {
    if response.status() == expected {
        read_json(op, response).await
    } else {
        Err(api_error(op, response).await)
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    op: &'static str,
    response: Response,
) -> Result<T, Auth0Error> {
    let bytes = response
        .bytes()
        .await
        .map_err(|source| Auth0Error::unreachable(op, source))?;
    serde_json::from_slice(&bytes).map_err(|e| Auth0Error::Malformed {
        op,
        detail: crate::telemetry::json_error_reason(&e),
    })
}

/// Keeps Auth0's status, message and errorCode (`{"statusCode","error","message","errorCode"}`).
async fn api_error(op: &'static str, response: Response) -> Auth0Error {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        message: String,
        #[serde(default)]
        error_code: Option<String>,
    }
    let status = response.status().as_u16();
    let body: Body = response.json().await.unwrap_or_default();
    Auth0Error::Api {
        op,
        status,
        message: body.message,
        error_code: body.error_code,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_user_is_parsed_once_into_checked_types_and_our_tags_round_trip() {
        let tags = OwnershipTags {
            tenant_id: TenantId::new(Uuid::new_v4()),
            role: Role::Admin,
            db_user_id: UserId::new(Uuid::new_v4()),
        };
        let answer = json!({
            "user_id": "auth0|65f0c0ffee0000000000beef",
            "email": "ann@acme.test",
            "created_at": "2026-11-24T10:00:00.123Z",
            "app_metadata": tags,
        });
        let user: Auth0User = serde_json::from_value(answer).unwrap();
        assert_eq!(user.id.as_str(), "auth0|65f0c0ffee0000000000beef");
        assert!(user.is_ours());
        assert_eq!(user.tags(), Some(tags.clone()));
        assert_eq!(user.db_user_id(), Some(tags.db_user_id));
        let created = user.created_at.unwrap();
        assert!(user.created_before(created + chrono::Duration::milliseconds(1)));
        assert!(!user.created_before(created));
        assert_eq!(user.app_metadata["created_by"], CREATED_BY_MARKER);
    }

    #[test]
    fn a_foreign_user_has_no_tags_and_a_malformed_id_is_refused() {
        let foreign: Auth0User = serde_json::from_value(json!({
            "user_id": "google-oauth2|1234",
            "app_metadata": {"created_by": "someone-else", "db_user_id": Uuid::new_v4()},
        }))
        .unwrap();
        assert!(!foreign.is_ours() && foreign.tags().is_none() && foreign.db_user_id().is_none());
        assert!(
            !foreign.created_before(Utc::now()),
            "no created_at: never old enough"
        );
        assert!(serde_json::from_value::<Auth0User>(json!({"user_id": "no-provider"})).is_err());
    }
}
