//! `Idempotency-Key` on create-user, with the semantics of the well-known implementations
//! (Stripe, Powertools): the first request with a key runs; a repeat with the same request gets
//! the first answer again without anything running; the same key with another request is
//! refused; a repeat while the first still runs is told to wait. The answer is stored in the
//! same transaction as the user, so no "in progress" record can outlive a killed process, and
//! a 5xx stores nothing, leaving the key free for the retry.

use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{CreateUserError, CreatedUser};
use crate::db::idempotency_keys::StoredAnswer;
use crate::domain::{CallerSub, IdempotencyKey};

/// How the HTTP edge answers an outcome: what is stored and replayed.
pub type Render<'a> =
    &'a (dyn Fn(Result<&CreatedUser, &CreateUserError>) -> (u16, Value) + Send + Sync);

/// A create-user request that carried an `Idempotency-Key`.
pub struct IdempotentRequest<'a> {
    pub key: &'a IdempotencyKey,
    /// What makes two requests "the same": route, caller and body.
    pub fingerprint: [u8; 32],
    /// How long the answer is replayed.
    pub ttl: Duration,
    pub render: Render<'a>,
}

impl<'a> IdempotentRequest<'a> {
    pub fn new(
        key: &'a IdempotencyKey,
        route: &str,
        caller: &CallerSub,
        body: &Value,
        ttl: Duration,
        render: Render<'a>,
    ) -> Self {
        let mut hasher = Sha256::new();
        for part in [route, caller.as_str(), &body.to_string()] {
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

/// What create-user did.
#[derive(Debug)]
pub enum Creation {
    Created(CreatedUser),
    /// An earlier request with the same key and body was answered so; nothing ran now.
    Replayed(StoredAnswer),
}
