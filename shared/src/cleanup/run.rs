//! One cleanup run: three passes, each bounded, each safe beside another run.
//!
//! 1. Database orphans: `pending_` rows past the grace period, locked in batches with
//!    `FOR UPDATE SKIP LOCKED`; their tagged Auth0 users are deleted, then the row.
//! 2. Auth0 orphans: tagged users past the grace period that no row refers to; one run at a
//!    time (transaction-scoped advisory lock).
//! 3. Reset tokens expired or used longer ago than the retention period.
//!
//! A failure on one user is recorded and the run goes on. Auth0 refusing us (429 after the
//! client's own waiting, rejected credentials) stops the Auth0 work; the deadline stops
//! everything. Either way the summary says `partial` and the next run picks up the rest.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::request::CleanupRequest;
use super::summary::{CleanupSummary, Failure, Kind, SkipReason, Skipped, describe_error};
use crate::auth0::{Auth0Error, Auth0User, CREATED_BY_MARKER};
use crate::config::CleanupSettings;
use crate::db::Bound;
use crate::db::cleanup::{self as queries, BatchCursor, PendingRow};
use crate::deadline::Deadline;
use crate::domain::{Email, redact_email};
use crate::metrics::{self, Metric};
use crate::state::AppState;

/// Below this much time before the stop line, no new step is started.
const MIN_STEP: Duration = Duration::from_millis(200);
/// v3 search answers at most 100 users a page.
const SEARCH_PAGE: usize = 100;
/// v3 search never pages past 1,000 results.
const SEARCH_MAX_PAGES: u32 = 10;
/// Kept back from the Lambda deadline to post the summary.
const ANSWER_TIME: Duration = Duration::from_millis(250);
/// Reset tokens deleted per statement.
const TOKEN_BATCH: usize = 1_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    run.database_orphans().await;
    run.auth0_orphans().await;
    run.reset_tokens().await;
    let mut summary = run.summary;
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
    }
    summary
}

struct Run<'a> {
    state: &'a AppState,
    request: &'a CleanupRequest,
    settings: &'a CleanupSettings,
    /// The Lambda deadline minus the margin; every Auth0 call is bounded by it.
    stop_at: Deadline,
    /// The Lambda deadline minus the time to send the summary: work already under way
    /// finishes (in the margin) by then at the latest.
    answer_by: Deadline,
    /// Auth0 will not serve us in this run (rate limit, credentials): skip what needs it.
    auth0_halted: bool,
    summary: CleanupSummary,
}

/// What became of one pending row inside its batch transaction.
enum RowOutcome {
    Deleted { employees_unlinked: u64 },
    Kept,
}

impl Run<'_> {
    /// Checkouts and new transactions end at the stop line, like every new step (a server
    /// that never answers included).
    fn db(&self) -> Bound {
        Bound::until(self.stop_at, &self.state.config.timeouts)
    }

    /// Statements of a transaction already under way, and its commit, may use the margin:
    /// that is what it is for.
    fn finishing_db(&self) -> Bound {
        Bound::until(self.answer_by, &self.state.config.timeouts)
    }

    fn dry_run(&self) -> bool {
        self.request.dry_run
    }

    fn email_scope(&self) -> Option<&Email> {
        self.request.scope.email()
    }

    /// False (and the run marked partial) once the stop line is near.
    fn time_left(&mut self) -> bool {
        if self.stop_at.remaining() < MIN_STEP {
            self.summary.partial = true;
            return false;
        }
        true
    }

    fn may_call_auth0(&mut self) -> bool {
        if self.auth0_halted {
            self.summary.partial = true;
            return false;
        }
        self.time_left()
    }

    fn fail(&mut self, kind: Kind, id: Option<String>, email: Option<String>, err: &BoxError) {
        let error = describe_error(err.as_ref());
        tracing::warn!(kind = ?kind, id, email, error = %error, "cleanup step failed");
        self.summary.fail(Failure {
            kind,
            id,
            email,
            error,
        });
    }

    fn skip(&mut self, kind: Kind, id: Option<String>, email: Option<String>, reason: SkipReason) {
        tracing::info!(kind = ?kind, id, email, reason = ?reason, "left alone");
        self.summary.skip(Skipped {
            kind,
            id,
            email,
            reason,
        });
    }

    /// Records an Auth0 failure, unless it only means the run is out of time.
    fn auth0_failed(
        &mut self,
        kind: Kind,
        id: Option<String>,
        email: Option<String>,
        err: Auth0Error,
    ) {
        let timed_out = matches!(
            err,
            Auth0Error::Unreachable { .. } | Auth0Error::Deadline(_)
        ) && self.stop_at.remaining() < MIN_STEP;
        if timed_out {
            tracing::info!(kind = ?kind, id, "stopped at the deadline");
            self.summary.partial = true;
            return;
        }
        // Every further call would be refused the same way: stop, leave the rest for later.
        if matches!(
            err,
            Auth0Error::RateLimited { .. } | Auth0Error::Credentials { .. } | Auth0Error::Secret(_)
        ) {
            self.auth0_halted = true;
            self.summary.partial = true;
        }
        self.fail(kind, id, email, &BoxError::from(err));
    }

    // --- 1. database orphans -------------------------------------------------------------

    async fn database_orphans(&mut self) {
        let mut after = None;
        while self.may_call_auth0() {
            match self.database_orphan_batch(after).await {
                Ok(Some(cursor)) => after = Some(cursor),
                Ok(None) => return,
                Err(err) => {
                    // The pass was abandoned: what it did not reach is left for the next run.
                    self.summary.partial = true;
                    return self.fail(Kind::DbOrphan, None, None, &err);
                }
            }
        }
    }

    /// One transaction: lock a batch, handle each row, commit. Returns where the next batch
    /// starts, or `None` when there is nothing more (or no time) for this run.
    async fn database_orphan_batch(
        &mut self,
        after: Option<BatchCursor>,
    ) -> Result<Option<BatchCursor>, BoxError> {
        let mut client = self.db().get(&self.state.pool).await?;
        let mut tx = self.db().on(client.transaction()).await?;
        let rows = self
            .finishing_db()
            .on(queries::lock_pending_batch(
                &tx,
                self.settings.grace_period,
                after,
                self.email_scope(),
                self.settings.batch_size,
            ))
            .await?;
        let (mut deleted, mut unlinked, mut finished) = (0, 0, true);
        for row in &rows {
            if !self.may_call_auth0() {
                finished = false;
                break;
            }
            if let RowOutcome::Deleted { employees_unlinked } =
                self.database_orphan(&mut tx, row).await
            {
                deleted += 1;
                unlinked += employees_unlinked;
            }
        }
        if self.dry_run() {
            self.finishing_db().on(tx.rollback()).await?;
        } else {
            self.finishing_db().on(tx.commit()).await?;
            // Counted only once committed: a failed commit leaves the rows for the next run.
            self.summary.removed.db_orphans += deleted;
            self.summary.removed.employees_unlinked += unlinked;
        }
        let more = finished && rows.len() == self.settings.batch_size;
        Ok(rows
            .last()
            .filter(|_| more)
            .map(|r| (r.created_at, r.id.uuid())))
    }

    async fn database_orphan(&mut self, tx: &mut Transaction<'_>, row: &PendingRow) -> RowOutcome {
        let kind = Kind::DbOrphan;
        let id = Some(row.id.to_string());
        let redacted = Some(redact_email(&row.email));
        self.summary.found.db_orphans += 1;
        self.summary.found.employees_unlinked += row.linked_employees as u64;
        let Ok(email) = Email::parse(&row.email) else {
            self.skip(kind, id, redacted, SkipReason::InvalidEmail);
            return RowOutcome::Kept;
        };
        let users = match self.state.auth0.users_by_email(&email, &self.stop_at).await {
            Ok(users) => users,
            Err(err) => {
                self.auth0_failed(kind, id, redacted, err);
                return RowOutcome::Kept;
            }
        };
        if users.iter().any(|u| !u.is_ours()) {
            self.skip(kind, id, redacted, SkipReason::Auth0UserNotOurs);
            return RowOutcome::Kept;
        }
        // A tagged user some row points at belongs to that row, whatever its address.
        let auth0_ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
        let claimed = match self
            .finishing_db()
            .on(queries::claimed(&*tx, &auth0_ids, &[]))
            .await
        {
            Ok(claimed) => claimed,
            Err(err) => {
                self.fail(kind, id, redacted, &err.into());
                return RowOutcome::Kept;
            }
        };
        let ours: Vec<_> = users
            .iter()
            .filter(|u| !claimed.auth0_subs.contains(&u.user_id))
            .filter_map(|u| u.id().ok())
            .collect();
        self.summary.found.auth0_users_of_db_orphans += ours.len() as u64;
        if self.dry_run() {
            return RowOutcome::Kept;
        }
        for auth0_id in &ours {
            if let Err(err) = self.state.auth0.delete_user(auth0_id, &self.stop_at).await {
                self.auth0_failed(kind, id, redacted, err);
                return RowOutcome::Kept;
            }
            self.summary.removed.auth0_users_of_db_orphans += 1;
            tracing::info!(kind = ?kind, user_id = ?id, auth0_user_id = %auth0_id, "auth0 user of a pending row deleted");
        }
        match self.finishing_db().on(delete_row(tx, row)).await {
            Ok(true) => {
                tracing::info!(kind = ?kind, user_id = ?id, email = ?redacted, "pending row deleted");
                RowOutcome::Deleted {
                    employees_unlinked: row.linked_employees as u64,
                }
            }
            Ok(false) => RowOutcome::Kept,
            Err(err) => {
                self.fail(kind, id, redacted, &err.into());
                RowOutcome::Kept
            }
        }
    }

    // --- 2. Auth0 orphans ----------------------------------------------------------------

    async fn auth0_orphans(&mut self) {
        if !self.may_call_auth0() {
            return;
        }
        if let Err(err) = self.auth0_sweep().await {
            self.summary.partial = true;
            self.fail(Kind::Auth0Sweep, None, None, &err);
        }
    }

    async fn auth0_sweep(&mut self) -> Result<(), BoxError> {
        let mut client = self.db().get(&self.state.pool).await?;
        let tx = self.db().on(client.transaction()).await?;
        // A dry run deletes nothing, so it neither needs nor blocks the lock.
        if !self.dry_run()
            && !self
                .finishing_db()
                .on(queries::try_lock_auth0_sweep(&tx))
                .await?
        {
            self.skip(
                Kind::Auth0Sweep,
                None,
                None,
                SkipReason::SweepRunningElsewhere,
            );
            return Ok(());
        }
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.settings.grace_period)
                .unwrap_or(chrono::Duration::MAX);
        match self.email_scope().cloned() {
            Some(email) => {
                let users = match self.state.auth0.users_by_email(&email, &self.stop_at).await {
                    Ok(users) => users,
                    Err(err) => {
                        let redacted = Some(email.redacted());
                        self.auth0_failed(Kind::Auth0Orphan, None, redacted, err);
                        return Ok(());
                    }
                };
                let candidates = users
                    .into_iter()
                    .filter(|u| u.is_ours() && created_before(u, cutoff))
                    .collect();
                self.auth0_orphan_page(&tx, candidates).await?;
            }
            None => self.search_everything(&tx, cutoff).await?,
        }
        // Nothing was written; ending the transaction releases the lock.
        self.finishing_db().on(tx.rollback()).await?;
        Ok(())
    }

    /// Keyset paging on `created_at`: every query starts at the newest timestamp seen so
    /// far (inclusive), so the 1,000-result cap is never reached and users deleted
    /// meanwhile cannot shift a page. Page numbers are used only while more than a page of
    /// users share one timestamp.
    async fn search_everything(
        &mut self,
        tx: &Transaction<'_>,
        cutoff: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let before = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut from: Option<String> = None;
        let mut page = 0;
        // Users at the `from` timestamp already handled (the next query returns them again).
        let mut seen: HashSet<String> = HashSet::new();
        while self.may_call_auth0() {
            let found = match self
                .state
                .auth0
                .search_users_created_between(
                    CREATED_BY_MARKER,
                    from.as_deref(),
                    &before,
                    page,
                    &self.stop_at,
                )
                .await
            {
                Ok(found) => found,
                Err(err) => {
                    self.auth0_failed(Kind::Auth0Sweep, None, None, err);
                    return Ok(());
                }
            };
            let full = found.len() == SEARCH_PAGE;
            let last = found.last().and_then(|u| u.created_at.clone());
            let at_last: Vec<String> = found
                .iter()
                .filter(|u| u.created_at.is_some() && u.created_at == last)
                .map(|u| u.user_id.clone())
                .collect();
            let candidates = found
                .into_iter()
                .filter(|u| !seen.contains(&u.user_id))
                .filter(|u| u.is_ours() && created_before(u, cutoff))
                .collect();
            self.auth0_orphan_page(tx, candidates).await?;
            if !full {
                return Ok(());
            }
            match last {
                Some(last) if from.as_deref() != Some(last.as_str()) => {
                    from = Some(last);
                    page = 0;
                    seen = at_last.into_iter().collect();
                }
                _ => {
                    page += 1;
                    seen.extend(at_last);
                    if page >= SEARCH_MAX_PAGES {
                        let err = format!(
                            "more than 1,000 tagged Auth0 users share created_at {}; the rest are left for the next run",
                            from.as_deref().unwrap_or("(none)")
                        );
                        self.summary.partial = true;
                        self.fail(Kind::Auth0Sweep, None, None, &err.into());
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the users of `candidates` that no row refers to, each re-read first (dry runs
    /// too, so they report the same): search is eventually consistent, and a user adopted
    /// meanwhile has new tags.
    async fn auth0_orphan_page(
        &mut self,
        tx: &Transaction<'_>,
        candidates: Vec<Auth0User>,
    ) -> Result<(), BoxError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let auth0_ids: Vec<String> = candidates.iter().map(|u| u.user_id.clone()).collect();
        let db_ids: Vec<Uuid> = candidates.iter().filter_map(tagged_db_user_id).collect();
        let claimed = self
            .finishing_db()
            .on(queries::claimed(tx, &auth0_ids, &db_ids))
            .await?;
        for user in candidates {
            let held = claimed.auth0_subs.contains(&user.user_id)
                || tagged_db_user_id(&user).is_some_and(|id| claimed.pending_ids.contains(&id));
            let Ok(auth0_id) = user.id() else { continue };
            if held {
                continue;
            }
            if !self.may_call_auth0() {
                return Ok(());
            }
            let kind = Kind::Auth0Orphan;
            let id = Some(user.user_id.clone());
            let email = user.email.as_deref().map(redact_email);
            match self.state.auth0.get_user(&auth0_id, &self.stop_at).await {
                Ok(None) => continue,
                Ok(Some(now)) if !now.is_ours() || now.app_metadata != user.app_metadata => {
                    self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                    continue;
                }
                Ok(Some(_)) => {}
                Err(err) => {
                    self.auth0_failed(kind, id, email, err);
                    continue;
                }
            }
            self.summary.found.auth0_orphans += 1;
            if self.dry_run() {
                continue;
            }
            match self.state.auth0.delete_user(&auth0_id, &self.stop_at).await {
                Ok(()) => {
                    self.summary.removed.auth0_orphans += 1;
                    tracing::info!(kind = ?kind, auth0_user_id = %auth0_id, email = ?email, "auth0 orphan deleted");
                }
                Err(err) => self.auth0_failed(kind, id, email, err),
            }
        }
        Ok(())
    }

    // --- 3. reset tokens -----------------------------------------------------------------

    async fn reset_tokens(&mut self) {
        if !self.time_left() {
            return;
        }
        if let Err(err) = self.purge_reset_tokens().await {
            self.summary.partial = true;
            self.fail(Kind::ResetTokens, None, None, &err);
        }
    }

    async fn purge_reset_tokens(&mut self) -> Result<(), BoxError> {
        let client = self.db().get(&self.state.pool).await?;
        let pg: &tokio_postgres::Client = &client;
        let retention = self.settings.token_retention;
        if self.dry_run() {
            self.summary.found.reset_tokens = self
                .db()
                .on(queries::count_purgeable_reset_tokens(
                    pg,
                    retention,
                    self.email_scope(),
                ))
                .await?;
            return Ok(());
        }
        loop {
            let purged = self
                .db()
                .on(queries::purge_reset_tokens(
                    pg,
                    retention,
                    self.email_scope(),
                    TOKEN_BATCH,
                ))
                .await?;
            self.summary.found.reset_tokens += purged;
            self.summary.removed.reset_tokens += purged;
            if purged < TOKEN_BATCH as u64 || !self.time_left() {
                return Ok(());
            }
        }
    }
}

/// In a savepoint, so a row that cannot be deleted does not abort the rest of the batch.
async fn delete_row(
    tx: &mut Transaction<'_>,
    row: &PendingRow,
) -> Result<bool, tokio_postgres::Error> {
    let savepoint = tx.savepoint("cleanup_row").await?;
    match queries::delete_pending(&savepoint, row.id).await {
        Ok(deleted) => {
            savepoint.commit().await?;
            Ok(deleted)
        }
        Err(err) => {
            savepoint.rollback().await?;
            Err(err)
        }
    }
}

/// Auth0's `created_at` is before `cutoff`; a user without a readable one is never old enough.
fn created_before(user: &Auth0User, cutoff: DateTime<Utc>) -> bool {
    user.created_at
        .as_deref()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| at < cutoff)
}

fn tagged_db_user_id(user: &Auth0User) -> Option<Uuid> {
    user.app_metadata
        .get("db_user_id")
        .and_then(|v| v.as_str())
        .and_then(|v| Uuid::parse_str(v).ok())
}
