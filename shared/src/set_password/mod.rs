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

pub use error::{SetPasswordError, Step};
pub use request::{NewPassword, SetupLink};

use crate::db::reset_tokens::{self, TokenRecord};
use crate::db::{self, Bound, Tx};
use crate::deadline::Deadline;
use crate::domain::{Auth0UserId, Role};
use crate::state::AppState;

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
    db::retry_on_lost_connection(
        &state.pool,
        || verify_once(state, link, deadline),
        SetPasswordError::is_safe_to_retry,
    )
    .await
}

async fn verify_once(
    state: &AppState,
    link: &SetupLink,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    // Verifying has nothing to undo, so it may spend the deadline's reserve too.
    let db = Bound::until(*deadline, &state.config.timeouts);
    let client = db.get(&state.pool).await.map_err(SetPasswordError::Pool)?;
    let record = db
        .on(reset_tokens::find(&client, link.token_hash()))
        .await
        .map_err(SetPasswordError::database(Step::FindToken));
    let record = discard_if_silent(client, record)?;
    let (record, _) = usable(record, link)?;
    Ok(link_info(record))
}

/// Sets the password in Auth0 and uses the link up, all or nothing.
pub async fn set_password(
    state: &AppState,
    link: &SetupLink,
    password: &NewPassword,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    // Only before Auth0 was called: `is_safe_to_retry` says so.
    db::retry_on_lost_connection(
        &state.pool,
        || set_once(state, link, password, deadline),
        SetPasswordError::is_safe_to_retry,
    )
    .await
}

async fn set_once(
    state: &AppState,
    link: &SetupLink,
    password: &NewPassword,
    deadline: &Deadline,
) -> Result<LinkInfo, SetPasswordError> {
    let db = Bound::work(*deadline, &state.config.timeouts);
    let mut client = db.get(&state.pool).await.map_err(SetPasswordError::Pool)?;
    let result = set_on(&mut client, db, state, link, password, deadline).await;
    discard_if_silent(client, result)
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
    .map_err(SetPasswordError::database(Step::Begin))?;
    let record = record.map_err(SetPasswordError::database(Step::FindToken))?;
    let (record, auth0_id) = usable(record, link)?;
    let user_id = record.user_id;

    state
        .auth0
        .set_password(&auth0_id, password.secret(), deadline)
        .await?;
    tracing::info!(step = "auth0_password", user_id = %user_id, "auth0 password set");

    db.on(reset_tokens::complete_setup(tx.client(), user_id))
        .await
        .map_err(SetPasswordError::database(Step::CompleteSetup))?;
    // A COMMIT without an answer is harmless here: if it did not land the link still works
    // and the retry sets the password again.
    db.on(tx.commit())
        .await
        .map_err(SetPasswordError::database(Step::Commit))?;
    tracing::info!(step = "commit", user_id = %user_id, "set-up completed");
    Ok(link_info(record))
}

/// A connection that stopped answering is not given back to the pool.
fn discard_if_silent<T>(
    client: Object,
    result: Result<T, SetPasswordError>,
) -> Result<T, SetPasswordError> {
    if result
        .as_ref()
        .is_err_and(SetPasswordError::database_went_silent)
    {
        drop(Object::take(client));
    }
    result
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
    // A committed token always belongs to a user with an Auth0 id; `pending_…` is not one.
    let auth0_id =
        Auth0UserId::parse(&record.auth0_sub).map_err(|_| SetPasswordError::InvalidLink)?;
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
