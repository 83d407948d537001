//! [`Resume`]: what `dag run --resume` carries over from an earlier run.
//!
//! Tasks that finished there (succeeded, up to date, skipped) are settled in
//! the new run before it starts, with their recorded output values and
//! cache keys, so templates and cache keys downstream see what they would
//! have seen. Everything else (failed, upstream failed, cancelled,
//! interrupted, never started) runs again.
//!
//! After the DAG file was edited, a finished task carries over only when its
//! definition is the one it finished under and everything upstream of it
//! carries over too; a changed task, and what depends on it, runs again.

use std::collections::BTreeMap;

use dag_state::{TaskRecord, TaskStatus};
use serde_json::Value;

use crate::plan::Plan;
use crate::scheduler::Terminal;

/// The earlier run and its task records.
#[derive(Debug, Clone)]
pub struct Resume {
    pub run_id: String,
    pub tasks: Vec<TaskRecord>,
    /// Task id → its definition hash now, when the DAG changed since the
    /// earlier run; `None` when it did not.
    pub definitions: Option<BTreeMap<String, String>>,
}

impl Resume {
    /// The finished tasks of the earlier run that no longer stand: their
    /// definition changed (or was not recorded), or they are gone.
    pub fn changed_tasks(&self) -> Vec<String> {
        let Some(now) = &self.definitions else {
            return Vec::new();
        };
        self.tasks
            .iter()
            .filter(|t| finished(t.status))
            .filter(|t| {
                now.get(&t.task_id)
                    .is_none_or(|d| t.definition.as_ref() != Some(d))
            })
            .map(|t| t.task_id.clone())
            .collect()
    }
}

fn finished(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Succeeded | TaskStatus::UpToDate | TaskStatus::Skipped
    )
}

/// One task settled from the earlier run.
pub(super) struct Carried {
    pub index: usize,
    pub terminal: Terminal,
    pub values: BTreeMap<String, Value>,
    pub key: Option<String>,
    /// The earlier record, re-addressed to the new run.
    pub record: TaskRecord,
}

impl Resume {
    /// The tasks of `plan` that finished in the earlier run, as records of
    /// `new_run_id`.
    pub(super) fn carried_over(&self, plan: &Plan, new_run_id: &str) -> Vec<Carried> {
        let standing = self.standing(plan);
        self.tasks
            .iter()
            .filter_map(|earlier| {
                let index = plan.index(&earlier.task_id)?;
                if !standing[index] {
                    return None;
                }
                let terminal = match earlier.status {
                    TaskStatus::Succeeded | TaskStatus::UpToDate => Terminal::UpToDate,
                    TaskStatus::Skipped => Terminal::Skipped,
                    _ => return None,
                };
                let mut record = earlier.clone();
                record.run_id = new_run_id.to_string();
                record.attempts = 0;
                if terminal == Terminal::UpToDate {
                    // Only records that computed a result serve the run cache.
                    record.status = TaskStatus::UpToDate;
                    record.reason = Some(format!("finished in run {} (resumed)", self.run_id));
                }
                Some(Carried {
                    index,
                    terminal,
                    values: earlier.values.clone(),
                    key: earlier.cache_key.clone(),
                    record,
                })
            })
            .collect()
    }
}

impl Resume {
    /// Per task of `plan`: whether its earlier result still stands. Without
    /// an edit every finished task does; after one, a task stands when it
    /// finished under its current definition and everything upstream stands.
    fn standing(&self, plan: &Plan) -> Vec<bool> {
        let mut standing = vec![false; plan.ids.len()];
        let by_id: BTreeMap<&str, &TaskRecord> =
            self.tasks.iter().map(|t| (t.task_id.as_str(), t)).collect();
        for &index in &plan.order {
            let Some(earlier) = by_id.get(plan.ids[index].as_str()) else {
                continue;
            };
            standing[index] = finished(earlier.status)
                && match &self.definitions {
                    None => true,
                    Some(now) => {
                        now.get(&earlier.task_id).is_some()
                            && now.get(&earlier.task_id) == earlier.definition.as_ref()
                            && plan.upstream[index].iter().all(|&up| standing[up])
                    }
                };
        }
        standing
    }
}

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("no run `{0}`; `dag runs` lists them")]
    NoRun(String),
    #[error(
        "run `{run_id}` is a run of `{dag}`, not `{asked}`; resume it with `dag run {file} --resume {run_id}`"
    )]
    OtherDag {
        run_id: String,
        dag: String,
        asked: String,
        /// The file that run was loaded from (its name when not recorded).
        file: String,
    },
    #[error(
        "`{dag}` changed since run `{run_id}`, which recorded no task definitions to compare \
         (it ran before resuming after an edit was possible); start a fresh run: unchanged \
         tasks with outputs are still skipped as up to date"
    )]
    Changed { run_id: String, dag: String },
    #[error(transparent)]
    Store(#[from] dag_state::StateError),
}

/// The earlier run to resume and its params, or why it cannot be resumed:
/// it does not exist, belongs to another DAG, or was made from a different
/// definition of this one.
pub fn prepare_resume(
    store: &dag_state::Store,
    dag: &crate::model::Dag,
    run_id: &str,
) -> Result<(Resume, BTreeMap<String, Value>), ResumeError> {
    let run = store
        .run(run_id)?
        .ok_or_else(|| ResumeError::NoRun(run_id.to_string()))?;
    if run.dag != dag.name {
        return Err(ResumeError::OtherDag {
            run_id: run_id.to_string(),
            file: run.spec_path.clone().unwrap_or_else(|| run.dag.clone()),
            dag: run.dag,
            asked: dag.name.clone(),
        });
    }
    let tasks = store.tasks(run_id)?;
    let definitions = if run.spec_hash == dag.spec_hash() {
        None
    } else {
        let recorded = tasks
            .iter()
            .any(|t| finished(t.status) && t.definition.is_some());
        let any_finished = tasks.iter().any(|t| finished(t.status));
        if any_finished && !recorded {
            return Err(ResumeError::Changed {
                run_id: run_id.to_string(),
                dag: dag.name.clone(),
            });
        }
        Some(
            dag.tasks
                .iter()
                .map(|(id, task)| (id.clone(), task.definition_hash()))
                .collect(),
        )
    };
    let resume = Resume {
        run_id: run_id.to_string(),
        tasks,
        definitions,
    };
    Ok((resume, run.params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(text: &str) -> Plan {
        let registry = crate::ops::registry();
        let mut read = |_: &std::path::Path| Ok(text.to_string());
        let dag = crate::parse::load_dag(std::path::Path::new("d.yaml"), &mut read, &registry);
        let dag = dag.unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"));
        crate::plan::build_plan(&dag, &dag.params).unwrap_or_else(|cycles| panic!("{cycles:?}"))
    }

    fn record(task: &str, status: TaskStatus) -> TaskRecord {
        TaskRecord {
            run_id: "r1".into(),
            task_id: task.into(),
            operator: "noop".into(),
            status,
            attempts: 1,
            reason: None,
            started_at_ms: Some(1),
            finished_at_ms: Some(2),
            metrics: BTreeMap::new(),
            values: BTreeMap::from([("v".into(), Value::from(1))]),
            cache_key: Some(format!("key-{task}")),
            fingerprint: None,
            summary: None,
            definition: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    #[test]
    fn finished_tasks_carry_over_and_failed_ones_do_not() {
        let plan = plan_of(
            "name: d\ntasks:\n  a: { operator: noop }\n  b: { operator: noop, needs: [a] }\n  c: { operator: noop, needs: [b] }\n",
        );
        let resume = Resume {
            run_id: "r1".into(),
            definitions: None,
            tasks: vec![
                record("a", TaskStatus::Succeeded),
                record("b", TaskStatus::Failed),
                record("c", TaskStatus::UpstreamFailed),
                record("gone", TaskStatus::Succeeded),
            ],
        };
        let carried = resume.carried_over(&plan, "r2");
        assert_eq!(carried.len(), 1);
        let a = &carried[0];
        assert_eq!(a.index, plan.index("a").unwrap_or(usize::MAX));
        assert_eq!(a.terminal, Terminal::UpToDate);
        assert_eq!(a.key.as_deref(), Some("key-a"));
        assert_eq!(a.record.run_id, "r2");
        assert_eq!(a.record.status, TaskStatus::UpToDate);
        assert_eq!(
            a.record.reason.as_deref(),
            Some("finished in run r1 (resumed)")
        );
    }

    #[test]
    fn after_an_edit_a_changed_task_and_everything_below_it_run_again() {
        let plan = plan_of(
            "name: d\ntasks:\n  a: { operator: noop }\n  b: { operator: noop, needs: [a] }\n  c: { operator: noop, needs: [b] }\n  side: { operator: noop, needs: [a] }\n",
        );
        let finished = |task: &str| TaskRecord {
            definition: Some(format!("def-{task}")),
            ..record(task, TaskStatus::Succeeded)
        };
        let now: BTreeMap<String, String> = ["a", "b", "c", "side"]
            .iter()
            .map(|t| (t.to_string(), format!("def-{t}")))
            .collect();
        let mut edited = now.clone();
        edited.insert("b".into(), "def-b-edited".into());
        let resume = Resume {
            run_id: "r1".into(),
            tasks: vec![
                finished("a"),
                finished("b"),
                finished("c"),
                finished("side"),
            ],
            definitions: Some(edited),
        };
        let mut carried: Vec<String> = resume
            .carried_over(&plan, "r2")
            .iter()
            .map(|c| c.record.task_id.clone())
            .collect();
        carried.sort();
        assert_eq!(carried, ["a", "side"]);
        assert_eq!(resume.changed_tasks(), ["b"]);
        let unchanged = Resume {
            definitions: Some(now),
            ..resume.clone()
        };
        assert_eq!(unchanged.carried_over(&plan, "r2").len(), 4);
        assert!(unchanged.changed_tasks().is_empty());
    }
}
