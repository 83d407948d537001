//! Validation and drift throughput on a million rows (release build):
//! `cargo bench --bench data_throughput`.
//!
//! A 1,000,000-row batch is synthesized from the real dataset with
//! `data.synthesize`; then `data.validate` checks it against the lifecycle's
//! own expectations (`dags/expectations/obesity.yaml`) and `monitor.drift`
//! compares it with the raw data, through the public operator API. Reading
//! the Parquet batch is included in each timing.

use std::path::Path;
use std::time::{Duration, Instant};

use dag_operators::data::{Synthesize, Validate};
use dag_operators::monitor::Drift;
use dag_operators::{Context, Operator};
use serde_json::json;

const ROWS: usize = 1_000_000;

fn context(
    dir: &Path,
    params: serde_json::Value,
    inputs: &[(&str, &Path)],
    outputs: &[(&str, &Path)],
) -> Context {
    let mut ctx = Context::detached(dir, params);
    ctx.inputs = inputs
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_path_buf()))
        .collect();
    ctx.outputs = outputs
        .iter()
        .map(|(n, p)| (n.to_string(), p.to_path_buf()))
        .collect();
    ctx
}

fn time(runtime: &tokio::runtime::Runtime, operator: &dyn Operator, ctx: &Context) -> Duration {
    let started = Instant::now();
    if let Err(error) = runtime.block_on(operator.execute(ctx)) {
        panic!(
            "`{}` failed: {}",
            operator.name(),
            dag_operators::error_chain(&error)
        );
    }
    started.elapsed()
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let rate = ROWS as f64 / median.as_secs_f64();
    println!(
        "{name:<44} median {:>7.1} ms   best {:>7.1} ms   {:.2} M rows/s",
        median.as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        rate / 1e6
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = root.join("data/raw/ObesityDataSet.csv");
    let expectations = root.join("dags/expectations/obesity.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let batch = dir.path().join("batch.parquet");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let synthesize = context(
        dir.path(),
        json!({ "rows": ROWS, "seed": 1 }),
        &[("reference", &raw)],
        &[("data", &batch)],
    );
    time(&runtime, &Synthesize, &synthesize);

    let report_path = dir.path().join("validation.json");
    let validate = context(
        dir.path(),
        json!({}),
        &[("data", &batch), ("expectations", &expectations)],
        &[("report", &report_path)],
    );
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| time(&runtime, &Validate, &validate))
        .collect();
    report("data.validate, 1M rows, 23 expectations", &mut samples);

    let drift_path = dir.path().join("drift.json");
    let drift = context(
        dir.path(),
        json!({ "exclude": ["NObeyesdad"] }),
        &[("reference", &raw), ("current", &batch)],
        &[("report", &drift_path)],
    );
    let mut samples: Vec<Duration> = (0..5).map(|_| time(&runtime, &Drift, &drift)).collect();
    report("monitor.drift, 1M rows vs the raw data", &mut samples);
}
