//! The plain values the store keeps. Times are Unix milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    /// The process recording it died, or Ctrl-C stopped it.
    Interrupted,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    UpstreamFailed,
    Skipped,
    UpToDate,
    Cancelled,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
}

/// What started a run: `cli`, `cron`, `watch`, `api`, `dag`, `resume`, with
/// a detail such as the cron expression, the changed file or the parent run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Sortable by creation time: `YYYYMMDD-HHMMSS-xxxx`.
    pub run_id: String,
    pub dag: String,
    /// blake3 of the DAG's source files.
    pub spec_hash: String,
    pub spec_path: Option<String>,
    pub params: BTreeMap<String, Value>,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub logical_date: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Set on a run created by `dag run --resume`.
    pub resumed_from: Option<String>,
    /// The environment (`--env`) whose params were layered over the DAG's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// The final (or current) state of one task in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub run_id: String,
    pub task_id: String,
    pub operator: String,
    pub status: TaskStatus,
    /// Number of attempts made (0 for a skipped or up-to-date task).
    pub attempts: u32,
    /// Why a task was skipped, up to date, or failed upstream.
    pub reason: Option<String>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub metrics: BTreeMap<String, f64>,
    /// Output values addressable as `{{ tasks.<id>.outputs.<name> }}`.
    pub values: BTreeMap<String, Value>,
    pub cache_key: Option<String>,
    /// What the cache key was computed from (operator, version, rendered
    /// params, input digests, upstream keys), kept so that a later run can
    /// say exactly what changed.
    #[serde(default)]
    pub fingerprint: Option<Value>,
    /// The operator's one-line summary of what it did.
    #[serde(default)]
    pub summary: Option<String>,
    /// blake3 of the task's definition as declared when it finished (see
    /// `Task::definition_hash`), so `--resume` after an edit can tell
    /// whether the task still stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    pub inputs: Vec<ArtifactRecord>,
    pub outputs: Vec<ArtifactRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub run_id: String,
    pub task_id: String,
    /// 1-based.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log_path: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    /// Where the attempt ran, when not in the engine's own process tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// Where an attempt ran on a remote executor: the executor's name, and for
/// a Ray executor the job that ran it and the node its driver ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The executor's name in the DAG file.
    pub executor: String,
    /// `ray`.
    pub kind: String,
    /// The cluster's address.
    pub address: String,
    /// The Ray job's submission id.
    pub job_id: Option<String>,
    /// The id of the node the job's driver ran on, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Set when the attempt took over a job that an earlier, interrupted
    /// run had submitted (resume after a crash) instead of submitting one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attached: bool,
}

/// A file an attempt consumed or produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// The declared name (`inputs.<name>` / `outputs.<name>`).
    pub name: String,
    /// As declared, relative to the project root where it was relative.
    pub path: String,
    /// blake3, hex.
    pub digest: String,
    pub size: u64,
}

/// One entry of a run's append-only event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub run_id: String,
    /// Assigned by the store, increasing within a run.
    #[serde(default)]
    pub seq: u64,
    pub at_ms: i64,
    /// `run_started`, `attempt_started`, `attempt_finished`, `task_skipped`, ...
    pub kind: String,
    pub task_id: Option<String>,
    #[serde(default)]
    pub detail: Value,
}

/// How to start a run that was accepted but has not started: whatever
/// the queue's owner needs besides the run record (request options,
/// overrides), as JSON. Kept until the run's record leaves `queued`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRequest {
    pub run_id: String,
    pub queued_at_ms: i64,
    #[serde(default)]
    pub request: Value,
}

/// One write of a group commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Run(RunRecord),
    Task(TaskRecord),
    Attempt(AttemptRecord),
    Event(EventRecord),
    /// The request of a `queued` run, written with its run record.
    Queued(QueuedRequest),
}

/// What a file looked like on disk: enough to tell, without reading it,
/// that it has not been written since. Times are nanoseconds since the Unix
/// epoch. `ctime` is part of it because a process can set `mtime` back
/// (`touch -d`, `cp -p`, archive extraction) but not `ctime`, which the
/// kernel sets on every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
}

/// A file's blake3 digest and the [`FileStamp`] it had when it was hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDigest {
    pub stamp: FileStamp,
    /// blake3, hex.
    pub digest: String,
}
