use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::UserId;

pub const TOKEN_HASH_UNIQUE: &str = "password_reset_tokens_token_hash_key";

/// Stores only the SHA-256 of the token; the raw token goes out in the email link.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn insert(
    tx: &impl GenericClient,
    user_id: UserId,
    token_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
            &tx.prepare_cached("INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES ($1, $2, $3)").await?,
        &[&user_id.uuid(), &token_hash.as_slice(), &expires_at],
    )
    .await
    .map(|_| ())
}
