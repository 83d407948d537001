//! The two files that cross from the engine to a remote attempt and back,
//! through the attempt's directory on the shared filesystem
//! (`<state dir>/remote/<run>/<task>.<attempt>/`):
//!
//! - `context.json` ([`RemoteTask`]), written by the engine before it
//!   submits the job: everything `dag task-exec` needs to run the task's
//!   operator as a local attempt would;
//! - `outcome.json` ([`RemoteResult`]), written by `dag task-exec` when the
//!   operator ends: its values and metrics, or its error;
//!
//! and `task.log`, the operator's log, bounded like a local attempt's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dag_operators::{OperatorError, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of these files; `task-exec` refuses others, so a worker
/// with another `dag` binary fails clearly instead of half-running.
pub const FORMAT: u32 = 1;

/// One attempt of one task, as `dag task-exec` runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteTask {
    pub format: u32,
    /// The operator's name in the registry (`shell`, `ml.train`, ...).
    pub operator: String,
    pub dag: String,
    pub run_id: String,
    pub task_id: String,
    pub attempt: u32,
    pub logical_date: String,
    /// Rendered params.
    pub params: Value,
    pub inputs: BTreeMap<String, PathBuf>,
    pub outputs: BTreeMap<String, PathBuf>,
    pub workdir: PathBuf,
    pub state_dir: PathBuf,
    /// Where the operator's log goes, and the most bytes it keeps.
    pub log_path: PathBuf,
    pub log_limit: u64,
    /// Where [`RemoteResult`] is written.
    pub outcome_path: PathBuf,
}

/// How a remote attempt ended, as `dag task-exec` saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteResult {
    pub format: u32,
    /// The operator's error, `None` on success.
    pub error: Option<String>,
    /// Set when the operator stopped because it was cancelled.
    #[serde(default)]
    pub cancelled: bool,
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    pub summary: Option<String>,
    pub short_circuit: Option<String>,
}

impl RemoteResult {
    pub fn from_operator(result: Result<Outcome, OperatorError>) -> Self {
        let mut remote = Self {
            format: FORMAT,
            error: None,
            cancelled: false,
            values: BTreeMap::new(),
            metrics: BTreeMap::new(),
            summary: None,
            short_circuit: None,
        };
        match result {
            Ok(outcome) => {
                remote.values = outcome.values;
                remote.metrics = outcome.metrics;
                remote.summary = outcome.summary;
                remote.short_circuit = outcome.short_circuit;
            }
            Err(OperatorError::Cancelled) => {
                remote.cancelled = true;
                remote.error = Some("cancelled".into());
            }
            Err(error) => remote.error = Some(dag_operators::error_chain(&error)),
        }
        remote
    }

    /// The operator's outcome, or its error as the attempt's.
    pub fn into_outcome(self) -> Result<Outcome, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(Outcome {
            values: self.values,
            metrics: self.metrics,
            short_circuit: self.short_circuit,
            summary: self.summary,
        })
    }
}

/// The directory of one remote attempt's files.
pub fn attempt_dir(state_dir: &Path, run_id: &str, task_id: &str, attempt: u32) -> PathBuf {
    state_dir
        .join("remote")
        .join(run_id)
        .join(format!("{task_id}.{attempt}"))
}

/// Writes `value` as JSON to `path` through a temporary file and a rename,
/// so a reader never sees half of it.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|error| format!("cannot encode `{}`: {error}", path.display()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("cannot create `{}`: {error}", parent.display()))?;
    }
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))
}

/// Reads JSON written by [`write_json`]; `Ok(None)` when the file does not
/// exist. Files over 64 MiB are refused rather than read.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, String> {
    const MAX: u64 = 64 << 20;
    match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read `{}`: {error}", path.display())),
        Ok(meta) if meta.len() > MAX => {
            return Err(format!("`{}` is larger than {MAX} bytes", path.display()));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path)
        .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| format!("`{}` is not valid: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_round_trips_and_keeps_an_error() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("a/outcome.json");
        let ok = RemoteResult::from_operator(Ok(Outcome::default().value("n", 3).metric("m", 0.5)));
        write_json(&path, &ok)?;
        let read: Option<RemoteResult> = read_json(&path)?;
        let outcome = read.ok_or("missing")?.into_outcome()?;
        assert_eq!(outcome.values.get("n"), Some(&Value::from(3)));
        assert_eq!(outcome.metrics.get("m"), Some(&0.5));
        let failed = RemoteResult::from_operator(Err(OperatorError::Params("bad".into())));
        assert!(failed.into_outcome().is_err_and(|e| e.contains("bad")));
        assert_eq!(
            read_json::<RemoteResult>(&dir.path().join("none.json"))?,
            None
        );
        Ok(())
    }
}
