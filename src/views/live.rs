//! Task states while a run goes on: a snapshot read from the store, and the
//! changes each batch of recorded writes makes to it. A task that is running
//! has an attempt record and no settled task record yet; both views agree on
//! that, so a snapshot followed by changes ends where a new snapshot would.

use std::collections::BTreeMap;

use dag_state::{
    AttemptRecord, AttemptStatus, RunStatus, StateError, Store, TaskRecord, TaskStatus, Write,
};
use serde::Serialize;

/// One task's state as a live view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskState {
    pub status: TaskStatus,
    pub reason: Option<String>,
    /// The attempt running now, or the last one.
    pub attempt: u32,
}

/// A change a batch of writes made, in the order written.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveChange {
    Run {
        run_id: String,
        dag: String,
        status: RunStatus,
        finished: bool,
    },
    Task {
        run_id: String,
        task_id: String,
        #[serde(flatten)]
        state: TaskState,
    },
}

impl LiveChange {
    pub fn run_id(&self) -> &str {
        match self {
            Self::Run { run_id, .. } | Self::Task { run_id, .. } => run_id,
        }
    }
}

/// Every task of `run_id` that has started or settled, by id.
pub fn task_states(store: &Store, run_id: &str) -> Result<BTreeMap<String, TaskState>, StateError> {
    Ok(states_of(&store.attempts(run_id)?, &store.tasks(run_id)?))
}

/// [`task_states`] from records already read.
pub fn states_of(attempts: &[AttemptRecord], tasks: &[TaskRecord]) -> BTreeMap<String, TaskState> {
    let mut states = BTreeMap::new();
    for attempt in attempts {
        states.insert(
            attempt.task_id.clone(),
            TaskState {
                status: match attempt.status {
                    AttemptStatus::Running => TaskStatus::Running,
                    _ => TaskStatus::Pending,
                },
                reason: attempt.error.clone(),
                attempt: attempt.attempt,
            },
        );
    }
    for task in tasks {
        let attempt = states.get(&task.task_id).map_or(0, |s| s.attempt);
        states.insert(
            task.task_id.clone(),
            TaskState {
                status: task.status,
                reason: task.reason.clone(),
                attempt,
            },
        );
    }
    states
}

/// The changes in one committed batch. An attempt that starts makes its
/// task `running`; one that ends changes nothing until its task settles
/// (a retry may follow).
pub fn live_changes(writes: &[Write]) -> Vec<LiveChange> {
    writes
        .iter()
        .filter_map(|write| match write {
            Write::Run(run) => Some(LiveChange::Run {
                run_id: run.run_id.clone(),
                dag: run.dag.clone(),
                status: run.status,
                finished: run.finished_at_ms.is_some(),
            }),
            Write::Task(task) => Some(LiveChange::Task {
                run_id: task.run_id.clone(),
                task_id: task.task_id.clone(),
                state: TaskState {
                    status: task.status,
                    reason: task.reason.clone(),
                    attempt: task.attempts,
                },
            }),
            Write::Queued(_) => None,
            Write::Attempt(attempt) if attempt.status == AttemptStatus::Running => {
                Some(LiveChange::Task {
                    run_id: attempt.run_id.clone(),
                    task_id: attempt.task_id.clone(),
                    state: TaskState {
                        status: TaskStatus::Running,
                        reason: None,
                        attempt: attempt.attempt,
                    },
                })
            }
            Write::Attempt(_) | Write::Event(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_task};

    fn attempt(run: &str, task: &str, status: AttemptStatus) -> dag_state::AttemptRecord {
        dag_state::AttemptRecord {
            run_id: run.into(),
            task_id: task.into(),
            attempt: 1,
            status,
            started_at_ms: 1,
            finished_at_ms: None,
            exit_code: None,
            error: None,
            log_path: None,
            metrics: BTreeMap::new(),
            placement: None,
        }
    }

    #[test]
    fn a_started_attempt_is_running_until_its_task_settles()
    -> Result<(), Box<dyn std::error::Error>> {
        let store = TestStore::new()?;
        store.commit(vec![
            Write::Attempt(attempt("r", "slow", AttemptStatus::Running)),
            Write::Attempt(attempt("r", "done", AttemptStatus::Succeeded)),
        ])?;
        record_task(&store, "r", "done", TaskStatus::Succeeded, &[])?;
        let states = task_states(&store, "r")?;
        assert_eq!(states["slow"].status, TaskStatus::Running);
        assert_eq!(states["done"].status, TaskStatus::Succeeded);
        assert_eq!(states.len(), 2);
        Ok(())
    }

    #[test]
    fn changes_follow_the_writes_and_ignore_ended_attempts() {
        let writes = vec![
            Write::Attempt(attempt("r", "t", AttemptStatus::Running)),
            Write::Attempt(attempt("r", "t", AttemptStatus::Failed)),
        ];
        let changes = live_changes(&writes);
        assert_eq!(changes.len(), 1);
        assert!(matches!(
            &changes[0],
            LiveChange::Task { task_id, state, .. }
                if task_id == "t" && state.status == TaskStatus::Running
        ));
        assert_eq!(changes[0].run_id(), "r");
    }
}
