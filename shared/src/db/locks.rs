//! The per-address lock: a transaction-scoped advisory lock on the normalised email address.
//!
//! create-user takes it before it adopts an old Auth0 user of ours; cleanup takes it around
//! its last look at an Auth0 user and the delete. Whoever comes second waits (create-user,
//! bounded by `lock_timeout`) or leaves the address for the next run (cleanup), so a user
//! row is never committed for a login cleanup is deleting. The key is computed here only.

use std::collections::HashSet;

use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::InTransaction;

/// The lock key of an address: stable across sessions and versions of Postgres (13+).
/// The prefix keeps it apart from every other advisory lock of the project.
const ADDRESS_KEY: &str = "hashtextextended('user-address:' || lower(btrim($1)), 0)";

/// Waits (at most the session's `lock_timeout`, which applies to advisory locks too) for the
/// address; held until the transaction ends.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn lock_address(
    tx: &impl InTransaction,
    email: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.connection()
        .execute(
            &format!("SELECT pg_advisory_xact_lock({ADDRESS_KEY})"),
            &[&email],
        )
        .await?;
    Ok(())
}

/// Takes the address if nobody holds it; never waits.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn try_lock_address(
    tx: &impl InTransaction,
    email: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .connection()
        .query_one(
            &format!("SELECT pg_try_advisory_xact_lock({ADDRESS_KEY})"),
            &[&email],
        )
        .await?;
    Ok(row.get(0))
}

/// One statement for a batch of rows: takes every free address, never waits, and returns the
/// ids of the rows whose address someone else holds.
#[tracing::instrument(level = "debug", skip_all, fields(rows = ids.len()))]
pub async fn try_lock_addresses(
    tx: &impl InTransaction,
    ids: &[Uuid],
    emails: &[&str],
) -> Result<HashSet<Uuid>, tokio_postgres::Error> {
    let key = ADDRESS_KEY.replace("$1", "x.email");
    let rows = tx
        .connection()
        .query(
            &format!(
                "SELECT x.id FROM unnest($1::uuid[], $2::text[]) AS x(id, email)
                  WHERE NOT pg_try_advisory_xact_lock({key})"
            ),
            &[&ids, &emails],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
