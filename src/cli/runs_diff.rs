//! `dag runs diff <RUN_A> <RUN_B>`: what changed between two runs — the
//! definition, params, and per task its status, input digests and metrics.

use std::collections::{BTreeMap, BTreeSet};

use dag_state::{Store, TaskRecord, TaskStatus};
use serde::Serialize;
use serde_json::Value;

use super::args::{DiffArgs, Global};
use super::console::{out, outln};
use super::workspace::open_store;
use super::{CliResult, Exit, Failure};
use crate::record::error_chain;

/// `dag runs diff --json`. Only tasks with a difference are listed.
#[derive(Debug, Serialize)]
pub struct RunDiff {
    pub run_a: String,
    pub run_b: String,
    pub spec_changed: bool,
    pub spec_hash_a: String,
    pub spec_hash_b: String,
    pub params: Vec<Change<Value>>,
    pub tasks: Vec<TaskDiff>,
}

#[derive(Debug, Serialize)]
pub struct Change<T> {
    pub name: String,
    pub a: Option<T>,
    pub b: Option<T>,
}

#[derive(Debug, Serialize)]
pub struct TaskDiff {
    pub id: String,
    pub status_a: Option<TaskStatus>,
    pub status_b: Option<TaskStatus>,
    pub inputs: Vec<Change<String>>,
    pub metrics: Vec<MetricDelta>,
}

#[derive(Debug, Serialize)]
pub struct MetricDelta {
    pub name: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `b − a`, when both exist.
    pub delta: Option<f64>,
}

pub fn diff(global: &Global, args: &DiffArgs) -> CliResult {
    let store = open_store(global)?;
    let result = run_diff(&store, &args.run_a, &args.run_b)?;
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

fn run_diff(store: &Store, a: &str, b: &str) -> Result<RunDiff, Failure> {
    let load = |id: &str| {
        let run = store
            .run(id)
            .map_err(|e| Failure::internal(error_chain(&e)))?
            .ok_or_else(|| Failure::invalid(format!("no run `{id}`; `dag runs` lists them")))?;
        let tasks = store
            .tasks(id)
            .map_err(|e| Failure::internal(error_chain(&e)))?;
        let tasks: BTreeMap<String, TaskRecord> =
            tasks.into_iter().map(|t| (t.task_id.clone(), t)).collect();
        Ok::<_, Failure>((run, tasks))
    };
    let (run_a, tasks_a) = load(a)?;
    let (run_b, tasks_b) = load(b)?;
    let params = changes(&run_a.params, &run_b.params);
    let ids: BTreeSet<&String> = tasks_a.keys().chain(tasks_b.keys()).collect();
    let tasks = ids
        .into_iter()
        .filter_map(|id| task_diff(id, tasks_a.get(id), tasks_b.get(id)))
        .collect();
    Ok(RunDiff {
        run_a: run_a.run_id,
        run_b: run_b.run_id,
        spec_changed: run_a.spec_hash != run_b.spec_hash,
        spec_hash_a: run_a.spec_hash,
        spec_hash_b: run_b.spec_hash,
        params,
        tasks,
    })
}

fn changes<T: Clone + PartialEq>(
    a: &BTreeMap<String, T>,
    b: &BTreeMap<String, T>,
) -> Vec<Change<T>> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|name| a.get(*name) != b.get(*name))
        .map(|name| Change {
            name: name.clone(),
            a: a.get(name).cloned(),
            b: b.get(name).cloned(),
        })
        .collect()
}

fn task_diff(id: &str, a: Option<&TaskRecord>, b: Option<&TaskRecord>) -> Option<TaskDiff> {
    let digests = |t: Option<&TaskRecord>| -> BTreeMap<String, String> {
        t.map(|t| {
            t.inputs
                .iter()
                .map(|i| (i.name.clone(), i.digest.clone()))
                .collect()
        })
        .unwrap_or_default()
    };
    let metrics_of = |t: Option<&TaskRecord>| t.map(|t| t.metrics.clone()).unwrap_or_default();
    let (metrics_a, metrics_b) = (metrics_of(a), metrics_of(b));
    let metrics: Vec<MetricDelta> = changes(&metrics_a, &metrics_b)
        .into_iter()
        .map(|c| MetricDelta {
            delta: c.a.zip(c.b).map(|(a, b)| b - a),
            name: c.name,
            a: c.a,
            b: c.b,
        })
        .collect();
    let diff = TaskDiff {
        id: id.to_string(),
        status_a: a.map(|t| t.status),
        status_b: b.map(|t| t.status),
        inputs: changes(&digests(a), &digests(b)),
        metrics,
    };
    let changed =
        diff.status_a != diff.status_b || !diff.inputs.is_empty() || !diff.metrics.is_empty();
    changed.then_some(diff)
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
    if diff.params.is_empty() && diff.tasks.is_empty() && !diff.spec_changed {
        out.push_str("no differences\n");
    }
    out
}
