//! The password-setup invitation: a fresh token whose hash is stored inside a savepoint, and
//! the email carrying its link. create-user issues the first one; resend-invitation replaces
//! it. Both run inside the caller's transaction, so a failed email keeps nothing.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use url::Url;

use super::{CreateUserError, Step};
use crate::db::{self, reset_tokens};
use crate::deadline::Deadline;
use crate::domain::{Email, Role, UserId};
use crate::email::PasswordSetupEmail;
use crate::reset_token::ResetToken;
use crate::state::AppState;

/// Who is invited, and to what.
pub(super) struct Invitee<'a> {
    pub user_id: UserId,
    pub email: &'a Email,
    pub role: Role,
    pub tenant_name: &'a str,
}

/// Whether the user may already hold tokens that the new one must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Issue {
    /// A user created in this transaction: no token exists yet.
    First,
    /// resend-invitation: every open token of the user stops working.
    Replacing,
}

/// Stores the token and sends the email; returns when the link expires. The caller commits.
pub(super) async fn invite(
    state: &AppState,
    tx: &mut Transaction<'_>,
    invitee: &Invitee<'_>,
    issue: Issue,
    deadline: &Deadline,
) -> Result<DateTime<Utc>, CreateUserError> {
    let expires_at = Utc::now() + state.config.reset_token_ttl;
    let token = store_reset_token(tx, invitee.user_id, expires_at, issue).await?;
    tracing::info!(step = "reset_token", "reset token hash stored");

    let link = set_password_link(&state.config.frontend_url, &token, invitee.email);
    // The same key makes the email API send a message once however often we retry; a resend
    // is a new message, so its key names its token (by a prefix of the hash, never the token).
    let idempotency_key = match issue {
        Issue::First => format!("password-setup/{}", invitee.user_id),
        Issue::Replacing => format!(
            "password-setup/{}/{}",
            invitee.user_id,
            hex::encode(&token.hash()[..8])
        ),
    };
    let email = PasswordSetupEmail {
        to: invitee.email,
        tenant_name: invitee.tenant_name,
        role: invitee.role,
        link: &link,
        expires_at,
        idempotency_key,
    };
    let message_id = state
        .email
        .send_password_setup(&email, deadline)
        .await
        .map_err(|source| CreateUserError::Email {
            source,
            compensation: super::Compensation::NotNeeded,
        })?;
    tracing::info!(
        step = "send_email",
        message_id,
        "password-setup email accepted"
    );
    Ok(expires_at)
}

/// In a savepoint, so a hash collision (astronomically unlikely) costs one retry, not the user.
async fn store_reset_token(
    tx: &mut Transaction<'_>,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    issue: Issue,
) -> Result<ResetToken, CreateUserError> {
    let mut collided = false;
    loop {
        let token = ResetToken::generate();
        let savepoint = tx
            .savepoint("reset_token")
            .await
            .map_err(CreateUserError::database(Step::ResetToken))?;
        let stored = match issue {
            Issue::First => {
                reset_tokens::insert(&savepoint, user_id, token.hash(), expires_at).await
            }
            Issue::Replacing => {
                reset_tokens::replace_open(&savepoint, user_id, token.hash(), expires_at).await
            }
        };
        match stored {
            Ok(()) => {
                savepoint
                    .commit()
                    .await
                    .map_err(CreateUserError::database(Step::ResetToken))?;
                return Ok(token);
            }
            Err(err)
                if !collided
                    && db::violated_unique_constraint(&err)
                        == Some(reset_tokens::TOKEN_HASH_UNIQUE) =>
            {
                tracing::warn!("reset token hash collided; trying a new token");
                savepoint
                    .rollback()
                    .await
                    .map_err(CreateUserError::database(Step::ResetToken))?;
                collided = true;
            }
            Err(err) => return Err(CreateUserError::database(Step::ResetToken)(err)),
        }
    }
}

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
