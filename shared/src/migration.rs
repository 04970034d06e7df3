//! `make migrate`: the migrations applied to the database the functions use, over the very
//! connection they use (TLS as configured, `verify-full` in production; credentials from the
//! database secret), and never any demo data.

use std::sync::Arc;
use std::time::Duration;

use crate::config::MigrationConfig;
use crate::db::{self, PoolSetupError};
use crate::secrets::{self, CachedSecret, DbSecret, SecretsError};
use crate::telemetry::error_chain;

/// Long DDL (an index on a big table) may take minutes; waiting for a lock still ends at the
/// configured `lock_timeout`, so a migration never queues behind live traffic for long.
const MIGRATION_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("the database secret could not be read: {0}")]
    Secret(#[from] SecretsError),
    #[error(transparent)]
    Pool(#[from] PoolSetupError),
    #[error("could not connect to the database: {0}")]
    Connect(String),
    #[error("a migration failed: {0}")]
    Migrate(#[from] refinery::Error),
}

/// Applies what is pending and names it; empty when the database was up to date.
pub async fn run(
    config: &MigrationConfig,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Vec<String>, MigrationError> {
    let manager = aws.map(|aws| secrets::manager_client(aws, config.timeouts.secrets));
    let secret = config.database_secret.clone().map(|source| {
        Arc::new(CachedSecret::new(
            source,
            manager,
            DbSecret::from_json,
            Duration::from_secs(60),
            None::<DbSecret>,
        ))
    });
    if let Some(secret) = &secret {
        secret.get().await?;
    }
    let mut timeouts = config.timeouts;
    timeouts.statement = timeouts.statement.max(MIGRATION_STATEMENT_TIMEOUT);
    timeouts.idle_in_transaction = timeouts.idle_in_transaction.max(timeouts.statement * 2);
    let pool = db::build_pool(&config.database, secret, &timeouts)?;
    let mut client = tokio::time::timeout(timeouts.connect, pool.get())
        .await
        .map_err(|_| {
            MigrationError::Connect(format!(
                "no answer within {} ms",
                timeouts.connect.as_millis()
            ))
        })?
        .map_err(|err| MigrationError::Connect(error_chain(&err)))?;
    Ok(db::applied_migrations(&mut client).await?)
}
