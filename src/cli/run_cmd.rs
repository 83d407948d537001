//! `dag run`.

use std::io::IsTerminal;
use std::sync::Arc;

use dag_state::{RunStatus, TaskStatus, Trigger};
use tokio::signal::unix::{SignalKind, signal};

use super::args::{Global, RunArgs};
use super::progress::{Mode, Progress, ProgressMap};
use super::workspace::{load, open_store, parse_param_overrides};
use super::{CliResult, Exit, Failure, color_enabled};
use crate::execute::{
    Engine, ExecuteError, Resume, RunRequest, RunStop, execute_resumed, execute_run, humanize_ms,
    prepare_resume,
};
use crate::record::{Recorder, error_chain};
use crate::views::{RunJson, run_json};

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
    let deferred = Arc::new(crate::ops::Deferred::default());
    let registry = Arc::new(crate::ops::registry_with(
        Arc::clone(&deferred) as Arc<dyn crate::ops::Submit>
    ));
    let dag = load(global, &args.dag, &registry)?;
    let mut params = parse_param_overrides(&args.params)?;
    crate::workspace::check_param_types(&dag.params, &params)
        .map_err(|error| Failure::invalid(error.to_string()))?;
    let store = open_store(global)?;
    let resume = match &args.resume {
        Some(run_id) => {
            let run_id =
                crate::workspace::resolve_run_ref(&store, run_id).map_err(Failure::invalid)?;
            let resume = resumable(&store, &dag, &run_id)?;
            let changed = resume.0.changed_tasks();
            if !changed.is_empty() && !global.quiet {
                let names: Vec<String> = changed.iter().map(|t| format!("`{t}`")).collect();
                eprintln!(
                    "`{}` changed since run {run_id}: {} changed or went away; tasks downstream of a changed one run again, the other finished tasks carry over",
                    dag.name,
                    names.join(", ")
                );
            }
            params = resume.1;
            Some(resume.0)
        }
        None => None,
    };
    let trigger = match &resume {
        Some(resume) => Trigger {
            kind: "resume".into(),
            detail: format!("dag run {} --resume {}", args.dag, resume.run_id),
        },
        None => Trigger {
            kind: "cli".into(),
            detail: format!("dag run {}", args.dag),
        },
    };
    let shared = Shared {
        global,
        args,
        registry: &registry,
        store: &store,
    };
    let start = Start {
        trigger,
        logical_date: None,
        resume,
    };
    let (mut exit, first) = run_one(&shared, dag, params, start, &args.only)?;
    let mut triggered = Vec::new();
    // Runs started by `dag.trigger` tasks, in order, each after the last;
    // bounded so that DAGs triggering each other cannot loop forever.
    let mut chained = 0;
    loop {
        let fires = deferred.take();
        if fires.is_empty() || exit == Exit::Interrupted {
            break;
        }
        for fire in fires {
            chained += 1;
            if chained > MAX_CHAINED_RUNS {
                return Err(Failure::invalid(format!(
                    "more than {MAX_CHAINED_RUNS} runs triggered by `dag.trigger` tasks in one `dag run`; \
                     do DAGs trigger each other in a loop?"
                )));
            }
            let dag = load(global, &fire.dag, &registry)?;
            if !args.json {
                println!("\n{} triggered {}", fire.trigger.detail, dag.name);
            }
            let start = Start {
                trigger: fire.trigger,
                logical_date: fire.logical_date,
                resume: None,
            };
            let (next, json) = run_one(&shared, dag, fire.params, start, &[])?;
            if exit == Exit::Success {
                exit = next;
            }
            triggered.push(json);
        }
    }
    if args.json {
        // One JSON document: the run asked for, with the runs its
        // `dag.trigger` tasks started under `triggered`.
        let mut value = serde_json::to_value(&first).unwrap_or_default();
        if !triggered.is_empty()
            && let Some(map) = value.as_object_mut()
        {
            map.insert(
                "triggered".into(),
                serde_json::to_value(&triggered).unwrap_or_default(),
            );
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    }
    Ok(exit)
}

/// Most runs one `dag run` starts through `dag.trigger` tasks.
const MAX_CHAINED_RUNS: usize = 16;

pub(super) struct Shared<'a> {
    pub(super) global: &'a Global,
    pub(super) args: &'a RunArgs,
    pub(super) registry: &'a Arc<dag_operators::Registry>,
    pub(super) store: &'a Arc<dag_state::Store>,
}

/// How one run is started: why, for which logical date, resuming what.
pub(super) struct Start {
    pub(super) trigger: Trigger,
    pub(super) logical_date: Option<String>,
    pub(super) resume: Option<Resume>,
}

/// Runs one DAG to its end in this process, with progress on the terminal.
pub(super) fn run_one(
    shared: &Shared<'_>,
    dag: Arc<crate::model::Dag>,
    params: std::collections::BTreeMap<String, serde_json::Value>,
    start: Start,
    only: &[String],
) -> Result<(Exit, RunJson), Failure> {
    let Shared {
        global,
        args,
        registry,
        store,
    } = *shared;
    let Start {
        trigger,
        logical_date,
        resume,
    } = start;
    // The tasks this run has: a task mapping over a param has one instance
    // per value of this run's (a bad value is reported by the run itself).
    let mut merged = dag.params.clone();
    merged.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
    let tasks_of_run = match crate::parse::mapping::expand_for(&dag, &merged) {
        Ok(Some(expanded)) => expanded.tasks.keys().cloned().collect(),
        _ => dag.tasks.keys().cloned().collect::<Vec<String>>(),
    };
    let registry = Arc::clone(registry);
    let workdir = std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))?;
    // One thread for the scheduler and the tasks' async parts: handing a
    // finished task back across threads cost a chain about 50 µs per hop.
    // Operators' CPU work and file hashing run on the blocking pool, in
    // parallel as before.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;

    let (observer, batches) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Recorder::spawn(Arc::clone(store), Some(observer));
    let engine = Engine {
        registry,
        store: Arc::clone(store),
        recorder: recorder.handle(),
        workdir,
        state_dir: global.state_dir.clone(),
        log_limit: global.task_log_limit,
        notifications: Default::default(),
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
        total: if only.is_empty() {
            tasks_of_run.len()
        } else {
            only.len()
        },
        color: color_enabled(&std::io::stdout()) && !args.json,
        to_stderr: args.json,
        reports: Arc::clone(&reports),
    };
    let stop = RunStop::new();
    let request = RunRequest {
        dag: Arc::clone(&dag),
        params,
        only: only.to_vec(),
        max_parallel: args.max_parallel,
        force: args.force,
        force_tasks: args.force_tasks.clone(),
        trigger,
        logical_date,
        stop: stop.clone(),
        run_id: None,
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
            let stop = stop.clone();
            tokio::spawn(async move {
                if stream.recv().await.is_some() {
                    tracing::warn!("interrupted: cancelling running tasks");
                    stop.interrupt();
                }
            });
        }
        let outcome = match resume {
            Some(resume) => execute_resumed(&engine, request, resume).await,
            None => execute_run(&engine, request).await,
        };
        // Hooks are delivered in the background; the process stays for
        // them (bounded: three tries each), so their outcome is recorded.
        engine
            .notifications
            .wait_idle(std::time::Duration::from_secs(20))
            .await;
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
    let json = run_json(store, &run, Some(&tasks_of_run))
        .map_err(|e| Failure::internal(error_chain(&e)))?;
    if !args.json {
        print_result(&json, false);
    }
    Ok((exit_for(json.status), json))
}

/// The end of `dag run`: the run as JSON, or a summary line, the summaries
/// of the tasks that ran, and where to look when it did not succeed. The
/// same for a run in the foreground and one followed through the daemon.
pub fn print_result(json: &RunJson, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string_pretty(json).unwrap_or_default());
        return;
    }
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for task in &json.tasks {
        *counts.entry(label(&task.status)).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    println!(
        "\nrun {} {} in {} ({})",
        json.run_id,
        label(&json.status),
        humanize_ms(json.duration_ms.unwrap_or(0)),
        counts.join(", ")
    );
    for task in &json.tasks {
        if task.status == TaskStatus::Succeeded
            && let Some(summary) = &task.summary
        {
            println!("  {}: {summary}", task.id);
        }
    }
    if json.status != RunStatus::Succeeded {
        println!("details: dag runs show {}", json.run_id);
    }
}

pub fn exit_for(status: RunStatus) -> Exit {
    match status {
        RunStatus::Succeeded => Exit::Success,
        RunStatus::Interrupted | RunStatus::Cancelled => Exit::Interrupted,
        _ => Exit::TaskFailed,
    }
}

/// The snake_case name a status serializes to.
fn label(status: &impl serde::Serialize) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The earlier run to resume and its params (see [`prepare_resume`]).
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
    prepare_resume(store, dag, run_id).map_err(|error| match error {
        crate::execute::ResumeError::Store(_) => Failure::internal(error_chain(&error)),
        other => Failure::invalid(error_chain(&other)),
    })
}
