//! Stored answers of create-user requests that carried an `Idempotency-Key`.

use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::domain::TenantId;

/// An answer given before to a request with this key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub body: Value,
}

pub const TRY_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtextextended(
    'idempotency/' || (SELECT tenant_id::text FROM users WHERE auth0_sub = $1) || '/' || $2, 0))";

/// Takes the key's lock for this transaction, in the caller's tenant (found by the caller's
/// sub, so the statement can go out with the caller lookup). False: another request with the
/// key is running now. NULL (unknown caller) reads as false; authorization refuses it anyway.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn try_lock(
    tx: &impl GenericClient,
    caller_sub: &str,
    key: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(&tx.prepare_cached(TRY_LOCK).await?, &[&caller_sub, &key])
        .await?;
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
}

pub const FIND: &str = "SELECT k.request_hash, k.status, k.response
      FROM idempotency_keys k
      JOIN users c ON c.tenant_id = k.tenant_id
     WHERE c.auth0_sub = $1 AND k.key = $2 AND k.expires_at > now()";

/// The unexpired answer stored for the key in the caller's tenant. Run after [`try_lock`] (a
/// later statement, so a later snapshot): it sees what the key's last holder committed.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    tx: &impl GenericClient,
    caller_sub: &str,
    key: &str,
) -> Result<Option<StoredAnswer>, tokio_postgres::Error> {
    let row = tx
        .query_opt(&tx.prepare_cached(FIND).await?, &[&caller_sub, &key])
        .await?;
    Ok(row.map(|r| StoredAnswer {
        request_hash: r.get(0),
        status: r.get::<_, i16>(1) as u16,
        body: r.get(2),
    }))
}

/// Stores the answer (replacing an expired one the purge has not reached yet).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn store(
    tx: &impl GenericClient,
    tenant_id: TenantId,
    key: &str,
    request_hash: &[u8; 32],
    status: u16,
    body: &Value,
    ttl: std::time::Duration,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, status, response, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
             ON CONFLICT (tenant_id, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
                    response = EXCLUDED.response, created_at = now(),
                    expires_at = EXCLUDED.expires_at
              WHERE idempotency_keys.expires_at <= now()",
        )
        .await?,
        &[
            &tenant_id.uuid(),
            &key,
            &request_hash.as_slice(),
            &(status as i16),
            body,
            &ttl.as_secs_f64(),
        ],
    )
    .await
    .map(|_| ())
}
