//! Users as the admin API shows them: the row, who created it, its employee and its page
//! permissions, read in one statement; one user by id, or a tenant's users newest first in
//! pages keyed on `(created_at, id)`, so a page deep in the list costs what the first does.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::users::{UserRecord, user_record};
use crate::domain::{EmployeeId, PageId, PagePermission, TenantId, UserId};

#[derive(Debug, Clone)]
pub struct UserView {
    /// The row itself.
    pub user: UserRecord,
    pub created_by: Option<UserId>,
    pub created_by_email: Option<String>,
    pub employee: Option<EmployeeView>,
    pub permissions: Vec<PagePermission>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeView {
    pub id: EmployeeId,
    pub first_name: String,
    pub last_name: String,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub employment_type: Option<String>,
}

/// Where a user stands, as the list filters and the view says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Active, and no password set yet.
    Invited,
    Active,
    Deactivated,
}

impl Status {
    pub fn of(is_active: bool, setup_completed_at: Option<DateTime<Utc>>) -> Self {
        match (is_active, setup_completed_at) {
            (false, _) => Self::Deactivated,
            (true, None) => Self::Invited,
            (true, Some(_)) => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "invited" => Ok(Self::Invited),
            "active" => Ok(Self::Active),
            "deactivated" => Ok(Self::Deactivated),
            _ => Err("must be one of invited, active, deactivated".into()),
        }
    }
}

impl UserView {
    pub fn status(&self) -> Status {
        Status::of(self.user.is_active, self.user.setup_completed_at)
    }
}

const SELECT: &str = "SELECT u.id, u.tenant_id, u.email, u.role, u.auth0_sub, u.is_active,
        u.setup_completed_at, u.created_at, u.updated_at, u.external_id, u.created_by, c.email,
        e.id, e.first_name, e.last_name, e.department, e.job_title, e.employment_type,
        p.pages, p.reads, p.writes, p.edits, p.deletes
   FROM users u
   LEFT JOIN users c ON c.id = u.created_by
   LEFT JOIN employees e ON e.user_id = u.id
   LEFT JOIN LATERAL (
        SELECT array_agg(a.page_id ORDER BY a.page_id) AS pages,
               array_agg(a.can_read ORDER BY a.page_id) AS reads,
               array_agg(a.can_write ORDER BY a.page_id) AS writes,
               array_agg(a.can_edit ORDER BY a.page_id) AS edits,
               array_agg(a.can_delete ORDER BY a.page_id) AS deletes
          FROM user_page_access a WHERE a.user_id = u.id) p ON true";

pub fn by_id_sql() -> String {
    format!("{SELECT}\n  WHERE u.id = $1")
}

/// The user with this id, in whichever tenant (the caller decides who may see it).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
pub async fn by_id(
    client: &impl GenericClient,
    id: UserId,
) -> Result<Option<UserView>, tokio_postgres::Error> {
    let row = client
        .query_opt(&client.prepare_cached(&by_id_sql()).await?, &[&id.uuid()])
        .await?;
    row.map(|r| view(&r)).transpose()
}

/// What a page of the list is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub status: Option<Status>,
    /// Addresses starting with this (lower case).
    pub email_prefix: Option<String>,
    /// Rows after this one, in the list's order (newest first).
    pub after: Option<(DateTime<Utc>, UserId)>,
    pub limit: usize,
}

/// The list's statement for the filters `query` has: each condition that an index can serve
/// (the page's start, the address prefix) is written only when it is used, so the planner of
/// the prepared statement can use the index for it.
pub fn list_sql(query: &ListQuery) -> String {
    // Pending rows (a create that never linked its Auth0 user) are not users yet.
    let mut sql = format!(
        "{SELECT}
  WHERE u.tenant_id = $1 AND u.auth0_sub NOT LIKE 'pending\\_%'"
    );
    let mut next = 2;
    let mut param = || {
        let n = next;
        next += 1;
        n
    };
    if query.status.is_some() {
        let n = param();
        sql.push_str(&format!(
            "
    AND CASE ${n}::text WHEN 'deactivated' THEN NOT u.is_active
                        WHEN 'invited' THEN u.is_active AND u.setup_completed_at IS NULL
                        ELSE u.is_active AND u.setup_completed_at IS NOT NULL END"
        ));
    }
    if query.email_prefix.is_some() {
        let n = param();
        sql.push_str(&format!("\n    AND lower(u.email) LIKE ${n}::text || '%'"));
    }
    if query.after.is_some() {
        let (at, id) = (param(), param());
        sql.push_str(&format!(
            "\n    AND (u.created_at, u.id) < (${at}::timestamptz, ${id}::uuid)"
        ));
    }
    let limit = param();
    sql.push_str(&format!(
        "\n  ORDER BY u.created_at DESC, u.id DESC\n  LIMIT ${limit}"
    ));
    sql
}

/// One page of `tenant`'s users, newest first, at most `query.limit`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn list(
    client: &impl GenericClient,
    tenant: TenantId,
    query: &ListQuery,
) -> Result<Vec<UserView>, tokio_postgres::Error> {
    let tenant = tenant.uuid();
    let status = query.status.map(Status::as_str);
    let prefix = query.email_prefix.as_deref().map(like_prefix);
    let after = query.after.map(|(at, id)| (at, id.uuid()));
    let limit = query.limit as i64;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tenant];
    if let Some(status) = &status {
        params.push(status);
    }
    if let Some(prefix) = &prefix {
        params.push(prefix);
    }
    if let Some((at, id)) = &after {
        params.push(at);
        params.push(id);
    }
    params.push(&limit);
    let rows = client
        .query(&client.prepare_cached(&list_sql(query)).await?, &params)
        .await?;
    rows.iter().map(view).collect()
}

/// What a SCIM filter asks of a tenant's users: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMatch {
    /// The address, compared case-insensitively.
    pub email: Option<String>,
    /// The identity provider's id, compared exactly.
    pub external_id: Option<String>,
    /// The user's id.
    pub id: Option<Uuid>,
    pub active: Option<bool>,
    /// No user can match (an id that is no UUID, two values asked of one attribute): nothing
    /// needs to be read.
    pub nothing: bool,
}

/// The conditions of `matching` after the tenant's (`$1`), numbered from `$2` in the order of
/// [`match_params`].
fn match_conditions(matching: &UserMatch) -> String {
    let mut sql = String::from("u.tenant_id = $1 AND u.auth0_sub NOT LIKE 'pending\\_%'");
    let mut next = 2;
    let mut condition = |text: &str| {
        sql.push_str(&format!(
            "\n    AND {}",
            text.replace('?', &format!("${next}"))
        ));
        next += 1;
    };
    if matching.email.is_some() {
        condition("lower(u.email) = lower(?::text)");
    }
    if matching.external_id.is_some() {
        condition("u.external_id = ?::text");
    }
    if matching.id.is_some() {
        condition("u.id = ?::uuid");
    }
    if matching.active.is_some() {
        condition("u.is_active = ?::boolean");
    }
    sql
}

/// How many users of the tenant `matching` finds.
pub fn count_matching_sql(matching: &UserMatch) -> String {
    format!(
        "SELECT count(*) FROM users u\n  WHERE {}",
        match_conditions(matching)
    )
}

/// The page of those users from `offset` on, oldest first (a stable order for SCIM's
/// `startIndex`): the page's ids are chosen on the users alone, then only they are joined.
pub fn matching_page_sql(matching: &UserMatch) -> String {
    let conditions = match_conditions(matching);
    let first = 2 + match_params(matching).len();
    let (offset, limit) = (first, first + 1);
    format!(
        "WITH page AS (
    SELECT u.id FROM users u
     WHERE {conditions}
     ORDER BY u.created_at, u.id OFFSET ${offset} LIMIT ${limit})
{SELECT}
  WHERE u.id IN (SELECT id FROM page)
  ORDER BY u.created_at, u.id"
    )
}

/// The values of `matching`'s conditions, in their order.
fn match_params(matching: &UserMatch) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    if let Some(email) = &matching.email {
        params.push(email);
    }
    if let Some(external_id) = &matching.external_id {
        params.push(external_id);
    }
    if let Some(id) = &matching.id {
        params.push(id);
    }
    if let Some(active) = &matching.active {
        params.push(active);
    }
    params
}

/// How many of `tenant`'s users `matching` finds.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_matching(
    client: &impl GenericClient,
    tenant: TenantId,
    matching: &UserMatch,
) -> Result<i64, tokio_postgres::Error> {
    let tenant = tenant.uuid();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tenant];
    params.extend(match_params(matching));
    let statement = client.prepare_cached(&count_matching_sql(matching)).await?;
    client.query_one(&statement, &params).await?.try_get(0)
}

/// Up to `limit` of `tenant`'s users that `matching` finds, from the `offset`-th on, oldest
/// first.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn matching_page(
    client: &impl GenericClient,
    tenant: TenantId,
    matching: &UserMatch,
    offset: i64,
    limit: i64,
) -> Result<Vec<UserView>, tokio_postgres::Error> {
    let tenant = tenant.uuid();
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&tenant];
    params.extend(match_params(matching));
    params.push(&offset);
    params.push(&limit);
    let statement = client.prepare_cached(&matching_page_sql(matching)).await?;
    let rows = client.query(&statement, &params).await?;
    rows.iter().map(view).collect()
}

/// `prefix` as a LIKE pattern's start: its `%`, `_` and `\` match only themselves.
fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn view(r: &tokio_postgres::Row) -> Result<UserView, tokio_postgres::Error> {
    let employee = match r.try_get::<_, Option<Uuid>>(12)? {
        Some(id) => Some(EmployeeView {
            id: EmployeeId::new(id),
            first_name: r.try_get(13)?,
            last_name: r.try_get(14)?,
            department: r.try_get(15)?,
            job_title: r.try_get(16)?,
            employment_type: r.try_get(17)?,
        }),
        None => None,
    };
    let pages: Option<Vec<Uuid>> = r.try_get(18)?;
    let flags = |i| {
        r.try_get::<_, Option<Vec<bool>>>(i)
            .map(Option::unwrap_or_default)
    };
    let (reads, writes, edits, deletes) = (flags(19)?, flags(20)?, flags(21)?, flags(22)?);
    let permissions = pages
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, page)| PagePermission {
            page_id: PageId::new(page),
            can_read: reads[i],
            can_write: writes[i],
            can_edit: edits[i],
            can_delete: deletes[i],
        })
        .collect();
    Ok(UserView {
        // The row's columns come first, in the order `users::user_record` reads them.
        user: user_record(r)?,
        created_by: r.try_get::<_, Option<Uuid>>(10)?.map(UserId::new),
        created_by_email: r.try_get(11)?,
        employee,
        permissions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_matches_its_wildcards_literally() {
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\");
        assert_eq!(like_prefix("ann@"), "ann@");
    }

    #[test]
    fn the_status_is_told_by_activity_and_set_up() {
        let now = Some(Utc::now());
        assert_eq!(Status::of(true, None), Status::Invited);
        assert_eq!(Status::of(true, now), Status::Active);
        assert_eq!(Status::of(false, now), Status::Deactivated);
        assert_eq!(Status::of(false, None), Status::Deactivated);
        for status in [Status::Invited, Status::Active, Status::Deactivated] {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
        }
        assert!(Status::parse("ACTIVE").is_err());
    }
}
