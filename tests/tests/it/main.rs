//! One integration test binary: real Postgres, the doubles over real HTTP.

mod create_user;
mod create_user_failures;
mod create_user_requests;
mod lambda_binary;
