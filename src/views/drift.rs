//! Drift as monitoring shows it: each check a `monitor.drift` task made
//! (newest first), its report — per-feature Jensen–Shannon divergence and
//! PSI against the thresholds — and the runs its `dag.trigger` tasks
//! started because of it (the retraining each drift caused).
//!
//! Reports are read from the run cache by the digest the store recorded, so
//! an old check shows the report it wrote, not whatever the file holds
//! now; nothing outside the state directory is read.

use std::collections::BTreeMap;
use std::io::Read;

use dag_state::{RunStatus, StateError, Store, TaskRecord, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::cache::RunCache;

/// The operator that checks drift.
pub const DRIFT_OPERATOR: &str = "monitor.drift";
/// The operator that starts another DAG's run.
pub const TRIGGER_OPERATOR: &str = "dag.trigger";
/// Larger reports are not read.
const MAX_REPORT_BYTES: u64 = 8 << 20;

/// One check: a run of a drift task.
#[derive(Debug, Clone, Serialize)]
pub struct DriftCheck {
    pub run_id: String,
    pub started_at_ms: i64,
    pub status: TaskStatus,
    pub reason: Option<String>,
    pub drift_detected: Option<bool>,
    pub max_js: Option<f64>,
    pub max_psi: Option<f64>,
    pub drifted_features: Vec<String>,
    /// `None` when the run cache no longer holds it (or it never succeeded).
    pub report: Option<DriftReport>,
    /// Runs started by this run's `dag.trigger` tasks.
    pub caused: Vec<CausedRun>,
}

/// The parts of a `monitor.drift` report the UI draws.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftReport {
    /// A file name, or where the reference came from: `{file, digest, rows}`
    /// or a registry version's data (`{alias, version, data, digest, rows}`).
    #[serde(default)]
    pub reference: serde_json::Value,
    #[serde(default)]
    pub current: String,
    #[serde(default)]
    pub reference_rows: u64,
    #[serde(default)]
    pub current_rows: u64,
    pub js_threshold: f64,
    pub psi_threshold: f64,
    #[serde(default)]
    pub drift_detected: bool,
    #[serde(default)]
    pub features: BTreeMap<String, FeatureDrift>,
}

impl DriftReport {
    /// The reference in a few words: `raw.csv`, `production v3 (train data)`.
    pub fn reference_name(&self) -> String {
        let text = |key: &str| self.reference.get(key).and_then(|v| v.as_str());
        match (&self.reference, text("file"), text("alias")) {
            (serde_json::Value::String(name), _, _) => name.clone(),
            (_, Some(file), _) => file.to_string(),
            (_, None, Some(alias)) => {
                let version = self.reference.get("version").map(ToString::to_string);
                let data = text("data").unwrap_or("training");
                format!("{alias} v{} ({data} data)", version.unwrap_or_default())
            }
            _ => "the reference".to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub js: f64,
    pub psi: f64,
    #[serde(default)]
    pub drifted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CausedRun {
    /// The `dag.trigger` task that started it.
    pub task_id: String,
    /// `None` when the run was deferred (a foreground `dag run` starts it
    /// after the current run, without an id to record here).
    pub run_id: Option<String>,
    /// `started`, `queued`, `deferred`, or why it did not start.
    pub state: Option<String>,
    /// `None` while only queued (no record yet).
    pub dag: Option<String>,
    pub status: Option<RunStatus>,
}

/// The newest `limit` checks made by task `task_id` of `dag`.
pub fn drift_checks(
    store: &Store,
    cache: &RunCache,
    dag: &str,
    task_id: &str,
    limit: usize,
) -> Result<Vec<DriftCheck>, StateError> {
    let mut checks = Vec::new();
    for run in store.runs(Some(dag), limit)? {
        let tasks = store.tasks(&run.run_id)?;
        let Some(task) = tasks.iter().find(|t| t.task_id == task_id) else {
            continue;
        };
        checks.push(DriftCheck {
            run_id: run.run_id.clone(),
            started_at_ms: run.started_at_ms,
            status: task.status,
            reason: task.reason.clone(),
            drift_detected: task
                .values
                .get("drift_detected")
                .and_then(serde_json::Value::as_bool),
            max_js: task.metrics.get("max_js").copied(),
            max_psi: task.metrics.get("max_psi").copied(),
            drifted_features: task
                .values
                .get("drifted_features")
                .and_then(serde_json::Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            report: report_of(cache, task),
            caused: caused_runs(store, &tasks)?,
        });
    }
    Ok(checks)
}

fn report_of(cache: &RunCache, task: &TaskRecord) -> Option<DriftReport> {
    let output = task.outputs.iter().find(|o| o.name == "report")?;
    let path = cache.entry_path(&output.digest).ok()?;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_BYTES).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn caused_runs(store: &Store, tasks: &[TaskRecord]) -> Result<Vec<CausedRun>, StateError> {
    let mut caused = Vec::new();
    for task in tasks.iter().filter(|t| t.operator == TRIGGER_OPERATOR) {
        let state = task
            .values
            .get("state")
            .and_then(|v| v.as_str())
            .map(String::from);
        if state.is_none() {
            continue; // skipped (no drift) or failed: it started nothing
        }
        let run_id = task.values.get("run_id").and_then(|v| v.as_str());
        let run = match run_id {
            Some(id) => store.run(id)?,
            None => None,
        };
        caused.push(CausedRun {
            task_id: task.task_id.clone(),
            run_id: run_id.map(String::from),
            state,
            dag: run.as_ref().map(|r| r.dag.clone()),
            status: run.map(|r| r.status),
        });
    }
    Ok(caused)
}

/// Tasks of `dag` that check drift, by id.
pub fn drift_tasks(dag: &crate::model::Dag) -> Vec<String> {
    dag.tasks
        .values()
        .filter(|t| t.operator == DRIFT_OPERATOR)
        .map(|t| t.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::test_support::{TestStore, record_run};
    use dag_state::{ArtifactRecord, Write};

    #[test]
    fn the_reference_reads_as_a_file_or_a_registry_version() -> Result<(), serde_json::Error> {
        let report = |reference: &str| -> Result<DriftReport, serde_json::Error> {
            serde_json::from_str(&format!(
                r#"{{"reference": {reference}, "js_threshold": 0.1, "psi_threshold": 0.2}}"#
            ))
        };
        assert_eq!(report(r#""raw.csv""#)?.reference_name(), "raw.csv");
        assert_eq!(
            report(r#"{"file": "raw.csv", "digest": "ab", "rows": 60}"#)?.reference_name(),
            "raw.csv"
        );
        assert_eq!(
            report(r#"{"alias": "production", "version": 3, "data": "train", "rows": 9}"#)?
                .reference_name(),
            "production v3 (train data)"
        );
        Ok(())
    }

    fn task(run: &str, id: &str, operator: &str) -> TaskRecord {
        TaskRecord {
            run_id: run.into(),
            task_id: id.into(),
            operator: operator.into(),
            status: TaskStatus::Succeeded,
            attempts: 1,
            reason: None,
            started_at_ms: None,
            finished_at_ms: None,
            metrics: BTreeMap::new(),
            values: BTreeMap::new(),
            cache_key: None,
            fingerprint: None,
            summary: None,
            definition: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    #[test]
    fn a_check_reads_its_own_report_from_the_cache_and_links_the_retraining()
    -> Result<(), Box<dyn std::error::Error>> {
        let store = TestStore::new()?;
        let cache = RunCache::new(store.dir.path().join("cache"));
        let report = br#"{"js_threshold": 0.1, "psi_threshold": 0.2, "drift_detected": true,
            "features": {"Weight": {"kind": "number", "js": 0.3, "psi": 1.5, "drifted": true}}}"#;
        let digest = blake3::hash(report).to_hex().to_string();
        let written = store.dir.path().join("report.json");
        std::fs::write(&written, report)?;
        cache.insert(&written, &digest)?;
        std::fs::write(&written, b"{}")?; // the file moved on; the check did not

        record_run(&store, "mon", "monitoring", &[])?;
        record_run(&store, "retrain", "retraining", &[])?;
        let mut check = task("mon", "detect", DRIFT_OPERATOR);
        check.metrics.insert("max_js".into(), 0.3);
        check
            .values
            .insert("drift_detected".into(), serde_json::json!(true));
        check.outputs.push(ArtifactRecord {
            name: "report".into(),
            path: "report.json".into(),
            digest,
            size: report.len() as u64,
        });
        let mut trigger = task("mon", "retrain_now", TRIGGER_OPERATOR);
        trigger
            .values
            .insert("run_id".into(), serde_json::json!("retrain"));
        trigger
            .values
            .insert("state".into(), serde_json::json!("started"));
        store.commit(vec![Write::Task(check), Write::Task(trigger)])?;

        let checks = drift_checks(&store, &cache, "monitoring", "detect", 10)?;
        assert_eq!(checks.len(), 1);
        let report = checks[0].report.as_ref().ok_or("report missing")?;
        assert_eq!(report.features["Weight"].psi, 1.5);
        assert_eq!(checks[0].drift_detected, Some(true));
        assert_eq!(checks[0].caused.len(), 1);
        assert_eq!(checks[0].caused[0].dag.as_deref(), Some("retraining"));
        Ok(())
    }
}
