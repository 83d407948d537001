//! The workspace: a project's DAG directory and state directory, as every
//! front end sees them. Finding DAG files and loading them (with their
//! diagnostics), reading `--param` overrides, opening the state store, and
//! reading task logs in bounded pieces.
//!
//! Nothing here prints or picks an exit code: the CLI, the daemon's API and
//! the web UI each report these results in their own way.

mod after_crash;
mod dag_files;
mod env;
pub mod glob;
mod params;
mod run_ref;
mod store;
mod task_logs;

use std::path::PathBuf;

pub use after_crash::{Tidied, tidy_after_crash};
pub use dag_files::{
    LoadError, dag_files, load_dag, load_dag_confined, looks_like_dag, resolve_dag_path,
};
pub use env::Environment;
pub use params::{BadParam, ParamKind, ParamTypeError, check_param_types, parse_param_overrides};
pub use run_ref::{MAX_BACK, pick_run, relative_run, resolve_run_ref};
pub use store::{
    OpenError, history_elsewhere, open_anyway, open_exclusive, open_store, share_daemon_store,
};
pub use task_logs::{
    AttemptLog, LOG_CHUNK, LogError, copy_from, find_attempt_log, read_chunk, tail_offset,
};

/// Where a project keeps its DAG files and its run state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Where DAG names are looked up (`dags/`).
    pub dags_dir: PathBuf,
    /// Run state, logs and the model registry (`.dag/`).
    pub state_dir: PathBuf,
}
