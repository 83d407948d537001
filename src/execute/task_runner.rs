//! One task: attempts with retries, exponential backoff, timeouts and
//! cancellation; input and output artifacts hashed around them; an earlier
//! result reused (its outputs restored from the run cache if need be)
//! instead of running — unless its operator says the effect it had outside
//! its outputs no longer holds — and the outputs of a new result copied
//! into the run cache.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dag_operators::{BoxFuture, Context, Earlier, LogSink, Operator, OperatorError, Outcome};
use dag_state::{ArtifactRecord, AttemptRecord, AttemptStatus, EventRecord, Store, Write};

use tokio_util::sync::CancellationToken;

use super::artifacts::{Declared, hash_all};
use super::clock::now_ms;
use super::fingerprint::Fingerprint;
use super::ray::{RemoteTarget, Takeover, run_remote, takeover};
use super::reuse::{CANDIDATES, Reuse, judge};
use crate::cache::{CacheError, DigestMemo, RunCache};
use crate::model::Retry;
use crate::record::{RecorderHandle, error_chain};
use crate::scheduler::Terminal;

/// Everything one task needs, prepared by the run loop.
pub struct TaskJob {
    pub index: usize,
    pub operator: Arc<dyn Operator>,
    /// Attempt-independent context; `attempt`, `log` and `cancel` are set per attempt.
    pub context: Context,
    pub retry: Retry,
    pub timeout: Option<Duration>,
    pub inputs: Vec<Declared>,
    pub outputs: Vec<Declared>,
    pub run_cancel: CancellationToken,
    pub recorder: RecorderHandle,
    /// Where remembered file digests are read and written.
    pub store: Arc<Store>,
    /// Set when the task may be skipped as up to date.
    pub cache: Option<CacheSetup>,
    /// Most bytes the attempt's log keeps.
    pub log_limit: u64,
    /// Secret values, replaced by `***` in the attempt's log.
    pub masks: Arc<Vec<String>>,
    /// Told `(failed attempt, error)` before each retry, when anyone listens.
    pub on_retry: Option<RetryHook>,
    /// The Ray executor the attempts run on; `None` runs them here.
    pub remote: Option<RemoteTarget>,
    /// The interrupted run this one resumes, whose unfinished Ray job for
    /// this task the first attempt takes over.
    pub resumed_from: Option<String>,
}

pub type RetryHook = Arc<dyn Fn(u32, &str) + Send + Sync>;

/// What the cache check needs: the fingerprint without input digests (they
/// are hashed when the task starts) and the store to look results up in.
pub struct CacheSetup {
    pub fingerprint: Fingerprint,
    pub store: Arc<dag_state::Store>,
    /// `--force`: compute the key, but run anyway.
    pub force: bool,
}

pub struct TaskResult {
    pub index: usize,
    pub terminal: Terminal,
    pub attempts: u32,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub inputs: Vec<ArtifactRecord>,
    pub outputs: Vec<ArtifactRecord>,
    pub cache_key: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    /// For an up-to-date task: the run whose result stands.
    pub reused_from: Option<String>,
    /// For an up-to-date task: the outputs restored from the run cache.
    pub restored: Vec<String>,
    /// Why a task with an earlier result ran anyway: its operator said the
    /// effect of that result no longer holds.
    pub stale: Option<String>,
}

/// An earlier result that stands for this task.
struct Reused {
    record: dag_state::TaskRecord,
    /// Names of the outputs brought back from the run cache.
    restored: Vec<String>,
}

/// What the earlier results with a task's key mean for it.
enum Standing {
    Reused(Box<Reused>),
    /// One was found, but its effect no longer holds (the reason).
    Stale(String),
    Runs,
}

enum AttemptEnd {
    Succeeded(Outcome),
    Failed {
        status: AttemptStatus,
        error: String,
        /// Whether another attempt could end otherwise: invalid params
        /// fail the same way every time.
        retryable: bool,
    },
}

pub async fn run_task(job: TaskJob) -> TaskResult {
    let started_at_ms = now_ms();
    let mut result = TaskResult {
        index: job.index,
        terminal: Terminal::Failed,
        attempts: 0,
        outcome: None,
        error: None,
        started_at_ms,
        finished_at_ms: started_at_ms,
        inputs: Vec::new(),
        outputs: Vec::new(),
        cache_key: None,
        fingerprint: None,
        reused_from: None,
        restored: Vec::new(),
        stale: None,
    };
    // Hashing reads files, so it runs on a blocking thread; a task with no
    // inputs skips the hop.
    if !job.inputs.is_empty() {
        let declared = job.inputs.clone();
        let store = Arc::clone(&job.store);
        let hashed = tokio::task::spawn_blocking(move || {
            hash_all(&declared, "input", &DigestMemo::new(&store))
        });
        match hashed.await {
            Ok(Ok(hashed)) => result.inputs = hashed,
            Ok(Err(error)) => return finished(result, error),
            Err(join) => return finished(result, format!("hashing inputs failed: {join}")),
        }
    }
    if let Some(cache) = &job.cache {
        let mut fingerprint = cache.fingerprint.clone();
        fingerprint.inputs = result
            .inputs
            .iter()
            .map(|a| (a.name.clone(), a.digest.clone()))
            .collect();
        let key = fingerprint.key();
        let standing = if cache.force {
            Standing::Runs
        } else {
            reuse(&job, cache, &key).await
        };
        if let Standing::Stale(reason) = &standing {
            job.recorder.write(Write::Event(stale_event(&job, reason)));
            result.stale = Some(reason.clone());
        }
        if let Standing::Reused(reused) = standing {
            let Reused {
                record: previous,
                restored,
            } = *reused;
            if !restored.is_empty() {
                job.recorder.write(Write::Event(restored_event(
                    &job,
                    &previous.run_id,
                    &restored,
                )));
            }
            result.restored = restored;
            result.terminal = Terminal::UpToDate;
            result.outputs = previous.outputs.clone();
            result.outcome = Some(Outcome {
                values: previous.values.clone(),
                metrics: previous.metrics.clone(),
                short_circuit: None,
                summary: previous.summary.clone(),
            });
            result.reused_from = Some(previous.run_id.clone());
            result.cache_key = Some(key);
            result.fingerprint = Some(fingerprint);
            result.finished_at_ms = now_ms();
            return result;
        }
        result.cache_key = Some(key);
        result.fingerprint = Some(fingerprint);
    }
    let max_attempts = job.retry.retries.saturating_add(1);
    for attempt in 1..=max_attempts {
        result.attempts = attempt;
        let end = run_attempt(&job, attempt).await;
        match end {
            AttemptEnd::Succeeded(outcome) if job.outputs.is_empty() => {
                result.terminal = Terminal::Succeeded;
                result.outcome = Some(outcome);
                result.error = None;
                break;
            }
            AttemptEnd::Succeeded(outcome) => {
                let declared = job.outputs.clone();
                let store = Arc::clone(&job.store);
                let workdir = job.context.workdir.clone();
                let task_id = job.context.task_id.clone();
                // A short-circuiting result is never reused, so not worth keeping.
                let keep = job.cache.is_some() && outcome.short_circuit.is_none();
                let hashed = tokio::task::spawn_blocking(move || {
                    let outputs = hash_all(&declared, "declared output", &DigestMemo::new(&store))?;
                    if keep {
                        cache_outputs(&RunCache::beside(&store), &workdir, &outputs, &task_id);
                    }
                    Ok::<_, String>(outputs)
                });
                match hashed.await {
                    Ok(Ok(outputs)) => {
                        result.outputs = outputs;
                        result.terminal = Terminal::Succeeded;
                        result.outcome = Some(outcome);
                        result.error = None;
                        break;
                    }
                    Ok(Err(error)) => {
                        result.error = Some(format!("{error} (the operator did not write it)"))
                    }
                    Err(join) => result.error = Some(format!("hashing outputs failed: {join}")),
                }
            }
            AttemptEnd::Failed {
                status,
                error,
                retryable,
            } => {
                result.error = Some(error);
                if matches!(status, AttemptStatus::Cancelled) {
                    result.terminal = Terminal::Cancelled;
                    break;
                }
                if !retryable {
                    break;
                }
            }
        }
        if attempt < max_attempts {
            if let (Some(on_retry), Some(error)) = (&job.on_retry, &result.error) {
                on_retry(attempt, error);
            }
            let delay = job.retry.delay_before(attempt + 1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = job.run_cancel.cancelled() => {
                    result.terminal = Terminal::Cancelled;
                    break;
                }
            }
        }
    }
    result.finished_at_ms = now_ms();
    result
}

fn finished(mut result: TaskResult, error: String) -> TaskResult {
    result.error = Some(error);
    result.finished_at_ms = now_ms();
    result
}

/// An earlier result with this key that can stand for the task, with any
/// outputs that were deleted or overwritten restored from the run cache.
/// Any failure here means the task runs.
async fn reuse(job: &TaskJob, cache: &CacheSetup, key: &str) -> Standing {
    // An index lookup: cheap enough for this thread, and most first runs
    // end here without starting a blocking task.
    let candidates = match cache.store.successes_with_key(key, CANDIDATES) {
        Ok(candidates) if candidates.is_empty() => return Standing::Runs,
        Ok(candidates) => candidates,
        Err(error) => {
            tracing::warn!(task = %job.context.task_id, error = %error_chain(&error), "cache lookup failed; running the task");
            return Standing::Runs;
        }
    };
    let store = Arc::clone(&cache.store);
    let operator = Arc::clone(&job.operator);
    let context = job.context.clone();
    tokio::task::spawn_blocking(move || reuse_blocking(&store, candidates, operator.as_ref(), &context))
        .await
        .unwrap_or_else(|join| {
            tracing::warn!(task = %job.context.task_id, error = %join, "cache lookup failed; running the task");
            Standing::Runs
        })
}

fn reuse_blocking(
    store: &Store,
    candidates: Vec<dag_state::TaskRecord>,
    operator: &dyn Operator,
    context: &Context,
) -> Standing {
    let (workdir, task_id) = (context.workdir.as_path(), context.task_id.as_str());
    let memo = DigestMemo::new(store);
    let run_cache = RunCache::beside(store);
    let Some(found) = judge(candidates, workdir, &memo, &run_cache) else {
        return Standing::Runs;
    };
    if let Reuse::Intact(record) | Reuse::Restorable { record, .. } = &found
        && let Err(reason) = operator.effect_holds(&Earlier {
            params: &context.params,
            values: &record.values,
            state_dir: &context.state_dir,
        })
    {
        return Standing::Stale(reason);
    }
    match found {
        Reuse::Intact(record) => {
            // Results recorded before the run cache existed, or collected
            // since, become restorable again.
            cache_outputs(&run_cache, workdir, &record.outputs, task_id);
            Standing::Reused(Box::new(Reused {
                record,
                restored: Vec::new(),
            }))
        }
        Reuse::Restorable { record, damaged } => {
            match run_cache.restore(&Reuse::restores(&damaged, workdir)) {
                Ok(()) => Standing::Reused(Box::new(Reused {
                    restored: damaged.into_iter().map(|d| d.artifact.name).collect(),
                    record,
                })),
                Err(error) => {
                    tracing::warn!(
                        task = task_id,
                        error = %error_chain(&error),
                        "cannot restore outputs from the run cache; running the task"
                    );
                    Standing::Runs
                }
            }
        }
        Reuse::Lost { .. } => Standing::Runs,
    }
}

/// Copies outputs into the run cache. A failure costs only a later rerun,
/// so it is reported and the task goes on.
fn cache_outputs(cache: &RunCache, workdir: &Path, outputs: &[ArtifactRecord], task_id: &str) {
    for output in outputs {
        match cache.insert(&workdir.join(&output.path), &output.digest) {
            Ok(_) => {}
            Err(error @ CacheError::Changed { .. }) => {
                tracing::debug!(task = task_id, error = %error_chain(&error), "output not cached");
            }
            Err(error) => {
                tracing::warn!(
                    task = task_id,
                    output = %output.name,
                    error = %error_chain(&error),
                    "output not copied into the run cache"
                );
            }
        }
    }
}

fn stale_event(job: &TaskJob, reason: &str) -> EventRecord {
    EventRecord {
        run_id: job.context.run_id.clone(),
        seq: 0,
        at_ms: now_ms(),
        kind: "effect_stale".into(),
        task_id: Some(job.context.task_id.clone()),
        detail: serde_json::json!({ "reason": reason }),
    }
}

fn restored_event(job: &TaskJob, from_run: &str, outputs: &[String]) -> EventRecord {
    EventRecord {
        run_id: job.context.run_id.clone(),
        seq: 0,
        at_ms: now_ms(),
        kind: "outputs_restored".into(),
        task_id: Some(job.context.task_id.clone()),
        detail: serde_json::json!({ "from_run": from_run, "outputs": outputs }),
    }
}

async fn run_attempt(job: &TaskJob, attempt: u32) -> AttemptEnd {
    let task_id = job.context.task_id.clone();
    let run_id = job.context.run_id.clone();
    let log_path = job
        .context
        .state_dir
        .join("logs")
        .join(&run_id)
        .join(format!("{task_id}.{attempt}.log"));
    let cancel = job.run_cancel.child_token();
    let mut context = job.context.clone();
    context.attempt = attempt;
    context.log = LogSink::with_limit(log_path.clone(), job.log_limit).masking(&job.masks);
    context.cancel = cancel.clone();

    let started_at_ms = now_ms();
    let mut record = AttemptRecord {
        run_id: run_id.clone(),
        task_id: task_id.clone(),
        attempt,
        status: AttemptStatus::Running,
        started_at_ms,
        finished_at_ms: None,
        exit_code: None,
        error: None,
        log_path: Some(log_path.to_string_lossy().into_owned()),
        metrics: Default::default(),
        placement: None,
    };
    let takeover = match (&job.remote, &job.resumed_from) {
        (Some(_), Some(earlier)) if attempt == 1 => {
            takeover(&job.store, &job.context.state_dir, earlier, &task_id)
        }
        _ => None,
    };
    let placement = job
        .remote
        .as_ref()
        .map(|target| Mutex::new(target.placement(&context, takeover.as_ref())));
    record.placement = placement
        .as_ref()
        .map(|p| p.lock().unwrap_or_else(PoisonError::into_inner).clone());
    // The attempt record is the attempt's history (started, finished,
    // status); the run's event log holds only what no record shows.
    job.recorder.write(Write::Attempt(record.clone()));

    if job.operator.starts_processes() || job.remote.is_some() {
        // Durable before anything outside this process can happen: a
        // `kill -9` from here on leaves the attempt on record.
        if let Err(error) = job.recorder.flush().await {
            tracing::warn!(task = %task_id, "recording the attempt's start failed: {}", error_chain(&error));
        }
    }
    let end = execute(job, &context, &cancel, placement.as_ref(), takeover).await;
    if let Some(placement) = placement {
        record.placement = Some(
            placement
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    record.finished_at_ms = Some(now_ms());
    match &end {
        AttemptEnd::Succeeded(outcome) => {
            record.status = AttemptStatus::Succeeded;
            record.metrics = outcome.metrics.clone();
            record.exit_code = outcome
                .values
                .get("exit_code")
                .and_then(|v| v.as_i64())
                .map(|c| c as i32);
        }
        AttemptEnd::Failed { status, error, .. } => {
            record.status = *status;
            record.error = Some(error.clone());
            context
                .log
                .line(format_args!("dag: attempt {attempt} ended: {error}"));
        }
    }
    let dropped = context.log.finish();
    if dropped > 0 {
        record
            .metrics
            .insert("log_bytes_dropped".into(), dropped as f64);
    }
    job.recorder.write(Write::Attempt(record));
    end
}

/// Runs the operator under the timeout and the run's cancellation. On either,
/// the attempt's token is cancelled before the operator future is dropped, so
/// blocking work stops and child processes are killed.
async fn execute(
    job: &TaskJob,
    context: &Context,
    cancel: &CancellationToken,
    placement: Option<&Mutex<dag_state::Placement>>,
    takeover: Option<Takeover>,
) -> AttemptEnd {
    let timeout = async {
        match job.timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let mut operation: BoxFuture<'_, Result<Outcome, OperatorError>> =
        match (&job.remote, placement) {
            (Some(target), Some(placement)) => Box::pin(run_remote(
                target,
                context,
                job.log_limit,
                takeover,
                placement,
            )),
            _ => job.operator.execute(context),
        };
    let result = tokio::select! {
        result = &mut operation => result,
        () = timeout => {
            cancel.cancel();
            settle(&mut operation).await;
            Err(OperatorError::TimedOut)
        }
        () = job.run_cancel.cancelled() => {
            settle(&mut operation).await;
            Err(OperatorError::Cancelled)
        }
    };
    match result {
        Ok(outcome) => AttemptEnd::Succeeded(outcome),
        Err(OperatorError::Cancelled) => AttemptEnd::Failed {
            status: AttemptStatus::Cancelled,
            error: "cancelled".into(),
            retryable: false,
        },
        Err(OperatorError::TimedOut) => AttemptEnd::Failed {
            status: AttemptStatus::TimedOut,
            error: format!(
                "timed out after {}",
                humanize(job.timeout.unwrap_or_default())
            ),
            retryable: true,
        },
        Err(error) => AttemptEnd::Failed {
            status: AttemptStatus::Failed,
            retryable: !matches!(error, OperatorError::Params(_)),
            error: error_chain(&error),
        },
    }
}

/// How long a cancelled operator may take to stop (kill its processes,
/// close its output) before it is dropped.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Lets a cancelled operator finish stopping, for up to [`STOP_GRACE`].
async fn settle<F: std::future::Future + Unpin>(operation: &mut F) {
    let _ = tokio::time::timeout(STOP_GRACE, operation).await;
}

/// `850ms`, `4.2s`, `3m07s`.
pub fn humanize_ms(ms: i64) -> String {
    humanize(Duration::from_millis(ms.max(0) as u64))
}

pub fn humanize(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use dag_operators::{Context, Noop};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::record::Recorder;

    fn job(
        dir: &std::path::Path,
        store: Arc<dag_state::Store>,
        recorder: RecorderHandle,
        cancel: CancellationToken,
    ) -> TaskJob {
        let mut context = Context::detached(dir, serde_json::json!({ "fail": true }));
        context.state_dir = dir.join(".dag");
        TaskJob {
            index: 0,
            operator: Arc::new(Noop),
            context,
            retry: Retry {
                retries: 3,
                delay: Duration::from_secs(10),
                backoff: 2.0,
                max_delay: Duration::from_secs(25),
            },
            timeout: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            run_cancel: cancel,
            recorder,
            store,
            cache: None,
            log_limit: dag_operators::DEFAULT_LOG_LIMIT,
            masks: Arc::default(),
            on_retry: None,
            remote: None,
            resumed_from: None,
        }
    }

    fn store(dir: &std::path::Path) -> Arc<dag_state::Store> {
        Arc::new(
            dag_state::Store::open(&dir.join("db"))
                .expect("open store")
                .0,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_with_exponential_backoff_capped_at_the_maximum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let recorder = Recorder::spawn(Arc::clone(&store), None);
        let started = tokio::time::Instant::now();
        let cancel = CancellationToken::new();
        let result = run_task(job(dir.path(), store, recorder.handle(), cancel)).await;
        assert_eq!(result.terminal, Terminal::Failed);
        assert_eq!(result.attempts, 4);
        // Waits of 10 s, 20 s, then 40 s capped at 25 s.
        assert_eq!(started.elapsed(), Duration::from_secs(55));
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_params_fail_the_task_once_without_retries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let recorder = Recorder::spawn(Arc::clone(&store), None);
        let mut job = job(
            dir.path(),
            store,
            recorder.handle(),
            CancellationToken::new(),
        );
        job.context.params = serde_json::json!({ "fail": "yes" });
        let started = tokio::time::Instant::now();
        let result = run_task(job).await;
        assert_eq!(result.terminal, Terminal::Failed);
        assert_eq!(result.attempts, 1);
        assert_eq!(started.elapsed(), Duration::ZERO, "no retry wait");
        let error = result.error.unwrap_or_default();
        assert!(error.starts_with("invalid params: "), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_during_a_retry_wait_ends_the_task_as_cancelled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path());
        let recorder = Recorder::spawn(Arc::clone(&store), None);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_task(job(
            dir.path(),
            store,
            recorder.handle(),
            cancel.clone(),
        )));
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
        let result = task.await.expect("task joins");
        assert_eq!(result.terminal, Terminal::Cancelled);
        assert_eq!(result.attempts, 1);
    }
}
