//! The Auth0 side of create-user: the user's login is created, or an orphan of ours taken over
//! under the address lock. Both go through [`Auth0Changes`], which undoes them when the
//! transaction does not commit.

use super::LifecycleError;
use super::steps::{AUTH0_ADOPT, AUTH0_CREATE};
use crate::auth0::{NewAuth0User, OwnershipTags};
use crate::db::{Tx, locks, users};
use secrecy::SecretString;

use crate::domain::{Auth0UserId, Email};
use crate::flow::{Auth0Changes, Context, Failure};
use crate::reset_token::temporary_password;

/// Create (or adopt) rounds: a second only when the orphan we came to adopt was removed by
/// cleanup while we waited for its address.
const PROVISION_ROUNDS: usize = 2;

/// How the row got its Auth0 user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provisioned {
    Created,
    /// An orphan of ours: a crashed attempt's (a retry's own) or the like.
    Adopted,
    /// An orphan of ours that was blocked: the login of a user deleted since.
    AdoptedOldLogin,
}

/// Creates the Auth0 user; on 409 adopts an orphan of ours that no row points at. Returns the
/// user and how it was had.
pub(super) async fn provision(
    cx: &Context<'_>,
    tx: &Tx<'_>,
    auth0: &mut Auth0Changes<'_>,
    login: &Login<'_>,
) -> Result<(Auth0UserId, Provisioned), LifecycleError> {
    // Without a password of the person's own, one nobody knows: the invitation sets theirs.
    let temporary = temporary_password();
    let request = NewAuth0User {
        email: login.email,
        password: login.password.unwrap_or(&temporary),
        tags: login.tags,
        blocked: login.blocked,
    };
    for _ in 0..PROVISION_ROUNDS {
        match auth0.create_user(AUTH0_CREATE, &request).await {
            Ok(Some(id)) => return Ok((id, Provisioned::Created)),
            Ok(None) => {}
            Err(failure) => return Err(weak_password(failure)),
        }
        if let Some(adopted) = adopt_orphan(cx, tx, auth0, login).await? {
            return Ok(adopted);
        }
    }
    Err(LifecycleError::Auth0UserExists)
}

/// The login a new row gets.
pub(super) struct Login<'a> {
    pub email: &'a Email,
    pub tags: &'a OwnershipTags,
    /// The person's own password (an identity provider's password sync), if one came.
    pub password: Option<&'a SecretString>,
    /// Every login refused: the user is created deactivated.
    pub blocked: bool,
}

/// Auth0's password policy refusing the password is the request's to fix, not a failure.
fn weak_password(failure: Failure) -> LifecycleError {
    if let Failure::Auth0 { source, .. } = &failure
        && let Some(message) = source.password_policy_message()
    {
        return LifecycleError::WeakPassword(message.to_string());
    }
    failure.into()
}

/// Takes over an orphan Auth0 user of ours with this address. `None`: the address has no
/// Auth0 user any more (cleanup removed it while we waited for the address lock).
/// A crashed create leaves its user unblocked; a delete blocks its user before its row goes.
async fn adopt_orphan(
    cx: &Context<'_>,
    tx: &Tx<'_>,
    auth0: &mut Auth0Changes<'_>,
    login: &Login<'_>,
) -> Result<Option<(Auth0UserId, Provisioned)>, LifecycleError> {
    let (email, tags) = (login.email, login.tags);
    // Held until COMMIT or ROLLBACK: cleanup cannot delete the user we adopt meanwhile. A
    // wait past `lock_timeout` is a busy database (503 DATABASE_BUSY), like any lock wait.
    cx.db
        .on(locks::lock_address(tx, email.as_str()))
        .await
        .map_err(Failure::database(AUTH0_ADOPT))?;
    let existing = cx
        .state
        .auth0
        .users_by_email(email, cx.deadline)
        .await
        .map_err(Failure::auth0(AUTH0_ADOPT))?;
    if existing.is_empty() {
        return Ok(None);
    }
    let Some(orphan) = existing.iter().find(|u| u.is_ours()) else {
        return Err(LifecycleError::Auth0UserExists);
    };
    let claimed = cx
        .db
        .on(users::auth0_sub_in_use(tx.client(), &orphan.id))
        .await
        .map_err(Failure::database(AUTH0_ADOPT))?;
    if claimed {
        return Err(LifecycleError::Auth0UserExists);
    }
    tracing::info!(step = "auth0_adopt", auth0_user_id = %orphan.id, "adopting an orphan auth0 user of ours");
    // A password of its own: nothing the login's last holder knew leads into the new account.
    let temporary = temporary_password();
    let password = login.password.unwrap_or(&temporary);
    let revoke = cx.state.config.auth0_revoke_sessions;
    auth0
        .adopt(
            AUTH0_ADOPT,
            &orphan.id,
            tags,
            password,
            revoke,
            login.blocked,
        )
        .await
        .map_err(weak_password)?;
    let how = if orphan.blocked {
        Provisioned::AdoptedOldLogin
    } else {
        Provisioned::Adopted
    };
    Ok(Some((orphan.id.clone(), how)))
}
