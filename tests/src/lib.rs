pub mod doubles;
pub mod harness;
pub mod runtime_api;
