//! The cleanup reconciler: removes orphans on both sides, safely, in bounded batches.
//!
//! `handle` is the Lambda entry: it parses the event once into a [`CleanupRequest`] (an
//! invalid event is the invocation's error, `errorType` "InvalidRequest", and nothing is
//! done), runs the passes of [`run`] and answers with the [`CleanupSummary`].

pub mod request;
mod run;
pub mod summary;

use std::pin::Pin;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::Instrument;

pub use request::{CleanupRequest, InvalidRequest, Scope, Trigger};
pub use run::run;
pub use summary::CleanupSummary;

use crate::deadline::Deadline;
use crate::state::AppState;

pub async fn handle(
    state: &AppState,
    event: LambdaEvent<Value>,
) -> Result<CleanupSummary, InvalidRequest> {
    let deadline = Deadline::from_epoch_millis(event.context.deadline);
    let span = tracing::info_span!("cleanup", request_id = %event.context.request_id);
    async {
        let request = CleanupRequest::parse(&event.payload)
            .inspect_err(|err| tracing::warn!(error = %err, "cleanup event refused"))?;
        // Boxed: the passes nest deep enough to hit rustc's query depth in callers' futures.
        let passes: Pin<Box<dyn Future<Output = CleanupSummary> + Send + '_>> =
            Box::pin(run(state, &request, deadline));
        Ok(passes.await)
    }
    .instrument(span)
    .await
}
