//! [`Dag`]: a whole checked DAG file (with its includes merged).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::parse::SourceFile;

use super::{Executor, Schedule, Task};

#[derive(Debug, Clone)]
pub struct Dag {
    pub name: String,
    pub description: Option<String>,
    /// Typed defaults, overridable per run.
    pub params: BTreeMap<String, serde_json::Value>,
    pub max_parallel: Option<usize>,
    pub schedule: Option<Schedule>,
    /// File globs the daemon watches.
    pub watch: Vec<String>,
    /// Whether the daemon resumes a run of this DAG that a crash left
    /// interrupted, when it next starts.
    pub resume_interrupted: bool,
    /// `secrets:`: name → where its value is read when a run starts.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Run-level notifications (`on_failure` when the run fails, ...).
    pub hooks: super::Hooks,
    /// Executors declared under `executors:`, by name.
    pub executors: BTreeMap<String, Executor>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, Task>,
    /// The file this DAG was loaded from, then its includes.
    pub sources: Vec<Arc<SourceFile>>,
    /// The main file's path.
    pub path: PathBuf,
    /// The environment whose params were layered over the defaults
    /// (`--env`), recorded with each run.
    pub env: Option<String>,
    /// Mapped task id → its instance ids, in `map` order.
    pub mapped: BTreeMap<String, Vec<String>>,
    /// The tasks as declared, before mapping, when a task maps over a
    /// param: a run with other values for it expands them again.
    pub unexpanded: Option<Arc<BTreeMap<String, Task>>>,
    /// The plan the check built (it finds cycles), with the params it was
    /// built for: a run with those params uses it instead of building it
    /// again ([`crate::plan::plan_for`]).
    pub checked_plan: Option<Arc<CheckedPlan>>,
}

/// A plan and the params it was built with.
#[derive(Debug)]
pub struct CheckedPlan {
    pub params: BTreeMap<String, serde_json::Value>,
    pub plan: Arc<crate::plan::Plan>,
}

/// The largest secret file read: keys and tokens are far smaller.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the engine's process.
    Env(String),
    /// A file (relative to the project root); one trailing newline is dropped.
    File(String),
}

impl SecretSource {
    /// Reads the value; the error says what is missing.
    pub fn read(&self, workdir: &std::path::Path) -> Result<String, String> {
        match self {
            Self::Env(var) => std::env::var(var)
                .map_err(|_| format!("the environment variable `{var}` is not set")),
            Self::File(path) => {
                let full = workdir.join(path);
                // A regular file, read without blocking: a FIFO would hang
                // the run and `/dev/zero` would fill the memory.
                let mut text = crate::parse::read_regular_file(&full, MAX_SECRET_BYTES)
                    .map_err(|e| format!("cannot read `{}`: {e}", full.display()))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
        }
    }
}

impl Dag {
    /// blake3 over every source file's path and text: changes whenever the
    /// definition does.
    pub fn spec_hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        for source in &self.sources {
            hasher.update(source.path.to_string_lossy().as_bytes());
            hasher.update(&[0]);
            hasher.update(source.text.as_bytes());
            hasher.update(&[0]);
        }
        hasher.finalize().to_hex().to_string()
    }
}
