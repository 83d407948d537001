//! `dag run`.

use std::io::IsTerminal;
use std::sync::Arc;

use dag_state::{RunStatus, Trigger};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::args::{Global, RunArgs};
use super::output::run_json;
use super::progress::{Mode, Progress, ProgressMap};
use super::workspace::{load, open_store, parse_param_overrides};
use super::{CliResult, Exit, Failure, color_enabled};
use crate::execute::{
    Engine, ExecuteError, Resume, RunRequest, execute_resumed, execute_run, humanize_ms,
};
use crate::record::{Recorder, error_chain};

pub fn run(global: &Global, args: &RunArgs) -> CliResult {
    if args.dry_run {
        return super::why::why(
            global,
            &super::why::WhyArgs {
                dag: &args.dag,
                params: &args.params,
                only: &args.only,
                force: args.force,
                force_tasks: &args.force_tasks,
                json: args.json,
            },
        );
    }
    let registry = Arc::new(crate::ops::registry());
    let dag = load(global, &args.dag, &registry)?;
    let mut params = parse_param_overrides(&args.params)?;
    let store = open_store(global)?;
    let resume = match &args.resume {
        Some(run_id) => {
            let resume = resumable(&store, &dag, run_id)?;
            params = resume.1;
            Some(resume.0)
        }
        None => None,
    };
    let workdir = std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;

    let (observer, batches) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Recorder::spawn(Arc::clone(&store), Some(observer));
    let engine = Engine {
        registry,
        store: Arc::clone(&store),
        recorder: recorder.handle(),
        workdir,
        state_dir: global.state_dir.clone(),
    };
    let stdout_tty = std::io::stdout().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let mode = match (args.json, stdout_tty, stderr_tty) {
        (false, true, _) | (true, _, true) => Mode::Live,
        (false, false, _) => Mode::Plain,
        (true, _, false) => Mode::Silent,
    };
    let reports: ProgressMap = Arc::default();
    let progress = Progress {
        mode,
        total: if args.only.is_empty() {
            dag.tasks.len()
        } else {
            args.only.len()
        },
        color: color_enabled(&std::io::stdout()) && !args.json,
        to_stderr: args.json,
        reports: Arc::clone(&reports),
    };
    let cancel = CancellationToken::new();
    let request = RunRequest {
        dag: Arc::clone(&dag),
        params,
        only: args.only.clone(),
        max_parallel: args.max_parallel,
        force: args.force,
        force_tasks: args.force_tasks.clone(),
        trigger: match &resume {
            Some(resume) => Trigger {
                kind: "resume".into(),
                detail: format!("dag run {} --resume {}", args.dag, resume.run_id),
            },
            None => Trigger {
                kind: "cli".into(),
                detail: format!("dag run {}", args.dag),
            },
        },
        logical_date: None,
        cancel: cancel.clone(),
        progress: Some(Arc::new(move |task: &str, done, total, what: &str| {
            if let Ok(mut map) = reports.lock() {
                map.insert(task.to_string(), (done, total, what.to_string()));
            }
        })),
    };

    let outcome = runtime.block_on(async {
        let display = tokio::spawn(progress.run(batches));
        // Registered here, before any task starts: a signal that arrives
        // before a lazily registered handler would kill the process outright.
        let signals = [SignalKind::interrupt(), SignalKind::terminate()].map(signal);
        for mut stream in signals.into_iter().flatten() {
            let interrupt = cancel.clone();
            tokio::spawn(async move {
                if stream.recv().await.is_some() {
                    tracing::warn!("interrupted: cancelling running tasks");
                    interrupt.cancel();
                }
            });
        }
        let outcome = match resume {
            Some(resume) => execute_resumed(&engine, request, resume).await,
            None => execute_run(&engine, request).await,
        };
        drop(engine);
        let finished = tokio::task::spawn_blocking(move || recorder.finish()).await;
        let _ = display.await;
        match finished {
            Ok(Ok(())) => outcome,
            Ok(Err(error)) => Err(ExecuteError::Record(error)),
            Err(join) => Err(ExecuteError::Record(crate::record::RecordError::Commit(
                join.to_string(),
            ))),
        }
    });
    runtime.shutdown_background();
    let outcome = outcome.map_err(|error| match error {
        ExecuteError::Record(_) => Failure::internal(error_chain(&error)),
        other => Failure::invalid(error_chain(&other)),
    })?;

    let run = store
        .run(&outcome.run_id)
        .map_err(|e| Failure::internal(error_chain(&e)))?
        .ok_or_else(|| Failure::internal(format!("run `{}` was not recorded", outcome.run_id)))?;
    let order: Vec<String> = dag.tasks.keys().cloned().collect();
    let json =
        run_json(&store, &run, Some(&order)).map_err(|e| Failure::internal(error_chain(&e)))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        let counts = json.tasks.iter().fold(
            std::collections::BTreeMap::<String, usize>::new(),
            |mut m, t| {
                *m.entry(
                    serde_json::to_value(t.status)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                )
                .or_default() += 1;
                m
            },
        );
        let counts: Vec<String> = counts
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        let status = serde_json::to_value(run.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        println!(
            "\nrun {} {status} in {} ({})",
            run.run_id,
            humanize_ms(json.duration_ms.unwrap_or(0)),
            counts.join(", ")
        );
        for (task, summary) in &outcome.summaries {
            println!("  {task}: {summary}");
        }
        if run.status != RunStatus::Succeeded {
            println!("details: dag runs show {}", run.run_id);
        }
    }
    Ok(match run.status {
        RunStatus::Succeeded => Exit::Success,
        RunStatus::Interrupted | RunStatus::Cancelled => Exit::Interrupted,
        _ => Exit::TaskFailed,
    })
}

/// The earlier run to resume and its params, or why it cannot be resumed:
/// it does not exist, belongs to another DAG, or was made from a different
/// definition of this one.
fn resumable(
    store: &dag_state::Store,
    dag: &crate::model::Dag,
    run_id: &str,
) -> Result<
    (
        Resume,
        std::collections::BTreeMap<String, serde_json::Value>,
    ),
    Failure,
> {
    let run = store
        .run(run_id)
        .map_err(|e| Failure::internal(error_chain(&e)))?
        .ok_or_else(|| Failure::invalid(format!("no run `{run_id}`; `dag runs` lists them")))?;
    if run.dag != dag.name {
        return Err(Failure::invalid(format!(
            "run `{run_id}` is a run of `{}`, not `{}`; resume it with `dag run {} --resume {run_id}`",
            run.dag, dag.name, run.dag
        )));
    }
    let now = dag.spec_hash();
    if run.spec_hash != now {
        return Err(Failure::invalid(format!(
            "`{}` changed since run `{run_id}` (spec hash {} then, {} now); \
             resuming would mix two definitions: start a fresh run with `dag run {}`",
            dag.name,
            short(&run.spec_hash),
            short(&now),
            dag.name
        )));
    }
    let tasks = store
        .tasks(run_id)
        .map_err(|e| Failure::internal(error_chain(&e)))?;
    let resume = Resume {
        run_id: run_id.to_string(),
        tasks,
    };
    Ok((resume, run.params))
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
