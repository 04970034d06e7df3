//! What a cleanup run reports: the invocation's JSON answer, and the same as one log line.
//! Addresses appear only redacted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// At most this many entries in `skipped` and `errors`; the rest are only counted, so the
/// answer and the log line stay far below Lambda's and CloudWatch's size limits.
pub const MAX_LISTED: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSummary {
    /// "schedule" or "manual".
    pub trigger: String,
    /// "all", or the redacted address of a manual run.
    pub scope: String,
    pub dry_run: bool,
    /// The run stopped early (deadline, Auth0 rate limit); the rest is left for the next run.
    pub partial: bool,
    pub found: Counts,
    pub removed: Counts,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<Failure>,
    /// Dependencies that could not be reached or refused us, so their part of the run was not
    /// done at all. Not empty: the invocation fails with `DependencyUnavailable`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<Dependency>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_not_listed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors_not_listed: u64,
    /// Management API calls this run started (Auth0's own 429 retries not counted).
    #[serde(default)]
    pub auth0_calls: u64,
    /// Time spent waiting for the Auth0 budget (ceiling and rate-limit reserve).
    #[serde(default)]
    pub auth0_wait_ms: u64,
    /// create-user's stored `Idempotency-Key` answers past their time, deleted (a dry run:
    /// found). Only a run over everything purges them: keys belong to tenants, not addresses.
    #[serde(default)]
    pub expired_idempotency_keys: u64,
    /// Where the Auth0 sweep stands after this run; only in a run over everything that swept
    /// (not when another run held the sweep, nor for one address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth0_sweep: Option<SweepReport>,
    pub duration_ms: u64,
}

/// The Auth0 sweep of one run (docs/cleanup.md, "The Auth0 sweep").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// The incremental pass has checked every tagged user created before this (after the run).
    pub watermark: Option<DateTime<Utc>>,
    /// How far the watermark is behind now: the grace period and the time since the last run
    /// when all is well.
    pub watermark_lag_seconds: u64,
    /// Searches of the incremental pass in this run.
    pub new_searches: u64,
    /// Users earlier runs could not settle, looked at again by id.
    pub rechecked: u64,
    /// Users this run could not settle (address busy, Auth0 failing, changed since the
    /// search), left for the next runs to look at again.
    pub retries_added: u64,
    pub full_pass: FullPassReport,
}

/// The full pass's round: every tagged user older than the watermark, a slice per run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullPassReport {
    /// Which round (1 for the first).
    pub round: u64,
    /// When the round began.
    pub started_at: Option<DateTime<Utc>>,
    /// Where this run began in the round: every tagged user created before it had been
    /// visited by the round (none: at its start).
    pub from: Option<DateTime<Utc>>,
    /// Where this run left it (none: at the start of a round, or the round is complete).
    pub cursor: Option<DateTime<Utc>>,
    /// Searches the pace asked of this run (the rest of the round over the runs left before it
    /// is due; the first round goes as fast as the cap allows).
    pub due_searches: u64,
    pub searches: u64,
    /// Users the round has visited so far.
    pub visited: u64,
    /// About how much of the round is done (users visited against rows in `users`); none
    /// when the full pass did not run (the new users took the run).
    pub percent_done: Option<u64>,
    /// This run finished the round; the next run begins another.
    pub completed: bool,
    /// Seconds since the round began (0 when this run completed it): the users it has not
    /// reached yet were last visited at least this long ago. Above the period, it is late.
    pub lag_seconds: u64,
    pub period_seconds: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One number per kind of leftover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// `users` rows still `pending_…` after the grace period.
    pub db_orphans: u64,
    /// Auth0 users we tagged that carry a database orphan's address.
    pub auth0_users_of_db_orphans: u64,
    /// Auth0 users we tagged, past the grace period, that no row refers to.
    pub auth0_orphans: u64,
    /// Reset tokens expired or used longer ago than the retention period.
    pub reset_tokens: u64,
    /// Employees linked to a database orphan; they are unlinked, never deleted.
    pub employees_unlinked: u64,
    /// Lifecycle intents past the grace period: operations that did not finish, whose Auth0
    /// user is made to match the row (removed: converged).
    #[serde(default)]
    pub intents: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A lifecycle intent left behind.
    Intent,
    DbOrphan,
    Auth0Orphan,
    Auth0Sweep,
    ResetTokens,
    IdempotencyKeys,
    Run,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    /// No connection: unreachable, or it refused our credentials.
    Database,
    /// It refused our client credentials, they could not be read, or its token endpoint
    /// could not be reached.
    Auth0,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// An Auth0 user with the row's address exists and does not carry our tag: a person decides.
    Auth0UserNotOurs,
    /// The row's address is not one Auth0 could hold; a person decides.
    InvalidEmail,
    /// Another run holds the Auth0 sweep lock and is doing this work right now.
    SweepRunningElsewhere,
    /// Between the search and the delete the Auth0 user changed (re-tagged, adopted, untagged).
    ChangedSinceSearch,
    /// A create-user (or another run) holds the address's lock: it may be adopting this
    /// Auth0 user right now. The next run looks again.
    AddressBusy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub kind: Kind,
    /// A database user id or an Auth0 user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The error and its causes, with anything that looks like an address redacted.
    pub error: String,
}

impl CleanupSummary {
    pub fn skip(&mut self, entry: Skipped) {
        if self.skipped.len() < MAX_LISTED {
            self.skipped.push(entry);
        } else {
            self.skipped_not_listed += 1;
        }
    }

    pub fn fail(&mut self, entry: Failure) {
        if self.errors.len() < MAX_LISTED {
            self.errors.push(entry);
        } else {
            self.errors_not_listed += 1;
        }
    }

    /// The one log line of a run: the counts as fields to filter on, the whole summary as JSON.
    pub fn log(&self) {
        let summary = serde_json::to_string(self).unwrap_or_default();
        let (found, removed) = (self.found, self.removed);
        tracing::info!(
            step = "cleanup_summary",
            trigger = %self.trigger,
            scope = %self.scope,
            dry_run = self.dry_run,
            partial = self.partial,
            unavailable = ?self.unavailable,
            found.db_orphans = found.db_orphans,
            found.auth0_orphans = found.auth0_orphans,
            found.reset_tokens = found.reset_tokens,
            removed.db_orphans = removed.db_orphans,
            removed.auth0_users_of_db_orphans = removed.auth0_users_of_db_orphans,
            removed.auth0_orphans = removed.auth0_orphans,
            removed.reset_tokens = removed.reset_tokens,
            removed.employees_unlinked = removed.employees_unlinked,
            skipped = self.skipped.len() as u64 + self.skipped_not_listed,
            errors = self.errors.len() as u64 + self.errors_not_listed,
            auth0_calls = self.auth0_calls,
            auth0_wait_ms = self.auth0_wait_ms,
            sweep.watermark_lag_s = self.auth0_sweep.as_ref().map(|s| s.watermark_lag_seconds),
            sweep.full_pass_lag_s = self.auth0_sweep.as_ref().map(|s| s.full_pass.lag_seconds),
            sweep.full_pass_percent = self.auth0_sweep.as_ref().and_then(|s| s.full_pass.percent_done),
            duration_ms = self.duration_ms,
            summary = %summary,
            "cleanup finished"
        );
    }
}

/// An error with its causes, every word containing `@` masked like `j***@example.com`.
pub fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
    redact_addresses(&crate::telemetry::error_chain(err))
}

fn redact_addresses(text: &str) -> String {
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-'".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    text.split(' ')
        .map(|word| {
            let Some(at) = word.find('@') else {
                return word.to_string();
            };
            let start = word[..at].rfind(|c: char| !local(c)).map_or(0, |i| i + 1);
            let end = word[at + 1..]
                .find(|c: char| !domain(c))
                .map_or(word.len(), |i| at + 1 + i);
            let masked = crate::domain::redact_email(&word[start..end]);
            format!("{}{masked}{}", &word[..start], &word[end..])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_inside_error_messages_are_redacted() {
        assert_eq!(
            redact_addresses("Key (lower(email))=(jane@example.com) already exists"),
            "Key (lower(email))=(j***@example.com) already exists"
        );
        assert_eq!(
            redact_addresses("user <bob.smith@example.com>, gone"),
            "user <b***@example.com>, gone"
        );
    }

    #[test]
    fn long_lists_are_capped_and_the_rest_counted() {
        let mut summary = CleanupSummary::default();
        for _ in 0..MAX_LISTED + 3 {
            summary.skip(Skipped {
                kind: Kind::DbOrphan,
                id: None,
                email: None,
                reason: SkipReason::InvalidEmail,
            });
        }
        assert_eq!(summary.skipped.len(), MAX_LISTED);
        assert_eq!(summary.skipped_not_listed, 3);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["skippedNotListed"], 3);
        assert!(json.get("errorsNotListed").is_none());
    }
}
