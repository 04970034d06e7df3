//! create-user: API Gateway HTTP API → the create-user flow in `shared`.

use lambda_runtime::{Error, service_fn};
use shared::create_user::handler::handle;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("create-user");
    // Built once per Lambda instance and borrowed by every invocation.
    let state = AppState::from_env()
        .await
        .inspect_err(|err| tracing::error!(error = %err, "start-up failed"))?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(state, event))).await
}
