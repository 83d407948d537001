//! [`Dispatcher`]: the daemon's one run queue.
//!
//! Every trigger — cron, file watch, the API, a `dag.trigger` task — becomes
//! a [`Submission`]. The dispatcher applies the DAG's concurrency policy
//! (`max_active_runs`, `overlap`), hands out the run id at once (so a client
//! can follow a queued run), starts runs on the shared [`Engine`] and starts
//! queued ones as others finish.
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
use tokio_util::sync::CancellationToken;

use super::Fire;
use super::dags::DagSet;
use super::metrics::DaemonMetrics;
use crate::execute::{
    Engine, ExecuteError, RunRequest, execute_resumed, execute_run, new_run_id, now_ms,
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

struct Active {
    dag: String,
    cancel: CancellationToken,
    started_ms: i64,
    trigger: Trigger,
}

struct Queued {
    run_id: String,
    submission: Submission,
    queued_ms: i64,
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
    /// never run (unknown DAG, param or task) or during shutdown.
    pub fn submit(self: &Arc<Self>, mut submission: Submission) -> Result<Accepted, SubmitError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let Some(dag) = self.dag(&submission.fire.dag) else {
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
        validate_request(&dag, &submission.fire.params, &submission.options.only)
            .map_err(SubmitError::Invalid)?;
        submission.fire.dag = dag.name.clone();
        let (max_active, overlap) = policy(&dag);
        let run_id = new_run_id();
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
        if active < max_active && !waiting {
            self.start(&mut runs, run_id.clone(), dag, submission);
            return Ok(Accepted::Started { run_id, tasks });
        }
        let overlap = if submission.explicit {
            Overlap::Queue
        } else {
            overlap
        };
        match overlap {
            Overlap::Skip => {
                let reason = format!(
                    "`{}` already has {active} active run{} (max_active_runs {max_active}, overlap skip)",
                    dag.name,
                    if active == 1 { "" } else { "s" }
                );
                self.metrics.fire_skipped(&dag.name);
                tracing::info!(dag = %dag.name, trigger = %submission.fire.trigger.kind, "{reason}; fire skipped");
                Ok(Accepted::Skipped { reason })
            }
            Overlap::Queue | Overlap::CancelPrevious => {
                if overlap == Overlap::CancelPrevious
                    && let Some((id, oldest)) = runs
                        .active
                        .iter()
                        .filter(|(_, a)| a.dag == dag.name)
                        .min_by_key(|(_, a)| a.started_ms)
                {
                    tracing::info!(dag = %dag.name, run_id = %id, "cancelling the previous run (overlap cancel_previous)");
                    oldest.cancel.cancel();
                }
                runs.queued.push_back(Queued {
                    run_id: run_id.clone(),
                    submission,
                    queued_ms: now_ms(),
                });
                self.metrics.set_queue(runs.queued.len());
                Ok(Accepted::Queued {
                    position: runs.queued.len(),
                    run_id,
                    tasks,
                })
            }
        }
    }

    fn start(self: &Arc<Self>, runs: &mut Runs, run_id: String, dag: Arc<Dag>, s: Submission) {
        let cancel = CancellationToken::new();
        let started_ms = now_ms();
        self.metrics
            .trigger_latency(&s.fire.trigger.kind, started_ms - s.fire.due_ms);
        runs.active.insert(
            run_id.clone(),
            Active {
                dag: dag.name.clone(),
                cancel: cancel.clone(),
                started_ms,
                trigger: s.fire.trigger.clone(),
            },
        );
        self.metrics.set_active(runs.active.len());
        tracing::info!(
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
            cancel,
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
                        tracing::error!(run_id = %run_id, "cannot resume run {earlier}: {}", error_chain(&error));
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
                    tracing::error!(run_id = %run_id, dag = %dag.name, "run failed to start: {}", error_chain(error));
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
        tracing::info!(run_id, dag, status = %label, "run finished");
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
            let Some(dag) = self.dag(&name) else {
                if let Some(dropped) = runs.queued.remove(index) {
                    tracing::warn!(run_id = %dropped.run_id, dag = %name, "queued run dropped: its DAG is no longer loaded");
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
            active.cancel.cancel();
            return Cancelled::Cancelling;
        }
        if let Some(position) = runs.queued.iter().position(|q| q.run_id == run_id) {
            runs.queued.remove(position);
            self.metrics.set_queue(runs.queued.len());
            return Cancelled::Dequeued;
        }
        drop(runs);
        match self.engine.store.run(run_id) {
            Ok(Some(run)) => Cancelled::Finished { status: run.status },
            _ => Cancelled::Unknown,
        }
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
                    run.cancel.cancel();
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
mod tests {
    use super::*;
    use crate::record::Recorder;

    struct Fixture {
        dispatcher: Arc<Dispatcher>,
        _recorder: Recorder,
        _dir: tempfile::TempDir,
    }

    fn fixture(overlap: &str) -> Result<Fixture, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("dags"))?;
        std::fs::write(
            dir.path().join("dags/slow.yaml"),
            format!(
                "name: slow\nschedule: {{ cron: \"0 0 1 1 *\", overlap: {overlap} }}\n\
                 tasks:\n  t:\n    operator: noop\n    params: {{ sleep_ms: 300 }}\n"
            ),
        )?;
        let (store, _) = dag_state::Store::open(&dir.path().join(".dag/db"))?;
        let store = Arc::new(store);
        let recorder = Recorder::spawn(Arc::clone(&store), None);
        let registry = Arc::new(crate::ops::registry());
        let engine = Engine {
            registry: Arc::clone(&registry),
            store,
            recorder: recorder.handle(),
            workdir: dir.path().to_path_buf(),
            state_dir: dir.path().join(".dag"),
        };
        let mut dags = DagSet::default();
        dags.reload(&dir.path().join("dags"), &registry);
        Ok(Fixture {
            dispatcher: Dispatcher::new(engine, dags),
            _recorder: recorder,
            _dir: dir,
        })
    }

    fn cron_fire() -> Submission {
        Submission {
            fire: Fire {
                dag: "slow".into(),
                trigger: Trigger {
                    kind: "cron".into(),
                    detail: String::new(),
                },
                logical_date: None,
                params: BTreeMap::new(),
                due_ms: now_ms(),
            },
            explicit: false,
            options: RunOptions::default(),
        }
    }

    async fn settle(dispatcher: &Dispatcher) {
        while !dispatcher.active().is_empty() || !dispatcher.queued().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn statuses(dispatcher: &Dispatcher) -> Vec<RunStatus> {
        let mut runs = dispatcher
            .engine
            .store
            .runs(Some("slow"), 10)
            .unwrap_or_default();
        runs.sort_by_key(|r| r.started_at_ms);
        runs.iter().map(|r| r.status).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn skip_drops_a_fire_that_finds_the_dag_busy_but_requests_queue()
    -> Result<(), Box<dyn std::error::Error>> {
        let f = fixture("skip")?;
        let first = f.dispatcher.submit(cron_fire())?;
        assert!(
            matches!(first, Accepted::Started { tasks: 1, .. }),
            "{first:?}"
        );
        let second = f.dispatcher.submit(cron_fire())?;
        assert!(matches!(second, Accepted::Skipped { .. }), "{second:?}");
        let mut asked = cron_fire();
        asked.explicit = true;
        let third = f.dispatcher.submit(asked)?;
        assert!(
            matches!(third, Accepted::Queued { position: 1, .. }),
            "{third:?}"
        );
        settle(&f.dispatcher).await;
        assert_eq!(statuses(&f.dispatcher), vec![RunStatus::Succeeded; 2]);
        assert!(
            f.dispatcher
                .metrics
                .render()
                .contains("dag_fires_skipped_total{dag=\"slow\"} 1")
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queue_runs_fires_one_after_another() -> Result<(), Box<dyn std::error::Error>> {
        let f = fixture("queue")?;
        f.dispatcher.submit(cron_fire())?;
        let second = f.dispatcher.submit(cron_fire())?;
        assert!(matches!(second, Accepted::Queued { .. }), "{second:?}");
        assert_eq!(f.dispatcher.active().len(), 1);
        settle(&f.dispatcher).await;
        assert_eq!(statuses(&f.dispatcher), vec![RunStatus::Succeeded; 2]);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_previous_cancels_the_running_run_for_the_new_fire()
    -> Result<(), Box<dyn std::error::Error>> {
        let f = fixture("cancel_previous")?;
        f.dispatcher.submit(cron_fire())?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = f.dispatcher.submit(cron_fire())?;
        assert!(matches!(second, Accepted::Queued { .. }), "{second:?}");
        settle(&f.dispatcher).await;
        assert_eq!(
            statuses(&f.dispatcher),
            vec![RunStatus::Interrupted, RunStatus::Succeeded]
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_dags_and_params_are_refused_and_drain_stops_everything()
    -> Result<(), Box<dyn std::error::Error>> {
        let f = fixture("queue")?;
        let mut unknown = cron_fire();
        unknown.fire.dag = "slo".into();
        let error = f.dispatcher.submit(unknown).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("did you mean `slow`")));
        let mut bad = cron_fire();
        bad.fire
            .params
            .insert("nope".into(), serde_json::Value::Null);
        assert!(matches!(
            f.dispatcher.submit(bad),
            Err(SubmitError::Invalid(_))
        ));

        let running = f.dispatcher.submit(cron_fire())?;
        let queued = f.dispatcher.submit(cron_fire())?;
        f.dispatcher.drain(Duration::from_millis(20)).await;
        assert!(matches!(
            f.dispatcher.submit(cron_fire()),
            Err(SubmitError::ShuttingDown)
        ));
        assert!(f.dispatcher.active().is_empty() && f.dispatcher.queued().is_empty());
        let store = &f.dispatcher.engine.store;
        let status = |id: Option<&str>| {
            store
                .run(id.unwrap_or_default())
                .ok()
                .flatten()
                .map(|r| r.status)
        };
        assert_eq!(status(running.run_id()), Some(RunStatus::Interrupted));
        assert_eq!(
            status(queued.run_id()),
            None,
            "a dropped queued run never starts"
        );
        Ok(())
    }
}
