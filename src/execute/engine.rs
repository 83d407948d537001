//! [`Engine`], [`RunRequest`] and [`RunOutcome`]: what a run needs and gives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dag_operators::Registry;
use dag_state::{RunStatus, Store, Trigger};

use super::RunStop;
use crate::model::Dag;
use crate::record::RecorderHandle;

/// What runs share: operators, the store (read side), the recorder (write
/// side) and the directories paths resolve against.
#[derive(Clone)]
pub struct Engine {
    pub registry: Arc<Registry>,
    pub store: Arc<Store>,
    pub recorder: RecorderHandle,
    /// The project root: relative artifact paths resolve here.
    pub workdir: PathBuf,
    pub state_dir: PathBuf,
    /// Most bytes one attempt's log keeps (see `dag_operators::LogSink`).
    pub log_limit: u64,
    /// Deliveries of hooks (`on_failure`, ...) in flight.
    pub notifications: super::Notifications,
}

impl Engine {
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
}

/// `(task, done, total, unit)`: an operator's progress report.
pub type ProgressReport = Arc<dyn Fn(&str, u64, u64, &str) + Send + Sync>;

pub struct RunRequest {
    pub dag: Arc<Dag>,
    /// `--param` overrides, already typed.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Run only these tasks (empty: all).
    pub only: Vec<String>,
    pub max_parallel: Option<usize>,
    pub trigger: Trigger,
    /// RFC 3339; the start time when not given.
    pub logical_date: Option<String>,
    /// Cancels (`cancelled`) or interrupts (`interrupted`) the run.
    pub stop: RunStop,
    /// Run every task even when its result is up to date.
    pub force: bool,
    /// Run these tasks even when up to date.
    pub force_tasks: Vec<String>,
    /// Called as operators report progress.
    pub progress: Option<ProgressReport>,
    /// Use this run id instead of a new one (the daemon hands ids out when
    /// it accepts a request, before the run starts).
    pub run_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: RunStatus,
    /// Operator summary lines by task, in plan order.
    pub summaries: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("unknown param `{name}`{}", .help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownParam { name: String, help: Option<String> },
    #[error("unknown task `{name}` in `--only`{}", .help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownTask { name: String, help: Option<String> },
    #[error("the DAG has a dependency cycle with these params: {0}")]
    Cycle(String),
    #[error("mapped tasks cannot be expanded with these params: {0}")]
    Map(String),
    #[error("the operators refuse these params: {0}")]
    Params(String),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
}

impl ExecuteError {
    /// Why mapped tasks could not be expanded for a run's params.
    pub fn from_map(diagnostics: &[crate::parse::Diagnostic]) -> Self {
        Self::Map(crate::parse::joined_messages(diagnostics))
    }
}
