//! `monitor.drift`: compares a current table against a reference, feature
//! by feature (Jensen–Shannon divergence and PSI), checks data quality, and
//! says whether drift was detected.
//!
//! The reference is a file, or (`reference_model`) the data the version an
//! alias points at was trained on, resolved through the registry on every
//! run: after a promotion the reference is the new `production` model's
//! training data. The report names the version and digest. A sample with
//! fewer than `min_rows` rows is not judged (no drift is reported, and the
//! report says why). Over a prediction log, `status_column` counts
//! answered, flagged and rejected requests; every logged row is compared,
//! rejected ones included.
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
use super::reference::{ReferenceInfo, ReferenceModel, Resolved, reference_holds, resolve};
use super::traffic::{Traffic, count};
use crate::table::{read_table, without_source_rows, write_json};
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct Drift;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Features to compare; default: every column the two tables share.
    columns: Option<Vec<String>>,
    /// Columns never compared, such as the target.
    #[serde(default)]
    exclude: Vec<String>,
    /// Bins per numeric feature.
    #[serde(default = "default_bins")]
    bins: usize,
    /// How numeric bins are placed over the reference.
    #[serde(default)]
    binning: Binning,
    /// A feature drifts when its Jensen–Shannon divergence (base 2) exceeds this...
    #[serde(default = "default_js")]
    js_threshold: f64,
    /// ...or its population stability index exceeds this.
    #[serde(default = "default_psi")]
    psi_threshold: f64,
    /// `drift_detected` needs at least this many drifted features.
    #[serde(default = "default_min_drifted")]
    min_drifted_features: usize,
    /// Without drift, succeed and skip everything downstream (a retraining).
    #[serde(default)]
    short_circuit_when_no_drift: bool,
    /// The reference is this model version's data, not `inputs.reference`.
    #[serde(default)]
    reference_model: Option<ReferenceModel>,
    /// Fewer rows than this (in the current table or the reference) are
    /// not enough to judge drift.
    #[serde(default = "default_min_rows")]
    min_rows: usize,
    /// A prediction log's status column, counted per value and not compared.
    #[serde(default)]
    status_column: Option<String>,
}

fn default_min_rows() -> usize {
    100
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
    reference: ReferenceInfo,
    current: String,
    reference_rows: usize,
    current_rows: usize,
    min_rows: usize,
    /// Why drift was not judged, when it was not.
    not_judged: Option<String>,
    js_threshold: f64,
    psi_threshold: f64,
    drift_detected: bool,
    drifted_features: Vec<String>,
    features: BTreeMap<String, FeatureDrift>,
    quality: Option<Quality>,
    traffic: Option<Traffic>,
}

impl Operator for Drift {
    fn name(&self) -> &'static str {
        "monitor.drift"
    }

    fn description(&self) -> &'static str {
        "per-feature Jensen–Shannon divergence and PSI of a current table against a reference, plus data quality"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("current", "the table to check"),
                crate::Port::optional(
                    "reference",
                    "the table to compare with, unless `reference_model` names a registered version's data",
                ),
            ],
            outputs: &[crate::Port::required(
                "report",
                "JSON: per-feature divergence, PSI, drifted features, data quality",
            )],
            ..crate::Ports::NONE
        };
        PORTS
    }

    /// 2: the reference may come from the registry; minimum evidence.
    fn version(&self) -> &'static str {
        "2"
    }

    fn value_names(&self) -> &'static [&'static str] {
        &[
            "drift_detected",
            "drifted_features",
            "report",
            "reference_version",
        ]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        let params: Params = parse_params(earlier.params).map_err(|p| p.message)?;
        reference_holds(earlier, params.reference_model.as_ref())
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["current"]);
        problems.extend(require_names("outputs", spec.outputs, &["report"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => {
                problems.extend(
                    check_params(&params)
                        .into_iter()
                        .map(|(at, m)| Problem::new(at, m)),
                );
                match (&params.reference_model, spec.inputs.contains_key("reference")) {
                    (Some(_), true) => problems.push(Problem::new(
                        "params.reference_model",
                        "give input `reference` or `reference_model`, not both",
                    )),
                    (None, false) => problems.push(
                        Problem::new("inputs", "missing the reference: declare input `reference` or set `reference_model`")
                            .with_help("e.g. `reference_model: { name: obesity, alias: production, data: train }`"),
                    ),
                    _ => {}
                }
            }
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
    if params.min_rows == 0 {
        problems.push((
            "params.min_rows".into(),
            "`min_rows` must be at least 1".into(),
        ));
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
    let current_path = ctx.input("current")?;
    let current = without_source_rows(read_table(current_path)?);
    let traffic = match &params.status_column {
        Some(column) => count(&current, column, current_path)?,
        None => None,
    };
    let (reference_path, mut info) = match resolve(ctx, params.reference_model.as_ref())? {
        Resolved::Found { path, info } => (path, info),
        Resolved::Missing(reason) => {
            return not_judged(ctx, &params, &current, traffic, None, reason);
        }
    };
    let reference = without_source_rows(read_table(&reference_path)?);
    info.rows = reference.height();
    let fewest = current.height().min(reference.height());
    if fewest < params.min_rows {
        let (which, rows) = if current.height() < reference.height() {
            ("current", current.height())
        } else {
            ("reference", reference.height())
        };
        let reason = format!(
            "not enough rows to judge drift: {rows} {which} rows, at least {} needed (`min_rows`)",
            params.min_rows
        );
        return not_judged(ctx, &params, &current, traffic, Some(info), reason);
    }
    let files = (reference_path.as_path(), current_path);
    let mut features = feature_names(&params, &reference, &current, files)?;
    features.retain(|name| Some(name) != params.status_column.as_ref());
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
    let reference_version = info.version;
    let against = describe(&info);
    let report = Report {
        reference: info,
        current: file_name(current_path),
        reference_rows: reference.height(),
        current_rows: current.height(),
        min_rows: params.min_rows,
        not_judged: None,
        js_threshold: params.js_threshold,
        psi_threshold: params.psi_threshold,
        drift_detected: detected,
        drifted_features: drifted.clone(),
        features: drift,
        quality: Some(assess(&reference, &current, files)?),
        traffic: traffic.clone(),
    };
    write_json(&report, report_path)?;
    let summary = if detected {
        format!(
            "drift detected in {} of {} features against {against}: {}",
            drifted.len(),
            features.len(),
            drifted.join(", ")
        )
    } else {
        format!(
            "no drift detected against {against}: max JS {max_js:.3} < {}, max PSI {max_psi:.3} < {}",
            params.js_threshold, params.psi_threshold
        )
    };
    ctx.log.line(&summary);
    let mut outcome = Outcome::default()
        .value("drift_detected", detected)
        .value("drifted_features", Value::from(drifted.clone()))
        .value("report", report_path.to_string_lossy().into_owned())
        .value("reference_version", reference_version)
        .metric("max_js", max_js)
        .metric("max_psi", max_psi)
        .metric("drifted_features", drifted.len() as f64)
        .metric("current_rows", current.height() as f64)
        .summary(summary.clone());
    if let Some(traffic) = &traffic {
        outcome = outcome.metric(
            "rejected_rows",
            traffic.counts.get("rejected").copied().unwrap_or(0) as f64,
        );
    }
    if !detected && params.short_circuit_when_no_drift {
        outcome = outcome.short_circuit(summary);
    }
    Ok(outcome)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `obesity@production (v3, train 1a2b3c4d5e6f)` or `train.parquet (1a2b3c4d5e6f)`.
fn describe(info: &ReferenceInfo) -> String {
    let digest = info.digest.get(..12).unwrap_or(&info.digest);
    match (&info.model, &info.alias, info.version) {
        (Some(model), Some(alias), Some(version)) => format!(
            "{model}@{alias} (v{version}, {} {digest})",
            info.data.as_deref().unwrap_or("data")
        ),
        _ => format!("{} ({digest})", info.file.as_deref().unwrap_or("reference")),
    }
}

/// The outcome when drift cannot be judged: no drift reported, the reason
/// in the report, the summary and (when asked) the short-circuit.
fn not_judged(
    ctx: &Context,
    params: &Params,
    current: &polars::prelude::DataFrame,
    traffic: Option<Traffic>,
    info: Option<ReferenceInfo>,
    reason: String,
) -> Result<Outcome, OperatorError> {
    let report_path = ctx.output("report")?;
    let reference_version = info.as_ref().and_then(|i| i.version);
    let report = Report {
        reference_rows: info.as_ref().map_or(0, |i| i.rows),
        reference: info.unwrap_or(ReferenceInfo {
            file: None,
            model: params.reference_model.as_ref().map(|m| m.name.clone()),
            alias: params.reference_model.as_ref().map(|m| m.alias.clone()),
            version: None,
            data: params.reference_model.as_ref().map(|m| m.data.clone()),
            digest: String::new(),
            rows: 0,
        }),
        current: file_name(ctx.input("current")?),
        current_rows: current.height(),
        min_rows: params.min_rows,
        not_judged: Some(reason.clone()),
        js_threshold: params.js_threshold,
        psi_threshold: params.psi_threshold,
        drift_detected: false,
        drifted_features: Vec::new(),
        features: BTreeMap::new(),
        quality: None,
        traffic,
    };
    write_json(&report, report_path)?;
    ctx.log.line(&reason);
    let mut outcome = Outcome::default()
        .value("drift_detected", false)
        .value("drifted_features", Value::from(Vec::<String>::new()))
        .value("report", report_path.to_string_lossy().into_owned())
        .value("reference_version", reference_version)
        .metric("drifted_features", 0.0)
        .metric("current_rows", current.height() as f64)
        .summary(reason.clone());
    if params.short_circuit_when_no_drift {
        outcome = outcome.short_circuit(reason);
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
