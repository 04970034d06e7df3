//! Pass 2 of a cleanup run (see `run.rs`): Auth0 orphans, tagged users past the grace period
//! that no row refers to.
//!
//! A run over everything does not walk every tagged user (that costs a search per hundred
//! users, whatever happened since the last run). Under the sweep lock it does, in this order,
//! each step bounded by the run's cap on Management API calls:
//! 1. **rechecks**: users earlier runs could not settle (address busy, Auth0 failing, changed
//!    since the search), read again by id, a few runs in a row;
//! 2. **the incremental pass**: tagged users created from the watermark, less
//!    `CLEANUP_AUTH0_INDEX_LAG_MINUTES` (users the search index showed late), up to the grace
//!    period's cutoff; the watermark then moves to the cutoff. A new orphan costs the searches
//!    of the users created since the last run, whatever the tenant's size;
//! 3. **the full pass**: once the new users are done, a slice of a round over every tagged
//!    user below the incremental pass's window, from a cursor on `created_at`. The slice is the
//!    rest of the round spread over the runs left before nine tenths of
//!    `CLEANUP_AUTH0_FULL_PASS_HOURS` have passed since the round began (the first round, when
//!    nothing is known of earlier visits, goes as fast as the cap allows). A run that finishes a
//!    round leaves the next one to the next run.
//!
//! Where it stands is the one row of `auth0_sweep`, written after every page of search results
//! dealt with, so a run killed mid-slice loses at most that page. Every user is dealt with as
//! before: held users are skipped, the rest each re-checked and deleted under their address's
//! lock. A dry run reads the state and does the same reads, and writes nothing.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::Object;
use uuid::Uuid;

use super::run::{BoxError, Run, SEARCH_MAX_PAGES};
use super::summary::{Kind, SkipReason, SweepReport};
use crate::auth0::{Auth0User, CREATED_BY_MARKER, SEARCH_PAGE_SIZE};
use crate::db::cleanup::{self as queries, Claimed, SweepState};
use crate::db::locks;
use crate::domain::{Auth0UserId, UserId, redact_email};

/// Users of earlier runs looked at again per run.
const RECHECKS_PER_RUN: usize = 20;
/// Runs that look at an unsettled user again before it is left to the full pass.
const RECHECK_ATTEMPTS: i32 = 5;
/// The full pass finishes a round by this share of its period: the rest is slack for runs
/// that fail or stop early.
const ROUND_PACE: f64 = 0.9;
/// Shorter gaps between runs (a manual run just after a scheduled one) are taken as this.
const MIN_RUN_INTERVAL: Duration = Duration::from_secs(60);

/// What became of one Auth0 user the sweep looked at.
enum Settled {
    /// Nothing more to do: deleted, held by a row, gone, not ours, or reported (dry run).
    Yes,
    /// Left as it was (address busy, Auth0 failed, changed since the search): look again.
    No,
    /// Not dealt with: the run is out of time, calls, or Auth0's service.
    Stopped,
}

/// The passes of the sweep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Incremental,
    Full,
}

/// How a walk over a range of `created_at` ended.
enum WalkEnd {
    /// Every tagged user in the range was dealt with.
    Done,
    /// The slice's searches were spent.
    SliceSpent,
    /// The run stopped (cap, deadline, Auth0): the state says how far it got.
    Stopped,
}

/// One run's sweep: the state as it goes, and what it reports.
struct Sweep {
    state: SweepState,
    /// Users this run has dealt with (the passes' ranges touch at their edges).
    checked: HashSet<Auth0UserId>,
    /// Users of the page at hand that could not be settled: saved with the page.
    unsettled: Vec<Auth0UserId>,
    report: SweepReport,
}

impl Run<'_> {
    pub(super) async fn auth0_orphans(&mut self) {
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
        // To the millisecond, as Auth0 writes `created_at` and as the searches send it.
        let cutoff = to_millis(clock() - chrono_duration(self.settings.grace_period));
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
                // One address by hand: nothing of the sweep's state is read or written.
                self.auth0_orphan_page(client, candidates, &mut Vec::new())
                    .await
                    .map(|_| ())
            }
            None => self.sweep_everything(client, cutoff).await,
        }
    }

    /// The three steps of a run over everything (see the module's comment).
    async fn sweep_everything(
        &mut self,
        client: &mut Object,
        cutoff: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let run_at = clock();
        let state = self.db().on(queries::sweep_state(pg(client))).await?;
        let previous_run = state.last_run_at;
        let mut sweep = Sweep {
            state,
            checked: HashSet::new(),
            unsettled: Vec::new(),
            report: SweepReport::default(),
        };
        sweep.state.last_run_at = Some(run_at);
        // The first run ever: everything before its cutoff is the first round's.
        let first_run = sweep.state.watermark.is_none();
        let watermark = *sweep.state.watermark.get_or_insert(cutoff);
        let window_start = if first_run {
            cutoff
        } else {
            watermark - chrono_duration(self.settings.auth0_index_lag)
        };
        self.save(client, &mut sweep).await?;

        self.recheck(client, &mut sweep, cutoff).await?;
        // Empty on the first run, and when a run with a shorter grace period left the
        // watermark above this run's cutoff.
        let new_users = if window_start >= cutoff {
            WalkEnd::Done
        } else if !self.may_call_auth0() {
            WalkEnd::Stopped
        } else {
            let from = Some(window_start);
            self.walk(client, &mut sweep, Pass::Incremental, from, cutoff, None)
                .await?
        };
        // New users first: the full pass gets what they leave of the run. Never past the
        // cutoff: a watermark left by a run with a shorter grace period may be above it.
        if matches!(new_users, WalkEnd::Done) {
            let end = window_start.min(cutoff);
            self.full_pass(client, &mut sweep, end, previous_run)
                .await?;
        } else {
            self.report_full_pass(&mut sweep, None, 0, None, false);
        }
        let now = clock();
        let report = &mut sweep.report;
        report.watermark = sweep.state.watermark;
        report.watermark_lag_seconds = sweep
            .state
            .watermark
            .map_or(0, |at| seconds_between(at, now));
        self.summary.auth0_sweep = Some(sweep.report);
        Ok(())
    }

    /// A slice of the full pass's round over the users created before `end` (where this run's
    /// incremental pass began).
    async fn full_pass(
        &mut self,
        client: &mut Object,
        sweep: &mut Sweep,
        end: DateTime<Utc>,
        previous_run: Option<DateTime<Utc>>,
    ) -> Result<(), BoxError> {
        let now = clock();
        let state = &mut sweep.state;
        let started_at = match state.round_started_at {
            Some(at) => at,
            None => {
                state.round_started_at = Some(now);
                state.round_cursor = None;
                state.round_visited = 0;
                now
            }
        };
        let from = state.round_cursor;
        let remaining = self
            .db()
            .on(queries::count_finished_users_between(pg(client), from, end))
            .await?;
        let due = if sweep.state.rounds_completed == 0 {
            // Nothing is known of when these users were last visited: as fast as the cap allows.
            u64::MAX
        } else {
            due_searches(
                remaining,
                now - started_at,
                self.settings.auth0_full_pass_period,
                previous_run.map(|at| now - at),
            )
        };
        let visited_before = sweep.state.round_visited;
        let end_of_walk = self
            .walk(client, sweep, Pass::Full, from, end, Some(due))
            .await?;
        let visited = (sweep.state.round_visited - visited_before).max(0) as u64;
        let round_visited = sweep.state.round_visited.max(0) as u64;
        let completed = matches!(end_of_walk, WalkEnd::Done);
        if completed {
            let state = &mut sweep.state;
            state.last_round_started_at = state.round_started_at.take();
            state.last_round_ended_at = Some(clock());
            state.rounds_completed += 1;
            state.round_cursor = None;
            state.round_visited = 0;
            self.save(client, sweep).await?;
        }
        let left = remaining.saturating_sub(visited);
        self.report_full_pass(sweep, from, due, Some((round_visited, left)), completed);
        Ok(())
    }

    fn report_full_pass(
        &self,
        sweep: &mut Sweep,
        from: Option<DateTime<Utc>>,
        due: u64,
        // The users the round has visited and about how many it has left; none when the
        // full pass did not run (the new users took the run).
        progress: Option<(u64, u64)>,
        completed: bool,
    ) {
        let state = &sweep.state;
        let now = clock();
        let (visited, left) = match progress {
            Some((visited, left)) => (visited, Some(left)),
            None => (state.round_visited.max(0) as u64, None),
        };
        let full = &mut sweep.report.full_pass;
        full.round = state.rounds_completed.max(0) as u64 + u64::from(!completed);
        full.started_at = if completed {
            state.last_round_started_at
        } else {
            state.round_started_at
        };
        full.from = from;
        full.cursor = state.round_cursor;
        full.due_searches = due;
        full.visited = visited;
        full.percent_done = match (completed, left) {
            (true, _) => Some(100),
            (false, Some(left)) => Some(
                (visited * 100)
                    .checked_div(visited + left)
                    .unwrap_or(0)
                    .min(99),
            ),
            (false, None) => None,
        };
        full.completed = completed;
        full.lag_seconds = match (completed, state.round_started_at) {
            (false, Some(at)) => seconds_between(at, now),
            _ => 0,
        };
        full.period_seconds = self.settings.auth0_full_pass_period.as_secs();
    }

    /// Users earlier runs left unsettled, read again by id (search lags; these are old).
    async fn recheck(
        &mut self,
        client: &mut Object,
        sweep: &mut Sweep,
        cutoff: DateTime<Utc>,
    ) -> Result<(), BoxError> {
        let retries = self
            .db()
            .on(queries::sweep_retries(pg(client), RECHECKS_PER_RUN))
            .await?;
        for (id, attempts) in retries {
            let Ok(auth0_id) = Auth0UserId::parse(&id) else {
                self.forget_retry(client, &id).await?;
                continue;
            };
            // The read, and the re-read and delete of an orphan.
            if !self.may_make_calls(3) || !self.pace().await {
                return Ok(());
            }
            sweep.report.rechecked += 1;
            let settled = match self.state.auth0.get_user(&auth0_id, &self.stop_at).await {
                Ok(None) => Settled::Yes,
                Ok(Some(user)) if !user.is_ours() || !user.created_before(cutoff) => Settled::Yes,
                Ok(Some(user)) => {
                    sweep.checked.insert(user.id.clone());
                    let mut unsettled = Vec::new();
                    match self
                        .auth0_orphan_page(client, vec![user], &mut unsettled)
                        .await?
                    {
                        Some(_) => return Ok(()),
                        None if unsettled.is_empty() => Settled::Yes,
                        None => Settled::No,
                    }
                }
                Err(err) => {
                    if self.auth0_failed(Kind::Auth0Orphan, Some(id.clone()), None, err) {
                        return Ok(());
                    }
                    Settled::No
                }
            };
            if self.dry_run() {
                continue;
            }
            match settled {
                Settled::No if attempts < RECHECK_ATTEMPTS => {
                    self.finishing_db()
                        .on(queries::count_sweep_retry(pg(client), &id))
                        .await?;
                }
                Settled::No => {
                    tracing::info!(auth0_user_id = %id, attempts, "still unsettled; left to the full pass");
                    self.forget_retry(client, &id).await?;
                }
                Settled::Yes | Settled::Stopped => self.forget_retry(client, &id).await?,
            }
        }
        Ok(())
    }

    async fn forget_retry(&mut self, client: &Object, id: &str) -> Result<(), BoxError> {
        if !self.dry_run() {
            self.finishing_db()
                .on(queries::drop_sweep_retry(pg(client), id))
                .await?;
        }
        Ok(())
    }

    /// Keyset paging on `created_at` over the tagged users created in `[from, before)`: every
    /// query starts at the newest timestamp seen so far (inclusive), so the 1,000-result cap
    /// is never reached and users deleted meanwhile cannot shift a page. Page numbers are used
    /// only while more than a page of users share one timestamp. After each page dealt with,
    /// the state records how far the pass got. `searches`: at most that many (a slice).
    async fn walk(
        &mut self,
        client: &mut Object,
        sweep: &mut Sweep,
        pass: Pass,
        mut from: Option<DateTime<Utc>>,
        before: DateTime<Utc>,
        searches: Option<u64>,
    ) -> Result<WalkEnd, BoxError> {
        let mut page = 0;
        let mut made = 0;
        // Users at the `from` timestamp already handled (the next query returns them again).
        let mut seen: HashSet<Auth0UserId> = HashSet::new();
        loop {
            if searches.is_some_and(|limit| made >= limit) {
                return Ok(WalkEnd::SliceSpent);
            }
            if !self.may_call_auth0() || !self.pace().await {
                return Ok(WalkEnd::Stopped);
            }
            let found = match self
                .state
                .auth0
                .search_users_created_between(CREATED_BY_MARKER, from, before, page, &self.stop_at)
                .await
            {
                Ok(found) => found,
                Err(err) => {
                    self.auth0_failed(Kind::Auth0Sweep, None, None, err);
                    // Not settled by this run, whatever the error: the state stays where it is.
                    self.summary.partial = true;
                    return Ok(WalkEnd::Stopped);
                }
            };
            made += 1;
            if pass == Pass::Incremental {
                sweep.report.new_searches += 1;
            } else {
                sweep.report.full_pass.searches += 1;
            }
            let full = found.len() == SEARCH_PAGE_SIZE;
            let last = found.last().and_then(|u| u.created_at);
            let at_last: Vec<Auth0UserId> = found
                .iter()
                .filter(|u| u.created_at.is_some() && u.created_at == last)
                .map(|u| u.id.clone())
                .collect();
            let fresh: Vec<Auth0User> = found
                .into_iter()
                .filter(|u| !seen.contains(&u.id))
                .collect();
            let candidates: Vec<Auth0User> = fresh
                .iter()
                .filter(|u| u.is_ours() && u.created_before(before))
                .filter(|u| !sweep.checked.contains(&u.id))
                .cloned()
                .collect();
            sweep
                .checked
                .extend(candidates.iter().map(|u| u.id.clone()));
            let mut unsettled = std::mem::take(&mut sweep.unsettled);
            let stopped_at = self
                .auth0_orphan_page(client, candidates, &mut unsettled)
                .await?;
            sweep.unsettled = unsettled;
            if let Some(user) = stopped_at {
                // Everything created before the first user it could not get to is done.
                match user.created_at {
                    Some(at) => {
                        let done = fresh.iter().filter(|u| u.created_at < Some(at)).count();
                        self.advance(client, sweep, pass, at, done as u64).await?;
                    }
                    None => self.save(client, sweep).await?,
                }
                return Ok(WalkEnd::Stopped);
            }
            if !full {
                self.advance(client, sweep, pass, before, fresh.len() as u64)
                    .await?;
                return Ok(WalkEnd::Done);
            }
            match last {
                Some(last) if from != Some(last) => {
                    from = Some(last);
                    page = 0;
                    seen = at_last.into_iter().collect();
                    self.advance(client, sweep, pass, last, fresh.len() as u64)
                        .await?;
                }
                _ => {
                    page += 1;
                    seen.extend(at_last);
                    let at = from.unwrap_or(before);
                    if page < SEARCH_MAX_PAGES {
                        self.advance(client, sweep, pass, at, fresh.len() as u64)
                            .await?;
                        continue;
                    }
                    // Search cannot page further; the users past its 1,000 results at this
                    // millisecond cannot be reached, so the walk steps over it.
                    let err = format!(
                        "more than 1,000 tagged Auth0 users share created_at {}; those past the first 1,000 are not checked",
                        at.to_rfc3339_opts(SecondsFormat::Millis, true)
                    );
                    self.fail(Kind::Auth0Sweep, None, None, &err.into());
                    let next = at + chrono::Duration::milliseconds(1);
                    from = Some(next);
                    page = 0;
                    seen.clear();
                    self.advance(client, sweep, pass, next, fresh.len() as u64)
                        .await?;
                }
            }
        }
    }

    /// Records that the pass has dealt with every tagged user created before `at` (and
    /// `visited` more users), with the users it could not settle; saved at once.
    async fn advance(
        &mut self,
        client: &mut Object,
        sweep: &mut Sweep,
        pass: Pass,
        at: DateTime<Utc>,
        visited: u64,
    ) -> Result<(), BoxError> {
        let state = &mut sweep.state;
        match pass {
            Pass::Incremental => {
                if state.watermark.is_none_or(|w| at > w) {
                    state.watermark = Some(at);
                }
            }
            Pass::Full => {
                if state.round_cursor.is_none_or(|c| at > c) {
                    state.round_cursor = Some(at);
                }
                state.round_visited += visited as i64;
            }
        }
        self.save(client, sweep).await
    }

    /// Writes the state and the users to look at again (not in a dry run).
    async fn save(&mut self, client: &mut Object, sweep: &mut Sweep) -> Result<(), BoxError> {
        let unsettled: Vec<String> = std::mem::take(&mut sweep.unsettled)
            .into_iter()
            .map(|id| id.as_str().to_string())
            .collect();
        sweep.report.retries_added += unsettled.len() as u64;
        if self.dry_run() {
            return Ok(());
        }
        if !unsettled.is_empty() {
            self.finishing_db()
                .on(queries::add_sweep_retries(pg(client), &unsettled))
                .await?;
        }
        self.finishing_db()
            .on(queries::save_sweep_state(pg(client), &sweep.state))
            .await?;
        Ok(())
    }

    /// Deals with the users of `candidates` that no row refers to, in order, each re-read
    /// first (dry runs too, so they report the same): search is eventually consistent, and a
    /// user adopted meanwhile has new tags. Users it could not settle go to `unsettled`;
    /// returns the first user it could not get to (out of time, calls or Auth0's service).
    async fn auth0_orphan_page(
        &mut self,
        client: &mut Object,
        candidates: Vec<Auth0User>,
        unsettled: &mut Vec<Auth0UserId>,
    ) -> Result<Option<Auth0User>, BoxError> {
        if candidates.is_empty() {
            return Ok(None);
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
            match self.auth0_orphan(client, &user).await? {
                Settled::Yes => {}
                Settled::No => unsettled.push(user.id.clone()),
                Settled::Stopped => return Ok(Some(user)),
            }
        }
        Ok(None)
    }

    /// One Auth0 orphan, in a transaction of its own that holds its address: a create-user
    /// adopting this user either committed before (and the re-check below sees its row) or
    /// waits until the user is gone (and creates a new one).
    async fn auth0_orphan(
        &mut self,
        client: &mut Object,
        user: &Auth0User,
    ) -> Result<Settled, BoxError> {
        // Its re-read and its delete, or neither.
        if !self.may_make_calls(2) {
            return Ok(Settled::Stopped);
        }
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
                return Ok(Settled::No);
            }
            let db_ids: Vec<Uuid> = tagged_db_user_id(user).into_iter().collect();
            let claimed = self
                .finishing_db()
                .on(queries::claimed(
                    &*tx,
                    &[user.id.as_str().to_string()],
                    &db_ids,
                ))
                .await?;
            if is_held(&claimed, user) {
                self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                return Ok(Settled::Yes);
            }
        }
        if !self.pace().await {
            return Ok(Settled::Stopped);
        }
        match self.state.auth0.get_user(&auth0_id, &self.stop_at).await {
            Ok(None) => return Ok(Settled::Yes),
            // No longer ours: never ours to touch again.
            Ok(Some(now)) if !now.is_ours() => {
                self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                return Ok(Settled::Yes);
            }
            // Re-tagged (an adoption under way or undone): the next run looks again.
            Ok(Some(now)) if now.app_metadata != user.app_metadata => {
                self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
                return Ok(Settled::No);
            }
            Ok(Some(_)) => {}
            Err(err) => {
                return Ok(if self.auth0_failed(kind, id, email, err) {
                    Settled::Stopped
                } else {
                    Settled::No
                });
            }
        }
        self.summary.found.auth0_orphans += 1;
        if self.dry_run() {
            return Ok(Settled::Yes);
        }
        if !self.pace().await {
            return Ok(Settled::Stopped);
        }
        let settled = match self.state.auth0.delete_user(&auth0_id, &self.stop_at).await {
            Ok(()) => {
                self.summary.removed.auth0_orphans += 1;
                tracing::info!(kind = ?kind, auth0_user_id = %auth0_id, email = ?email, "auth0 orphan deleted");
                Settled::Yes
            }
            Err(err) => {
                if self.auth0_failed(kind, id, email, err) {
                    Settled::Stopped
                } else {
                    Settled::No
                }
            }
        };
        // Nothing was written; ending the transaction releases the address.
        self.finishing_db().on(tx.rollback()).await?;
        Ok(settled)
    }
}

/// Searches the full pass owes this run: what is left of the round (`remaining` users, a page
/// a search, and one search that finds its end) spread over the runs left before it is due,
/// nine tenths of `period` after it began. `since_last_run` (the time between runs, taken as
/// at least a minute) says how many runs that is; at least one search a run.
fn due_searches(
    remaining: u64,
    round_age: chrono::Duration,
    period: Duration,
    since_last_run: Option<chrono::Duration>,
) -> u64 {
    let searches = remaining.div_ceil(SEARCH_PAGE_SIZE as u64) + 1;
    let period = period.as_secs_f64();
    let left = period * ROUND_PACE - round_age.as_seconds_f64();
    let interval = since_last_run
        .map_or(period, |gap| gap.as_seconds_f64())
        .clamp(MIN_RUN_INTERVAL.as_secs_f64(), period);
    let runs_left = (left / interval).floor().max(1.0) as u64;
    searches.div_ceil(runs_left).max(1)
}

/// Now, to the microsecond, as Postgres keeps it.
fn clock() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn seconds_between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> u64 {
    (later - earlier).num_seconds().max(0) as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3_600);

    fn minutes(n: i64) -> Option<chrono::Duration> {
        Some(chrono::Duration::minutes(n))
    }

    #[test]
    fn a_round_is_spread_over_the_runs_left_before_nine_tenths_of_its_period() {
        let hours = chrono::Duration::hours;
        // 1M users, a day, every 15 minutes: 10,001 searches over 86 runs.
        assert_eq!(
            due_searches(1_000_000, hours(0), DAY, minutes(15)),
            10_001u64.div_ceil(86)
        );
        // Half the users left at half time: the same pace.
        assert_eq!(
            due_searches(500_000, hours(12), DAY, minutes(15)),
            5_001u64.div_ceil(38)
        );
        // Behind: the runs left do more; due or overdue: all of it at once.
        assert!(due_searches(900_000, hours(12), DAY, minutes(15)) > 200);
        assert_eq!(due_searches(100_000, hours(22), DAY, minutes(15)), 1_001);
        assert_eq!(due_searches(100_000, hours(30), DAY, minutes(15)), 1_001);
    }

    #[test]
    fn a_small_tenant_costs_one_search_a_run_and_short_gaps_count_as_a_minute() {
        assert_eq!(
            due_searches(0, chrono::Duration::zero(), DAY, minutes(15)),
            1
        );
        assert_eq!(
            due_searches(150, chrono::Duration::zero(), DAY, minutes(15)),
            1
        );
        // A run seconds after the last one is not taken for a schedule of seconds: a minute.
        let seconds = Some(chrono::Duration::seconds(2));
        assert_eq!(
            due_searches(1_000_000, chrono::Duration::zero(), DAY, seconds),
            10_001u64.div_ceil((0.9 * 24.0 * 60.0) as u64)
        );
        // No earlier run known: one run a period, so everything now.
        assert_eq!(
            due_searches(10_000, chrono::Duration::zero(), DAY, None),
            101
        );
    }
}
