//! SCIM clients' bearer tokens: only their SHA-256 is stored (see `scim::tokens`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{BusinessId, ScimTokenId, TenantId, UserId};

/// A token that works, with what a request made with it acts as.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    pub id: ScimTokenId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub business_id: Option<BusinessId>,
}

/// The token with this hash, unless revoked. Its last use is recorded at most once a minute
/// (in the same statement), so that a burst of requests does not queue on the token's row;
/// and only when nobody holds the row: a create records it in its own transaction, which
/// stays open across its Auth0 call, and a request meanwhile skips the record rather than
/// wait for that transaction (up to the lock timeout, then `DATABASE_BUSY`).
pub const FIND: &str = "WITH token AS (
        SELECT id, tenant_id, business_id, last_used_at FROM scim_tokens
         WHERE token_hash = $1 AND revoked_at IS NULL),
     touched AS (
        UPDATE scim_tokens SET last_used_at = now()
         WHERE id = (SELECT id FROM scim_tokens
                      WHERE id = (SELECT id FROM token)
                        AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
                        FOR UPDATE SKIP LOCKED))
     SELECT t.id, t.tenant_id, n.name, t.business_id
       FROM token t JOIN tenants n ON n.id = t.tenant_id";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(
    client: &impl GenericClient,
    hash: &[u8; 32],
) -> Result<Option<ActiveToken>, tokio_postgres::Error> {
    let row = client
        .query_opt(&client.prepare_cached(FIND).await?, &[&hash.as_slice()])
        .await?;
    row.map(|r| {
        Ok(ActiveToken {
            id: ScimTokenId::new(r.try_get(0)?),
            tenant_id: TenantId::new(r.try_get(1)?),
            tenant_name: r.try_get(2)?,
            business_id: r.try_get::<_, Option<Uuid>>(3)?.map(BusinessId::new),
        })
    })
    .transpose()
}

/// A token as its tenant's admins see it: never the token, only its hint.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: ScimTokenId,
    pub name: String,
    pub hint: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, token_hint, created_by, created_at, last_used_at, revoked_at";

fn record(r: &tokio_postgres::Row) -> Result<TokenRecord, tokio_postgres::Error> {
    Ok(TokenRecord {
        id: ScimTokenId::new(r.try_get(0)?),
        name: r.try_get(1)?,
        hint: r.try_get(2)?,
        created_by: r.try_get::<_, Option<Uuid>>(3)?.map(UserId::new),
        created_at: r.try_get(4)?,
        last_used_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
    })
}

/// A new token of `tenant`.
pub struct NewToken<'a> {
    pub tenant_id: TenantId,
    pub business_id: Option<BusinessId>,
    pub name: &'a str,
    pub hash: &'a [u8; 32],
    pub hint: &'a str,
    pub created_by: Option<UserId>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert(
    client: &impl GenericClient,
    token: &NewToken<'_>,
) -> Result<TokenRecord, tokio_postgres::Error> {
    let row = client
        .query_one(
            &client
                .prepare_cached(&format!(
                    "INSERT INTO scim_tokens (tenant_id, business_id, name, token_hash, token_hint,
                                              created_by)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     RETURNING {COLUMNS}"
                ))
                .await?,
            &[
                &token.tenant_id.uuid(),
                &token.business_id.map(BusinessId::uuid),
                &token.name,
                &token.hash.as_slice(),
                &token.hint,
                &token.created_by.map(UserId::uuid),
            ],
        )
        .await?;
    record(&row)
}

/// The tenant's tokens, newest first, revoked ones included.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
) -> Result<Vec<TokenRecord>, tokio_postgres::Error> {
    let rows = client
        .query(
            &client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM scim_tokens WHERE tenant_id = $1
                      ORDER BY created_at DESC, id DESC"
                ))
                .await?,
            &[&tenant.uuid()],
        )
        .await?;
    rows.iter().map(record).collect()
}

/// Revokes the token `id` of `tenant` (again: nothing changes); `None` when the tenant has
/// no such token.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke(
    client: &impl GenericClient,
    tenant: TenantId,
    id: ScimTokenId,
) -> Result<Option<TokenRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &client
                .prepare_cached(&format!(
                    "UPDATE scim_tokens SET revoked_at = coalesce(revoked_at, now())
                      WHERE tenant_id = $1 AND id = $2
                      RETURNING {COLUMNS}"
                ))
                .await?,
            &[&tenant.uuid(), &id.uuid()],
        )
        .await?;
    row.map(|r| record(&r)).transpose()
}
