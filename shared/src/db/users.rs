use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{Auth0UserId, BusinessId, Email, Role, TenantId, UserId};

/// One account per address across all tenants, whatever the case.
pub const EMAIL_UNIQUE: &str = "users_email_lower_key";

/// The admin making the request, with the tenant everything happens in.
#[derive(Debug, Clone)]
pub struct CallerRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub business_id: Option<BusinessId>,
    pub role: Role,
    pub is_active: bool,
}

pub const FIND_CALLER: &str = "SELECT u.id, u.tenant_id, t.name, u.business_id, u.role, u.is_active
       FROM users u JOIN tenants t ON t.id = u.tenant_id
      WHERE u.auth0_sub = $1";

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_caller(
    client: &impl GenericClient,
    auth0_sub: &str,
) -> Result<Option<CallerRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(&client.prepare_cached(FIND_CALLER).await?, &[&auth0_sub])
        .await?;
    Ok(row.map(|r| CallerRecord {
        id: UserId::new(r.get(0)),
        tenant_id: TenantId::new(r.get(1)),
        tenant_name: r.get(2),
        business_id: r.get::<_, Option<Uuid>>(3).map(BusinessId::new),
        // The CHECK constraint keeps role to the three known values.
        role: Role::parse(r.get(4)).unwrap_or(Role::User),
        is_active: r.get(5),
    }))
}

pub struct PendingUser<'a> {
    pub id: UserId,
    pub email: &'a Email,
    pub role: Role,
    /// The admin creating it: the user joins their tenant and business.
    pub caller_sub: &'a str,
}

/// Marks a row whose Auth0 user does not exist yet; cleanup removes such rows if they linger.
pub fn pending_sub(id: UserId) -> String {
    format!("pending_{id}")
}

/// The caller's tenant, business and id come from the caller's row, and the row is written only
/// if the caller may create this role ([`Role::creators_of`] decides as `may_create` does), so
/// the insert can go out in the same round trip as the caller's read, before Rust has seen it.
pub const INSERT_PENDING: &str =
    "INSERT INTO users (id, tenant_id, business_id, email, role, auth0_sub, created_by)
     SELECT $1, c.tenant_id, c.business_id, $2, $3, $4, c.id
       FROM users c
      WHERE c.auth0_sub = $5 AND c.is_active AND c.role = ANY($6::text[])
     RETURNING created_at";

/// When the row was created, or `None` when the caller may not create it (nothing written).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user.id))]
pub async fn insert_pending(
    tx: &impl GenericClient,
    user: &PendingUser<'_>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(INSERT_PENDING).await?,
            &[
                &user.id.uuid(),
                &user.email.as_str(),
                &user.role.as_str(),
                &pending_sub(user.id),
                &user.caller_sub,
                &Role::creators_of(user.role),
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
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
    /// The Auth0 user id, or `pending_…` while a create-user is in flight.
    pub auth0_sub: String,
    pub is_active: bool,
    pub setup_completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl UserRecord {
    pub fn is_pending(&self) -> bool {
        self.auth0_sub.starts_with("pending_")
    }
}

/// The user with this address in the tenant of the caller `caller_sub`, locked until the
/// transaction ends. Needs no earlier round trip for the caller's tenant, so it can be
/// pipelined with [`find_caller`]; authorization is checked before anything is written.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lock_in_callers_tenant(
    tx: &impl GenericClient,
    caller_sub: &str,
    email: &Email,
) -> Result<Option<UserRecord>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT u.id, u.tenant_id, u.email, u.role, u.auth0_sub, u.is_active,
                        u.setup_completed_at, u.created_at
                   FROM users u
                  WHERE lower(u.email) = $2
                    AND u.tenant_id = (SELECT c.tenant_id FROM users c WHERE c.auth0_sub = $1)
                    FOR UPDATE OF u",
            )
            .await?,
            &[&caller_sub, &email.as_str()],
        )
        .await?;
    Ok(row.map(|r| UserRecord {
        id: UserId::new(r.get(0)),
        tenant_id: TenantId::new(r.get(1)),
        email: r.get(2),
        // The CHECK constraint keeps role to the three known values.
        role: Role::parse(r.get(3)).unwrap_or(Role::User),
        auth0_sub: r.get(4),
        is_active: r.get(5),
        setup_completed_at: r.get(6),
        created_at: r.get(7),
    }))
}
