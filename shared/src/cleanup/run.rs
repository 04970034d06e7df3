//! One cleanup run: three passes, each bounded, each safe beside another run.
//!
//! 1. Database orphans: `pending_` rows past the grace period, locked in batches with
//!    `FOR UPDATE SKIP LOCKED` together with their addresses (per-address lock); their tagged
//!    Auth0 users are deleted, then the rows in one statement.
//! 2. Auth0 orphans: tagged users past the grace period that no row refers to; one run at a
//!    time (session advisory lock). Each is re-checked and deleted under its address's lock,
//!    the lock create-user takes before it adopts such a user.
//! 3. Reset tokens expired or used longer ago than the retention period.
//!
//! A failure on one user is recorded and the run goes on. Auth0 rate-limiting us (429 after
//! the client's own waiting) stops the Auth0 work and the deadline stops everything: the
//! summary says `partial` and the next run picks up the rest. A database or an Auth0 that
//! cannot be reached or refuses our credentials is recorded in `unavailable`, which makes the
//! invocation fail (see `super::handle`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::Object;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::budget::Auth0Budget;
use super::request::CleanupRequest;
use super::summary::{
    CleanupSummary, Dependency, Failure, Kind, SkipReason, Skipped, describe_error,
};
use crate::auth0::{Auth0Error, Auth0User, CREATED_BY_MARKER, Op, SEARCH_PAGE_SIZE};
use crate::config::CleanupSettings;
use crate::db::cleanup::{self as queries, BatchCursor, Claimed, PendingRow};
use crate::db::{self, Bound, DbError, locks};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, UserId};
use crate::domain::{Email, redact_email};
use crate::metrics::{self, Metric};
use crate::state::AppState;

/// Below this much time before the stop line, no new step is started.
const MIN_STEP: Duration = Duration::from_millis(200);
/// v3 search never pages past 1,000 results.
const SEARCH_MAX_PAGES: u32 = 10;
/// Addresses asked about in one v3 search (the query stays a few kilobytes).
const EMAILS_PER_SEARCH: usize = 50;
/// Reset tokens deleted per statement.
const TOKEN_BATCH: usize = 1_000;
/// Kept back from the Lambda deadline to post the summary.
const ANSWER_TIME: Duration = Duration::from_millis(250);

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
    /// Paces every Management API call of the run.
    budget: Auth0Budget,
    summary: CleanupSummary,
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

    /// Waits for the budget's next turn; false (and the run partial) if it comes too late.
    async fn pace(&mut self) -> bool {
        if self.budget.spend(&self.state.auth0, &self.stop_at).await {
            return true;
        }
        self.summary.partial = true;
        false
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
    }

    /// A dependency could not do its part of this run at all.
    fn unavailable(&mut self, dependency: Dependency) {
        if !self.summary.unavailable.contains(&dependency) {
            self.summary.unavailable.push(dependency);
        }
    }

    /// A connection for one pass; without one the database is unavailable to this run.
    async fn connect(&mut self, kind: Kind) -> Option<Object> {
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

    // --- 1. database orphans -------------------------------------------------------------

    async fn database_orphans(&mut self) {
        if !self.may_call_auth0() {
            return;
        }
        let Some(mut client) = self.connect(Kind::DbOrphan).await else {
            return;
        };
        let mut after = None;
        while self.may_call_auth0() {
            match self.database_orphan_batch(&mut client, after).await {
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

    /// One transaction: lock a batch of rows and their addresses, ask Auth0 about each
    /// address, delete the Auth0 users no row holds, delete the rows in one statement, commit.
    /// Returns where the next batch starts, or `None` when there is nothing more (or no time).
    async fn database_orphan_batch(
        &mut self,
        client: &mut Object,
        after: Option<BatchCursor>,
    ) -> Result<Option<BatchCursor>, BoxError> {
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
        // A dry run deletes nothing, so it neither needs nor blocks the addresses.
        let busy = if self.dry_run() || rows.is_empty() {
            HashSet::new()
        } else {
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id.uuid()).collect();
            let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
            self.finishing_db()
                .on(locks::try_lock_addresses(&tx, &ids, &emails))
                .await?
        };
        let mut finished = true;
        let mut looked_up = Vec::new();
        // One search for many addresses instead of one users-by-email each.
        for chunk in rows.chunks(EMAILS_PER_SEARCH) {
            if !self.may_call_auth0() {
                finished = false;
                break;
            }
            let answers = self.look_up(chunk, &busy).await;
            if answers.iter().any(|a| matches!(a, Lookup::OutOfTime)) {
                self.summary.partial = true;
                finished = false;
            }
            for (row, answer) in chunk.iter().zip(answers) {
                if let Some(users) = self.auth0_users_of(row, answer) {
                    looked_up.push((row, users));
                }
            }
            if !finished {
                break;
            }
        }
        // A tagged user some row points at belongs to that row, whatever its address.
        let auth0_ids: Vec<String> = looked_up
            .iter()
            .flat_map(|(_, users)| users.iter().map(|u| u.id.as_str().to_string()))
            .collect();
        let claimed = if auth0_ids.is_empty() {
            Claimed::default()
        } else {
            self.finishing_db()
                .on(queries::claimed(&*tx, &auth0_ids, &[]))
                .await?
        };
        let mut deletable = Vec::new();
        for (row, users) in looked_up {
            let ours: Vec<Auth0UserId> = users
                .iter()
                .filter(|u| !claimed.auth0_subs.contains(u.id.as_str()))
                .map(|u| u.id.clone())
                .collect();
            self.summary.found.auth0_users_of_db_orphans += ours.len() as u64;
            if self.dry_run() {
                continue;
            }
            if !ours.is_empty() && !self.may_call_auth0() {
                finished = false;
                continue;
            }
            if self.delete_auth0_users_of(row, &ours).await {
                deletable.push(row);
            }
        }
        let (deleted, unlinked) = self.delete_rows(&mut tx, &deletable).await;
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

    /// What Auth0 holds at each row's address, from paged v3 searches over all of them (the
    /// rows are past the grace period, so their Auth0 users are old enough to be indexed).
    async fn look_up(&mut self, rows: &[PendingRow], busy: &HashSet<Uuid>) -> Vec<Lookup> {
        let mut answers: Vec<Lookup> = Vec::with_capacity(rows.len());
        let mut asked: Vec<(usize, String)> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            answers.push(match Email::parse(&row.email) {
                Err(_) => Lookup::InvalidEmail,
                Ok(_) if busy.contains(&row.id.uuid()) => Lookup::AddressBusy,
                Ok(email) => {
                    asked.push((index, email.as_str().to_string()));
                    Lookup::OutOfTime
                }
            });
        }
        if asked.is_empty() {
            return answers;
        }
        let emails: Vec<&str> = asked.iter().map(|(_, email)| email.as_str()).collect();
        let mut found: Vec<Auth0User> = Vec::new();
        for page in 0..SEARCH_MAX_PAGES {
            if !self.budget.spend(&self.state.auth0, &self.stop_at).await {
                return answers;
            }
            let result = self
                .state
                .auth0
                .search_users_with_emails(&emails, page, &self.stop_at)
                .await;
            match result {
                Ok(users) => {
                    let full = users.len() == SEARCH_PAGE_SIZE;
                    found.extend(users);
                    if !full {
                        break;
                    }
                }
                // Reported once, on the first row; the others wait for the next run.
                Err(err) => {
                    answers[asked[0].0] = Lookup::Answered(Err(err));
                    return answers;
                }
            }
        }
        for (index, email) in &asked {
            let users = found
                .iter()
                .filter(|u| {
                    u.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
                .cloned()
                .collect();
            answers[*index] = Lookup::Answered(Ok(users));
        }
        answers
    }

    /// The Auth0 users with the row's address, all of them ours; `None` if the row is to be
    /// left alone (and that is recorded).
    fn auth0_users_of(&mut self, row: &PendingRow, lookup: Lookup) -> Option<Vec<Auth0User>> {
        // Not looked at in this run: not counted either.
        if matches!(lookup, Lookup::OutOfTime) {
            return None;
        }
        let kind = Kind::DbOrphan;
        let id = Some(row.id.to_string());
        let redacted = Some(redact_email(&row.email));
        self.summary.found.db_orphans += 1;
        self.summary.found.employees_unlinked += row.linked_employees as u64;
        let users = match lookup {
            Lookup::InvalidEmail => {
                self.skip(kind, id, redacted, SkipReason::InvalidEmail);
                return None;
            }
            Lookup::AddressBusy => {
                self.skip(kind, id, redacted, SkipReason::AddressBusy);
                return None;
            }
            Lookup::OutOfTime => return None,
            Lookup::Answered(Ok(users)) => users,
            // A lookup that ran beside the one that stopped the Auth0 work: not news.
            Lookup::Answered(Err(_)) if self.auth0_halted => return None,
            Lookup::Answered(Err(err)) => {
                self.auth0_failed(kind, id, redacted, err);
                return None;
            }
        };
        if users.iter().any(|u| !u.is_ours()) {
            self.skip(kind, id, redacted, SkipReason::Auth0UserNotOurs);
            return None;
        }
        Some(users)
    }

    /// False if one could not be deleted: the row then stays for the next run.
    async fn delete_auth0_users_of(&mut self, row: &PendingRow, ours: &[Auth0UserId]) -> bool {
        let (id, redacted) = (Some(row.id.to_string()), Some(redact_email(&row.email)));
        for auth0_id in ours {
            // Found by search, which lags: read it again before deleting it.
            if !self.pace().await {
                return false;
            }
            match self.state.auth0.get_user(auth0_id, &self.stop_at).await {
                Ok(None) => continue,
                Ok(Some(now)) if !now.is_ours() => {
                    self.skip(Kind::DbOrphan, id, redacted, SkipReason::ChangedSinceSearch);
                    return false;
                }
                Ok(Some(_)) => {}
                Err(err) => {
                    self.auth0_failed(Kind::DbOrphan, id, redacted, err);
                    return false;
                }
            }
            if !self.pace().await {
                return false;
            }
            if let Err(err) = self.state.auth0.delete_user(auth0_id, &self.stop_at).await {
                self.auth0_failed(Kind::DbOrphan, id, redacted, err);
                return false;
            }
            self.summary.removed.auth0_users_of_db_orphans += 1;
            tracing::info!(kind = ?Kind::DbOrphan, user_id = %row.id, auth0_user_id = %auth0_id, "auth0 user of a pending row deleted");
        }
        true
    }

    /// Deletes the rows in one statement; if that fails, one by one so a row that cannot be
    /// deleted (an employee locked elsewhere) does not keep the others. Returns how many rows
    /// went and how many employees they unlinked.
    async fn delete_rows(&mut self, tx: &mut Transaction<'_>, rows: &[&PendingRow]) -> (u64, u64) {
        if rows.is_empty() {
            return (0, 0);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id.uuid()).collect();
        let bound = self.finishing_db();
        let deleted = match bound.on(delete_in_savepoint(tx, &ids)).await {
            Ok(deleted) => deleted,
            Err(err) => {
                let error = describe_error(&err);
                tracing::warn!(error = %error, rows = rows.len(), "batch delete failed; deleting row by row");
                let mut deleted = HashSet::new();
                for row in rows {
                    let id = row.id.uuid();
                    match bound.on(delete_in_savepoint(tx, &[id])).await {
                        Ok(gone) => deleted.extend(gone),
                        Err(err) => self.fail(
                            Kind::DbOrphan,
                            Some(row.id.to_string()),
                            Some(redact_email(&row.email)),
                            &err.into(),
                        ),
                    }
                }
                deleted
            }
        };
        let mut unlinked = 0;
        for row in rows.iter().filter(|r| deleted.contains(&r.id.uuid())) {
            unlinked += row.linked_employees as u64;
            tracing::info!(kind = ?Kind::DbOrphan, user_id = %row.id, email = %redact_email(&row.email), "pending row deleted");
        }
        (deleted.len() as u64, unlinked)
    }

    // --- 2. Auth0 orphans ----------------------------------------------------------------

    async fn auth0_orphans(&mut self) {
        if !self.may_call_auth0() {
            return;
        }
        let Some(mut client) = self.connect(Kind::Auth0Sweep).await else {
            return;
        };
        // A dry run deletes nothing, so it neither needs nor blocks the lock.
        let swept = if self.dry_run() {
            self.auth0_sweep(&mut client).await
        } else {
            match self
                .db()
                .on(queries::try_lock_auth0_sweep(pg(&client)))
                .await
            {
                Ok(true) => {
                    let swept = self.auth0_sweep(&mut client).await;
                    let unlocked = self
                        .finishing_db()
                        .on(queries::unlock_auth0_sweep(pg(&client)))
                        .await;
                    if let Err(err) = unlocked {
                        // It may still hold the lock: this connection must not serve another run.
                        tracing::warn!(error = %err, "could not release the auth0 sweep lock; closing the connection");
                        drop(Object::take(client));
                    }
                    swept
                }
                Ok(false) => {
                    self.skip(
                        Kind::Auth0Sweep,
                        None,
                        None,
                        SkipReason::SweepRunningElsewhere,
                    );
                    Ok(())
                }
                Err(err) => Err(err.into()),
            }
        };
        if let Err(err) = swept {
            self.summary.partial = true;
            self.fail(Kind::Auth0Sweep, None, None, &err);
        }
    }

    async fn auth0_sweep(&mut self, client: &mut Object) -> Result<(), BoxError> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.settings.grace_period)
                .unwrap_or(chrono::Duration::MAX);
        match self.email_scope().cloned() {
            Some(email) => {
                if !self.pace().await {
                    return Ok(());
                }
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
                    .filter(|u| u.is_ours() && u.created_before(cutoff))
                    .collect();
                self.auth0_orphan_page(client, candidates).await
            }
            None => self.search_everything(client, cutoff).await,
        }
    }

    /// Keyset paging on `created_at`: every query starts at the newest timestamp seen so
    /// far (inclusive), so the 1,000-result cap is never reached and users deleted
    /// meanwhile cannot shift a page. Page numbers are used only while more than a page of
    /// users share one timestamp.
    async fn search_everything(
        &mut self,
        client: &mut Object,
        cutoff: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let mut from: Option<DateTime<Utc>> = None;
        let mut page = 0;
        // Users at the `from` timestamp already handled (the next query returns them again).
        let mut seen: HashSet<Auth0UserId> = HashSet::new();
        while self.may_call_auth0() && self.pace().await {
            let found = match self
                .state
                .auth0
                .search_users_created_between(CREATED_BY_MARKER, from, cutoff, page, &self.stop_at)
                .await
            {
                Ok(found) => found,
                Err(err) => {
                    self.auth0_failed(Kind::Auth0Sweep, None, None, err);
                    return Ok(());
                }
            };
            let full = found.len() == SEARCH_PAGE_SIZE;
            let last = found.last().and_then(|u| u.created_at);
            let at_last: Vec<Auth0UserId> = found
                .iter()
                .filter(|u| u.created_at.is_some() && u.created_at == last)
                .map(|u| u.id.clone())
                .collect();
            let candidates = found
                .into_iter()
                .filter(|u| !seen.contains(&u.id))
                .filter(|u| u.is_ours() && u.created_before(cutoff))
                .collect();
            self.auth0_orphan_page(client, candidates).await?;
            if !full {
                return Ok(());
            }
            match last {
                Some(last) if from != Some(last) => {
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
                            from.map_or_else(
                                || "(none)".to_string(),
                                |at| at.to_rfc3339_opts(SecondsFormat::Millis, true)
                            )
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
        client: &mut Object,
        candidates: Vec<Auth0User>,
    ) -> Result<(), BoxError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let auth0_ids: Vec<String> = candidates
            .iter()
            .map(|u| u.id.as_str().to_string())
            .collect();
        let db_ids: Vec<Uuid> = candidates.iter().filter_map(tagged_db_user_id).collect();
        let claimed = self
            .finishing_db()
            .on(queries::claimed(pg(client), &auth0_ids, &db_ids))
            .await?;
        for user in candidates {
            if is_held(&claimed, &user) {
                continue;
            }
            if !self.may_call_auth0() {
                return Ok(());
            }
            self.auth0_orphan(client, user).await?;
        }
        Ok(())
    }

    /// One Auth0 orphan, in a transaction of its own that holds its address: a create-user
    /// adopting this user either committed before (and the re-check below sees its row) or
    /// waits until the user is gone (and creates a new one).
    async fn auth0_orphan(&mut self, client: &mut Object, user: Auth0User) -> Result<(), BoxError> {
        let kind = Kind::Auth0Orphan;
        let id = Some(user.id.to_string());
        let email = user.email.as_deref().map(redact_email);
        let auth0_id = user.id.clone();
        let tx = self.db().on(client.transaction()).await?;
        if !self.dry_run() {
            // Without an address it cannot be adopted: there is nothing to hold.
            if let Some(address) = user.email.as_deref()
                && !self
                    .finishing_db()
                    .on(locks::try_lock_address(&tx, address))
                    .await?
            {
                self.skip(kind, id, email, SkipReason::AddressBusy);
                return Ok(());
            }
            let db_ids: Vec<Uuid> = tagged_db_user_id(&user).into_iter().collect();
            let claimed = self
                .finishing_db()
                .on(queries::claimed(
                    &*tx,
                    &[user.id.as_str().to_string()],
                    &db_ids,
                ))
                .await?;
            if is_held(&claimed, &user) {
                self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                return Ok(());
            }
        }
        if !self.pace().await {
            return Ok(());
        }
        match self.state.auth0.get_user(&auth0_id, &self.stop_at).await {
            Ok(None) => return Ok(()),
            Ok(Some(now)) if !now.is_ours() || now.app_metadata != user.app_metadata => {
                self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                return Ok(());
            }
            Ok(Some(_)) => {}
            Err(err) => {
                self.auth0_failed(kind, id, email, err);
                return Ok(());
            }
        }
        self.summary.found.auth0_orphans += 1;
        if self.dry_run() {
            return Ok(());
        }
        if !self.pace().await {
            return Ok(());
        }
        match self.state.auth0.delete_user(&auth0_id, &self.stop_at).await {
            Ok(()) => {
                self.summary.removed.auth0_orphans += 1;
                tracing::info!(kind = ?kind, auth0_user_id = %auth0_id, email = ?email, "auth0 orphan deleted");
            }
            Err(err) => self.auth0_failed(kind, id, email, err),
        }
        // Nothing was written; ending the transaction releases the address.
        self.finishing_db().on(tx.rollback()).await?;
        Ok(())
    }

    // --- 3. reset tokens -----------------------------------------------------------------

    async fn reset_tokens(&mut self) {
        if !self.time_left() {
            return;
        }
        let Some(client) = self.connect(Kind::ResetTokens).await else {
            return;
        };
        if let Err(err) = self.purge_reset_tokens(&client).await {
            self.summary.partial = true;
            self.fail(Kind::ResetTokens, None, None, &err);
        }
        if self.email_scope().is_none()
            && self.time_left()
            && let Err(err) = self.purge_idempotency_keys(&client).await
        {
            self.summary.partial = true;
            self.fail(Kind::IdempotencyKeys, None, None, &err);
        }
    }

    async fn purge_idempotency_keys(
        &mut self,
        pg: &tokio_postgres::Client,
    ) -> Result<(), BoxError> {
        if self.dry_run() {
            self.summary.expired_idempotency_keys = self
                .db()
                .on(queries::count_expired_idempotency_keys(pg))
                .await?;
            return Ok(());
        }
        loop {
            let purged = self
                .db()
                .on(queries::purge_idempotency_keys(pg, TOKEN_BATCH))
                .await?;
            self.summary.expired_idempotency_keys += purged;
            if purged < TOKEN_BATCH as u64 || !self.time_left() {
                return Ok(());
            }
        }
    }

    async fn purge_reset_tokens(&mut self, pg: &tokio_postgres::Client) -> Result<(), BoxError> {
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

/// What Auth0 said about a pending row's address, or why it was not asked.
enum Lookup {
    InvalidEmail,
    AddressBusy,
    /// Not asked in this run: the budget's turn would have come too close to the deadline,
    /// or the search for it failed (reported once).
    OutOfTime,
    Answered(Result<Vec<Auth0User>, Auth0Error>),
}

/// In a savepoint, so a failed delete does not abort the rest of the batch.
async fn delete_in_savepoint(
    tx: &mut Transaction<'_>,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, tokio_postgres::Error> {
    let savepoint = tx.savepoint("cleanup_rows").await?;
    match queries::delete_pending_rows(&savepoint, ids).await {
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

fn pg(client: &Object) -> &tokio_postgres::Client {
    client
}

/// A row holds the user, or the pending row it is tagged with is the database-orphan pass's.
fn is_held(claimed: &Claimed, user: &Auth0User) -> bool {
    claimed.auth0_subs.contains(user.id.as_str())
        || tagged_db_user_id(user).is_some_and(|id| claimed.pending_ids.contains(&id))
}

fn tagged_db_user_id(user: &Auth0User) -> Option<Uuid> {
    user.db_user_id().map(UserId::uuid)
}
