//! Everything a Lambda instance builds once and every invocation borrows.

use deadpool_postgres::Pool;

use crate::auth0::Auth0Client;
use crate::config::{Config, ConfigError};
use crate::db::{self, PoolSetupError};
use crate::email::EmailSender;

pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub auth0: Auth0Client,
    pub email: EmailSender,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pool(#[from] PoolSetupError),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl AppState {
    pub fn from_env() -> Result<Self, InitError> {
        Self::new(Config::from_env()?)
    }

    /// No I/O: connections and the Auth0 token are made on first use and then kept.
    pub fn new(config: Config) -> Result<Self, InitError> {
        let pool = db::build_pool(&config.database, &config.timeouts)?;
        // One client (one connection pool, one TLS setup) shared by Auth0 and email.
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.http.min(std::time::Duration::from_secs(3)))
            .pool_idle_timeout(std::time::Duration::from_secs(50))
            .user_agent(concat!(
                "atomic-user-provisioning/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        let auth0 = Auth0Client::new(http.clone(), config.auth0.clone(), config.timeouts.http);
        let email = EmailSender::new(http, config.email.clone(), config.timeouts.http);
        Ok(Self {
            config,
            pool,
            auth0,
            email,
        })
    }
}
