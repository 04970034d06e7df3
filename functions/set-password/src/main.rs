//! set-password: the invited person's public calls (verify the link, set the password) →
//! the set-password flow in `shared`.

use lambda_runtime::Error;
use shared::set_password::handler::handle;

// A request allocates some 600 small blocks (JSON, HTTP, the log lines); mimalloc serves them
// for about 0.03 ms less CPU per create than glibc's malloc (docs/PERFORMANCE.md, sixth round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("set-password", handle).await
}
