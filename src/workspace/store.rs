//! Opening the state store, and the store of the daemon this process is.
//!
//! Opening is where damage shows: a store that does not open is reported
//! with what to do (`dag doctor`), and a missing store beside a model
//! registry and a run cache or task logs — a deleted or moved `.dag/db` — is refused
//! rather than silently replaced by an empty history.

use std::path::Path;
use std::sync::Arc;

use dag_state::{OpenReport, StateError, Store};

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (a daemon, a `dag run`) holds it.
    #[error("{}; is `dag daemon` or another `dag run` using `{state_dir}`?", crate::record::error_chain(.source))]
    Locked {
        state_dir: String,
        source: StateError,
    },
    /// The store's files are damaged.
    #[error(
        "{}; `dag doctor` says what is damaged and what can be recovered, and `dag doctor --rebuild` moves the store aside and starts a new one (the run history is lost; the model registry, the run cache and task logs stay)",
        crate::record::error_chain(.0)
    )]
    Damaged(StateError),
    /// No store, but what runs leave behind is there.
    #[error(
        "there is no run history in `{state_dir}/db`, but `{state_dir}` holds {found}: was `{state_dir}/db` deleted or moved? Put it back, or start a new history with `dag doctor --rebuild`"
    )]
    MissingHistory { state_dir: String, found: String },
    #[error("{}", crate::record::error_chain(.0))]
    Other(StateError),
}

impl OpenError {
    fn from_state(state_dir: &Path, error: StateError) -> Self {
        match error {
            StateError::Locked { .. } => Self::Locked {
                state_dir: state_dir.display().to_string(),
                source: error,
            },
            StateError::Damaged { .. }
            | StateError::Corrupt { .. }
            | StateError::CorruptKey { .. } => Self::Damaged(error),
            StateError::Storage(ref failure) if failure.is_corruption() => Self::Damaged(error),
            other => Self::Other(other),
        }
    }
}

/// The store of the daemon this process is, if it is one: commands the
/// daemon runs for clients read it instead of opening the database (which
/// the daemon holds).
static DAEMON_STORE: std::sync::OnceLock<Arc<Store>> = std::sync::OnceLock::new();

/// Called once by the daemon after it opened the store.
pub fn share_daemon_store(store: Arc<Store>) {
    let _ = DAEMON_STORE.set(store);
}

/// The daemon's store when this process is the daemon, else the store in
/// `<state_dir>/db` opened with [`open_exclusive`].
pub fn open_store(state_dir: &Path) -> Result<Arc<Store>, OpenError> {
    if let Some(store) = DAEMON_STORE.get() {
        return Ok(Arc::clone(store));
    }
    open_exclusive(state_dir).map(|(store, _)| Arc::new(store))
}

/// Opens the store in `<state_dir>/db` for this process alone: refuses to
/// start an empty history beside a registry and cache, repairs what a dead
/// process left `running` (logged as warnings), and tidies what dead
/// processes left behind.
pub fn open_exclusive(state_dir: &Path) -> Result<(Store, OpenReport), OpenError> {
    let db = state_dir.join("db");
    if !Store::exists(&db)
        && runs_left_traces(state_dir)
        && let Some(found) = history_elsewhere(state_dir)
    {
        return Err(OpenError::MissingHistory {
            state_dir: state_dir.display().to_string(),
            found,
        });
    }
    let (store, report) = open_anyway(state_dir)?;
    Ok((store, report))
}

/// Opens (creating if needed) the store without the missing-history check:
/// for `dag doctor --rebuild`, which starts a new history on purpose.
pub fn open_anyway(state_dir: &Path) -> Result<(Store, OpenReport), OpenError> {
    let (store, report) = Store::open(&state_dir.join("db"))
        .map_err(|error| OpenError::from_state(state_dir, error))?;
    for run_id in &report.interrupted_runs {
        tracing::warn!(
            run_id,
            "run was left running by a process that died; marked interrupted"
        );
    }
    super::tidy_after_crash(state_dir, &store);
    Ok((store, report))
}

/// What runs leave in the state directory besides the store: model
/// versions, run-cache entries, task logs, described ("2 model versions,
/// 14 run-cache entries"). `None` when there is none of them.
pub fn history_elsewhere(state_dir: &Path) -> Option<String> {
    let left = Leftovers::in_dir(state_dir);
    let mut found = Vec::new();
    for (n, one, many) in [
        (left.versions, "model version", "model versions"),
        (left.cache, "run-cache entry", "run-cache entries"),
        (left.runs_logged, "run's task logs", "runs' task logs"),
    ] {
        if n > 0 {
            found.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}

/// Whether runs happened here: run-cache entries or task logs. (A
/// registry alone may have been copied in on purpose, to serve a model.)
fn runs_left_traces(state_dir: &Path) -> bool {
    let left = Leftovers::in_dir(state_dir);
    left.cache > 0 || left.runs_logged > 0
}

struct Leftovers {
    versions: usize,
    cache: usize,
    runs_logged: usize,
}

impl Leftovers {
    fn in_dir(state_dir: &Path) -> Self {
        let mut versions = 0;
        if let Ok(models) = std::fs::read_dir(state_dir.join("models")) {
            for model in models.flatten() {
                versions += count_files(&model.path().join("versions"), 0);
            }
        }
        Self {
            versions,
            cache: count_files(&state_dir.join("cache"), 1),
            runs_logged: std::fs::read_dir(state_dir.join("logs"))
                .map_or(0, |d| d.flatten().count()),
        }
    }
}

/// Regular files in `dir` (`depth` 0) or in its subdirectories (1).
fn count_files(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match (depth, entry.file_type()) {
            (0, Ok(kind)) if kind.is_file() => 1,
            (1, Ok(kind)) if kind.is_dir() => count_files(&entry.path(), 0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_store_beside_models_and_cache_is_refused_not_started_empty() -> std::io::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join(".dag");
        assert!(open_exclusive(&state).is_ok(), "a new project opens");
        drop(open_exclusive(&state));
        std::fs::create_dir_all(state.join("models/obesity/versions"))?;
        std::fs::write(state.join("models/obesity/versions/1.json"), "{}")?;
        std::fs::create_dir_all(state.join("cache/ab"))?;
        std::fs::write(state.join("cache/ab/abcd"), "x")?;
        std::fs::remove_dir_all(state.join("db"))?;
        match open_exclusive(&state) {
            Err(error @ OpenError::MissingHistory { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("1 model version, 1 run-cache entry"),
                    "{message}"
                );
                assert!(message.contains("dag doctor --rebuild"), "{message}");
            }
            other => panic!("expected a missing history, got {:?}", other.map(|_| ())),
        }
        assert!(!Store::exists(&state.join("db")), "nothing was created");
        assert!(open_anyway(&state).is_ok());
        Ok(())
    }
}
