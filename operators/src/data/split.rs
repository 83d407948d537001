//! `data.split`: a seeded, optionally stratified train/test split.
//!
//! Rows are grouped by the target's value (classes in sorted order), each
//! group's row indices are shuffled with one [`SplitMix64`] seeded by `seed`,
//! and `round(n_class × test_size)` of them go to test — never all of a
//! class, so a class with one row lands in train. Both outputs keep the
//! input's row order. It does not balance or resample classes.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Deserialize;

use super::column::categories;
use super::rng::SplitMix64;
use crate::table::{describe_row, read_table, take_source_rows, write_table};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Split;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The label column; with `stratify`, each class keeps its share in both splits.
    target: String,
    /// The share of rows in `test`, between 0 and 1.
    #[serde(default = "default_test_size")]
    test_size: f64,
    /// The seed of the shuffle: the same data and seed give the same splits.
    seed: u64,
    /// Split each class separately, so both splits keep the class balance.
    #[serde(default = "yes")]
    stratify: bool,
    /// Fewer rows in `data` fail the task.
    #[serde(default = "default_min_rows")]
    min_rows: usize,
    /// A class with fewer rows fails the task (it cannot be stratified).
    #[serde(default = "default_min_rows_per_class")]
    min_rows_per_class: usize,
    /// Fewer rows in `test` fail the task.
    #[serde(default = "default_min_test_rows")]
    min_test_rows: usize,
}

fn default_min_rows() -> usize {
    20
}
fn default_min_rows_per_class() -> usize {
    2
}
fn default_min_test_rows() -> usize {
    5
}

fn default_test_size() -> f64 {
    0.3
}

fn yes() -> bool {
    true
}

impl Operator for Split {
    fn name(&self) -> &'static str {
        "data.split"
    }

    fn description(&self) -> &'static str {
        "splits a table into seeded, stratified `train` and `test` Parquet files"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[crate::Port::required("data", "the table to split")],
            outputs: &[
                crate::Port::required("train", "the training rows (Parquet)"),
                crate::Port::required("test", "the held-out rows (Parquet)"),
            ],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data"]);
        problems.extend(require_names("outputs", spec.outputs, &["train", "test"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) if !(params.test_size > 0.0 && params.test_size < 1.0) => problems.push(
                Problem::new(
                    "params.test_size",
                    format!(
                        "`test_size` must be between 0 and 1, not {}",
                        params.test_size
                    ),
                )
                .with_help("a share such as `0.3`"),
            ),
            Ok(_) => {}
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| split(&ctx))
    }
}

fn split(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    if !(params.test_size > 0.0 && params.test_size < 1.0) {
        return Err(OperatorError::Params(format!(
            "`test_size` must be between 0 and 1, not {}",
            params.test_size
        )));
    }
    let input = ctx.input("data")?;
    let frame = read_table(input)?;
    let target = categories(&frame, &params.target, input)?;
    if let Some(row) = target.iter().position(|v| v.is_none()) {
        let source_rows = take_source_rows(&mut frame.clone());
        return Err(OperatorError::failed(format!(
            "target column `{}` of `{}` has {} null values (first at {})",
            params.target,
            input.display(),
            target.null_count(),
            describe_row(row, source_rows.as_deref())
        )));
    }
    let mut groups: BTreeMap<&str, Vec<IdxSize>> = BTreeMap::new();
    for (row, value) in target.iter().enumerate() {
        let key = if params.stratify {
            value.unwrap_or_default()
        } else {
            ""
        };
        groups.entry(key).or_default().push(row as IdxSize);
    }
    enough_evidence(&params, input, frame.height(), &groups)?;
    let (train, test) = assign(groups.into_values(), params.test_size, params.seed);
    if test.len() < params.min_test_rows {
        return Err(OperatorError::failed(format!(
            "the test split of `{}` would hold {} rows, at least {} needed (`min_test_rows`); add rows or raise `test_size`",
            input.display(),
            test.len(),
            params.min_test_rows
        )));
    }
    let take = |rows: Vec<IdxSize>| {
        frame
            .take(&IdxCa::from_vec("rows".into(), rows))
            .map_err(|e| OperatorError::failed(format!("cannot split `{}`: {e}", input.display())))
    };
    let (mut train, mut test) = (take(train)?, take(test)?);
    write_table(&mut train, ctx.output("train")?)?;
    write_table(&mut test, ctx.output("test")?)?;
    let summary = format!(
        "{} train rows, {} test rows (seed {})",
        train.height(),
        test.height(),
        params.seed
    );
    ctx.log.line(&summary);
    Ok(Outcome::default()
        .metric("train_rows", train.height() as f64)
        .metric("test_rows", test.height() as f64)
        .summary(summary))
}

/// Refuses a table too small to split: too few rows, or (stratified) a
/// class too small to appear on both sides.
fn enough_evidence(
    params: &Params,
    input: &std::path::Path,
    rows: usize,
    groups: &BTreeMap<&str, Vec<IdxSize>>,
) -> Result<(), OperatorError> {
    if rows < params.min_rows {
        let noun = if rows == 1 { "row" } else { "rows" };
        return Err(OperatorError::failed(format!(
            "`{}` has {rows} {noun}; a train/test split needs at least {} (`min_rows`)",
            input.display(),
            params.min_rows
        )));
    }
    if !params.stratify {
        return Ok(());
    }
    if let Some((class, members)) = groups
        .iter()
        .min_by_key(|(class, rows)| (rows.len(), **class))
        .filter(|(_, rows)| rows.len() < params.min_rows_per_class)
    {
        let count = members.len();
        let noun = if count == 1 { "row" } else { "rows" };
        return Err(OperatorError::failed(format!(
            "class `{class}` of `{}` in `{}` has {count} {noun}; each class needs at least {} (`min_rows_per_class`) to be both learnt and tested",
            params.target,
            input.display(),
            params.min_rows_per_class
        )));
    }
    Ok(())
}

/// Shuffles each group with one seeded generator (groups in the given
/// order) and sends `round(n × test_size)` rows of it, at most `n - 1`, to
/// test. Both returned lists are sorted.
fn assign(
    groups: impl Iterator<Item = Vec<IdxSize>>,
    test_size: f64,
    seed: u64,
) -> (Vec<IdxSize>, Vec<IdxSize>) {
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut rows in groups {
        rng.shuffle(&mut rows);
        let n_test =
            ((rows.len() as f64 * test_size).round() as usize).min(rows.len().saturating_sub(1));
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use serde_json::json;

    use super::*;
    use crate::data::testing::{check, context, run, write_file};

    fn fixture() -> String {
        let mut csv = String::from("x,label\n");
        for i in 0..100 {
            let label = if i < 70 {
                "a"
            } else if i < 99 {
                "b"
            } else {
                "lonely"
            };
            csv.push_str(&format!("{i},{label}\n"));
        }
        csv
    }

    fn split_fixture(seed: u64) -> (Outcome, DataFrame, DataFrame) {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(dir.path(), "in.csv", &fixture());
        let params =
            json!({"target": "label", "seed": seed, "test_size": 0.3, "min_rows_per_class": 1});
        let ctx = context(
            dir.path(),
            params,
            &[("data", &input)],
            &[("train", "train.parquet"), ("test", "test.parquet")],
        );
        let outcome = run(&Split, &ctx).unwrap();
        let train = read_table(&dir.path().join("train.parquet")).unwrap();
        let test = read_table(&dir.path().join("test.parquet")).unwrap();
        (outcome, train, test)
    }

    fn count(frame: &DataFrame, label: &str) -> usize {
        frame
            .column("label")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .filter(|v| *v == Some(label))
            .count()
    }

    #[test]
    fn each_class_is_split_by_test_size_and_a_single_row_class_goes_to_train() {
        let (outcome, train, test) = split_fixture(42);
        assert_eq!(
            (count(&test, "a"), count(&test, "b"), count(&test, "lonely")),
            (21, 9, 0)
        );
        assert_eq!(
            (
                count(&train, "a"),
                count(&train, "b"),
                count(&train, "lonely")
            ),
            (49, 20, 1)
        );
        assert_eq!(
            outcome.metrics["train_rows"] + outcome.metrics["test_rows"],
            100.0
        );
    }

    #[test]
    fn same_seed_gives_the_same_split_and_another_seed_a_different_one() {
        let rows = |frame: &DataFrame| -> Vec<Option<f64>> {
            frame.column("x").unwrap().f64().unwrap().iter().collect()
        };
        let (_, _, first) = split_fixture(7);
        let (_, _, again) = split_fixture(7);
        let (_, _, other) = split_fixture(8);
        assert_eq!(rows(&first), rows(&again));
        assert_ne!(rows(&first), rows(&other));
    }

    #[test]
    fn missing_target_column_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(dir.path(), "in.csv", "x,y\n1,2\n");
        let ctx = context(
            dir.path(),
            json!({"target": "label", "seed": 1}),
            &[("data", &input)],
            &[("train", "a.parquet"), ("test", "b.parquet")],
        );
        let message = run(&Split, &ctx).unwrap_err().to_string();
        assert!(message.contains("no column `label`"), "{message}");
    }

    #[test]
    fn test_size_outside_zero_one_is_a_check_problem() {
        let problems = check(
            &Split,
            json!({"target": "y", "seed": 1, "test_size": 1.5}),
            &["data"],
            &["train", "test"],
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].at, "params.test_size");
    }

    fn split_text(csv: &str, params: serde_json::Value) -> Result<Outcome, OperatorError> {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(dir.path(), "in.csv", csv);
        let ctx = context(
            dir.path(),
            params,
            &[("data", &input)],
            &[("train", "train.parquet"), ("test", "test.parquet")],
        );
        run(&Split, &ctx)
    }

    #[test]
    fn too_few_rows_are_refused_with_the_count_and_the_threshold() {
        let one = split_text("x,label\n1,a\n", json!({"target": "label", "seed": 1}));
        let message = one.unwrap_err().to_string();
        assert!(
            message.ends_with("has 1 row; a train/test split needs at least 20 (`min_rows`)"),
            "{message}"
        );
        let five: String = (0..5)
            .map(|i| format!("{i},{}\n", ["a", "b"][i % 2]))
            .collect();
        let message = split_text(
            &format!("x,label\n{five}"),
            json!({"target": "label", "seed": 1}),
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("has 5 rows"), "{message}");
    }

    #[test]
    fn a_class_with_one_row_is_refused_by_name() {
        let message = split_text(&fixture(), json!({"target": "label", "seed": 1}))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("class `lonely` of `label` in `")
                && message.ends_with("has 1 row; each class needs at least 2 (`min_rows_per_class`) to be both learnt and tested"),
            "{message}"
        );
    }

    #[test]
    fn a_test_split_below_its_minimum_is_refused() {
        let rows: String = (0..20)
            .map(|i| format!("{i},{}\n", ["a", "b"][i % 2]))
            .collect();
        let params = json!({"target": "label", "seed": 1, "test_size": 0.1});
        let message = split_text(&format!("x,label\n{rows}"), params)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("would hold 2 rows, at least 5 needed (`min_test_rows`)"),
            "{message}"
        );
    }
}
