//! The cleanup reconciler: removes orphans on both sides, safely, in bounded batches.

pub mod config;
