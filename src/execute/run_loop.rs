//! [`execute_run`]: one run, from plan to final record.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use dag_state::{EventRecord, RunRecord, RunStatus, TaskStatus, Write};
use serde_json::Value;
use tokio::task::JoinSet;

use super::clock::{new_run_id, now_ms, rfc3339};
use super::engine::{Engine, ExecuteError, RunOutcome, RunRequest};
use super::grow::expand_task;
use super::notify::{RunNotifier, watch_sla};
use super::resume::Resume;
use super::run_state::{Prepared, RunState};
use super::task_runner::{TaskResult, run_task};
use crate::parse::did_you_mean;
use crate::plan::{Plan, plan_for};
use crate::render::RunVars;
use crate::scheduler::Scheduler;

/// Used when neither the DAG nor the request sets `max_parallel`.
pub const DEFAULT_MAX_PARALLEL: usize = 8;

/// Runs `request` to the end (or until cancelled) and records everything.
pub async fn execute_run(engine: &Engine, request: RunRequest) -> Result<RunOutcome, ExecuteError> {
    execute(engine, request, None).await
}

/// Like [`execute_run`], but settles what `resume.run_id` finished before
/// starting, and records the new run as resumed from it.
pub async fn execute_resumed(
    engine: &Engine,
    request: RunRequest,
    resume: Resume,
) -> Result<RunOutcome, ExecuteError> {
    execute(engine, request, Some(resume)).await
}

async fn execute(
    engine: &Engine,
    mut request: RunRequest,
    resume: Option<Resume>,
) -> Result<RunOutcome, ExecuteError> {
    let params = merge_params(&request.dag.params, &request.params)?;
    // A task mapping over a param has one instance per value of this run's.
    if let Some(expanded) =
        crate::parse::expand_for_run(&request.dag, &params, &BTreeMap::new(), &engine.registry)
            .map_err(|diagnostics| ExecuteError::from_map(&diagnostics))?
    {
        request.dag = Arc::new(expanded);
    }
    check_run_params(&request.dag, &params, &engine.registry)?;
    let dag = Arc::clone(&request.dag);
    let plan = plan_for(&dag, &params)
        .map_err(|cycles| ExecuteError::Cycle(crate::plan::describe_cycles(&cycles)))?;
    let selected = select(&plan, &request.only)?;
    let run_id = request.run_id.clone().unwrap_or_else(new_run_id);
    let started_at_ms = now_ms();
    let logical_date = request
        .logical_date
        .clone()
        .unwrap_or_else(|| rfc3339(started_at_ms));
    let mut run = RunRecord {
        run_id: run_id.clone(),
        dag: dag.name.clone(),
        spec_hash: dag.spec_hash(),
        spec_path: Some(dag.path.to_string_lossy().into_owned()),
        params: params.clone(),
        trigger: request.trigger.clone(),
        status: RunStatus::Running,
        logical_date: logical_date.clone(),
        started_at_ms,
        finished_at_ms: None,
        resumed_from: resume.as_ref().map(|r| r.run_id.clone()),
        env: dag.env.clone(),
    };
    tracing::info!(
        run_id = %run_id, dag = %dag.name, trigger = %request.trigger.kind,
        detail = %request.trigger.detail, tasks = plan.len(), "run started"
    );
    engine.recorder.write(Write::Run(run.clone()));
    engine.recorder.write(Write::Event(run_event(
        &run_id,
        "run_started",
        started_at_ms,
        serde_json::json!({
            "trigger": request.trigger.kind, "detail": request.trigger.detail,
        }),
    )));

    let notifier = Arc::new(RunNotifier::new(
        &engine.notifications,
        engine.recorder.clone(),
        Arc::clone(&dag),
        run_id.clone(),
        request.trigger.kind.clone(),
        engine.logs_dir(),
    ));
    // Cancelled when the run (or a task) ends, so a timer that has not
    // fired never will.
    let run_done = tokio_util::sync::CancellationToken::new();
    if let Some(sla) = dag.hooks.sla {
        let notifier = Arc::clone(&notifier);
        watch_sla(sla, run_done.clone(), move || notifier.run_late());
    }
    // Read once per run: a secret rotated between runs is picked up, and a
    // missing one fails only the tasks that use it.
    let secrets: crate::render::Secrets = dag
        .secrets
        .iter()
        .map(|(name, source)| (name.clone(), source.read(&engine.workdir)))
        .collect();
    let mut state = RunState {
        engine,
        request: &request,
        dag: Arc::clone(&dag),
        plan: Arc::clone(&plan),
        resolved: BTreeMap::new(),
        params,
        run_vars: RunVars {
            id: run_id.clone(),
            dag: dag.name.clone(),
            logical_date,
        },
        values: vec![None; plan.len()],
        keys: vec![None; plan.len()],
        summaries: BTreeMap::new(),
        ready: VecDeque::new(),
        failed: false,
        notifier: Arc::clone(&notifier),
        masks: Arc::new(secrets.values().filter_map(|v| v.clone().ok()).collect()),
        secrets,
        resumed_from: resume.as_ref().map(|r| r.run_id.clone()),
    };
    let rules = dag.tasks.values().map(|t| t.trigger_rule).collect();
    let mut scheduler = Scheduler::new(&plan, rules);
    let mut preset = state.preset_unselected(&selected);
    for carried in resume.iter().flat_map(|r| r.carried_over(&plan, &run_id)) {
        preset.push(state.carry(carried));
    }
    let decisions = scheduler.start(&preset);
    state.apply(decisions);

    let max_parallel = request
        .max_parallel
        .or(dag.max_parallel)
        .unwrap_or(DEFAULT_MAX_PARALLEL)
        .max(1);
    // Each task's id comes back with its result: a run that grew while it
    // ran has moved it to another index.
    let mut running: JoinSet<(String, TaskResult)> = JoinSet::new();
    let mut interrupted = false;
    let mut task_slas = std::collections::HashMap::new();
    loop {
        while running.len() < max_parallel && !interrupted {
            let Some(task) = state.ready.pop_front() else {
                break;
            };
            match state.prepare(task) {
                Prepared::Job(job) => {
                    let id = state.plan.ids[task].clone();
                    if let Some(sla) = state.task(task).hooks.sla {
                        let notifier = Arc::clone(&notifier);
                        let late = id.clone();
                        let done = run_done.child_token();
                        watch_sla(sla, done.clone(), move || notifier.task_late(&late));
                        task_slas.insert(id.clone(), done);
                    }
                    running.spawn(async move { (id, run_task(*job).await) });
                }
                Prepared::Expand(from) => {
                    expand_task(&mut state, &mut scheduler, task, &from, resume.as_ref());
                }
                Prepared::Settled(terminal, short_circuit) => {
                    let decisions = scheduler.finish(task, terminal, short_circuit.as_deref());
                    state.apply(decisions);
                }
            }
        }
        if running.is_empty() && (state.ready.is_empty() || interrupted) {
            break;
        }
        // Biased, cancellation first: a task that ends *because* the run was
        // cancelled must not settle its downstream as `upstream_failed`
        // before the rest of the run is marked cancelled.
        tokio::select! {
            biased;
            () = request.stop.token().cancelled(), if !interrupted => {
                interrupted = true;
                for task in scheduler.cancel_waiting() {
                    state.record_settled(task, TaskStatus::Cancelled, "the run was interrupted before it started".into());
                }
                // Ready but not started: cancel_waiting saw them as running.
                for task in std::mem::take(&mut state.ready) {
                    state.record_settled(task, TaskStatus::Cancelled, "the run was interrupted before it started".into());
                }
            }
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                match joined {
                    Ok((id, mut result)) => {
                        if let Some(done) = task_slas.remove(&id) {
                            done.cancel();
                        }
                        result.index = state.plan.index(&id).unwrap_or(result.index);
                        let index = result.index;
                        let terminal = result.terminal;
                        let short_circuit = state.finish_task(result);
                        let decisions = scheduler.finish(index, terminal, short_circuit.as_deref());
                        state.apply(decisions);
                    }
                    Err(join_error) => {
                        tracing::error!(error = %join_error, "a task panicked");
                        state.failed = true;
                    }
                }
            }
        }
    }

    let finished_at_ms = now_ms();
    run.status = if interrupted || request.stop.is_stopped() {
        request.stop.status()
    } else if state.failed {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    run.finished_at_ms = Some(finished_at_ms);
    engine.recorder.write(Write::Run(run.clone()));
    engine.recorder.write(Write::Event(run_event(
        &run_id,
        "run_finished",
        finished_at_ms,
        serde_json::json!({
            "status": run.status,
        }),
    )));
    run_done.cancel();
    notifier.run_ended(run.status);
    engine.recorder.flush().await?;
    tracing::info!(
        run_id = %run_id, dag = %dag.name, status = ?run.status,
        duration_ms = finished_at_ms - started_at_ms, "run finished"
    );
    let plan = Arc::clone(&state.plan);
    let summaries = plan
        .order
        .iter()
        .filter_map(|&t| state.summaries.remove(&t).map(|s| (plan.ids[t].clone(), s)))
        .collect();
    Ok(RunOutcome {
        run_id,
        status: run.status,
        summaries,
    })
}

/// Defaults overlaid with `--param` overrides; an unknown name is an error.
pub(super) fn merge_params(
    defaults: &BTreeMap<String, Value>,
    overrides: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>, ExecuteError> {
    let mut params = defaults.clone();
    for (name, value) in overrides {
        if !defaults.contains_key(name) {
            return Err(ExecuteError::UnknownParam {
                name: name.clone(),
                help: did_you_mean(name, defaults.keys().map(String::as_str)),
            });
        }
        params.insert(name.clone(), value.clone());
    }
    Ok(params)
}

/// Refuses params the operators' checks reject (`--param n_trees=-5`)
/// before anything runs: the load checked only the DAG's defaults.
pub(super) fn check_run_params(
    dag: &crate::model::Dag,
    params: &BTreeMap<String, Value>,
    registry: &dag_operators::Registry,
) -> Result<(), ExecuteError> {
    if *params == dag.params {
        return Ok(());
    }
    let diagnostics = crate::parse::check_params_for_run(dag, params, registry);
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ExecuteError::Params(crate::parse::joined_messages(
            &diagnostics,
        )))
    }
}

pub(super) fn select(plan: &Plan, only: &[String]) -> Result<BTreeSet<usize>, ExecuteError> {
    if only.is_empty() {
        return Ok((0..plan.len()).collect());
    }
    only.iter()
        .map(|id| {
            plan.index(id).ok_or_else(|| ExecuteError::UnknownTask {
                name: id.clone(),
                help: did_you_mean(id, plan.ids.iter().map(String::as_str)),
            })
        })
        .collect()
}

fn run_event(run_id: &str, kind: &str, at_ms: i64, detail: Value) -> EventRecord {
    EventRecord {
        run_id: run_id.to_string(),
        seq: 0,
        at_ms,
        kind: kind.to_string(),
        task_id: None,
        detail,
    }
}

/// Checks a request's params and `--only` tasks against `dag` without
/// running anything, so a daemon can refuse a bad request before queueing
/// it.
pub fn validate_request(
    dag: &crate::model::Dag,
    params: &BTreeMap<String, Value>,
    only: &[String],
    registry: &dag_operators::Registry,
) -> Result<(), ExecuteError> {
    let merged = merge_params(&dag.params, params)?;
    let expanded = crate::parse::mapping::expand_for(dag, &merged)
        .map_err(|diagnostics| ExecuteError::from_map(&diagnostics))?;
    let dag = expanded.as_ref().unwrap_or(dag);
    check_run_params(dag, &merged, registry)?;
    match only.iter().find(|id| !dag.tasks.contains_key(*id)) {
        Some(id) => Err(ExecuteError::UnknownTask {
            name: id.clone(),
            help: did_you_mean(id, dag.tasks.keys().map(String::as_str)),
        }),
        None => Ok(()),
    }
}
