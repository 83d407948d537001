//! `dag daemon`, `dag daemon status|stop`, `dag trigger`, `dag cancel`, and
//! the client side of every command that goes through a running daemon.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::args::{CancelArgs, DaemonArgs, DaemonCommand, Global, RunArgs, TriggerArgs};
use super::output::RunJson;
use super::progress::{TaskLine, task_line};
use super::workspace::parse_param_overrides;
use super::{CliResult, CommandOutput, Exit, Failure, color_enabled};
use crate::client::{self, Response};
use crate::daemon::info::{self, DaemonInfo, TOKEN_VAR};
use crate::daemon::server::{DaemonConfig, DaemonError};
use crate::execute::humanize_ms;
use crate::record::error_chain;

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub fn daemon(global: &Global, args: &DaemonArgs) -> CliResult {
    match &args.command {
        Some(DaemonCommand::Status(flag)) => status(global, flag.json),
        Some(DaemonCommand::Stop) => stop(global),
        None => start(global, args),
    }
}

fn start(global: &Global, args: &DaemonArgs) -> CliResult {
    let workdir = std::env::current_dir()
        .map_err(|e| Failure::internal(format!("cannot read the current directory: {e}")))?;
    let config = DaemonConfig {
        state_dir: global.state_dir.clone(),
        dags_dir: global.dags.clone(),
        workdir,
        addr: args.addr,
        token: std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()),
        grace: args.grace,
        reload_every: args.reload_every,
        debounce: args.debounce,
        serve: args
            .serve
            .map(|addr| super::serve_cmd::serve_config(global, addr, &args.serving)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(crate::daemon::server::run(config));
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => Ok(Exit::Success),
        Err(error @ (DaemonError::AlreadyRunning { .. } | DaemonError::TokenRequired(_))) => {
            Err(Failure::invalid(error_chain(&error)))
        }
        Err(DaemonError::Serve(error)) => Err(super::serve_cmd::failure(error)),
        Err(DaemonError::Store(dag_state::StateError::Locked { .. })) => {
            Err(Failure::invalid(format!(
                "the state store in `{}` is in use by another process (a `dag run`, or a daemon starting up)",
                global.state_dir.display()
            )))
        }
        Err(error) => Err(Failure::internal(error_chain(&error))),
    }
}

/// The running daemon for this state directory, if any.
pub fn running(global: &Global) -> Option<DaemonInfo> {
    info::running(&global.state_dir)
}

fn token() -> Option<String> {
    std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty())
}

fn call(
    daemon: &DaemonInfo,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Response, Failure> {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
    let response = client::request(
        daemon.addr,
        method,
        path,
        token().as_deref(),
        bytes.as_deref(),
        CALL_TIMEOUT,
    )
    .map_err(|e| {
        Failure::internal(format!(
            "the daemon at {} did not answer: {}",
            daemon.addr,
            error_chain(&e)
        ))
    })?;
    match response.status {
        200..=299 => Ok(response),
        401 => Err(Failure::invalid(format!(
            "the daemon refused the request: set {TOKEN_VAR} to its token"
        ))),
        status => {
            let message = response
                .json()
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| response.text());
            Err(if status >= 500 {
                Failure::internal(message)
            } else {
                Failure::invalid(message)
            })
        }
    }
}

fn require(global: &Global, what: &str) -> Result<DaemonInfo, Failure> {
    running(global).ok_or_else(|| {
        Failure::invalid(format!(
            "no daemon is running for `{}`; {what}",
            global.state_dir.display()
        ))
    })
}

/// Percent-encodes one path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn status(global: &Global, json: bool) -> CliResult {
    let Some(daemon) = running(global) else {
        if json {
            println!("{}", json!({ "running": false }));
        } else {
            println!("no daemon is running for `{}`", global.state_dir.display());
        }
        return Err(Failure::silent(Exit::TaskFailed));
    };
    let status = call(&daemon, "GET", "/api/status", None)?
        .json()
        .map_err(|e| Failure::internal(format!("malformed status from the daemon: {e}")))?;
    if json {
        let mut status = status;
        if let Some(map) = status.as_object_mut() {
            map.insert("running".into(), Value::Bool(true));
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    println!(
        "daemon pid {} at http://{}, up {}, {}",
        daemon.pid,
        daemon.addr,
        humanize_ms(status.get("uptime_ms").and_then(Value::as_i64).unwrap_or(0)),
        if status.get("accepting").and_then(Value::as_bool) == Some(false) {
            "draining"
        } else {
            "accepting runs"
        }
    );
    if let Some(serving) = status.get("serving").filter(|s| !s.is_null()) {
        let version = serving.get("version").and_then(Value::as_u64).map_or_else(
            || "no verified model yet".to_string(),
            |v| format!("version {v}"),
        );
        println!(
            "serving {}@{} at http://{} ({version})",
            text(serving, "model"),
            text(serving, "alias"),
            text(serving, "addr"),
        );
    }
    println!("dags");
    for dag in status
        .get("dags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut triggers = Vec::new();
        if let Some(schedule) = dag.get("schedule").and_then(Value::as_str) {
            let next = text(dag, "next_fire");
            triggers.push(format!(
                "cron `{schedule}` next {}",
                if next.is_empty() { "-" } else { &next }
            ));
        }
        let watch: Vec<&str> = dag
            .get("watch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !watch.is_empty() {
            triggers.push(format!("watch {}", watch.join(" ")));
        }
        println!(
            "  {:<24} {}",
            text(dag, "name"),
            if triggers.is_empty() {
                "on request".to_string()
            } else {
                triggers.join("; ")
            }
        );
        if let Some(error) = dag.get("error").and_then(Value::as_str) {
            println!("    last edit does not load; running the previous version:\n{error}");
        }
    }
    for (key, title) in [("active", "active runs"), ("queued", "queued runs")] {
        let runs = status
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        println!("{title}: {}", runs.len());
        for run in runs {
            let trigger = run.get("trigger").cloned().unwrap_or(Value::Null);
            println!(
                "  {}  {:<24} {} ({})",
                text(&run, "run_id"),
                text(&run, "dag"),
                text(&trigger, "kind"),
                text(&trigger, "detail")
            );
        }
    }
    Ok(Exit::Success)
}

fn stop(global: &Global) -> CliResult {
    let daemon = require(global, "nothing to stop")?;
    let pid = libc::pid_t::try_from(daemon.pid)
        .map_err(|_| Failure::internal(format!("bad pid {} in the daemon file", daemon.pid)))?;
    // SAFETY: sends SIGTERM to the pid the daemon recorded, which was just
    // checked to be alive and listening at the recorded address.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(Failure::internal(format!(
            "cannot signal pid {}: {}",
            daemon.pid,
            std::io::Error::last_os_error()
        )));
    }
    eprintln!(
        "asked daemon pid {} to stop; waiting for it to drain",
        daemon.pid
    );
    while info::pid_alive(daemon.pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("daemon stopped");
    Ok(Exit::Success)
}

pub fn trigger(global: &Global, args: &TriggerArgs) -> CliResult {
    let daemon = require(
        global,
        "start one with `dag daemon`, or run in the foreground with `dag run`",
    )?;
    let params = parse_param_overrides(&args.params)?;
    let accepted = submit(
        &daemon,
        &args.dag,
        &params,
        &Value::Null,
        format!("dag trigger {}", args.dag),
    )?;
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

fn submit(
    daemon: &DaemonInfo,
    dag: &str,
    params: &BTreeMap<String, Value>,
    options: &Value,
    detail: String,
) -> Result<Value, Failure> {
    let mut body = json!({ "dag": dag, "params": params, "detail": detail });
    if !options.is_null() {
        body["options"] = options.clone();
    }
    call(daemon, "POST", "/api/runs", Some(&body))?
        .json()
        .map_err(|e| Failure::internal(format!("malformed answer from the daemon: {e}")))
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

pub fn cancel(global: &Global, args: &CancelArgs) -> CliResult {
    let daemon = require(
        global,
        "a `dag run` in the foreground is cancelled with Ctrl-C",
    )?;
    let path = format!("/api/runs/{}/cancel", segment(&args.run_id));
    let bytes = serde_json::to_vec(&json!({})).unwrap_or_default();
    let response = client::request(
        daemon.addr,
        "POST",
        &path,
        token().as_deref(),
        Some(&bytes),
        CALL_TIMEOUT,
    )
    .map_err(|e| Failure::internal(error_chain(&e)))?;
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

/// A read-only command, run by the daemon against its store.
pub fn remote_command(daemon: &DaemonInfo, argv: &[String]) -> CliResult {
    let output: CommandOutput = call(daemon, "POST", "/api/cli", Some(&json!({ "args": argv })))?
        .json()
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| Failure::internal("malformed answer from the daemon"))?;
    print!("{}", output.stdout);
    let exit = Exit::from_code(output.exit);
    if exit == Exit::Success {
        Ok(exit)
    } else {
        Err(Failure {
            exit,
            message: output.error,
        })
    }
}

/// `dag run` through the daemon: submit, then follow the run to its end,
/// printing what the foreground run would print. Ctrl-C cancels the run.
pub fn remote_run(daemon: &DaemonInfo, args: &RunArgs) -> CliResult {
    let params = parse_param_overrides(&args.params)?;
    let dag = std::path::Path::new(&args.dag)
        .file_stem()
        .filter(|_| std::path::Path::new(&args.dag).is_file())
        .map_or_else(|| args.dag.clone(), |s| s.to_string_lossy().into_owned());
    let options = json!({
        "only": args.only, "force": args.force, "force_tasks": args.force_tasks,
        "max_parallel": args.max_parallel, "resume": args.resume,
    });
    let accepted = submit(
        daemon,
        &dag,
        &params,
        &options,
        match &args.resume {
            Some(earlier) => format!("dag run {} --resume {earlier}", args.dag),
            None => format!("dag run {}", args.dag),
        },
    )?;
    let Some(run_id) = accepted
        .get("run_id")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return Err(Failure::invalid(describe_accepted(&accepted)));
    };
    if !args.json {
        eprintln!(
            "{} (daemon pid {})",
            describe_accepted(&accepted),
            daemon.pid
        );
    }
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
    let color = color_enabled(&std::io::stdout()) && !args.json;
    let mut printed = std::collections::BTreeSet::new();
    let mut cancel_sent = false;
    let path = format!("/api/runs/{}", segment(&run_id));
    let run: RunJson = loop {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) && !cancel_sent {
            eprintln!("interrupted: cancelling run {run_id}");
            let _ = call(
                daemon,
                "POST",
                &format!("/api/runs/{}/cancel", segment(&run_id)),
                Some(&json!({})),
            );
            cancel_sent = true;
        }
        let response = match client::request(
            daemon.addr,
            "GET",
            &path,
            token().as_deref(),
            None,
            CALL_TIMEOUT,
        ) {
            Ok(response) => response,
            Err(error) => {
                return Err(Failure::internal(format!(
                    "lost the daemon while following run {run_id}: {}; `dag runs show {run_id}` tells how it ended",
                    error_chain(&error)
                )));
            }
        };
        if response.status == 404 {
            continue; // accepted, not yet recorded
        }
        let value = response.json().unwrap_or(Value::Null);
        let status = value.get("status").and_then(Value::as_str).unwrap_or("");
        if status == "queued" {
            continue;
        }
        let run: RunJson = serde_json::from_value(value)
            .map_err(|e| Failure::internal(format!("malformed run from the daemon: {e}")))?;
        let total = accepted
            .get("tasks")
            .and_then(Value::as_u64)
            .map_or(0, |n| n as usize)
            .max(run.tasks.len());
        if !args.json {
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
            break run;
        }
    };
    super::run_cmd::print_result(&run, args.json);
    Ok(super::run_cmd::exit_for(run.status))
}
