//! Password-setup tokens. Only the SHA-256 of a token is stored; the raw token travels in the
//! email link. A user has at most one open (unused) token: issuing a new one closes the rest.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::{Auth0Link, Role, UserId};

pub const TOKEN_HASH_UNIQUE: &str = "password_reset_tokens_token_hash_key";

pub const INSERT: &str =
    "INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES ($1, $2, $3)";

/// Stores a new token for a user who has none yet (create-user).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn insert(
    tx: &impl GenericClient,
    user_id: UserId,
    token_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(INSERT).await?,
        &[&user_id.uuid(), &token_hash.as_slice(), &expires_at],
    )
    .await
    .map(|_| ())
}

/// Closes the user's open tokens and stores a new one, in one statement (resend-invitation).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn replace_open(
    tx: &impl GenericClient,
    user_id: UserId,
    token_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(
            "WITH superseded AS (
                UPDATE password_reset_tokens SET used_at = now()
                 WHERE user_id = $1 AND used_at IS NULL)
             INSERT INTO password_reset_tokens (user_id, token_hash, expires_at)
             VALUES ($1, $2, $3)",
        )
        .await?,
        &[&user_id.uuid(), &token_hash.as_slice(), &expires_at],
    )
    .await
    .map(|_| ())
}

/// A stored token with the user and tenant it opens, as the set-password page needs them.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub user_id: UserId,
    /// The user's address (lower case); the link's address must match it.
    pub email: String,
    pub role: Role,
    pub tenant_name: String,
    /// Never pending for a committed token.
    pub auth0: Auth0Link,
    pub user_is_active: bool,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
    /// Judged by the database clock, so no Lambda clock skew decides it.
    pub expired: bool,
}

const TOKEN_BY_HASH: &str = "SELECT t.user_id, u.email, u.role, tn.name, u.auth0_sub, u.is_active,
        t.expires_at, t.used_at IS NOT NULL, t.expires_at <= now()
   FROM password_reset_tokens t
   JOIN users u ON u.id = t.user_id
   JOIN tenants tn ON tn.id = u.tenant_id
  WHERE t.token_hash = $1";

/// The token with this hash, read without a lock (verifying a link consumes nothing).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    client: &impl GenericClient,
    token_hash: &[u8; 32],
) -> Result<Option<TokenRecord>, tokio_postgres::Error> {
    let statement = client.prepare_cached(TOKEN_BY_HASH).await?;
    let row = client
        .query_opt(&statement, &[&token_hash.as_slice()])
        .await?;
    row.map(|r| token_record(&r)).transpose()
}

/// The token with this hash, locked until the transaction ends: two requests with one link
/// are served one after the other, and the second finds the token used.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lock(
    tx: &impl GenericClient,
    token_hash: &[u8; 32],
) -> Result<Option<TokenRecord>, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(&format!("{TOKEN_BY_HASH} FOR UPDATE OF t"))
        .await?;
    let row = tx.query_opt(&statement, &[&token_hash.as_slice()]).await?;
    row.map(|r| token_record(&r)).transpose()
}

fn token_record(row: &tokio_postgres::Row) -> Result<TokenRecord, tokio_postgres::Error> {
    Ok(TokenRecord {
        user_id: UserId::new(row.try_get(0)?),
        email: row.try_get(1)?,
        role: row.try_get(2)?,
        tenant_name: row.try_get(3)?,
        auth0: row.try_get(4)?,
        user_is_active: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        used: row.try_get(7)?,
        expired: row.try_get(8)?,
    })
}

/// After the password is set: every open token of the user is used up and the user has
/// completed set-up. One statement, one round trip.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn complete_setup(
    tx: &impl GenericClient,
    user_id: UserId,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(
            "WITH used AS (
                UPDATE password_reset_tokens SET used_at = now()
                 WHERE user_id = $1 AND used_at IS NULL)
             UPDATE users SET setup_completed_at = coalesce(setup_completed_at, now()),
                              updated_at = now()
              WHERE id = $1",
        )
        .await?,
        &[&user_id.uuid()],
    )
    .await
    .map(|_| ())
}
