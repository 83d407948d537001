//! Durable run state for `dag`, on sled: runs, task results, attempts, the
//! append-only run event log, and the artifacts each attempt consumed and
//! produced (the raw material of lineage and caching).
//!
//! The API is synchronous and typed; no sled type leaks out. Writes are
//! group-committed: [`Store::commit`] applies a batch and flushes once, so a
//! caller that batches pays one flush for many records. What `commit` has
//! returned from is durable.
//!
//! This crate knows nothing about DAG files, plans or operators; records hold
//! plain values and JSON.

mod error;
mod records;
mod store;

pub use error::StateError;
pub use records::{
    ArtifactRecord, AttemptRecord, AttemptStatus, EventRecord, RunRecord, RunStatus, TaskRecord, TaskStatus,
    Trigger, Write,
};
pub use store::{FORMAT_VERSION, OpenReport, Store};
