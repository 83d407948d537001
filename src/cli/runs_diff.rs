//! `dag runs diff <RUN_A> <RUN_B>`: prints [`RunDiff`], what changed between
//! two runs (computed by [`crate::views::run_diff`]).

use dag_state::TaskStatus;
use serde_json::Value;

use super::args::{DiffArgs, Global};
use super::console::{out, outln};
use super::workspace::open_store;
use super::{CliResult, Exit, Failure};
use crate::record::error_chain;
use crate::views::{DiffError, RunDiff, run_diff};
use crate::workspace::resolve_run_ref;

pub fn diff(global: &Global, args: &DiffArgs) -> CliResult {
    let store = open_store(global)?;
    let run_a = resolve_run_ref(&store, &args.run_a).map_err(Failure::invalid)?;
    let run_b = resolve_run_ref(&store, &args.run_b).map_err(Failure::invalid)?;
    let result = run_diff(&store, &run_a, &run_b).map_err(|error| match error {
        DiffError::NoRun(id) => Failure::invalid(format!("no run `{id}`; `dag runs` lists them")),
        DiffError::Store(e) => Failure::internal(error_chain(&e)),
    })?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        out!("{}", render(&result));
    }
    Ok(Exit::Success)
}

fn render(diff: &RunDiff) -> String {
    let word = |s: Option<TaskStatus>| {
        s.and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| "absent".into())
    };
    let show = |v: &Option<Value>| v.as_ref().map_or("(unset)".into(), Value::to_string);
    let short = |d: &Option<String>| {
        d.as_deref()
            .map_or("(none)".into(), |d| d.get(..12).unwrap_or(d).to_string())
    };
    let mut out = format!("{} → {}\n", diff.run_a, diff.run_b);
    if diff.spec_changed {
        out.push_str(&format!(
            "definition changed: {} → {}\n",
            short(&Some(diff.spec_hash_a.clone())),
            short(&Some(diff.spec_hash_b.clone()))
        ));
    }
    if let Some(env) = &diff.env {
        let name = |e: &Option<String>| e.clone().unwrap_or_else(|| "(none)".into());
        out.push_str(&format!(
            "environment: {} → {}\n",
            name(&env.a),
            name(&env.b)
        ));
    }
    for param in &diff.params {
        out.push_str(&format!(
            "param `{}`: {} → {}\n",
            param.name,
            show(&param.a),
            show(&param.b)
        ));
    }
    for task in &diff.tasks {
        out.push_str(&format!("task `{}`\n", task.id));
        if task.status_a != task.status_b {
            out.push_str(&format!(
                "  status {} → {}\n",
                word(task.status_a),
                word(task.status_b)
            ));
        }
        for input in &task.inputs {
            out.push_str(&format!(
                "  input `{}` {} → {}\n",
                input.name,
                short(&input.a),
                short(&input.b)
            ));
        }
        for metric in &task.metrics {
            let value = |v: Option<f64>| v.map_or("(none)".into(), |v| format!("{v:.4}"));
            let delta = metric
                .delta
                .map(|d| format!(" ({d:+.4})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  metric `{}` {} → {}{delta}\n",
                metric.name,
                value(metric.a),
                value(metric.b)
            ));
        }
    }
    if diff.is_empty() {
        out.push_str("no differences\n");
    }
    out
}
