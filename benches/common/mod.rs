//! What the benchmarks share: running a DAG through the library with a fresh
//! store, and reporting timings.

#![allow(dead_code, reason = "each bench uses a different subset")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dag::execute::{Engine, RunOutcome, RunRequest, execute_run};
use dag::record::Recorder;
use dag_operators::Registry;
use dag_state::{RunStatus, Store, TaskRecord, Trigger};

/// Options of one benchmark run.
#[derive(Default)]
pub struct RunOptions {
    pub params: BTreeMap<String, serde_json::Value>,
    pub only: Vec<String>,
    pub force: bool,
}

/// Runs `dag` with `workdir` as the project root and `workdir/.dag` as the
/// state dir; returns the wall time, the outcome and the task records.
pub fn run_dag(
    runtime: &tokio::runtime::Runtime,
    dag: &Arc<dag::model::Dag>,
    registry: &Arc<Registry>,
    workdir: &Path,
    options: RunOptions,
) -> (Duration, RunOutcome, Vec<TaskRecord>) {
    let state_dir = workdir.join(".dag");
    let (store, _) = Store::open(&state_dir.join("db")).expect("open store");
    let store = Arc::new(store);
    let recorder = Recorder::spawn(Arc::clone(&store), None);
    let engine = Engine {
        registry: Arc::clone(registry),
        store: Arc::clone(&store),
        recorder: recorder.handle(),
        workdir: workdir.to_path_buf(),
        state_dir,
        log_limit: dag_operators::DEFAULT_LOG_LIMIT,
        notifications: Default::default(),
    };
    let request = RunRequest {
        dag: Arc::clone(dag),
        params: options.params,
        only: options.only,
        max_parallel: None,
        force: options.force,
        force_tasks: Vec::new(),
        trigger: Trigger {
            kind: "bench".into(),
            detail: String::new(),
        },
        logical_date: None,
        stop: dag::execute::RunStop::new(),
        run_id: None,
        progress: None,
    };
    let started = Instant::now();
    let outcome = runtime
        .block_on(execute_run(&engine, request))
        .expect("run executes");
    let elapsed = started.elapsed();
    assert_eq!(outcome.status, RunStatus::Succeeded, "benchmark run failed");
    drop(engine);
    recorder.finish().expect("recorder finishes");
    let tasks = store.tasks(&outcome.run_id).expect("read tasks");
    (elapsed, outcome, tasks)
}

pub fn report(name: &str, samples: &mut [Duration], per: Option<(usize, &str)>) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let best = samples[0];
    let per_item = per
        .map(|(n, unit)| {
            format!(
                ", {:.1} µs per {unit}",
                median.as_secs_f64() * 1e6 / n as f64
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<48} median {:>9.1} ms   best {:>9.1} ms{per_item}",
        ms(median),
        ms(best)
    );
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// How long a recorded task took.
pub fn task_duration(tasks: &[TaskRecord], id: &str) -> Duration {
    let task = tasks
        .iter()
        .find(|t| t.task_id == id)
        .expect("task recorded");
    let ms = task
        .finished_at_ms
        .zip(task.started_at_ms)
        .map_or(0, |(f, s)| f - s);
    Duration::from_millis(ms.max(0) as u64)
}
