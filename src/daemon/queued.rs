//! The durable side of an accepted run: its `queued` record and the
//! request kept with it, enough to submit it again after a crash.

use std::collections::BTreeMap;

use dag_state::RunStatus;
use serde::{Deserialize, Serialize};

use super::Fire;
use super::dispatch::{RunOptions, Submission};
use crate::execute::{now_ms, rfc3339};
use crate::model::Dag;

/// What the store keeps of a submission while its run is queued: enough to
/// submit it again after a crash.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredRequest {
    explicit: bool,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    options: RunOptions,
    due_ms: i64,
    logical_date: Option<String>,
}

impl StoredRequest {
    pub(super) fn into_submission(self, run: &dag_state::RunRecord) -> Submission {
        Submission {
            fire: Fire {
                dag: run.dag.clone(),
                trigger: run.trigger.clone(),
                logical_date: self.logical_date,
                params: self.params,
                due_ms: self.due_ms,
            },
            explicit: self.explicit,
            options: self.options,
        }
    }
}

/// The `queued` record and stored request of an accepted run.
pub(super) fn queued_record(
    run_id: &str,
    dag: &Dag,
    submission: &Submission,
) -> (dag_state::RunRecord, serde_json::Value) {
    let now = now_ms();
    let mut params = dag.params.clone();
    params.extend(submission.fire.params.clone());
    let record = dag_state::RunRecord {
        run_id: run_id.to_string(),
        dag: dag.name.clone(),
        spec_hash: dag.spec_hash(),
        spec_path: Some(dag.path.to_string_lossy().into_owned()),
        params,
        trigger: submission.fire.trigger.clone(),
        status: RunStatus::Queued,
        logical_date: submission
            .fire
            .logical_date
            .clone()
            .unwrap_or_else(|| rfc3339(now)),
        started_at_ms: now,
        finished_at_ms: None,
        resumed_from: submission.options.resume.clone(),
        env: dag.env.clone(),
    };
    let request = StoredRequest {
        explicit: submission.explicit,
        params: submission.fire.params.clone(),
        options: submission.options.clone(),
        due_ms: submission.fire.due_ms,
        logical_date: submission.fire.logical_date.clone(),
    };
    let request = serde_json::to_value(&request).unwrap_or(serde_json::Value::Null);
    (record, request)
}
