//! `dag.trigger`: start a run of another DAG — how the monitoring DAG hands
//! a detected drift to the retraining DAG.
//!
//! Where the run goes depends on who executes the task: inside `dag daemon`
//! it is submitted to the daemon's queue (and starts at once or queues,
//! per the target's policy); under a plain `dag run` it runs in the same
//! process right after the current run ends. The triggered run records
//! `dag` as its trigger kind and the parent run and task as the detail, so
//! `dag runs show` and lineage answer "why did this run?".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use dag_operators::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
};
use dag_state::Trigger;
use serde::Deserialize;
use serde_json::Value;

use crate::daemon::Fire;

/// Where triggered runs go.
pub trait Submit: Send + Sync {
    /// Accepts the run; returns its id (or why it was not started) for the
    /// task's summary.
    fn submit(&self, fire: Fire) -> Result<Submitted, String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub run_id: Option<String>,
    /// `started`, `queued`, `deferred` or `skipped: <reason>`.
    pub state: String,
}

/// A [`Submit`] chosen after the registry is built: the daemon makes its
/// dispatcher only once the engine (and so the registry) exists.
#[derive(Default)]
pub struct SubmitSlot(OnceLock<Arc<dyn Submit>>);

impl SubmitSlot {
    pub fn set(&self, target: Arc<dyn Submit>) {
        let _ = self.0.set(target);
    }
}

impl Submit for SubmitSlot {
    fn submit(&self, fire: Fire) -> Result<Submitted, String> {
        match self.0.get() {
            Some(target) => target.submit(fire),
            None => Err("`dag.trigger` has nowhere to send runs in this process".into()),
        }
    }
}

/// Collects triggered runs for `dag run` to execute after its own run.
#[derive(Default)]
pub struct Deferred(Mutex<Vec<Fire>>);

impl Deferred {
    pub fn take(&self) -> Vec<Fire> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Submit for Deferred {
    fn submit(&self, fire: Fire) -> Result<Submitted, String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fire);
        Ok(Submitted {
            run_id: None,
            state: "deferred".into(),
        })
    }
}

pub struct TriggerDag {
    pub target: Arc<dyn Submit>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The DAG to run (its name or file stem).
    dag: String,
    /// Param overrides for that run.
    #[serde(default)]
    params: BTreeMap<String, Value>,
    /// Why, in words, for the triggered run's record.
    #[serde(default)]
    reason: Option<String>,
}

impl Operator for TriggerDag {
    fn name(&self) -> &'static str {
        "dag.trigger"
    }

    fn description(&self) -> &'static str {
        "start a run of another DAG (params `dag`, `params`, `reason`); the run records this task as its trigger"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(dag_operators::schema_of::<Params>())
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["run_id", "state"]
    }

    /// Starting a run is a side effect: never skip it as up to date.
    fn cacheable(&self) -> bool {
        false
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        match parse_params::<Params>(spec.params) {
            Err(problem) => vec![problem],
            Ok(params) if params.dag.trim().is_empty() => {
                vec![Problem::new("params.dag", "`dag` must name a DAG")]
            }
            Ok(_) => Vec::new(),
        }
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        Box::pin(async move {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let reason = params
                .reason
                .as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let fire = Fire {
                dag: params.dag.clone(),
                trigger: Trigger {
                    kind: "dag".into(),
                    detail: format!(
                        "{} run {} task {}{reason}",
                        ctx.dag, ctx.run_id, ctx.task_id
                    ),
                },
                logical_date: None,
                params: params.params,
                due_ms: crate::execute::now_ms(),
            };
            let submitted = self.target.submit(fire).map_err(|message| {
                OperatorError::failed(format!("cannot trigger `{}`: {message}", params.dag))
            })?;
            let summary = match &submitted.run_id {
                Some(id) => format!("triggered `{}`: run {id} {}", params.dag, submitted.state),
                None => format!("triggered `{}` ({})", params.dag, submitted.state),
            };
            ctx.log.line(&summary);
            Ok(Outcome::default()
                .value(
                    "run_id",
                    submitted.run_id.map_or(Value::Null, Value::String),
                )
                .value("state", submitted.state)
                .summary(summary))
        })
    }
}
