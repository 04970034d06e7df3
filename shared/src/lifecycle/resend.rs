//! resend-invitation: a new password-setup link for a user of the principal's tenant who has
//! not set a password yet. One transaction: lock the user, replace the open tokens with a new
//! one (in a savepoint), send the email, COMMIT. If the email fails nothing changes and the link
//! the person already holds keeps working.

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use super::LifecycleError;
use super::invitation::{self, Invitee, Issue};
use super::steps::FIND_USER;
use crate::db::users::{self, UserRecord};
use crate::db::{Bound, DbError, Tx};
use crate::domain::{Auth0Link, Email};
use crate::flow::{Auth0Changes, Context, Failure, Operation};

#[derive(Debug, Clone)]
pub struct ResentInvitation {
    pub user: UserRecord,
    /// When the new link stops working.
    pub expires_at: DateTime<Utc>,
}

/// Sends the user with this address a new invitation.
pub struct ResendInvitation<'a> {
    pub email: &'a Email,
}

impl Operation for ResendInvitation<'_> {
    type Output = ResentInvitation;
    type Error = LifecycleError;
    /// The user with the address, in any tenant, locked.
    type Reads = Result<Option<UserRecord>, DbError>;

    async fn reads(&self, client: &Object, db: Bound) -> Self::Reads {
        db.on(users::lock_by_email(client, self.email)).await
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        _auth0: &mut Auth0Changes<'_>,
        user: Self::Reads,
    ) -> Result<ResentInvitation, LifecycleError> {
        // Another tenant's user is "not found": its existence is not the caller's business.
        let user = user
            .map_err(Failure::database(FIND_USER))?
            .filter(|user| cx.principal.sees(user.tenant_id))
            .ok_or(LifecycleError::UserNotFound)?;
        cx.principal.may_manage(user.role)?;
        if user.auth0 == Auth0Link::Pending {
            return Err(LifecycleError::CreationInProgress);
        }
        if user.setup_completed_at.is_some() {
            return Err(LifecycleError::AlreadyActivated);
        }
        if !user.is_active {
            return Err(LifecycleError::UserInactive);
        }
        let invitee = Invitee {
            user_id: user.id,
            email: self.email,
            role: user.role,
            tenant_name: &cx.principal.tenant_name,
        };
        let expires_at = invitation::invite(cx, tx, &invitee, Issue::Replacing).await?;
        Ok(ResentInvitation { user, expires_at })
    }

    fn committed(&self, resent: &ResentInvitation) {
        tracing::info!(step = "commit", user_id = %resent.user.id, "invitation sent again");
    }
}
