//! `Idempotency-Key` for any mutating operation, with the semantics of the well-known
//! implementations (Stripe, Powertools): the first request with a key runs; a repeat with the
//! same request gets the first answer again without anything running; the same key with another
//! request is refused; a repeat while the first still runs is told to wait. The answer is stored
//! in the same transaction as the operation's rows, so no "in progress" record can outlive a
//! killed process, and a 5xx stores nothing, leaving the key free for the retry.
//!
//! [`super::run`] drives it: [`claim`] after BEGIN, the operation in a savepoint, then
//! [`store`] of the answer (or of the refusal, in the undone work's place) before COMMIT.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Failure, Step};
use crate::db::idempotency_keys::{self, StoredAnswer};
use crate::db::{Bound, Tx};
use crate::domain::{IdempotencyKey, TenantId};

/// How the HTTP edge answers an outcome: what is stored and replayed.
pub type Render<'a, T, E> = &'a (dyn Fn(Result<&T, &E>) -> (u16, Value) + Send + Sync);

/// A request that carried an `Idempotency-Key`.
pub struct IdempotentRequest<'a, T, E> {
    pub key: &'a IdempotencyKey,
    /// What makes two requests "the same": route, caller and body.
    pub fingerprint: [u8; 32],
    /// How long the answer is replayed.
    pub ttl: Duration,
    pub render: Render<'a, T, E>,
}

impl<'a, T, E> IdempotentRequest<'a, T, E> {
    /// `route` and `caller` (who sent it: a JWT `sub`) make the same body on another route, or
    /// from another admin, another request.
    pub fn new(
        key: &'a IdempotencyKey,
        route: &str,
        caller: &str,
        body: &Value,
        ttl: Duration,
        render: Render<'a, T, E>,
    ) -> Self {
        let mut hasher = Sha256::new();
        for part in [route, caller, &body.to_string()] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        Self {
            key,
            fingerprint: hasher.finalize().into(),
            ttl,
            render,
        }
    }
}

/// A key that cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("another request with this Idempotency-Key is running")]
    InProgress,
    #[error("this Idempotency-Key was used with another request")]
    Reused,
}

/// What an operation run with [`super::run`] did.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// An earlier request with the same key and body was answered so; nothing ran now.
    Replayed(StoredAnswer),
}

/// Takes the key's lock in `tenant` for the transaction and reads its stored answer: `Some`
/// to replay, `None` to run the request. Both in one round trip; the read is a later
/// statement than the lock (a later snapshot), so it sees what the key's last holder committed.
pub async fn claim<T, E: From<KeyRefusal> + From<Failure>>(
    tx: &Tx<'_>,
    db: Bound,
    tenant: TenantId,
    request: &IdempotentRequest<'_, T, E>,
) -> Result<Option<StoredAnswer>, E> {
    let client = tx.client();
    let key = request.key.as_str();
    crate::db::ensure_prepared(
        db,
        client,
        &[idempotency_keys::TRY_LOCK, idempotency_keys::FIND],
    )
    .await
    .map_err(Failure::database(Step::IDEMPOTENCY))?;
    let (locked, stored) = db
        .burst(|db| async move {
            tokio::join!(
                biased;
                db.on(idempotency_keys::try_lock(client, tenant, key)),
                db.on(idempotency_keys::find(client, tenant, key))
            )
        })
        .await
        .map_err(Failure::database(Step::IDEMPOTENCY))?;
    if !locked.map_err(Failure::database(Step::IDEMPOTENCY))? {
        return Err(KeyRefusal::InProgress.into());
    }
    let Some(answer) = stored.map_err(Failure::database(Step::IDEMPOTENCY))? else {
        return Ok(None);
    };
    if answer.request_hash != request.fingerprint {
        return Err(KeyRefusal::Reused.into());
    }
    tracing::info!(
        step = "idempotency",
        status = answer.status,
        "stored answer replayed"
    );
    Ok(Some(answer))
}

/// Stores the answer for the key, inside the transaction that commits the request's work.
pub async fn store<T, E>(
    tx: &Tx<'_>,
    db: Bound,
    tenant: TenantId,
    request: &IdempotentRequest<'_, T, E>,
    (status, body): (u16, Value),
) -> Result<(), Failure> {
    db.on(idempotency_keys::store(
        tx.client(),
        tenant,
        request.key.as_str(),
        &request.fingerprint,
        status,
        &body,
        request.ttl,
    ))
    .await
    .map_err(Failure::database(Step::IDEMPOTENCY))
}
