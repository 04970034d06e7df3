//! Stored answers of requests that carried an `Idempotency-Key` (see `flow::idempotency`).

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

pub const TRY_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtextextended('idempotency/' || $1::uuid::text || '/' || $2, 0))";

/// Takes the key's lock in `tenant` for this transaction. False: another request with the key
/// is running now.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn try_lock(
    tx: &impl GenericClient,
    tenant: TenantId,
    key: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(&tx.prepare_cached(TRY_LOCK).await?, &[&tenant.uuid(), &key])
        .await?;
    row.try_get(0)
}

pub const FIND: &str = "SELECT request_hash, status, response
      FROM idempotency_keys
     WHERE tenant_id = $1 AND key = $2 AND expires_at > now()";

/// The unexpired answer stored for the key in `tenant`. Run after [`try_lock`] (a later
/// statement, so a later snapshot): it sees what the key's last holder committed.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    tx: &impl GenericClient,
    tenant: TenantId,
    key: &str,
) -> Result<Option<StoredAnswer>, tokio_postgres::Error> {
    let row = tx
        .query_opt(&tx.prepare_cached(FIND).await?, &[&tenant.uuid(), &key])
        .await?;
    row.map(|r| {
        Ok(StoredAnswer {
            request_hash: r.try_get(0)?,
            status: r.try_get::<_, i16>(1)? as u16,
            body: r.try_get(2)?,
        })
    })
    .transpose()
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
