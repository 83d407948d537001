//! [`explain_run`]: what `dag run` would do, and why, without running
//! anything (`dag plan --why`, `dag run --dry-run`).
//!
//! The walk follows the plan in topological order and predicts each task the
//! way the executor decides it: the same cacheability rule, the same cache
//! key, the same search for an earlier result whose outputs are on disk or
//! in the run cache ("restore from cache"), the same question to the
//! operator whether that result's effect outside its outputs (a registry
//! alias) still holds. Run-cache entries are not
//! re-verified here; one found corrupt at run time makes the task run. What it cannot know in
//! advance (the digests a rerun upstream task will write) it says rather
//! than guesses. Trigger rules beyond skip propagation and operator
//! short-circuits are run-time matters and are not predicted.

use std::collections::BTreeMap;
use std::path::Path;

use dag_operators::{Earlier, Registry};
use dag_state::{Store, TaskRecord, TaskStatus};
use serde::Serialize;
use serde_json::Value;

use super::clock::{now_ms, rfc3339};
use super::engine::ExecuteError;
use super::fingerprint::Fingerprint;
use super::reuse::{Reuse, find_reuse};
use super::run_loop::{check_run_params, merge_params, select};
use crate::cache::{DigestMemo, RunCache};
use crate::model::{Dag, TriggerRule};
use crate::plan::{Plan, plan_for};
use crate::render::{RunVars, Scope, render_value};

/// What to explain: the same knobs as a run.
pub struct ExplainRequest<'a> {
    pub dag: &'a Dag,
    pub params: BTreeMap<String, Value>,
    pub only: Vec<String>,
    pub force: bool,
    pub force_tasks: Vec<String>,
}

/// Where the explanation reads from: operators, the store, the project root.
pub struct ExplainContext<'a> {
    pub registry: &'a Registry,
    pub store: &'a Store,
    pub workdir: &'a Path,
}

/// `dag plan --why --json`: `{"dag", "tasks": [{"id", "decision", "reasons"}]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub dag: String,
    pub tasks: Vec<TaskExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskExplanation {
    pub id: String,
    pub decision: Verdict,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Run,
    Skip,
}

/// What the walk knows about a task once it has decided it.
#[derive(Clone, Default)]
struct Predicted {
    will_run: bool,
    skipped: bool,
    /// The task's cache key after the run, when it is certain.
    key: Option<String>,
    /// It runs again with its key unchanged because its effect no longer
    /// holds, and may write other bytes than its earlier result did.
    rewrites: bool,
}

/// Predicts every task of a run of `request.dag`, in plan order.
pub fn explain_run(
    context: &ExplainContext<'_>,
    request: &ExplainRequest<'_>,
) -> Result<Explanation, ExecuteError> {
    let params = merge_params(&request.dag.params, &request.params)?;
    // A task mapping over a param has one instance per value of this run's.
    match crate::parse::expand_for_run(request.dag, &params, &Default::default(), context.registry)
        .map_err(|diagnostics| ExecuteError::from_map(&diagnostics))?
    {
        Some(expanded) => explain_expanded(
            context,
            &ExplainRequest {
                dag: &expanded,
                params: request.params.clone(),
                only: request.only.clone(),
                force: request.force,
                force_tasks: request.force_tasks.clone(),
            },
        ),
        None => explain_expanded(context, request),
    }
}

fn explain_expanded(
    context: &ExplainContext<'_>,
    request: &ExplainRequest<'_>,
) -> Result<Explanation, ExecuteError> {
    let dag = request.dag;
    let params = merge_params(&dag.params, &request.params)?;
    check_run_params(dag, &params, context.registry)?;
    let plan = plan_for(dag, &params)
        .map_err(|cycles| ExecuteError::Cycle(crate::plan::describe_cycles(&cycles)))?;
    let selected = select(&plan, &request.only)?;
    let previous = latest_successes(context.store, &dag.name);
    let walk = Walk {
        context,
        request,
        plan: &plan,
        params: &params,
        previous: &previous,
        memo: DigestMemo::new(context.store),
        run_cache: RunCache::beside(context.store),
        run_vars: RunVars {
            id: "dry-run".into(),
            dag: dag.name.clone(),
            logical_date: rfc3339(now_ms()),
        },
    };
    let mut predicted = vec![Predicted::default(); plan.len()];
    let mut tasks = Vec::with_capacity(plan.len());
    for &index in &plan.order {
        let (verdict, reasons, outcome) = if selected.contains(&index) {
            walk.decide(index, &predicted)
        } else {
            (
                Verdict::Skip,
                vec!["not selected by `--only`; counts as done".to_string()],
                Predicted::default(),
            )
        };
        predicted[index] = outcome;
        tasks.push(TaskExplanation {
            id: plan.ids[index].clone(),
            decision: verdict,
            reasons,
        });
    }
    Ok(Explanation {
        dag: dag.name.clone(),
        tasks,
    })
}

struct Walk<'a> {
    context: &'a ExplainContext<'a>,
    request: &'a ExplainRequest<'a>,
    plan: &'a Plan,
    params: &'a BTreeMap<String, Value>,
    previous: &'a BTreeMap<String, TaskRecord>,
    memo: DigestMemo<'a>,
    run_cache: RunCache,
    run_vars: RunVars,
}

impl Walk<'_> {
    fn decide(&self, index: usize, predicted: &[Predicted]) -> (Verdict, Vec<String>, Predicted) {
        let id = &self.plan.ids[index];
        let task = &self.request.dag.tasks[id];
        let run = |reasons: Vec<String>, key: Option<String>| {
            let outcome = Predicted {
                will_run: true,
                skipped: false,
                key,
                rewrites: false,
            };
            (Verdict::Run, reasons, outcome)
        };
        let skip = |reasons: Vec<String>| {
            let outcome = Predicted {
                skipped: true,
                ..Predicted::default()
            };
            (Verdict::Skip, reasons, outcome)
        };

        let upstream = &self.plan.upstream[index];
        if task.trigger_rule == TriggerRule::AllSuccess
            && let Some(&up) = upstream.iter().find(|&&up| predicted[up].skipped)
        {
            return skip(vec![format!(
                "upstream `{}` will be skipped",
                self.plan.ids[up]
            )]);
        }
        let own = |task: &str, name: &str| -> Option<Value> {
            let previous = self.previous.get(task)?;
            previous.values.get(name).cloned()
        };
        let lookup = |task: &str, name: &str| -> Option<Value> {
            own(task, name).or_else(|| {
                crate::parse::mapping::gather(&self.request.dag.mapped, task, name, own)
            })
        };
        let scope = Scope {
            params: self.params,
            run: Some(&self.run_vars),
            outputs: Some(&lookup),
            secrets: None,
        };
        if let Some(condition) = &task.when
            && !condition.evaluate(|reference| scope.resolve(reference).ok())
        {
            return skip(vec![format!(
                "`when: {}` is false with the latest upstream values",
                condition.text
            )]);
        }
        if let Some(from) = task.map.as_ref().and_then(|m| m.from.as_ref()) {
            return run(
                vec![format!(
                    "maps over `{from}`: one instance per value, known once `{}` has run",
                    from.task
                )],
                None,
            );
        }
        let Some(operator) = self.context.registry.get(&task.operator) else {
            return run(
                vec![format!(
                    "unknown operator `{}`: the task will fail",
                    task.operator
                )],
                None,
            );
        };
        let outputs = &self.plan.outputs[index];
        if !task.cache {
            return run(vec!["`cache: false`: the task always runs".into()], None);
        }
        if !operator.cacheable() && outputs.is_empty() {
            return run(
                vec![format!(
                    "{} task without declared outputs always runs",
                    task.operator
                )],
                None,
            );
        }
        let forced = self.forced_reason(id);

        let mut reasons = Vec::new();
        let mut upstream_keys = BTreeMap::new();
        for &up in upstream {
            let up_id = &self.plan.ids[up];
            match &predicted[up].key {
                Some(key) => {
                    upstream_keys.insert(up_id.clone(), key.clone());
                    if predicted[up].rewrites {
                        for (name, path) in &self.plan.inputs[index] {
                            if self.plan.outputs[up].values().any(|p| p == path) {
                                reasons.push(format!(
                                    "input `{name}` is written by `{up_id}`, which runs again, and may change"
                                ));
                            }
                        }
                    }
                }
                None if predicted[up].will_run => {
                    reasons.push(format!("upstream `{up_id}` will run"));
                    for (name, path) in &self.plan.inputs[index] {
                        if self.plan.outputs[up].values().any(|p| p == path) {
                            reasons.push(format!(
                                "input `{name}` is written by `{up_id}` and may change"
                            ));
                        }
                    }
                }
                None => reasons.push(format!(
                    "upstream `{up_id}` will have no cache key, so this result cannot be reused"
                )),
            }
        }
        if !reasons.is_empty() {
            reasons.extend(forced);
            return run(reasons, None);
        }

        let params = match render_value(&task.params, &scope) {
            Ok(params) => params,
            Err(error) => {
                return run(
                    vec![format!("params are only known at run time: {error}")],
                    None,
                );
            }
        };
        let mut inputs = BTreeMap::new();
        for (name, path) in &self.plan.inputs[index] {
            match self.memo.hash(&self.context.workdir.join(path)) {
                Ok((digest, _)) => {
                    inputs.insert(name.clone(), digest);
                }
                Err(error) => reasons.push(format!(
                    "input `{name}` cannot be read at `{path}`: {error}"
                )),
            }
        }
        if !reasons.is_empty() {
            return run(reasons, None);
        }
        let fingerprint = Fingerprint {
            operator: operator.name().to_string(),
            version: operator.version().to_string(),
            params,
            inputs,
            outputs: outputs.clone(),
            upstream: upstream_keys,
        };
        let key = fingerprint.key();
        if let Some(forced) = forced {
            return run(vec![forced], Some(key));
        }
        let found = find_reuse(
            self.context.store,
            &key,
            self.context.workdir,
            &self.memo,
            &self.run_cache,
        );
        let stands = |reasons: Vec<String>| {
            let outcome = Predicted {
                will_run: false,
                skipped: false,
                key: Some(key.clone()),
                rewrites: false,
            };
            (Verdict::Skip, reasons, outcome)
        };
        let state_dir = self
            .context
            .store
            .path()
            .parent()
            .unwrap_or(self.context.workdir);
        if let Ok(Some(Reuse::Intact(record) | Reuse::Restorable { record, .. })) = &found
            && let Err(reason) = operator.effect_holds(&Earlier {
                params: &fingerprint.params,
                values: &record.values,
                state_dir,
            })
        {
            let (verdict, reasons, mut outcome) = run(
                vec![format!(
                    "its earlier result's effect no longer holds: {reason}"
                )],
                Some(key),
            );
            outcome.rewrites = true;
            return (verdict, reasons, outcome);
        }
        match found {
            Ok(Some(Reuse::Intact(earlier))) => {
                return stands(vec![format!(
                    "up to date (result of run {})",
                    earlier.run_id
                )]);
            }
            Ok(Some(Reuse::Restorable { record, damaged })) => {
                let mut reasons = vec![format!(
                    "restore from cache (result of run {})",
                    record.run_id
                )];
                reasons.extend(damaged.iter().map(|d| d.describe(&record.run_id)));
                return stands(reasons);
            }
            Ok(Some(Reuse::Lost { record, damaged })) => {
                let reasons = damaged.iter().map(|d| d.describe(&record.run_id));
                return run(reasons.collect(), Some(key));
            }
            Ok(None) => {}
            Err(error) => {
                return run(
                    vec![format!(
                        "the run cache cannot be read ({}): the task runs",
                        crate::record::error_chain(&error)
                    )],
                    None,
                );
            }
        }
        let before = self
            .previous
            .get(id)
            .and_then(|record| record.fingerprint.as_ref().map(|f| (record, f)))
            .and_then(|(record, value)| Fingerprint::from_value(value).map(|f| (record, f)));
        let reasons = match before {
            None => vec!["no previous run".to_string()],
            Some((record, before)) => {
                let changes = fingerprint.changes_since(&before);
                if changes.is_empty() {
                    vec![format!(
                        "the result of run {} can no longer be reused",
                        record.run_id
                    )]
                } else {
                    changes
                }
            }
        };
        run(reasons, None)
    }

    fn forced_reason(&self, id: &str) -> Option<String> {
        if self.request.force {
            Some("forced by `--force`".into())
        } else if self.request.force_tasks.iter().any(|t| t == id) {
            Some(format!("forced by `--force-task {id}`"))
        } else {
            None
        }
    }
}

/// Each task's latest succeeded or up-to-date record among recent runs of `dag`.
fn latest_successes(store: &Store, dag: &str) -> BTreeMap<String, TaskRecord> {
    let mut found = BTreeMap::new();
    let Ok(runs) = store.runs(Some(dag), 50) else {
        return found;
    };
    for run in runs {
        let Ok(tasks) = store.tasks(&run.run_id) else {
            continue;
        };
        for task in tasks {
            if matches!(task.status, TaskStatus::Succeeded | TaskStatus::UpToDate) {
                found.entry(task.task_id.clone()).or_insert(task);
            }
        }
    }
    found
}
