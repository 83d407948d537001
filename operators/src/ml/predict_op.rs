//! `ml.predict_batch`: scores a CSV or Parquet file with a model file or a
//! registry alias and writes one CSV row per input row: the row index, the
//! predicted class, one probability column per class (the shortest decimal
//! that reads back as the same `f64`), and the model version.
//!
//! A target column in the input is ignored. Registry models are verified
//! against their recorded digest before use, and predictions made through
//! an alias count as up to date only while it points at the same version.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Deserialize;

use crate::ml::MlError;
use crate::ml::atomic::write_atomic;
use crate::ml::dataset::Table;
use crate::ml::forest::argmax;
use crate::ml::model::TrainedModel;
use crate::models::ModelRegistry;
use crate::{
    BoxFuture, Context, Earlier, Operator, OperatorError, Outcome, Problem, TaskSpec, parse_params,
    require_names, run_blocking,
};

pub struct PredictBatch;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Score with this registered model (with `alias`) instead of an input `model`.
    #[serde(default)]
    registry_model: Option<String>,
    /// The alias of `registry_model` to score with (`production` unless set).
    #[serde(default)]
    alias: Option<String>,
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Scores `table` and renders the predictions CSV.
pub fn predictions_csv(
    model: &TrainedModel,
    table: &Table,
    model_version: &str,
) -> Result<String, MlError> {
    let proba = model.predict_table(table)?;
    let classes = model.classes();
    let mut out = String::with_capacity(table.rows * (16 + 10 * classes.len()));
    out.push_str("row,predicted");
    for class in classes {
        out.push_str(",p_");
        out.push_str(&csv_field(class));
    }
    out.push_str(",model_version\n");
    let version = csv_field(model_version);
    let quoted: Vec<String> = classes.iter().map(|c| csv_field(c)).collect();
    for (row, p) in proba.rows().into_iter().enumerate() {
        let p = p.to_vec();
        let _ = write!(out, "{row},{}", quoted[argmax(&p)]);
        for value in &p {
            // The shortest text that reads back as the same number, so the
            // file can be checked against a served prediction exactly.
            let _ = write!(out, ",{value}");
        }
        out.push(',');
        out.push_str(&version);
        out.push('\n');
    }
    Ok(out)
}

impl Params {
    fn problems(&self, has_model_input: bool) -> Vec<Problem> {
        match (&self.registry_model, has_model_input) {
            (Some(_), true) => vec![Problem::new(
                "params.registry_model",
                "give input `model` or `registry_model`, not both",
            )],
            (None, false) => vec![
                Problem::new(
                    "inputs",
                    "missing the model: declare input `model` or set `registry_model` and `alias`",
                )
                .with_help("e.g. `params: { registry_model: obesity, alias: production }`"),
            ],
            (None, true) if self.alias.is_some() => {
                vec![Problem::new(
                    "params.alias",
                    "`alias` needs `registry_model`",
                )]
            }
            _ => Vec::new(),
        }
    }
}

fn load(ctx: &Context, params: &Params) -> Result<(TrainedModel, String), OperatorError> {
    if let Some(name) = &params.registry_model {
        let alias = params.alias.as_deref().unwrap_or("production");
        let registry = ModelRegistry::open(&ctx.state_dir)?;
        let version = registry.resolve(name, alias)?;
        let model = registry.load_verified(&version)?;
        return Ok((model, format!("{name}:v{}", version.version)));
    }
    let model = TrainedModel::load(ctx.input("model")?)?;
    let label = format!("file:{}", &model.digest()[..12]);
    Ok((model, label))
}

impl Operator for PredictBatch {
    fn name(&self) -> &'static str {
        "ml.predict_batch"
    }

    /// 2: probabilities are written in full precision.
    fn version(&self) -> &'static str {
        "2"
    }

    fn description(&self) -> &'static str {
        "scores `data` with input `model` or `registry_model`/`alias`; writes a `predictions` CSV"
    }

    fn params_schema(&self) -> Option<serde_json::Value> {
        Some(crate::schema_of::<Params>())
    }

    fn ports(&self) -> crate::Ports {
        const PORTS: crate::Ports = crate::Ports {
            inputs: &[
                crate::Port::required("data", "the rows to score; extra columns are ignored"),
                crate::Port::optional("model", "a model file, when `registry_model` is not given"),
            ],
            outputs: &[crate::Port::required(
                "predictions",
                "CSV: row, predicted class, one probability column per class, model version",
            )],
            ..crate::Ports::NONE
        };
        PORTS
    }

    fn value_names(&self) -> &'static [&'static str] {
        &["rows", "model_version"]
    }

    fn effect_holds(&self, earlier: &Earlier<'_>) -> Result<(), String> {
        let params: Params = parse_params(earlier.params).map_err(|p| p.message)?;
        let Some(name) = &params.registry_model else {
            return Ok(());
        };
        let alias = params.alias.as_deref().unwrap_or("production");
        let registry =
            ModelRegistry::open(earlier.state_dir).map_err(|e| crate::error_chain(&e))?;
        let now = registry
            .alias_target(name, alias)
            .map_err(|e| crate::error_chain(&e))?
            .map(|v| format!("{name}:v{v}"));
        let before = earlier
            .values
            .get("model_version")
            .and_then(serde_json::Value::as_str);
        if now.as_deref() == before {
            Ok(())
        } else {
            Err(format!(
                "`{alias}` points at {}, the predictions were made by {}",
                now.as_deref().unwrap_or("nothing"),
                before.unwrap_or("an unknown version")
            ))
        }
    }

    fn check(&self, spec: &TaskSpec<'_>) -> Vec<Problem> {
        let mut problems = require_names("inputs", spec.inputs, &["data"]);
        problems.extend(require_names("outputs", spec.outputs, &["predictions"]));
        match parse_params::<Params>(spec.params) {
            Err(problem) => problems.push(problem),
            Ok(params) => problems.extend(params.problems(spec.inputs.contains_key("model"))),
        }
        problems
    }

    fn execute<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Outcome, OperatorError>> {
        run_blocking(ctx, |ctx| {
            let params: Params =
                parse_params(&ctx.params).map_err(|p| OperatorError::Params(p.message))?;
            let (model, version) = load(&ctx, &params)?;
            let data: &Path = ctx.input("data")?;
            let started = Instant::now();
            let table = Table::read(data)?;
            let csv = predictions_csv(&model, &table, &version)?;
            write_atomic(ctx.output("predictions")?, csv.as_bytes())?;
            let seconds = started.elapsed().as_secs_f64();
            ctx.log
                .line(format_args!("scored {} rows in {seconds:.3} s", table.rows));
            Ok(Outcome::default()
                .value("rows", table.rows)
                .value("model_version", version.clone())
                .metric("rows", table.rows as f64)
                .summary(format!("scored {} rows with {version}", table.rows)))
        })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a test should stop at the first unexpected error"
)]
mod tests {
    use super::*;
    use crate::ml::test_fixtures::{tiny_csv, tiny_model, write};

    #[test]
    fn predictions_have_one_row_per_input_and_probabilities_per_class() {
        let dir = tempfile::tempdir().unwrap();
        let model = TrainedModel::load(&tiny_model(dir.path(), 1)).unwrap();
        let data = write(dir.path(), "in.csv", &tiny_csv(6));
        let csv = predictions_csv(&model, &Table::read(&data).unwrap(), "m:v1").unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "row,predicted,p_high,p_low,p_mid,model_version");
        assert_eq!(lines.len(), 7);
        assert!(
            lines[1].starts_with("0,low,") && lines[1].ends_with(",m:v1"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn registry_alias_is_resolved_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let model_path = tiny_model(dir.path(), 1);
        let mut ctx = Context::detached(
            dir.path(),
            serde_json::json!({"registry_model": "m", "alias": "production"}),
        );
        let registry = ModelRegistry::open(&ctx.state_dir).unwrap();
        let v = registry
            .register("m", &model_path, Default::default())
            .unwrap();
        registry.set_alias("m", "production", v.version).unwrap();
        ctx.inputs
            .insert("data".into(), write(dir.path(), "in.csv", &tiny_csv(4)));
        ctx.outputs
            .insert("predictions".into(), dir.path().join("out.csv"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(PredictBatch.execute(&ctx)).unwrap();
        assert_eq!(outcome.values["model_version"], serde_json::json!("m:v1"));
        assert_eq!(outcome.values["rows"], serde_json::json!(4));
        std::fs::write(registry.blob_path(&v.digest), b"tampered").unwrap();
        let error = runtime
            .block_on(PredictBatch.execute(&ctx))
            .unwrap_err()
            .to_string();
        assert!(error.contains("digest"), "{error}");
    }

    #[test]
    fn model_source_must_be_given_exactly_once() {
        let none = Params::default();
        assert_eq!(none.problems(false).len(), 1);
        let both = Params {
            registry_model: Some("m".into()),
            alias: None,
        };
        assert_eq!(both.problems(true).len(), 1);
        assert!(both.problems(false).is_empty());
    }
}
