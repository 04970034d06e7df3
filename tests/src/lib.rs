pub mod doubles;
pub mod harness;
pub mod lambda_process;
pub mod moto;
pub mod runtime_api;
