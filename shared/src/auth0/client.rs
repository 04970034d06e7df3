//! The client itself: its token cache, the one way a request goes out (`call`: 429 waits,
//! token renewal, quota tracking) and reading the answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::{Auth0Error, Op, RateLimitQuota};
use crate::deadline::Deadline;
use crate::metrics::{self, Metric};
use crate::secrets::{AppSecret, CachedSecret};

/// Refresh the cached token this long before Auth0 would expire it.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);
const MAX_RATE_LIMIT_RETRIES: u32 = 2;
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(2);

struct CachedToken {
    value: SecretString,
    refresh_after: Instant,
}

/// How much of the deadline a call may use.
#[derive(Clone, Copy)]
pub enum Budget {
    /// Normal work: keeps the compensation reserve untouched.
    Work,
    /// Compensation (undoing a change) and clean-up: may spend the reserve.
    Cleanup,
}

pub struct Auth0Client {
    http: reqwest::Client,
    /// Domain and credentials; re-read when Auth0 says the client secret was rotated.
    pub(super) secret: Arc<CachedSecret<AppSecret>>,
    max_timeout: Duration,
    token: Mutex<Option<CachedToken>>,
    /// The last `x-ratelimit-remaining` and `x-ratelimit-reset` Auth0 sent (u64::MAX: none yet).
    quota: (AtomicU64, AtomicU64),
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
    /// Sends with a cached token; waits out 429s (bounded) and renews a rejected token once.
    /// `build` gets the Auth0 base URL, which comes from the (rotatable) app secret.
    pub(super) async fn call(
        &self,
        op: Op,
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
                    tracing::warn!(
                        op = op.as_str(),
                        wait_ms = wait.as_millis() as u64,
                        "auth0 rate limited"
                    );
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
                    tracing::warn!(
                        op = op.as_str(),
                        "auth0 rejected the cached token; fetching a new one"
                    );
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
        let op = Op::Token;
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
}

/// `base` + path segments, each percent-encoded (user ids hold a `|`).
pub(super) fn endpoint(base: &Url, segments: &[&str]) -> Url {
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

pub(super) async fn expect_json<T: serde::de::DeserializeOwned>(
    op: Op,
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
    op: Op,
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
pub(super) async fn api_error(op: Op, response: Response) -> Auth0Error {
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
