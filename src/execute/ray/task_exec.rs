//! `dag task-exec CONTEXT.json`: runs exactly one task attempt from a
//! context file that the engine wrote ([`RemoteTask`]), through the same
//! operator registry as a local run, and writes its [`RemoteResult`] to the
//! path the context names. This is what a Ray job's entrypoint runs; it
//! never opens the state store (the engine that submitted the job holds it).
//!
//! SIGTERM (Ray stopping the job) cancels the operator, which stops what it
//! started; the result then says `cancelled`.

use std::path::Path;

use dag_operators::process_tree::store_tag;
use dag_operators::{Context, LogSink, ProgressSink, Registry};
use tokio_util::sync::CancellationToken;

use super::remote_task::{FORMAT, RemoteResult, RemoteTask, read_json, write_json};

/// Runs the attempt described by `context_path`. `Ok(true)` when the
/// operator succeeded, `Ok(false)` when it failed (the result file says
/// why); `Err` when nothing could be run or recorded.
pub async fn task_exec(context_path: &Path, registry: &Registry) -> Result<bool, String> {
    let task: RemoteTask = read_json(context_path)?
        .ok_or_else(|| format!("no task context at `{}`", context_path.display()))?;
    if task.format != FORMAT {
        return Err(format!(
            "`{}` has format {}, this `dag` reads format {FORMAT}: run the same `dag` version on the workers",
            context_path.display(),
            task.format
        ));
    }
    let operator = registry
        .get(&task.operator)
        .cloned()
        .ok_or_else(|| format!("unknown operator `{}`", task.operator))?;
    std::env::set_current_dir(&task.workdir).map_err(|error| {
        format!(
            "cannot enter the project directory `{}` on this worker: {error} (do the workers share the engine's filesystem?)",
            task.workdir.display()
        )
    })?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            on_signal.cancel();
        }
    });
    let log = LogSink::with_limit(task.log_path.clone(), task.log_limit);
    // Processes of this attempt carry their own tag, so that the engine's
    // store, opened on the same machine, does not take them for orphans of
    // its own and kill them.
    let tag = format!(
        "remote-{}/{}/{}/{}",
        store_tag(&task.state_dir),
        task.run_id,
        task.task_id,
        task.attempt
    );
    let context = Context {
        dag: task.dag.clone(),
        run_id: task.run_id.clone(),
        task_id: task.task_id.clone(),
        attempt: task.attempt,
        logical_date: task.logical_date.clone(),
        params: task.params.clone(),
        inputs: task.inputs.clone(),
        outputs: task.outputs.clone(),
        workdir: task.workdir.clone(),
        state_dir: task.state_dir.clone(),
        log: log.clone(),
        progress: ProgressSink::discard(),
        cancel: cancel.clone(),
        process_tag: Some(tag),
    };
    for path in task.outputs.values() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("cannot create `{}`: {error}", parent.display()))?;
        }
    }
    let result = operator.execute(&context).await;
    if let Err(error) = &result {
        log.line(format_args!(
            "dag task-exec: {} failed: {}",
            task.task_id,
            dag_operators::error_chain(error)
        ));
    }
    log.finish();
    let remote = RemoteResult::from_operator(result);
    let succeeded = remote.error.is_none();
    write_json(&task.outcome_path, &remote)?;
    Ok(succeeded)
}
