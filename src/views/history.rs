//! A DAG's recent runs, task by task: the grid of Airflow's grid view, one
//! column per run (oldest on the left) and one row per task, each cell the
//! task's status in that run with its reason.

use std::collections::BTreeMap;

use dag_state::{RunRecord, RunStatus, StateError, Store};
use serde::Serialize;

use super::live::{TaskState, task_states};

#[derive(Debug, Clone, Serialize)]
pub struct RunHistory {
    /// Oldest first.
    pub runs: Vec<HistoryRun>,
    /// Task id → one state per run in `runs` (`None`: not in that run).
    pub cells: BTreeMap<String, Vec<Option<TaskState>>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryRun {
    pub run_id: String,
    pub status: RunStatus,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub trigger: String,
}

impl From<&RunRecord> for HistoryRun {
    fn from(run: &RunRecord) -> Self {
        Self {
            run_id: run.run_id.clone(),
            status: run.status,
            started_at_ms: run.started_at_ms,
            finished_at_ms: run.finished_at_ms,
            trigger: run.trigger.kind.clone(),
        }
    }
}

/// The newest `limit` runs of `dag`, with every task's state in each.
pub fn run_history(store: &Store, dag: &str, limit: usize) -> Result<RunHistory, StateError> {
    let mut records = store.runs(Some(dag), limit)?;
    records.reverse();
    let mut cells: BTreeMap<String, Vec<Option<TaskState>>> = BTreeMap::new();
    for (column, run) in records.iter().enumerate() {
        for (task_id, state) in task_states(store, &run.run_id)? {
            cells
                .entry(task_id)
                .or_insert_with(|| vec![None; records.len()])[column] = Some(state);
        }
    }
    Ok(RunHistory {
        runs: records.iter().map(HistoryRun::from).collect(),
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_run, record_task};
    use dag_state::TaskStatus;

    #[test]
    fn runs_read_left_to_right_and_missing_tasks_are_empty_cells()
    -> Result<(), Box<dyn std::error::Error>> {
        let store = TestStore::new()?;
        for id in ["r1", "r2", "r3"] {
            record_run(&store, id, "d", &[])?;
        }
        record_run(&store, "other", "e", &[])?;
        record_task(&store, "r1", "a", TaskStatus::Failed, &[])?;
        record_task(&store, "r3", "a", TaskStatus::Succeeded, &[])?;
        record_task(&store, "r3", "b", TaskStatus::Skipped, &[])?;
        let history = run_history(&store, "d", 2)?;
        let ids: Vec<&str> = history.runs.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3"]);
        let a: Vec<Option<TaskStatus>> = history.cells["a"]
            .iter()
            .map(|c| c.as_ref().map(|s| s.status))
            .collect();
        assert_eq!(a, [None, Some(TaskStatus::Succeeded)]);
        assert_eq!(history.cells.len(), 2);
        Ok(())
    }
}
