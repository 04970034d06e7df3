//! HTTP doubles of the external services, served on loopback for tests and the local stack.

pub mod auth0;
pub mod email;
pub mod faults;
pub(crate) mod server;

pub use auth0::{
    AUTH0_OPS, Auth0Config, Auth0Double, BulkUsers, bulk_db_user_id, bulk_db_user_id_sql,
    bulk_user_id, bulk_user_id_sql,
};
pub use email::{EmailConfig, EmailDouble, SentEmail};
pub use faults::Fault;
