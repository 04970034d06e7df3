//! set-password: the invited person's public calls. The token in the emailed link is the
//! credential, so there is no JWT; only the token's SHA-256 is ever compared or looked up.
//!
//! ```text
//! verify {token, email}            → the link's tenant, role and expiry; consumes nothing
//! set    {token, email, password}
//! BEGIN ║ token row by hash FOR UPDATE (one round trip); the user's address; unexpired; unused
//!   Auth0 PATCH /api/v2/users/{id} {password, connection}   policy error → 400, token kept
//!   every open token of the user used; the user's set-up completed
//! COMMIT
//! ```
//! Any failure rolls back, so the link keeps working. Auth0 setting the same password twice
//! is harmless, which makes a retry after a failed COMMIT safe.

mod error;
pub mod handler;
pub mod request;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

pub use error::SetPasswordError;
pub use request::{NewPassword, SetupLink};

use crate::db::reset_tokens::{self, TokenRecord};
use crate::db::{Bound, Tx};
use crate::deadline::Deadline;
use crate::domain::{Auth0Link, Auth0UserId, Role};
use crate::flow::{Failure, Step, connection};
use crate::state::AppState;
use error::steps::{COMPLETE_SETUP, FIND_TOKEN};

/// What the page shows about a working link.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub email: String,
    pub tenant_name: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// Checks the link without consuming it.
pub async fn verify_link(
    state: &AppState,
    link: &SetupLink,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    // Verifying has nothing to undo, so it may spend the deadline's reserve too.
    let db = Bound::until(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let client = attempts.connection().await?;
        let result = db
            .on(reset_tokens::find(&client, link.token_hash()))
            .await
            .map_err(|err| Failure::database(FIND_TOKEN)(err).into())
            .and_then(|record| usable(record, link))
            .map(|(record, _)| link_info(record));
        if !attempts.again(client, &result) {
            return result;
        }
    }
}

/// Sets the password in Auth0 and uses the link up, all or nothing. A lost connection is
/// retried only before Auth0 was called.
pub async fn set_password(
    state: &AppState,
    link: &SetupLink,
    password: &NewPassword,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let mut attempts = connection::Attempts::new(state, db);
    loop {
        let mut client = attempts.connection().await?;
        let result = set_on(&mut client, db, state, link, password, deadline).await;
        if !attempts.again(client, &result) {
            return result;
        }
    }
}

async fn set_on(
    client: &mut Object,
    db: Bound,
    state: &AppState,
    link: &SetupLink,
    password: &NewPassword,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    // Locked until COMMIT: a second request with the same link waits here, then finds it used.
    // The lookup goes out with BEGIN, in one round trip.
    let (tx, record) = Tx::begin_with(client, db, |client, db| async move {
        db.on(reset_tokens::lock(client, link.token_hash())).await
    })
    .await
    .map_err(Failure::database(Step::BEGIN))?;
    let record = record.map_err(Failure::database(FIND_TOKEN))?;
    let (record, auth0_id) = usable(record, link)?;
    let user_id = record.user_id;

    state
        .auth0
        .set_password(&auth0_id, password.secret(), deadline)
        .await
        .map_err(SetPasswordError::from_auth0)?;
    tracing::info!(step = "auth0_password", user_id = %user_id, "auth0 password set");

    db.on(reset_tokens::complete_setup(tx.client(), user_id))
        .await
        .map_err(Failure::database(COMPLETE_SETUP))?;
    // A COMMIT without an answer is harmless here: if it did not land the link still works
    // and the retry sets the password again.
    db.on(tx.commit())
        .await
        .map_err(Failure::database(Step::COMMIT))?;
    tracing::info!(step = "commit", user_id = %user_id, "set-up completed");
    Ok(link_info(record))
}

/// The one place that decides whether a link works. Expiry is told apart only for an
/// otherwise valid link (right address, unused), so it reveals nothing to a guesser.
fn usable(
    record: Option<TokenRecord>,
    link: &SetupLink,
) -> Result<(TokenRecord, Auth0UserId), SetPasswordError> {
    let record = record.ok_or(SetPasswordError::InvalidLink)?;
    if record.email != link.email.as_str() || record.used || !record.user_is_active {
        return Err(SetPasswordError::InvalidLink);
    }
    // A committed token always belongs to a user with an Auth0 id, never a pending one.
    let Auth0Link::Linked(auth0_id) = record.auth0.clone() else {
        return Err(SetPasswordError::InvalidLink);
    };
    if record.expired {
        return Err(SetPasswordError::LinkExpired);
    }
    Ok((record, auth0_id))
}

fn link_info(record: TokenRecord) -> LinkInfo {
    LinkInfo {
        email: record.email,
        tenant_name: record.tenant_name,
        role: record.role,
        expires_at: record.expires_at,
    }
}
