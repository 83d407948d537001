//! Opening the state store, and the store of the daemon this process is.

use std::path::Path;
use std::sync::Arc;

use dag_state::{StateError, Store};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (a daemon, a `dag run`) holds it.
    #[error("{}; is `dag daemon` or another `dag run` using `{state_dir}`?", crate::record::error_chain(.source))]
    Locked {
        state_dir: String,
        source: StateError,
    },
    #[error("{}", crate::record::error_chain(.0))]
    Other(StateError),
}

/// The store of the daemon this process is, if it is one: commands the
/// daemon runs for clients read it instead of opening the database (which
/// the daemon holds).
static DAEMON_STORE: std::sync::OnceLock<Arc<Store>> = std::sync::OnceLock::new();

/// Called once by the daemon after it opened the store.
pub fn share_daemon_store(store: Arc<Store>) {
    let _ = DAEMON_STORE.set(store);
}

/// Opens the store in `<state_dir>/db`, reporting runs a dead process left
/// behind (as warnings in the engine log).
pub fn open_store(state_dir: &Path) -> Result<Arc<Store>, OpenError> {
    if let Some(store) = DAEMON_STORE.get() {
        return Ok(Arc::clone(store));
    }
    let (store, report) = Store::open(&state_dir.join("db")).map_err(|error| match error {
        StateError::Locked { .. } => OpenError::Locked {
            state_dir: state_dir.display().to_string(),
            source: error,
        },
        other => OpenError::Other(other),
    })?;
    for run_id in &report.interrupted_runs {
        tracing::warn!(
            run_id,
            "run was left running by a process that died; marked interrupted"
        );
    }
    super::tidy_after_crash(state_dir, &store);
    Ok(Arc::new(store))
}
