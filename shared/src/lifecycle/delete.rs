//! Delete: the user gone from both systems, ordered so that no failure leaves a login
//! without a row.
//!
//! ```text
//! BEGIN ║ principal ║ the user, locked; the rules; the intent; COMMIT   (flow::run)
//! BEGIN ║ principal ║ the user, locked; the rules again
//!   [an active OWNER: another stays]
//!   Auth0: blocked (an active user's; undone by unblocking)
//!   the row deleted: its permissions and tokens with it, its employee kept and unlinked
//! COMMIT
//! Auth0: the user deleted; then the intent removed (a failure leaves both to cleanup,
//! which deletes the Auth0 user of an intent whose row is gone)
//! ```

use deadpool_postgres::Object;

use super::LifecycleError;
use super::steps::{AUTH0_BLOCK, CHANGE_USER};
use super::target::{self, Found};
use crate::db::{Bound, Tx, users};
use crate::domain::{Auth0UserId, UserId};
use crate::flow::{Auth0Changes, Context, Failure, Intent, Operation};

/// Deletes the user `id`.
pub struct DeleteUser {
    pub id: UserId,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUser {
    pub id: UserId,
    pub auth0_user_id: Auth0UserId,
}

impl Operation for DeleteUser {
    type Output = DeletedUser;
    type Error = LifecycleError;
    type Reads = Found;
    const FINISHES_AFTER_COMMIT: bool = true;

    async fn reads(&self, client: &Object, db: Bound) -> Found {
        db.on(users::lock_by_id(client, self.id)).await
    }

    fn intent(&self, cx: &Context<'_>, found: &Found) -> Result<Option<Intent>, LifecycleError> {
        target::intent(cx, found, "delete", |_| Ok(true))
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        found: Found,
    ) -> Result<DeletedUser, LifecycleError> {
        let (user, auth0_id) = target::changeable(cx, found)?;
        target::keep_an_owner(cx, tx, &user).await?;
        // A deactivated user's login is blocked already.
        if user.is_active {
            auth0.block(AUTH0_BLOCK, &auth0_id).await?;
        }
        cx.db
            .on(users::delete(tx.client(), user.id))
            .await
            .map_err(Failure::database(CHANGE_USER))?;
        Ok(DeletedUser {
            id: user.id,
            auth0_user_id: auth0_id,
        })
    }

    async fn after_commit(&self, cx: &Context<'_>, deleted: &DeletedUser) -> Result<(), Failure> {
        // Nothing is left to undo: the delete may use the deadline's reserve (it does).
        cx.state
            .auth0
            .delete_user(&deleted.auth0_user_id, cx.deadline)
            .await
            .map_err(Failure::auth0(super::steps::AUTH0_DELETE))?;
        tracing::debug!(step = "auth0_delete", "auth0 user deleted");
        Ok(())
    }

    fn committed(&self, deleted: &DeletedUser) {
        tracing::info!(step = "commit", user_id = %deleted.id, auth0_user_id = %deleted.auth0_user_id, "user deleted");
    }
}
