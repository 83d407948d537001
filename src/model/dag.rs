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
    /// Executors declared under `executors:`, by name.
    pub executors: BTreeMap<String, Executor>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, Task>,
    /// The file this DAG was loaded from, then its includes.
    pub sources: Vec<Arc<SourceFile>>,
    /// The main file's path.
    pub path: PathBuf,
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
