//! create-user: API Gateway HTTP API → the create-user flow in `shared`.

use lambda_runtime::Error;
use shared::create_user::handler::handle;

// A request allocates some 600 small blocks (JSON, HTTP, the log lines); mimalloc serves them
// for about 0.03 ms less CPU per create than glibc's malloc (docs/PERFORMANCE.md, sixth round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("create-user", handle).await
}
