use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{BusinessId, Email, EmployeeId, NewEmployee, PersonName, TenantId, UserId};

/// An employee is linked to at most one user.
pub const USER_UNIQUE: &str = "employees_user_id_key";

pub enum LinkTarget {
    NotFound,
    AlreadyLinked,
    Free,
}

/// Locks the employee row so two admins cannot link it at once. An employee of another
/// tenant or business is reported as not found: its existence is not the caller's business.
#[tracing::instrument(level = "debug", skip_all, fields(employee_id = %id))]
pub async fn lock_for_link(
    tx: &impl GenericClient,
    id: EmployeeId,
    tenant_id: TenantId,
    business_id: Option<BusinessId>,
) -> Result<LinkTarget, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT user_id FROM employees
              WHERE id = $1 AND tenant_id = $2 AND business_id IS NOT DISTINCT FROM $3
              FOR UPDATE",
            )
            .await?,
            &[
                &id.uuid(),
                &tenant_id.uuid(),
                &business_id.map(BusinessId::uuid),
            ],
        )
        .await?;
    Ok(match row {
        None => LinkTarget::NotFound,
        Some(r) if r.get::<_, Option<Uuid>>(0).is_some() => LinkTarget::AlreadyLinked,
        Some(_) => LinkTarget::Free,
    })
}

pub const LINK: &str =
    "UPDATE employees SET user_id = $2, updated_at = now() WHERE id = $1 AND user_id IS NULL";

#[tracing::instrument(level = "debug", skip_all, fields(employee_id = %id, user_id = %user_id))]
pub async fn link(
    tx: &impl GenericClient,
    id: EmployeeId,
    user_id: UserId,
) -> Result<u64, tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(LINK).await?,
        &[&id.uuid(), &user_id.uuid()],
    )
    .await
}

/// The employee joins the tenant and business of its user, the row just written in the same
/// transaction (no row, no employee: the insert then fails on its row count).
pub const INSERT: &str =
    "INSERT INTO employees (tenant_id, business_id, user_id, first_name, last_name, email,
                            department, job_title, employment_type)
     SELECT u.tenant_id, u.business_id, u.id, $2, $3, $4, $5, $6, $7
       FROM users u
      WHERE u.id = $1
     RETURNING id";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn insert(
    tx: &impl GenericClient,
    user_id: UserId,
    email: &Email,
    employee: &NewEmployee,
) -> Result<EmployeeId, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &tx.prepare_cached(INSERT).await?,
            &[
                &user_id.uuid(),
                &employee.first_name,
                &employee.last_name,
                &email.as_str(),
                &employee.department,
                &employee.job_title,
                &employee.employment_type.map(|t| t.as_str()),
            ],
        )
        .await?;
    Ok(EmployeeId::new(row.get(0)))
}

/// The name of the user's employee record; one is made (in the user's tenant and business)
/// when the user has none. The user counts as changed (SCIM's `meta.lastModified`). One
/// statement.
pub const SET_NAME: &str = "WITH named AS (
        UPDATE employees SET first_name = $2, last_name = $3, updated_at = now()
         WHERE user_id = $1
        RETURNING id),
     touched AS (
        UPDATE users SET updated_at = now() WHERE id = $1)
     INSERT INTO employees (tenant_id, business_id, user_id, first_name, last_name, email)
     SELECT u.tenant_id, u.business_id, u.id, $2, $3, u.email
       FROM users u
      WHERE u.id = $1 AND NOT EXISTS (SELECT 1 FROM named)";

#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id))]
pub async fn set_name(
    tx: &impl GenericClient,
    user_id: UserId,
    name: &PersonName,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(SET_NAME).await?,
        &[&user_id.uuid(), &name.given, &name.family],
    )
    .await
    .map(drop)
}
