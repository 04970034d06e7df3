//! The cleanup reconciler: removes orphans on both sides, safely, in bounded batches.
//!
//! `handle` is the Lambda entry: it parses the event once into a [`CleanupRequest`] (an
//! invalid event is the invocation's error, `errorType` "InvalidRequest", and nothing is
//! done), runs the passes of [`run`] and answers with the [`CleanupSummary`].
//!
//! A run in which the database or Auth0 could not be reached or refused our credentials
//! (the summary's `unavailable`) fails the invocation with `errorType`
//! "DependencyUnavailable" and the summary in the message, so the Lambda Errors alarm fires.
//! A run that made progress and stopped early (deadline, Auth0 rate limit) is an ordinary
//! answer with `partial: true`.

mod auth0_orphans;
mod budget;
mod database_orphans;
mod intents;
pub mod request;
mod retention;
mod run;
pub mod summary;

use std::pin::Pin;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tracing::Instrument;

pub use request::{CleanupRequest, InvalidRequest, Scope, Trigger};
pub use run::run;
pub use summary::CleanupSummary;

use crate::deadline::Deadline;
use crate::state::AppState;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    /// The summary of the run, which did what it could (possibly nothing).
    #[error("cleanup could not work: {}; {}", describe(&.0.unavailable), serde_json::to_string(.0).unwrap_or_default())]
    DependencyUnavailable(Box<CleanupSummary>),
}

fn describe(unavailable: &[summary::Dependency]) -> String {
    let names: Vec<&str> = unavailable
        .iter()
        .map(|d| match d {
            summary::Dependency::Database => "the database",
            summary::Dependency::Auth0 => "Auth0",
        })
        .collect();
    let verb = if names.len() > 1 { "were" } else { "was" };
    format!("{} {verb} unavailable", names.join(" and "))
}

impl From<CleanupError> for Diagnostic {
    fn from(err: CleanupError) -> Self {
        match err {
            CleanupError::InvalidRequest(err) => err.into(),
            err @ CleanupError::DependencyUnavailable(_) => Diagnostic {
                error_type: "DependencyUnavailable".into(),
                error_message: err.to_string(),
            },
        }
    }
}

pub async fn handle(
    state: &AppState,
    event: LambdaEvent<Value>,
) -> Result<CleanupSummary, CleanupError> {
    let deadline = Deadline::from_epoch_millis(event.context.deadline);
    let span = tracing::info_span!("cleanup", request_id = %event.context.request_id);
    async {
        let request = CleanupRequest::parse(&event.payload)
            .inspect_err(|err| tracing::warn!(error = %err, "cleanup event refused"))?;
        // Boxed: the passes nest deep enough to hit rustc's query depth in callers' futures.
        let passes: Pin<Box<dyn Future<Output = CleanupSummary> + Send + '_>> =
            Box::pin(run(state, &request, deadline));
        let summary = passes.await;
        if summary.unavailable.is_empty() {
            Ok(summary)
        } else {
            Err(CleanupError::DependencyUnavailable(Box::new(summary)))
        }
    }
    .instrument(span)
    .await
}
