//! Notifications: the hooks a DAG and its tasks declare (`on_failure`,
//! `on_success`, `on_retry`, `on_sla_miss`) fired as a run goes, delivered
//! in the background with retries, and recorded as `notification` events
//! of the run (`dag runs show` lists them).
//!
//! A hook never blocks or fails a run: deliveries run on their own tasks,
//! at most [`MAX_IN_FLIGHT`] at once, and their outcome is only recorded.
//! A process that ends after a run (`dag run`) waits for the deliveries
//! still going, up to a bound, with [`Notifications::wait_idle`].

mod delivery;
mod payload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dag_state::{EventRecord, RunStatus, TaskStatus, Write};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use self::payload::{Payload, log_excerpt};
use super::clock::{now_ms, rfc3339};
use crate::model::{Dag, HookEvent, HookTarget, Task};
use crate::record::RecorderHandle;

/// Deliveries going at once; the rest wait their turn.
const MAX_IN_FLIGHT: usize = 16;

/// Engine-wide: deliveries in flight, and the web UI's address for links.
#[derive(Clone)]
pub struct Notifications {
    inner: Arc<Inner>,
}

struct Inner {
    pending: AtomicUsize,
    idle: Notify,
    slots: Semaphore,
    link_base: OnceLock<String>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                pending: AtomicUsize::new(0),
                idle: Notify::new(),
                slots: Semaphore::new(MAX_IN_FLIGHT),
                link_base: OnceLock::new(),
            }),
        }
    }
}

impl Notifications {
    /// Links in notifications point at `{base}/runs/{run_id}`.
    pub fn set_link_base(&self, base: String) {
        let _ = self.inner.link_base.set(base);
    }

    /// Waits until no delivery is in flight, or `limit` has passed.
    pub async fn wait_idle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.inner.idle.notified();
            if self.inner.pending.load(Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return;
            }
        }
    }

    fn link(&self, run_id: &str) -> Option<String> {
        self.inner
            .link_base
            .get()
            .map(|base| format!("{}/runs/{run_id}", base.trim_end_matches('/')))
    }

    fn spawn(&self, recorder: RecorderHandle, target: HookTarget, payload: Payload) {
        self.inner.pending.fetch_add(1, Ordering::SeqCst);
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let delivered = match inner.slots.acquire().await {
                Ok(_slot) => {
                    delivery::deliver(&target, &payload.body(target_is_slack(&target))).await
                }
                Err(_) => delivery::Delivered {
                    tries: 0,
                    error: Some("the engine is shutting down".into()),
                },
            };
            match &delivered.error {
                None => tracing::info!(
                    run_id = %payload.run_id, event = payload.event.key(),
                    target = %target.describe(), "notification delivered"
                ),
                Some(error) => tracing::warn!(
                    run_id = %payload.run_id, event = payload.event.key(),
                    target = %target.describe(), %error, "notification not delivered"
                ),
            }
            recorder.write(Write::Event(EventRecord {
                run_id: payload.run_id.clone(),
                seq: 0,
                at_ms: now_ms(),
                kind: "notification".into(),
                task_id: payload.task.clone(),
                detail: serde_json::json!({
                    "event": payload.event,
                    "target": target.describe(),
                    "delivered": delivered.error.is_none(),
                    "tries": delivered.tries,
                    "error": delivered.error,
                }),
            }));
            if inner.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                inner.idle.notify_waiters();
            }
        });
    }
}

fn target_is_slack(target: &HookTarget) -> bool {
    matches!(target, HookTarget::Webhook { slack: true, .. })
}

/// One run's notifier: knows the DAG's and the tasks' hooks.
pub struct RunNotifier {
    notifications: Notifications,
    recorder: RecorderHandle,
    /// Replaced when the run grows (mapped instances appear mid-run).
    dag: Mutex<Arc<Dag>>,
    run_id: String,
    trigger: String,
    logs_dir: PathBuf,
    /// The first task that failed, for the run's `on_failure`.
    first_failure: Mutex<Option<(String, u32, Option<String>)>>,
}

impl RunNotifier {
    pub fn new(
        notifications: &Notifications,
        recorder: RecorderHandle,
        dag: Arc<Dag>,
        run_id: String,
        trigger: String,
        logs_dir: PathBuf,
    ) -> Self {
        Self {
            notifications: notifications.clone(),
            recorder,
            dag: Mutex::new(dag),
            run_id,
            trigger,
            logs_dir,
            first_failure: Mutex::new(None),
        }
    }

    fn dag(&self) -> Arc<Dag> {
        match self.dag.lock() {
            Ok(dag) => Arc::clone(&dag),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The run's DAG grew: hooks of the new tasks are found from now on.
    pub fn grown(&self, dag: Arc<Dag>) {
        match self.dag.lock() {
            Ok(mut current) => *current = dag,
            Err(poisoned) => *poisoned.into_inner() = dag,
        }
    }

    /// A task ended: its `on_failure` or `on_success`.
    pub fn task_ended(&self, task: &Task, status: TaskStatus, attempts: u32, reason: Option<&str>) {
        let event = match status {
            TaskStatus::Failed => {
                if let Ok(mut first) = self.first_failure.lock()
                    && first.is_none()
                {
                    *first = Some((task.id.clone(), attempts, reason.map(str::to_string)));
                }
                HookEvent::Failure
            }
            TaskStatus::Succeeded => HookEvent::Success,
            _ => return,
        };
        let targets = task.hooks.targets(event);
        if targets.is_empty() {
            return;
        }
        let status = if event == HookEvent::Failure {
            "failed"
        } else {
            "succeeded"
        };
        let payload = self.payload(event, Some((&task.id, attempts)), status, reason);
        self.fire(targets, &payload);
    }

    /// An attempt failed and another follows: the task's and the DAG's
    /// `on_retry`.
    pub fn task_retrying(&self, task_id: &str, attempt: u32, error: &str) {
        let dag = self.dag();
        let Some(task) = dag.tasks.get(task_id) else {
            return;
        };
        if task.hooks.on_retry.is_empty() && dag.hooks.on_retry.is_empty() {
            return;
        }
        let payload = self.payload(
            HookEvent::Retry,
            Some((&task.id, attempt)),
            "retrying",
            Some(error),
        );
        self.fire(&task.hooks.on_retry, &payload);
        self.fire(&dag.hooks.on_retry, &payload);
    }

    /// The task is still running when its `sla` is up.
    pub fn task_late(&self, task_id: &str) {
        let dag = self.dag();
        let Some(task) = dag.tasks.get(task_id) else {
            return;
        };
        let reason = format!(
            "still running after its sla of {}",
            humanize(task.hooks.sla)
        );
        self.record_sla_miss(Some(&task.id), &reason);
        let payload = self.payload(
            HookEvent::SlaMiss,
            Some((&task.id, 0)),
            "late",
            Some(&reason),
        );
        self.fire(&task.hooks.on_sla_miss, &payload);
    }

    /// Whether a retry of this task notifies anyone.
    pub fn wants_retries(&self, task: &Task) -> bool {
        let dag = self.dag();
        !task.hooks.on_retry.is_empty() || !dag.hooks.on_retry.is_empty()
    }

    /// The run is still going when the DAG's `sla` is up.
    pub fn run_late(&self) {
        let dag = self.dag();
        let reason = format!("still running after its sla of {}", humanize(dag.hooks.sla));
        self.record_sla_miss(None, &reason);
        let payload = self.payload(HookEvent::SlaMiss, None, "late", Some(&reason));
        self.fire(&dag.hooks.on_sla_miss, &payload);
    }

    /// The run ended: the DAG's `on_failure` or `on_success`.
    pub fn run_ended(&self, status: RunStatus) {
        let dag = self.dag();
        let event = match status {
            RunStatus::Failed => HookEvent::Failure,
            RunStatus::Succeeded => HookEvent::Success,
            _ => return,
        };
        let targets = dag.hooks.targets(event);
        if targets.is_empty() {
            return;
        }
        let first = self.first_failure.lock().ok().and_then(|f| f.clone());
        let mut payload = match (&first, event) {
            (Some((task, attempts, reason)), HookEvent::Failure) => {
                let reason = format!(
                    "task `{task}` failed: {}",
                    reason.as_deref().unwrap_or("no reason given")
                );
                let mut payload =
                    self.payload(event, Some((task, *attempts)), "failed", Some(&reason));
                payload.task = None;
                payload
            }
            (_, HookEvent::Failure) => self.payload(event, None, "failed", None),
            _ => self.payload(event, None, "succeeded", None),
        };
        if event == HookEvent::Success {
            payload.log_excerpt = None;
        }
        self.fire(targets, &payload);
    }

    fn payload(
        &self,
        event: HookEvent,
        task: Option<(&String, u32)>,
        status: &str,
        reason: Option<&str>,
    ) -> Payload {
        let log_excerpt = task
            .filter(|(_, attempt)| *attempt > 0 && event != HookEvent::Success)
            .and_then(|(task, attempt)| {
                log_excerpt(
                    &self
                        .logs_dir
                        .join(&self.run_id)
                        .join(format!("{task}.{attempt}.log")),
                )
            });
        Payload {
            event,
            dag: self.dag().name.clone(),
            run_id: self.run_id.clone(),
            task: task.map(|(t, _)| t.clone()),
            status: status.to_string(),
            reason: reason.map(str::to_string),
            attempt: task.map(|(_, a)| a).filter(|a| *a > 0),
            trigger: self.trigger.clone(),
            log_excerpt,
            link: self.notifications.link(&self.run_id),
            at: rfc3339(now_ms()),
        }
    }

    fn fire(&self, targets: &[HookTarget], payload: &Payload) {
        for target in targets {
            self.notifications
                .spawn(self.recorder.clone(), target.clone(), payload.clone());
        }
    }

    fn record_sla_miss(&self, task: Option<&String>, reason: &str) {
        tracing::warn!(run_id = %self.run_id, dag = %self.dag().name, task = ?task, "{reason}");
        self.recorder.write(Write::Event(EventRecord {
            run_id: self.run_id.clone(),
            seq: 0,
            at_ms: now_ms(),
            kind: "sla_missed".into(),
            task_id: task.cloned(),
            detail: serde_json::json!({ "reason": reason }),
        }));
    }
}

fn humanize(sla: Option<Duration>) -> String {
    sla.map(super::humanize).unwrap_or_default()
}

/// Fires `late` once after `sla`, unless `done` is cancelled first.
pub fn watch_sla(sla: Duration, done: CancellationToken, late: impl FnOnce() + Send + 'static) {
    tokio::spawn(async move {
        tokio::select! {
            () = done.cancelled() => {}
            () = tokio::time::sleep(sla) => late(),
        }
    });
}
