//! `dag daemon status` and `dag daemon stop`. (`dag daemon` itself is
//! started by the binary, which wires the daemon's front ends together.)

use std::time::Duration;

use serde_json::{Value, json};

use super::args::Global;
use super::remote::{client_failure, require};
use super::{CliResult, Exit, Failure};
use crate::control::DaemonClient;
use crate::daemon::info;
use crate::execute::humanize_ms;

/// How long a command waits for a daemon that is starting up.
const STARTUP_WAIT: Duration = Duration::from_secs(30);

/// The running daemon for this state directory, if any. A daemon that is
/// starting up (it may already hold the store) is waited for.
pub fn running(global: &Global) -> Option<DaemonClient> {
    if let Some(info) = info::running(&global.state_dir) {
        return Some(DaemonClient::new(info));
    }
    let pid = info::starting(&global.state_dir)?;
    eprintln!("waiting for the daemon (pid {pid}) to start");
    let deadline = std::time::Instant::now() + STARTUP_WAIT;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(info) = info::running(&global.state_dir) {
            return Some(DaemonClient::new(info));
        }
        if info::starting(&global.state_dir).is_none() {
            // It finished starting (or failed to): one last look.
            return info::running(&global.state_dir).map(DaemonClient::new);
        }
    }
    None
}

pub fn status(global: &Global, json: bool) -> CliResult {
    let Some(daemon) = running(global) else {
        if json {
            println!("{}", json!({ "running": false }));
        } else {
            println!("no daemon is running for `{}`", global.state_dir.display());
        }
        return Err(Failure::silent(Exit::TaskFailed));
    };
    let status = daemon.get_json("/api/status").map_err(client_failure)?;
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
    print_status(&daemon, &status);
    Ok(Exit::Success)
}

fn print_status(daemon: &DaemonClient, status: &Value) {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    println!(
        "daemon pid {} at http://{}, up {}, {}",
        daemon.info.pid,
        daemon.info.addr,
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
    let load_errors = status
        .get("load_errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !load_errors.is_empty() {
        println!("files that do not load: {}", load_errors.len());
        for failed in &load_errors {
            println!("  {}\n{}", text(failed, "file"), text(failed, "error"));
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
}

pub fn stop(global: &Global) -> CliResult {
    let daemon = require(global, "nothing to stop")?;
    let pid = libc::pid_t::try_from(daemon.info.pid).map_err(|_| {
        Failure::internal(format!("bad pid {} in the daemon file", daemon.info.pid))
    })?;
    // SAFETY: sends SIGTERM to the pid the daemon recorded, which was just
    // checked to be alive and listening at the recorded address.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(Failure::internal(format!(
            "cannot signal pid {}: {}",
            daemon.info.pid,
            std::io::Error::last_os_error()
        )));
    }
    eprintln!(
        "asked daemon pid {} to stop; waiting for it to drain",
        daemon.info.pid
    );
    while info::pid_alive(daemon.info.pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("daemon stopped");
    Ok(Exit::Success)
}
