//! The password-setup invitation: a fresh token whose hash is stored inside a savepoint, and
//! the email carrying its link. create-user issues the first one; resend-invitation replaces
//! it. Both run inside the caller's transaction, so a failed email keeps nothing.

use chrono::{DateTime, Utc};
use url::Url;

use super::LifecycleError;
use super::steps::{RESET_TOKEN, SEND_EMAIL};
use crate::db::{self, Bound, Tx, execute_prepared, reset_tokens};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, Email, Role, UserId};
use crate::email::{EmailError, PasswordSetupEmail};
use crate::flow::{Context, Failure};
use crate::reset_token::{ResetToken, SetupTokenKey};
use crate::state::AppState;

/// Who is invited, and to what.
pub(super) struct Invitee<'a> {
    pub user_id: UserId,
    pub email: &'a Email,
    pub role: Role,
    pub tenant_name: &'a str,
}

/// Which invitation this is, which decides the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Issue<'a> {
    /// create-user: no token exists yet. The token is derived from the Auth0 user, so a retry
    /// that adopts the Auth0 user of a crashed attempt sends the very same message (which the
    /// email API then delivers only once) and the link already sent starts to work.
    First { auth0_id: &'a Auth0UserId },
    /// create-user taking over the login of a user that was deleted (its Auth0 user was
    /// blocked before its row went): a fresh random token, so that a link the deleted user
    /// was sent for that login does not come back to life.
    FirstOfAnOldLogin,
    /// resend-invitation: a fresh random token; every open token of the user stops working.
    Replacing,
}

/// Stores the token and sends the email; returns when the link expires. The caller commits.
pub(super) async fn invite(
    cx: &Context<'_>,
    tx: &Tx<'_>,
    invitee: &Invitee<'_>,
    issue: Issue<'_>,
) -> Result<DateTime<Utc>, LifecycleError> {
    let token = new_token(cx.state, issue).await?;
    let expires_at = expiry(cx.state);
    let token = store_token(tx, cx.db, invitee.user_id, expires_at, issue, token).await?;
    send(cx.state, invitee, &token, cx.deadline).await?;
    Ok(expires_at)
}

/// When a link issued now stops working.
pub(super) fn expiry(state: &AppState) -> DateTime<Utc> {
    Utc::now() + state.config.reset_token_ttl
}

/// The invitation's token: derived from the Auth0 user for the first, random for a replacement.
pub(super) async fn new_token(state: &AppState, issue: Issue<'_>) -> Result<ResetToken, Failure> {
    match issue {
        Issue::First { auth0_id } => {
            let secret = state
                .app_secret
                .get()
                .await
                .map_err(|err| Failure::email(SEND_EMAIL)(EmailError::Secret(err)))?;
            Ok(ResetToken::derive(
                &SetupTokenKey::from_app_secret(&secret),
                auth0_id,
            ))
        }
        Issue::FirstOfAnOldLogin | Issue::Replacing => Ok(ResetToken::generate()),
    }
}

/// Sends the email with the link to `token`.
pub(super) async fn send(
    state: &AppState,
    invitee: &Invitee<'_>,
    token: &ResetToken,
    deadline: &Deadline,
) -> Result<(), Failure> {
    let link = set_password_link(&state.config.frontend_url, token, invitee.email);
    let email = PasswordSetupEmail {
        to: invitee.email,
        tenant_name: invitee.tenant_name,
        role: invitee.role,
        link: &link,
        valid_for: state.config.reset_token_ttl,
    };
    let message_id = state
        .email
        .send_password_setup(&email, deadline)
        .await
        .map_err(Failure::email(SEND_EMAIL))?;
    tracing::debug!(
        step = "send_email",
        message_id,
        "password-setup email accepted"
    );
    Ok(())
}

/// Stores the hash of `first_token` (or, after a collision, of a random one) and returns the
/// token stored. In a savepoint, so a hash collision (astronomically unlikely) costs one retry
/// with a random token, not the user. SAVEPOINT goes out with the insert, in one round trip,
/// and is never released on its own: the COMMIT (or the release of an enclosing savepoint)
/// takes it along. Both go out on the first poll, so a statement polled just before them goes
/// out with them.
pub(super) async fn store_token(
    tx: &Tx<'_>,
    db: Bound,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    issue: Issue<'_>,
    first_token: ResetToken,
) -> Result<ResetToken, Failure> {
    let tx = tx.client();
    let failed = |err| Failure::database(RESET_TOKEN)(err);
    // So that SAVEPOINT goes out on its first poll (nothing to send once cached).
    db::ensure_prepared(db, tx, &[SAVEPOINT])
        .await
        .map_err(failed)?;
    let mut collided = false;
    let mut next = Some(first_token);
    loop {
        let token = next.take().unwrap_or_else(ResetToken::generate);
        let store = async {
            match issue {
                Issue::First { .. } | Issue::FirstOfAnOldLogin => {
                    db.on(reset_tokens::insert(tx, user_id, token.hash(), expires_at))
                        .await
                }
                Issue::Replacing => {
                    db.on(reset_tokens::replace_open(
                        tx,
                        user_id,
                        token.hash(),
                        expires_at,
                    ))
                    .await
                }
            }
        };
        // Polled in this order, so SAVEPOINT reaches the server before the insert.
        let (opened, stored) = tokio::join!(biased; db.on(execute_prepared(tx, SAVEPOINT)), store);
        opened.map_err(failed)?;
        match stored {
            Ok(()) => {
                tracing::debug!(step = "reset_token", "reset token hash stored");
                return Ok(token);
            }
            Err(err)
                if !collided
                    && err.violated_unique_constraint()
                        == Some(reset_tokens::TOKEN_HASH_UNIQUE) =>
            {
                tracing::warn!("reset token hash collided; trying a new token");
                db.on(tx.batch_execute(ROLLBACK_TO_SAVEPOINT))
                    .await
                    .map_err(failed)?;
                collided = true;
            }
            Err(err) => return Err(failed(err)),
        }
    }
}

const SAVEPOINT: &str = "SAVEPOINT reset_token";
const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT reset_token";

/// `{frontend}/auth/set-password?token=…&email=…`, the page that calls set-password.
fn set_password_link(frontend: &Url, token: &ResetToken, email: &Email) -> Url {
    let mut link = frontend.clone();
    link.set_path(&format!(
        "{}/auth/set-password",
        frontend.path().trim_end_matches('/')
    ));
    link.query_pairs_mut()
        .clear()
        .append_pair("token", token.expose())
        .append_pair("email", email.as_str());
    link
}
