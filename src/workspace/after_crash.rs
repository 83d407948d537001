//! [`tidy_after_crash`]: what opening the store does about what dead
//! processes left behind, besides the store's own repair (runs left
//! `running` become `interrupted`):
//!
//! - task processes that outlived their engine (a `kill -9` does not reach
//!   a grandchild whose parent died) are found by their tag, killed, and
//!   recorded on their run: a `task_processes_killed` event, and the
//!   attempt marked `interrupted` — written if the engine died before it
//!   could record the attempt;
//! - temporary files of run-cache restores that were killed half-way, and
//!   of registry writes that were, are removed.
//!
//! Only the process that holds the store does this, so nothing it finds
//! can belong to a live engine of the same store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dag_operators::models::ModelRegistry;
use dag_operators::process_tree::{Tagged, find_tagged, kill_tagged, store_tag};
use dag_state::{AttemptRecord, AttemptStatus, EventRecord, Store, Write};
use serde_json::json;

use crate::cache::{RunCache, sweep_restores};
use crate::execute::now_ms;
use crate::record::error_chain;

/// What [`tidy_after_crash`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tidied {
    /// `(run, task, attempt, processes killed)` of task processes that
    /// outlived their engine.
    pub orphans: Vec<(String, String, u32, usize)>,
    /// Temporary files removed.
    pub temporaries: Vec<PathBuf>,
}

/// Kills and records orphaned task processes of this store, and removes
/// temporary files killed processes left. Failures are logged, never
/// fatal: this is cleaning up, and the store is usable either way.
pub fn tidy_after_crash(state_dir: &Path, store: &Store) -> Tidied {
    let mut tidied = Tidied::default();
    let mut by_tag: BTreeMap<String, Tagged> = BTreeMap::new();
    for process in find_tagged(&format!("{}/", store_tag(state_dir))) {
        by_tag.entry(process.tag.clone()).or_insert(process);
    }
    for (tag, process) in by_tag {
        let killed = kill_tagged(&tag);
        let Some((run, task, attempt)) = process.attempt() else {
            continue;
        };
        tracing::warn!(
            run_id = run,
            task,
            attempt,
            killed,
            "killed task processes that outlived the engine that ran them"
        );
        if let Err(error) = record_orphan(store, run, task, attempt, killed) {
            tracing::error!(
                run_id = run,
                "cannot record the killed task processes: {}",
                error_chain(&error)
            );
        }
        tidied
            .orphans
            .push((run.to_string(), task.to_string(), attempt, killed));
    }
    let cache = RunCache::beside(store);
    for removed in sweep_restores(cache.root()) {
        tracing::info!(path = %removed.path.display(), "removed the temporary file of a run-cache restore that was killed");
        tidied.temporaries.push(removed.path);
    }
    if state_dir.join("models").is_dir()
        && let Ok(registry) = ModelRegistry::open(state_dir)
    {
        for (path, _) in registry.remove_stale_temporaries() {
            tracing::info!(path = %path.display(), "removed the temporary file of a registry write that was killed");
            tidied.temporaries.push(path);
        }
    }
    tidied
}

fn record_orphan(
    store: &Store,
    run: &str,
    task: &str,
    attempt: u32,
    killed: usize,
) -> Result<(), dag_state::StateError> {
    let now = now_ms();
    let reason = format!(
        "the engine running this attempt died; {killed} of its processes were still running at the next open of the store and were killed"
    );
    let mut writes = vec![Write::Event(EventRecord {
        run_id: run.to_string(),
        seq: 0,
        at_ms: now,
        kind: "task_processes_killed".into(),
        task_id: Some(task.to_string()),
        detail: json!({ "attempt": attempt, "processes": killed, "reason": reason }),
    })];
    let existing = store
        .attempts(run)?
        .into_iter()
        .find(|a| a.task_id == task && a.attempt == attempt);
    let mut record = existing.unwrap_or_else(|| AttemptRecord {
        run_id: run.to_string(),
        task_id: task.to_string(),
        attempt,
        status: AttemptStatus::Interrupted,
        started_at_ms: now,
        finished_at_ms: None,
        exit_code: None,
        error: None,
        log_path: None,
        metrics: BTreeMap::new(),
        placement: None,
    });
    if matches!(
        record.status,
        AttemptStatus::Running | AttemptStatus::Interrupted
    ) {
        record.status = AttemptStatus::Interrupted;
        record.finished_at_ms.get_or_insert(now);
        record.error = Some(reason);
        writes.push(Write::Attempt(record));
    }
    store.commit(writes)
}
