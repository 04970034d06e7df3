pub mod doubles;
pub mod harness;
pub mod moto;
pub mod runtime_api;
