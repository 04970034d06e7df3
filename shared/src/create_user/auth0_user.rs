//! The Auth0 side of create-user: the user's login is created (or an orphan of ours adopted
//! under the address lock), and deleted again when the attempt fails.

use super::{Compensation, CreateUserError, Step};
use crate::auth0::{Auth0User, NewAuth0User, OwnershipTags};
use crate::db::{Bound, Tx, locks, users};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, Email, UserId};
use crate::metrics::{self, Metric};
use crate::reset_token::temporary_password;
use crate::state::AppState;

/// Create (or adopt) rounds: a second only when the orphan we came to adopt was removed by
/// cleanup while we waited for its address.
const PROVISION_ROUNDS: usize = 2;
/// Compensating deletes are idempotent, so a failed one is tried again this often.
const COMPENSATION_ATTEMPTS: u32 = 3;

/// Creates the Auth0 user; on 409 adopts an orphan of ours that no row points at.
pub(super) async fn provision_auth0_user(
    state: &AppState,
    tx: &Tx<'_>,
    db: Bound,
    email: &Email,
    tags: &OwnershipTags,
    deadline: &Deadline,
) -> Result<(Auth0UserId, bool), CreateUserError> {
    let password = temporary_password();
    let request = NewAuth0User {
        email,
        password: &password,
        tags,
    };
    let auth0_failure = |step, source| CreateUserError::Auth0 {
        step,
        source,
        compensation: Compensation::NotNeeded,
    };
    for _ in 0..PROVISION_ROUNDS {
        match state.auth0.create_user(&request, deadline).await {
            Ok(id) => return Ok((id, false)),
            Err(err) if err.is_conflict() => {
                if let Some(id) = adopt_orphan(state, tx, db, email, tags, deadline).await? {
                    return Ok((id, true));
                }
            }
            Err(err) => {
                // Without an answer we cannot know whether Auth0 created the user: look and undo.
                let outcome = if err.may_have_acted() {
                    remove_users_tagged_with(state, email, tags.db_user_id, deadline).await
                } else {
                    Compensation::NotNeeded
                };
                return Err(auth0_failure(Step::Auth0Create, err).with_compensation(outcome));
            }
        }
    }
    Err(CreateUserError::Auth0UserExists)
}

/// Takes over an orphan Auth0 user of ours with this address. `None`: the address has no
/// Auth0 user any more (cleanup removed it while we waited for the address lock).
async fn adopt_orphan(
    state: &AppState,
    tx: &Tx<'_>,
    db: Bound,
    email: &Email,
    tags: &OwnershipTags,
    deadline: &Deadline,
) -> Result<Option<Auth0UserId>, CreateUserError> {
    let auth0_failure = |source| CreateUserError::Auth0 {
        step: Step::Auth0Adopt,
        source,
        compensation: Compensation::NotNeeded,
    };
    // Held until COMMIT or ROLLBACK: cleanup cannot delete the user we adopt meanwhile. A
    // wait past `lock_timeout` is a busy database (503 DATABASE_BUSY), like any lock wait.
    db.on(locks::lock_address(tx, email.as_str()))
        .await
        .map_err(CreateUserError::database(Step::Auth0Adopt))?;
    let existing = state
        .auth0
        .users_by_email(email, deadline)
        .await
        .map_err(auth0_failure)?;
    if existing.is_empty() {
        return Ok(None);
    }
    let Some(orphan) = existing.iter().find(|u| u.is_ours()) else {
        return Err(CreateUserError::Auth0UserExists);
    };
    let orphan_id = orphan.id.clone();
    let claimed = db
        .on(users::auth0_sub_in_use(tx.client(), &orphan_id))
        .await
        .map_err(CreateUserError::database(Step::Auth0Adopt))?;
    if claimed {
        return Err(CreateUserError::Auth0UserExists);
    }
    tracing::info!(step = "auth0_adopt", auth0_user_id = %orphan_id, "adopting an orphan auth0 user of ours");
    match state.auth0.set_tags(&orphan_id, tags, deadline).await {
        Ok(_) => Ok(Some(orphan_id)),
        // It was an orphan before this request and stays one: the next retry adopts it (and
        // the link its first attempt may have emailed starts to work), or cleanup removes it.
        Err(err) => Err(auth0_failure(err).with_compensation(Compensation::KeptForRetry)),
    }
}

/// Deletes the Auth0 user we created; idempotent, so retried a few times.
pub(super) async fn compensate(
    state: &AppState,
    auth0_id: &Auth0UserId,
    deadline: &Deadline,
) -> Compensation {
    for attempt in 1..=COMPENSATION_ATTEMPTS {
        match state.auth0.delete_user(auth0_id, deadline).await {
            Ok(()) => {
                tracing::info!(step = "compensate", attempt, "auth0 user deleted");
                metrics::count(Metric::CompensatingDeletes, 1, None);
                return Compensation::Deleted;
            }
            Err(err) => {
                tracing::warn!(step = "compensate", attempt, error = %err, "compensating delete failed");
                if deadline.remaining() < std::time::Duration::from_millis(200) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                    .await;
            }
        }
    }
    tracing::error!(step = "compensate", auth0_user_id = %auth0_id, "auth0 user left for the cleanup job");
    metrics::count(Metric::CompensatingDeleteFailures, 1, None);
    Compensation::Failed
}

/// After an unanswered create: finds the user Auth0 may have made for this attempt and deletes it.
async fn remove_users_tagged_with(
    state: &AppState,
    email: &Email,
    db_user_id: UserId,
    deadline: &Deadline,
) -> Compensation {
    let found = match state.auth0.users_by_email(email, deadline).await {
        Ok(users) => users,
        Err(err) => {
            tracing::error!(step = "compensate", error = %err, "could not check for a half-created auth0 user");
            return Compensation::Failed;
        }
    };
    let ours: Vec<&Auth0User> = found
        .iter()
        .filter(|u| u.db_user_id() == Some(db_user_id))
        .collect();
    let mut outcome = Compensation::NotNeeded;
    for user in ours {
        outcome = match compensate(state, &user.id, deadline).await {
            Compensation::Failed => Compensation::Failed,
            _ if outcome == Compensation::Failed => Compensation::Failed,
            done => done,
        };
    }
    outcome
}
