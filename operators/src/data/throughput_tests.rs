//! Throughput of `data.validate` and `monitor.drift` on a synthesized
//! one-million-row batch. Ignored by default (timing depends on the build
//! profile and the machine); run with
//! `cargo test -p dag-operators --release throughput -- --ignored --nocapture`.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails at the line of an unexpected error"
)]

use std::path::Path;
use std::time::Instant;

use polars::prelude::*;
use serde_json::json;

use super::rng::SplitMix64;
use super::testing::{context, run};
use crate::table::write_table;

const ROWS: usize = 1_000_000;

fn batch(path: &Path, seed: u64, shift: f64) {
    let mut rng = SplitMix64::new(seed);
    let mut columns = Vec::new();
    for index in 0..8 {
        let values: Vec<f64> = (0..ROWS)
            .map(|_| 50.0 + 10.0 * rng.normal() + shift * f64::from(index == 0))
            .collect();
        columns.push(Column::new(format!("x{index}").into(), values));
    }
    for index in 0..4 {
        let values: Vec<&str> = (0..ROWS)
            .map(|_| ["a", "b", "c", "d", "e"][rng.below(5)])
            .collect();
        columns.push(Column::new(format!("c{index}").into(), values));
    }
    let mut frame = DataFrame::new(ROWS, columns).unwrap();
    write_table(&mut frame, path).unwrap();
}

#[test]
#[ignore = "timing; run explicitly"]
fn throughput_of_validate_and_drift_on_a_million_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, current) = (
        dir.path().join("reference.parquet"),
        dir.path().join("current.parquet"),
    );
    batch(&reference, 1, 0.0);
    batch(&current, 2, 5.0);

    let mut expectations = vec![json!({"kind": "row_count", "min": 1})];
    for index in 0..8 {
        expectations
            .push(json!({"kind": "range", "column": format!("x{index}"), "min": -100, "max": 200}));
        expectations.push(json!({"kind": "not_null", "column": format!("x{index}")}));
    }
    for index in 0..4 {
        expectations.push(json!({"kind": "allowed_values", "column": format!("c{index}"), "values": ["a", "b", "c", "d", "e"]}));
    }
    expectations.push(json!({"kind": "class_balance", "column": "c0", "min_share": 0.1}));
    let ctx = context(
        dir.path(),
        json!({"expectations": expectations}),
        &[("data", &current)],
        &[("report", "v.json")],
    );
    let started = Instant::now();
    run(&super::Validate, &ctx).unwrap();
    let validate = started.elapsed().as_secs_f64();

    let started = Instant::now();
    crate::table::read_table(&reference).unwrap();
    crate::table::read_table(&current).unwrap();
    let reading = started.elapsed().as_secs_f64();

    let ctx = context(
        dir.path(),
        json!({}),
        &[("reference", &reference), ("current", &current)],
        &[("report", "d.json")],
    );
    let started = Instant::now();
    let outcome = run(&crate::monitor::Drift, &ctx).unwrap();
    let drift = started.elapsed().as_secs_f64();
    assert_eq!(outcome.values["drifted_features"], json!(["x0"]));

    println!(
        "data.validate: {ROWS} rows × 12 columns, 22 expectations in {validate:.3} s = {:.0} rows/s",
        ROWS as f64 / validate
    );
    println!("reading both Parquet files: {reading:.3} s");
    println!(
        "monitor.drift: 2 × {ROWS} rows × 12 columns in {drift:.3} s = {:.0} current rows/s",
        ROWS as f64 / drift
    );
}
