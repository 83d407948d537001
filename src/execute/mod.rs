//! The executor: runs a [`Plan`](crate::plan::Plan) on tokio around the pure
//! [`Scheduler`](crate::scheduler::Scheduler). This is the only module that
//! spawns, sleeps, times out, retries and cancels.
//!
//! Operators compute; the executor hashes their declared input and output
//! artifacts and sends every record to the [`recorder`](crate::record), so
//! lineage is complete whichever operator ran.

mod artifacts;
mod clock;
mod engine;
mod explain;
mod fingerprint;
mod grow;
mod notify;
pub mod ray;
mod resume;
mod reuse;
mod run_loop;
mod run_state;
mod stop;
mod task_runner;

pub use artifacts::hash_file;
pub use clock::{new_run_id, now_ms, rfc3339};
pub use engine::{Engine, ExecuteError, ProgressReport, RunOutcome, RunRequest};
pub use explain::{
    ExplainContext, ExplainRequest, Explanation, TaskExplanation, Verdict, explain_run,
};
pub use fingerprint::Fingerprint;
pub use notify::Notifications;
pub use resume::{Resume, ResumeError, prepare_resume};
pub use run_loop::{DEFAULT_MAX_PARALLEL, execute_resumed, execute_run, validate_request};
pub use stop::RunStop;
pub use task_runner::{humanize, humanize_ms};
