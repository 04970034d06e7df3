//! Queries of the cleanup reconciler. Every one is bounded (a batch, a page, a LIMIT).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::domain::{Email, UserId};

/// Key of the transaction-scoped advisory lock held by the run sweeping Auth0 orphans.
/// Arbitrary, fixed; `hashtext('cleanup:auth0-sweep')` would do as well.
pub const AUTH0_SWEEP_LOCK: i64 = 0x636c_6561_6e75_7031;

/// A `users` row still marked `pending_…`.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub id: UserId,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub linked_employees: i64,
}

/// Where the previous batch ended: rows are walked in `(created_at, id)` order.
pub type BatchCursor = (DateTime<Utc>, Uuid);

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Locks the next batch of pending rows older than the grace period. Rows another
/// transaction holds (another cleanup run, anything else) are skipped, never waited for.
#[tracing::instrument(level = "debug", skip_all, fields(limit))]
pub async fn lock_pending_batch(
    tx: &Transaction<'_>,
    grace: Duration,
    after: Option<BatchCursor>,
    email: Option<&Email>,
    limit: usize,
) -> Result<Vec<PendingRow>, tokio_postgres::Error> {
    let (after_at, after_id) = after.unzip();
    let rows = tx
        .query(
            "SELECT u.id, u.email, u.created_at,
                    (SELECT count(*) FROM employees e WHERE e.user_id = u.id)
               FROM users u
              WHERE u.auth0_sub LIKE 'pending\\_%'
                AND u.created_at < now() - make_interval(secs => $1)
                AND ($2::timestamptz IS NULL OR (u.created_at, u.id) > ($2, $3::uuid))
                AND ($4::text IS NULL OR lower(u.email) = $4)
              ORDER BY u.created_at, u.id
              LIMIT $5
              FOR UPDATE OF u SKIP LOCKED",
            &[
                &seconds(grace),
                &after_at,
                &after_id,
                &email.map(Email::as_str),
                &(limit as i64),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PendingRow {
            id: UserId::new(r.get(0)),
            email: r.get(1),
            created_at: r.get(2),
            linked_employees: r.get(3),
        })
        .collect())
}

/// Deletes these rows if they are still pending, in one statement; permissions and reset
/// tokens cascade, a linked employee is unlinked by its foreign key. Returns the ids deleted.
#[tracing::instrument(level = "debug", skip_all, fields(rows = ids.len()))]
pub async fn delete_pending_rows(
    tx: &Transaction<'_>,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "DELETE FROM users WHERE id = ANY($1) AND auth0_sub LIKE 'pending\\_%' RETURNING id",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Which of these Auth0 ids a row holds, and which of these user ids are pending rows
/// (their Auth0 users are the database-orphan pass's business).
#[derive(Debug, Default)]
pub struct Claimed {
    pub auth0_subs: HashSet<String>,
    pub pending_ids: HashSet<Uuid>,
}

#[tracing::instrument(level = "debug", skip_all, fields(ids = auth0_ids.len()))]
pub async fn claimed(
    client: &impl GenericClient,
    auth0_ids: &[String],
    db_user_ids: &[Uuid],
) -> Result<Claimed, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT auth0_sub, NULL::uuid FROM users WHERE auth0_sub = ANY($1)
             UNION ALL
             SELECT NULL, id FROM users WHERE id = ANY($2) AND auth0_sub LIKE 'pending\\_%'",
            &[&auth0_ids, &db_user_ids],
        )
        .await?;
    let mut claimed = Claimed::default();
    for row in rows {
        if let Some(sub) = row.get::<_, Option<String>>(0) {
            claimed.auth0_subs.insert(sub);
        }
        if let Some(id) = row.get::<_, Option<Uuid>>(1) {
            claimed.pending_ids.insert(id);
        }
    }
    Ok(claimed)
}

/// Only one run sweeps Auth0 at a time. A session lock, so the sweep can run one short
/// transaction per Auth0 user on the same connection; [`unlock_auth0_sweep`] releases it, and
/// so does the connection ending (a killed run cannot keep it).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn try_lock_auth0_sweep(
    client: &impl GenericClient,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&AUTH0_SWEEP_LOCK])
        .await?;
    Ok(row.get(0))
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn unlock_auth0_sweep(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&AUTH0_SWEEP_LOCK])
        .await?;
    if !row.get::<_, bool>(0) {
        tracing::warn!("the auth0 sweep lock was not held at unlock");
    }
    Ok(())
}

/// Where the Auth0 sweep stands: the one row of `auth0_sweep` (V5). See
/// `cleanup/auth0_orphans.rs` for what each field means to the passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepState {
    pub watermark: Option<DateTime<Utc>>,
    pub round_started_at: Option<DateTime<Utc>>,
    pub round_cursor: Option<DateTime<Utc>>,
    pub round_visited: i64,
    pub rounds_completed: i64,
    pub last_round_started_at: Option<DateTime<Utc>>,
    pub last_round_ended_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn sweep_state(client: &impl GenericClient) -> Result<SweepState, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT watermark, round_started_at, round_cursor, round_visited, rounds_completed,
                    last_round_started_at, last_round_ended_at, last_run_at
               FROM auth0_sweep",
            &[],
        )
        .await?;
    Ok(SweepState {
        watermark: row.get(0),
        round_started_at: row.get(1),
        round_cursor: row.get(2),
        round_visited: row.get(3),
        rounds_completed: row.get(4),
        last_round_started_at: row.get(5),
        last_round_ended_at: row.get(6),
        last_run_at: row.get(7),
    })
}

/// Writes the whole state; only the run holding the sweep lock calls it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn save_sweep_state(
    client: &impl GenericClient,
    state: &SweepState,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE auth0_sweep
                SET watermark = $1, round_started_at = $2, round_cursor = $3, round_visited = $4,
                    rounds_completed = $5, last_round_started_at = $6, last_round_ended_at = $7,
                    last_run_at = $8",
            &[
                &state.watermark,
                &state.round_started_at,
                &state.round_cursor,
                &state.round_visited,
                &state.rounds_completed,
                &state.last_round_started_at,
                &state.last_round_ended_at,
                &state.last_run_at,
            ],
        )
        .await?;
    Ok(())
}

/// Rows of finished users created in `[from, before)` (`from: None` is open): about how many
/// tagged Auth0 users the full pass has left in its round. One pass over `users`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_finished_users_between(
    client: &impl GenericClient,
    from: Option<DateTime<Utc>>,
    before: DateTime<Utc>,
) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*) FROM users
              WHERE auth0_sub NOT LIKE 'pending\\_%'
                AND ($1::timestamptz IS NULL OR created_at >= $1) AND created_at < $2",
            &[&from, &before],
        )
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Auth0 users earlier sweeps could not settle, oldest first: (id, attempts so far).
#[tracing::instrument(level = "debug", skip_all, fields(limit))]
pub async fn sweep_retries(
    client: &impl GenericClient,
    limit: usize,
) -> Result<Vec<(String, i32)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT auth0_user_id, attempts FROM auth0_sweep_retries
              ORDER BY added_at, auth0_user_id LIMIT $1",
            &[&(limit as i64)],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Adds users to look at again; one already there keeps its attempts.
#[tracing::instrument(level = "debug", skip_all, fields(ids = ids.len()))]
pub async fn add_sweep_retries(
    client: &impl GenericClient,
    ids: &[String],
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO auth0_sweep_retries (auth0_user_id)
             SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&ids],
        )
        .await?;
    Ok(())
}

/// The user was settled (removed, held by a row, gone, not ours), or looked at for the last time.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn drop_sweep_retry(
    client: &impl GenericClient,
    id: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM auth0_sweep_retries WHERE auth0_user_id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// One more attempt that did not settle the user.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_sweep_retry(
    client: &impl GenericClient,
    id: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE auth0_sweep_retries SET attempts = attempts + 1 WHERE auth0_user_id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// Tokens used (or superseded by a newer invitation), or expired, longer than the retention
/// ago; but never the open token of a user still in set-up, expired or not: it is what lets
/// the page answer "expired, ask for a new invitation" instead of "invalid link". Such a user
/// holds at most one (each new invitation closes the rest).
const PURGEABLE_TOKENS: &str = "(t.used_at < now() - make_interval(secs => $1)
      OR (t.expires_at < now() - make_interval(secs => $1)
          AND EXISTS (SELECT 1 FROM users u
                       WHERE u.id = t.user_id AND u.setup_completed_at IS NOT NULL)))
  AND ($2::text IS NULL OR t.user_id IN (SELECT id FROM users WHERE lower(email) = $2))";

/// Deletes at most `limit` reset tokens used or expired longer than `retention` ago.
#[tracing::instrument(level = "debug", skip_all, fields(limit))]
pub async fn purge_reset_tokens(
    client: &impl GenericClient,
    retention: Duration,
    email: Option<&Email>,
    limit: usize,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "DELETE FROM password_reset_tokens WHERE id IN (
                   SELECT t.id FROM password_reset_tokens t
                    WHERE {PURGEABLE_TOKENS}
                    LIMIT $3 FOR UPDATE SKIP LOCKED)"
            ),
            &[
                &seconds(retention),
                &email.map(Email::as_str),
                &(limit as i64),
            ],
        )
        .await
}

/// What [`purge_reset_tokens`] would delete, for a dry run.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_purgeable_reset_tokens(
    client: &impl GenericClient,
    retention: Duration,
    email: Option<&Email>,
) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM password_reset_tokens t WHERE {PURGEABLE_TOKENS}"),
            &[&seconds(retention), &email.map(Email::as_str)],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Deletes at most `limit` stored `Idempotency-Key` answers whose time is over.
#[tracing::instrument(level = "debug", skip_all, fields(limit))]
pub async fn purge_idempotency_keys(
    client: &impl GenericClient,
    limit: usize,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM idempotency_keys WHERE (tenant_id, key) IN (
               SELECT tenant_id, key FROM idempotency_keys
                WHERE expires_at < now()
                LIMIT $1 FOR UPDATE SKIP LOCKED)",
            &[&(limit as i64)],
        )
        .await
}

/// What [`purge_idempotency_keys`] would delete, for a dry run.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_expired_idempotency_keys(
    client: &impl GenericClient,
) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*) FROM idempotency_keys WHERE expires_at < now()",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}
