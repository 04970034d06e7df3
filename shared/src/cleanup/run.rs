//! One cleanup run: four passes, each bounded, each safe beside another run.
//!
//! 0. Lifecycle intents (`intents.rs`): operations on a user (update, deactivate, reactivate,
//!    delete) that did not finish; the Auth0 user is made to match the row.
//! 1. Database orphans (`database_orphans.rs`): `pending_` rows past the grace period, locked
//!    in batches with `FOR UPDATE SKIP LOCKED` together with their addresses (per-address
//!    lock); their tagged Auth0 users are deleted, then the rows in one statement.
//! 2. Auth0 orphans (`auth0_orphans.rs`): tagged users past the grace period that no row
//!    refers to; one run at a time (session advisory lock). The users created since the last
//!    run (a watermark), users earlier runs could not settle, and a slice of a full pass over
//!    everyone older, its cursor kept in Postgres. Each is re-checked and deleted under its
//!    address's lock, the lock create-user takes before it adopts such a user.
//! 3. Reset tokens expired or used longer ago than the retention period (`retention.rs`,
//!    which also purges expired idempotency keys).
//!
//! A failure on one user is recorded and the run goes on. Auth0 rate-limiting us (429 after
//! the client's own waiting) or the run's cap on Management API calls
//! (`CLEANUP_AUTH0_MAX_CALLS_PER_RUN`) stops the Auth0 work and the deadline stops everything: the
//! summary says `partial` and the next run picks up the rest. A database or an Auth0 that
//! cannot be reached or refuses our credentials is recorded in `unavailable`, which makes the
//! invocation fail (see `super::handle`).

use std::time::{Duration, Instant};

use deadpool_postgres::Object;

use super::budget::Auth0Budget;
use super::request::CleanupRequest;
use super::summary::{
    CleanupSummary, Dependency, Failure, Kind, SkipReason, Skipped, describe_error,
};
use crate::auth0::{Auth0Error, Op};
use crate::config::CleanupSettings;
use crate::db::{self, Bound, DbError};
use crate::deadline::Deadline;
use crate::domain::Email;
use crate::metrics::{self, Metric, Unit};
use crate::state::AppState;

/// Below this much time before the stop line, no new step is started.
const MIN_STEP: Duration = Duration::from_millis(200);
/// v3 search never pages past 1,000 results.
pub(super) const SEARCH_MAX_PAGES: u32 = 10;
/// Kept back from the Lambda deadline to post the summary.
const ANSWER_TIME: Duration = Duration::from_millis(250);

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs every pass the request asks for and returns (and logs) the summary.
pub async fn run(
    state: &AppState,
    request: &CleanupRequest,
    lambda_deadline: Deadline,
) -> CleanupSummary {
    let started = Instant::now();
    let settings = &state.config.cleanup;
    let mut run = Run {
        state,
        request,
        settings,
        stop_at: Deadline::after(
            lambda_deadline
                .remaining()
                .saturating_sub(settings.deadline_margin),
        ),
        answer_by: Deadline::after(lambda_deadline.remaining().saturating_sub(ANSWER_TIME)),
        auth0_halted: false,
        budget: Auth0Budget::new(settings.auth0_interval, settings.auth0_reserve),
        summary: CleanupSummary {
            trigger: request.trigger.as_str().into(),
            scope: request.scope.describe(),
            dry_run: request.dry_run,
            ..CleanupSummary::default()
        },
    };
    tracing::info!(
        step = "cleanup_start",
        trigger = request.trigger.as_str(),
        scope = %request.scope.describe(),
        dry_run = request.dry_run,
        grace_period_s = settings.grace_period.as_secs(),
        "cleanup started"
    );
    run.lifecycle_intents().await;
    run.database_orphans().await;
    run.auth0_orphans().await;
    run.reset_tokens().await;
    let mut summary = run.summary;
    summary.auth0_calls = run.budget.calls();
    summary.auth0_wait_ms = run.budget.waited_ms();
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary.log();
    if !summary.dry_run {
        // What template.yaml's alarm watches; a dry run would count the same orphans twice.
        let (found, removed) = (summary.found, summary.removed);
        for (kind, found, removed) in [
            ("database", found.db_orphans, removed.db_orphans),
            ("auth0", found.auth0_orphans, removed.auth0_orphans),
        ] {
            metrics::count(Metric::OrphansFound, found, Some(("Kind", kind)));
            metrics::count(Metric::OrphansRemoved, removed, Some(("Kind", kind)));
        }
        metrics::count(Metric::CleanupAuth0Calls, summary.auth0_calls, None);
        // What template.yaml's sweep alarms watch.
        if let Some(sweep) = &summary.auth0_sweep {
            let full = &sweep.full_pass;
            metrics::gauge(
                Metric::SweepWatermarkLag,
                sweep.watermark_lag_seconds,
                Unit::Seconds,
            );
            metrics::gauge(Metric::FullPassLag, full.lag_seconds, Unit::Seconds);
            if let Some(percent) = full.percent_done {
                metrics::gauge(Metric::FullPassDone, percent, Unit::Percent);
            }
        }
    }
    summary
}

pub(super) struct Run<'a> {
    pub(super) state: &'a AppState,
    request: &'a CleanupRequest,
    pub(super) settings: &'a CleanupSettings,
    /// The Lambda deadline minus the margin; every Auth0 call is bounded by it.
    pub(super) stop_at: Deadline,
    /// The Lambda deadline minus the time to send the summary: work already under way
    /// finishes (in the margin) by then at the latest.
    answer_by: Deadline,
    /// Auth0 will not serve us in this run (rate limit, credentials): skip what needs it.
    pub(super) auth0_halted: bool,
    /// Paces every Management API call of the run.
    pub(super) budget: Auth0Budget,
    pub(super) summary: CleanupSummary,
}

impl Run<'_> {
    /// Checkouts and new transactions end at the stop line, like every new step (a server
    /// that never answers included).
    pub(super) fn db(&self) -> Bound {
        Bound::until(self.stop_at, &self.state.config.timeouts)
    }

    /// Statements of a transaction already under way, and its commit, may use the margin:
    /// that is what it is for.
    pub(super) fn finishing_db(&self) -> Bound {
        Bound::until(self.answer_by, &self.state.config.timeouts)
    }

    pub(super) fn dry_run(&self) -> bool {
        self.request.dry_run
    }

    pub(super) fn email_scope(&self) -> Option<&Email> {
        self.request.scope.email()
    }

    /// False (and the run marked partial) once the stop line is near.
    pub(super) fn time_left(&mut self) -> bool {
        if self.stop_at.remaining() < MIN_STEP {
            self.summary.partial = true;
            return false;
        }
        true
    }

    pub(super) fn may_call_auth0(&mut self) -> bool {
        self.may_make_calls(1)
    }

    /// False (and the run partial) unless Auth0 serves us, there is time, and the run's cap
    /// leaves `calls` more Management API calls: a step that needs several (a re-read and a
    /// delete) is not begun without room for all of them.
    pub(super) fn may_make_calls(&mut self, calls: u64) -> bool {
        if self.auth0_halted || self.calls_left() < calls {
            self.summary.partial = true;
            return false;
        }
        self.time_left()
    }

    /// Management API calls this run may still make (`CLEANUP_AUTH0_MAX_CALLS_PER_RUN`).
    pub(super) fn calls_left(&self) -> u64 {
        self.settings
            .auth0_calls_per_run
            .map_or(u64::MAX, |cap| cap.saturating_sub(self.budget.calls()))
    }

    /// Waits for the budget's next turn; false (and the run partial) if it comes too late or
    /// the run's cap is spent.
    pub(super) async fn pace(&mut self) -> bool {
        if self.calls_left() == 0 {
            self.summary.partial = true;
            return false;
        }
        if self.budget.spend(&self.state.auth0, &self.stop_at).await {
            return true;
        }
        self.summary.partial = true;
        false
    }

    pub(super) fn fail(
        &mut self,
        kind: Kind,
        id: Option<String>,
        email: Option<String>,
        err: &BoxError,
    ) {
        let error = describe_error(err.as_ref());
        tracing::warn!(kind = ?kind, id, email, error = %error, "cleanup step failed");
        self.summary.fail(Failure {
            kind,
            id,
            email,
            error,
        });
    }

    pub(super) fn skip(
        &mut self,
        kind: Kind,
        id: Option<String>,
        email: Option<String>,
        reason: SkipReason,
    ) {
        tracing::info!(kind = ?kind, id, email, reason = ?reason, "left alone");
        self.summary.skip(Skipped {
            kind,
            id,
            email,
            reason,
        });
    }

    /// Records an Auth0 failure, unless it only means the run is out of time. True when the
    /// run can make no more Auth0 calls (out of time, rate-limited, refused).
    pub(super) fn auth0_failed(
        &mut self,
        kind: Kind,
        id: Option<String>,
        email: Option<String>,
        err: Auth0Error,
    ) -> bool {
        let timed_out = matches!(
            err,
            Auth0Error::Unreachable { .. } | Auth0Error::Deadline(_)
        ) && self.stop_at.remaining() < MIN_STEP;
        if timed_out {
            tracing::info!(kind = ?kind, id, "stopped at the deadline");
            self.summary.partial = true;
            return true;
        }
        // Every further call would be refused the same way: stop, leave the rest for later.
        let refused = matches!(
            err,
            Auth0Error::Credentials { .. }
                | Auth0Error::Secret(_)
                | Auth0Error::Unreachable { op: Op::Token, .. }
        );
        if refused {
            self.unavailable(Dependency::Auth0);
        }
        if refused || matches!(err, Auth0Error::RateLimited { .. }) {
            self.auth0_halted = true;
            self.summary.partial = true;
        }
        self.fail(kind, id, email, &BoxError::from(err));
        self.auth0_halted
    }

    /// A dependency could not do its part of this run at all.
    fn unavailable(&mut self, dependency: Dependency) {
        if !self.summary.unavailable.contains(&dependency) {
            self.summary.unavailable.push(dependency);
        }
    }

    /// A connection for one pass; without one the database is unavailable to this run.
    pub(super) async fn connect(&mut self, kind: Kind) -> Option<Object> {
        let pool = &self.state.pool;
        let db = self.db();
        // A run is not latency-bound, so a pass checks its connection once: one that died
        // while the Lambda was frozen is replaced instead of ending the pass.
        let live = db::retry_on_lost_connection(
            pool,
            || async {
                let client = db.get(pool).await?;
                match db.on(client.simple_query("SELECT 1")).await {
                    Ok(_) => Ok(client),
                    Err(err) => {
                        if err.is_connection_lost() {
                            drop(Object::take(client));
                        }
                        Err(err)
                    }
                }
            },
            DbError::is_connection_lost,
        )
        .await;
        match live {
            Ok(client) => Some(client),
            // Out of time before the pass could start: the next run does it.
            Err(DbError::Deadline(_)) => {
                self.summary.partial = true;
                None
            }
            Err(err) => {
                self.unavailable(Dependency::Database);
                self.summary.partial = true;
                self.fail(kind, None, None, &err.into());
                None
            }
        }
    }
}
