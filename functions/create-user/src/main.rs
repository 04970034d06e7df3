//! create-user: API Gateway HTTP API → the create-user flow in `shared`.

use lambda_runtime::Error;
use shared::create_user::handler::handle;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("create-user", handle).await
}
