//! Durable run state for `dag`, on sled: runs, task results, attempts, the
//! append-only run event log, and the artifacts each attempt consumed and
//! produced (the raw material of lineage and caching).
//!
//! The API is synchronous and typed; no sled type leaks out. Writes are
//! group-committed: [`Store::commit`] applies a batch atomically and flushes
//! once, so a caller that batches pays one flush for many records. What
//! `commit` has returned from is durable.
//!
//! Who owns what: `check` reads every record and index entry for `dag
//! doctor` and repairs what it can, `store` opens and commits and reads records, `open` deals
//! with the lock, damaged files and the format version, `recovery` repairs
//! what a dead process left `running`, `queue` keeps accepted runs that
//! have not started and the interruptions nobody has handled yet, `commit_plan` turns writes into
//! per-tree batches, `lineage` answers cache and lineage queries from
//! indexes, `file_digests` remembers file digests by file metadata, `keys`
//! and `codec` define the bytes on disk, `trees` names them.
//!
//! This crate knows nothing about DAG files, plans or operators; records hold
//! plain values and JSON.

mod check;
mod codec;
mod commit_plan;
mod error;
mod file_digests;
mod keys;
mod lineage;
mod open;
mod queue;
mod records;
mod recovery;
mod store;
mod trees;

#[cfg(test)]
mod kill_test;
#[cfg(test)]
mod test_support;

pub use check::{CheckReport, Damage, RepairReport};
pub use error::{StateError, StorageFailure};
pub use records::{
    ArtifactRecord, AttemptRecord, AttemptStatus, EventRecord, FileStamp, KnownDigest, Placement,
    QueuedRequest, RunRecord, RunStatus, TaskRecord, TaskStatus, Trigger, Write,
};
pub use store::{FORMAT_VERSION, OpenReport, Store};
