//! Postgres: the pool, the migrations and one module of queries per table.
//! Query functions take the open transaction and do one thing each. Their spans are debug:
//! nothing logs inside them, and at info a span per statement was only work.

mod bound;
pub mod cleanup;
mod columns;
pub mod employees;
mod error;
pub mod idempotency_keys;
pub mod intents;
pub mod locks;
pub mod pages;
mod pool;
pub mod reset_tokens;
pub mod scim_tokens;
mod tls;
mod tx;
pub mod user_views;
pub mod users;

pub use bound::{Bound, ensure_prepared};
pub use error::{
    DbError, is_connection_lost, is_lock_timeout, is_unavailable, violated_foreign_key,
    violated_unique_constraint,
};
pub use pool::{PoolSetupError, build_pool, retry_on_lost_connection};
pub use tx::{Tx, execute_prepared};

/// A connection inside an open transaction: what transaction-scoped locks need, whichever
/// transaction type holds it (create-user's [`Tx`], cleanup's deadpool `Transaction`, a test's plain one).
pub trait InTransaction {
    fn connection(&self) -> &impl tokio_postgres::GenericClient;
}

impl InTransaction for tokio_postgres::Transaction<'_> {
    fn connection(&self) -> &impl tokio_postgres::GenericClient {
        self
    }
}

impl InTransaction for deadpool_postgres::Transaction<'_> {
    fn connection(&self) -> &impl tokio_postgres::GenericClient {
        &**self
    }
}

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies every pending migration; safe to run concurrently (refinery locks its table).
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), refinery::Error> {
    applied_migrations(client).await.map(|_| ())
}

/// As [`migrate`], naming what it applied (`V2__set_password`, …); empty when up to date.
pub async fn applied_migrations(
    client: &mut tokio_postgres::Client,
) -> Result<Vec<String>, refinery::Error> {
    let report = embedded::migrations::runner().run_async(client).await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// How many migrations this build carries.
pub fn known_migrations() -> usize {
    embedded::migrations::runner().get_migrations().len()
}
