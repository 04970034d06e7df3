//! Deactivate and reactivate: the row and the Auth0 user's `blocked` flag, all or nothing.
//!
//! ```text
//! BEGIN ║ principal ║ the user, locked; the rules; the intent; COMMIT   (flow::run)
//! BEGIN ║ principal ║ the user, locked; the rules again
//!   [deactivating an active OWNER: another stays]
//!   the row (deactivating: every open invitation link used up)
//!   Auth0: blocked true (undone by false), then sessions and refresh tokens ended;
//!          or blocked false (undone by true)
//!   the user read back; the intent removed
//! COMMIT
//! ```
//! Asking for the state the user is in already changes nothing and answers the user as it is.

use deadpool_postgres::Object;

use super::LifecycleError;
use super::steps::{AUTH0_BLOCK, AUTH0_REVOKE, AUTH0_UNBLOCK, CHANGE_USER};
use super::target::{self, Found};
use crate::db::user_views::UserView;
use crate::db::{Bound, Tx, users};
use crate::domain::UserId;
use crate::flow::{Auth0Changes, Context, Failure, Intent, Operation};

/// Deactivates (`active: false`) or reactivates (`active: true`) the user `id`.
pub struct SetActive {
    pub id: UserId,
    pub active: bool,
}

impl SetActive {
    fn name(&self) -> &'static str {
        if self.active {
            "reactivate"
        } else {
            "deactivate"
        }
    }
}

impl Operation for SetActive {
    type Output = UserView;
    type Error = LifecycleError;
    type Reads = Found;

    async fn reads(&self, client: &Object, db: Bound) -> Found {
        db.on(users::lock_by_id(client, self.id)).await
    }

    fn intent(&self, cx: &Context<'_>, found: &Found) -> Result<Option<Intent>, LifecycleError> {
        target::intent(cx, found, self.name(), |user| {
            Ok(user.is_active != self.active)
        })
    }

    async fn run(
        &self,
        cx: &Context<'_>,
        tx: &Tx<'_>,
        auth0: &mut Auth0Changes<'_>,
        found: Found,
    ) -> Result<UserView, LifecycleError> {
        let (user, auth0_id) = target::changeable(cx, found)?;
        if user.is_active == self.active {
            return target::read_back(cx, tx, user.id).await;
        }
        let id = user.id;
        if self.active {
            let view = target::change_and_read_back(
                cx,
                tx,
                id,
                &[users::REACTIVATE],
                |c, db| async move {
                    db.on(users::reactivate(c, id))
                        .await
                        .map_err(|err| Failure::database(CHANGE_USER)(err).into())
                },
            )
            .await?;
            auth0.unblock(AUTH0_UNBLOCK, &auth0_id).await?;
            return Ok(view);
        }
        target::keep_an_owner(cx, tx, &user).await?;
        let view =
            target::change_and_read_back(cx, tx, id, &[users::DEACTIVATE], |c, db| async move {
                db.on(users::deactivate(c, id))
                    .await
                    .map_err(|err| Failure::database(CHANGE_USER)(err).into())
            })
            .await?;
        // Blocked first: from then on no login or refresh succeeds, whatever follows.
        auth0.block(AUTH0_BLOCK, &auth0_id).await?;
        if cx.state.config.auth0_revoke_sessions {
            auth0.revoke_logins(AUTH0_REVOKE, &auth0_id).await?;
        }
        Ok(view)
    }

    fn committed(&self, user: &UserView) {
        tracing::info!(step = "commit", user_id = %user.user.id, operation = self.name(), "user {}d", self.name());
    }
}
