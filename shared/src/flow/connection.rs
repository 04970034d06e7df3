//! A flow's pooled connections: checked out within the flow's bound, never pooled again once
//! their server went silent, and replaced when one was found dead before anything left the
//! database. A flow runs its attempts so:
//!
//! ```ignore
//! let mut attempts = Attempts::new(state, db);
//! loop {
//!     let mut client = attempts.connection().await?;
//!     let result = attempt(&mut client).await;
//!     if !attempts.again(client, &result) {
//!         return result;
//!     }
//! }
//! ```

use deadpool_postgres::Object;

use super::Failure;
use crate::db::Bound;
use crate::state::AppState;

/// An error that may carry a [`Failure`]: what the connection handling needs to know of a
/// flow's error.
pub trait CarriesFailure: From<Failure> + std::fmt::Display {
    fn failure(&self) -> Option<&Failure>;
}

/// The attempts of one flow. After a Lambda freeze every pooled connection may be dead; each
/// failed attempt discards the one it drew, so pool size + 1 attempts reach a live one with no
/// health query per checkout.
pub struct Attempts<'a> {
    state: &'a AppState,
    db: Bound,
    left: usize,
}

impl<'a> Attempts<'a> {
    pub fn new(state: &'a AppState, db: Bound) -> Self {
        Self {
            state,
            db,
            left: state.pool.status().max_size + 1,
        }
    }

    /// A pooled connection for the next attempt, within the flow's bound.
    pub async fn connection(&mut self) -> Result<Object, Failure> {
        self.left = self.left.saturating_sub(1);
        self.db.get(&self.state.pool).await.map_err(Failure::Pool)
    }

    /// After an attempt on `client`: whether to run it again on another connection, because it
    /// failed only for want of a live one before anything left the database. A connection whose
    /// server stopped answering, or that was found dead, is closed rather than handed to the
    /// next request.
    pub fn again<T, E: CarriesFailure>(&self, client: Object, result: &Result<T, E>) -> bool {
        let Err(err) = result else {
            return false;
        };
        let Some(failure) = err.failure() else {
            return false;
        };
        if failure.leaves_connection_unusable() {
            drop(Object::take(client));
        }
        let again = self.left > 0 && failure.is_retryable_on_a_fresh_connection();
        if again {
            tracing::warn!(error = %err, "database connection lost before anything left it; retrying");
        }
        again
    }
}
