//! set-password: the invited person's public calls (verify the link, set the password) →
//! the set-password flow in `shared`.

use lambda_runtime::Error;
use shared::set_password::handler::handle;

// The allocator create-user uses: its requests are made of the same small blocks (JSON, HTTP,
// the log lines), which mimalloc serves with less CPU than glibc's malloc
// (docs/PERFORMANCE.md, "What was tried").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("set-password", handle).await
}
