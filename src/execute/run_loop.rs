//! [`execute_run`]: one run, from plan to final record.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use dag_operators::{Context, LogSink, ProgressSink};
use dag_state::{EventRecord, RunRecord, RunStatus, TaskRecord, TaskStatus, Write};
use serde_json::Value;
use tokio::task::JoinSet;

use super::artifacts::Declared;
use super::clock::{new_run_id, now_ms, rfc3339};
use super::engine::{Engine, ExecuteError, RunOutcome, RunRequest};
use super::fingerprint::Fingerprint;
use super::resume::Resume;
use super::task_runner::{CacheSetup, TaskJob, TaskResult, run_task};
use crate::parse::did_you_mean;
use crate::plan::{Plan, build_plan};
use crate::render::{RunVars, Scope, render_string, render_value};
use crate::scheduler::{Decision, Scheduler, Terminal};

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
    request: RunRequest,
    resume: Option<Resume>,
) -> Result<RunOutcome, ExecuteError> {
    let dag = Arc::clone(&request.dag);
    let params = merge_params(&dag.params, &request.params)?;
    let plan = build_plan(&dag, &params).map_err(|cycles| {
        ExecuteError::Cycle(
            cycles
                .iter()
                .map(|c| c.join(" -> "))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let selected = select(&plan, &request.only)?;
    let run_id = new_run_id();
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
    };
    engine.recorder.write(Write::Run(run.clone()));
    engine.recorder.write(Write::Event(run_event(
        &run_id,
        "run_started",
        started_at_ms,
        serde_json::json!({
            "trigger": request.trigger.kind, "detail": request.trigger.detail,
        }),
    )));

    let mut state = RunState {
        engine,
        request: &request,
        plan: &plan,
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
    };
    let rules = dag.tasks.values().map(|t| t.trigger_rule).collect();
    let mut scheduler = Scheduler::new(&plan, rules);
    let mut preset = state.preset_unselected(&selected);
    for carried in resume.iter().flat_map(|r| r.carried_over(&plan, &run_id)) {
        let mut values = state.declared_output_values(carried.index);
        values.extend(carried.values);
        state.values[carried.index] = Some(values);
        state.keys[carried.index] = carried.key;
        engine.recorder.write(Write::Task(carried.record));
        preset.push((carried.index, carried.terminal));
    }
    let decisions = scheduler.start(&preset);
    state.apply(decisions);

    let max_parallel = request
        .max_parallel
        .or(dag.max_parallel)
        .unwrap_or(DEFAULT_MAX_PARALLEL)
        .max(1);
    let mut running: JoinSet<TaskResult> = JoinSet::new();
    let mut interrupted = false;
    loop {
        while running.len() < max_parallel && !interrupted {
            let Some(task) = state.ready.pop_front() else {
                break;
            };
            match state.prepare(task) {
                Prepared::Job(job) => {
                    running.spawn(run_task(*job));
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
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { continue };
                match joined {
                    Ok(result) => {
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
            () = request.cancel.cancelled(), if !interrupted => {
                interrupted = true;
                for task in scheduler.cancel_waiting() {
                    state.record_settled(task, TaskStatus::Cancelled, "the run was interrupted before it started".into());
                }
                // Ready but not started: cancel_waiting saw them as running.
                for task in std::mem::take(&mut state.ready) {
                    state.record_settled(task, TaskStatus::Cancelled, "the run was interrupted before it started".into());
                }
            }
        }
    }

    let finished_at_ms = now_ms();
    run.status = if interrupted {
        RunStatus::Interrupted
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
    engine.recorder.flush().await?;
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

enum Prepared {
    Job(Box<TaskJob>),
    /// Settled without running (a false `when`, params that do not render),
    /// with a short-circuit reason for downstream if any.
    Settled(Terminal, Option<String>),
}

struct RunState<'a> {
    engine: &'a Engine,
    request: &'a RunRequest,
    plan: &'a Plan,
    params: BTreeMap<String, Value>,
    run_vars: RunVars,
    /// Output values of finished tasks, for templates downstream.
    values: Vec<Option<BTreeMap<String, Value>>>,
    summaries: BTreeMap<usize, String>,
    ready: VecDeque<usize>,
    failed: bool,
    /// Cache keys of finished tasks; `None` makes downstream tasks uncacheable.
    keys: Vec<Option<String>>,
}

impl RunState<'_> {
    fn task(&self, index: usize) -> &crate::model::Task {
        &self.request.dag.tasks[&self.plan.ids[index]]
    }

    /// Tasks left out by `--only` count as succeeded; their output values
    /// come from their latest successful run, when there is one.
    fn preset_unselected(&mut self, selected: &BTreeSet<usize>) -> Vec<(usize, Terminal)> {
        let unselected: Vec<usize> = (0..self.plan.len())
            .filter(|t| !selected.contains(t))
            .collect();
        if unselected.is_empty() {
            return Vec::new();
        }
        let previous = latest_values(self.engine, &self.request.dag.name);
        for &task in &unselected {
            let mut values = self.declared_output_values(task);
            if let Some(found) = previous.get(&self.plan.ids[task]) {
                values.extend(found.clone());
            }
            self.values[task] = Some(values);
        }
        unselected
            .into_iter()
            .map(|t| (t, Terminal::Succeeded))
            .collect()
    }

    fn declared_output_values(&self, task: usize) -> BTreeMap<String, Value> {
        self.plan.outputs[task]
            .iter()
            .map(|(name, path)| (name.clone(), Value::String(path.clone())))
            .collect()
    }

    fn apply(&mut self, decisions: Vec<Decision>) {
        for decision in decisions {
            match decision {
                Decision::Run(task) => self.ready.push_back(task),
                Decision::Settle(task, terminal, reason) => {
                    let status = match terminal {
                        Terminal::UpstreamFailed => TaskStatus::UpstreamFailed,
                        Terminal::Cancelled => TaskStatus::Cancelled,
                        _ => TaskStatus::Skipped,
                    };
                    if status == TaskStatus::UpstreamFailed {
                        self.failed = true;
                    }
                    self.record_settled(task, status, reason);
                }
            }
        }
    }

    fn record_settled(&self, task: usize, status: TaskStatus, reason: String) {
        let now = now_ms();
        let record = TaskRecord {
            run_id: self.run_vars.id.clone(),
            task_id: self.plan.ids[task].clone(),
            operator: self.task(task).operator.clone(),
            status,
            attempts: 0,
            reason: Some(reason),
            started_at_ms: None,
            finished_at_ms: Some(now),
            metrics: BTreeMap::new(),
            values: BTreeMap::new(),
            cache_key: None,
            fingerprint: None,
            summary: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        self.engine.recorder.write(Write::Task(record));
    }

    fn output_lookup(&self) -> impl Fn(&str, &str) -> Option<Value> + '_ {
        move |task: &str, name: &str| {
            let index = self.plan.index(task)?;
            self.values[index].as_ref()?.get(name).cloned()
        }
    }

    fn prepare(&mut self, index: usize) -> Prepared {
        match self.render(index) {
            Ok(job) => Prepared::Job(job),
            Err((status, reason)) => {
                let terminal = if status == TaskStatus::Failed {
                    self.failed = true;
                    Terminal::Failed
                } else {
                    Terminal::Skipped
                };
                self.record_settled(index, status, reason);
                Prepared::Settled(terminal, None)
            }
        }
    }

    /// The job for a ready task, or how it settles without running.
    fn render(&self, index: usize) -> Result<Box<TaskJob>, (TaskStatus, String)> {
        let task = self.task(index).clone();
        let lookup = self.output_lookup();
        let scope = Scope {
            params: &self.params,
            run: Some(&self.run_vars),
            outputs: Some(&lookup),
        };
        if let Some(condition) = &task.when {
            let holds = condition.evaluate(|reference| scope.resolve(reference).ok());
            if !holds {
                return Err((
                    TaskStatus::Skipped,
                    format!("`when: {}` is false", condition.text),
                ));
            }
        }
        let rendered = render_value(&task.params, &scope).and_then(|params| {
            let resolve = |paths: &BTreeMap<String, String>| -> Result<Vec<Declared>, crate::render::RenderError> {
                paths
                    .iter()
                    .map(|(name, path)| {
                        let path = crate::plan::normalize(&render_string(path, &scope)?);
                        Ok(Declared { name: name.clone(), absolute: self.engine.workdir.join(&path), path })
                    })
                    .collect()
            };
            Ok((params, resolve(&task.inputs)?, resolve(&task.outputs)?))
        });
        let (params, inputs, outputs) = rendered.map_err(|error| {
            (
                TaskStatus::Failed,
                format!("cannot render the task: {error}"),
            )
        })?;
        for output in &outputs {
            if let Some(parent) = output.absolute.parent() {
                std::fs::create_dir_all(parent).map_err(|error| {
                    (
                        TaskStatus::Failed,
                        format!("cannot create `{}`: {error}", parent.display()),
                    )
                })?;
            }
        }
        let operator = self
            .engine
            .registry
            .get(&task.operator)
            .cloned()
            .ok_or_else(|| {
                (
                    TaskStatus::Failed,
                    format!("unknown operator `{}`", task.operator),
                )
            })?;
        let progress = match &self.request.progress {
            Some(report) => {
                let report = Arc::clone(report);
                let id = task.id.clone();
                ProgressSink::new(move |done, total, what| report(&id, done, total, what))
            }
            None => ProgressSink::discard(),
        };
        let context = Context {
            dag: self.run_vars.dag.clone(),
            run_id: self.run_vars.id.clone(),
            task_id: task.id.clone(),
            attempt: 1,
            logical_date: self.run_vars.logical_date.clone(),
            params,
            inputs: inputs
                .iter()
                .map(|d| (d.name.clone(), d.absolute.clone()))
                .collect(),
            outputs: outputs
                .iter()
                .map(|d| (d.name.clone(), d.absolute.clone()))
                .collect(),
            workdir: self.engine.workdir.clone(),
            state_dir: self.engine.state_dir.clone(),
            log: LogSink::discard(),
            progress,
            cancel: self.request.cancel.child_token(),
        };
        let cache = self.cache_setup(index, operator.as_ref(), &context.params, &outputs);
        Ok(Box::new(TaskJob {
            index,
            operator,
            context,
            retry: task.retry.clone(),
            timeout: task.timeout,
            inputs,
            outputs,
            run_cancel: self.request.cancel.clone(),
            recorder: self.engine.recorder.clone(),
            cache,
        }))
    }

    /// The cache setup for a task, or `None` when it must always run: the
    /// task opted out, its operator has unseen side effects and it declares
    /// no outputs, or an upstream task has no key.
    fn cache_setup(
        &self,
        index: usize,
        operator: &dyn dag_operators::Operator,
        params: &Value,
        outputs: &[Declared],
    ) -> Option<CacheSetup> {
        let task = self.task(index);
        if !task.cache || (!operator.cacheable() && outputs.is_empty()) {
            return None;
        }
        let mut upstream = BTreeMap::new();
        for &up in &self.plan.upstream[index] {
            upstream.insert(self.plan.ids[up].clone(), self.keys[up].clone()?);
        }
        let fingerprint = Fingerprint {
            operator: operator.name().to_string(),
            version: operator.version().to_string(),
            params: params.clone(),
            inputs: BTreeMap::new(),
            outputs: outputs
                .iter()
                .map(|d| (d.name.clone(), d.path.clone()))
                .collect(),
            upstream,
        };
        let forced = self.request.force || self.request.force_tasks.iter().any(|t| *t == task.id);
        Some(CacheSetup {
            fingerprint,
            store: Arc::clone(&self.engine.store),
            force: forced,
        })
    }

    /// Records a finished task; returns its short-circuit reason, if any.
    fn finish_task(&mut self, result: TaskResult) -> Option<String> {
        let index = result.index;
        let status = match result.terminal {
            Terminal::Succeeded => TaskStatus::Succeeded,
            Terminal::UpToDate => TaskStatus::UpToDate,
            Terminal::Cancelled => TaskStatus::Cancelled,
            Terminal::Skipped => TaskStatus::Skipped,
            Terminal::Failed | Terminal::UpstreamFailed => TaskStatus::Failed,
        };
        if status == TaskStatus::Failed {
            self.failed = true;
        }
        let outcome = result.outcome.unwrap_or_default();
        let mut values = self.declared_output_values(index);
        values.extend(outcome.values.clone());
        if let Some(summary) = &outcome.summary {
            self.summaries.insert(index, summary.clone());
        }
        let reason = match &result.reused_from {
            Some(run) => Some(format!("up to date (result of run {run})")),
            None => outcome.short_circuit.clone().or(result.error),
        };
        // A short-circuiting result is not reused: its skip must happen again.
        let cacheable = matches!(status, TaskStatus::Succeeded | TaskStatus::UpToDate)
            && outcome.short_circuit.is_none();
        let cache_key = result.cache_key.filter(|_| cacheable);
        self.keys[index] = cache_key.clone();
        let record = TaskRecord {
            run_id: self.run_vars.id.clone(),
            task_id: self.plan.ids[index].clone(),
            operator: self.task(index).operator.clone(),
            status,
            attempts: result.attempts,
            reason,
            started_at_ms: Some(result.started_at_ms),
            finished_at_ms: Some(result.finished_at_ms),
            metrics: outcome.metrics.clone(),
            values: values.clone(),
            cache_key,
            fingerprint: result.fingerprint.map(|f| f.to_value()),
            summary: outcome.summary.clone(),
            inputs: result.inputs,
            outputs: result.outputs,
        };
        self.engine.recorder.write(Write::Task(record));
        self.values[index] = Some(values);
        outcome.short_circuit
    }
}

/// Output values of each task's latest successful run of `dag`.
fn latest_values(engine: &Engine, dag: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut found: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let Ok(runs) = engine.store.runs(Some(dag), 50) else {
        return found;
    };
    for run in runs {
        let Ok(tasks) = engine.store.tasks(&run.run_id) else {
            continue;
        };
        for task in tasks {
            if matches!(task.status, TaskStatus::Succeeded | TaskStatus::UpToDate) {
                found.entry(task.task_id).or_insert(task.values);
            }
        }
    }
    found
}
