//! `monitor.drift`: compares a current table against a reference, feature
//! by feature (Jensen–Shannon divergence and PSI), checks data quality, and
//! says whether drift was detected.
//!
//! With `short_circuit_when_no_drift: true` a run that finds no drift
//! succeeds and skips everything downstream, so a retraining DAG stops
//! there. It does not retrain, alert or compare model outputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::divergence::Binning;
use super::feature_drift::{FeatureDrift, compare};
use super::quality::{Quality, assess};
use crate::table::{read_table, write_json};
use crate::{
    BoxFuture, Context, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Drift;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Features to compare; default: every column the two tables share.
    columns: Option<Vec<String>>,
    /// Columns never compared, such as the target.
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "default_bins")]
    bins: usize,
    #[serde(default)]
    binning: Binning,
    #[serde(default = "default_js")]
    js_threshold: f64,
    #[serde(default = "default_psi")]
    psi_threshold: f64,
    #[serde(default = "default_min_drifted")]
    min_drifted_features: usize,
    #[serde(default)]
    short_circuit_when_no_drift: bool,
}

/// More bins than this only measures sampling noise.
const MAX_BINS: usize = 1000;

fn default_bins() -> usize {
    10
}
fn default_js() -> f64 {
    0.1
}
fn default_psi() -> f64 {
    0.2
}
fn default_min_drifted() -> usize {
    1
}

#[derive(Debug, Serialize)]
struct Report {
    reference: String,
    current: String,
    reference_rows: usize,
    current_rows: usize,
    js_threshold: f64,
    psi_threshold: f64,
    drift_detected: bool,
    drifted_features: Vec<String>,
    features: BTreeMap<String, FeatureDrift>,
    quality: Quality,
}

impl Operator for Drift {
    fn name(&self) -> &'static str {
        "monitor.drift"
    }

    fn description(&self) -> &'static str {
        "per-feature Jensen–Shannon divergence and PSI of a current table against a reference, plus data quality"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["drift_detected", "drifted_features", "report"]
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["reference", "current"]);
        problems.extend(require_names("outputs", spec.outputs, &["report"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => problems.extend(
                check_params(&params)
                    .into_iter()
                    .map(|(at, m)| Problem::new(at, m)),
            ),
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| detect(&ctx))
    }
}

fn check_params(params: &Params) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if !(2..=MAX_BINS).contains(&params.bins) {
        problems.push((
            "params.bins".into(),
            format!(
                "`bins` must be between 2 and {MAX_BINS}, not {}",
                params.bins
            ),
        ));
    }
    if params.min_drifted_features == 0 {
        problems.push((
            "params.min_drifted_features".into(),
            "`min_drifted_features` must be at least 1".into(),
        ));
    }
    for (name, value) in [
        ("js_threshold", params.js_threshold),
        ("psi_threshold", params.psi_threshold),
    ] {
        if !(value.is_finite() && value > 0.0) {
            problems.push((
                format!("params.{name}"),
                format!("`{name}` must be a positive number, not {value}"),
            ));
        }
    }
    if params.columns.as_ref().is_some_and(Vec::is_empty) {
        problems.push((
            "params.columns".into(),
            "`columns` is empty; omit it to compare every shared column".into(),
        ));
    }
    problems
}

fn detect(ctx: &Context) -> Result<Outcome, OperatorError> {
    let params: Params = parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
    if let Some((at, message)) = check_params(&params).into_iter().next() {
        return Err(OperatorError::Params(format!("{at}: {message}")));
    }
    let (reference_path, current_path) = (ctx.input("reference")?, ctx.input("current")?);
    let reference = read_table(reference_path)?;
    let current = read_table(current_path)?;
    let files = (reference_path, current_path);
    let features = feature_names(&params, &reference, &current, files)?;
    let mut drift = BTreeMap::new();
    for (done, name) in features.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return Err(OperatorError::Cancelled);
        }
        let (kind, p, q) = compare(
            name,
            &reference,
            &current,
            files,
            params.bins,
            params.binning,
        )?;
        drift.insert(
            name.clone(),
            FeatureDrift::from_shares(kind, &p, &q, params.js_threshold, params.psi_threshold),
        );
        ctx.progress
            .report(done as u64 + 1, features.len() as u64, "features");
    }
    let drifted: Vec<String> = drift
        .iter()
        .filter(|(_, d)| d.drifted)
        .map(|(n, _)| n.clone())
        .collect();
    let detected = drifted.len() >= params.min_drifted_features;
    let max_js = drift.values().map(|d| d.js).fold(0.0, f64::max);
    let max_psi = drift.values().map(|d| d.psi).fold(0.0, f64::max);
    let report_path = ctx.output("report")?;
    let file_name = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let report = Report {
        reference: file_name(reference_path),
        current: file_name(current_path),
        reference_rows: reference.height(),
        current_rows: current.height(),
        js_threshold: params.js_threshold,
        psi_threshold: params.psi_threshold,
        drift_detected: detected,
        drifted_features: drifted.clone(),
        features: drift,
        quality: assess(&reference, &current, files)?,
    };
    write_json(&report, report_path)?;
    let summary = if detected {
        format!(
            "drift detected in {} of {} features: {}",
            drifted.len(),
            features.len(),
            drifted.join(", ")
        )
    } else {
        format!(
            "no drift detected: max JS {max_js:.3} < {}, max PSI {max_psi:.3} < {}",
            params.js_threshold, params.psi_threshold
        )
    };
    ctx.log.line(&summary);
    let mut outcome = Outcome::default()
        .value("drift_detected", detected)
        .value("drifted_features", Value::from(drifted.clone()))
        .value("report", report_path.to_string_lossy().into_owned())
        .metric("max_js", max_js)
        .metric("max_psi", max_psi)
        .metric("drifted_features", drifted.len() as f64)
        .summary(summary.clone());
    if !detected && params.short_circuit_when_no_drift {
        outcome = outcome.short_circuit(summary);
    }
    Ok(outcome)
}

/// The features to compare, in sorted order.
fn feature_names(
    params: &Params,
    reference: &polars::prelude::DataFrame,
    current: &polars::prelude::DataFrame,
    files: (&std::path::Path, &std::path::Path),
) -> Result<Vec<String>, OperatorError> {
    let mut names: Vec<String> = match &params.columns {
        Some(columns) => {
            for name in columns {
                crate::data::column::column(reference, name, files.0)?;
                crate::data::column::column(current, name, files.1)?;
            }
            columns.clone()
        }
        None => reference
            .get_column_names()
            .into_iter()
            .filter(|name| current.column(name).is_ok())
            .map(|name| name.to_string())
            .collect(),
    };
    names.retain(|name| !params.exclude.contains(name));
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(OperatorError::failed(format!(
            "`{}` and `{}` share no columns to compare",
            files.0.display(),
            files.1.display()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails at the line of an unexpected error"
    )]

    use polars::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::data::testing::{check, context, run};
    use crate::table::write_table;

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
            reason.starts_with("no drift detected: max JS 0.000 < 0.1"),
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
}
