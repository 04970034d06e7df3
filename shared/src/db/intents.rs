//! Lifecycle intents: what an operation on a user is about to change in Auth0, committed
//! before the change (see `flow::intent`). One per user at a time.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{Auth0UserId, TenantId, UserId};

pub const INSERT: &str =
    "INSERT INTO lifecycle_intents (user_id, tenant_id, auth0_user_id, operation, attempt)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (user_id) DO UPDATE SET operation = EXCLUDED.operation
      WHERE lifecycle_intents.attempt = EXCLUDED.attempt";

/// Records the intent of `attempt`; false when the user has one of another attempt already
/// (another operation runs, or a dead one's awaits cleanup). The same attempt again (its retry
/// after a lost connection) finds its own and goes on.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn insert(
    tx: &impl GenericClient,
    user_id: UserId,
    tenant_id: TenantId,
    auth0_user_id: &Auth0UserId,
    operation: &str,
    attempt: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(INSERT).await?,
            &[
                &user_id.uuid(),
                &tenant_id.uuid(),
                &auth0_user_id.as_str(),
                &operation,
                &attempt,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

pub const DELETE: &str = "DELETE FROM lifecycle_intents WHERE user_id = $1";

/// Both systems agree again: the intent is done.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn delete(tx: &impl GenericClient, user_id: UserId) -> Result<(), tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(DELETE).await?, &[&user_id.uuid()])
        .await
        .map(drop)
}

/// An intent whose operation did not finish, as cleanup takes it up.
#[derive(Debug, Clone)]
pub struct StaleIntent {
    pub user_id: UserId,
    pub auth0_user_id: Auth0UserId,
    pub operation: String,
}

/// Up to `limit` intents older than `grace_seconds`, oldest first, locked (skipping those
/// another cleanup run holds) until the transaction ends.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lock_stale(
    tx: &impl GenericClient,
    grace: std::time::Duration,
    limit: usize,
) -> Result<Vec<StaleIntent>, tokio_postgres::Error> {
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT user_id, auth0_user_id, operation FROM lifecycle_intents
                  WHERE created_at < now() - make_interval(secs => $1)
                  ORDER BY created_at
                  LIMIT $2
                    FOR UPDATE SKIP LOCKED",
            )
            .await?,
            &[&grace.as_secs_f64(), &(limit as i64)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StaleIntent {
                user_id: UserId::new(r.try_get(0)?),
                auth0_user_id: r.try_get(1)?,
                operation: r.try_get(2)?,
            })
        })
        .collect()
}

/// Locks the user's intent for this transaction, unless another holds it; false when it is
/// held elsewhere or gone.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn lock_one(
    tx: &impl GenericClient,
    user_id: UserId,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT 1 FROM lifecycle_intents WHERE user_id = $1 FOR UPDATE SKIP LOCKED",
            )
            .await?,
            &[&user_id.uuid()],
        )
        .await?;
    Ok(row.is_some())
}
