//! What every Management API call goes through (fault, rate limit, bearer token and its scope,
//! then the work) and the fixed one-second rate-limit window behind the `x-ratelimit-*` headers.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::errors::{default_message, management_error, rate_limited};
use super::state::{App, Tenant};
use crate::doubles::faults;
use crate::doubles::server::Answer;

/// Limit reported in the rate-limit headers when no limit is configured.
const NOMINAL_RATE_LIMIT: u32 = 1000;

impl App {
    /// Runs one Management API call: fault, then rate limit, bearer token and `work`.
    pub(super) async fn management(
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
                Err(rate_limited())
            } else {
                let authorized = match required_scope(op) {
                    Some(scope) => tenant.authorize_scope(headers, now, scope),
                    None => tenant.authorize(headers, now),
                };
                authorized.and_then(|()| work(&mut tenant, now))
            };
            let mut response = answer.into_response();
            quota.stamp(&mut response);
            response
        })
        .await
    }
}

/// The scope a Management API operation needs in the caller's token (Auth0 also takes
/// narrower ones, such as `read:current_user`, which the double's clients never hold).
fn required_scope(op: &str) -> Option<&'static str> {
    match op {
        "create_user" => Some("create:users"),
        "get_user" | "users_by_email" | "search_users" => Some("read:users"),
        "update_user" => Some("update:users"),
        "delete_user" => Some("delete:users"),
        "revoke_sessions" => Some("delete:sessions"),
        "revoke_refresh_tokens" => Some("delete:refresh_tokens"),
        _ => None,
    }
}

impl Tenant {
    fn admit(&mut self, now: DateTime<Utc>) -> Quota {
        self.window.admit(now, self.config.rate_limit_per_sec)
    }

    /// A status fault's answer; a faulted 429 reports the window as used up.
    fn faulted_management(&self, status: StatusCode) -> Response {
        let now = Utc::now();
        let (body, quota) = if status == StatusCode::TOO_MANY_REQUESTS {
            let limit = self.config.rate_limit_per_sec.unwrap_or(NOMINAL_RATE_LIMIT);
            (rate_limited(), Quota::exhausted(limit, now))
        } else {
            let body = management_error(status, &default_message(status), None);
            (body, self.window.peek(now, self.config.rate_limit_per_sec))
        };
        let mut response = body.into_response();
        quota.stamp(&mut response);
        response
    }
}

#[derive(Default)]
pub(super) struct RateWindow {
    epoch_second: i64,
    used: u32,
}

pub(super) struct Quota {
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
    pub(super) fn exhausted(limit: u32, now: DateTime<Utc>) -> Quota {
        Quota {
            limit,
            remaining: 0,
            reset: now.timestamp() + 1,
            exceeded: true,
        }
    }

    pub(super) fn stamp(&self, response: &mut Response) {
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
