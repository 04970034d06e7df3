//! The reads: one user, a tenant's users newest first (the admin API's list), and the users a
//! SCIM filter finds with their count, for a principal who may manage users. Read without a
//! transaction: the principal, then (or with, where the read does not depend on it) the rows.

use super::LifecycleError;
use super::steps::FIND_USER;
use crate::access::Credential;
use crate::db::Bound;
use crate::db::user_views::{self, ListQuery, UserMatch, UserView};
use crate::deadline::Deadline;
use crate::domain::{Auth0Link, UserId};
use crate::flow::{self, Failure, connection};
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
            flow::authorize::<LifecycleError>(&client, db, credential),
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
            let principal = flow::authorize::<LifecycleError>(&client, db, credential).await?;
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

/// A page of the principal's tenant's users that `matching` finds, oldest first from the
/// `offset`-th, at most `limit` (none at all for 0); with how many it finds in all. Both
/// statements in one round trip.
pub async fn matching_users(
    state: &AppState,
    credential: &Credential,
    matching: &UserMatch,
    offset: usize,
    limit: usize,
    deadline: &Deadline,
) -> Result<(u64, Vec<UserView>), LifecycleError> {
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    let read = |err| LifecycleError::from(Failure::database(FIND_USER)(err));
    loop {
        let client = attempts.connection().await?;
        let result = async {
            let principal = flow::authorize::<LifecycleError>(&client, db, credential).await?;
            if matching.nothing {
                return Ok((0, Vec::new()));
            }
            let tenant = principal.tenant_id;
            let (total, page) = tokio::join!(
                db.on(user_views::count_matching(&client, tenant, matching)),
                async {
                    match limit {
                        0 => Ok(Vec::new()),
                        _ => {
                            let (offset, limit) = (offset as i64, limit as i64);
                            db.on(user_views::matching_page(
                                &client, tenant, matching, offset, limit,
                            ))
                            .await
                        }
                    }
                }
            );
            let total = total.map_err(read)?;
            Ok((
                u64::try_from(total).unwrap_or_default(),
                page.map_err(read)?,
            ))
        }
        .await;
        if !attempts.again(client, &result) {
            return result;
        }
    }
}
