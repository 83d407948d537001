//! Runs side by side, as an experiment tracker shows them: each run's params
//! and every metric its tasks recorded (`task.metric`), so one metric can be
//! followed across runs.

use std::collections::{BTreeMap, BTreeSet};

use dag_state::{RunStatus, StateError, Store};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Experiment {
    /// In the order asked for.
    pub runs: Vec<ExperimentRun>,
    /// Every param any of the runs has.
    pub param_names: Vec<String>,
    /// Every `task.metric` any of the runs has.
    pub metric_names: Vec<String>,
    /// Asked-for ids the store does not know.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentRun {
    pub run_id: String,
    pub dag: String,
    pub status: RunStatus,
    pub started_at_ms: i64,
    pub params: BTreeMap<String, Value>,
    /// `task.metric` → value.
    pub metrics: BTreeMap<String, f64>,
}

impl Experiment {
    /// The values of `metric` in run order (`None` where a run lacks it).
    pub fn series(&self, metric: &str) -> Vec<Option<f64>> {
        self.runs
            .iter()
            .map(|run| run.metrics.get(metric).copied())
            .collect()
    }
}

/// The runs `run_ids`, with their params and metrics.
pub fn experiment(store: &Store, run_ids: &[String]) -> Result<Experiment, StateError> {
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    let mut param_names = BTreeSet::new();
    let mut metric_names = BTreeSet::new();
    for run_id in run_ids {
        let Some(run) = store.run(run_id)? else {
            missing.push(run_id.clone());
            continue;
        };
        let mut metrics = BTreeMap::new();
        for task in store.tasks(run_id)? {
            for (name, value) in task.metrics {
                metrics.insert(format!("{}.{name}", task.task_id), value);
            }
        }
        param_names.extend(run.params.keys().cloned());
        metric_names.extend(metrics.keys().cloned());
        runs.push(ExperimentRun {
            run_id: run.run_id,
            dag: run.dag,
            status: run.status,
            started_at_ms: run.started_at_ms,
            params: run.params,
            metrics,
        });
    }
    Ok(Experiment {
        runs,
        param_names: param_names.into_iter().collect(),
        metric_names: metric_names.into_iter().collect(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_run, record_task};
    use dag_state::TaskStatus;

    #[test]
    fn metrics_are_named_by_task_and_series_follow_the_runs()
    -> Result<(), Box<dyn std::error::Error>> {
        let store = TestStore::new()?;
        record_run(&store, "a", "d", &[("seed", serde_json::json!(1))])?;
        record_run(&store, "b", "d", &[("depth", serde_json::json!(3))])?;
        record_task(&store, "a", "fit", TaskStatus::Succeeded, &[("acc", 0.5)])?;
        record_task(
            &store,
            "b",
            "fit",
            TaskStatus::Succeeded,
            &[("acc", 0.7), ("f1", 0.6)],
        )?;
        let ids = ["b".to_string(), "nope".to_string(), "a".to_string()];
        let experiment = experiment(&store, &ids)?;
        assert_eq!(experiment.param_names, ["depth", "seed"]);
        assert_eq!(experiment.metric_names, ["fit.acc", "fit.f1"]);
        assert_eq!(experiment.series("fit.acc"), [Some(0.7), Some(0.5)]);
        assert_eq!(experiment.series("fit.f1"), [Some(0.6), None]);
        assert_eq!(experiment.missing, ["nope"]);
        Ok(())
    }
}
