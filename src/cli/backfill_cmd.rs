//! `dag backfill DAG --from DATE --to DATE`: runs the DAG for each logical
//! date its schedule has in the range, skipping dates that already have a
//! successful run (unless `--rerun`). Without a daemon the runs go here,
//! one after another; with one, they are submitted and queue under the
//! DAG's `max_active_runs`. Every run is recorded with trigger `backfill`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use dag_state::{RunStatus, Trigger};
use serde::Serialize;
use serde_json::json;

use super::args::{BackfillArgs, Global, RunArgs};
use super::console::outln;
use super::remote::client_failure;
use super::run_cmd::{Shared, Start, run_one};
use super::workspace::{load, open_store, parse_param_overrides};
use super::{CliResult, Exit, Failure};
use crate::control::DaemonClient;
use crate::daemon::cron::next_fire;
use crate::model::{Dag, Schedule};

/// Most logical dates one backfill covers.
pub const MAX_BACKFILL_DATES: usize = 1000;

/// What became of one logical date.
#[derive(Debug, Serialize)]
struct DateOutcome {
    logical_date: String,
    /// `skipped` (already succeeded), `planned` (`--dry-run`), a run's
    /// status, or the daemon's `started` / `queued`.
    status: String,
    run_id: Option<String>,
}

pub fn backfill(global: &Global, args: &BackfillArgs) -> CliResult {
    let (dag, dates) = plan(global, args)?;
    let store = open_store(global)?;
    let done = succeeded_dates(
        store
            .runs(Some(&dag.name), usize::MAX)
            .map_err(|e| Failure::internal(e.to_string()))?
            .into_iter()
            .map(|r| (r.logical_date, r.status == RunStatus::Succeeded, r.run_id)),
    );
    let params = parse_param_overrides(&args.params)?;
    let run_args = RunArgs::for_backfill(&args.dag);
    let registry = Arc::new(crate::ops::registry());
    let shared = Shared {
        global,
        args: &run_args,
        registry: &registry,
        store: &store,
    };
    let mut outcomes = Vec::new();
    let mut exit = Exit::Success;
    for date in dates {
        if let Some(outcome) = skipped(args, &done, &date) {
            outcomes.push(outcome);
            continue;
        }
        if !args.json {
            outln!("backfill {} {date}", dag.name);
        }
        let start = Start {
            trigger: trigger(args),
            logical_date: Some(date.clone()),
            resume: None,
        };
        let (ended, run) = run_one(&shared, Arc::clone(&dag), params.clone(), start, &[])?;
        outcomes.push(DateOutcome {
            logical_date: date,
            status: status_word(run.status),
            run_id: Some(run.run_id),
        });
        if ended == Exit::Interrupted {
            exit = ended;
            break;
        }
        if ended != Exit::Success {
            exit = ended;
        }
    }
    report(args, &outcomes);
    Ok(exit)
}

/// `dag backfill` through a running daemon: each date is submitted, and
/// the daemon's queue keeps `max_active_runs`.
pub fn remote_backfill(global: &Global, daemon: &DaemonClient, args: &BackfillArgs) -> CliResult {
    let (dag, dates) = plan(global, args)?;
    let runs = daemon
        .get_json(&format!(
            "/api/runs?dag={}&limit=10000",
            crate::control::path_segment(&dag.name)
        ))
        .map_err(client_failure)?;
    let done = succeeded_dates(runs.as_array().into_iter().flatten().map(|r| {
        (
            r["logical_date"].as_str().unwrap_or_default().to_string(),
            r["status"] == "succeeded",
            r["run_id"].as_str().unwrap_or_default().to_string(),
        )
    }));
    let params = parse_param_overrides(&args.params)?;
    let mut outcomes = Vec::new();
    for date in dates {
        if let Some(outcome) = skipped(args, &done, &date) {
            outcomes.push(outcome);
            continue;
        }
        let detail = trigger(args).detail;
        let accepted = daemon
            .submit_backfill(&dag.name, &params, &date, detail)
            .map_err(client_failure)?;
        let Some(run_id) = accepted["run_id"].as_str().map(String::from) else {
            return Err(Failure::invalid(format!(
                "the daemon refused {date}: {}",
                accepted["error"].as_str().unwrap_or("no reason given")
            )));
        };
        outcomes.push(DateOutcome {
            logical_date: date,
            status: accepted["state"].as_str().unwrap_or("accepted").to_string(),
            run_id: Some(run_id),
        });
    }
    report(args, &outcomes);
    Ok(Exit::Success)
}

/// The DAG and the logical dates its schedule has in the range.
fn plan(global: &Global, args: &BackfillArgs) -> Result<(Arc<Dag>, Vec<String>), Failure> {
    let registry = Arc::new(crate::ops::registry());
    let dag = load(global, &args.dag, &registry)?;
    let Some(schedule) = &dag.schedule else {
        return Err(Failure::invalid(format!(
            "`{}` has no `schedule`, so it has no logical dates to backfill; use `dag run`",
            dag.name
        )));
    };
    let from = parse_bound(&args.from, schedule, false)?;
    let to = parse_bound(&args.to, schedule, true)?;
    if to < from {
        return Err(Failure::invalid(format!(
            "`--to {}` is before `--from {}`",
            args.to, args.from
        )));
    }
    let dates = dates_between(schedule, from, to)?;
    if dates.is_empty() {
        return Err(Failure::invalid(format!(
            "the schedule `{}` has no fire between {} and {}",
            schedule.expression,
            rfc3339(from),
            rfc3339(to)
        )));
    }
    Ok((dag, dates))
}

/// Fires of `schedule` in `[from, to]`, as RFC 3339 in UTC.
fn dates_between(
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<String>, Failure> {
    let mut dates = Vec::new();
    let mut after = from - chrono::Duration::seconds(1);
    while let Some(fire) = next_fire(schedule, after) {
        if fire > to {
            break;
        }
        if dates.len() == MAX_BACKFILL_DATES {
            return Err(Failure::invalid(format!(
                "the range holds more than {MAX_BACKFILL_DATES} fires of `{}`; backfill it in parts",
                schedule.expression
            )));
        }
        dates.push(rfc3339(fire));
        after = fire;
    }
    Ok(dates)
}

/// A date (`2026-03-01`: that day's start, or its end for `--to`, in the
/// schedule's timezone) or an RFC 3339 instant.
fn parse_bound(text: &str, schedule: &Schedule, end: bool) -> Result<DateTime<Utc>, Failure> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Failure::invalid(format!(
            "`{text}` is not a date (`2026-03-01`) or an RFC 3339 time (`2026-03-01T06:00:00Z`)"
        ))
    })?;
    let wall = if end {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    wall.and_then(|wall| schedule.tz().from_local_datetime(&wall).earliest())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            Failure::invalid(format!(
                "`{text}` does not exist in the schedule's timezone"
            ))
        })
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Logical dates with a successful run, and that run.
fn succeeded_dates(runs: impl Iterator<Item = (String, bool, String)>) -> BTreeMap<String, String> {
    let mut done = BTreeMap::new();
    for (date, succeeded, run_id) in runs {
        if succeeded {
            done.entry(date).or_insert(run_id);
        }
    }
    done
}

fn skipped(
    args: &BackfillArgs,
    done: &BTreeMap<String, String>,
    date: &str,
) -> Option<DateOutcome> {
    if args.dry_run {
        let already = done.get(date).filter(|_| !args.rerun);
        return Some(DateOutcome {
            logical_date: date.to_string(),
            status: if already.is_some() {
                "skipped"
            } else {
                "planned"
            }
            .to_string(),
            run_id: already.cloned(),
        });
    }
    let run_id = done.get(date).filter(|_| !args.rerun)?;
    Some(DateOutcome {
        logical_date: date.to_string(),
        status: "skipped".into(),
        run_id: Some(run_id.clone()),
    })
}

fn trigger(args: &BackfillArgs) -> Trigger {
    Trigger {
        kind: "backfill".into(),
        detail: format!(
            "dag backfill {} --from {} --to {}",
            args.dag, args.from, args.to
        ),
    }
}

fn status_word(status: RunStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn report(args: &BackfillArgs, outcomes: &[DateOutcome]) {
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!(outcomes)).unwrap_or_default()
        );
        return;
    }
    let counts: BTreeSet<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    for outcome in outcomes {
        let about = match (outcome.status.as_str(), &outcome.run_id) {
            ("skipped", Some(run)) => format!("already succeeded in run {run}"),
            (_, Some(run)) => format!("run {run}"),
            _ => String::new(),
        };
        outln!("{}  {:<10} {about}", outcome.logical_date, outcome.status);
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|status| {
            let n = outcomes.iter().filter(|o| o.status == *status).count();
            format!("{n} {status}")
        })
        .collect();
    outln!("{} dates: {}", outcomes.len(), summary.join(", "));
}

impl RunArgs {
    /// The run settings a backfill's runs use: the DAG's own.
    fn for_backfill(dag: &str) -> Self {
        Self {
            dag: dag.to_string(),
            params: Vec::new(),
            only: Vec::new(),
            max_parallel: None,
            force: false,
            force_tasks: Vec::new(),
            dry_run: false,
            resume: None,
            json: true,
        }
    }
}
