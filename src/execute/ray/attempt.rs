//! [`run_remote`]: one attempt of one task as one Ray job. The engine's
//! scheduler, retries, timeout and cancellation stay where they are (in
//! `task_runner`); this submits the job, polls its status, stops it when
//! the attempt is cancelled or times out, and brings its log and outcome
//! back.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dag_operators::{Context, LogSink, OperatorError, Outcome};
use dag_state::Placement;

use super::job_api::{ApiError, JobInfo, JobsApi, submission_id};
use super::remote_task::{FORMAT, RemoteResult, RemoteTask, attempt_dir, read_json, write_json};
use super::request::{absolute, absolute_all, job_request};
use super::target::{RemoteTarget, Takeover};

/// How long the head may stay unreachable while a job runs before the
/// attempt fails: long enough for a slow answer, short enough that a lost
/// cluster is reported while the run still matters.
const LOST_AFTER: Duration = Duration::from_secs(3);

/// How long a stopped job is given to reach a terminal state.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// The most bytes of the job's driver output copied into the attempt log.
const MAX_DRIVER_LOG: u64 = 1 << 20;

/// Runs attempt `ctx.attempt` of the task as a Ray job and waits for it.
/// `placement` is kept up to date with the job and node as they become
/// known.
pub async fn run_remote(
    target: &RemoteTarget,
    ctx: &Context,
    log_limit: u64,
    takeover: Option<Takeover>,
    placement: &Mutex<Placement>,
) -> Result<Outcome, OperatorError> {
    let address = target.spec.effective_address();
    let api = JobsApi::new(&address).map_err(OperatorError::Failed)?;
    let failed = |error: ApiError| OperatorError::Failed(error.to_string());
    let mut chosen = None;
    if let Some(takeover) = takeover {
        let id = takeover.job_id.clone();
        match call(&api, move |api| api.job(&id)).await.map_err(failed)? {
            Some(info) if !matches!(info.status.as_str(), "FAILED" | "STOPPED") => {
                ctx.log.line(format_args!(
                    "dag: taking over Ray job {} ({}) that an interrupted run submitted",
                    takeover.job_id, info.status
                ));
                chosen = Some((takeover.job_id, takeover.dir));
            }
            found => ctx.log.line(format_args!(
                "dag: the interrupted run's Ray job {} {}; submitting a new one",
                takeover.job_id,
                found.map_or("is unknown to the head".to_string(), |info| format!(
                    "ended {}",
                    info.status
                )),
            )),
        }
    }
    let took_over = chosen.is_some();
    let (job_id, dir) = match chosen {
        Some(chosen) => chosen,
        None => submit(&api, target, ctx, log_limit).await?,
    };
    set(placement, |p| {
        p.job_id = Some(job_id.clone());
        p.attached = took_over;
    });
    let poll = target.spec.poll_interval;
    let mut unreachable_since: Option<Instant> = None;
    let info = loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = ctx.cancel.cancelled() => {
                stop(&api, &job_id, &ctx.log).await;
                copy_logs(&api, &job_id, &dir, &ctx.log).await;
                return Err(OperatorError::Cancelled);
            }
        }
        let id = job_id.clone();
        match call(&api, move |api| api.job(&id)).await {
            Ok(Some(info)) => {
                unreachable_since = None;
                if let Some(node) = &info.driver_node_id {
                    set(placement, |p| p.node = Some(node.clone()));
                }
                if info.is_terminal() {
                    break info;
                }
            }
            Ok(None) => {
                return Err(OperatorError::Failed(format!(
                    "the Ray head at {address} no longer knows job {job_id} (was the cluster restarted?)"
                )));
            }
            Err(error @ ApiError::Unreachable { .. }) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= LOST_AFTER {
                    return Err(OperatorError::Failed(format!(
                        "{error} (lost while job {job_id} ran)"
                    )));
                }
            }
            Err(error) => return Err(failed(error)),
        }
    };
    copy_logs(&api, &job_id, &dir, &ctx.log).await;
    finish(&job_id, &dir, &info)
}

/// Writes the attempt's context and submits its job, unless the head
/// already has a job with its submission id (the engine died after
/// submitting it): then that job is the attempt's.
async fn submit(
    api: &JobsApi,
    target: &RemoteTarget,
    ctx: &Context,
    log_limit: u64,
) -> Result<(String, PathBuf), OperatorError> {
    let job_id = submission_id(&ctx.run_id, &ctx.task_id, ctx.attempt);
    let dir = absolute(&attempt_dir(
        &ctx.state_dir,
        &ctx.run_id,
        &ctx.task_id,
        ctx.attempt,
    ));
    let failed = |error: ApiError| OperatorError::Failed(error.to_string());
    let id = job_id.clone();
    if call(api, move |api| api.job(&id))
        .await
        .map_err(failed)?
        .is_some()
    {
        ctx.log
            .line(format_args!("dag: Ray job {job_id} exists; following it"));
        return Ok((job_id, dir));
    }
    let task = RemoteTask {
        format: FORMAT,
        operator: target.operator.clone(),
        dag: ctx.dag.clone(),
        run_id: ctx.run_id.clone(),
        task_id: ctx.task_id.clone(),
        attempt: ctx.attempt,
        logical_date: ctx.logical_date.clone(),
        params: ctx.params.clone(),
        inputs: absolute_all(&ctx.inputs),
        outputs: absolute_all(&ctx.outputs),
        workdir: absolute(&ctx.workdir),
        state_dir: absolute(&ctx.state_dir),
        log_path: dir.join("task.log"),
        log_limit,
        outcome_path: dir.join("outcome.json"),
    };
    let context_path = dir.join("context.json");
    // A leftover outcome of an earlier try of this very attempt would be
    // taken for this one's.
    let _ = std::fs::remove_file(&task.outcome_path);
    write_json(&context_path, &task).map_err(OperatorError::Failed)?;
    let binary = match &target.spec.dag_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|error| {
            OperatorError::Failed(format!("cannot find the running `dag` binary: {error}"))
        })?,
    };
    let request = job_request(&target.spec, ctx, &job_id, &binary, &context_path);
    ctx.log.line(format_args!(
        "dag: submitting Ray job {job_id} to {}",
        api.address()
    ));
    match call(api, move |api| api.submit(&request)).await {
        Ok(()) => Ok((job_id, dir)),
        // Submitted by someone else between the check and now.
        Err(ApiError::Refused { body, .. }) if body.contains("already exists") => Ok((job_id, dir)),
        Err(error) => Err(failed(error)),
    }
}

/// The attempt's result from the job's terminal state and the outcome file.
fn finish(job_id: &str, dir: &Path, info: &JobInfo) -> Result<Outcome, OperatorError> {
    let outcome_path = dir.join("outcome.json");
    let result: Option<RemoteResult> = read_json(&outcome_path).map_err(OperatorError::Failed)?;
    match (info.status.as_str(), result) {
        ("SUCCEEDED", Some(result)) => result.into_outcome().map_err(OperatorError::Failed),
        ("SUCCEEDED", None) => Err(OperatorError::Failed(format!(
            "Ray job {job_id} succeeded but left no outcome at `{}`: do the workers share this filesystem?",
            outcome_path.display()
        ))),
        (
            _,
            Some(RemoteResult {
                error: Some(error), ..
            }),
        ) => Err(OperatorError::Failed(error)),
        ("STOPPED", _) => Err(OperatorError::Failed(format!(
            "Ray job {job_id} was stopped from outside `dag`"
        ))),
        (status, _) => Err(OperatorError::Failed(format!(
            "Ray job {job_id} ended {status}{}{}",
            info.driver_exit_code
                .map(|code| format!(" with exit code {code}"))
                .unwrap_or_default(),
            info.message
                .as_deref()
                .and_then(|m| m.trim().lines().next())
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        ))),
    }
}

/// Stops the job and waits, briefly, until the head says it ended.
async fn stop(api: &JobsApi, job_id: &str, log: &LogSink) {
    let id = job_id.to_string();
    if let Err(error) = call(api, move |api| api.stop(&id)).await {
        log.line(format_args!(
            "dag: stopping Ray job {job_id} failed: {error}"
        ));
        return;
    }
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        let id = job_id.to_string();
        match call(api, move |api| api.job(&id)).await {
            Ok(Some(info)) if info.is_terminal() => {
                log.line(format_args!(
                    "dag: Ray job {job_id} stopped ({})",
                    info.status
                ));
                return;
            }
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => return,
        }
    }
    log.line(format_args!(
        "dag: Ray job {job_id} had not stopped {}s after it was asked to",
        STOP_WAIT.as_secs()
    ));
}

/// Copies the operator's log (`task.log`, already bounded) and then the
/// job's driver output (up to [`MAX_DRIVER_LOG`]) into the attempt's log.
async fn copy_logs(api: &JobsApi, job_id: &str, dir: &Path, log: &LogSink) {
    let task_log = dir.join("task.log");
    let sink = log.clone();
    let _ = tokio::task::spawn_blocking(move || copy_file(&task_log, &sink)).await;
    let id = job_id.to_string();
    match call(api, move |api| api.logs(&id, MAX_DRIVER_LOG)).await {
        Ok(text) if text.trim().is_empty() => {}
        Ok(text) => {
            log.line(format_args!("--- Ray job {job_id}: driver output ---"));
            log.write(text.as_bytes());
            if !text.ends_with('\n') {
                log.line("");
            }
        }
        Err(error) => log.line(format_args!(
            "dag: no driver output of Ray job {job_id}: {error}"
        )),
    }
}

/// Streams a file into the log in chunks: never the whole file in memory.
fn copy_file(path: &Path, log: &LogSink) {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let mut buffer = vec![0u8; 64 << 10];
    while let Ok(n) = file.read(&mut buffer) {
        if n == 0 {
            break;
        }
        log.write(&buffer[..n]);
    }
}

/// Runs one blocking API call off the async runtime.
async fn call<T: Send + 'static>(
    api: &JobsApi,
    f: impl FnOnce(&JobsApi) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let api = api.clone();
    let address = api.address().to_string();
    tokio::task::spawn_blocking(move || f(&api))
        .await
        .unwrap_or_else(|join| {
            Err(ApiError::Unreachable {
                address,
                detail: join.to_string(),
            })
        })
}

fn set(placement: &Mutex<Placement>, change: impl FnOnce(&mut Placement)) {
    change(&mut placement.lock().unwrap_or_else(PoisonError::into_inner));
}
