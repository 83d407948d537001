//! Record builders and a temporary store for the unit tests.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{
    ArtifactRecord, AttemptRecord, AttemptStatus, EventRecord, RunRecord, RunStatus, Store,
    TaskRecord, TaskStatus, Trigger,
};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A fresh store in a temporary directory (kept alive by the returned guard).
pub(crate) fn temp_store() -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (store, _) = Store::open(&dir.path().join("state"))?;
    Ok((dir, store))
}

pub(crate) fn run(run_id: &str, dag: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        dag: dag.into(),
        spec_hash: "f00d".into(),
        spec_path: Some(format!("dags/{dag}.yaml")),
        params: BTreeMap::from([("alpha".to_owned(), Value::from(0.5))]),
        trigger: Trigger {
            kind: "cli".into(),
            detail: String::new(),
        },
        status,
        logical_date: "2024-05-01".into(),
        started_at_ms: 1_700_000_000_000,
        finished_at_ms: None,
        resumed_from: None,
        env: None,
    }
}

pub(crate) fn task(run_id: &str, task_id: &str, status: TaskStatus) -> TaskRecord {
    TaskRecord {
        run_id: run_id.into(),
        task_id: task_id.into(),
        operator: "shell".into(),
        status,
        attempts: 1,
        reason: None,
        started_at_ms: Some(1_700_000_000_100),
        finished_at_ms: None,
        metrics: BTreeMap::from([("accuracy".to_owned(), 0.9)]),
        values: BTreeMap::from([("rows".to_owned(), Value::from(2111))]),
        cache_key: None,
        fingerprint: None,
        summary: None,
        definition: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    }
}

pub(crate) fn attempt(
    run_id: &str,
    task_id: &str,
    attempt: u32,
    status: AttemptStatus,
) -> AttemptRecord {
    AttemptRecord {
        run_id: run_id.into(),
        task_id: task_id.into(),
        attempt,
        status,
        started_at_ms: 1_700_000_000_200,
        finished_at_ms: None,
        exit_code: None,
        error: None,
        log_path: Some(format!("logs/{run_id}/{task_id}.{attempt}.log")),
        metrics: BTreeMap::new(),
        placement: None,
    }
}

pub(crate) fn event(run_id: &str, kind: &str) -> EventRecord {
    EventRecord {
        run_id: run_id.into(),
        seq: 0,
        at_ms: 1_700_000_000_300,
        kind: kind.into(),
        task_id: None,
        detail: Value::Null,
    }
}

pub(crate) fn artifact(path: &str, digest: &str) -> ArtifactRecord {
    ArtifactRecord {
        name: "data".into(),
        path: path.into(),
        digest: digest.into(),
        size: 42,
    }
}
