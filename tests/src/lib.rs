pub mod blackhole;
pub mod chaos;
pub mod doubles;
pub mod freezable_proxy;
pub mod harness;
pub mod lambda_process;
pub mod moto;
pub mod runtime_api;
