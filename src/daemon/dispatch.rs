//! [`Dispatcher`]: the daemon's one run queue.
//!
//! Every trigger — cron, file watch, the API, a `dag.trigger` task — becomes
//! a [`Submission`]. The dispatcher applies the DAG's concurrency policy
//! (`max_active_runs`, `overlap`), records the run as `queued` in the store
//! (durable before anyone is told its id), hands out the run id at once (so
//! a client can follow a queued run), starts runs on the shared [`Engine`]
//! and starts queued ones as others finish. A run that will not start
//! (cancelled while queued, dropped at shutdown, its DAG gone) is recorded
//! as `cancelled` with the reason; after a crash, [`Dispatcher::recover_queue`]
//! takes up the runs that were accepted and never started.
//!
//! Policy: a DAG runs at most `schedule.max_active_runs` runs at once (1
//! without a schedule). When a cron or watch fire finds it full, `overlap`
//! decides: `skip` drops the fire, `queue` waits, `cancel_previous` cancels
//! the oldest active run and waits for it. Explicit requests (API, CLI,
//! `dag.trigger`) always queue: a person or a DAG asked for that run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use dag_state::{RunStatus, Trigger};
use serde::{Deserialize, Serialize};

use super::Fire;
use super::dags::DagSet;
use super::metrics::DaemonMetrics;
use super::queued::{StoredRequest, queued_record};
use crate::execute::{
    Engine, ExecuteError, RunRequest, RunStop, execute_resumed, execute_run, new_run_id, now_ms,
    prepare_resume, validate_request,
};
use crate::model::{Dag, Overlap};
use crate::record::error_chain;

/// Run options a client may set, as `dag run` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    pub only: Vec<String>,
    pub force: bool,
    pub force_tasks: Vec<String>,
    pub max_parallel: Option<usize>,
    /// Resume this earlier run of the DAG (as `dag run --resume`): its
    /// params, its finished tasks carried over.
    pub resume: Option<String>,
    /// Run the DAG in this file rather than one of the DAG directory (as
    /// `dag run path/to/dag.yaml`). It must be inside the daemon's project
    /// and is loaded within the daemon's limits.
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub fire: Fire,
    /// Asked for by a person or a DAG: queue when full, never skip.
    pub explicit: bool,
    pub options: RunOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Accepted {
    /// `tasks`: how many tasks the run will settle.
    Started {
        run_id: String,
        tasks: usize,
    },
    Queued {
        run_id: String,
        tasks: usize,
        position: usize,
    },
    Skipped {
        reason: String,
    },
}

impl Accepted {
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Self::Started { run_id, .. } | Self::Queued { run_id, .. } => Some(run_id),
            Self::Skipped { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("no DAG named `{name}` is loaded{}", .help.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    UnknownDag { name: String, help: Option<String> },
    #[error(transparent)]
    Invalid(ExecuteError),
    #[error(transparent)]
    Resume(crate::execute::ResumeError),
    #[error("the daemon is shutting down and accepts no new runs")]
    ShuttingDown,
    /// The DAG file named in the request does not load.
    #[error("{0}")]
    InvalidFile(String),
    /// The run could not be made durable, so it was not accepted.
    #[error("cannot record the run, so it was not accepted")]
    Store(#[source] dag_state::StateError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Cancelled {
    /// The run's tasks are being cancelled; it ends as `cancelled`.
    Cancelling,
    /// It had not started; it will not.
    Dequeued,
    Finished {
        status: RunStatus,
    },
    Unknown,
}

/// The log target of the daemon's run starts and ends, which it prints at
/// its default verbosity (`warn` for everything else).
pub const RUN_LOG: &str = "dag::runs";

struct Active {
    dag: String,
    stop: RunStop,
    started_ms: i64,
    trigger: Trigger,
}

struct Queued {
    run_id: String,
    submission: Submission,
    queued_ms: i64,
    /// The DAG of a request naming a file outside the DAG directory.
    file_dag: Option<Arc<Dag>>,
}

#[derive(Default)]
struct Runs {
    active: BTreeMap<String, Active>,
    queued: VecDeque<Queued>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveRun {
    pub run_id: String,
    pub dag: String,
    pub started_at_ms: i64,
    pub trigger: Trigger,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedRun {
    pub run_id: String,
    pub dag: String,
    pub queued_at_ms: i64,
    pub trigger: Trigger,
}

pub struct Dispatcher {
    pub engine: Engine,
    pub dags: RwLock<DagSet>,
    pub metrics: DaemonMetrics,
    runs: Mutex<Runs>,
    accepting: AtomicBool,
    /// Notified whenever a run ends.
    finished: tokio::sync::Notify,
}

impl Dispatcher {
    pub fn new(engine: Engine, dags: DagSet) -> Arc<Self> {
        Arc::new(Self {
            engine,
            dags: RwLock::new(dags),
            metrics: DaemonMetrics::default(),
            runs: Mutex::new(Runs::default()),
            accepting: AtomicBool::new(true),
            finished: tokio::sync::Notify::new(),
        })
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn dag(&self, name: &str) -> Option<Arc<Dag>> {
        let dags = self.dags.read().unwrap_or_else(PoisonError::into_inner);
        dags.find(name).map(|loaded| Arc::clone(&loaded.dag))
    }

    /// Accepts, queues or skips a request; fails only for a request that can
    /// never run (unknown DAG, param or task), during shutdown, or when the
    /// store cannot record it. An accepted run is in the store (as
    /// `queued`, with its request) before this returns, so its id survives
    /// a crash.
    pub fn submit(self: &Arc<Self>, submission: Submission) -> Result<Accepted, SubmitError> {
        self.submit_as(submission, None)
    }

    /// [`submit`](Self::submit) for a run accepted before a crash, whose
    /// queued record is already in the store under `run_id`.
    fn submit_as(
        self: &Arc<Self>,
        mut submission: Submission,
        recovered: Option<String>,
    ) -> Result<Accepted, SubmitError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let from_file = match &submission.options.file {
            Some(file) => Some(self.load_file(file)?),
            None => None,
        };
        let Some(dag) = from_file.clone().or_else(|| self.dag(&submission.fire.dag)) else {
            let dags = self.dags.read().unwrap_or_else(PoisonError::into_inner);
            return Err(SubmitError::UnknownDag {
                help: crate::parse::did_you_mean(
                    &submission.fire.dag,
                    dags.dags.keys().map(String::as_str),
                ),
                name: submission.fire.dag.clone(),
            });
        };
        if let Some(earlier) = &submission.options.resume {
            let (_, params) =
                prepare_resume(&self.engine.store, &dag, earlier).map_err(SubmitError::Resume)?;
            submission.fire.params = params;
            submission.options.only.clear();
        }
        let registry = &self.engine.registry;
        validate_request(
            &dag,
            &submission.fire.params,
            &submission.options.only,
            registry,
        )
        .map_err(SubmitError::Invalid)?;
        validate_request(
            &dag,
            &BTreeMap::new(),
            &submission.options.force_tasks,
            registry,
        )
        .map_err(SubmitError::Invalid)?;
        submission.fire.dag = dag.name.clone();
        let (max_active, overlap) = policy(&dag);
        let run_id = recovered.clone().unwrap_or_else(new_run_id);
        let tasks = if submission.options.only.is_empty() {
            dag.tasks.len()
        } else {
            submission.options.only.len()
        };
        let mut runs = self.runs();
        let active = runs.active.values().filter(|a| a.dag == dag.name).count();
        let waiting = runs
            .queued
            .iter()
            .any(|q| q.submission.fire.dag == dag.name);
        let start_now = active < max_active && !waiting;
        let overlap = if submission.explicit {
            Overlap::Queue
        } else {
            overlap
        };
        if !start_now && overlap == Overlap::Skip {
            let reason = format!(
                "`{}` already has {active} active run{} (max_active_runs {max_active}, overlap skip)",
                dag.name,
                if active == 1 { "" } else { "s" }
            );
            self.metrics.fire_skipped(&dag.name);
            tracing::info!(dag = %dag.name, trigger = %submission.fire.trigger.kind, "{reason}; fire skipped");
            return Ok(Accepted::Skipped { reason });
        }
        if recovered.is_none() {
            let (record, request) = queued_record(&run_id, &dag, &submission);
            self.engine
                .store
                .enqueue_run(record, request)
                .map_err(SubmitError::Store)?;
        }
        if start_now {
            self.start(&mut runs, run_id.clone(), dag, submission);
            return Ok(Accepted::Started { run_id, tasks });
        }
        if overlap == Overlap::CancelPrevious
            && let Some((id, oldest)) = runs
                .active
                .iter()
                .filter(|(_, a)| a.dag == dag.name)
                .min_by_key(|(_, a)| a.started_ms)
        {
            tracing::info!(dag = %dag.name, run_id = %id, "cancelling the previous run (overlap cancel_previous)");
            oldest.stop.cancel();
        }
        runs.queued.push_back(Queued {
            run_id: run_id.clone(),
            submission,
            queued_ms: now_ms(),
            file_dag: from_file,
        });
        self.metrics.set_queue(runs.queued.len());
        Ok(Accepted::Queued {
            position: runs.queued.len(),
            run_id,
            tasks,
        })
    }

    fn start(self: &Arc<Self>, runs: &mut Runs, run_id: String, dag: Arc<Dag>, s: Submission) {
        let stop = RunStop::new();
        let started_ms = now_ms();
        self.metrics
            .trigger_latency(&s.fire.trigger.kind, started_ms - s.fire.due_ms);
        runs.active.insert(
            run_id.clone(),
            Active {
                dag: dag.name.clone(),
                stop: stop.clone(),
                started_ms,
                trigger: s.fire.trigger.clone(),
            },
        );
        self.metrics.set_active(runs.active.len());
        tracing::info!(
            target: RUN_LOG,
            run_id = %run_id, dag = %dag.name, trigger = %s.fire.trigger.kind,
            detail = %s.fire.trigger.detail, "run started"
        );
        let request = RunRequest {
            dag: Arc::clone(&dag),
            params: s.fire.params,
            only: s.options.only,
            max_parallel: s.options.max_parallel,
            trigger: s.fire.trigger,
            logical_date: s.fire.logical_date,
            stop,
            force: s.options.force,
            force_tasks: s.options.force_tasks,
            progress: None,
            run_id: Some(run_id.clone()),
        };
        let resume = s.options.resume;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = match resume {
                // Read again at start: a queued resume sees the latest state.
                Some(earlier) => match prepare_resume(&this.engine.store, &dag, &earlier) {
                    Ok((resume, _)) => execute_resumed(&this.engine, request, resume).await,
                    Err(error) => {
                        let reason =
                            format!("cannot resume run {earlier}: {}", error_chain(&error));
                        tracing::error!(run_id = %run_id, "{reason}");
                        this.drop_unstarted(&run_id, &reason);
                        this.finish(&run_id, &dag.name, None, started_ms);
                        return;
                    }
                },
                None => execute_run(&this.engine, request).await,
            };
            // Durable before anyone is told the run ended.
            if let Err(error) = this.engine.recorder.flush().await {
                tracing::error!(run_id = %run_id, "recording failed: {}", error_chain(&error));
            }
            let status = match &outcome {
                Ok(outcome) => Some(outcome.status),
                Err(error) => {
                    let reason = format!("the run failed to start: {}", error_chain(error));
                    tracing::error!(run_id = %run_id, dag = %dag.name, "{reason}");
                    this.drop_unstarted(&run_id, &reason);
                    None
                }
            };
            this.finish(&run_id, &dag.name, status, started_ms);
        });
    }

    fn finish(
        self: &Arc<Self>,
        run_id: &str,
        dag: &str,
        status: Option<RunStatus>,
        started_ms: i64,
    ) {
        let label = status.map_or("error".to_string(), status_label);
        tracing::info!(
            target: RUN_LOG,
            run_id, dag, status = %label,
            duration = %crate::execute::humanize_ms(now_ms() - started_ms),
            "run finished"
        );
        self.metrics
            .run_finished(dag, &label, now_ms() - started_ms);
        if let Ok(tasks) = self.engine.store.tasks(run_id) {
            for task in tasks {
                if let (Some(start), Some(end)) = (task.started_at_ms, task.finished_at_ms) {
                    self.metrics.task_finished(dag, end - start);
                }
            }
        }
        let mut runs = self.runs();
        runs.active.remove(run_id);
        self.pump(&mut runs);
        self.metrics.set_active(runs.active.len());
        self.metrics.set_queue(runs.queued.len());
        drop(runs);
        self.finished.notify_waiters();
    }

    /// Starts queued runs whose DAG has room, oldest first.
    fn pump(self: &Arc<Self>, runs: &mut Runs) {
        if !self.accepting.load(Ordering::SeqCst) {
            return;
        }
        let mut index = 0;
        let mut blocked = std::collections::BTreeSet::new();
        while index < runs.queued.len() {
            let name = runs.queued[index].submission.fire.dag.clone();
            if blocked.contains(&name) {
                index += 1;
                continue;
            }
            let dag = match &runs.queued[index].file_dag {
                Some(dag) => Some(Arc::clone(dag)),
                None => self.dag(&name),
            };
            let Some(dag) = dag else {
                if let Some(dropped) = runs.queued.remove(index) {
                    tracing::warn!(run_id = %dropped.run_id, dag = %name, "queued run dropped: its DAG is no longer loaded");
                    self.drop_unstarted(&dropped.run_id, "its DAG is no longer loaded");
                }
                continue;
            };
            let (max_active, _) = policy(&dag);
            let active = runs.active.values().filter(|a| a.dag == name).count();
            if active >= max_active {
                blocked.insert(name);
                index += 1;
                continue;
            }
            if let Some(next) = runs.queued.remove(index) {
                self.start(runs, next.run_id, dag, next.submission);
            }
        }
    }

    pub fn cancel(&self, run_id: &str) -> Cancelled {
        let mut runs = self.runs();
        if let Some(active) = runs.active.get(run_id) {
            active.stop.cancel();
            return Cancelled::Cancelling;
        }
        if let Some(position) = runs.queued.iter().position(|q| q.run_id == run_id) {
            runs.queued.remove(position);
            self.metrics.set_queue(runs.queued.len());
            drop(runs);
            self.drop_unstarted(run_id, "cancelled before it started");
            return Cancelled::Dequeued;
        }
        drop(runs);
        match self.engine.store.run(run_id) {
            Ok(Some(run)) => Cancelled::Finished { status: run.status },
            _ => Cancelled::Unknown,
        }
    }

    /// Loads a DAG file a request names, confined to the project and
    /// within the daemon's limits.
    fn load_file(&self, file: &std::path::Path) -> Result<Arc<Dag>, SubmitError> {
        let limits = super::reload::daemon_parse_limits();
        let reader =
            crate::parse::SourceReader::confined(&self.engine.workdir, limits.max_file_bytes);
        crate::parse::load_dag_file_with(file, &self.engine.registry, reader, limits)
            .map(Arc::new)
            .map_err(|diagnostics| {
                let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
                SubmitError::InvalidFile(format!(
                    "`{}` does not load:\n{}",
                    file.display(),
                    rendered.join("\n")
                ))
            })
    }

    /// Ends a run that was accepted but will not start, with `reason`, in
    /// the store (a run that already started is left alone).
    fn drop_unstarted(&self, run_id: &str, reason: &str) {
        if let Err(error) = self.engine.store.drop_queued_run(run_id, reason, now_ms()) {
            tracing::error!(
                run_id,
                "cannot record that the run was dropped: {}",
                error_chain(&error)
            );
        }
    }

    /// Starts or queues again, under their ids, the runs accepted before a
    /// crash that never started; ends with a reason those that cannot run
    /// any more (their DAG is gone, or their request no longer fits it).
    /// Returns how many were accepted again.
    pub fn recover_queue(self: &Arc<Self>) -> usize {
        let queued = match self.engine.store.queued_runs() {
            Ok(queued) => queued,
            Err(error) => {
                tracing::error!(
                    "cannot read the runs queued before the restart: {}",
                    error_chain(&error)
                );
                return 0;
            }
        };
        let mut recovered = 0;
        for (run, request) in queued {
            let submission = match serde_json::from_value::<StoredRequest>(request.request) {
                Ok(stored) => stored.into_submission(&run),
                Err(error) => {
                    self.drop_unstarted(
                        &run.run_id,
                        &format!("its stored request is unreadable: {error}"),
                    );
                    continue;
                }
            };
            match self.submit_as(submission, Some(run.run_id.clone())) {
                Ok(accepted) => {
                    recovered += 1;
                    tracing::info!(run_id = %run.run_id, dag = %run.dag, state = ?accepted, "run accepted before the restart taken up again");
                }
                Err(error) => {
                    let reason =
                        format!("it cannot run after the restart: {}", error_chain(&error));
                    tracing::warn!(run_id = %run.run_id, dag = %run.dag, "{reason}");
                    self.drop_unstarted(&run.run_id, &reason);
                }
            }
        }
        recovered
    }

    pub fn active(&self) -> Vec<ActiveRun> {
        self.runs()
            .active
            .iter()
            .map(|(id, a)| ActiveRun {
                run_id: id.clone(),
                dag: a.dag.clone(),
                started_at_ms: a.started_ms,
                trigger: a.trigger.clone(),
            })
            .collect()
    }

    pub fn queued(&self) -> Vec<QueuedRun> {
        self.runs()
            .queued
            .iter()
            .map(|q| QueuedRun {
                run_id: q.run_id.clone(),
                dag: q.submission.fire.dag.clone(),
                queued_at_ms: q.queued_ms,
                trigger: q.submission.fire.trigger.clone(),
            })
            .collect()
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Stops accepting work, drops the queue, lets active runs finish for up
    /// to `grace`, then cancels them and waits until every run is recorded.
    pub async fn drain(&self, grace: Duration) {
        self.accepting.store(false, Ordering::SeqCst);
        let dropped = std::mem::take(&mut self.runs().queued);
        for queued in dropped {
            tracing::info!(run_id = %queued.run_id, dag = %queued.submission.fire.dag, "queued run dropped: shutting down");
            self.drop_unstarted(&queued.run_id, "the daemon shut down before it started");
        }
        self.metrics.set_queue(0);
        let deadline = tokio::time::Instant::now() + grace;
        let mut cancelled = false;
        loop {
            let finished = self.finished.notified();
            let active = self.runs().active.len();
            if active == 0 {
                return;
            }
            if !cancelled && tokio::time::Instant::now() >= deadline {
                tracing::warn!(active, "grace period over: cancelling running tasks");
                for run in self.runs().active.values() {
                    run.stop.interrupt();
                }
                cancelled = true;
            }
            if cancelled {
                finished.await;
            } else {
                let _ = tokio::time::timeout_at(deadline, finished).await;
            }
        }
    }
}

/// `(max_active_runs, overlap)` of a DAG: its schedule's, or one run at a
/// time, queued.
fn policy(dag: &Dag) -> (usize, Overlap) {
    dag.schedule.as_ref().map_or((1, Overlap::Queue), |s| {
        (s.max_active_runs.max(1) as usize, s.overlap)
    })
}

pub fn status_label(status: RunStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{status:?}"))
}

/// A fire made by a person or program through the API.
pub fn api_fire(dag: &str, params: BTreeMap<String, serde_json::Value>, detail: String) -> Fire {
    Fire {
        dag: dag.to_string(),
        trigger: Trigger {
            kind: "api".into(),
            detail,
        },
        logical_date: None,
        params,
        due_ms: now_ms(),
    }
}

/// `dag.trigger` tasks inside the daemon submit here, as explicit requests.
/// Weak: the dispatcher owns the registry that owns this, and a strong
/// reference would keep the dispatcher (and the store's writer) alive
/// forever.
impl crate::ops::Submit for std::sync::Weak<Dispatcher> {
    fn submit(&self, fire: Fire) -> Result<crate::ops::Submitted, String> {
        let dispatcher = self
            .upgrade()
            .ok_or_else(|| "the daemon is shutting down".to_string())?;
        let accepted = Dispatcher::submit(
            &dispatcher,
            Submission {
                fire,
                explicit: true,
                options: RunOptions::default(),
            },
        )
        .map_err(|e| error_chain(&e))?;
        Ok(match accepted {
            Accepted::Started { run_id, .. } => crate::ops::Submitted {
                run_id: Some(run_id),
                state: "started".into(),
            },
            Accepted::Queued { run_id, .. } => crate::ops::Submitted {
                run_id: Some(run_id),
                state: "queued".into(),
            },
            Accepted::Skipped { reason } => crate::ops::Submitted {
                run_id: None,
                state: format!("skipped: {reason}"),
            },
        })
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
