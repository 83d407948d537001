//! [`RemoteTarget`]: which tasks of a run go to a Ray executor, what their
//! attempts' records say about where they ran, and [`Takeover`]: the job an
//! interrupted earlier run left running for a task, found when the run is
//! resumed so that it is followed instead of submitted again.

use std::path::PathBuf;

use dag_operators::Context;
use dag_state::{AttemptStatus, Placement, Store};

use super::job_api::submission_id;
use super::remote_task::attempt_dir;
use crate::model::{Dag, EXECUTOR_OVERRIDE_VAR, ExecutorKind, LOCAL_EXECUTOR, RayExecutor, Task};

/// A task bound to a Ray executor.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    /// The executor's name in the DAG file.
    pub executor: String,
    pub spec: RayExecutor,
    /// The task's operator, run by `dag task-exec` on the cluster.
    pub operator: String,
}

/// A job that an interrupted earlier run submitted for this task, to take
/// over instead of submitting another.
#[derive(Debug, Clone)]
pub struct Takeover {
    pub job_id: String,
    /// That attempt's directory (its context, outcome and log).
    pub dir: PathBuf,
}

impl RemoteTarget {
    /// The placement recorded for an attempt before anything is submitted.
    pub fn placement(&self, ctx: &Context, takeover: Option<&Takeover>) -> Placement {
        Placement {
            executor: self.executor.clone(),
            kind: "ray".into(),
            address: self.spec.effective_address(),
            job_id: Some(match takeover {
                Some(takeover) => takeover.job_id.clone(),
                None => submission_id(&ctx.run_id, &ctx.task_id, ctx.attempt),
            }),
            node: None,
            attached: takeover.is_some(),
        }
    }
}

/// Where `task` runs: `Ok(None)` for the engine's own process tree (no
/// `executor`, `executor: local`, or `DAG_EXECUTOR_OVERRIDE=local`).
pub fn target_for(dag: &Dag, task: &Task) -> Result<Option<RemoteTarget>, String> {
    match std::env::var(EXECUTOR_OVERRIDE_VAR) {
        Ok(value) if value.trim() == LOCAL_EXECUTOR => return Ok(None),
        Ok(value) if !value.trim().is_empty() => {
            return Err(format!(
                "{EXECUTOR_OVERRIDE_VAR}={value} is not understood: the only override is `{LOCAL_EXECUTOR}`"
            ));
        }
        _ => {}
    }
    let Some(name) = &task.executor else {
        return Ok(None);
    };
    if name == LOCAL_EXECUTOR {
        return Ok(None);
    }
    let executor = dag
        .executors
        .get(name)
        .ok_or_else(|| format!("unknown executor `{name}`"))?;
    match &executor.kind {
        ExecutorKind::Ray(spec) => Ok(Some(RemoteTarget {
            executor: name.clone(),
            spec: spec.clone(),
            operator: task.operator.clone(),
        })),
    }
}

/// The Ray job of `task_id` that run `earlier` left unfinished (its engine
/// died while the job ran), if any: the newest such attempt.
pub fn takeover(
    store: &Store,
    state_dir: &std::path::Path,
    earlier: &str,
    task_id: &str,
) -> Option<Takeover> {
    let attempts = store.attempts(earlier).ok()?;
    attempts
        .into_iter()
        .filter(|a| a.task_id == task_id)
        .filter(|a| {
            matches!(
                a.status,
                AttemptStatus::Running | AttemptStatus::Interrupted
            )
        })
        .max_by_key(|a| a.attempt)
        .and_then(|a| {
            let placement = a.placement?;
            let job_id = placement.job_id?;
            let dir = if placement.attached {
                // It was itself a takeover: its files are elsewhere, and
                // following a chain of them is not worth the risk.
                return None;
            } else {
                attempt_dir(state_dir, earlier, task_id, a.attempt)
            };
            Some(Takeover { job_id, dir })
        })
}
