//! set-password: the invited person's public calls (verify the link, set the password) →
//! the set-password flow in `shared`.

use lambda_runtime::Error;
use shared::set_password::handler::handle;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("set-password", handle).await
}
