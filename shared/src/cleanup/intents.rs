//! Pass 0 of a cleanup run (see `run.rs`): lifecycle intents left by an operation that did not
//! finish (see `flow::intent`). For each one older than the grace period, the Auth0 user is
//! made to match what the database says now, whatever happened in between:
//!
//! | the row                                  | the Auth0 user                                  |
//! |------------------------------------------|-------------------------------------------------|
//! | active, holding this Auth0 user          | unblocked, with the row's role tag               |
//! | deactivated, holding this Auth0 user     | blocked (and its sessions and refresh tokens ended) |
//! | gone, or holding another Auth0 user      | deleted, if it is ours and tagged for this row   |
//!
//! Then the intent goes. It costs one read of the Auth0 user per intent, and a change only
//! where the two disagree. A user that is not ours is never touched.

use deadpool_postgres::Object;

use super::run::{BoxError, Run};
use super::summary::{Kind, SkipReason};
use crate::auth0::{Auth0User, Budget, UserPatch};
use crate::db::intents::{self, StaleIntent};
use crate::db::{locks, users};
use crate::domain::{Auth0Link, redact_email};

/// Intents taken per transaction.
const BATCH: usize = 50;

/// What one intent needed.
enum Converged {
    /// Both systems agreed already, or now do.
    Done,
    /// Left for the next run (the reason is recorded).
    Later,
}

impl Run<'_> {
    pub(super) async fn lifecycle_intents(&mut self) {
        // Intents belong to users, not addresses: only a run over everything takes them up.
        if self.email_scope().is_some() || !self.may_call_auth0() {
            return;
        }
        let Some(mut client) = self.connect(Kind::Intent).await else {
            return;
        };
        while self.may_call_auth0() {
            match self.intent_batch(&mut client).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    self.summary.partial = true;
                    return self.fail(Kind::Intent, None, None, &err);
                }
            }
        }
    }

    /// One batch, each intent in a transaction of its own. False when there was none left.
    async fn intent_batch(&mut self, client: &mut Object) -> Result<bool, BoxError> {
        let tx = self.db().on(client.transaction()).await?;
        let stale = self
            .finishing_db()
            .on(intents::lock_stale(&tx, self.settings.grace_period, BATCH))
            .await?;
        // Read-only here: each intent is locked again by its own transaction below.
        self.finishing_db().on(tx.rollback()).await?;
        if stale.is_empty() {
            return Ok(false);
        }
        let mut settled = 0;
        for intent in stale {
            // A read, a change and two revocations at most: not begun without room for all.
            if !self.may_make_calls(4) {
                break;
            }
            self.summary.found.intents += 1;
            if self.dry_run() {
                continue;
            }
            if let Converged::Done = self.converge(client, &intent).await? {
                settled += 1;
                self.summary.removed.intents += 1;
            }
        }
        // A batch where nothing could be settled would come back the same: the next run.
        Ok(settled > 0 && !self.dry_run())
    }

    /// Makes the intent's Auth0 user match its row, then removes the intent; in one
    /// transaction that holds the intent and the row.
    async fn converge(
        &mut self,
        client: &mut Object,
        intent: &StaleIntent,
    ) -> Result<Converged, BoxError> {
        let kind = Kind::Intent;
        let id = Some(intent.user_id.to_string());
        let tx = self.db().on(client.transaction()).await?;
        // Taken again, skipping one another run holds now.
        let held = self
            .finishing_db()
            .on(intents::lock_one(&tx, intent.user_id))
            .await?;
        if !held {
            return Ok(Converged::Later);
        }
        let row = self
            .finishing_db()
            .on(users::lock_by_id(&tx, intent.user_id))
            .await?;
        let auth0_id = &intent.auth0_user_id;
        if !self.pace().await {
            return Ok(Converged::Later);
        }
        let now = match self.state.auth0.get_user(auth0_id, &self.stop_at).await {
            Ok(now) => now,
            Err(err) => {
                self.auth0_failed(kind, id, None, err);
                return Ok(Converged::Later);
            }
        };
        let holds = row
            .as_ref()
            .filter(|row| row.auth0 == Auth0Link::Linked(auth0_id.clone()));
        let outcome = match (now, holds) {
            // Nothing in Auth0 to match.
            (None, _) => Converged::Done,
            (Some(user), Some(row)) => {
                let patch = UserPatch {
                    blocked: (user.blocked == row.is_active).then_some(!row.is_active),
                    app_metadata: (user.is_ours() && user.role_tag() != Some(row.role))
                        .then(|| serde_json::json!({ "role": row.role.as_str() })),
                };
                self.apply(kind, &user, patch, !row.is_active).await
            }
            (Some(user), None) => self.remove(&tx, intent, &user).await?,
        };
        if let Converged::Done = outcome {
            self.finishing_db()
                .on(intents::delete(&tx, intent.user_id))
                .await?;
            self.finishing_db().on(tx.commit()).await?;
            tracing::info!(kind = ?kind, user_id = %intent.user_id, operation = %intent.operation, "lifecycle intent converged");
        }
        Ok(outcome)
    }

    /// The row's state onto its Auth0 user: `patch` holds only what differs. A deactivated
    /// row's user also has its sessions and refresh tokens ended (when the setting says so):
    /// whether the operation got that far is not known.
    async fn apply(
        &mut self,
        kind: Kind,
        user: &Auth0User,
        patch: UserPatch,
        deactivated: bool,
    ) -> Converged {
        let id = Some(user.id.to_string());
        let auth0 = &self.state.auth0;
        if patch != UserPatch::default() {
            if !self.pace().await {
                return Converged::Later;
            }
            if let Err(err) = auth0
                .update_user(&user.id, &patch, Budget::Cleanup, &self.stop_at)
                .await
            {
                self.auth0_failed(kind, id, None, err);
                return Converged::Later;
            }
        }
        if deactivated && self.state.config.auth0_revoke_sessions {
            for revoke_sessions in [true, false] {
                if !self.pace().await {
                    return Converged::Later;
                }
                let revoked = if revoke_sessions {
                    auth0
                        .revoke_sessions(&user.id, Budget::Cleanup, &self.stop_at)
                        .await
                } else {
                    auth0
                        .revoke_refresh_tokens(&user.id, Budget::Cleanup, &self.stop_at)
                        .await
                };
                if let Err(err) = revoked {
                    self.auth0_failed(kind, id, None, err);
                    return Converged::Later;
                }
            }
        }
        Converged::Done
    }

    /// No row holds the Auth0 user: deleted when it is ours and tagged for the intent's row,
    /// under its address's lock (the one create-user takes before it adopts such a user).
    async fn remove(
        &mut self,
        tx: &deadpool_postgres::Transaction<'_>,
        intent: &StaleIntent,
        user: &Auth0User,
    ) -> Result<Converged, BoxError> {
        let kind = Kind::Intent;
        let id = Some(user.id.to_string());
        let email = user.email.as_deref().map(redact_email);
        if user.db_user_id() != Some(intent.user_id) {
            // Not ours, or ours for another row (adopted since): not this intent's to delete.
            self.skip(kind, id, email, SkipReason::Auth0UserNotOurs);
            return Ok(Converged::Done);
        }
        if let Some(address) = user.email.as_deref()
            && !self
                .finishing_db()
                .on(locks::try_lock_address(tx, address))
                .await?
        {
            self.skip(kind, id, email, SkipReason::AddressBusy);
            return Ok(Converged::Later);
        }
        if self
            .finishing_db()
            .on(users::auth0_sub_in_use(tx, &user.id))
            .await?
        {
            self.skip(kind, id, email, SkipReason::ChangedSinceSearch);
            return Ok(Converged::Done);
        }
        if !self.pace().await {
            return Ok(Converged::Later);
        }
        match self.state.auth0.delete_user(&user.id, &self.stop_at).await {
            Ok(()) => {
                tracing::info!(kind = ?kind, auth0_user_id = %user.id, "auth0 user of a deleted row deleted");
                Ok(Converged::Done)
            }
            Err(err) => {
                self.auth0_failed(kind, id, email, err);
                Ok(Converged::Later)
            }
        }
    }
}
