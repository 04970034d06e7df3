use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{
    Auth0Link, Auth0UserId, BusinessId, Email, Role, ScimTokenId, TenantId, UserId,
};

/// One account per address across all tenants, whatever the case.
pub const EMAIL_UNIQUE: &str = "users_email_lower_key";

/// A caller's row, as [`crate::access`] needs it to decide who acts.
#[derive(Debug, Clone)]
pub struct CallerRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub business_id: Option<BusinessId>,
    pub role: Role,
    pub is_active: bool,
}

/// Locks the caller's row until the transaction ends (`FOR SHARE`: callers never wait for each
/// other), so a deactivation or demotion of the caller waits for what the caller is doing with
/// the rights it had, instead of landing in the middle of it.
pub const FIND_CALLER: &str = "SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
       FROM users u JOIN tenants t ON t.id = u.tenant_id
      WHERE u.auth0_sub = $1
        FOR SHARE OF u";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_caller(
    client: &impl GenericClient,
    auth0_sub: &str,
) -> Result<Option<CallerRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(&client.prepare_cached(FIND_CALLER).await?, &[&auth0_sub])
        .await?;
    row.map(|r| {
        Ok(CallerRecord {
            id: UserId::new(r.try_get(0)?),
            tenant_id: TenantId::new(r.try_get(1)?),
            tenant_name: r.try_get(2)?,
            business_id: r.try_get::<_, Option<Uuid>>(3)?.map(BusinessId::new),
            role: r.try_get(4)?,
            is_active: r.try_get(5)?,
        })
    })
    .transpose()
}

/// A user row whose Auth0 user does not exist yet.
pub struct PendingUser<'a> {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub business_id: Option<BusinessId>,
    pub email: &'a Email,
    pub role: Role,
    /// The user who created it, if a user did.
    pub created_by: Option<UserId>,
    /// The SCIM client's token that created it, if one did.
    pub created_by_token: Option<ScimTokenId>,
    pub external_id: Option<&'a str>,
    /// False for a user created deactivated.
    pub is_active: bool,
}

pub const INSERT_PENDING: &str = "INSERT INTO users (id, tenant_id, business_id, email, role,
                        auth0_sub, created_by, created_by_token, external_id, is_active)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     RETURNING created_at";

/// Stores the row as pending ([`Auth0Link::pending_column`]); returns when it was created.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user.id))]
pub async fn insert_pending(
    tx: &impl GenericClient,
    user: &PendingUser<'_>,
) -> Result<chrono::DateTime<chrono::Utc>, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &tx.prepare_cached(INSERT_PENDING).await?,
            &[
                &user.id.uuid(),
                &user.tenant_id.uuid(),
                &user.business_id.map(BusinessId::uuid),
                &user.email.as_str(),
                &user.role.as_str(),
                &Auth0Link::pending_column(user.id),
                &user.created_by.map(UserId::uuid),
                &user.created_by_token.map(ScimTokenId::uuid),
                &user.external_id,
                &user.is_active,
            ],
        )
        .await?;
    row.try_get(0)
}

pub const SET_AUTH0_SUB: &str = "UPDATE users SET auth0_sub = $2, updated_at = now() WHERE id = $1";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn set_auth0_sub(
    tx: &impl GenericClient,
    id: UserId,
    auth0_id: &Auth0UserId,
) -> Result<u64, tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(SET_AUTH0_SUB).await?,
        &[&id.uuid(), &auth0_id.as_str()],
    )
    .await
}

pub const MARK_SET_UP: &str =
    "UPDATE users SET setup_completed_at = now(), updated_at = now() WHERE id = $1";

/// The user has a password already (an identity provider sent it): no invitation to complete.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn mark_set_up(tx: &impl GenericClient, id: UserId) -> Result<(), tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(MARK_SET_UP).await?, &[&id.uuid()])
        .await
        .map(drop)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn auth0_sub_in_use(
    tx: &impl GenericClient,
    auth0_id: &Auth0UserId,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE auth0_sub = $1)")
                .await?,
            &[&auth0_id.as_str()],
        )
        .await?;
    Ok(row.get(0))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn email_exists(
    client: &impl GenericClient,
    email: &Email,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            &client
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = $1)")
                .await?,
            &[&email.as_str()],
        )
        .await?;
    Ok(row.get(0))
}

/// A user as the admin API shows it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    pub auth0: Auth0Link,
    pub is_active: bool,
    pub setup_completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// What an identity provider calls the user (SCIM's `externalId`).
    pub external_id: Option<String>,
}

pub const LOCK_BY_EMAIL: &str = "SELECT id, tenant_id, email, role, auth0_sub, is_active,
        setup_completed_at, created_at, updated_at, external_id
   FROM users
  WHERE lower(email) = $1
    FOR UPDATE";

/// The user with this address, in whichever tenant, locked until the transaction ends. Whether
/// the caller may see it is [`crate::access`]'s to decide.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lock_by_email(
    tx: &impl GenericClient,
    email: &Email,
) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let row = tx
        .query_opt(&tx.prepare_cached(LOCK_BY_EMAIL).await?, &[&email.as_str()])
        .await?;
    row.map(|r| user_record(&r)).transpose()
}

pub const LOCK_BY_ID: &str = "SELECT id, tenant_id, email, role, auth0_sub, is_active,
        setup_completed_at, created_at, updated_at, external_id
   FROM users
  WHERE id = $1
    FOR UPDATE";

/// The user with this id, in whichever tenant, locked until the transaction ends. Whether
/// the caller may see it is [`crate::access`]'s to decide.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn lock_by_id(
    tx: &impl GenericClient,
    id: UserId,
) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let row = tx
        .query_opt(&tx.prepare_cached(LOCK_BY_ID).await?, &[&id.uuid()])
        .await?;
    row.map(|r| user_record(&r)).transpose()
}

/// A row whose first ten columns are `id, tenant_id, email, role, auth0_sub, is_active,
/// setup_completed_at, created_at, updated_at, external_id`.
pub(super) fn user_record(r: &tokio_postgres::Row) -> Result<UserRecord, tokio_postgres::Error> {
    Ok(UserRecord {
        id: UserId::new(r.try_get(0)?),
        tenant_id: TenantId::new(r.try_get(1)?),
        email: r.try_get(2)?,
        role: r.try_get(3)?,
        auth0: r.try_get(4)?,
        is_active: r.try_get(5)?,
        setup_completed_at: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        external_id: r.try_get(9)?,
    })
}

pub const SET_ROLE: &str = "UPDATE users SET role = $2, updated_at = now() WHERE id = $1";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn set_role(
    tx: &impl GenericClient,
    id: UserId,
    role: Role,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(SET_ROLE).await?,
        &[&id.uuid(), &role.as_str()],
    )
    .await
    .map(drop)
}

pub const SET_EXTERNAL_ID: &str =
    "UPDATE users SET external_id = $2, updated_at = now() WHERE id = $1";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn set_external_id(
    tx: &impl GenericClient,
    id: UserId,
    external_id: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(SET_EXTERNAL_ID).await?,
        &[&id.uuid(), &external_id],
    )
    .await
    .map(drop)
}

pub const DEACTIVATE: &str = "WITH links AS (
        UPDATE password_reset_tokens SET used_at = now()
         WHERE user_id = $1 AND used_at IS NULL)
     UPDATE users SET is_active = false, updated_at = now() WHERE id = $1";

/// The user deactivated, and every open invitation link of theirs used up: a link sent
/// before does not work again after a reactivation (resend-invitation sends a new one).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn deactivate(tx: &impl GenericClient, id: UserId) -> Result<(), tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(DEACTIVATE).await?, &[&id.uuid()])
        .await
        .map(drop)
}

pub const REACTIVATE: &str = "UPDATE users SET is_active = true, updated_at = now() WHERE id = $1";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn reactivate(tx: &impl GenericClient, id: UserId) -> Result<(), tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(REACTIVATE).await?, &[&id.uuid()])
        .await
        .map(drop)
}

pub const DELETE: &str = "DELETE FROM users WHERE id = $1";

/// The row and what hangs on it: page permissions and reset tokens go with it, its employee
/// stays, unlinked, and rows it created keep `created_by` NULL (the foreign keys' rules).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn delete(tx: &impl GenericClient, id: UserId) -> Result<(), tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(DELETE).await?, &[&id.uuid()])
        .await
        .map(drop)
}

pub const LOCK_OWNERS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('owners/' || $1::uuid::text, 0))";
pub const OTHER_ACTIVE_OWNERS: &str = "SELECT count(*) FROM users
      WHERE tenant_id = $1 AND role = 'OWNER' AND is_active AND id <> $2";

/// How many active owners the tenant has besides `id`. Takes the tenant's owners lock first,
/// held until the transaction ends, so two requests that would each remove one of the last
/// two owners run one after the other. The count is a statement of its own, after the lock:
/// its snapshot then holds what the lock's last holder committed.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn other_active_owners(
    tx: &impl GenericClient,
    tenant: TenantId,
    id: UserId,
) -> Result<i64, tokio_postgres::Error> {
    tx.execute(&tx.prepare_cached(LOCK_OWNERS).await?, &[&tenant.uuid()])
        .await?;
    let row = tx
        .query_one(
            &tx.prepare_cached(OTHER_ACTIVE_OWNERS).await?,
            &[&tenant.uuid(), &id.uuid()],
        )
        .await?;
    row.try_get(0)
}
