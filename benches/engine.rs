//! Engine benchmarks (release build): `cargo bench --bench engine`.
//!
//! - parse + validate + plan of a generated 10,000-task DAG
//! - a full run of a 10,000-task `noop` DAG (100 layers × 100 tasks, each
//!   depending on 3 tasks of the layer before), state recorded in sled
//! - 500 `shell` tasks running `true` with `max_parallel: 8`
//!
//! Each case runs several times; the median and the best are reported.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{RunOptions, report};
use dag::parse::load_dag;
use dag::plan::build_plan;
use dag_operators::Registry;

fn layered_dag(layers: usize, width: usize) -> String {
    let mut text = String::with_capacity(layers * width * 80);
    text.push_str("name: layered\ntasks:\n");
    for layer in 0..layers {
        for i in 0..width {
            let _ = write!(text, "  t{layer}_{i}:\n    operator: noop\n");
            if layer > 0 {
                let up = |k: usize| format!("t{}_{}", layer - 1, (i + k * 37) % width);
                let _ = writeln!(text, "    needs: [{}, {}, {}]", up(0), up(1), up(2));
            }
        }
    }
    text
}

fn shell_dag(n: usize) -> String {
    let mut text = String::from("name: shells\nmax_parallel: 8\ntasks:\n");
    for i in 0..n {
        let _ = write!(
            text,
            "  s{i}:\n    operator: shell\n    params: {{ argv: [\"true\"] }}\n"
        );
    }
    text
}

fn load(text: &str, registry: &Registry) -> dag::model::Dag {
    let owned = text.to_string();
    load_dag(
        Path::new("bench.yaml"),
        &mut |_| Ok(owned.clone()),
        registry,
    )
    .unwrap_or_else(|diagnostics| {
        panic!("generated DAG is invalid: {}", diagnostics[0].render(false))
    })
}

fn run_once(
    runtime: &tokio::runtime::Runtime,
    dag: &Arc<dag::model::Dag>,
    registry: &Arc<Registry>,
) -> Duration {
    let workdir = tempfile::tempdir().expect("temp project dir");
    common::run_dag(
        runtime,
        dag,
        registry,
        workdir.path(),
        RunOptions::default(),
    )
    .0
}

fn main() {
    let registry = Arc::new(dag::ops::registry());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let text = layered_dag(100, 100);
    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            let started = Instant::now();
            let dag = load(&text, &registry);
            let plan = build_plan(&dag, &dag.params).expect("acyclic");
            assert_eq!(plan.levels.len(), 100);
            started.elapsed()
        })
        .collect();
    report(
        "parse + validate + plan, 10,000 tasks",
        &mut samples,
        Some((10_000, "task")),
    );

    let dag = Arc::new(load(&text, &registry));
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| run_once(&runtime, &dag, &registry))
        .collect();
    report(
        "run 10,000 noop tasks (100 x 100), recorded",
        &mut samples,
        Some((10_000, "task")),
    );

    let dag = Arc::new(load(&shell_dag(500), &registry));
    let mut samples: Vec<Duration> = (0..3)
        .map(|_| run_once(&runtime, &dag, &registry))
        .collect();
    report(
        "run 500 shell `true` tasks, max_parallel 8",
        &mut samples,
        Some((500, "task")),
    );
}
