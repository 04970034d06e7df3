//! cleanup: EventBridge schedule or a manual event → the reconciler in `shared::cleanup`.

use lambda_runtime::{Error, service_fn};
use shared::cleanup::handle;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("cleanup");
    // Built once per Lambda instance and borrowed by every invocation.
    // A failure is reported to Lambda (`/init/error`) and ends the process.
    let state = shared::startup::ready_or_exit(AppState::from_env().await).await;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(state, event))).await
}
