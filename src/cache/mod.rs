//! What lets a task's earlier result stand, or come back, without running
//! it again — everything here is an optimisation that may be deleted at any
//! time without changing what a run computes:
//!
//! - [`file_digest`]: blake3 of a file, streamed.
//! - [`digest_memo`]: reuses a file's last digest while its size, times,
//!   inode and device are unchanged, so unchanged inputs are not reread.
//! - [`run_cache`]: content-addressed copies of task outputs under
//!   `<state_dir>/cache/`, from which outputs that were deleted or
//!   overwritten are restored instead of recomputed.
//! - [`gc`]: which run-cache entries are still referenced, and removing
//!   the rest (`dag gc`).
//! - [`restore_journal`]: journals of restores in progress, so that the
//!   temporary files of a killed restore are removed at the next open.
//!
//! Deciding *when* a task may reuse or restore a result is the executor's
//! job (`execute::reuse`); this module only stores, finds and checks bytes.

mod digest_memo;
mod file_digest;
mod gc;
mod gc_summary;
mod restore_journal;
mod run_cache;

pub use digest_memo::{DigestMemo, SETTLE};
pub use file_digest::{hash_file, hash_open, open_regular};
pub use gc::{GcError, GcPlan, GcReport, plan_gc};
pub use gc_summary::{GcEntry, GcFailure, GcSummary, collect_garbage};
pub use restore_journal::sweep_restores;
pub use run_cache::{CacheEntry, CacheError, Restore, RunCache};
