//! One integration test binary: real Postgres, the doubles over real HTTP.

mod auth0_sdk;
mod bounded_waits;
mod chaos;
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
mod failure_answers;
mod idempotency;
mod lambda_binary;
mod lifecycle;
mod local_gateway;
mod migrate;
mod one_connection;
mod openapi;
mod payload_versions;
mod schema;
mod secrets;
mod set_password;
