//! `dag run`.

use std::io::IsTerminal;
use std::sync::Arc;

use dag_operators::Registry;
use dag_state::{RunStatus, Trigger};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::args::{Global, RunArgs};
use super::output::run_json;
use super::progress::{Mode, Progress, ProgressMap};
use super::workspace::{load, open_store, parse_param_overrides};
use super::{CliResult, Exit, Failure, color_enabled};
use crate::execute::{Engine, ExecuteError, RunRequest, execute_run, humanize_ms};
use crate::record::{Recorder, error_chain};

pub fn run(global: &Global, args: &RunArgs) -> CliResult {
    let registry = Arc::new(Registry::builtin());
    let dag = load(global, &args.dag, &registry)?;
    let params = parse_param_overrides(&args.params)?;
    let store = open_store(global)?;
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
        trigger: Trigger {
            kind: "cli".into(),
            detail: format!("dag run {}", args.dag),
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
        let outcome = execute_run(&engine, request).await;
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
