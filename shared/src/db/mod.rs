//! Postgres: the pool, the migrations and one module of queries per table.
//! Query functions take the open transaction and do one thing each. Their spans are debug:
//! nothing logs inside them, and at info a span per statement was only work.

pub mod cleanup;
mod columns;
pub mod employees;
pub mod idempotency_keys;
pub mod locks;
pub mod pages;
pub mod reset_tokens;
mod tls;
mod tx;
pub mod users;

pub use tx::{Tx, execute_prepared};

use std::str::FromStr;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Connect, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod,
};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DatabaseSettings, DbTarget, DbTls, Timeouts};
use crate::deadline::{Deadline, DeadlineExceeded};
use crate::secrets::{CachedSecret, DbSecret};

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

#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error("DATABASE_URL is not a valid Postgres connection string")]
    InvalidUrl,
    #[error("no database user: set DB_USER, put it in DATABASE_URL, or use DB_SECRET_ARN")]
    NoUser,
    #[error("DB_SSL_ROOT_CERT {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("could not build the connection pool: {0}")]
    Build(String),
}

/// One pool per Lambda instance. The session timeouts travel in the startup packet,
/// so every transaction has them without a round trip of its own.
pub fn build_pool(
    settings: &DatabaseSettings,
    secret: Option<Arc<CachedSecret<DbSecret>>>,
    timeouts: &Timeouts,
) -> Result<Pool, PoolSetupError> {
    let mut pg = match &settings.target {
        DbTarget::Url(url) => tokio_postgres::Config::from_str(url.expose_secret())
            .map_err(|_| PoolSetupError::InvalidUrl)?,
        DbTarget::Parts {
            host,
            port,
            name,
            user,
            password,
        } => {
            let mut pg = tokio_postgres::Config::new();
            pg.host(host).port(*port).dbname(name);
            if let Some(user) = user {
                pg.user(user);
            }
            if let Some(password) = password {
                pg.password(password.expose_secret());
            }
            pg
        }
    };
    if secret.is_none() && pg.get_user().is_none() {
        return Err(PoolSetupError::NoUser);
    }
    pg.options(session_options(timeouts));
    pg.application_name("atomic-user-provisioning");
    // Only the TCP connect; the start-up exchange after it is bounded by `Bound::get`.
    pg.connect_timeout(timeouts.connect);
    pg.ssl_mode(match settings.tls {
        DbTls::Disable => SslMode::Disable,
        DbTls::Require | DbTls::VerifyFull { .. } => SslMode::Require,
    });
    let manager = Manager::from_connect(
        pg,
        Connector {
            tls: tls::connector(&settings.tls)?,
            secret,
        },
        // A connection that died while the Lambda was frozen is caught by the flow's
        // retry-before-external-calls, so checkout costs no extra round trip.
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // A floor under every checkout, also for callers that do not go through `Bound`.
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(timeouts.connect))
        .create_timeout(Some(timeouts.connect))
        .recycle_timeout(Some(timeouts.connect))
        .build()
        .map_err(|e| PoolSetupError::Build(e.to_string()))
}

/// Opens the pool's connections with the database secret's current credentials, so a rotated
/// password is picked up when the secret's TTL runs out, or at once when the server refuses
/// the cached one (re-read at most every 30 s, like the app secret).
struct Connector {
    tls: MakeRustlsConnect,
    secret: Option<Arc<CachedSecret<DbSecret>>>,
}

impl Connect for Connector {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> Pin<
        Box<
            dyn Future<
                    Output = Result<
                        (tokio_postgres::Client, JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        let pg = pg.clone();
        Box::pin(async move {
            let Some(secret) = &self.secret else {
                return connect_as(&pg, None, self.tls.clone()).await;
            };
            // An unreadable secret leaves the last value (or the configured user) to be tried.
            let credentials = secret.get().await.ok();
            match connect_as(&pg, credentials.as_deref(), self.tls.clone()).await {
                Err(err) if err.code() == Some(&SqlState::INVALID_PASSWORD) => {
                    tracing::warn!(
                        "the database refused the cached password; re-reading its secret"
                    );
                    let fresh = secret.refresh().await.ok();
                    connect_as(&pg, fresh.as_deref(), self.tls.clone()).await
                }
                other => other,
            }
        })
    }
}

async fn connect_as(
    pg: &tokio_postgres::Config,
    credentials: Option<&DbSecret>,
    tls: MakeRustlsConnect,
) -> Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error> {
    let mut pg = pg.clone();
    if let Some(credentials) = credentials {
        pg.user(&credentials.username);
        pg.password(credentials.password.expose_secret());
    }
    let (client, connection) = pg.connect(tls).await?;
    let task = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "database connection ended with an error");
        }
    });
    Ok((client, task))
}

fn session_options(t: &Timeouts) -> String {
    format!(
        "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        t.statement.as_millis(),
        t.lock.as_millis(),
        t.idle_in_transaction.as_millis()
    )
}

/// Runs `attempt` again while it fails only because the pooled connection it was given was
/// dead (`lost`: before anything left the database). After a Lambda freeze every pooled
/// connection may be dead; each failed attempt discards the one it found (the pool sees it
/// closed), so pool size + 1 attempts reach a live one, with no health query per checkout.
pub async fn retry_on_lost_connection<T, E, Fut>(
    pool: &Pool,
    mut attempt: impl FnMut() -> Fut,
    lost: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let attempts = pool.status().max_size + 1;
    let mut result = attempt().await;
    for _ in 1..attempts {
        match &result {
            Err(err) if lost(err) => {
                tracing::warn!(error = %err, "database connection lost before anything left it; retrying");
                result = attempt().await;
            }
            _ => break,
        }
    }
    result
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
    /// epoll_wait), so a burst of six statements cost six of those for one wait. A burst that
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
