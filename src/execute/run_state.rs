//! [`RunState`]: what one run knows while it executes — output values and
//! cache keys of finished tasks, the ready queue — and how a ready task
//! becomes a job (templates rendered, `when` evaluated, cache set up) and a
//! finished one becomes a record. The loop that drives it is `run_loop`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use dag_operators::{Context, LogSink, ProgressSink};
use dag_state::{TaskRecord, TaskStatus, Write};
use serde_json::Value;

use super::artifacts::Declared;
use super::clock::now_ms;
use super::engine::{Engine, RunRequest};
use super::fingerprint::Fingerprint;
use super::notify::RunNotifier;
use super::task_runner::{CacheSetup, TaskJob, TaskResult};
use crate::plan::Plan;
use crate::render::{RunVars, Scope, render_string, render_value};
use crate::scheduler::{Decision, Terminal};

pub(super) enum Prepared {
    Job(Box<TaskJob>),
    /// A task mapping over an upstream list, whose upstream has finished:
    /// the run expands it (`RunState::grow`).
    Expand(crate::model::MapFrom),
    /// Settled without running (a false `when`, params that do not render),
    /// with a short-circuit reason for downstream if any.
    Settled(Terminal, Option<String>),
}

pub(super) struct RunState<'a> {
    pub(super) engine: &'a Engine,
    pub(super) request: &'a RunRequest,
    /// The DAG as this run has it: expanded for its params, and grown as
    /// tasks mapping over upstream lists are expanded.
    pub(super) dag: Arc<crate::model::Dag>,
    pub(super) plan: Arc<Plan>,
    /// The lists of tasks mapping over upstream outputs, by task id.
    pub(super) resolved: BTreeMap<String, Vec<Value>>,
    pub(super) params: BTreeMap<String, Value>,
    pub(super) run_vars: RunVars,
    /// Output values of finished tasks, for templates downstream.
    pub(super) values: Vec<Option<BTreeMap<String, Value>>>,
    pub(super) summaries: BTreeMap<usize, String>,
    pub(super) ready: VecDeque<usize>,
    pub(super) failed: bool,
    /// Cache keys of finished tasks; `None` makes downstream tasks uncacheable.
    pub(super) keys: Vec<Option<String>>,
    pub(super) notifier: Arc<RunNotifier>,
    /// The DAG's secrets, read when the run started.
    pub(super) secrets: crate::render::Secrets,
    /// Their values, masked in every attempt's log.
    pub(super) masks: Arc<Vec<String>>,
    /// The interrupted run this one resumes.
    pub(super) resumed_from: Option<String>,
}

impl RunState<'_> {
    pub(super) fn task(&self, index: usize) -> &crate::model::Task {
        &self.dag.tasks[&self.plan.ids[index]]
    }

    /// Tasks left out by `--only` count as succeeded; their output values
    /// come from their latest successful run, when there is one.
    pub(super) fn preset_unselected(
        &mut self,
        selected: &BTreeSet<usize>,
    ) -> Vec<(usize, Terminal)> {
        let unselected: Vec<usize> = (0..self.plan.len())
            .filter(|t| !selected.contains(t))
            .collect();
        if unselected.is_empty() {
            return Vec::new();
        }
        let previous = latest_values(self.engine, &self.dag.name);
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

    pub(super) fn declared_output_values(&self, task: usize) -> BTreeMap<String, Value> {
        self.plan.outputs[task]
            .iter()
            .map(|(name, path)| (name.clone(), Value::String(path.clone())))
            .collect()
    }

    pub(super) fn apply(&mut self, decisions: Vec<Decision>) {
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

    pub(super) fn record_settled(&self, task: usize, status: TaskStatus, reason: String) {
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
            definition: Some(self.task(task).definition_hash()),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        self.engine.recorder.write(Write::Task(record));
    }

    pub(super) fn output_lookup(&self) -> impl Fn(&str, &str) -> Option<Value> + '_ {
        move |task: &str, name: &str| {
            let own = |task: &str, name: &str| {
                let index = self.plan.index(task)?;
                self.values[index].as_ref()?.get(name).cloned()
            };
            own(task, name)
                .or_else(|| crate::parse::mapping::gather(&self.dag.mapped, task, name, own))
        }
    }

    pub(super) fn prepare(&mut self, index: usize) -> Prepared {
        if let Some(from) = self.task(index).map.as_ref().and_then(|m| m.from.clone()) {
            return Prepared::Expand(from);
        }
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
    pub(super) fn render(&self, index: usize) -> Result<Box<TaskJob>, (TaskStatus, String)> {
        let task = self.task(index);
        let lookup = self.output_lookup();
        let scope = Scope {
            params: &self.params,
            run: Some(&self.run_vars),
            outputs: Some(&lookup),
            secrets: None,
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
        let clear_params = if !self.secrets.is_empty() && mentions_secrets(&task.params) {
            let clear = Scope {
                params: &self.params,
                run: Some(&self.run_vars),
                outputs: Some(&lookup),
                secrets: Some(&self.secrets),
            };
            Some(render_value(&task.params, &clear).map_err(|error| {
                (
                    TaskStatus::Failed,
                    format!("cannot render the task: {error}"),
                )
            })?)
        } else {
            None
        };
        // Rendered without secret values (`<secrets.NAME>`): what cache keys
        // and records see.
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
            params: clear_params.unwrap_or_else(|| params.clone()),
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
            cancel: self.request.stop.token().child_token(),
            process_tag: None,
        };
        let remote =
            super::ray::target_for(&self.dag, task).map_err(|error| (TaskStatus::Failed, error))?;
        let cache = self.cache_setup(index, operator.as_ref(), &params, &outputs);
        Ok(Box::new(TaskJob {
            index,
            operator,
            context,
            retry: task.retry.clone(),
            timeout: task.timeout,
            inputs,
            outputs,
            run_cancel: self.request.stop.token().clone(),
            recorder: self.engine.recorder.clone(),
            store: Arc::clone(&self.engine.store),
            cache,
            log_limit: self.engine.log_limit,
            masks: Arc::clone(&self.masks),
            on_retry: self.notifier.wants_retries(task).then(|| {
                let notifier = Arc::clone(&self.notifier);
                let id = task.id.clone();
                Arc::new(move |attempt: u32, error: &str| {
                    notifier.task_retrying(&id, attempt, error)
                }) as super::task_runner::RetryHook
            }),
            remote,
            resumed_from: self.resumed_from.clone(),
        }))
    }

    /// The cache setup for a task, or `None` when it must always run: the
    /// task opted out, its operator has unseen side effects and it declares
    /// no outputs, or an upstream task has no key.
    pub(super) fn cache_setup(
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
        let forced = self.request.force || self.request.force_tasks.contains(&task.id);
        Some(CacheSetup {
            fingerprint,
            store: Arc::clone(&self.engine.store),
            force: forced,
        })
    }

    /// Records a finished task; returns its short-circuit reason, if any.
    pub(super) fn finish_task(&mut self, result: TaskResult) -> Option<String> {
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
        let reason = match (&result.reused_from, result.restored.len()) {
            (Some(run), 0) => Some(format!("up to date (result of run {run})")),
            (Some(run), restored) => Some(format!(
                "restored {restored} output{} from the run cache (result of run {run})",
                if restored == 1 { "" } else { "s" }
            )),
            (None, _) => outcome
                .short_circuit
                .clone()
                .or(result.error)
                .or_else(|| result.stale.map(|reason| format!("ran again: {reason}"))),
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
            definition: Some(self.task(index).definition_hash()),
            inputs: result.inputs,
            outputs: result.outputs,
        };
        self.notifier.task_ended(
            self.task(index),
            record.status,
            record.attempts,
            record.reason.as_deref(),
        );
        self.engine.recorder.write(Write::Task(record));
        self.values[index] = Some(values);
        outcome.short_circuit
    }
}

/// Output values of each task's latest successful run of `dag`.
pub(super) fn latest_values(
    engine: &Engine,
    dag: &str,
) -> BTreeMap<String, BTreeMap<String, Value>> {
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

/// Whether any string in `params` names a secret.
fn mentions_secrets(params: &Value) -> bool {
    match params {
        Value::String(s) => s.contains("secrets."),
        Value::Array(items) => items.iter().any(mentions_secrets),
        Value::Object(map) => map.values().any(mentions_secrets),
        _ => false,
    }
}
