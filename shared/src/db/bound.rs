//! How long one database wait may take: [`Bound`], cut short by the Lambda deadline.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};

use super::DbError;
use crate::config::Timeouts;
use crate::deadline::{Deadline, DeadlineExceeded};

/// Makes sure the connection has `statements` prepared, so that statements pipelined after this
/// reach the server in the order they are polled. A statement not prepared yet sends its Parse
/// first and its Execute only after the answer, behind any statement polled after it that was
/// prepared already; an insert could then run before the row it refers to. Costs no round trip
/// once the connection has them (they are cached with it), one per statement before.
pub async fn ensure_prepared(
    db: Bound,
    client: &Object,
    statements: &[&str],
) -> Result<(), DbError> {
    for sql in statements {
        db.on(client.prepare_cached(sql)).await?;
    }
    Ok(())
}

/// Slack over `statement_timeout` before the client gives up on an answer: a server that is
/// alive cancels the statement itself first and says why.
const ANSWER_SLACK: Duration = Duration::from_secs(1);

/// How long one database wait (a checkout, a statement, a commit) may take: the configured
/// maximum, cut short by the Lambda deadline.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    deadline: Deadline,
    statement: Duration,
    connect: Duration,
    /// Keeps the deadline's compensation reserve for later (work before a rollback), or may
    /// spend it (compensation and clean-up themselves).
    keep_reserve: bool,
    /// Each wait gets its own timer, or (inside [`Bound::burst`]) the burst's one timer
    /// bounds them all.
    own_timer: bool,
}

impl Bound {
    /// For work that may still have to be undone: leaves the compensation reserve alone.
    pub fn work(deadline: Deadline, timeouts: &Timeouts) -> Self {
        Self {
            deadline,
            statement: timeouts.statement + ANSWER_SLACK,
            connect: timeouts.connect,
            keep_reserve: true,
            own_timer: true,
        }
    }

    /// For work that ends at `deadline` whatever happens (the cleanup run's stop line).
    pub fn until(deadline: Deadline, timeouts: &Timeouts) -> Self {
        Self {
            keep_reserve: false,
            ..Self::work(deadline, timeouts)
        }
    }

    fn budget(&self, max: Duration) -> Result<Duration, DeadlineExceeded> {
        if self.keep_reserve {
            return self.deadline.call_budget(max);
        }
        let left = self.deadline.remaining().min(max);
        if left.is_zero() {
            Err(DeadlineExceeded)
        } else {
            Ok(left)
        }
    }

    /// One statement (or commit, or savepoint) with at most this long to answer.
    pub async fn on<T>(
        &self,
        wait: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        let budget = self.budget(self.statement)?;
        if !self.own_timer {
            return Ok(wait.await?);
        }
        match tokio::time::timeout(budget, wait).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(DbError::NoAnswer(budget)),
        }
    }

    /// Statements sent together (one round trip) under one timer, as long as one statement
    /// may take: `burst` gets a bound whose waits set no timer of their own. Each timer armed
    /// while the runtime sleeps on a later one wakes its driver (an eventfd write and one more
    /// epoll_wait), so a burst with a timer per statement paid that once per statement. A burst that
    /// runs out is [`DbError::NoAnswer`], whichever statement was still unanswered.
    pub async fn burst<T, F: Future<Output = T>>(
        &self,
        burst: impl FnOnce(Bound) -> F,
    ) -> Result<T, DbError> {
        let budget = self.budget(self.statement)?;
        let within = Bound {
            own_timer: false,
            ..*self
        };
        tokio::time::timeout(budget, burst(within))
            .await
            .map_err(|_| DbError::NoAnswer(budget))
    }

    /// A pooled connection: waiting for a free one, opening one (TCP, TLS, start-up,
    /// authentication) or checking one, all within the budget.
    pub async fn get(&self, pool: &Pool) -> Result<Object, DbError> {
        let budget = self.budget(self.connect)?;
        match tokio::time::timeout(budget, pool.get()).await {
            Ok(answer) => answer.map_err(DbError::Checkout),
            // Cancelling the checkout gives its slot back to the pool.
            Err(_) => Err(DbError::NoAnswer(budget)),
        }
    }
}
