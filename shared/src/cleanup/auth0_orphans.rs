//! Pass 2 of a cleanup run (see `run.rs`): Auth0 orphans.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::Object;
use uuid::Uuid;

use super::run::{BoxError, Run, SEARCH_MAX_PAGES};
use super::summary::{Kind, SkipReason};
use crate::auth0::{Auth0User, CREATED_BY_MARKER, SEARCH_PAGE_SIZE};
use crate::db::cleanup::{self as queries, Claimed};
use crate::db::locks;
use crate::domain::{Auth0UserId, UserId, redact_email};

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
