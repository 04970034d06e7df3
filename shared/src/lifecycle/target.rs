//! The existing user an operation changes, as its reads found it, and the rules every change
//! to one passes.

use super::LifecycleError;
use std::future::Future;

use deadpool_postgres::Object;

use super::steps::{CHANGE_USER, FIND_USER, OWNERS, READ_USER};
use crate::access;
use crate::db::user_views::{self, UserView};
use crate::db::users::{self, UserRecord};
use crate::db::{self, Bound, DbError, Tx};
use crate::domain::{Auth0Link, Auth0UserId, Role, UserId};
use crate::flow::{Context, Failure, Intent};

/// What a change reads with BEGIN: the user, locked.
pub(super) type Found = Result<Option<UserRecord>, DbError>;

/// The user, if the principal may change it: seen (another tenant's is "not found"), changed
/// by someone else than itself, an OWNER only by an OWNER, and created (a pending row has no
/// login yet).
pub(super) fn changeable(
    cx: &Context<'_>,
    found: Found,
) -> Result<(UserRecord, Auth0UserId), LifecycleError> {
    let user = found
        .map_err(Failure::database(FIND_USER))?
        .filter(|user| cx.principal.sees(user.tenant_id))
        .ok_or(LifecycleError::UserNotFound)?;
    cx.principal.may_change(user.id, user.role)?;
    let Auth0Link::Linked(auth0) = user.auth0.clone() else {
        return Err(LifecycleError::CreationInProgress);
    };
    Ok((user, auth0))
}

/// The intent of `operation` on the user found, once every rule passed; `None` when the reads
/// failed (the operation's run reports how) or `needed` says the change touches nothing in Auth0.
pub(super) fn intent(
    cx: &Context<'_>,
    found: &Found,
    operation: &'static str,
    needed: impl FnOnce(&UserRecord) -> Result<bool, LifecycleError>,
) -> Result<Option<Intent>, LifecycleError> {
    let Ok(found) = found else {
        return Ok(None);
    };
    // The rules, on a copy: the owned reads go to the run.
    let (user, auth0_user_id) = changeable(cx, Ok(found.clone()))?;
    if !needed(&user)? {
        return Ok(None);
    }
    Ok(Some(Intent {
        user_id: user.id,
        tenant_id: user.tenant_id,
        auth0_user_id,
        operation,
    }))
}

/// A change that takes an active OWNER away keeps another: checked under the tenant's owners
/// lock, held until COMMIT.
pub(super) async fn keep_an_owner(
    cx: &Context<'_>,
    tx: &Tx<'_>,
    user: &UserRecord,
) -> Result<(), LifecycleError> {
    if user.role != Role::Owner || !user.is_active {
        return Ok(());
    }
    let others = cx
        .db
        .on(users::other_active_owners(
            tx.client(),
            user.tenant_id,
            user.id,
        ))
        .await
        .map_err(Failure::database(OWNERS))?;
    Ok(access::keeps_an_owner(others)?)
}

/// The row's change and the user read back with it, in one round trip (prepared first, so
/// the read runs after the change and sees it): what every change to a user ends its
/// database part with, before it calls Auth0. `statements` are the change's.
pub(super) async fn change_and_read_back<'c, F, Fut>(
    cx: &Context<'_>,
    tx: &Tx<'c>,
    id: UserId,
    statements: &[&str],
    change: F,
) -> Result<UserView, LifecycleError>
where
    F: FnOnce(&'c Object, Bound) -> Fut,
    Fut: Future<Output = Result<(), LifecycleError>>,
{
    let view_sql = user_views::by_id_sql();
    let mut prepared = statements.to_vec();
    prepared.push(&view_sql);
    let client = tx.client();
    db::ensure_prepared(cx.db, client, &prepared)
        .await
        .map_err(Failure::database(CHANGE_USER))?;
    let (changed, view) = cx
        .db
        .burst(|db| async move {
            tokio::join!(biased; change(client, db), db.on(user_views::by_id(client, id)))
        })
        .await
        .map_err(Failure::database(CHANGE_USER))?;
    changed?;
    let view = view.map_err(Failure::database(READ_USER))?;
    // The row is locked by this transaction: it is there.
    view.ok_or(LifecycleError::UserNotFound)
}
