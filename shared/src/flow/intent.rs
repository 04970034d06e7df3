//! Intents: how a change to an existing user survives a crash between the two systems.
//!
//! An operation that changes the Auth0 user of an existing row (update, deactivate,
//! reactivate, delete) writes its intent and COMMITs it before it calls Auth0; then, in a
//! second transaction, it changes the row and Auth0 and removes the intent in the same COMMIT
//! (a delete removes it after its Auth0 user is gone). So a process killed anywhere between
//! leaves the intent behind, and cleanup, once the intent is older than the grace period (its
//! process is surely gone), makes the Auth0 user match the row, whatever the row now says:
//! unblocked with the row's role tag for an active row, blocked for a deactivated one, deleted
//! when the row is gone. An intent is also the user's lock across the two transactions: one
//! operation on a user at a time, the next one answered "in progress".

use super::{Failure, Step};
use crate::db::{Bound, intents};
use crate::domain::{Auth0UserId, TenantId, UserId};

/// The intent's step: writing or removing it.
pub const INTENT: Step = Step::local("intent", "recording the change");

/// What an operation is about to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub auth0_user_id: Auth0UserId,
    /// `update`, `deactivate`, `reactivate` or `delete`.
    pub operation: &'static str,
}

/// Records `intent` of `attempt` in the transaction about to commit; `Ok(false)` when the
/// user has one of another attempt.
pub async fn record(
    client: &impl deadpool_postgres::GenericClient,
    db: Bound,
    intent: &Intent,
    attempt: uuid::Uuid,
) -> Result<bool, Failure> {
    db.on(intents::insert(
        client,
        intent.user_id,
        intent.tenant_id,
        &intent.auth0_user_id,
        intent.operation,
        attempt,
    ))
    .await
    .map_err(Failure::database(INTENT))
}

/// Removes the intent: both systems agree again.
pub async fn close(
    client: &impl deadpool_postgres::GenericClient,
    db: Bound,
    user_id: UserId,
) -> Result<(), Failure> {
    db.on(intents::delete(client, user_id))
        .await
        .map_err(Failure::database(INTENT))
}
