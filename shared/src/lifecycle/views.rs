//! The reads of the admin API: one user, and a tenant's users newest first, for a principal
//! who may manage users. Read without a transaction: one statement each.

use super::LifecycleError;
use super::steps::FIND_USER;
use crate::access::{self, Credential};
use crate::db::Bound;
use crate::db::user_views::{self, ListQuery, UserView};
use crate::deadline::Deadline;
use crate::domain::{Auth0Link, UserId};
use crate::flow::{Failure, connection};
use crate::state::AppState;

/// The user `id` of the principal's tenant; another tenant's is "not found".
pub async fn user(
    state: &AppState,
    credential: &Credential,
    id: UserId,
    deadline: &Deadline,
) -> Result<UserView, LifecycleError> {
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let client = attempts.connection().await?;
        // Pipelined on one connection: one round trip for both.
        let (principal, found) = tokio::join!(
            access::resolve::<LifecycleError>(&client, db, credential),
            db.on(user_views::by_id(&client, id))
        );
        let result = principal.and_then(|principal| {
            let user = found
                .map_err(|err| LifecycleError::from(Failure::database(FIND_USER)(err)))?
                .filter(|view| principal.sees(view.user.tenant_id))
                .ok_or(LifecycleError::UserNotFound)?;
            if user.user.auth0 == Auth0Link::Pending {
                return Err(LifecycleError::CreationInProgress);
            }
            Ok(user)
        });
        if !attempts.again(client, &result) {
            return result;
        }
    }
}

/// A page of the principal's tenant's users, newest first.
pub async fn users(
    state: &AppState,
    credential: &Credential,
    query: &ListQuery,
    deadline: &Deadline,
) -> Result<Vec<UserView>, LifecycleError> {
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let client = attempts.connection().await?;
        let result = async {
            let principal = access::resolve::<LifecycleError>(&client, db, credential).await?;
            db.on(user_views::list(&client, principal.tenant_id, query))
                .await
                .map_err(|err| LifecycleError::from(Failure::database(FIND_USER)(err)))
        }
        .await;
        if !attempts.again(client, &result) {
            return result;
        }
    }
}
