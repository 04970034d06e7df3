use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::domain::{PageId, PagePermission, UserId};

pub const MISSING: &str = "SELECT w.id FROM unnest($1::uuid[]) WITH ORDINALITY AS w(id, n)
      WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = w.id)
      ORDER BY w.n";

/// The requested pages that do not exist, in request order.
#[tracing::instrument(level = "debug", skip_all, fields(requested = ids.len()))]
pub async fn missing(
    tx: &impl GenericClient,
    ids: &[PageId],
) -> Result<Vec<PageId>, tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<Uuid> = ids.iter().map(|id| id.uuid()).collect();
    let rows = tx
        .query(&tx.prepare_cached(MISSING).await?, &[&wanted])
        .await?;
    Ok(rows.iter().map(|r| PageId::new(r.get(0))).collect())
}

/// For the user row just written in the same transaction; none if it was not written.
pub const GRANT: &str =
    "INSERT INTO user_page_access (user_id, page_id, can_read, can_write, can_edit, can_delete)
     SELECT u.id, p.* FROM users u,
            unnest($2::uuid[], $3::bool[], $4::bool[], $5::bool[], $6::bool[]) AS p
      WHERE u.id = $1";

/// All permissions in one statement, however many pages.
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id, pages = permissions.len()))]
pub async fn grant(
    tx: &impl GenericClient,
    user_id: UserId,
    permissions: &[PagePermission],
) -> Result<u64, tokio_postgres::Error> {
    if permissions.is_empty() {
        return Ok(0);
    }
    with_columns(tx, GRANT, user_id, permissions).await
}

/// `sql` with `$1` the user and `$2`…`$6` the permissions as the arrays `unnest` takes: page
/// ids, then the four flags in their column order.
async fn with_columns(
    tx: &impl GenericClient,
    sql: &str,
    user_id: UserId,
    permissions: &[PagePermission],
) -> Result<u64, tokio_postgres::Error> {
    let column = |f: fn(&PagePermission) -> bool| permissions.iter().map(f).collect::<Vec<bool>>();
    let page_ids: Vec<Uuid> = permissions.iter().map(|p| p.page_id.uuid()).collect();
    tx.execute(
        &tx.prepare_cached(sql).await?,
        &[
            &user_id.uuid(),
            &page_ids,
            &column(|p| p.can_read),
            &column(|p| p.can_write),
            &column(|p| p.can_edit),
            &column(|p| p.can_delete),
        ],
    )
    .await
}

pub const REPLACE: &str = "WITH gone AS (
        DELETE FROM user_page_access WHERE user_id = $1 AND page_id <> ALL($2::uuid[]))
     INSERT INTO user_page_access (user_id, page_id, can_read, can_write, can_edit, can_delete)
     SELECT $1, p.* FROM unnest($2::uuid[], $3::bool[], $4::bool[], $5::bool[], $6::bool[]) AS p
     ON CONFLICT (user_id, page_id) DO UPDATE
        SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write,
            can_edit = EXCLUDED.can_edit, can_delete = EXCLUDED.can_delete";

/// The user's permissions become exactly `permissions`, in one statement: the pages not
/// listed are taken away (the rows the delete and the upsert touch never overlap).
#[tracing::instrument(level = "debug", skip_all, fields(user_id = %user_id, pages = permissions.len()))]
pub async fn replace(
    tx: &impl GenericClient,
    user_id: UserId,
    permissions: &[PagePermission],
) -> Result<(), tokio_postgres::Error> {
    with_columns(tx, REPLACE, user_id, permissions)
        .await
        .map(drop)
}
