//! scim: API Gateway HTTP API → SCIM 2.0 in `shared` (users and discovery, for the tenants'
//! identity providers).

use lambda_runtime::Error;
use shared::scim::handle;

// As create-user's: mimalloc serves a request's many small blocks with less CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One event at a time per instance: a single-threaded runtime.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::startup::serve_api("scim", handle).await
}
