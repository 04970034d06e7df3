//! A transaction whose BEGIN goes out with its first statements.
//!
//! tokio-postgres (and deadpool with it) waits for BEGIN's answer before a transaction's first
//! statement can be sent: one round trip that carries nothing. [`Tx::begin_with`] sends BEGIN
//! and the first statements in one burst instead. Everything else is what tokio-postgres'
//! `Transaction` does: savepoints nest, and one dropped without COMMIT (or RELEASE) rolls back.
//! BEGIN, COMMIT, SAVEPOINT and RELEASE go out as prepared statements (see [`execute_prepared`]).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use deadpool_postgres::Object;

use super::{Bound, DbError, InTransaction};

/// An open transaction (or savepoint) on a pooled connection.
pub struct Tx<'a> {
    client: &'a Object,
    /// `Some` for a savepoint inside an enclosing `Tx`.
    savepoint: Option<&'static str>,
    done: bool,
}

impl<'a> Tx<'a> {
    /// BEGIN, then `first`'s statements in the same round trip. BEGIN is polled first, so it
    /// reaches the server first and they run inside the transaction; statements that must also
    /// reach the server in a given order among themselves need what [`super::ensure_prepared`]
    /// says. The round trip is one [`Bound::burst`]: `first` gets the bound to wait on. A
    /// failed BEGIN, or a burst that ran out, is the error, whatever `first` answered.
    pub async fn begin_with<T, F>(
        client: &'a mut Object,
        db: Bound,
        first: impl FnOnce(&'a Object, Bound) -> F,
    ) -> Result<(Tx<'a>, T), DbError>
    where
        F: Future<Output = T>,
    {
        let client: &'a Object = client;
        // Before the burst: BEGIN must go out on its first poll. COMMIT too, so that a COMMIT
        // is one message that either went out or did not. Nothing to send once cached.
        super::ensure_prepared(db, client, &[BEGIN, COMMIT]).await?;
        // Made before BEGIN is sent, so an attempt given up half way still rolls back.
        let tx = Tx {
            client,
            savepoint: None,
            done: false,
        };
        let (begun, first) = db
            .burst(|db| async move {
                tokio::join!(biased; db.on(execute_prepared(client, BEGIN)), first(client, db))
            })
            .await?;
        begun?;
        Ok((tx, first))
    }

    /// The connection, for the query functions of [`super`]: what they run is inside this
    /// transaction for as long as it is open.
    pub fn client(&self) -> &'a Object {
        self.client
    }

    /// A savepoint inside this transaction; until it ends, statements go through it.
    pub async fn savepoint(&mut self, name: &'static str) -> Result<Tx<'_>, tokio_postgres::Error> {
        // RELEASE is prepared now, for the reason COMMIT is prepared with BEGIN.
        self.client.prepare_cached(&release_sql(name)).await?;
        execute_prepared(self.client, &format!("SAVEPOINT {name}")).await?;
        Ok(Tx {
            client: self.client,
            savepoint: Some(name),
            done: false,
        })
    }

    /// COMMIT, or RELEASE for a savepoint.
    pub async fn commit(mut self) -> Result<(), tokio_postgres::Error> {
        // Marked first: a COMMIT given up on (timed out) may have landed; no ROLLBACK follows it.
        self.done = true;
        match self.savepoint {
            Some(name) => execute_prepared(self.client, &release_sql(name)).await,
            None => execute_prepared(self.client, COMMIT).await,
        }
    }

    /// ROLLBACK, or ROLLBACK TO a savepoint, waiting for the answer.
    pub async fn rollback(mut self) -> Result<(), tokio_postgres::Error> {
        self.done = true;
        self.client.batch_execute(&self.rollback_sql()).await
    }

    fn rollback_sql(&self) -> String {
        match self.savepoint {
            Some(name) => format!("ROLLBACK TO {name}"),
            None => "ROLLBACK".to_string(),
        }
    }
}

const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";

fn release_sql(savepoint: &str) -> String {
    format!("RELEASE {savepoint}")
}

/// Runs a statement without parameters (BEGIN, COMMIT, SAVEPOINT, RELEASE) as a prepared one:
/// sent as text (the simple protocol), Postgres parses it every time; prepared, it only binds
/// and runs it, as it does for `pgbench -M prepared`. Its first use on a connection prepares it
/// (one round trip), so where it must go out on its first poll, [`super::ensure_prepared`] it.
pub async fn execute_prepared(client: &Object, sql: &str) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, &[]).await.map(drop)
}

impl InTransaction for Tx<'_> {
    fn connection(&self) -> &impl tokio_postgres::GenericClient {
        // Object → deadpool's ClientWrapper → tokio-postgres' Client.
        &***self.client
    }
}

impl Drop for Tx<'_> {
    /// Rolls back without waiting, as tokio-postgres' `Transaction` does: the request is queued
    /// on the connection by the first poll, ahead of anything its next user sends, and the
    /// connection reads and drops the answer nobody waits for. A dead connection just refuses.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let sql = self.rollback_sql();
        let mut rollback = pin!(self.client.batch_execute(&sql));
        let _ = rollback
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
    }
}
