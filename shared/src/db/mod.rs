//! Postgres: the pool, the migrations and one module of queries per table.
//! Query functions take the open transaction and do one thing each.

pub mod cleanup;
pub mod employees;
pub mod locks;
pub mod pages;
pub mod reset_tokens;
mod tls;
pub mod users;

use std::str::FromStr;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DatabaseSettings, DbTarget, DbTls, Timeouts};
use crate::secrets::{CachedSecret, DbSecret};

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
    pg.connect_timeout(std::time::Duration::from_secs(5));
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
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
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

/// Applies every pending migration; safe to run concurrently (refinery locks its table).
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), refinery::Error> {
    embedded::migrations::runner()
        .run_async(client)
        .await
        .map(|_| ())
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
