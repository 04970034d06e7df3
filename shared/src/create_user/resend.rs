//! resend-invitation: a new password-setup link for a user of the caller's tenant who has not
//! set a password yet. One transaction: lock the user, replace the open tokens with a new one
//! (in a savepoint), send the email, COMMIT. If the email fails nothing changes and the link
//! the person already holds keeps working.

use chrono::{DateTime, Utc};

use super::invitation::{self, Invitee, Issue};
use deadpool_postgres::Object;

use super::{CreateUserError, Step, authorize, discard_if_silent};
use crate::db::users::{self, UserRecord};
use crate::db::{Bound, Tx};
use crate::deadline::Deadline;
use crate::domain::{CallerSub, Email};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct ResentInvitation {
    pub user: UserRecord,
    /// When the new link stops working.
    pub expires_at: DateTime<Utc>,
}

pub async fn resend_invitation(
    state: &AppState,
    caller_sub: &CallerSub,
    email: &Email,
    deadline: &Deadline,
) -> Result<ResentInvitation, CreateUserError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let mut client = db.get(&state.pool).await.map_err(CreateUserError::Pool)?;
    let result = resend_on(&mut client, db, state, caller_sub, email, deadline).await;
    discard_if_silent(client, &result);
    result
}

async fn resend_on(
    client: &mut Object,
    db: Bound,
    state: &AppState,
    caller_sub: &CallerSub,
    email: &Email,
    deadline: &Deadline,
) -> Result<ResentInvitation, CreateUserError> {
    // Pipelined with BEGIN: the invitee is looked up in the caller's tenant by the caller's
    // sub, so both reads go out in one round trip; nothing is written before authorization
    // passed.
    let (tx, (caller, invitee)) = Tx::begin_with(client, db, |client, db| async move {
        tokio::join!(
            db.on(users::find_caller(client, caller_sub.as_str())),
            db.on(users::lock_in_callers_tenant(
                client,
                caller_sub.as_str(),
                email
            ))
        )
    })
    .await
    .map_err(CreateUserError::database(Step::Begin))?;
    let caller = authorize(
        caller.map_err(CreateUserError::database(Step::Authorize))?,
        None,
    )?;
    // Another tenant's user is "not found": its existence is not the caller's business.
    let user = invitee
        .map_err(CreateUserError::database(Step::FindUser))?
        .ok_or(CreateUserError::UserNotFound)?;
    if !caller.role.may_create(user.role) {
        return Err(CreateUserError::RoleNotAllowed(user.role));
    }
    if user.is_pending() {
        return Err(CreateUserError::CreationInProgress);
    }
    if user.setup_completed_at.is_some() {
        return Err(CreateUserError::AlreadyActivated);
    }
    if !user.is_active {
        return Err(CreateUserError::UserInactive);
    }

    let invitee = Invitee {
        user_id: user.id,
        email,
        role: user.role,
        tenant_name: &caller.tenant_name,
    };
    let expires_at =
        invitation::invite(state, &tx, db, &invitee, Issue::Replacing, deadline).await?;
    db.on(tx.commit())
        .await
        .map_err(CreateUserError::database(Step::Commit))?;
    tracing::info!(step = "commit", user_id = %user.id, "invitation sent again");
    Ok(ResentInvitation { user, expires_at })
}
