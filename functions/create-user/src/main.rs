//! create-user: API Gateway HTTP API → the create-user flow in `shared`.

use lambda_runtime::{Error, service_fn};
use shared::create_user::handler::handle;
use shared::state::AppState;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("create-user");
    // Built once per Lambda instance and borrowed by every invocation.
    // A failure is reported to Lambda (`/init/error`) and ends the process.
    let state = shared::startup::ready_or_exit(AppState::from_env().await).await;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(state, event))).await
}
