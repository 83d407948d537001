//! What the views' tests share: DAGs from text, and a store in a temp dir.

use std::path::Path;

use crate::model::Dag;

/// Loads a DAG file's text (no includes), or the rendered diagnostics.
pub fn dag(text: &str) -> Result<Dag, String> {
    crate::parse::load_dag(
        Path::new("t.yaml"),
        &mut |_| Ok(text.to_string()),
        &crate::ops::registry(),
    )
    .map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// A store in a temporary directory, deleted on drop.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: dag_state::Store,
}

impl TestStore {
    pub fn new() -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (store, _) = dag_state::Store::open(&dir.path().join("db"))?;
        Ok(Self { dir, store })
    }
}

impl std::ops::Deref for TestStore {
    type Target = dag_state::Store;
    fn deref(&self) -> &dag_state::Store {
        &self.store
    }
}

/// A finished run of `dag` started at `1_700_000_000_000 + n` ms, where `n`
/// counts the runs recorded so far.
pub fn record_run(
    store: &dag_state::Store,
    run_id: &str,
    dag: &str,
    params: &[(&str, serde_json::Value)],
) -> Result<dag_state::RunRecord, dag_state::StateError> {
    let started = 1_700_000_000_000 + store.runs(None, usize::MAX)?.len() as i64 * 1000;
    let record = dag_state::RunRecord {
        run_id: run_id.into(),
        dag: dag.into(),
        spec_hash: "f00d".into(),
        spec_path: None,
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        trigger: dag_state::Trigger {
            kind: "cli".into(),
            detail: format!("dag run {dag}"),
        },
        status: dag_state::RunStatus::Succeeded,
        logical_date: String::new(),
        started_at_ms: started,
        finished_at_ms: Some(started + 500),
        resumed_from: None,
        env: None,
    };
    store.commit(vec![dag_state::Write::Run(record.clone())])?;
    Ok(record)
}

/// A settled task of `run_id` with `metrics`.
pub fn record_task(
    store: &dag_state::Store,
    run_id: &str,
    task_id: &str,
    status: dag_state::TaskStatus,
    metrics: &[(&str, f64)],
) -> Result<dag_state::TaskRecord, dag_state::StateError> {
    let record = dag_state::TaskRecord {
        run_id: run_id.into(),
        task_id: task_id.into(),
        operator: "noop".into(),
        status,
        attempts: 1,
        reason: None,
        started_at_ms: Some(1_700_000_000_100),
        finished_at_ms: Some(1_700_000_000_300),
        metrics: metrics
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect(),
        values: Default::default(),
        cache_key: None,
        fingerprint: None,
        summary: None,
        definition: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    store.commit(vec![dag_state::Write::Task(record.clone())])?;
    Ok(record)
}
