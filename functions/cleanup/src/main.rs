//! cleanup: EventBridge schedule or a manual event → the reconciler in `shared::cleanup`.

use lambda_runtime::{Error, service_fn};
use shared::cleanup::handle;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("cleanup");
    // Built once per Lambda instance and borrowed by every invocation.
    let state = AppState::from_env()
        .await
        .inspect_err(|err| tracing::error!(error = %err, "start-up failed"))?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(state, event))).await
}
