//! set-password: the invited person's public calls (verify the link, set the password) →
//! the set-password flow in `shared`.

use lambda_runtime::{Error, service_fn};
use shared::set_password::handler::handle;
use shared::state::AppState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("set-password");
    // Built once per Lambda instance and borrowed by every invocation.
    let state = AppState::from_env()
        .await
        .inspect_err(|err| tracing::error!(error = %err, "start-up failed"))?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event| handle(state, event))).await
}
