//! The obesity DAG files run end to end on the real dataset: each task's
//! params are taken from `dags/*.yaml` (templates rendered with the DAG's
//! params), checked by its operator, then executed in file order with
//! outputs in a temporary directory.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails at the line of an unexpected error"
)]

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::{Value, json};

use super::testing::run;
use crate::table::{error_chain, read_table};
use crate::{Context, Outcome, Registry, TaskSpec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The DAG as JSON, and its task ids in file order.
pub(super) fn load_dag(file: &str) -> (Value, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("dags").join(file)).unwrap();
    let ordered: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let ids = ordered["tasks"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    (serde_yaml::from_value(ordered).unwrap(), ids)
}

/// Renders `{{ params.x }}` in strings: a string that is exactly one
/// template keeps the value's type, others get the value as text.
fn render(value: &Value, params: &Value) -> Value {
    match value {
        Value::String(text) => {
            let inner = text
                .trim()
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .map(str::trim)
                .filter(|t| !t.contains("{{"));
            if let Some(name) = inner.and_then(|t| t.strip_prefix("params.")) {
                return params[name].clone();
            }
            let mut out = text.clone();
            while let Some(start) = out.find("{{ params.") {
                let Some(end) = out[start..].find("}}").map(|e| start + e + 2) else {
                    break;
                };
                let name = out[start + 10..end - 2].trim().to_string();
                let value = match &params[&name] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.replace_range(start..end, &value);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, params)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, params)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks and runs every task of a DAG file in order. Paths under
/// `data/raw/` and `dags/` are read from the repository; everything else
/// lives under `work`.
fn run_dag(file: &str, work: &Path, overrides: &[(&str, Value)]) -> Vec<(String, Outcome)> {
    let (dag, ids) = load_dag(file);
    run_tasks(file, &dag, &ids, work, overrides)
}

/// [`run_dag`] for a DAG already loaded (and perhaps edited), running the
/// tasks `ids` in that order.
pub(super) fn run_tasks(
    file: &str,
    dag: &Value,
    ids: &[String],
    work: &Path,
    overrides: &[(&str, Value)],
) -> Vec<(String, Outcome)> {
    let mut params = dag["params"].clone();
    for (name, value) in overrides {
        params[*name] = value.clone();
    }
    let resolve = |path: &str| {
        if path.starts_with("data/raw/") || path.starts_with("dags/") {
            repo().join(path)
        } else {
            work.join(path)
        }
    };
    let registry = Registry::builtin();
    let mut outcomes = Vec::new();
    for id in ids {
        let task = &dag["tasks"][id];
        let name = task["operator"].as_str().unwrap();
        // Operators of the engine itself (`dag.trigger`) are tested there.
        if name.starts_with("dag.") {
            continue;
        }
        let operator = registry.get(name).unwrap();
        let task_params = render(&task["params"], &params);
        let names = |kind: &str| -> std::collections::BTreeMap<String, String> {
            task[kind]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            let path = render(v, &params);
                            (k.clone(), path.as_str().unwrap().to_string())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (inputs, outputs) = (names("inputs"), names("outputs"));
        let problems = operator.check(&TaskSpec {
            params: &task_params,
            inputs: &inputs,
            outputs: &outputs,
        });
        assert!(problems.is_empty(), "{file} task `{id}`: {problems:?}");
        let mut ctx = Context::detached(work, task_params);
        ctx.inputs = inputs
            .iter()
            .map(|(k, v)| (k.clone(), resolve(v)))
            .collect();
        ctx.outputs = outputs
            .iter()
            .map(|(k, v)| (k.clone(), resolve(v)))
            .collect();
        for path in ctx.outputs.values() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        let outcome = run(operator.as_ref(), &ctx)
            .unwrap_or_else(|e| panic!("{file} task `{id}` failed: {}", error_chain(&e)));
        outcomes.push((id.clone(), outcome));
    }
    outcomes
}

fn labels(path: &Path) -> std::collections::BTreeMap<String, usize> {
    let frame = read_table(path).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for label in frame
        .column("NObeyesdad")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
    {
        *counts.entry(label.to_string()).or_default() += 1;
    }
    counts
}

#[test]
fn data_dag_cleans_validates_and_splits_the_real_dataset() {
    let work = tempfile::tempdir().unwrap();
    let outcomes = run_dag("obesity_data.yaml", work.path(), &[]);
    let metric = |task: &str, name: &str| {
        outcomes
            .iter()
            .find(|(id, _)| id == task)
            .unwrap()
            .1
            .metrics[name]
    };
    assert_eq!(metric("clean", "rows_in"), 2111.0);
    assert_eq!(metric("clean", "duplicates_dropped"), 24.0);
    assert_eq!(metric("clean", "rows_out"), 2087.0);
    assert_eq!(metric("validate", "expectations_failed"), 0.0);
    assert_eq!(
        metric("split", "train_rows") + metric("split", "test_rows"),
        2087.0
    );
    let (train, test) = (
        labels(&work.path().join("data/processed/train.parquet")),
        labels(&work.path().join("data/processed/test.parquet")),
    );
    assert_eq!(train.len(), 7);
    assert_eq!(test.len(), 7);
    let validation: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path().join("data/reports/validation.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(validation["passed"], json!(true));
}

#[test]
fn data_dag_outputs_are_byte_identical_across_runs() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_dag("obesity_data.yaml", first.path(), &[]);
    run_dag("obesity_data.yaml", second.path(), &[]);
    for file in [
        "data/interim/clean.parquet",
        "data/reports/quality.json",
        "data/processed/train.parquet",
        "data/processed/test.parquet",
    ] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).unwrap();
        assert!(
            read(first.path()) == read(second.path()),
            "{file} differs between runs"
        );
    }
}

#[test]
fn monitoring_dag_detects_a_weight_shift_and_nothing_without_one() {
    let work = tempfile::tempdir().unwrap();
    run_dag("obesity_data.yaml", work.path(), &[]);
    let drift_of = |outcomes: &[(String, Outcome)]| {
        outcomes
            .iter()
            .find(|(id, _)| id == "detect_drift")
            .unwrap()
            .1
            .clone()
    };

    // The reference is the training data of the `production` version.
    let registry = crate::models::ModelRegistry::open(&work.path().join(".dag")).unwrap();
    let (digest, blob) = registry
        .store_data(&work.path().join("data/processed/train.parquet"))
        .unwrap();
    let info = crate::models::RegisterInfo {
        data_digests: [("train".to_string(), digest)].into(),
        data_blobs: [("train".to_string(), blob)].into(),
        ..Default::default()
    };
    let model = crate::ml::test_fixtures::tiny_model(work.path(), 1);
    registry.register("obesity", &model, info).unwrap();
    registry.set_alias("obesity", "production", 1).unwrap();

    run_dag("obesity_batch.yaml", work.path(), &[]);
    let quiet = drift_of(&run_dag("obesity_monitoring.yaml", work.path(), &[]));
    assert_eq!(
        quiet.values["drift_detected"],
        json!(false),
        "{:?}",
        quiet.summary
    );

    run_dag(
        "obesity_batch.yaml",
        work.path(),
        &[("drift_shift", json!(25))],
    );
    let shifted = drift_of(&run_dag("obesity_monitoring.yaml", work.path(), &[]));
    assert_eq!(
        shifted.values["drift_detected"],
        json!(true),
        "{:?}",
        shifted.summary
    );
    assert!(
        shifted.values["drifted_features"]
            .as_array()
            .unwrap()
            .contains(&json!("Weight"))
    );
}

#[test]
fn the_test_split_does_not_drift_from_the_train_split() {
    let work = tempfile::tempdir().unwrap();
    run_dag("obesity_data.yaml", work.path(), &[]);
    let processed = work.path().join("data/processed");
    let mut ctx = Context::detached(work.path(), json!({"exclude": ["NObeyesdad"]}));
    ctx.inputs
        .insert("reference".into(), processed.join("train.parquet"));
    ctx.inputs
        .insert("current".into(), processed.join("test.parquet"));
    ctx.outputs
        .insert("report".into(), work.path().join("drift.json"));
    let outcome = run(&crate::monitor::Drift, &ctx).unwrap();
    assert_eq!(
        outcome.values["drift_detected"],
        json!(false),
        "{:?}",
        outcome.summary
    );
    let train = read_table(&processed.join("train.parquet")).unwrap();
    assert_eq!(train.column("Weight").unwrap().dtype(), &DataType::Float64);
}
