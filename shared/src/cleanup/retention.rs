//! Pass 3 of a cleanup run (see `run.rs`): reset tokens and idempotency keys past retention.

use super::run::{BoxError, Run};
use super::summary::Kind;
use crate::db::cleanup as queries;

/// Reset tokens deleted per statement.
const TOKEN_BATCH: usize = 1_000;

impl Run<'_> {
    pub(super) async fn reset_tokens(&mut self) {
        if !self.time_left() {
            return;
        }
        let Some(client) = self.connect(Kind::ResetTokens).await else {
            return;
        };
        if let Err(err) = self.purge_reset_tokens(&client).await {
            self.summary.partial = true;
            self.fail(Kind::ResetTokens, None, None, &err);
        }
        if self.email_scope().is_none()
            && self.time_left()
            && let Err(err) = self.purge_idempotency_keys(&client).await
        {
            self.summary.partial = true;
            self.fail(Kind::IdempotencyKeys, None, None, &err);
        }
    }

    async fn purge_idempotency_keys(
        &mut self,
        pg: &tokio_postgres::Client,
    ) -> Result<(), BoxError> {
        if self.dry_run() {
            self.summary.expired_idempotency_keys = self
                .db()
                .on(queries::count_expired_idempotency_keys(pg))
                .await?;
            return Ok(());
        }
        loop {
            let purged = self
                .db()
                .on(queries::purge_idempotency_keys(pg, TOKEN_BATCH))
                .await?;
            self.summary.expired_idempotency_keys += purged;
            if purged < TOKEN_BATCH as u64 || !self.time_left() {
                return Ok(());
            }
        }
    }

    async fn purge_reset_tokens(&mut self, pg: &tokio_postgres::Client) -> Result<(), BoxError> {
        let retention = self.settings.token_retention;
        if self.dry_run() {
            self.summary.found.reset_tokens = self
                .db()
                .on(queries::count_purgeable_reset_tokens(
                    pg,
                    retention,
                    self.email_scope(),
                ))
                .await?;
            return Ok(());
        }
        loop {
            let purged = self
                .db()
                .on(queries::purge_reset_tokens(
                    pg,
                    retention,
                    self.email_scope(),
                    TOKEN_BATCH,
                ))
                .await?;
            self.summary.found.reset_tokens += purged;
            self.summary.removed.reset_tokens += purged;
            if purged < TOKEN_BATCH as u64 || !self.time_left() {
                return Ok(());
            }
        }
    }
}
