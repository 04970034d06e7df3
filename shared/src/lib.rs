//! Atomic user provisioning: the library the Lambda functions are thin entry points to.

pub mod access;
pub mod admin_api;
pub mod auth0;
pub mod cleanup;
pub mod config;
pub mod db;
pub mod deadline;
pub mod domain;
pub mod email;
pub mod flow;
pub mod http_api;
pub mod json;
pub mod lifecycle;
pub mod metrics;
pub mod migration;
pub mod reset_token;
pub mod scim;
pub mod secrets;
pub mod set_password;
pub mod startup;
pub mod state;
pub mod telemetry;
