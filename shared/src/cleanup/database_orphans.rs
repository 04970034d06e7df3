//! Pass 1 of a cleanup run (see `run.rs`): database orphans.

use std::collections::HashSet;

use deadpool_postgres::Object;
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::run::{BoxError, Run, SEARCH_MAX_PAGES};
use super::summary::{Kind, SkipReason, describe_error};
use crate::auth0::{Auth0Error, Auth0User, SEARCH_PAGE_SIZE};
use crate::db::cleanup::{self as queries, BatchCursor, Claimed, PendingRow};
use crate::db::locks;
use crate::domain::{Auth0UserId, Email, redact_email};

/// Addresses asked about in one v3 search (the query stays a few kilobytes).
const EMAILS_PER_SEARCH: usize = 50;

impl Run<'_> {
    pub(super) async fn database_orphans(&mut self) {
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
            // A re-read and a delete each.
            if !ours.is_empty() && !self.may_make_calls(2) {
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
            if !self.pace().await {
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
