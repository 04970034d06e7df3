//! Everything a Lambda instance builds once and every invocation borrows.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::auth0::Auth0Client;
use crate::config::{Config, ConfigError};
use crate::db::{self, PoolSetupError};
use crate::email::EmailSender;
use crate::secrets::{AppSecret, CachedSecret, DbSecret, SecretsError};

pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub auth0: Auth0Client,
    pub email: EmailSender,
    /// Auth0 credentials and email key; shared by both clients, refreshed on rotation.
    pub app_secret: Arc<CachedSecret<AppSecret>>,
    /// Database credentials, read by the pool whenever it opens a connection.
    pub db_secret: Option<Arc<CachedSecret<DbSecret>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Pool(#[from] PoolSetupError),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl InitError {
    /// The `errorType` Lambda shows for this failure.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Config(_) => "ConfigError",
            Self::Secrets(_) => "SecretsError",
            Self::Pool(_) => "DatabaseConfigError",
            Self::Http(_) => "HttpClientError",
        }
    }
}

impl AppState {
    pub async fn from_env() -> Result<Self, InitError> {
        Self::init(Config::from_env()?).await
    }

    /// Reads both secrets (concurrently) and builds the pool and clients. Connections and the
    /// Auth0 token are made on first use and then kept for the life of the instance.
    pub async fn init(config: Config) -> Result<Self, InitError> {
        // The SDK's config load (environment, credentials chain) is only paid for when a
        // secret lives in Secrets Manager.
        let aws = if config.secrets.uses_secrets_manager() {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        Self::init_with_aws(config, aws.as_ref()).await
    }

    /// As [`AppState::init`], with an AWS SDK configuration given rather than read from the
    /// environment (tests point it at moto without touching the process environment).
    pub async fn init_with_aws(
        config: Config,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, InitError> {
        let secrets = &config.secrets;
        let manager = aws.map(|aws| crate::secrets::manager_client(aws, config.timeouts.secrets));
        let app_secret = Arc::new(CachedSecret::new(
            secrets.app.clone(),
            manager.clone(),
            AppSecret::from_json,
            secrets.ttl,
            secrets.app_from_env.clone(),
        ));
        let db_secret = secrets.database.clone().map(|source| {
            Arc::new(CachedSecret::new(
                source,
                manager.clone(),
                DbSecret::from_json,
                secrets.ttl,
                None::<DbSecret>,
            ))
        });
        // Both read now, so a missing or malformed secret stops start-up, not a request.
        tokio::try_join!(app_secret.get(), async {
            match &db_secret {
                Some(secret) => secret.get().await.map(Some),
                None => Ok(None),
            }
        })?;
        let pool = db::build_pool(&config.database, db_secret.clone(), &config.timeouts)?;
        // One client (one connection pool, one TLS setup) shared by Auth0 and email.
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.http.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!(
                "atomic-user-provisioning/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        let auth0 = Auth0Client::new(http.clone(), app_secret.clone(), config.timeouts.http);
        let email = EmailSender::new(
            http,
            config.email_api_url.clone(),
            app_secret.clone(),
            config.timeouts.http,
        );
        Ok(Self {
            config,
            pool,
            auth0,
            email,
            app_secret,
            db_secret,
        })
    }
}
