//! [`Context`]: everything an operator attempt may use.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

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

/// The attempt's log file, created on first use so that tasks which log
/// nothing leave no file behind. Cloning shares the file.
#[derive(Clone)]
pub struct LogSink {
    path: Option<Arc<PathBuf>>,
    file: Arc<OnceLock<Option<Mutex<File>>>>,
}

impl LogSink {
    /// A log at `path`; the parent directory is created when the first line is written.
    pub fn at(path: PathBuf) -> Self {
        Self {
            path: Some(Arc::new(path)),
            file: Arc::new(OnceLock::new()),
        }
    }

    pub fn discard() -> Self {
        Self {
            path: None,
            file: Arc::new(OnceLock::new()),
        }
    }

    /// Where the log lives (it may not exist until something is written).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref().map(PathBuf::as_path)
    }

    fn file(&self) -> Option<&Mutex<File>> {
        self.file
            .get_or_init(|| {
                let path = self.path.as_deref()?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).ok()?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path.as_path())
                    .ok()?;
                Some(Mutex::new(file))
            })
            .as_ref()
    }

    /// Appends one line. Logging never fails the task: a write error is dropped.
    pub fn line(&self, message: impl fmt::Display) {
        if let Some(file) = self.file()
            && let Ok(mut file) = file.lock()
        {
            let _ = writeln!(file, "{message}");
        }
    }

    /// Another handle on the same file, for a child's stdout or stderr.
    pub fn try_clone_file(&self) -> Option<File> {
        let file = self.file()?.lock().ok()?;
        file.try_clone().ok()
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
