//! Tests of `monitor.drift`: detection and short-circuits, minimum
//! evidence, a reference resolved through the registry, and the traffic
//! counts of a prediction log.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails at the line of an unexpected error"
)]

use std::collections::BTreeMap;

use polars::prelude::*;
use serde_json::json;

use super::drift::Drift;
use crate::data::testing::{check, context, run};
use crate::table::write_table;
use crate::{Context, Earlier, Operator};

fn tables(shift: f64) -> (tempfile::TempDir, Context) {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f64> = (0..2000).map(|i| f64::from(i % 97)).collect();
    let labels: Vec<&str> = (0..2000)
        .map(|i| if i % 3 == 0 { "a" } else { "b" })
        .collect();
    let mut reference = df!("x" => &values, "label" => &labels).unwrap();
    let moved: Vec<f64> = values.iter().map(|v| v + shift).collect();
    let mut current = df!("x" => &moved, "label" => &labels).unwrap();
    let (r, c) = (
        dir.path().join("ref.parquet"),
        dir.path().join("cur.parquet"),
    );
    write_table(&mut reference, &r).unwrap();
    write_table(&mut current, &c).unwrap();
    let params = json!({"exclude": ["label"], "short_circuit_when_no_drift": true});
    let ctx = context(
        dir.path(),
        params,
        &[("reference", &r), ("current", &c)],
        &[("report", "drift.json")],
    );
    (dir, ctx)
}

#[test]
fn no_drift_short_circuits_with_the_reason() {
    let (_dir, ctx) = tables(0.0);
    let outcome = run(&Drift, &ctx).unwrap();
    assert_eq!(outcome.values["drift_detected"], json!(false));
    let reason = outcome.short_circuit.unwrap();
    assert!(
        reason.starts_with("no drift detected against ref.parquet (")
            && reason.contains("): max JS 0.000 < 0.1"),
        "{reason}"
    );
}

#[test]
fn a_shift_is_detected_and_reported() {
    let (dir, ctx) = tables(50.0);
    let outcome = run(&Drift, &ctx).unwrap();
    assert_eq!(outcome.values["drifted_features"], json!(["x"]));
    assert!(outcome.short_circuit.is_none());
    assert_eq!(outcome.metrics["drifted_features"], 1.0);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("drift.json")).unwrap())
            .unwrap();
    assert_eq!(report["drift_detected"], true);
    assert!(
        report["features"].get("label").is_none(),
        "excluded columns are not compared"
    );
    assert!(report["quality"]["out_of_range"]["x"].as_f64().unwrap() > 0.4);
}

#[test]
fn an_explicit_column_missing_from_a_table_is_an_error_naming_it() {
    let (_dir, mut ctx) = tables(0.0);
    ctx.params = json!({"columns": ["weight"]});
    let message = run(&Drift, &ctx).unwrap_err().to_string();
    assert!(message.contains("no column `weight`"), "{message}");
}

#[test]
fn check_rejects_too_few_bins_and_zero_thresholds() {
    let problems = check(
        &Drift,
        json!({"bins": 1, "js_threshold": 0}),
        &["reference", "current"],
        &["report"],
    );
    let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
    assert_eq!(at, ["params.bins", "params.js_threshold"]);
}

#[test]
fn a_small_sample_is_not_judged_and_the_reason_names_both_numbers() {
    let (dir, mut ctx) = tables(50.0);
    let few = dir.path().join("few.csv");
    std::fs::write(&few, "x,label\n500,a\n600,b\n700,a\n").unwrap();
    ctx.inputs.insert("current".into(), few);
    let outcome = run(&Drift, &ctx).unwrap();
    assert_eq!(outcome.values["drift_detected"], json!(false));
    assert_eq!(
        outcome.short_circuit.as_deref(),
        Some("not enough rows to judge drift: 3 current rows, at least 100 needed (`min_rows`)")
    );
    ctx.params["min_rows"] = json!(3);
    let judged = run(&Drift, &ctx).unwrap();
    assert_eq!(judged.values["drift_detected"], json!(true));
}

#[test]
fn the_reference_follows_the_alias_and_the_report_names_version_and_digest() {
    use crate::models::{ModelRegistry, RegisterInfo};
    let (dir, mut ctx) = tables(0.0);
    let reference = ctx.inputs.remove("reference").unwrap();
    let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
    let (digest, blob) = registry.store_data(&reference).unwrap();
    let info = RegisterInfo {
        data_digests: BTreeMap::from([("train".into(), digest.clone())]),
        data_blobs: BTreeMap::from([("train".into(), blob)]),
        ..RegisterInfo::default()
    };
    let model = crate::ml::test_fixtures::tiny_model(dir.path(), 1);
    registry.register("m", &model, info.clone()).unwrap();
    ctx.params["reference_model"] = json!({"name": "m"});
    let missing = run(&Drift, &ctx).unwrap();
    assert_eq!(
        missing.summary.as_deref(),
        Some("no `production` version of `m` yet: nothing to compare with")
    );
    registry.set_alias("m", "production", 1).unwrap();
    let outcome = run(&Drift, &ctx).unwrap();
    assert_eq!(outcome.values["reference_version"], json!(1));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("drift.json")).unwrap())
            .unwrap();
    assert_eq!(report["reference"]["version"], 1);
    assert_eq!(report["reference"]["digest"], json!(digest));
    assert_eq!(report["reference"]["rows"], 2000);
    let earlier = Earlier {
        params: &ctx.params,
        values: &outcome.values,
        state_dir: &ctx.state_dir,
    };
    assert_eq!(Drift.effect_holds(&earlier), Ok(()));
    registry.register("m", &model, info).unwrap();
    registry.set_alias("m", "production", 2).unwrap();
    assert_eq!(
        Drift.effect_holds(&earlier).unwrap_err(),
        "the reference moved: `production` points at v2, the last check used v1"
    );
}

#[test]
fn a_prediction_logs_statuses_are_counted_and_rejected_rows_compared() {
    let (dir, mut ctx) = tables(0.0);
    let mut log = String::from("x,label,status\n");
    for i in 0..200 {
        let (x, status) = if i % 4 == 0 {
            (5000, "rejected")
        } else {
            (i % 97, "answered")
        };
        log.push_str(&format!("{x},a,{status}\n"));
    }
    let path = dir.path().join("current.csv");
    std::fs::write(&path, log).unwrap();
    ctx.inputs.insert("current".into(), path);
    ctx.params["status_column"] = json!("status");
    let outcome = run(&Drift, &ctx).unwrap();
    assert_eq!(outcome.metrics["rejected_rows"], 50.0);
    assert_eq!(outcome.values["drifted_features"], json!(["x"]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("drift.json")).unwrap())
            .unwrap();
    assert_eq!(report["traffic"]["counts"]["answered"], 150);
    assert_eq!(report["quality"]["out_of_range"]["x"], 0.25);
    assert!(report["features"].get("status").is_none());
}

#[test]
fn a_reference_is_required_one_way_only() {
    let problems = check(&Drift, json!({}), &["current"], &["report"]);
    assert!(
        problems[0]
            .message
            .contains("declare input `reference` or set `reference_model`")
    );
    let both = check(
        &Drift,
        json!({"reference_model": {"name": "m"}}),
        &["reference", "current"],
        &["report"],
    );
    assert_eq!(both[0].at, "params.reference_model");
}
