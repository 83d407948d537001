//! `data.synthesize`: a new batch sampled from a reference table, with
//! optional drift applied — for demos and for testing drift detection.
//!
//! Rows are drawn with replacement by a [`SplitMix64`] seeded with `seed`;
//! numeric columns are then jittered by `noise × column standard deviation ×
//! N(0, 1)` and drifted (`x' = x × scale + shift`), and categorical values are
//! replaced (`from` → `to`) in a seeded `share` of the rows. It does not
//! invent rows unlike any in the reference.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Deserialize;

use super::column::ColumnKind;
use super::rng::SplitMix64;
use crate::table::{read_table, without_source_rows, write_table};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Synthesize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Rows to sample (with replacement) from the reference (1 to 1,000,000).
    rows: usize,
    /// The same reference, params and seed give the same batch.
    seed: u64,
    /// Gaussian noise added to numeric columns, as a share of each column's standard deviation.
    #[serde(default)]
    noise: f64,
    /// Drift applied after sampling, one rule per column.
    #[serde(default)]
    drift: Vec<DriftRule>,
    /// Leave `target` out of the output, like a batch awaiting predictions.
    #[serde(default)]
    drop_target: bool,
    /// The label column, for `drop_target`.
    target: Option<String>,
}

/// One `drift` entry: `shift`/`scale` for a numeric column, or `replace`
/// (with `share`, default 1) for a categorical one.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct DriftRule {
    /// The column to drift.
    column: String,
    /// Added to every value of a numeric column.
    shift: Option<f64>,
    /// Multiplies every value of a numeric column.
    scale: Option<f64>,
    /// Category → the category it becomes.
    replace: Option<BTreeMap<String, String>>,
    /// The share of rows `replace` applies to (default 1).
    share: Option<f64>,
}

impl DriftRule {
    fn problem(&self) -> Option<String> {
        let numeric = self.shift.is_some() || self.scale.is_some();
        let categorical = self.replace.is_some() || self.share.is_some();
        match (numeric, categorical) {
            (true, true) => {
                Some("give either `shift`/`scale` or `replace`/`share`, not both".into())
            }
            (false, false) => {
                Some("give `shift`/`scale` (numbers) or `replace` (categories)".into())
            }
            _ if self.share.is_some_and(|s| !(0.0..=1.0).contains(&s)) => Some(format!(
                "`share` must be between 0 and 1, not {}",
                self.share.unwrap_or_default()
            )),
            (false, true) if self.replace.is_none() => Some("`share` needs `replace`".into()),
            _ => None,
        }
    }
}

impl Operator for Synthesize {
    fn name(&self) -> &'static str {
        "data.synthesize"
    }

    fn description(&self) -> &'static str {
        "samples a seeded batch from a reference table, with optional noise and drift"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[crate::Port::required(
                "reference",
                "the table to sample from",
            )],
            outputs: &[crate::Port::required("data", "the sampled batch")],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["reference"]);
        problems.extend(require_names("outputs", spec.outputs, &["data"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => problems.extend(check_params(&params)),
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| synthesize(&ctx))
    }
}

/// The most rows one batch may have: the batch is built in memory, and a
/// mistyped `rows` must not exhaust the machine.
const MAX_ROWS: usize = 1_000_000;

fn check_params(params: &Params) -> Vec<Problem> {
    let mut problems = Vec::new();
    if params.rows == 0 || params.rows > MAX_ROWS {
        problems.push(Problem::new(
            "params.rows",
            format!(
                "`rows` must be between 1 and {MAX_ROWS}, not {}",
                params.rows
            ),
        ));
    }
    if !(params.noise.is_finite() && params.noise >= 0.0) {
        problems.push(Problem::new(
            "params.noise",
            format!("`noise` must be 0 or more, not {}", params.noise),
        ));
    }
    if params.drop_target && params.target.is_none() {
        problems.push(Problem::new(
            "params.target",
            "`drop_target: true` needs `target`",
        ));
    }
    for (index, rule) in params.drift.iter().enumerate() {
        if let Some(message) = rule.problem() {
            problems.push(Problem::new(format!("params.drift[{index}]"), message));
        }
    }
    problems
}

fn synthesize(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    if let Some(problem) = check_params(&params).into_iter().next() {
        return Err(OperatorError::Params(format!(
            "{}: {}",
            problem.at, problem.message
        )));
    }
    let input = ctx.input("reference")?;
    let reference = without_source_rows(read_table(input)?);
    let failed = |e: PolarsError| {
        OperatorError::failed(format!("cannot synthesize from `{}`: {e}", input.display()))
    };
    let mut rng = SplitMix64::new(params.seed);
    let rows: Vec<IdxSize> = (0..params.rows)
        .map(|_| rng.below(reference.height()) as IdxSize)
        .collect();
    let mut batch = reference
        .take(&IdxCa::from_vec("rows".into(), rows))
        .map_err(failed)?;
    let names: Vec<String> = batch
        .get_column_names()
        .into_iter()
        .map(|n| n.to_string())
        .collect();
    for rule in &params.drift {
        crate::data::column::column(&batch, &rule.column, input)?;
    }
    for name in &names {
        let column = batch.column(name).map_err(failed)?;
        let rule = params.drift.iter().find(|r| &r.column == name);
        let replaced = match ColumnKind::of(column) {
            ColumnKind::Number => numeric(column, params.noise, rule, &mut rng).map_err(failed)?,
            ColumnKind::Category => match rule {
                Some(DriftRule {
                    replace: Some(map),
                    share,
                    ..
                }) => categorical(column, map, share.unwrap_or(1.0), &mut rng).map_err(failed)?,
                Some(_) => {
                    return Err(OperatorError::failed(format!(
                        "`shift`/`scale` drift needs a numeric column, but `{name}` in `{}` holds categories",
                        input.display()
                    )));
                }
                None => continue,
            },
        };
        batch.with_column(replaced).map_err(failed)?;
    }
    if params.drop_target
        && let Some(target) = &params.target
    {
        crate::data::column::column(&batch, target, input)?;
        batch = batch.drop(target).map_err(failed)?;
    }
    write_table(&mut batch, ctx.output("data")?)?;
    let summary = format!(
        "{} rows synthesized from {} (seed {})",
        batch.height(),
        reference.height(),
        params.seed
    );
    ctx.log.line(&summary);
    Ok(Outcome::default()
        .metric("rows", batch.height() as f64)
        .summary(summary))
}

fn numeric(
    column: &Column,
    noise: f64,
    rule: Option<&DriftRule>,
    rng: &mut SplitMix64,
) -> PolarsResult<Column> {
    let values = column.cast(&DataType::Float64)?;
    let values = values.f64()?;
    let spread = if noise > 0.0 {
        values.std(1).unwrap_or(0.0) * noise
    } else {
        0.0
    };
    let scale = rule.and_then(|r| r.scale).unwrap_or(1.0);
    let shift = rule.and_then(|r| r.shift).unwrap_or(0.0);
    let out = values.iter().map(|value| {
        value.map(|v| {
            let jittered = if spread > 0.0 {
                v + spread * rng.normal()
            } else {
                v
            };
            jittered * scale + shift
        })
    });
    Ok(Float64Chunked::from_iter_options(column.name().clone(), out).into_column())
}

fn categorical(
    column: &Column,
    replace: &BTreeMap<String, String>,
    share: f64,
    rng: &mut SplitMix64,
) -> PolarsResult<Column> {
    let values = column.str()?;
    let out: StringChunked = values
        .iter()
        .map(|value| match value.and_then(|v| replace.get(v)) {
            Some(to) if rng.unit() < share => Some(to.as_str()),
            _ => value,
        })
        .collect();
    Ok(out.with_name(column.name().clone()).into_column())
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

    const REFERENCE: &str = "w,c,y\n50,a,p\n60,b,q\n70,a,p\n80,b,q\n";

    fn synthesize_with(
        params: serde_json::Value,
        output: &str,
    ) -> (tempfile::TempDir, Result<DataFrame, OperatorError>) {
        let dir = tempfile::tempdir().unwrap();
        let input = write_file(dir.path(), "ref.csv", REFERENCE);
        let ctx = context(
            dir.path(),
            params,
            &[("reference", &input)],
            &[("data", output)],
        );
        let result = run(&Synthesize, &ctx).and_then(|_| Ok(read_table(&dir.path().join(output))?));
        (dir, result)
    }

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        let params = json!({"rows": 50, "seed": 3, "noise": 0.1});
        let (first, _) = synthesize_with(params.clone(), "b.csv");
        let (second, _) = synthesize_with(params, "b.csv");
        let bytes = |dir: &tempfile::TempDir| std::fs::read(dir.path().join("b.csv")).unwrap();
        assert_eq!(bytes(&first), bytes(&second));
    }

    #[test]
    fn shift_and_scale_move_a_numeric_column() {
        let (_, frame) = synthesize_with(
            json!({"rows": 200, "seed": 1, "drift": [{"column": "w", "shift": 25, "scale": 2}]}),
            "b.parquet",
        );
        let w = frame.unwrap().column("w").unwrap().f64().unwrap().clone();
        assert_eq!((w.min(), w.max()), (Some(125.0), Some(185.0)));
    }

    #[test]
    fn replace_swaps_categories_in_the_given_share() {
        let params = json!({"rows": 1000, "seed": 1, "drift": [{"column": "c", "replace": {"a": "z"}, "share": 0.5}]});
        let (_, frame) = synthesize_with(params, "b.parquet");
        let frame = frame.unwrap();
        let z = frame
            .column("c")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .filter(|v| *v == Some("z"))
            .count();
        // About half of the ~500 `a` rows.
        assert!((180..320).contains(&z), "{z}");
    }

    #[test]
    fn drop_target_removes_the_target_column() {
        let (_, frame) = synthesize_with(
            json!({"rows": 5, "seed": 1, "drop_target": true, "target": "y"}),
            "b.parquet",
        );
        assert!(frame.unwrap().column("y").is_err());
    }

    #[test]
    fn drift_on_a_missing_column_is_an_error_naming_it() {
        let (_, frame) = synthesize_with(
            json!({"rows": 5, "seed": 1, "drift": [{"column": "weight", "shift": 1}]}),
            "b.parquet",
        );
        assert!(
            frame
                .unwrap_err()
                .to_string()
                .contains("no column `weight`")
        );
    }

    #[test]
    fn check_rejects_mixed_drift_rules_zero_rows_and_too_many_rows() {
        let params = json!({"rows": 0, "seed": 1, "drift": [{"column": "w", "shift": 1, "replace": {"a": "b"}}]});
        let too_many = json!({"rows": 1_000_001, "seed": 1});
        let problems = check(&Synthesize, too_many, &["reference"], &["data"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].message,
            "`rows` must be between 1 and 1000000, not 1000001"
        );
        let problems = check(&Synthesize, params, &["reference"], &["data"]);
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(at, ["params.rows", "params.drift[0]"]);
    }
}
