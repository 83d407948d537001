//! [`Resume`]: what `dag run --resume` carries over from an earlier run.
//!
//! Tasks that finished there (succeeded, up to date, skipped) are settled in
//! the new run before it starts, with their recorded output values and
//! cache keys, so templates and cache keys downstream see what they would
//! have seen. Everything else (failed, upstream failed, cancelled,
//! interrupted, never started) runs again. Checking that the DAG definition
//! is unchanged is the caller's job.

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
        self.tasks
            .iter()
            .filter_map(|earlier| {
                let index = plan.index(&earlier.task_id)?;
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

/// Why a run cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("no run `{0}`; `dag runs` lists them")]
    NoRun(String),
    #[error(
        "run `{run_id}` is a run of `{dag}`, not `{asked}`; resume it with `dag run {dag} --resume {run_id}`"
    )]
    OtherDag {
        run_id: String,
        dag: String,
        asked: String,
    },
    #[error(
        "`{dag}` changed since run `{run_id}` (spec hash {then} then, {now} now); \
         resuming would mix two definitions: start a fresh run with `dag run {dag}`"
    )]
    Changed {
        run_id: String,
        dag: String,
        then: String,
        now: String,
    },
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
            dag: run.dag,
            asked: dag.name.clone(),
        });
    }
    let now = dag.spec_hash();
    if run.spec_hash != now {
        let short = |h: &str| h.get(..12).unwrap_or(h).to_string();
        return Err(ResumeError::Changed {
            run_id: run_id.to_string(),
            dag: dag.name.clone(),
            then: short(&run.spec_hash),
            now: short(&now),
        });
    }
    let tasks = store.tasks(run_id)?;
    let resume = Resume {
        run_id: run_id.to_string(),
        tasks,
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
}
