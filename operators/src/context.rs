//! [`Context`]: everything an operator attempt may use.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use crate::log_sink::LogSink;

/// The inputs of one attempt. Paths are absolute: the engine resolves them
/// against the project root before the operator sees them.
#[derive(Clone)]
pub struct Context {
    pub dag: String,
    pub run_id: String,
    pub task_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// RFC 3339 timestamp the run stands for (a cron fire time, or the start).
    pub logical_date: String,
    /// Operator params with every template rendered.
    pub params: Value,
    /// Declared input artifacts, name → absolute path.
    pub inputs: BTreeMap<String, PathBuf>,
    /// Declared output artifacts, name → absolute path. Parent directories exist.
    pub outputs: BTreeMap<String, PathBuf>,
    /// The project root that relative paths resolve against.
    pub workdir: PathBuf,
    /// The state directory (`.dag/` by default), for operators that keep
    /// files of their own there, such as the model registry.
    pub state_dir: PathBuf,
    pub log: LogSink,
    pub progress: ProgressSink,
    pub cancel: CancellationToken,
    /// The tag of the processes the attempt starts, when not the one the
    /// engine's store would give them (`process_tree::attempt_tag`): an
    /// attempt run for the engine on a Ray worker tags its processes apart,
    /// so that the store's crash clean-up on the same machine leaves them be.
    pub process_tag: Option<String>,
}

impl Context {
    /// The path of a declared input, or an error naming the missing input.
    pub fn input(&self, name: &str) -> Result<&Path, crate::OperatorError> {
        self.inputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| crate::OperatorError::Params(format!("missing input `{name}`")))
    }

    /// The path of a declared output, or an error naming the missing output.
    pub fn output(&self, name: &str) -> Result<&Path, crate::OperatorError> {
        self.outputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| crate::OperatorError::Params(format!("missing output `{name}`")))
    }

    /// A context for tests and tools: no log file, no progress, fresh token.
    pub fn detached(workdir: impl Into<PathBuf>, params: Value) -> Self {
        let workdir = workdir.into();
        Self {
            dag: "detached".into(),
            run_id: "detached".into(),
            task_id: "task".into(),
            attempt: 1,
            logical_date: "1970-01-01T00:00:00Z".into(),
            params,
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            state_dir: workdir.join(".dag"),
            workdir,
            log: LogSink::discard(),
            progress: ProgressSink::discard(),
            cancel: CancellationToken::new(),
            process_tag: None,
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("dag", &self.dag)
            .field("run_id", &self.run_id)
            .field("task_id", &self.task_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

type ProgressFn = dyn Fn(u64, u64, &str) + Send + Sync;

/// Progress of long work, shown live by the CLI: `done` of `total` units.
#[derive(Clone)]
pub struct ProgressSink(Option<Arc<ProgressFn>>);

impl ProgressSink {
    pub fn new(report: impl Fn(u64, u64, &str) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(report)))
    }

    pub fn discard() -> Self {
        Self(None)
    }

    pub fn report(&self, done: u64, total: u64, what: &str) {
        if let Some(report) = &self.0 {
            report(done, total, what);
        }
    }
}
