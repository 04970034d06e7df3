//! The connection pool: one per Lambda instance, its connections opened with the database
//! secret's current credentials, and the retry for a connection found dead.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::config::{DatabaseSettings, DbTarget, DbTls, Timeouts};
use crate::secrets::{CachedSecret, DbSecret};

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
