//! Settings of the cleanup reconciler, read with the rest of the configuration.

use std::time::Duration;

use crate::config::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupSettings {
    /// Orphans younger than this are left alone: a create-user may still be running.
    pub grace_period: Duration,
    /// Pending rows taken per transaction.
    pub batch_size: usize,
    /// Expired or used reset tokens are purged once this much older.
    pub token_retention: Duration,
    /// The run stops this long before the Lambda deadline and reports `partial`.
    pub deadline_margin: Duration,
}

impl CleanupSettings {
    pub(crate) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<'_, F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            grace_period: Duration::from_secs(
                60 * env.number::<u64>("CLEANUP_GRACE_PERIOD_MINUTES", 15, 1..=10_080)?,
            ),
            batch_size: env.number("CLEANUP_BATCH_SIZE", 50, 1..=1_000)?,
            token_retention: Duration::from_secs(
                3_600 * env.number::<u64>("RESET_TOKEN_RETENTION_HOURS", 168, 0..=8_760)?,
            ),
            deadline_margin: Duration::from_millis(env.number::<u64>(
                "CLEANUP_DEADLINE_MARGIN_MS",
                5_000,
                500..=60_000,
            )?),
        })
    }
}
