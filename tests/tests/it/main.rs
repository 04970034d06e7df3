//! One integration test binary: real Postgres, the doubles over real HTTP.

mod cleanup;
mod cleanup_binary;
mod cleanup_budget;
mod cleanup_race;
mod cleanup_safety;
mod cleanup_scale;
mod create_user;
mod create_user_failures;
mod create_user_requests;
mod database_tls;
mod events;
mod lambda_binary;
mod openapi;
mod schema;
mod secrets;
