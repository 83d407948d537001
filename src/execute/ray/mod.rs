//! The Ray executor: a task whose `executor:` names a `kind: ray` executor
//! runs each attempt as one job on a Ray cluster, through the head's Jobs
//! REST API. The job's entrypoint is `dag task-exec <context.json>`, which
//! runs the task's operator from the same registry as a local run; the
//! context, the outcome and the operator's log travel through the
//! attempt's directory on a filesystem the engine and the workers share.
//!
//! The scheduler, the cache and the record do not change: where an attempt
//! ran is recorded with it ([`dag_state::Placement`]), and nothing else.

mod attempt;
mod job_api;
mod remote_task;
mod request;
mod target;
mod task_exec;

pub use attempt::run_remote;
pub use job_api::{ApiError, JobInfo, JobsApi, submission_id};
pub use remote_task::{RemoteResult, RemoteTask, attempt_dir};
pub use target::{RemoteTarget, Takeover, takeover, target_for};
pub use task_exec::task_exec;
