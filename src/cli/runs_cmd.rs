//! `dag runs`, `dag runs show`, `dag logs`.

use super::args::{Global, LogsArgs, RunsArgs, RunsCommand, ShowArgs};
use super::console::outln;
use super::workspace::open_store;
use super::{CliResult, Exit, Failure};
use crate::execute::humanize_ms;
use crate::record::error_chain;
use crate::views::{RunListJson, run_json};
use crate::workspace::{LogError, copy_from, find_attempt_log, resolve_run_ref, tail_offset};

pub fn runs(global: &Global, args: &RunsArgs) -> CliResult {
    if let Some(RunsCommand::Show(show_args)) = &args.command {
        return show(global, show_args);
    }
    if let Some(RunsCommand::Diff(diff_args)) = &args.command {
        return super::runs_diff::diff(global, diff_args);
    }
    let store = open_store(global)?;
    let runs = store
        .runs(args.dag.as_deref(), args.limit)
        .map_err(|e| Failure::internal(error_chain(&e)))?;
    if args.json {
        let rows: Vec<RunListJson> = runs.iter().map(RunListJson::from).collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    if runs.is_empty() {
        outln!("no runs yet");
    }
    for run in &runs {
        let row = RunListJson::from(run);
        let status = serde_json::to_value(row.status)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let duration = run
            .finished_at_ms
            .map(|f| humanize_ms(f - run.started_at_ms))
            .unwrap_or_else(|| "-".into());
        outln!(
            "{}  {:<22} {:<12} {:>8}  {}  ({})",
            row.run_id,
            row.dag,
            status,
            duration,
            row.started_at,
            row.trigger
        );
    }
    Ok(Exit::Success)
}

fn show(global: &Global, args: &ShowArgs) -> CliResult {
    let store = open_store(global)?;
    let run_id = resolve_run_ref(&store, &args.run_id).map_err(Failure::invalid)?;
    let run = store
        .run(&run_id)
        .map_err(|e| Failure::internal(error_chain(&e)))?
        .ok_or_else(|| {
            Failure::invalid(format!("no run `{}`; `dag runs` lists them", args.run_id))
        })?;
    let json = run_json(&store, &run, None).map_err(|e| Failure::internal(error_chain(&e)))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    let status = |v: &dyn erased::AsStatus| v.word();
    outln!("run       {}", json.run_id);
    outln!("dag       {}", json.dag);
    outln!("status    {}", status(&json.status));
    outln!("trigger   {} ({})", json.trigger.kind, json.trigger.detail);
    if let Some(resumed_from) = &json.resumed_from {
        outln!("resumed   from run {resumed_from}");
    }
    if let Some(env) = &json.env {
        outln!("env       {env}");
    }
    if let Some(reason) = ended_because(&store, &json.run_id) {
        outln!("reason    {reason}");
    }
    for (task, reason) in killed_stragglers(&store, &json.run_id) {
        outln!("killed    task `{task}`: {reason}");
    }
    outln!("started   {}", json.started_at);
    if let Some(finished) = &json.finished_at {
        outln!(
            "finished  {finished} ({})",
            humanize_ms(json.duration_ms.unwrap_or(0))
        );
    }
    if !json.params.is_empty() {
        let params: Vec<String> = json
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        outln!("params    {}", params.join(" "));
    }
    print_notifications(&json.notifications);
    for expansion in &json.expansions {
        let shown: Vec<&str> = expansion
            .instances
            .iter()
            .take(3)
            .map(String::as_str)
            .collect();
        let more = expansion.instances.len().saturating_sub(shown.len());
        let list = match (shown.is_empty(), more) {
            (true, _) => "no instances".to_string(),
            (false, 0) => shown.join(", "),
            (false, more) => format!("{}, +{more} more", shown.join(", ")),
        };
        outln!(
            "expanded  {} over `{}`: {list}",
            expansion.task,
            expansion.from
        );
    }
    outln!("tasks");
    for task in &json.tasks {
        let duration = task.duration_ms.map(humanize_ms).unwrap_or_default();
        let metrics: Vec<String> = task
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", trim_float(*v)))
            .collect();
        let metrics = if metrics.is_empty() {
            String::new()
        } else {
            format!("  [{}]", metrics.join(" "))
        };
        let reason = task
            .reason
            .as_deref()
            .map(|r| format!("  {r}"))
            .unwrap_or_default();
        outln!(
            "  {:<24} {:<16} {:>7} x{}{metrics}{reason}",
            task.id,
            status(&task.status),
            duration,
            task.attempts
        );
        for placed in &task.placements {
            let p = &placed.placement;
            let node = p
                .node
                .as_deref()
                .map(|n| format!(", node {}", n.chars().take(12).collect::<String>()))
                .unwrap_or_default();
            let attached = if p.attached { ", taken over" } else { "" };
            outln!(
                "    attempt {} on `{}` ({} job {}{node}{attached})",
                placed.attempt,
                p.executor,
                p.kind,
                p.job_id.as_deref().unwrap_or("-"),
            );
        }
    }
    Ok(Exit::Success)
}

fn print_notifications(notifications: &[crate::views::NotificationJson]) {
    for n in notifications {
        let about = n
            .task
            .as_deref()
            .map(|t| format!(" of `{t}`"))
            .unwrap_or_default();
        let outcome = match (&n.error, n.delivered) {
            (_, true) => format!(
                "delivered ({} tr{})",
                n.tries,
                if n.tries == 1 { "y" } else { "ies" }
            ),
            (Some(error), false) => format!("NOT delivered after {} tries: {error}", n.tries),
            (None, false) => "NOT delivered".to_string(),
        };
        outln!("notified  {}{about} → {}: {outcome}", n.event, n.target);
    }
}

/// Why a run ended without running: the reason of its `run_dropped` (a
/// queued run that never started) or `run_interrupted` event.
fn ended_because(store: &dag_state::Store, run_id: &str) -> Option<String> {
    let events = store.events(run_id).ok()?;
    events
        .iter()
        .rev()
        .find(|e| matches!(e.kind.as_str(), "run_dropped" | "run_interrupted"))
        .and_then(|e| e.detail.get("reason")?.as_str().map(String::from))
}

/// Task processes that outlived the engine running them, found and killed
/// when the store was next opened: `(task, why)`.
fn killed_stragglers(store: &dag_state::Store, run_id: &str) -> Vec<(String, String)> {
    store
        .events(run_id)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == "task_processes_killed")
        .filter_map(|e| {
            let reason = e
                .detail
                .get("reason")?
                .as_str()?
                .replace("this attempt", "it");
            Some((
                e.task_id?,
                format!("processes outlived the engine: {reason}"),
            ))
        })
        .collect()
}

fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

/// `dag logs` without a daemon: nothing else can be writing (this process
/// holds the store), so the log is printed as it is, streamed.
pub fn logs(global: &Global, args: &LogsArgs) -> CliResult {
    let store = open_store(global)?;
    let run_id = resolve_run_ref(&store, &args.run_id).map_err(Failure::invalid)?;
    let log = find_attempt_log(&store, &run_id, &args.task, args.attempt).map_err(log_failure)?;
    let Some(path) = &log.path else {
        return Ok(Exit::Success);
    };
    let offset = match args.tail {
        Some(lines) => tail_offset(path, lines),
        None => Ok(0),
    };
    let mut stdout = std::io::stdout().lock();
    match offset.and_then(|offset| copy_from(path, offset, &mut stdout)) {
        Ok(_) => Ok(Exit::Success),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("(attempt {} wrote no output)", log.attempt);
            Ok(Exit::Success)
        }
        Err(error) => Err(Failure::internal(format!(
            "cannot read `{}`: {error}",
            path.display()
        ))),
    }
}

pub fn log_failure(error: LogError) -> Failure {
    match error {
        LogError::Store(error) => Failure::internal(error_chain(&error)),
        other => Failure::invalid(other.to_string()),
    }
}

mod erased {
    /// Status enums print as their snake_case serde names.
    pub trait AsStatus {
        fn word(&self) -> String;
    }

    impl<T: serde::Serialize> AsStatus for T {
        fn word(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        }
    }
}
