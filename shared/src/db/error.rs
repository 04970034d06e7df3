//! What a database wait can end in, and what a Postgres error means to the flows.

use std::time::Duration;

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::deadline::DeadlineExceeded;

/// The name of the unique constraint a statement violated, if that is what failed.
pub fn violated_unique_constraint(err: &tokio_postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION)
        .then(|| db.constraint())
        .flatten()
}

/// The name of the foreign key a statement violated, if that is what failed.
pub fn violated_foreign_key(err: &tokio_postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    (db.code() == &SqlState::FOREIGN_KEY_VIOLATION)
        .then(|| db.constraint())
        .flatten()
}

pub fn is_lock_timeout(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// Two transactions waited for each other and the server cancelled this one.
pub fn is_deadlock(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// The connection is gone (server restart, idle kill, Lambda thaw): a fresh one may work.
pub fn is_connection_lost(err: &tokio_postgres::Error) -> bool {
    err.is_closed()
        || matches!(
            err.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        )
        || (err.code().is_none()
            && std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>()))
}

/// The database did not answer in time or at all: a dependency problem, not a bug.
pub fn is_unavailable(err: &tokio_postgres::Error) -> bool {
    is_connection_lost(err) || err.code() == Some(&SqlState::QUERY_CANCELED)
}

/// A database wait that did not end well: the server's answer, or none in time.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// The server accepted the connection but did not answer (a hung or overloaded server,
    /// a network that drops packets): `statement_timeout` cannot help there.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    NoAnswer(Duration),
    /// Too little of the Lambda's time was left to start the wait at all.
    #[error(transparent)]
    Deadline(#[from] DeadlineExceeded),
    /// No connection: refused, authentication failed, or the pool's own limit ran out.
    #[error("no database connection: {0}")]
    Checkout(#[source] PoolError),
}

impl DbError {
    pub fn postgres(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Self::Postgres(err) => Some(err),
            _ => None,
        }
    }

    pub fn violated_unique_constraint(&self) -> Option<&str> {
        self.postgres().and_then(violated_unique_constraint)
    }

    /// `then` when the statement broke the unique constraint `name` (a caller's mistake, e.g.
    /// a taken address), else `otherwise(self)`: the one place a constraint name becomes an
    /// answer of the flow.
    pub fn on_constraint<E>(self, name: &str, then: E, otherwise: impl FnOnce(DbError) -> E) -> E {
        if self.violated_unique_constraint() == Some(name) {
            then
        } else {
            otherwise(self)
        }
    }

    pub fn is_lock_timeout(&self) -> bool {
        self.postgres().is_some_and(is_lock_timeout)
    }

    /// A wait for a lock that ended badly: held too long, or a deadlock. Transient: the same
    /// request again may well pass.
    pub fn is_contention(&self) -> bool {
        self.postgres()
            .is_some_and(|err| is_lock_timeout(err) || is_deadlock(err))
    }

    pub fn is_connection_lost(&self) -> bool {
        self.postgres().is_some_and(is_connection_lost)
    }

    /// The connection must not serve anyone again: its server stopped answering, or it was
    /// found dead. Each failed attempt of a retry then draws another.
    pub fn leaves_connection_unusable(&self) -> bool {
        matches!(self, Self::NoAnswer(_)) || self.is_connection_lost()
    }

    /// Not a bug: the database did not answer, or not in time.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(err) => is_unavailable(err),
            Self::NoAnswer(_) | Self::Deadline(_) | Self::Checkout(_) => true,
        }
    }
}
