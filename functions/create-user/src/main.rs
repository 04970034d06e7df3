//! create-user: API Gateway HTTP API → the admin API in `shared` (create, check-exists,
//! resend-invitation).

use lambda_runtime::Error;
use shared::admin_api::handle;

// A request allocates some hundreds of small blocks (JSON, HTTP, the log lines); mimalloc
// serves them with less CPU than glibc's malloc (docs/PERFORMANCE.md, "What was tried").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One event at a time per instance: a single-threaded runtime spares the hand-offs between
// worker threads that a multi-threaded one pays on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("create-user", handle).await
}
