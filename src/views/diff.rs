//! [`RunDiff`]: what changed between two runs — the definition, params, and
//! per task its status, input digests and metrics. `dag runs diff --json`
//! prints it; the web UI draws it. Only tasks with a difference are listed.

use std::collections::{BTreeMap, BTreeSet};

use dag_state::{StateError, Store, TaskRecord, TaskStatus};
use serde::Serialize;
use serde_json::Value;

/// `dag runs diff --json`.
#[derive(Debug, Serialize)]
pub struct RunDiff {
    pub run_a: String,
    pub run_b: String,
    pub dag_a: String,
    pub dag_b: String,
    pub spec_changed: bool,
    pub spec_hash_a: String,
    pub spec_hash_b: String,
    /// The environments (`--env`) of the two runs, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Change<String>>,
    pub params: Vec<Change<Value>>,
    pub tasks: Vec<TaskDiff>,
}

#[derive(Debug, Serialize)]
pub struct Change<T> {
    pub name: String,
    pub a: Option<T>,
    pub b: Option<T>,
}

#[derive(Debug, Serialize)]
pub struct TaskDiff {
    pub id: String,
    pub status_a: Option<TaskStatus>,
    pub status_b: Option<TaskStatus>,
    pub inputs: Vec<Change<String>>,
    pub metrics: Vec<MetricDelta>,
}

#[derive(Debug, Serialize)]
pub struct MetricDelta {
    pub name: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `b − a`, when both exist.
    pub delta: Option<f64>,
}

impl RunDiff {
    /// Nothing differs: same definition, params, statuses, inputs, metrics.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.tasks.is_empty() && !self.spec_changed && self.env.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("no run `{0}`")]
    NoRun(String),
    #[error(transparent)]
    Store(#[from] StateError),
}

/// Compares run `a` with run `b` (deltas are `b − a`).
pub fn run_diff(store: &Store, a: &str, b: &str) -> Result<RunDiff, DiffError> {
    let load = |id: &str| {
        let run = store.run(id)?.ok_or_else(|| DiffError::NoRun(id.into()))?;
        let tasks: BTreeMap<String, TaskRecord> = store
            .tasks(id)?
            .into_iter()
            .map(|t| (t.task_id.clone(), t))
            .collect();
        Ok::<_, DiffError>((run, tasks))
    };
    let (run_a, tasks_a) = load(a)?;
    let (run_b, tasks_b) = load(b)?;
    let params = changes(&run_a.params, &run_b.params);
    let ids: BTreeSet<&String> = tasks_a.keys().chain(tasks_b.keys()).collect();
    let tasks = ids
        .into_iter()
        .filter_map(|id| task_diff(id, tasks_a.get(id), tasks_b.get(id)))
        .collect();
    Ok(RunDiff {
        run_a: run_a.run_id,
        run_b: run_b.run_id,
        dag_a: run_a.dag,
        dag_b: run_b.dag,
        spec_changed: run_a.spec_hash != run_b.spec_hash,
        spec_hash_a: run_a.spec_hash,
        spec_hash_b: run_b.spec_hash,
        env: (run_a.env != run_b.env).then(|| Change {
            name: "env".into(),
            a: run_a.env.clone(),
            b: run_b.env.clone(),
        }),
        params,
        tasks,
    })
}

fn changes<T: Clone + PartialEq>(
    a: &BTreeMap<String, T>,
    b: &BTreeMap<String, T>,
) -> Vec<Change<T>> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|name| a.get(*name) != b.get(*name))
        .map(|name| Change {
            name: name.clone(),
            a: a.get(name).cloned(),
            b: b.get(name).cloned(),
        })
        .collect()
}

fn task_diff(id: &str, a: Option<&TaskRecord>, b: Option<&TaskRecord>) -> Option<TaskDiff> {
    let digests = |t: Option<&TaskRecord>| -> BTreeMap<String, String> {
        t.map(|t| {
            t.inputs
                .iter()
                .map(|i| (i.name.clone(), i.digest.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    let metrics_of = |t: Option<&TaskRecord>| t.map(|t| t.metrics.clone()).unwrap_or_default();
    let (metrics_a, metrics_b) = (metrics_of(a), metrics_of(b));
    let metrics: Vec<MetricDelta> = changes(&metrics_a, &metrics_b)
        .into_iter()
        .map(|c| MetricDelta {
            delta: c.a.zip(c.b).map(|(a, b)| b - a),
            name: c.name,
            a: c.a,
            b: c.b,
        })
        .collect();
    let diff = TaskDiff {
        id: id.to_string(),
        status_a: a.map(|t| t.status),
        status_b: b.map(|t| t.status),
        inputs: changes(&digests(a), &digests(b)),
        metrics,
    };
    let changed =
        diff.status_a != diff.status_b || !diff.inputs.is_empty() || !diff.metrics.is_empty();
    changed.then_some(diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_run, record_task};

    #[test]
    fn only_what_changed_is_listed_with_deltas_b_minus_a() -> Result<(), Box<dyn std::error::Error>>
    {
        let store = TestStore::new()?;
        record_run(&store, "a", "train", &[("seed", serde_json::json!(1))])?;
        record_run(&store, "b", "train", &[("seed", serde_json::json!(2))])?;
        record_task(
            &store,
            "a",
            "fit",
            TaskStatus::Succeeded,
            &[("accuracy", 0.5)],
        )?;
        record_task(
            &store,
            "b",
            "fit",
            TaskStatus::Succeeded,
            &[("accuracy", 0.75)],
        )?;
        record_task(&store, "a", "same", TaskStatus::Succeeded, &[("n", 1.0)])?;
        record_task(&store, "b", "same", TaskStatus::Succeeded, &[("n", 1.0)])?;
        record_task(&store, "b", "new", TaskStatus::Failed, &[])?;
        let diff = run_diff(&store, "a", "b")?;
        assert_eq!(diff.params.len(), 1);
        assert_eq!(diff.params[0].b, Some(serde_json::json!(2)));
        let ids: Vec<&str> = diff.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["fit", "new"]);
        assert_eq!(diff.tasks[0].metrics[0].delta, Some(0.25));
        assert_eq!(diff.tasks[1].status_a, None);
        assert!(!diff.is_empty());
        assert!(run_diff(&store, "a", "a")?.is_empty());
        assert!(matches!(
            run_diff(&store, "a", "missing"),
            Err(DiffError::NoRun(id)) if id == "missing"
        ));
        Ok(())
    }
}
