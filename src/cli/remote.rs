//! The client side of every command that goes through a running daemon:
//! `dag trigger`, `dag cancel`, `dag run` (submitted, then followed), and
//! the read-only commands the daemon runs against the store it holds.

use std::time::Duration;

use serde_json::{Value, json};

use super::args::{CancelArgs, GcArgs, Global, LogsArgs, RunArgs, TriggerArgs};
use super::console::errln;
use super::daemon_cmd::running;
use super::progress::{TaskLine, task_line};
use super::workspace::parse_param_overrides;
use super::{CliResult, Exit, Failure, color_enabled};
use crate::control::{ClientError, DaemonClient, path_segment};
use crate::views::RunJson;
use crate::workspace::{LOG_CHUNK, MAX_BACK, pick_run, relative_run};

/// A failed call to the daemon as a CLI failure: refusals are the user's
/// (exit 2), the rest internal (exit 3).
pub fn client_failure(error: ClientError) -> Failure {
    match error {
        ClientError::Refused(message) => Failure::invalid(message),
        ClientError::Failed(message) => Failure::internal(message),
    }
}

/// The running daemon, or a failure saying `what` to do without one.
pub fn require(global: &Global, what: &str) -> Result<DaemonClient, Failure> {
    running(global).ok_or_else(|| {
        Failure::invalid(format!(
            "no daemon is running for `{}`; {what}",
            global.state_dir.display()
        ))
    })
}

pub fn trigger(global: &Global, args: &TriggerArgs) -> CliResult {
    let daemon = require(
        global,
        "start one with `dag daemon`, or run in the foreground with `dag run`",
    )?;
    let params = parse_param_overrides(&args.params)?;
    let accepted = daemon
        .submit(
            &args.dag,
            &params,
            &Value::Null,
            format!("dag trigger {}", args.dag),
        )
        .map_err(client_failure)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&accepted).unwrap_or_default()
        );
    } else {
        println!("{}", describe_accepted(&accepted));
    }
    Ok(Exit::Success)
}

fn describe_accepted(accepted: &Value) -> String {
    let field = |k: &str| {
        accepted
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match field("state").as_str() {
        "started" => format!("run {} started", field("run_id")),
        "queued" => format!(
            "run {} queued (position {})",
            field("run_id"),
            accepted
                .get("position")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        ),
        _ => format!("not started: {}", field("reason")),
    }
}

/// `latest` / `latest~N` through the daemon's run list; a plain id as is.
pub fn resolve_remote(daemon: &DaemonClient, text: &str) -> Result<String, Failure> {
    let Some(back) = relative_run(text) else {
        return Ok(text.to_string());
    };
    if back >= MAX_BACK {
        return Err(Failure::invalid(format!(
            "`{text}` reaches back more than {MAX_BACK} runs"
        )));
    }
    let runs = daemon
        .get_json(&format!("/api/runs?limit={}", back + 1))
        .map_err(client_failure)?;
    let ids: Vec<String> = runs
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["run_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    pick_run(text, &ids).map_err(Failure::invalid)
}

pub fn cancel(global: &Global, args: &CancelArgs) -> CliResult {
    let daemon = require(
        global,
        "a `dag run` in the foreground is cancelled with Ctrl-C",
    )?;
    let run_id = resolve_remote(&daemon, &args.run_id)?;
    let args = &CancelArgs {
        run_id,
        json: args.json,
    };
    let response = daemon.cancel(&args.run_id).map_err(client_failure)?;
    let answer = response.json().unwrap_or(Value::Null);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    }
    match (
        response.status,
        answer.get("result").and_then(Value::as_str),
    ) {
        (200, Some("cancelling")) if !args.json => println!("cancelling run {}", args.run_id),
        (200, _) if !args.json => println!("run {} removed from the queue", args.run_id),
        (200, _) => {}
        (409, _) => {
            return Err(Failure::invalid(format!(
                "run {} already finished ({})",
                args.run_id,
                answer.get("status").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        (404, _) => {
            return Err(Failure::invalid(format!(
                "no run `{}`; `dag runs` lists them",
                args.run_id
            )));
        }
        (status, _) => {
            return Err(Failure::internal(format!(
                "the daemon answered {status}: {}",
                response.text()
            )));
        }
    }
    Ok(Exit::Success)
}

/// `dag logs` through the daemon: the log in pieces of at most 1 MiB,
/// each printed as it arrives; with `--follow`, until the attempt ends.
pub fn remote_logs(daemon: &DaemonClient, args: &LogsArgs) -> CliResult {
    use std::io::Write;
    let run_id = resolve_remote(daemon, &args.run_id)?;
    let base = format!(
        "/api/runs/{}/logs/{}",
        path_segment(&run_id),
        path_segment(&args.task)
    );
    let mut query = String::new();
    if let Some(attempt) = args.attempt {
        query.push_str(&format!("&attempt={attempt}"));
    }
    let mut next: Option<u64> = None;
    let mut stdout = std::io::stdout().lock();
    loop {
        let position = match (next, args.tail) {
            (Some(offset), _) => format!("offset={offset}"),
            (None, Some(lines)) => format!("tail={lines}"),
            (None, None) => "offset=0".to_string(),
        };
        let response = daemon
            .call("GET", &format!("{base}?{position}{query}"), None)
            .map_err(client_failure)?;
        if stdout.write_all(&response.body).is_err() {
            return Ok(Exit::Success);
        }
        let _ = stdout.flush();
        let reached = response
            .header("x-dag-log-next")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if query.is_empty()
            && let Some(attempt) = response.header("x-dag-log-attempt")
        {
            // Stay on this attempt even if a retry starts another.
            query = format!("&attempt={attempt}");
        }
        next = Some(reached);
        let more = response.body.len() as u64 >= LOG_CHUNK;
        let running = response.header("x-dag-log-running") == Some("1");
        if more {
            continue;
        }
        if !(args.follow && running) {
            return Ok(Exit::Success);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `dag gc` through the daemon, which holds the store and the cache.
pub fn remote_gc(daemon: &DaemonClient, args: &GcArgs) -> CliResult {
    let summary = daemon
        .gc(args.keep_runs, args.dry_run)
        .map_err(client_failure)?;
    super::gc_cmd::print_summary(&summary, args.json)
}

/// A read-only command, run by the daemon against its store; its output
/// and diagnostics are printed here, on the streams they were written to.
pub fn remote_command(daemon: &DaemonClient, argv: &[String]) -> CliResult {
    let output = daemon.command(argv).map_err(client_failure)?;
    print!("{}", output.stdout);
    eprint!("{}", output.stderr);
    let exit = Exit::from_code(output.exit);
    if exit == Exit::Success {
        Ok(exit)
    } else {
        Err(Failure::new(exit, output.error))
    }
}

/// `dag run` through the daemon: submit, then follow the run to its end,
/// printing what the foreground run would print. Ctrl-C cancels the run.
/// A run through the daemon uses the environment the daemon was started
/// with; `--env` naming another is refused rather than ignored.
pub fn same_env(daemon: &DaemonClient, global: &Global) -> Result<(), Failure> {
    let Some(asked) = &global.env else {
        return Ok(());
    };
    let status = daemon.get_json("/api/status").map_err(client_failure)?;
    let running = status.get("env").and_then(Value::as_str);
    if running == Some(asked.as_str()) {
        return Ok(());
    }
    let runs_with = running.map_or_else(
        || "no environment".to_string(),
        |e| format!("environment `{e}`"),
    );
    Err(Failure::invalid(format!(
        "the daemon (pid {}) runs DAGs with {runs_with}, so a run through it cannot use `--env {asked}`; restart it with `dag daemon --env {asked}`, or leave `--env` out",
        daemon.info.pid
    )))
}

pub fn remote_run(daemon: &DaemonClient, args: &RunArgs) -> CliResult {
    let params = parse_param_overrides(&args.params)?;
    // A DAG file named by path is sent as the file: the daemon loads it
    // as `dag run` would here (it must be inside the daemon's project).
    let as_path = std::path::Path::new(&args.dag);
    let file = as_path
        .is_file()
        .then(|| std::fs::canonicalize(as_path).ok())
        .flatten();
    let dag = as_path
        .file_stem()
        .filter(|_| file.is_some())
        .map_or_else(|| args.dag.clone(), |s| s.to_string_lossy().into_owned());
    let resume = match &args.resume {
        Some(text) => Some(resolve_remote(daemon, text)?),
        None => None,
    };
    let args = &RunArgs {
        resume,
        ..args.clone()
    };
    let options = json!({
        "only": args.only, "force": args.force, "force_tasks": args.force_tasks,
        "max_parallel": args.max_parallel, "resume": args.resume, "file": file,
    });
    let accepted = daemon
        .submit(
            &dag,
            &params,
            &options,
            match &args.resume {
                Some(earlier) => format!("dag run {} --resume {earlier}", args.dag),
                None => format!("dag run {}", args.dag),
            },
        )
        .map_err(client_failure)?;
    let Some(run_id) = accepted
        .get("run_id")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return Err(Failure::invalid(describe_accepted(&accepted)));
    };
    if !args.json {
        errln!(
            "{} (daemon pid {})",
            describe_accepted(&accepted),
            daemon.info.pid
        );
    }
    let total = accepted
        .get("tasks")
        .and_then(Value::as_u64)
        .map_or(0, |n| n as usize);
    let run = follow(daemon, &run_id, total, args.json)?;
    super::run_cmd::print_result(&run, args.json);
    Ok(super::run_cmd::exit_for(run.status))
}

/// Polls the run until it finishes, printing each task's line as it ends.
/// Ctrl-C asks the daemon to cancel the run and keeps following it.
fn follow(
    daemon: &DaemonClient,
    run_id: &str,
    total: usize,
    quiet: bool,
) -> Result<RunJson, Failure> {
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    {
        let interrupted = std::sync::Arc::clone(&interrupted);
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    let color = color_enabled(&std::io::stdout()) && !quiet;
    let mut printed = std::collections::BTreeSet::new();
    let mut cancel_sent = false;
    let path = format!("/api/runs/{}", path_segment(run_id));
    loop {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) && !cancel_sent {
            eprintln!("interrupted: cancelling run {run_id}");
            let _ = daemon.cancel(run_id);
            cancel_sent = true;
        }
        let response = daemon.request("GET", &path, None).map_err(|error| {
            Failure::internal(format!(
                "lost the daemon while following run {run_id}: {error}; `dag runs show {run_id}` tells how it ended"
            ))
        })?;
        if response.status == 404 {
            continue; // accepted, not yet recorded
        }
        let value = response.json().unwrap_or(Value::Null);
        if value.get("status").and_then(Value::as_str) == Some("queued") {
            continue;
        }
        let run: RunJson = serde_json::from_value(value)
            .map_err(|e| Failure::internal(format!("malformed run from the daemon: {e}")))?;
        if !quiet {
            let total = total.max(run.tasks.len());
            for task in &run.tasks {
                let status = serde_json::to_value(task.status).unwrap_or(Value::Null);
                if matches!(status.as_str(), Some("pending" | "running"))
                    || !printed.insert(task.id.clone())
                {
                    continue;
                }
                println!(
                    "{}",
                    task_line(
                        &TaskLine {
                            id: &task.id,
                            status: task.status,
                            duration_ms: task.duration_ms,
                            reason: task.reason.as_deref(),
                        },
                        printed.len(),
                        total,
                        color,
                    )
                );
            }
        }
        if run.finished_at.is_some() {
            return Ok(run);
        }
    }
}
