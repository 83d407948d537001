//! The public shapes of a run and its tasks: `dag run --json`,
//! `dag runs --json`, `dag runs show --json`, the daemon's API and the web
//! UI all serve these. They are a public interface, documented in README;
//! fields are added, never renamed or removed.

use dag_state::{RunRecord, RunStatus, Store, TaskRecord, TaskStatus};
use serde::{Deserialize, Serialize};

use crate::execute::rfc3339;

/// `dag run --json` and `dag runs show <RUN_ID> --json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunJson {
    pub run_id: String,
    pub dag: String,
    pub status: RunStatus,
    pub trigger: dag_state::Trigger,
    /// The run this one resumed (`dag run --resume`), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
    /// The environment (`--env`) layered over the DAG's param defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub params: std::collections::BTreeMap<String, serde_json::Value>,
    pub spec_hash: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub tasks: Vec<TaskJson>,
    /// Hooks delivered (or not) for this run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationJson>,
    /// Tasks mapped over an upstream list, as the run expanded them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expansions: Vec<ExpansionJson>,
}

/// A task mapped over an upstream list, expanded by the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpansionJson {
    pub task: String,
    /// `tasks.UP.outputs.NAME`.
    pub from: String,
    pub instances: Vec<String>,
}

/// The tasks a run expanded over upstream lists, from its events.
pub fn expansions_of(events: &[dag_state::EventRecord]) -> Vec<ExpansionJson> {
    events
        .iter()
        .filter(|e| e.kind == "task_expanded")
        .filter_map(ExpansionJson::from_event)
        .collect()
}

impl ExpansionJson {
    fn from_event(event: &dag_state::EventRecord) -> Option<Self> {
        Some(Self {
            task: event.task_id.clone()?,
            from: event.detail.get("from")?.as_str()?.to_string(),
            instances: serde_json::from_value(event.detail.get("instances")?.clone()).ok()?,
        })
    }
}

/// One hook's delivery: `dag runs show` and its `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationJson {
    /// `on_failure`, `on_success`, `on_retry` or `on_sla_miss`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The webhook's origin or the command's start.
    pub target: String,
    pub delivered: bool,
    pub tries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: String,
}

impl NotificationJson {
    fn from_event(event: &dag_state::EventRecord) -> Option<Self> {
        let detail = &event.detail;
        Some(Self {
            event: detail.get("event")?.as_str()?.to_string(),
            task: event.task_id.clone(),
            target: detail.get("target")?.as_str()?.to_string(),
            delivered: detail.get("delivered")?.as_bool()?,
            tries: detail
                .get("tries")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            error: detail
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_string),
            at: rfc3339(event.at_ms),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TaskJson {
    pub id: String,
    pub operator: String,
    pub status: TaskStatus,
    pub attempts: u32,
    pub duration_ms: Option<i64>,
    pub reason: Option<String>,
    pub metrics: std::collections::BTreeMap<String, f64>,
    pub outputs: Vec<dag_state::ArtifactRecord>,
    /// The operator's one-line summary, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Where each attempt that did not run in the engine's own process tree
    /// ran (a Ray executor's job and node); empty for local tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<AttemptPlacement>,
}

/// One attempt's [`dag_state::Placement`], with its number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptPlacement {
    pub attempt: u32,
    #[serde(flatten)]
    pub placement: dag_state::Placement,
}

/// One entry of `dag runs --json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunListJson {
    pub run_id: String,
    pub dag: String,
    pub status: RunStatus,
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The date the run stands for: a cron fire's or a backfill's time,
    /// else when it started.
    #[serde(default)]
    pub logical_date: String,
}

impl From<&RunRecord> for RunListJson {
    fn from(run: &RunRecord) -> Self {
        Self {
            run_id: run.run_id.clone(),
            dag: run.dag.clone(),
            status: run.status,
            trigger: run.trigger.kind.clone(),
            started_at: rfc3339(run.started_at_ms),
            finished_at: run.finished_at_ms.map(rfc3339),
            logical_date: run.logical_date.clone(),
        }
    }
}

/// Reads a run and its tasks from the store into the JSON shape. Tasks are
/// listed in `order` (plan order) when given, else by id.
pub fn run_json(
    store: &Store,
    run: &RunRecord,
    order: Option<&[String]>,
) -> Result<RunJson, dag_state::StateError> {
    let mut json = run_json_of(run, store.tasks(&run.run_id)?, order);
    let events = store.events(&run.run_id)?;
    json.notifications = events
        .iter()
        .filter(|e| e.kind == "notification")
        .filter_map(NotificationJson::from_event)
        .collect();
    json.expansions = expansions_of(&events);
    let mut placements: std::collections::BTreeMap<String, Vec<AttemptPlacement>> =
        std::collections::BTreeMap::new();
    for attempt in store.attempts(&run.run_id)? {
        if let Some(placement) = attempt.placement {
            placements
                .entry(attempt.task_id)
                .or_default()
                .push(AttemptPlacement {
                    attempt: attempt.attempt,
                    placement,
                });
        }
    }
    for task in &mut json.tasks {
        if let Some(mut found) = placements.remove(&task.id) {
            found.sort_by_key(|p| p.attempt);
            task.placements = found;
        }
    }
    Ok(json)
}

/// [`run_json`] from the run's task records, already read.
pub fn run_json_of(
    run: &RunRecord,
    mut tasks: Vec<TaskRecord>,
    order: Option<&[String]>,
) -> RunJson {
    if let Some(order) = order {
        // One index of the plan order, then a sort by it: linear in the
        // number of tasks, where a search per comparison was quadratic.
        let rank: std::collections::HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        tasks.sort_by_cached_key(|t| rank.get(t.task_id.as_str()).copied().unwrap_or(usize::MAX));
    }
    RunJson {
        run_id: run.run_id.clone(),
        dag: run.dag.clone(),
        status: run.status,
        trigger: run.trigger.clone(),
        resumed_from: run.resumed_from.clone(),
        env: run.env.clone(),
        params: run.params.clone(),
        spec_hash: run.spec_hash.clone(),
        started_at: rfc3339(run.started_at_ms),
        finished_at: run.finished_at_ms.map(rfc3339),
        duration_ms: run.finished_at_ms.map(|f| f - run.started_at_ms),
        tasks: tasks
            .into_iter()
            .map(|t| TaskJson {
                duration_ms: t.started_at_ms.zip(t.finished_at_ms).map(|(s, f)| f - s),
                id: t.task_id,
                operator: t.operator,
                status: t.status,
                attempts: t.attempts,
                reason: t.reason,
                metrics: t.metrics,
                outputs: t.outputs,
                summary: t.summary,
                placements: Vec::new(),
            })
            .collect(),
        notifications: Vec::new(),
        expansions: Vec::new(),
    }
}
