//! set-password: the invited person's public calls (verify the link, set the password) →
//! the set-password flow in `shared`.

use lambda_runtime::{Error, service_fn};
use shared::set_password::handler::handle;
use shared::state::AppState;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init("set-password");
    // Built once per Lambda instance and borrowed by every invocation for the process's life.
    // A failure is reported to Lambda (`/init/error`) and ends the process.
    let state: &'static AppState = Box::leak(Box::new(
        shared::startup::ready_or_exit(AppState::from_env().await).await,
    ));
    // Served from a spawned task, not from `block_on`'s own future: every wake-up of that one
    // costs the runtime an extra turn of its driver (strace: 16 epoll_waits per create, 8
    // from a task).
    tokio::spawn(lambda_runtime::run(service_fn(move |event| {
        handle(state, event)
    })))
    .await?
}
